//! Engine.IO v4 packet codec: one packet to and from its wire text (docs/protocol.md §1).
//!
//! This module owns the single-packet forms only: a WebSocket text frame (`4hello`), a WebSocket
//! binary frame (raw bytes, always a binary `message`), and one HTTP long-polling record, where a
//! binary message is written `b<base64>`. Joining records into a polling body is
//! [`super::payload`]'s job; what a `message` carries (a Socket.IO packet) is the `socketio`
//! layer's. The codec is pure: no I/O, no logging, and decoding borrows its input and allocates
//! only the owned value it returns.
//!
//! Decisions where the protocol text is silent (they follow the reference `engine.io-parser`):
//! - `close`, `upgrade` and `noop` ignore any text after their digit (`1abc` is a close);
//! - `ping` and `pong` keep the text after the digit (`2probe`); `open` keeps its JSON unparsed;
//! - [`Packet::decode_text`] refuses the `b<base64>` form, which belongs to polling only; the
//!   reference parser also accepts it in WebSocket text frames, which no v4 client sends;
//! - base64 is the standard alphabet; the decoder accepts it with or without `=` padding (Node's
//!   `Buffer` is that lenient), the encoder always pads, as Node does.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, PAD, STANDARD};
use bytes::Bytes;

/// Standard base64 that decodes with or without `=` padding (encodes with it).
const STANDARD_PAD_INDIFFERENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The seven Engine.IO packet types and their single-digit wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: handshake data from the server.
    Open,
    /// `1`: the session is over.
    Close,
    /// `2`: heartbeat probe (server to client in v4) or the upgrade probe `2probe`.
    Ping,
    /// `3`: heartbeat answer, or `3probe` during an upgrade.
    Pong,
    /// `4`: application data (a Socket.IO packet); binary messages have no digit of their own.
    Message,
    /// `5`: the client switches the session to the WebSocket transport.
    Upgrade,
    /// `6`: does nothing; used to release a pending poll during an upgrade.
    Noop,
}

impl PacketType {
    /// The type whose wire digit is `byte` (`b'0'`..=`b'6'`).
    pub fn from_digit(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }

    /// The wire digit of this type.
    pub fn digit(self) -> char {
        match self {
            PacketType::Open => '0',
            PacketType::Close => '1',
            PacketType::Ping => '2',
            PacketType::Pong => '3',
            PacketType::Message => '4',
            PacketType::Upgrade => '5',
            PacketType::Noop => '6',
        }
    }

    /// The protocol name of this type (`open`, `close`, …), as the Engine.IO document spells it.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Open => "open",
            PacketType::Close => "close",
            PacketType::Ping => "ping",
            PacketType::Pong => "pong",
            PacketType::Message => "message",
            PacketType::Upgrade => "upgrade",
            PacketType::Noop => "noop",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + the handshake JSON, kept as text.
    Open(String),
    /// `1`.
    Close,
    /// `2` + optional data (`probe` during an upgrade).
    Ping(String),
    /// `3` + optional data.
    Pong(String),
    /// `4` + text: a text message.
    Message(String),
    /// A binary message: a raw WebSocket binary frame, or `b<base64>` in a polling payload.
    Binary(Bytes),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

/// Why some text is not an Engine.IO packet. Each variant is one rejection rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet (a text frame or a polling record) had no characters at all.
    #[error(
        "empty Engine.IO packet: expected a type digit 0-6 first (check for a doubled or \
         trailing \\x1e separator in a polling body)"
    )]
    Empty,
    /// The first character is not one of the seven type digits.
    #[error(
        "unknown Engine.IO packet type {0:?}: the first character must be a digit 0-6 (open, \
         close, ping, pong, message, upgrade, noop); is the client speaking EIO=4?"
    )]
    UnknownType(char),
    /// A `b<base64>` packet arrived where only the plain text forms are valid (a WebSocket text
    /// frame).
    #[error(
        "'b' (base64 binary) packets are only valid inside HTTP long-polling bodies; over \
         WebSocket, send binary data as a binary frame"
    )]
    UnexpectedBase64,
    /// The text after `b` is not standard base64.
    #[error(
        "binary packet is not valid base64 (standard alphabet, optional '=' padding): {reason}"
    )]
    InvalidBase64 {
        /// What the base64 decoder objected to.
        reason: String,
    },
    /// A long-polling body with no bytes.
    #[error("empty long-polling body: expected at least one packet")]
    EmptyPayload,
    /// A long-polling body larger than the session's `maxPayload`.
    #[error(
        "long-polling body is {len} bytes, over the maxPayload limit of {max} bytes advertised \
         in the handshake; send fewer packets per request or raise the limit"
    )]
    TooLarge {
        /// Size of the body received, in bytes.
        len: usize,
        /// The limit in force, in bytes.
        max: usize,
    },
    /// One record of a long-polling body is invalid; `index` counts from 0.
    #[error("record {index} of the long-polling body: {error}")]
    Record {
        /// Position of the bad record among the `\x1e`-separated records, from 0.
        index: usize,
        /// Why that record was refused.
        error: Box<DecodeError>,
    },
}

impl Packet {
    /// Decodes one text packet: a WebSocket text frame, or one long-polling record that is not
    /// in the `b<base64>` form (see [`Packet::decode_polling_record`] for that).
    pub fn decode_text(text: &str) -> Result<Packet, DecodeError> {
        let Some(&first) = text.as_bytes().first() else {
            return Err(DecodeError::Empty);
        };
        let Some(kind) = PacketType::from_digit(first) else {
            if first == b'b' {
                return Err(DecodeError::UnexpectedBase64);
            }
            // Not ASCII-only: report the whole first character, not its first byte.
            let c = text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(DecodeError::UnknownType(c));
        };
        // The digit is one ASCII byte, so index 1 is a character boundary.
        let data = &text[1..];
        Ok(match kind {
            PacketType::Open => Packet::Open(data.to_owned()),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(data.to_owned()),
            PacketType::Pong => Packet::Pong(data.to_owned()),
            PacketType::Message => Packet::Message(data.to_owned()),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// Decodes a WebSocket binary frame: always a binary message, carried raw (no type prefix).
    pub fn decode_binary(data: Bytes) -> Packet {
        Packet::Binary(data)
    }

    /// Decodes one long-polling record: `b<base64>` is a binary message, anything else is read
    /// by [`Packet::decode_text`].
    pub fn decode_polling_record(text: &str) -> Result<Packet, DecodeError> {
        match text.strip_prefix('b') {
            Some(encoded) => STANDARD_PAD_INDIFFERENT
                .decode(encoded)
                .map(|bytes| Packet::Binary(Bytes::from(bytes)))
                .map_err(|e| DecodeError::InvalidBase64 {
                    reason: e.to_string(),
                }),
            None => Packet::decode_text(text),
        }
    }

    /// Appends the text form of this packet to `out`. [`Packet::Binary`] is written in the
    /// long-polling form `b<base64>`; over WebSocket send its bytes as a binary frame instead.
    pub fn encode_text(&self, out: &mut String) {
        match self {
            Packet::Binary(bytes) => {
                out.push('b');
                STANDARD.encode_string(bytes, out);
            }
            Packet::Open(data)
            | Packet::Ping(data)
            | Packet::Pong(data)
            | Packet::Message(data) => {
                out.reserve(1 + data.len());
                out.push(self.packet_type().digit());
                out.push_str(data);
            }
            Packet::Close | Packet::Upgrade | Packet::Noop => out.push(self.packet_type().digit()),
        }
    }

    /// The text form of this packet as a new string (see [`Packet::encode_text`]).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.encode_text(&mut out);
        out
    }

    /// The Engine.IO type of this packet; a binary message is a [`PacketType::Message`].
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) | Packet::Binary(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(p: &Packet) -> String {
        p.to_text()
    }

    #[test]
    fn decodes_every_type() {
        let open = r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let cases = [
            (format!("0{open}"), Packet::Open(open.to_owned())),
            ("1".to_owned(), Packet::Close),
            ("2".to_owned(), Packet::Ping(String::new())),
            ("2probe".to_owned(), Packet::Ping("probe".to_owned())),
            ("3".to_owned(), Packet::Pong(String::new())),
            ("3probe".to_owned(), Packet::Pong("probe".to_owned())),
            ("4hello".to_owned(), Packet::Message("hello".to_owned())),
            ("4".to_owned(), Packet::Message(String::new())),
            (
                "40/admin,".to_owned(),
                Packet::Message("0/admin,".to_owned()),
            ),
            ("4é€😀".to_owned(), Packet::Message("é€😀".to_owned())),
            ("5".to_owned(), Packet::Upgrade),
            ("6".to_owned(), Packet::Noop),
        ];
        for (wire, packet) in cases {
            assert_eq!(Packet::decode_text(&wire), Ok(packet.clone()), "{wire}");
            assert_eq!(Packet::decode_polling_record(&wire), Ok(packet), "{wire}");
        }
    }

    #[test]
    fn encodes_every_type() {
        let cases = [
            (Packet::Open("{}".to_owned()), "0{}"),
            (Packet::Close, "1"),
            (Packet::Ping(String::new()), "2"),
            (Packet::Ping("probe".to_owned()), "2probe"),
            (Packet::Pong("probe".to_owned()), "3probe"),
            (Packet::Message("hello".to_owned()), "4hello"),
            (
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
                "bAQIDBA==",
            ),
            (Packet::Binary(Bytes::new()), "b"),
            (Packet::Upgrade, "5"),
            (Packet::Noop, "6"),
        ];
        for (packet, wire) in cases {
            assert_eq!(text(&packet), wire);
        }
    }

    #[test]
    fn encode_text_appends() {
        let mut out = String::from("x");
        Packet::Noop.encode_text(&mut out);
        Packet::Message("a".to_owned()).encode_text(&mut out);
        assert_eq!(out, "x64a");
    }

    #[test]
    fn trailing_data_on_dataless_types_is_ignored() {
        assert_eq!(Packet::decode_text("1bye"), Ok(Packet::Close));
        assert_eq!(Packet::decode_text("5x"), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text("6 "), Ok(Packet::Noop));
    }

    #[test]
    fn binary_frames_and_records() {
        let raw = Bytes::from_static(b"\x00\xffbin");
        assert_eq!(Packet::decode_binary(raw.clone()), Packet::Binary(raw));
        assert_eq!(
            Packet::decode_polling_record("bAQIDBA=="),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
        // Padding is optional on input.
        assert_eq!(
            Packet::decode_polling_record("bAQIDBA"),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
        assert_eq!(
            Packet::decode_polling_record("b"),
            Ok(Packet::Binary(Bytes::new()))
        );
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(Packet::decode_text(""), Err(DecodeError::Empty));
        assert_eq!(Packet::decode_polling_record(""), Err(DecodeError::Empty));
    }

    #[test]
    fn rejects_unknown_type() {
        assert_eq!(Packet::decode_text("7"), Err(DecodeError::UnknownType('7')));
        assert_eq!(
            Packet::decode_text("abc"),
            Err(DecodeError::UnknownType('a'))
        );
        assert_eq!(
            Packet::decode_text("é4"),
            Err(DecodeError::UnknownType('é'))
        );
        // EIO=3 polling records are length-prefixed.
        assert_eq!(
            Packet::decode_polling_record("x:4hi"),
            Err(DecodeError::UnknownType('x'))
        );
    }

    #[test]
    fn rejects_base64_in_text_frames() {
        assert_eq!(
            Packet::decode_text("bAQIDBA=="),
            Err(DecodeError::UnexpectedBase64)
        );
    }

    #[test]
    fn rejects_invalid_base64() {
        for bad in ["b!!!!", "bA", "bAQIDBA=x", "bAQ-_", "bAB=="] {
            assert!(
                matches!(
                    Packet::decode_polling_record(bad),
                    Err(DecodeError::InvalidBase64 { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn packet_type_digits_round_trip() {
        let names = [
            "open", "close", "ping", "pong", "message", "upgrade", "noop",
        ];
        for (name, d) in names.into_iter().zip(b'0'..) {
            let t = PacketType::from_digit(d).unwrap();
            assert_eq!((t.digit(), t.to_string()), (char::from(d), name.to_owned()));
        }
        assert_eq!(PacketType::from_digit(b'7'), None);
        assert_eq!(PacketType::Upgrade.to_string(), "upgrade");
        assert_eq!(
            Packet::Binary(Bytes::new()).packet_type(),
            PacketType::Message
        );
    }

    #[test]
    fn errors_read_well() {
        let e = DecodeError::UnknownType('x').to_string();
        assert!(e.contains("'x'") && e.contains("0-6"), "{e}");
    }

    /// Every valid packet; `Close`, `Upgrade` and `Noop` carry no data on purpose.
    pub(crate) fn any_packet() -> impl Strategy<Value = Packet> {
        prop_oneof![
            any::<String>().prop_map(Packet::Open),
            Just(Packet::Close),
            any::<String>().prop_map(Packet::Ping),
            any::<String>().prop_map(Packet::Pong),
            any::<String>().prop_map(Packet::Message),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|v| Packet::Binary(Bytes::from(v))),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
        ]
    }

    proptest! {
        #[test]
        fn polling_record_round_trip(p in any_packet()) {
            prop_assert_eq!(Packet::decode_polling_record(&text(&p)), Ok(p));
        }

        #[test]
        fn text_frame_round_trip(p in any_packet()) {
            match &p {
                Packet::Binary(b) => prop_assert_eq!(Packet::decode_binary(b.clone()), p),
                _ => prop_assert_eq!(Packet::decode_text(&text(&p)), Ok(p)),
            }
        }

        #[test]
        fn decoders_never_panic(s in any::<String>()) {
            let _ = Packet::decode_text(&s);
            let _ = Packet::decode_polling_record(&s);
        }
    }
}
