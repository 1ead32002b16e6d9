//! The emulated Web PubSub core: hubs with their connections, groups and users ([`hub`]),
//! Socket.IO group names ([`group`]) and OData filters ([`odata`]), plus the shared runtime
//! pieces every connection uses: the settings, the webhook client, the traffic sink, the
//! shutdown signal and the task tracker that shutdown waits on.
//!
//! The Socket.IO layer and the REST API both work through [`Service`]; neither talks to the
//! other directly.

pub mod group;
pub mod hub;
pub mod odata;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;
use crate::traffic::Traffic;
use crate::upstream::{Upstream, UpstreamSettings};

pub use hub::{ConnCommand, ConnHandle, Hub};

/// The running service.
pub struct Service {
    pub config: Arc<ServeConfig>,
    /// The public endpoint, e.g. `http://localhost:8080` (no trailing slash).
    pub endpoint: String,
    pub upstream: Upstream,
    pub upstream_settings: UpstreamSettings,
    pub traffic: Traffic,
    /// Every session and webhook task; shutdown waits for it.
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The `WebHook-Request-Origin` value for an endpoint: its host, no scheme, no port
/// (decision 16).
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
        let upstream_settings = UpstreamSettings {
            url_template: config.webhook.clone(),
            access_keys: config.access_keys.clone(),
            origin: request_origin(&endpoint),
            timeout: config.webhook_timeout,
            preflight: config.preflight,
            retry_delays: config.webhook_retry_delays.clone(),
        };
        let hubs = config
            .hubs
            .iter()
            .map(|h| (h.to_ascii_lowercase(), Arc::new(Hub::new(h))))
            .collect();
        Service {
            config,
            endpoint,
            upstream: Upstream::new(),
            upstream_settings,
            traffic,
            tracker: TaskTracker::new(),
            shutdown,
            hubs: Mutex::new(hubs),
        }
    }

    /// An existing hub, matched case-insensitively (SPEC §13 #19).
    pub fn hub(&self, name: &str) -> Option<Arc<Hub>> {
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// The hub, created on first use unless hubs are strict. `None` when strict and undeclared.
    pub fn hub_or_create(&self, name: &str) -> Option<Arc<Hub>> {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        let key = name.to_ascii_lowercase();
        if let Some(hub) = hubs.get(&key) {
            return Some(hub.clone());
        }
        if self.config.strict_hubs {
            return None;
        }
        let hub = Arc::new(Hub::new(name));
        hubs.insert(key, hub.clone());
        Some(hub)
    }

    /// Drops an undeclared hub nothing refers to, so client-chosen hub names cannot pile up.
    pub fn release_hub(&self, hub: &Hub) {
        let key = hub.name.to_ascii_lowercase();
        if self
            .config
            .hubs
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&hub.name))
        {
            return;
        }
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if hubs.get(&key).is_some_and(|h| h.is_empty()) {
            hubs.remove(&key);
        }
    }

    /// Every hub.
    pub fn hubs(&self) -> Vec<Arc<Hub>> {
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Live connections across hubs.
    pub fn connection_count(&self) -> usize {
        self.hubs()
            .iter()
            .map(|h| h.state().connections.len())
            .sum()
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
