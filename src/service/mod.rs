//! The emulated Web PubSub core: hubs with their connections, groups and users ([`hub`]),
//! Socket.IO group names ([`group`]) and OData filters ([`odata`]): the domain. It runs in the
//! context it is given (the `context` module): the settings and their webhook routes, the id
//! and stamp source ([`ids`], seeded under `--seed`), the webhook client, the traffic sink, the
//! hooks the assembler plugs in (contract lint, fault injection; see `crate::hooks`), the
//! shutdown signal and the task tracker that shutdown waits on. [`Service`] keeps the
//! context's accessors, so callers name one value.
//!
//! The Socket.IO layer and the REST API both work through [`Service`]; neither talks to the
//! other directly.

mod context;
pub mod group;
pub mod hub;
pub mod ids;
pub mod odata;
mod registry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;
use crate::hooks::{FaultInjector, Hooks};
use crate::traffic::Traffic;
use crate::upstream::{EventKind, Upstream, UpstreamSettings};
use context::Context;

pub use crate::engineio::Transport;
pub use hub::{ConnCommand, ConnHandle, Hub};

/// The running service: the hubs, in the context it was given.
pub struct Service {
    context: Context,
    hubs: Mutex<registry::Registry>,
    /// State a layer above keeps per service (one value per type; see [`Service::extension`]).
    extensions: Mutex<HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

/// The `WebHook-Request-Origin` value for an endpoint: its host, no scheme, no port
/// (docs/protocol.md §14 decision 16).
pub fn request_origin(endpoint: &str) -> String {
    crate::auth::Endpoint::parse(endpoint)
        .map(|e| e.hostname().to_owned())
        .unwrap_or_default()
}

impl Service {
    /// A service for `config`, reachable at `endpoint`, in a fresh context without hooks; its
    /// declared hubs exist from the start.
    pub fn new(
        config: Arc<ServeConfig>,
        endpoint: String,
        traffic: Traffic,
        shutdown: CancellationToken,
    ) -> Self {
        let hubs = registry::Registry::new(config.hubs.iter().map(|h| h.name.as_str()));
        Service {
            context: Context::new(config, endpoint, traffic, shutdown),
            hubs: Mutex::new(hubs),
            extensions: Mutex::new(HashMap::new()),
        }
    }

    /// The one value of type `T` kept with this service, made on first use: how a layer above
    /// (the admin surface's virtual clients) keeps state that lives as long as the service
    /// without the service knowing its type.
    pub fn extension<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.extensions.lock().unwrap_or_else(|e| e.into_inner());
        let value = map
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        value
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("keyed by its type"))
    }

    /// Plugs in the hooks (lint observers, fault injector); without it nothing is observed
    /// and no fault is injected.
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.context = self.context.with_hooks(hooks);
        self
    }

    /// The public endpoint, e.g. `http://localhost:8080` (no trailing slash).
    pub fn endpoint(&self) -> &str {
        self.context.endpoint()
    }

    /// The webhook client.
    pub fn upstream(&self) -> &Upstream {
        self.context.upstream()
    }

    /// Connection ids, socket ids and webhook stamps (deterministic under `--seed`).
    pub fn ids(&self) -> &Arc<ids::Ids> {
        self.context.ids()
    }

    /// The hooks the layers call: webhook and REST observers, the fault injector.
    pub fn hooks(&self) -> &Hooks {
        self.context.hooks()
    }

    /// The fault injector (its rules are edited through `/_emu/faults`).
    pub fn faults(&self) -> &dyn FaultInjector {
        self.context.faults()
    }

    /// The traffic sink (live log, recording, admin feed).
    pub fn traffic(&self) -> &Traffic {
        self.context.traffic()
    }

    /// Every session and webhook task; shutdown waits for it.
    pub fn tracker(&self) -> &TaskTracker {
        self.context.tracker()
    }

    /// The shutdown signal.
    pub fn shutdown(&self) -> &CancellationToken {
        self.context.shutdown()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<ServeConfig> {
        self.context.config()
    }

    /// The handler that gets `kind` on `hub`: the first that wants it (docs/protocol.md §5.1).
    pub fn route(&self, hub: &str, kind: &EventKind) -> Option<Arc<UpstreamSettings>> {
        self.context.route(hub, kind)
    }

    /// True the first time an unrouted event name is seen on a hub (for a once-per-name log line).
    pub fn first_unrouted(&self, hub: &str, event: &str) -> bool {
        self.context.first_unrouted(hub, event)
    }

    /// Applies a new configuration to new events; connections stay. Listen and Engine.IO
    /// settings keep their start-up values (the caller says so).
    pub fn reload(&self, config: ServeConfig) {
        let config = Arc::new(config);
        self.context.reload(config.clone());
        // After the switch, so that no lookup under the old settings drops a new hub as idle.
        self.registry(|hubs, _| {
            for hub in &config.hubs {
                hubs.declare(&hub.name);
            }
        });
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
