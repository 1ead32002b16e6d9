//! Resolved, validated settings for `serve`: every limit and timeout is named here with its unit
//! and default, so the rest of the crate never invents a number of its own.
//!
//! The CLI builds a [`ServeConfig`]; the server, Engine.IO sessions, the Socket.IO layer, the
//! webhook client and the REST API read it.

use std::time::Duration;

use crate::auth::DEV_ACCESS_KEY;

/// Default webhook URL template: the Azure Functions Socket.IO trigger of `func start`.
pub const DEFAULT_WEBHOOK: &str = "http://localhost:7071/runtime/webhooks/socketio";
/// Default listen port.
pub const DEFAULT_PORT: u16 = 8080;

/// Engine.IO / Socket.IO limits and timers (SPEC §14 decision 4).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Interval between server pings.
    pub ping_interval: Duration,
    /// How long the client has to answer a ping before the session closes.
    pub ping_timeout: Duration,
    /// How long a new connection may wait before its first Socket.IO CONNECT.
    pub connect_timeout: Duration,
    /// How long a polling → WebSocket upgrade may take from probe to `5`.
    pub upgrade_timeout: Duration,
    /// Engine.IO `maxPayload`: the largest HTTP body or WebSocket frame accepted, in bytes.
    pub max_payload: usize,
    /// Packets buffered for one client that is not reading; beyond this the session closes.
    pub max_buffered_packets: usize,
    /// Bytes buffered for one client that is not reading; beyond this the session closes.
    pub max_buffered_bytes: usize,
    /// Inputs queued for one session (client packets, webhook results, REST commands).
    pub session_queue: usize,
    /// User events queued per socket while its previous event is at the webhook.
    pub socket_event_queue: usize,
    /// How long a closing long-polling session waits for the client's last GET.
    pub close_linger: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            connect_timeout: Duration::from_millis(45_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            max_buffered_packets: 1_024,
            max_buffered_bytes: 4 * 1_000_000,
            session_queue: 256,
            socket_event_queue: 256,
            close_linger: Duration::from_millis(1_000),
        }
    }
}

/// Settings of one `serve` run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen host as given (`localhost` binds 127.0.0.1 and ::1).
    pub host: String,
    /// Listen port; 0 picks a free one.
    pub port: u16,
    /// Access keys, primary first; the first signs, any verifies.
    pub access_keys: Vec<String>,
    /// Hubs declared on the command line.
    pub hubs: Vec<String>,
    /// Refuse hubs that were not declared.
    pub strict_hubs: bool,
    /// Accept clients without an access token (SPEC §14 decision 17).
    pub anonymous: bool,
    /// Webhook URL template with `{hub}` and `{event}`.
    pub webhook: String,
    /// Per webhook request timeout (decision 14).
    pub webhook_timeout: Duration,
    /// Delays before retrying `connected` / `disconnected` deliveries (decision 14).
    pub webhook_retry_delays: Vec<Duration>,
    /// Send the abuse-protection preflight (decision 15).
    pub preflight: bool,
    /// Forward the Socket.IO CONNECT `auth` payload in the connect body (decision 7).
    pub forward_auth: bool,
    /// Accept REST calls without a Bearer token.
    pub rest_anonymous: bool,
    /// Engine.IO limits and timers.
    pub engine: EngineConfig,
    /// How long shutdown waits for pending `disconnected` deliveries.
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            access_keys: vec![DEV_ACCESS_KEY.into()],
            hubs: Vec::new(),
            strict_hubs: false,
            anonymous: false,
            webhook: DEFAULT_WEBHOOK.into(),
            webhook_timeout: Duration::from_secs(30),
            webhook_retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(3),
                Duration::from_secs(5),
            ],
            preflight: true,
            forward_auth: false,
            rest_anonymous: false,
            engine: EngineConfig::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// SPEC §3 hub-name rule: `^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$`.
pub fn valid_hub_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_`,.[]".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names() {
        assert!(valid_hub_name("hub"));
        assert!(valid_hub_name("Chat_1.v[2]"));
        assert!(!valid_hub_name("1hub"));
        assert!(!valid_hub_name(""));
        assert!(!valid_hub_name("a-b"));
        assert!(!valid_hub_name(&"a".repeat(129)));
    }
}
