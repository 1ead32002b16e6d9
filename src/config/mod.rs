//! Resolved, validated settings for `serve`: every limit and timeout is named here with its unit
//! and default, so the rest of the crate never invents a number of its own.
//!
//! The CLI builds a [`ServeConfig`] from flags, environment and the optional TOML file
//! ([`file`](mod@file)); the server, Engine.IO sessions, the Socket.IO layer, the webhook client and the
//! REST API read it. Hubs carry their own anonymous policy and an ordered list of event
//! handlers shaped like the cloud's hub settings ([`HubConfig`], [`HandlerConfig`]).

pub mod describe;
pub mod fault;
pub mod file;
pub mod reload;
pub mod resolve;

use std::time::Duration;

use crate::auth::DEV_ACCESS_KEY;

/// Default webhook URL template: the Azure Functions Socket.IO trigger of `func start`.
pub const DEFAULT_WEBHOOK: &str = "http://localhost:7071/runtime/webhooks/socketio";
/// Default `--lint-slow`: a blocking webhook answer slower than this is a lint finding.
pub const DEFAULT_LINT_SLOW: Duration = Duration::from_secs(5);
/// Default listen port.
pub const DEFAULT_PORT: u16 = 8080;

/// Engine.IO / Socket.IO limits and timers (docs/protocol.md §14 decision 4).
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
        }
    }
}

/// Delays before each retry of `connected` / `disconnected` (docs/protocol.md §14 decision 23): backing off over
/// 60 s in all, so a handler that restarts (`func start` reloading) loses nothing.
pub const DEFAULT_RETRY_DELAYS_SECS: [u64; 6] = [1, 2, 4, 8, 15, 30];

/// Settings of one `serve` run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen host as given (`localhost` binds 127.0.0.1 and ::1).
    pub host: String,
    /// Listen port; 0 picks a free one.
    pub port: u16,
    /// Access keys, primary first; the first signs, any verifies.
    pub access_keys: Vec<String>,
    /// Declared hubs, each with its policy and handlers.
    pub hubs: Vec<HubConfig>,
    /// Settings of hubs that were not declared (named `*`).
    pub default_hub: HubConfig,
    /// Refuse hubs that were not declared.
    pub strict_hubs: bool,
    /// Per webhook request timeout (docs/protocol.md §14 decision 14).
    pub webhook_timeout: Duration,
    /// Delays before retrying `connected` / `disconnected` deliveries (docs/protocol.md §14 decision 14).
    pub webhook_retry_delays: Vec<Duration>,
    /// Send the abuse-protection preflight (docs/protocol.md §14 decision 15).
    pub preflight: bool,
    /// Forward the Socket.IO CONNECT `auth` payload in the connect body (docs/protocol.md §14 decision 7).
    pub forward_auth: bool,
    /// Accept REST calls without a Bearer token.
    pub rest_anonymous: bool,
    /// Engine.IO limits and timers.
    pub engine: EngineConfig,
    /// How long shutdown waits for pending `disconnected` deliveries.
    pub shutdown_grace: Duration,
    /// `--seed`: ids, `ce-id`/`ce-time` and recording times come from a seeded generator and a
    /// logical clock, so a sequential scenario records the same session every run.
    pub seed: Option<u64>,
    /// `--lint-slow`: blocking webhook answers slower than this are a lint finding.
    pub lint_slow: Duration,
    /// `--fault` and `[[fault]]`: fault-injection rules in force at start-up (file rules first).
    pub faults: Vec<fault::FaultRule>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            access_keys: vec![DEV_ACCESS_KEY.into()],
            hubs: Vec::new(),
            default_hub: HubConfig::new("*", false, DEFAULT_WEBHOOK),
            strict_hubs: false,
            webhook_timeout: Duration::from_secs(30),
            webhook_retry_delays: DEFAULT_RETRY_DELAYS_SECS
                .iter()
                .map(|&s| Duration::from_secs(s))
                .collect(),
            preflight: true,
            forward_auth: false,
            rest_anonymous: false,
            engine: EngineConfig::default(),
            shutdown_grace: Duration::from_secs(10),
            seed: None,
            lint_slow: DEFAULT_LINT_SLOW,
            faults: Vec::new(),
        }
    }
}

/// A Web PubSub system event a handler may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemEvent {
    Connect,
    Connected,
    Disconnected,
}

impl SystemEvent {
    /// All three, in their documented order.
    pub const ALL: [SystemEvent; 3] = [
        SystemEvent::Connect,
        SystemEvent::Connected,
        SystemEvent::Disconnected,
    ];

    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            SystemEvent::Connect => "connect",
            SystemEvent::Connected => "connected",
            SystemEvent::Disconnected => "disconnected",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(name: &str) -> Option<SystemEvent> {
        SystemEvent::ALL
            .into_iter()
            .find(|e| e.name() == name.trim())
    }
}

/// Which user events a handler wants: `*`, a comma list, or one name (the cloud's
/// `user-event-pattern`); an empty pattern wants none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPattern {
    All,
    Names(Vec<String>),
}

impl EventPattern {
    /// Parses `*`, `a,b,c` or `a`.
    pub fn parse(text: &str) -> EventPattern {
        if text.trim() == "*" {
            EventPattern::All
        } else {
            EventPattern::Names(
                text.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        }
    }

    /// Whether the pattern wants the user event `name`.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            EventPattern::All => true,
            EventPattern::Names(names) => names.iter().any(|n| n == name),
        }
    }

    /// The configuration spelling.
    pub fn to_text(&self) -> String {
        match self {
            EventPattern::All => "*".into(),
            EventPattern::Names(names) => names.join(","),
        }
    }
}

/// One event handler of a hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerConfig {
    /// URL template with `{hub}` and `{event}`.
    pub url: String,
    pub user_events: EventPattern,
    pub system_events: Vec<SystemEvent>,
}

/// One hub's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    pub name: String,
    /// Accept clients without an access token (docs/protocol.md §14 decision 17).
    pub anonymous: bool,
    /// Event handlers in order; the first that wants an event gets it.
    pub handlers: Vec<HandlerConfig>,
}

impl HubConfig {
    /// A hub with one handler that wants every event.
    pub fn new(name: &str, anonymous: bool, url: &str) -> Self {
        HubConfig {
            name: name.to_owned(),
            anonymous,
            handlers: vec![HandlerConfig {
                url: url.to_owned(),
                user_events: EventPattern::All,
                system_events: SystemEvent::ALL.to_vec(),
            }],
        }
    }
}

impl ServeConfig {
    /// The declared hub of that name (case-insensitive).
    pub fn declared_hub(&self, name: &str) -> Option<&HubConfig> {
        self.hubs.iter().find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The settings that apply to a hub: its own, or the default ones.
    pub fn hub(&self, name: &str) -> &HubConfig {
        self.declared_hub(name).unwrap_or(&self.default_hub)
    }

    /// Names of the declared hubs.
    pub fn hub_names(&self) -> Vec<String> {
        self.hubs.iter().map(|h| h.name.clone()).collect()
    }
}

/// The hub-name rule as error messages state it (see [`valid_hub_name`]).
pub const HUB_NAME_RULE: &str =
    "it must start with a letter and contain only letters, digits and _`,.[]";

/// docs/protocol.md §3 hub-name rule: `^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$`.
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
    fn patterns() {
        assert!(EventPattern::parse("*").matches("x"));
        let p = EventPattern::parse("a, b");
        assert!(p.matches("a") && p.matches("b") && !p.matches("c"));
        assert!(!EventPattern::parse("").matches("a"));
        assert_eq!(p.to_text(), "a,b");
        assert_eq!(
            SystemEvent::parse("connected"),
            Some(SystemEvent::Connected)
        );
        assert_eq!(SystemEvent::parse("message"), None);
    }

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
