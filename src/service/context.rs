//! The runtime context a [`Service`](super::Service) is given: the settings in force and the
//! webhook routes compiled from them, the public endpoint, the webhook client, the id and stamp
//! source, the hooks the assembler plugs in (contract lint, fault injection), the traffic sink,
//! the task tracker shutdown waits on and the shutdown signal. The domain (hubs, connections,
//! groups, users) lives in the service; everything here is what it runs with.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ids, request_origin};
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

/// What a service runs with: everything but the hubs.
pub struct Context {
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
}

impl Context {
    /// A context for `config`, reachable at `endpoint`, without hooks.
    pub(super) fn new(
        config: Arc<ServeConfig>,
        endpoint: String,
        traffic: Traffic,
        shutdown: CancellationToken,
    ) -> Self {
        let ids = ids::Ids::new(config.seed);
        let upstream = match ids.stamp_source() {
            Some(stamps) => Upstream::new().with_stamps(stamps),
            None => Upstream::new(),
        };
        let settings = Settings::new(config, &request_origin(&endpoint));
        Context {
            hooks: Hooks::default(),
            settings: RwLock::new(Arc::new(settings)),
            endpoint,
            upstream,
            ids,
            unrouted: Mutex::new(HashSet::new()),
            traffic,
            tracker: TaskTracker::new(),
            shutdown,
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
    pub(super) fn with_hooks(mut self, hooks: Hooks) -> Self {
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

    /// Puts new settings in force for new events and forgets the unrouted names seen.
    pub(super) fn reload(&self, config: Arc<ServeConfig>) {
        let settings = Settings::new(config, &request_origin(&self.endpoint));
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
        self.unrouted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The handler that gets `kind` on `hub`: the first that wants it (docs/protocol.md §5.1).
    pub fn route(&self, hub: &str, kind: &EventKind) -> Option<Arc<UpstreamSettings>> {
        let settings = self.settings();
        // Hub names are mostly lower case already: no copy per event for those.
        let key: std::borrow::Cow<'_, str> = if hub.bytes().any(|b| b.is_ascii_uppercase()) {
            hub.to_ascii_lowercase().into()
        } else {
            hub.into()
        };
        let routes = settings.hubs.get(&*key).unwrap_or(&settings.default);
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
}
