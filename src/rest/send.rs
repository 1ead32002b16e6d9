//! What a REST send may carry and how it reaches the selected connections (docs/protocol.md §7.1, §7.3,
//! docs/protocol.md §14 decision 12).
//!
//! A send body is one Engine.IO `message` packet holding one Socket.IO packet, as text: the
//! Functions binding and the Socket.IO docs send `42/chat,["event","arg"]` with `text/plain`.
//! [`parse_payload`] checks that with the Engine.IO and Socket.IO codecs and answers either a
//! packet to deliver verbatim (one shared `Arc<str>` for every recipient) or, for a DISCONNECT
//! (`41…`), the command the session layer executes: the client gets `41[/ns,]` without the
//! payload, the socket leaves its groups, `disconnected` fires, and `{"close":true}` also ends the
//! Engine.IO connection. [`deliver`] hands the result to each recipient's [`ConnHandle`] without
//! waiting; a recipient whose queue is full is skipped, never waited for.
//!
//! Decisions beyond the spec: a CONNECT (`40`) is refused (the service itself answers a client's
//! CONNECT); a binary packet that declares attachments is refused (a REST body cannot carry the
//! binary frames that must follow it); a body containing the long-polling record separator
//! `\x1e` is refused because it would reach polling clients as several packets; a body that is a
//! JSON string gets a hint about `contentType: "text/plain"`, the usual SDK slip.

use std::sync::Arc;

use super::request::BodyKind;
use crate::engineio::packet::PacketType as EioType;
use crate::service::{ConnCommand, ConnHandle};
use crate::socketio::packet::{self as sio, PacketType as SioType};

/// An example of a valid send body, quoted in error messages.
pub const EXAMPLE: &str = r#"42/chat,["event","arg"]"#;

/// A validated send body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendPayload {
    /// An Engine.IO message to deliver verbatim; `namespace` is the Socket.IO packet's.
    Packet { text: Arc<str>, namespace: String },
    /// A Socket.IO DISCONNECT for `namespace`: a command, not a packet to forward.
    Disconnect { namespace: String, close: bool },
}

impl SendPayload {
    /// The Socket.IO namespace the payload addresses.
    pub fn namespace(&self) -> &str {
        match self {
            SendPayload::Packet { namespace, .. } | SendPayload::Disconnect { namespace, .. } => {
                namespace
            }
        }
    }
}

/// Why a send body was refused. Every message names what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error(
        "the message body is not UTF-8 text: a Socket.IO send carries one Engine.IO packet as \
         text, e.g. `{EXAMPLE}`"
    )]
    NotUtf8,
    #[error("the message body is empty: send one Engine.IO message packet, e.g. `{EXAMPLE}`")]
    Empty,
    #[error(
        "Content-Type application/octet-stream: Socket.IO clients need text packets; send the \
         Engine.IO packet text (e.g. `{EXAMPLE}`) with Content-Type text/plain"
    )]
    Binary,
    #[error(
        "the message body is a JSON string; send the packet text itself with Content-Type \
         text/plain (@azure/web-pubsub: `{{ contentType: \"text/plain\" }}`, Python: \
         `content_type=\"text/plain\"`), e.g. `{EXAMPLE}`"
    )]
    JsonString,
    #[error(
        "the message body contains the long-polling record separator \\x1e, which would split \
         it into several packets; send one packet per call"
    )]
    RecordSeparator,
    #[error(
        "the message body must be an Engine.IO message packet (`4` followed by a Socket.IO \
         packet, e.g. `{EXAMPLE}`); it starts with {found}"
    )]
    NotAMessage { found: String },
    #[error(
        "the Socket.IO packet after the Engine.IO `4` is invalid: {error}; expected e.g. \
         `{EXAMPLE}`"
    )]
    InvalidSocketIo { error: sio::DecodeError },
    #[error(
        "a CONNECT packet (`40`) cannot be sent over REST: the service sends it when a client \
         joins a namespace; to emit an event send `42[/ns,][\"event\",...]`"
    )]
    Connect,
    #[error(
        "a {kind} declaring {attachments} attachment(s) cannot be sent over REST: its binary \
         attachments would have to follow as separate binary packets; send binary data as \
         base64 text inside a `42` EVENT"
    )]
    Attachments { kind: SioType, attachments: usize },
    #[error(
        "a DISCONNECT sent over REST may carry only `{{\"close\":true}}` or \
         `{{\"close\":false}}` after the namespace (e.g. `41/chat,{{\"close\":true}}`); got `{payload}`"
    )]
    DisconnectPayload { payload: String },
}

/// Most characters of a rejected payload quoted back in an error.
const MAX_QUOTED: usize = 64;

/// Validates a send body (docs/protocol.md §14 decision 12) declared as `kind`.
pub fn parse_payload(body: &[u8], kind: BodyKind) -> Result<SendPayload, PayloadError> {
    if kind == BodyKind::Binary {
        return Err(PayloadError::Binary);
    }
    let text = std::str::from_utf8(body).map_err(|_| PayloadError::NotUtf8)?;
    let Some(&first) = text.as_bytes().first() else {
        return Err(PayloadError::Empty);
    };
    if text.contains('\x1e') {
        return Err(PayloadError::RecordSeparator);
    }
    match EioType::from_digit(first) {
        Some(EioType::Message) => {}
        Some(other) => {
            return Err(PayloadError::NotAMessage {
                found: format!("`{}`, an Engine.IO {other} packet", other.digit()),
            });
        }
        None if first == b'"' => return Err(PayloadError::JsonString),
        None => {
            let c = text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(PayloadError::NotAMessage {
                found: format!("{c:?}, which is not an Engine.IO packet type digit"),
            });
        }
    }
    // The digit is one ASCII byte, so index 1 is a character boundary.
    let packet = &text[1..];
    let header =
        sio::parse_header(packet).map_err(|error| PayloadError::InvalidSocketIo { error })?;
    let namespace = header.nsp.to_owned();
    match header.kind {
        SioType::Connect => Err(PayloadError::Connect),
        SioType::Disconnect => {
            let close = disconnect_close(header.payload)?;
            Ok(SendPayload::Disconnect { namespace, close })
        }
        kind if header.attachments > 0 => Err(PayloadError::Attachments {
            kind,
            attachments: header.attachments,
        }),
        _ => {
            sio::decode(packet).map_err(|error| PayloadError::InvalidSocketIo { error })?;
            Ok(SendPayload::Packet {
                text: Arc::from(text),
                namespace,
            })
        }
    }
}

/// The `close` flag of a DISCONNECT payload: none, `{"close":true}` or `{"close":false}`.
fn disconnect_close(payload: &str) -> Result<bool, PayloadError> {
    if payload.trim().is_empty() {
        return Ok(false);
    }
    let refused = || PayloadError::DisconnectPayload {
        payload: crate::traffic::preview(payload, MAX_QUOTED),
    };
    let value: serde_json::Value = serde_json::from_str(payload).map_err(|_| refused())?;
    let object = value.as_object().ok_or_else(refused)?;
    match (object.len(), object.get("close")) {
        (1, Some(serde_json::Value::Bool(close))) => Ok(*close),
        _ => Err(refused()),
    }
}

/// What happened to one delivery.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Recipients whose queue took the command.
    pub delivered: usize,
    /// Connection ids whose queue was full or which had just ended.
    pub skipped: Vec<Arc<str>>,
}

/// Queues `payload` for each recipient, without waiting. Every recipient of a packet shares the
/// one `Arc<str>`.
pub fn deliver(payload: &SendPayload, recipients: &[(Arc<str>, ConnHandle)]) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    for (connection_id, handle) in recipients {
        let command = match payload {
            SendPayload::Packet { text, .. } => ConnCommand::Send(text.clone()),
            SendPayload::Disconnect { namespace, close } => ConnCommand::DisconnectSocket {
                namespace: namespace.clone(),
                close: *close,
            },
        };
        if handle.send(command) {
            report.delivered += 1;
        } else {
            report.skipped.push(connection_id.clone());
        }
    }
    report
}

#[cfg(test)]
mod tests;
