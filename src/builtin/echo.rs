//! `builtin:echo`: reading the user event a webhook receives and writing the ack for it.
//!
//! The service posts the client's packet exactly as it arrived (`42[/nsp,][id]["event",args…]`,
//! docs/protocol.md §5.4); the echo handler answers an event that carries an ack id with the same arguments
//! (`42/ns,7["ev",1,2]` → `43/ns,7[1,2]`) and an event without one with 204. The arguments are
//! cut out of the received text rather than re-serialized, so the ack carries them byte for
//! byte (number spelling, key order). [`super::chat`] reuses [`UserEvent`] for its broadcast.
//! Pure functions: no I/O.

use serde_json::Value;

use crate::socketio::packet::{self, Decoded, PacketType};

/// Why a webhook body is not a user event; each message ends with a preview of the body.
#[derive(Debug, thiserror::Error)]
pub enum UserEventError {
    #[error("the body is not an Engine.IO message (it should start with `4`): {0}")]
    NotEngineIo(String),
    #[error("{0}: {1}")]
    Malformed(packet::DecodeError, String),
    #[error("expected a Socket.IO EVENT (`42…`), got {0}: {1}")]
    NotAnEvent(&'static str, String),
    #[error("the event has no name (its payload must be [\"event\", …]): {0}")]
    NoName(String),
}

/// A user event as the webhook received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent<'a> {
    /// The namespace, `/` when none is written.
    pub nsp: &'a str,
    /// The ack id, if the client asked for an ack.
    pub id: Option<u64>,
    /// The JSON array `["event", args…]` as sent.
    pub payload: &'a str,
}

impl<'a> UserEvent<'a> {
    /// Reads a webhook body: an Engine.IO `message` carrying a Socket.IO `EVENT` whose payload is
    /// an array starting with the event name. The error says what was wrong, for the 400 body.
    pub fn parse(body: &'a str) -> Result<UserEvent<'a>, UserEventError> {
        let Some(text) = body.strip_prefix('4') else {
            return Err(UserEventError::NotEngineIo(preview(body)));
        };
        let malformed = |e: packet::DecodeError| UserEventError::Malformed(e, preview(body));
        let header = packet::parse_header(text).map_err(malformed)?;
        if header.kind != PacketType::Event {
            return Err(UserEventError::NotAnEvent(
                header.kind.name(),
                preview(body),
            ));
        }
        match packet::decode(text) {
            Ok(Decoded::Complete(p)) if packet::event_name(&p).is_some() => {}
            Ok(_) => return Err(UserEventError::NoName(preview(body))),
            Err(e) => return Err(malformed(e)),
        }
        Ok(UserEvent {
            nsp: header.nsp,
            id: header.id,
            payload: header.payload,
        })
    }

    /// The arguments after the event name, as a JSON array cut from the received text.
    pub fn args(&self) -> String {
        let inner = self.payload.trim().strip_prefix('[').unwrap_or_default();
        let mut values = serde_json::Deserializer::from_str(inner).into_iter::<Value>();
        // The payload was validated by `parse`, so the name is there; be lenient all the same.
        if values.next().and_then(Result::ok).is_none() {
            return "[]".into();
        }
        let rest = inner[values.byte_offset()..].trim_start();
        match rest.strip_prefix(',') {
            Some(args) => format!("[{}", args.trim_start()),
            None => "[]".into(),
        }
    }

    /// The ack packet (Engine.IO-framed) for this event, `None` when it has no ack id.
    pub fn ack(&self) -> Option<String> {
        let id = self.id?;
        Some(format!("43{}{id}{}", nsp_prefix(self.nsp), self.args()))
    }

    /// The same event without its ack id, Engine.IO-framed: what a broadcast sends.
    pub fn without_id(&self) -> String {
        format!("42{}{}", nsp_prefix(self.nsp), self.payload)
    }
}

/// `"/ns,"` for a namespace other than `/`, else nothing.
fn nsp_prefix(nsp: &str) -> String {
    if nsp == "/" || nsp.is_empty() {
        String::new()
    } else {
        format!("{nsp},")
    }
}

/// The start of a body, for error messages.
fn preview(body: &str) -> String {
    const MAX: usize = 80;
    match body.char_indices().nth(MAX) {
        Some((i, _)) => format!("`{}…`", &body[..i]),
        None => format!("`{body}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_event_error_message_text() {
        let message = |body| UserEvent::parse(body).unwrap_err().to_string();
        assert_eq!(
            message(r#"2["x"]"#),
            r#"the body is not an Engine.IO message (it should start with `4`): `2["x"]`"#
        );
        assert_eq!(
            message("40/chat,"),
            "expected a Socket.IO EVENT (`42…`), got CONNECT: `40/chat,`"
        );
        assert_eq!(
            message("42[]"),
            "EVENT payload is an empty array: its first element must be the event name: `42[]`"
        );
    }

    #[test]
    fn acks_carry_the_arguments_verbatim() {
        let e = UserEvent::parse(r#"42/ns,7["ev",1,2]"#).unwrap();
        assert_eq!(e.nsp, "/ns");
        assert_eq!(e.id, Some(7));
        assert_eq!(e.ack().as_deref(), Some("43/ns,7[1,2]"));
        let e = UserEvent::parse(r#"4213["hello", {"b":1,"a":1.0e2} , "x"]"#).unwrap();
        assert_eq!(e.ack().as_deref(), Some(r#"4313[{"b":1,"a":1.0e2} , "x"]"#));
        let e = UserEvent::parse(r#"42/chat,3[ "only" ]"#).unwrap();
        assert_eq!(e.ack().as_deref(), Some("43/chat,3[]"));
        let e = UserEvent::parse(r#"420[42,"x"]"#).unwrap();
        assert_eq!(e.ack().as_deref(), Some(r#"430["x"]"#));
    }

    #[test]
    fn events_without_an_id_have_no_ack() {
        let e = UserEvent::parse(r#"42["ev","a"]"#).unwrap();
        assert_eq!(e.id, None);
        assert_eq!(e.ack(), None);
        assert_eq!(e.without_id(), r#"42["ev","a"]"#);
        let e = UserEvent::parse(r#"42/chat,3["msg","x"]"#).unwrap();
        assert_eq!(e.without_id(), r#"42/chat,["msg","x"]"#);
    }

    #[test]
    fn other_bodies_are_refused_with_a_reason() {
        for (body, needle) in [
            ("", "Engine.IO message"),
            (r#"2["x"]"#, "Engine.IO message"),
            ("40/chat,", "EVENT"),
            (r#"43/chat,1["x"]"#, "EVENT"),
            ("42[1", ""),
            ("42[]", ""),
            ("42{}", ""),
        ] {
            let err = UserEvent::parse(body).unwrap_err().to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }
}
