//! Engine.IO v4 server side (docs/protocol.md §1): the pure codecs ([`packet`], [`payload`]), one actor per
//! session ([`session`]) that owns heartbeats, buffering and the polling → WebSocket upgrade,
//! and the HTTP surface for both transports ([`transport`]).
//!
//! This layer knows nothing of Socket.IO or Web PubSub. The layer above plugs in through two
//! seams: an [`Acceptor`] decides whether a handshake becomes a session and builds its
//! [`Handler`], and the handler receives the session's messages and close, and applies
//! backpressure through [`Handler::ready`] (docs/protocol.md §14 decision 21).

pub mod packet;
pub mod payload;
pub mod session;
pub mod transport;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use http::{HeaderMap, StatusCode, Uri};

use crate::http::ErrorBody;

pub use session::{CloseReason, Ctx, EventSender, Handler};
pub use transport::EngineIo;

/// The two transports of Engine.IO v4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Polling,
    WebSocket,
}

impl Transport {
    /// The query-parameter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }
}

/// A first request without `sid`, offered to the [`Acceptor`].
#[derive(Debug)]
pub struct Handshake<'a> {
    /// The application route the request came in on (for sio-emu: the hub).
    pub route: &'a str,
    /// The session id that will be assigned if accepted.
    pub sid: &'a str,
    pub transport: Transport,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

/// Why a handshake was refused: the HTTP status and error body the client receives.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub body: ErrorBody<'static>,
}

/// Decides whether a handshake opens a session, and builds the session's handler.
pub trait Acceptor: Send + Sync + 'static {
    type Handler: Handler;
    fn accept(&self, handshake: &Handshake<'_>) -> Result<Self::Handler, Refusal>;

    /// The sid of the next handshake; random by default, the layer above may make it
    /// deterministic.
    fn new_sid(&self) -> String {
        random_id()
    }
}

/// Engine.IO protocol errors answered over HTTP (docs/protocol.md §0 P1 `server.ts` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
}

impl EngineError {
    /// The numeric code in the error body.
    pub fn code(self) -> u8 {
        match self {
            EngineError::UnknownTransport => 0,
            EngineError::UnknownSid => 1,
            EngineError::BadHandshakeMethod => 2,
            EngineError::BadRequest => 3,
            EngineError::Forbidden => 4,
            EngineError::UnsupportedProtocolVersion => 5,
        }
    }

    /// The reference server's message text.
    pub fn message(self) -> &'static str {
        match self {
            EngineError::UnknownTransport => "Transport unknown",
            EngineError::UnknownSid => "Session ID unknown",
            EngineError::BadHandshakeMethod => "Bad handshake method",
            EngineError::BadRequest => "Bad request",
            EngineError::Forbidden => "Forbidden",
            EngineError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// 403 for Forbidden, 400 otherwise.
    pub fn status(self) -> StatusCode {
        if self == EngineError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        }
    }

    /// The error body `{"code":N,"message":"..."}`.
    pub fn error_body(self) -> ErrorBody<'static> {
        ErrorBody::new(self.code(), self.message())
    }
}

/// Flags a transport request reads without waiting for the session actor.
#[derive(Debug, Default)]
pub(crate) struct SharedFlags {
    /// A WebSocket upgrade is in progress.
    pub upgrading: AtomicBool,
    /// The session now runs on WebSocket; polling requests are refused.
    pub upgraded: AtomicBool,
    /// A long-polling POST is being processed.
    pub post_busy: AtomicBool,
}

/// What the transports hold of a running session.
pub(crate) struct SessionHandle<E> {
    pub route: Arc<str>,
    pub tx: session::inbox::Sender<session::Input<E>>,
    pub flags: Arc<SharedFlags>,
}

impl<E> Clone for SessionHandle<E> {
    fn clone(&self) -> Self {
        SessionHandle {
            route: self.route.clone(),
            tx: self.tx.clone(),
            flags: self.flags.clone(),
        }
    }
}

/// Live sessions by sid.
pub(crate) type Registry<E> = Arc<Mutex<HashMap<Arc<str>, SessionHandle<E>>>>;

/// A new random id: 15 random bytes as 20 URL-safe base64 characters (docs/protocol.md §14 decision 3).
pub fn random_id() -> String {
    use base64::Engine;
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_twenty_url_safe_chars() {
        let id = random_id();
        assert_eq!(id.len(), 20);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(id, random_id());
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            EngineError::UnsupportedProtocolVersion
                .error_body()
                .to_json(),
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        );
        assert_eq!(EngineError::Forbidden.status(), StatusCode::FORBIDDEN);
    }
}
