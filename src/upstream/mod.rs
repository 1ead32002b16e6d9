//! Webhook (event handler) calls: the emulated service's only way out to the developer's code.
//!
//! The Socket.IO layer hands this module a [`WebhookEvent`] plus the hub's [`UpstreamSettings`];
//! [`cloudevents`] turns them into a CloudEvents binary-mode HTTP request (docs/protocol.md §5.1, §6) without
//! any I/O, and [`client::Upstream`] delivers it over a shared keep-alive pool with the timeout,
//! retry and abuse-protection preflight rules of docs/protocol.md §14 decisions 14 and 15. Outcomes come back
//! as values ([`WebhookResponse`] or [`WebhookError`]); nothing here prints or decides what a
//! failure means for the client — the caller does that, using [`WebhookError::hint`] and
//! [`WebhookResponse::hint`] to tell the developer what to fix.

pub mod client;
pub mod cloudevents;
mod head;
mod hint;
mod http1;
pub mod ledger;
mod pool;
#[cfg(test)]
mod raw_answers;
pub mod reply;

pub use client::Upstream;
pub use head::ResponseHead;
pub use hint::body_preview;
pub use reply::{Packets, Reply, ReplyPackets, user_event_reply};

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// Which event a webhook call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `connect` (blocking): the webhook accepts (2xx) or refuses the socket.
    Connect,
    /// `connected` (non-blocking): the socket was accepted.
    Connected,
    /// `disconnected` (non-blocking): the socket is gone.
    Disconnected,
    /// A Socket.IO user event (blocking), carrying its event name.
    User(String),
}

/// The `ce-type` prefix of user events.
pub const USER_CE_TYPE_PREFIX: &str = "azure.webpubsub.user.";

impl EventKind {
    /// The kind of a recorded call: user events by `ce-type`, system events by name.
    pub fn from_recorded(ce_type: &str, event: &str) -> EventKind {
        if ce_type.starts_with(USER_CE_TYPE_PREFIX) {
            return EventKind::User(event.to_owned());
        }
        match event {
            "connect" => EventKind::Connect,
            "connected" => EventKind::Connected,
            _ => EventKind::Disconnected,
        }
    }

    /// The `ce-eventName` value and the `{event}` URL substitution.
    pub fn event_name(&self) -> &str {
        match self {
            EventKind::Connect => "connect",
            EventKind::Connected => "connected",
            EventKind::Disconnected => "disconnected",
            EventKind::User(name) => name,
        }
    }

    /// The `ce-type` value (docs/protocol.md §14 decision 1 for user events).
    pub fn ce_type(&self) -> &'static str {
        match self {
            EventKind::Connect => "azure.webpubsub.sys.connect",
            EventKind::Connected => "azure.webpubsub.sys.connected",
            EventKind::Disconnected => "azure.webpubsub.sys.disconnected",
            EventKind::User(_) => "azure.webpubsub.user.message",
        }
    }

    /// Blocking events wait for the webhook's answer and are never retried (docs/protocol.md §14 decision 14).
    pub fn is_blocking(&self) -> bool {
        matches!(self, EventKind::Connect | EventKind::User(_))
    }
}

/// Where and how one hub's events are delivered.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// Event-handler URL template; `{hub}` and `{event}` are substituted. Only `http://`.
    pub url_template: String,
    /// Access keys, primary first; each contributes one `sha256=` entry to `ce-signature`.
    pub access_keys: Vec<String>,
    /// `WebHook-Request-Origin`: the endpoint host of the printed connection string (docs/protocol.md §14 decision 16).
    pub origin: String,
    /// Budget for one whole exchange (connect, request, response headers and body).
    pub timeout: Duration,
    /// Send the abuse-protection preflight before the first event (docs/protocol.md §14 decision 15).
    pub preflight: bool,
    /// Delays before each retry of a non-blocking event (docs/protocol.md §14 decision 23: 1 s, 2 s, 4 s, 8 s, 15 s, 30 s by default).
    pub retry_delays: Vec<Duration>,
}

/// One event to deliver.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// The names of the socket it is about: shared with the socket, so that an event holds
    /// pointers to them, not copies (its lane counts them once, with the socket).
    pub hub: Arc<str>,
    pub kind: EventKind,
    pub connection_id: Arc<str>,
    pub namespace: Arc<str>,
    pub socket_id: Arc<str>,
    /// Sent as `ce-userId` only when `Some` and non-empty. Shared by every event of the
    /// connection: a token's `sub` is kept once, however many events wait.
    pub user_id: Option<Arc<str>>,
    /// The request body: JSON for system events, the Engine.IO-framed packet for user events.
    pub body: Bytes,
}

impl WebhookEvent {
    /// The event a session line recorded (to send again: the inspector's resend, replay).
    pub fn recorded(call: &crate::traffic::record::RecordedEvent) -> WebhookEvent {
        WebhookEvent {
            hub: Arc::from(call.hub.as_str()),
            kind: EventKind::from_recorded(&call.ce_type, &call.event),
            connection_id: Arc::from(call.connection_id.as_str()),
            namespace: Arc::from(call.namespace.as_str()),
            socket_id: Arc::from(call.socket_id.as_str()),
            user_id: call.user_id.as_deref().map(Arc::from),
            body: Bytes::from(call.body.clone()),
        }
    }
}

/// What the webhook answered.
#[derive(Debug, Clone)]
pub struct WebhookResponse {
    /// The resolved URL the event was posted to (shared with the socket's request template).
    pub url: Arc<str>,
    pub status: u16,
    /// The status line and headers as received; see [`WebhookResponse::reason`],
    /// [`WebhookResponse::content_type`] and [`WebhookResponse::headers`].
    pub head: ResponseHead,
    /// The response body, at most [`client::MAX_RESPONSE_BODY`] bytes.
    pub body: Bytes,
    /// Time of the last attempt's exchange (preflight and retry delays excluded).
    pub latency: Duration,
    /// 1 for blocking events; 1 + retries for `connected` / `disconnected`.
    pub attempts: u32,
}

impl WebhookResponse {
    /// 2xx: the webhook accepted the event.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's own reason phrase when it sent one, else the canonical one.
    pub fn reason(&self) -> &str {
        self.head.reason(self.status)
    }

    /// The answer's `Content-Type`, if any.
    pub fn content_type(&self) -> Option<Cow<'_, str>> {
        self.head.content_type()
    }

    /// Every header of the answer (shown by the inspector); built on each call.
    pub fn headers(&self) -> http::HeaderMap {
        self.head.headers()
    }
}

/// Why a webhook call produced no usable response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid webhook URL `{url}`: {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("webhook {url} unreachable: {cause}")]
    Unreachable {
        url: String,
        cause: String,
        latency: Duration,
    },
    #[error("webhook {url} did not answer within {}", humantime::format_duration(*.after))]
    Timeout { url: String, after: Duration },
    #[error("abuse-protection preflight to {url} failed: {detail}")]
    Preflight { url: String, detail: String },
    /// The answer's body exceeded [`client::MAX_RESPONSE_BODY`]; it was discarded, not truncated,
    /// because a cut-off packet would be forwarded to the client as garbage.
    #[error(
        "webhook {url} answered {status} with a body larger than {limit} bytes; the response was discarded"
    )]
    ResponseTooLarge {
        url: String,
        status: u16,
        limit: usize,
    },
}

impl WebhookError {
    /// The URL the failed call was aimed at (the template itself for [`WebhookError::InvalidUrl`]).
    pub fn url(&self) -> &str {
        match self {
            WebhookError::InvalidUrl { url, .. }
            | WebhookError::Unreachable { url, .. }
            | WebhookError::Timeout { url, .. }
            | WebhookError::Preflight { url, .. }
            | WebhookError::ResponseTooLarge { url, .. } => url,
        }
    }
}
