//! Fault injection for `serve`: rules (`--fault`, `[[fault]]` in the config file, or
//! `POST /_emu/faults` at runtime) that make webhook calls slow, fail, time out, vanish or
//! repeat, and drop a client's transport, so a handler's error paths can be exercised on
//! purpose. A rule is one compact string, e.g. `event=chat*,status=500,p=0.5`:
//!
//! * `event=<GLOB>` — the webhook event name (`connect`, `connected`, `disconnected` or a user
//!   event name; `*` matches any run of characters); default `*`;
//! * `hub=<NAME>` — only this hub (case-insensitive); default every hub;
//! * `p=<0..1>` — probability per matching event; default 1; drawn from a generator seeded by
//!   `--seed` (its own stream, so ids stay what they would be without faults), else random;
//! * exactly one action: `delay=<DUR>`, `status=<CODE>`, `timeout`, `drop`, `twice`,
//!   `disconnect-transport`.
//!
//! The rule itself is plain data in `config::fault` (re-exported here); this module owns the
//! decision ([`Faults::pick`]); `socketio::webhook` and
//! `socketio::connection` apply the actions and report each one as a [`TrafficEvent::Fault`]
//! line and a [`RecordLine::Fault`] recording line ([`mark`]); `admin` lists and edits the
//! rules.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub use crate::config::fault::{Action, FaultRule, MAX_DELAY};
use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::traffic::record::RecordLine;
use crate::upstream::{UpstreamSettings, WebhookError, WebhookEvent, WebhookResponse};

/// Rules in force at once; `POST /_emu/faults` beyond it is refused.
pub const MAX_RULES: usize = 64;
/// Mixed into `--seed` for the fault generator, so faults draw from their own stream.
const SEED_SALT: u64 = 0x6661_756c_7473;

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    crate::glob::matches(pattern, text)
}

impl FaultRule {
    fn matches(&self, hub: &str, event: &str) -> bool {
        self.hub
            .as_ref()
            .is_none_or(|h| h.eq_ignore_ascii_case(hub))
            && glob(&self.event, event)
    }
}

/// The rules in force and the generator their probabilities draw from.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    rng: Mutex<StdRng>,
}

impl Faults {
    /// `rules` in force; probabilities seeded by `seed` when given.
    pub fn new(rules: Vec<FaultRule>, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s ^ SEED_SALT),
            None => StdRng::seed_from_u64(rand::random()),
        };
        Faults {
            rules: Mutex::new(rules.into_iter().take(MAX_RULES).collect()),
            rng: Mutex::new(rng),
        }
    }

    /// The rules in force, in order.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds a rule; `Err` when [`MAX_RULES`] are in force.
    pub fn add(&self, rule: FaultRule) -> Result<(), String> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        if rules.len() >= MAX_RULES {
            return Err(format!(
                "{MAX_RULES} fault rules are in force already; DELETE /_emu/faults first"
            ));
        }
        rules.push(rule);
        Ok(())
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        std::mem::take(&mut *self.rules.lock().unwrap_or_else(|e| e.into_inner())).len()
    }

    /// The first rule that matches `hub`/`event`, whose action `applies`, and whose probability
    /// draw hits. A draw is made only for rules with `p < 1`.
    pub fn pick(
        &self,
        hub: &str,
        event: &str,
        applies: impl Fn(&Action) -> bool,
    ) -> Option<FaultRule> {
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        for rule in rules.iter() {
            if !applies(&rule.action) || !rule.matches(hub, event) {
                continue;
            }
            let hit = rule.p >= 1.0
                || (rule.p > 0.0
                    && self
                        .rng
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .random::<f64>()
                        < rule.p);
            if hit {
                return Some(rule.clone());
            }
        }
        None
    }
}

/// Reports one injected fault: a `fault` line in the live log and in the recording.
pub fn mark(service: &Service, rule: &FaultRule, hub: &str, event: &str, detail: String) {
    let action = rule.action.text();
    service.traffic().record(|t| RecordLine::Fault {
        t,
        rule: rule.to_string(),
        event: event.to_owned(),
        action: action.clone(),
    });
    service.traffic().emit(TrafficEvent::Fault {
        rule: rule.to_string(),
        hub: hub.to_owned(),
        event: event.to_owned(),
        action,
        detail,
    });
}

/// The error a `timeout` or `drop` fault stands in for.
pub fn timed_out(settings: &UpstreamSettings) -> WebhookError {
    WebhookError::Timeout {
        url: settings.url_template.clone(),
        after: settings.timeout,
    }
}

/// Applies `rule` just before a webhook call: marks it, waits for `delay`, and returns the
/// stand-in answer when the handler is not to be called (`status`, `drop`). `timeout` and
/// `twice` are applied by the caller after the call.
pub async fn before(
    service: &Service,
    rule: &FaultRule,
    event: &WebhookEvent,
    settings: &UpstreamSettings,
) -> Option<Result<WebhookResponse, WebhookError>> {
    let detail = match rule.action {
        Action::Delay(d) => format!("waiting {} before the call", crate::duration::format(d)),
        Action::Status(code) => format!("answered {code} on the handler's behalf; not sent"),
        Action::Timeout => "the handler's answer is discarded as if it timed out".into(),
        Action::Drop => "not sent".into(),
        Action::Twice => "delivered twice".into(),
        Action::DisconnectTransport => "transport dropped".into(),
    };
    mark(service, rule, &event.hub, event.kind.event_name(), detail);
    match rule.action {
        Action::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Action::Status(status) => Some(Ok(WebhookResponse {
            url: settings.url_template.clone(),
            status,
            reason: http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .to_owned(),
            content_type: None,
            body: bytes::Bytes::new(),
            latency: Duration::ZERO,
            attempts: 1,
        })),
        Action::Drop => Some(Err(timed_out(settings))),
        Action::Timeout | Action::Twice | Action::DisconnectTransport => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("chat*", "chat"));
        assert!(glob("chat*", "chatter"));
        assert!(!glob("chat*", "say"));
        assert!(glob("*ed", "connected"));
        assert!(glob("c*t*d", "connected"));
        assert!(!glob("connect", "connected"));
    }

    #[test]
    fn seeded_draws_repeat() {
        let rule: FaultRule = "drop,p=0.5".parse().unwrap();
        let draws = |faults: &Faults| -> Vec<bool> {
            (0..32)
                .map(|_| faults.pick("h", "e", |_| true).is_some())
                .collect()
        };
        let a = draws(&Faults::new(vec![rule.clone()], Some(1)));
        let b = draws(&Faults::new(vec![rule], Some(1)));
        assert_eq!(a, b);
        assert!(a.contains(&true) && a.contains(&false));
        let faults = Faults::new(Vec::new(), None);
        faults.add("hub=x,twice".parse().unwrap()).unwrap();
        assert!(faults.pick("y", "connected", |_| true).is_none());
        assert!(faults.pick("X", "connected", |_| true).is_some());
        assert!(
            faults
                .pick("x", "connected", |a| *a != Action::Twice)
                .is_none()
        );
        assert_eq!(faults.clear(), 1);
        assert!(faults.list().is_empty());
    }
}
