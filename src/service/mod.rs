//! The emulated Web PubSub core: hubs with their connections, groups and users ([`hub`]),
//! Socket.IO group names ([`group`]) and OData filters ([`odata`]), plus the shared runtime
//! pieces every connection uses: the settings, the id and stamp source ([`ids`], seeded under
//! `--seed`), the webhook client, the traffic sink, the hooks the assembler plugs in (contract
//! lint, fault injection; see `crate::hooks`), the shutdown signal and the task tracker
//! that shutdown waits on.
//!
//! The Socket.IO layer and the REST API both work through [`Service`]; neither talks to the
//! other directly.

pub mod group;
pub mod hub;
pub mod ids;
pub mod odata;
mod registry;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{EventPattern, HubConfig, ServeConfig, SystemEvent};
use crate::hooks::{FaultInjector, Hooks};
use crate::traffic::Traffic;
use crate::upstream::{EventKind, Upstream, UpstreamSettings};

/// Distinct unrouted event names remembered for the once-per-name log line.
const MAX_UNROUTED_NAMES: usize = 256;

/// One compiled event handler.
#[derive(Debug)]
struct Route {
    settings: Arc<UpstreamSettings>,
    user_events: EventPattern,
    system_events: Vec<SystemEvent>,
}

impl Route {
    fn wants(&self, kind: &EventKind) -> bool {
        match kind {
            EventKind::Connect => self.system_events.contains(&SystemEvent::Connect),
            EventKind::Connected => self.system_events.contains(&SystemEvent::Connected),
            EventKind::Disconnected => self.system_events.contains(&SystemEvent::Disconnected),
            EventKind::User(name) => self.user_events.matches(name),
        }
    }
}

/// The configuration in force and its compiled routes; replaced whole on reload.
#[derive(Debug)]
struct Settings {
    config: Arc<ServeConfig>,
    hubs: HashMap<String, Vec<Route>>,
    default: Vec<Route>,
}

impl Settings {
    fn new(config: Arc<ServeConfig>, origin: &str) -> Self {
        let compile = |hub: &HubConfig| -> Vec<Route> {
            hub.handlers
                .iter()
                .map(|h| Route {
                    settings: Arc::new(UpstreamSettings {
                        url_template: h.url.clone(),
                        access_keys: config.access_keys.clone(),
                        origin: origin.to_owned(),
                        timeout: config.webhook_timeout,
                        preflight: config.preflight,
                        retry_delays: config.webhook_retry_delays.clone(),
                    }),
                    user_events: h.user_events.clone(),
                    system_events: h.system_events.clone(),
                })
                .collect()
        };
        Settings {
            hubs: config
                .hubs
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), compile(h)))
                .collect(),
            default: compile(&config.default_hub),
            config,
        }
    }
}

pub use crate::engineio::Transport;
pub use hub::{ConnCommand, ConnHandle, Hub};

/// The running service.
pub struct Service {
    settings: RwLock<Arc<Settings>>,
    /// The public endpoint, e.g. `http://localhost:8080` (no trailing slash).
    endpoint: String,
    upstream: Upstream,
    /// Connection ids, socket ids and webhook stamps (deterministic under `--seed`).
    ids: Arc<ids::Ids>,
    /// The contract lint's observers and the fault injector, as plugged in by the assembler.
    hooks: Hooks,
    unrouted: Mutex<HashSet<String>>,
    traffic: Traffic,
    /// Every session and webhook task; shutdown waits for it.
    tracker: TaskTracker,
    shutdown: CancellationToken,
    hubs: Mutex<registry::Registry>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The `WebHook-Request-Origin` value for an endpoint: its host, no scheme, no port
/// (docs/protocol.md §14 decision 16).
pub fn request_origin(endpoint: &str) -> String {
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_owned();
    }
    authority.split(':').next().unwrap_or(authority).to_owned()
}

impl Service {
    /// A service for `config`, reachable at `endpoint`.
    pub fn new(
        config: Arc<ServeConfig>,
        endpoint: String,
        traffic: Traffic,
        shutdown: CancellationToken,
    ) -> Self {
        let hubs = registry::Registry::new(config.hubs.iter().map(|h| h.name.as_str()));
        let ids = ids::Ids::new(config.seed);
        let upstream = match ids.stamp_source() {
            Some(stamps) => Upstream::new().with_stamps(stamps),
            None => Upstream::new(),
        };
        let settings = Settings::new(config, &request_origin(&endpoint));
        Service {
            hooks: Hooks::default(),
            settings: RwLock::new(Arc::new(settings)),
            endpoint,
            upstream,
            ids,
            unrouted: Mutex::new(HashSet::new()),
            traffic,
            tracker: TaskTracker::new(),
            shutdown,
            hubs: Mutex::new(hubs),
        }
    }

    /// The public endpoint, e.g. `http://localhost:8080` (no trailing slash).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The webhook client.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Connection ids, socket ids and webhook stamps (deterministic under `--seed`).
    pub fn ids(&self) -> &Arc<ids::Ids> {
        &self.ids
    }

    /// Plugs in the hooks (lint observers, fault injector); without it nothing is observed
    /// and no fault is injected.
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// The hooks the layers call: webhook and REST observers, the fault injector.
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// The fault injector (its rules are edited through `/_emu/faults`).
    pub fn faults(&self) -> &dyn FaultInjector {
        self.hooks.faults.as_ref()
    }

    /// The traffic sink (live log, recording, admin feed).
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Every session and webhook task; shutdown waits for it.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// The shutdown signal.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<ServeConfig> {
        self.settings().config.clone()
    }

    /// Applies a new configuration to new events; connections stay. Listen and Engine.IO
    /// settings keep their start-up values (the caller says so).
    pub fn reload(&self, config: ServeConfig) {
        let config = Arc::new(config);
        let settings = Settings::new(config.clone(), &request_origin(&self.endpoint));
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
        // After the switch, so that no lookup under the old settings drops a new hub as idle.
        self.registry(|hubs, _| {
            for hub in &config.hubs {
                hubs.declare(&hub.name);
            }
        });
        self.unrouted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The handler that gets `kind` on `hub`: the first that wants it (docs/protocol.md §5.1).
    pub fn route(&self, hub: &str, kind: &EventKind) -> Option<Arc<UpstreamSettings>> {
        let settings = self.settings();
        let routes = settings
            .hubs
            .get(&hub.to_ascii_lowercase())
            .unwrap_or(&settings.default);
        routes
            .iter()
            .find(|r| r.wants(kind))
            .map(|r| r.settings.clone())
    }

    /// True the first time an unrouted event name is seen on a hub (for a once-per-name log line).
    pub fn first_unrouted(&self, hub: &str, event: &str) -> bool {
        let mut seen = self.unrouted.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_UNROUTED_NAMES {
            return false;
        }
        seen.insert(format!("{}/{event}", hub.to_ascii_lowercase()))
    }

    /// Runs `f` on the hub table with the declared-hub test of the configuration in force.
    fn registry<T>(
        &self,
        f: impl FnOnce(&mut registry::Registry, registry::Declared<'_>) -> T,
    ) -> T {
        let config = self.config();
        let declared = |name: &str| config.declared_hub(name).is_some();
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut hubs, &declared)
    }

    /// An existing hub, matched case-insensitively (docs/protocol.md §13 #19). A hub exists while it is
    /// declared, held by a connection or a handshake, or keeps user → group assignments; an
    /// undeclared hub with none of these is gone (see the `registry` module).
    pub fn hub(&self, name: &str) -> Option<Arc<Hub>> {
        self.registry(|hubs, declared| hubs.get(name, declared))
    }

    /// The hub, created on first use unless hubs are strict. `None` when strict and undeclared.
    /// A hub created here and then dropped unused (a refused handshake) leaves nothing behind.
    pub fn hub_or_create(&self, name: &str) -> Option<Arc<Hub>> {
        let strict = self.config().strict_hubs;
        self.registry(|hubs, declared| {
            if strict && !declared(name) {
                hubs.get(name, declared)
            } else {
                Some(hubs.get_or_insert(name, declared))
            }
        })
    }

    /// Drops an undeclared hub that keeps nothing and that nobody but the caller holds, so
    /// client-chosen hub names cannot pile up. Called when a connection closes and after REST
    /// calls that remove state; anything it misses is dropped by a later lookup or sweep.
    pub fn release_hub(&self, hub: &Arc<Hub>) {
        self.registry(|hubs, declared| hubs.release(hub, declared));
    }

    /// Every hub that exists.
    pub fn hubs(&self) -> Vec<Arc<Hub>> {
        self.registry(|hubs, declared| hubs.live(declared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(request_origin("http://localhost:8080"), "localhost");
        assert_eq!(
            request_origin("https://x.webpubsub.azure.com"),
            "x.webpubsub.azure.com"
        );
        assert_eq!(request_origin("http://[::1]:80/"), "::1");
    }
}
