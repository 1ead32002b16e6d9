//! What a user event's webhook answer carries back to the client (docs/protocol.md §14 decision
//! 10), read from the [`WebhookResponse`] alone, so the Socket.IO layer that forwards it and the
//! contract lint that checks it agree. A 200 body is an Engine.IO payload (docs/protocol.md
//! §5.4): one packet, or several joined by the record separator; each is checked on its own, and
//! each valid one goes to the client as a packet of its own.

use super::WebhookResponse;
use crate::engineio::packet::Packet;
use crate::engineio::payload::RECORD_SEPARATOR;

/// A user event's answer, packet by packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The valid packets, in the body's order: each is sent to the client as its own packet.
    pub packets: Vec<String>,
    /// Why each other packet was not forwarded (a contract violation), in the body's order.
    pub violations: Vec<String>,
    /// The body held more than one packet.
    pub several: bool,
}

/// What a user event's answer sends back to the client: every packet of a 200 body that is an
/// Engine.IO message carrying a Socket.IO packet; nothing for 204, an empty 200 or a failure.
pub fn user_event_reply(response: &WebhookResponse) -> Reply {
    let mut reply = Reply::default();
    if !response.is_success() || response.status == 204 || response.body.is_empty() {
        return reply;
    }
    let Ok(text) = std::str::from_utf8(&response.body) else {
        reply
            .violations
            .push("the response body is not UTF-8 text".into());
        return reply;
    };
    let count = text.split(RECORD_SEPARATOR).count();
    reply.several = count > 1;
    for (index, packet) in text.split(RECORD_SEPARATOR).enumerate() {
        match check(packet) {
            Ok(()) => reply.packets.push(packet.to_owned()),
            Err(why) if count == 1 => reply.violations.push(format!("the response body {why}")),
            Err(why) => reply.violations.push(format!(
                "packet {} of the {count} in the response body {why}",
                index + 1
            )),
        }
    }
    reply
}

/// Why one packet may not go to the client; the message completes "the packet …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PacketError {
    #[error("is not a Socket.IO packet ({0}); an ack looks like `43/ns,<id>[…]`")]
    SocketIo(crate::socketio::packet::DecodeError),
    #[error("is an Engine.IO packet but not a message (it must start with `4`)")]
    NotMessage,
    #[error("is not an Engine.IO packet ({0})")]
    EngineIo(crate::engineio::packet::DecodeError),
}

/// Whether one packet may go to the client; `Err` completes "the packet …".
fn check(packet: &str) -> Result<(), PacketError> {
    // A message is read in place: decoding it would copy its data for nothing.
    if let Some(data) = packet.strip_prefix('4') {
        return crate::socketio::packet::parse_header(data)
            .map(|_| ())
            .map_err(PacketError::SocketIo);
    }
    match Packet::decode_text(packet) {
        Ok(_) => Err(PacketError::NotMessage),
        Err(e) => Err(PacketError::EngineIo(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_error_message_text() {
        assert_eq!(
            check("2").unwrap_err().to_string(),
            "is an Engine.IO packet but not a message (it must start with `4`)"
        );
    }
}
