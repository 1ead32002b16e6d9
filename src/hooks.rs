//! The seams through which the layers reach the contract lint and fault injection without
//! naming them: `socketio` reports each webhook exchange to a [`WebhookObserver`], `rest` reports
//! what a call relies on to a [`RestObserver`], and `socketio` asks a [`FaultInjector`] whether a
//! fault applies before a call leaves. Whoever assembles the service (`serve`, tests) builds the
//! implementations and hands them over as one [`Hooks`] value; everything they need comes in
//! through the method parameters, as values from the modules below (config, upstream, traffic).
//! The default [`Hooks`] observe nothing and inject nothing.

use std::sync::Arc;

use crate::config::fault::{Action, FaultRule};
use crate::upstream::{WebhookError, WebhookEvent, WebhookResponse};

/// Sees every webhook exchange once it is over (the contract lint).
pub trait WebhookObserver: Send + Sync {
    /// `event` was answered with `result` (a fault's stand-in answer included).
    fn answered(&self, event: &WebhookEvent, result: &Result<WebhookResponse, WebhookError>);
    /// Findings so far per rule id (the contract lint's counts; none by default).
    fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        std::collections::BTreeMap::new()
    }
}

/// What one REST call that names groups relies on.
#[derive(Debug, Clone, Copy)]
pub struct GroupUse<'a> {
    pub hub: &'a str,
    /// The operation name, e.g. `SendToGroup`.
    pub operation: &'a str,
    /// Group names the call targets or adds to (removes from).
    pub groups: &'a [&'a str],
    /// Group names its filter's `'x' in groups` literals name.
    pub filter_groups: &'a [&'a str],
    /// Whether the call adds connections to `groups`.
    pub adds: bool,
}

/// The groups a hub has right now, asked for only when an observer needs them.
pub type LiveGroups<'a> = &'a dyn Fn() -> Vec<String>;

/// Sees what the handler's REST calls rely on (the contract lint).
pub trait RestObserver: Send + Sync {
    /// `operation` used `api-version=<version>`; `known` are the versions the cloud accepts.
    fn api_version(&self, operation: &str, version: &str, known: &[&str]);
    /// `operation` sent a DISCONNECT with a `payload` other than `{"close":…}` (refused).
    fn disconnect_payload(&self, operation: &str, payload: &str);
    /// A call named groups (`live`: the hub's groups now).
    fn groups(&self, call: &GroupUse<'_>, live: LiveGroups<'_>);
    /// `operation` sends a packet for `namespace` in `hub` (`live`: the hub's groups now).
    fn send(&self, hub: &str, operation: &str, namespace: &str, live: LiveGroups<'_>);
}

/// Why a fault rule was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddFaultError {
    /// The rule list is full.
    #[error("{0} fault rules are in force already; DELETE /_emu/faults first")]
    Full(usize),
    /// This service keeps no fault rules.
    #[error("fault injection is not available here")]
    Unavailable,
}

/// Decides injected faults and keeps their rules (edited at runtime through `/_emu/faults`).
pub trait FaultInjector: Send + Sync {
    /// The first rule for `hub`/`event` whose action `applies` and whose probability draw hits.
    fn pick(&self, hub: &str, event: &str, applies: &dyn Fn(&Action) -> bool) -> Option<FaultRule>;
    /// Reports one injected fault (live log, recording); `detail` says what was done.
    fn mark(&self, rule: &FaultRule, hub: &str, event: &str, detail: String);
    /// The rules in force, in order.
    fn list(&self) -> Vec<FaultRule>;
    /// Adds a rule; `Err` says why it was refused.
    fn add(&self, rule: FaultRule) -> Result<(), AddFaultError>;
    /// Removes every rule; returns how many there were.
    fn clear(&self) -> usize;
    /// Removes the first rule written as `text` (its canonical form); false when none is.
    fn remove(&self, text: &str) -> bool;
}

/// The hooks one service calls.
#[derive(Clone)]
pub struct Hooks {
    pub webhooks: Arc<dyn WebhookObserver>,
    pub rest: Arc<dyn RestObserver>,
    pub faults: Arc<dyn FaultInjector>,
}

impl Default for Hooks {
    /// Observes nothing, injects nothing.
    fn default() -> Self {
        Hooks {
            webhooks: Arc::new(Inert),
            rest: Arc::new(Inert),
            faults: Arc::new(Inert),
        }
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

/// The hook that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inert;

impl WebhookObserver for Inert {
    fn answered(&self, _: &WebhookEvent, _: &Result<WebhookResponse, WebhookError>) {}
}

impl RestObserver for Inert {
    fn api_version(&self, _: &str, _: &str, _: &[&str]) {}
    fn disconnect_payload(&self, _: &str, _: &str) {}
    fn groups(&self, _: &GroupUse<'_>, _: LiveGroups<'_>) {}
    fn send(&self, _: &str, _: &str, _: &str, _: LiveGroups<'_>) {}
}

impl FaultInjector for Inert {
    fn pick(&self, _: &str, _: &str, _: &dyn Fn(&Action) -> bool) -> Option<FaultRule> {
        None
    }
    fn mark(&self, _: &FaultRule, _: &str, _: &str, _: String) {}
    fn list(&self) -> Vec<FaultRule> {
        Vec::new()
    }
    fn add(&self, _: FaultRule) -> Result<(), AddFaultError> {
        Err(AddFaultError::Unavailable)
    }
    fn clear(&self) -> usize {
        0
    }

    fn remove(&self, _text: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod add_fault_error_tests {
    use super::AddFaultError;

    #[test]
    fn add_fault_error_message_text() {
        assert_eq!(
            AddFaultError::Full(64).to_string(),
            "64 fault rules are in force already; DELETE /_emu/faults first"
        );
        assert_eq!(
            AddFaultError::Unavailable.to_string(),
            "fault injection is not available here"
        );
    }
}
