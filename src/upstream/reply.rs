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
    pub packets: Packets,
    /// Why each other packet was not forwarded (a contract violation), in the body's order.
    pub violations: Vec<String>,
    /// The body held more than one packet.
    pub several: bool,
}

/// The packets an answer forwards, in order. The usual answer is one packet (an ack), kept
/// without a list of its own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packets {
    first: Option<String>,
    rest: Vec<String>,
}

impl Packets {
    /// Adds the next packet.
    pub fn push(&mut self, packet: String) {
        if self.first.is_none() {
            self.first = Some(packet);
        } else {
            self.rest.push(packet);
        }
    }
}

impl IntoIterator for Packets {
    type Item = String;
    type IntoIter = std::iter::Chain<std::option::IntoIter<String>, std::vec::IntoIter<String>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

/// What a user event's answer sends back to the client: every packet of a 200 body that is an
/// Engine.IO message carrying a Socket.IO packet; nothing for 204, an empty 200 or a failure.
pub fn user_event_reply(response: &WebhookResponse) -> Reply {
    let packets = ReplyPackets::read(response);
    let mut reply = Reply {
        several: packets.several(),
        ..Reply::default()
    };
    for packet in packets.iter() {
        match packet {
            Ok(packet) => reply.packets.push(packet.to_owned()),
            Err(why) => reply.violations.push(why),
        }
    }
    reply
}

/// A user event's answer read in place, for a reader that needs no copy of its packets (the
/// contract lint): the same split and the same checks as [`user_event_reply`].
#[derive(Debug, Clone, Copy)]
pub struct ReplyPackets<'a> {
    /// The body's text; `Err` when it is not UTF-8; empty when nothing goes back.
    text: Result<&'a str, ()>,
    /// How many packets the body holds.
    count: usize,
}

impl<'a> ReplyPackets<'a> {
    /// Reads the answer; a failure, 204 or an empty 200 holds no packet.
    pub fn read(response: &'a WebhookResponse) -> Self {
        if !response.is_success() || response.status == 204 || response.body.is_empty() {
            return ReplyPackets {
                text: Ok(""),
                count: 0,
            };
        }
        match std::str::from_utf8(&response.body) {
            Ok(text) => ReplyPackets {
                text: Ok(text),
                count: text.split(RECORD_SEPARATOR).count(),
            },
            Err(_) => ReplyPackets {
                text: Err(()),
                count: 0,
            },
        }
    }

    /// The body held more than one packet.
    pub fn several(&self) -> bool {
        self.count > 1
    }

    /// Each packet in the body's order: `Ok` with its text when it may go to the client, `Err`
    /// saying why not (a contract violation).
    pub fn iter(self) -> impl Iterator<Item = Result<&'a str, String>> {
        let count = self.count;
        let (text, not_utf8) = match self.text {
            Ok(text) => (text, None),
            Err(()) => ("", Some("the response body is not UTF-8 text".to_owned())),
        };
        let packets =
            text.split(RECORD_SEPARATOR)
                .take(count)
                .enumerate()
                .map(move |(index, packet)| match check(packet) {
                    Ok(()) => Ok(packet),
                    Err(why) if count == 1 => Err(format!("the response body {why}")),
                    Err(why) => Err(format!(
                        "packet {} of the {count} in the response body {why}",
                        index + 1
                    )),
                });
        not_utf8.map(Err).into_iter().chain(packets)
    }
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
