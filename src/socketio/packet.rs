//! Socket.IO v5 packet codec, binary attachments included (docs/protocol.md §2).
//!
//! A Socket.IO packet is the text of one Engine.IO `message` without its `4`:
//! `<type>[<n-attachments>-][<nsp>,][<ack id>][<JSON>]`. Binary packets (`BINARY_EVENT`,
//! `BINARY_ACK`) replace each binary value in the JSON with `{"_placeholder":true,"num":N}` and
//! send the bytes as the next `n` Engine.IO binary messages. The `engineio` layer below hands
//! this module message text and binary messages; the Socket.IO session logic in the rest of
//! `socketio` decides what the packets mean. The codec is pure: no I/O, no logging.
//!
//! Two entry points read packets. [`parse_header`] is the cheap one for the per-message hot path:
//! it borrows everything, allocates nothing and leaves the JSON unread. [`decode`] does the full
//! job and enforces the validity rules of socket.io-parser's `isPayloadValid` / `isPacketValid`.
//!
//! Decisions where the protocol is silent or where this codec departs from socket.io-parser:
//! - An ack id is parsed after the namespace for every packet type, as socket.io-parser does;
//!   it is kept in [`Packet::id`] even on `CONNECT`, `DISCONNECT` and `CONNECT_ERROR`, where it
//!   means nothing; the session layer ignores it there. Ids have at most
//!   [`MAX_ACK_ID_DIGITS`] digits and must fit a `u64`.
//! - `EVENT`, `ACK` and `CONNECT_ERROR` must carry a payload. socket.io-parser's decoder lets a
//!   missing payload through, but its `isPacketValid` and every client reject such packets.
//! - A binary packet may declare `0-` attachments; it is then complete at once
//!   (socket.io-parser rejects a count below 1). At most [`MAX_ATTACHMENTS`] are accepted
//!   (socket.io-parser's default is 10).
//! - In a binary packet every object whose `_placeholder` is `true` is a placeholder: its `num`
//!   must be an integer below the declared count, each index must appear exactly once, and
//!   together they must account for every declared attachment. Outside binary packets such
//!   objects are plain data. Reassembly keeps the placeholders in [`Packet::data`] and puts the
//!   bytes, in order, in [`Packet::attachments`].
//! - A decoded binary packet keeps its wire type (`BinaryEvent`/`BinaryAck`); [`encode`] also
//!   promotes an `Event`/`Ack` that has attachments to its binary type, so callers need not.
//! - A namespace runs from `/` to the first `,` or to the end of the text (`40/admin` is valid),
//!   as in socket.io-parser; a namespace not starting with `/` cannot be told apart from the
//!   payload, which is then reported as [`DecodeError::NamespaceWithoutSlash`] when it looks like
//!   one.

use std::fmt::{self, Write as _};

use bytes::Bytes;
use serde_json::Value;

/// Most binary attachments one packet may declare; more is refused before any JSON is read.
pub const MAX_ATTACHMENTS: usize = 64;

// Placeholders are tracked in a `u64` bit set.
const _: () = assert!(MAX_ATTACHMENTS <= 64);

/// Most digits an ack id may have on the wire (`u64::MAX` has 20).
pub const MAX_ACK_ID_DIGITS: usize = 20;

/// Event names a client may not emit, because Socket.IO and Node's `EventEmitter` use them.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The seven Socket.IO packet types and their single-digit wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: join a namespace (client) or accept the join (server, with `{"sid":…}`).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event, `["name", args…]`.
    Event,
    /// `3`: the answer to an event that carried an ack id.
    Ack,
    /// `4`: the server refuses a namespace join.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an ack with binary attachments.
    BinaryAck,
}

impl PacketType {
    /// The type whose wire digit is `byte` (`b'0'`..=`b'6'`).
    pub fn from_digit(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// The wire digit of this type.
    pub fn digit(self) -> char {
        match self {
            PacketType::Connect => '0',
            PacketType::Disconnect => '1',
            PacketType::Event => '2',
            PacketType::Ack => '3',
            PacketType::ConnectError => '4',
            PacketType::BinaryEvent => '5',
            PacketType::BinaryAck => '6',
        }
    }

    /// The protocol name of this type (`CONNECT`, `BINARY_EVENT`, …).
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Event => "EVENT",
            PacketType::Ack => "ACK",
            PacketType::ConnectError => "CONNECT_ERROR",
            PacketType::BinaryEvent => "BINARY_EVENT",
            PacketType::BinaryAck => "BINARY_ACK",
        }
    }

    /// Whether packets of this type declare binary attachments (`<n>-` on the wire).
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }

    /// `BINARY_EVENT` for `EVENT`, `BINARY_ACK` for `ACK`; other types are unchanged.
    pub fn to_binary(self) -> PacketType {
        match self {
            PacketType::Event => PacketType::BinaryEvent,
            PacketType::Ack => PacketType::BinaryAck,
            other => other,
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One whole Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The packet type as sent on the wire.
    pub kind: PacketType,
    /// The namespace, `/` by default.
    pub nsp: String,
    /// The ack id, if any.
    pub id: Option<u64>,
    /// The JSON payload, if any; binary packets keep their placeholders here.
    pub data: Option<Value>,
    /// Binary attachments in placeholder order; empty for non-binary packets.
    pub attachments: Vec<Bytes>,
}

/// The framing of a packet, read without touching its JSON (see [`parse_header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The packet type.
    pub kind: PacketType,
    /// Declared attachment count; 0 for non-binary types.
    pub attachments: usize,
    /// The namespace (`/` when none is written).
    pub nsp: &'a str,
    /// The ack id, if any.
    pub id: Option<u64>,
    /// The rest of the text: the JSON payload, unvalidated; empty when there is none.
    pub payload: &'a str,
}

/// Why some text is not a valid Socket.IO packet. Each variant is one rejection rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The Engine.IO message was just `4`, with no Socket.IO packet in it.
    #[error("empty Socket.IO packet: expected a type digit 0-6 after the Engine.IO '4'")]
    Empty,
    /// The first character is not one of the seven type digits.
    #[error(
        "unknown Socket.IO packet type {0:?}: the first character after the Engine.IO '4' must \
         be a digit 0-6 (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, \
         BINARY_ACK); is the client speaking Socket.IO v5?"
    )]
    UnknownType(char),
    /// A binary type without a `<digits>-` attachment count after its digit.
    #[error(
        "{kind} must declare its attachment count right after the type digit, as \
         `<count>-` (e.g. `51-[...]`)"
    )]
    InvalidAttachmentCount {
        /// The binary packet type.
        kind: PacketType,
    },
    /// More attachments declared than [`MAX_ATTACHMENTS`].
    #[error("{kind} declares {declared} binary attachments; at most {max} are accepted per packet")]
    TooManyAttachments {
        /// The binary packet type.
        kind: PacketType,
        /// The count on the wire (saturated at `u64::MAX`).
        declared: u64,
        /// [`MAX_ATTACHMENTS`].
        max: usize,
    },
    /// The ack id has more than [`MAX_ACK_ID_DIGITS`] digits or does not fit a `u64`.
    #[error(
        "ack id has {digits} digits and does not fit an unsigned 64-bit integer; ack ids are \
         small counters"
    )]
    AckIdOutOfRange {
        /// How many digits the id had.
        digits: usize,
    },
    /// The text before a `,` looks like a namespace but does not start with `/`.
    #[error(
        "the text {found:?} before ',' is neither JSON nor a namespace: a namespace must \
         start with '/' (write \"/{found},\")"
    )]
    NamespaceWithoutSlash {
        /// The text before the first `,` (at most 64 characters of it).
        found: String,
    },
    /// The payload is not valid JSON.
    #[error("{kind} payload is not valid JSON: {reason}")]
    InvalidJson {
        /// The packet type.
        kind: PacketType,
        /// What the JSON parser objected to.
        reason: String,
    },
    /// An `EVENT`, `ACK` or `CONNECT_ERROR` without a payload.
    #[error("{kind} must carry a payload ({expected})")]
    MissingPayload {
        /// The packet type.
        kind: PacketType,
        /// What the payload should have been.
        expected: &'static str,
    },
    /// A `DISCONNECT` with a payload.
    #[error(
        "DISCONNECT must not carry a payload (the JavaScript client throws \"invalid payload\")"
    )]
    UnexpectedPayload,
    /// A payload of the wrong JSON kind for its packet type.
    #[error("{kind} payload must be {expected}")]
    InvalidPayload {
        /// The packet type.
        kind: PacketType,
        /// What the payload should have been.
        expected: &'static str,
    },
    /// An `EVENT` whose array is empty, so it has no event name.
    #[error("{kind} payload is an empty array: its first element must be the event name")]
    MissingEventName {
        /// `EVENT` or `BINARY_EVENT`.
        kind: PacketType,
    },
    /// An `EVENT` whose first element is neither a string nor a number.
    #[error("{kind} name (the first array element) must be a string or a number")]
    InvalidEventName {
        /// `EVENT` or `BINARY_EVENT`.
        kind: PacketType,
    },
    /// An `EVENT` named after one of [`RESERVED_EVENTS`].
    #[error(
        "event name {name:?} is reserved by Socket.IO (connect, connect_error, disconnect, \
         disconnecting, newListener, removeListener); pick another name"
    )]
    ReservedEventName {
        /// The reserved name that was used.
        name: String,
    },
    /// A placeholder whose `num` is missing or not a non-negative integer.
    #[error("binary placeholder needs an integer \"num\": {{\"_placeholder\":true,\"num\":N}}")]
    InvalidPlaceholder,
    /// A placeholder pointing past the declared attachments.
    #[error(
        "binary placeholder num {num} is out of range: the packet declares {declared} \
         attachment(s), numbered from 0"
    )]
    PlaceholderOutOfRange {
        /// The placeholder's `num`.
        num: u64,
        /// The declared attachment count.
        declared: usize,
    },
    /// Two placeholders with the same `num`.
    #[error("binary placeholder num {num} appears more than once")]
    DuplicatePlaceholder {
        /// The repeated `num`.
        num: u64,
    },
    /// The placeholders do not account for every declared attachment.
    #[error(
        "packet declares {declared} binary attachment(s) but its payload has {placeholders} \
         placeholder(s); they must match"
    )]
    AttachmentCountMismatch {
        /// Declared count (or, for [`validate`], attachments present).
        declared: usize,
        /// Placeholders found in the payload.
        placeholders: usize,
    },
    /// A namespace that cannot be written on the wire (only from [`validate`]).
    #[error("namespace {nsp:?} cannot be sent: it must start with '/' and must not contain ','")]
    InvalidNamespace {
        /// The offending namespace.
        nsp: String,
    },
}

/// The result of decoding a packet's text: the packet, or the part of it that waits for its
/// binary attachments.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A whole packet.
    Complete(Packet),
    /// A binary packet still waiting for attachments; feed it the next binary messages.
    AwaitingAttachments(PartialBinary),
}

/// A binary packet whose attachments are still arriving. The Engine.IO binary messages that
/// follow its text are its attachments, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialBinary {
    packet: Packet,
    expected: usize,
}

impl PartialBinary {
    /// Adds the next attachment; returns the whole packet once the last one has arrived.
    pub fn push(mut self, attachment: Bytes) -> Decoded {
        self.packet.attachments.push(attachment);
        if self.packet.attachments.len() >= self.expected {
            Decoded::Complete(self.packet)
        } else {
            Decoded::AwaitingAttachments(self)
        }
    }

    /// The packet so far: its data (with placeholders) and the attachments received.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// How many attachments the packet declared.
    #[cfg(test)]
    pub fn expected(&self) -> usize {
        self.expected
    }

    /// How many attachments have arrived.
    #[cfg(test)]
    pub fn received(&self) -> usize {
        self.packet.attachments.len()
    }

    /// Total bytes of the attachments received so far, for the caller's memory bound.
    #[cfg(test)]
    pub fn received_bytes(&self) -> usize {
        self.packet.attachments.iter().map(Bytes::len).sum()
    }
}

/// Reads the framing of a packet: type, attachment count, namespace and ack id. Borrows `text`,
/// allocates nothing and does not look at the JSON; use [`decode`] for a validated packet.
///
/// `text` is the Socket.IO packet without the Engine.IO `4`.
pub fn parse_header(text: &str) -> Result<Header<'_>, DecodeError> {
    let b = text.as_bytes();
    let Some(&first) = b.first() else {
        return Err(DecodeError::Empty);
    };
    let Some(kind) = PacketType::from_digit(first) else {
        let c = text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
        return Err(DecodeError::UnknownType(c));
    };
    // Every index below sits just after an ASCII byte, hence on a character boundary.
    let mut i = 1;

    let mut attachments = 0;
    if kind.is_binary() {
        let start = i;
        let mut declared: u64 = 0;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            declared = declared
                .saturating_mul(10)
                .saturating_add(u64::from(d - b'0'));
            i += 1;
        }
        if i == start || b.get(i) != Some(&b'-') {
            return Err(DecodeError::InvalidAttachmentCount { kind });
        }
        i += 1;
        attachments = usize::try_from(declared)
            .ok()
            .filter(|&n| n <= MAX_ATTACHMENTS)
            .ok_or(DecodeError::TooManyAttachments {
                kind,
                declared,
                max: MAX_ATTACHMENTS,
            })?;
    }

    let mut nsp = "/";
    if b.get(i) == Some(&b'/') {
        match text[i..].find(',') {
            Some(len) => {
                nsp = &text[i..i + len];
                i += len + 1;
            }
            None => {
                nsp = &text[i..];
                i = b.len();
            }
        }
    }

    let mut id = None;
    let start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i > start {
        let digits = i - start;
        if digits > MAX_ACK_ID_DIGITS {
            return Err(DecodeError::AckIdOutOfRange { digits });
        }
        id = Some(
            text[start..i]
                .parse::<u64>()
                .map_err(|_| DecodeError::AckIdOutOfRange { digits })?,
        );
    }

    Ok(Header {
        kind,
        attachments,
        nsp,
        id,
        payload: &text[i..],
    })
}

/// Decodes and validates one packet (`text` without the Engine.IO `4`). A binary packet that
/// declares attachments comes back as [`Decoded::AwaitingAttachments`]; its placeholders are
/// already checked against the declared count.
pub fn decode(text: &str) -> Result<Decoded, DecodeError> {
    let header = parse_header(text)?;
    let data = if header.payload.is_empty() {
        None
    } else {
        Some(parse_json(header.kind, header.payload)?)
    };
    check_data(header.kind, data.as_ref())?;
    if header.kind.is_binary() {
        check_placeholders(data.as_ref(), header.attachments)?;
    }
    let packet = Packet {
        kind: header.kind,
        nsp: header.nsp.to_owned(),
        id: header.id,
        data,
        attachments: Vec::with_capacity(header.attachments),
    };
    Ok(if header.attachments == 0 {
        Decoded::Complete(packet)
    } else {
        Decoded::AwaitingAttachments(PartialBinary {
            packet,
            expected: header.attachments,
        })
    })
}

/// Checks that a packet built in memory is one [`encode`] can write and [`decode`] would accept
/// back: namespace, payload rules, and for binary packets (or `EVENT`/`ACK` with attachments,
/// which [`encode`] promotes) placeholders matching the attachments present.
pub fn validate(p: &Packet) -> Result<(), DecodeError> {
    if !p.nsp.starts_with('/') || p.nsp.contains(',') {
        return Err(DecodeError::InvalidNamespace { nsp: p.nsp.clone() });
    }
    let kind = wire_kind(p);
    check_data(kind, p.data.as_ref())?;
    if kind.is_binary() {
        if p.attachments.len() > MAX_ATTACHMENTS {
            return Err(DecodeError::TooManyAttachments {
                kind,
                declared: p.attachments.len() as u64,
                max: MAX_ATTACHMENTS,
            });
        }
        check_placeholders(p.data.as_ref(), p.attachments.len())?;
    }
    Ok(())
}

/// Writes a packet: the text (without the Engine.IO `4`) and the attachments to send after it
/// as binary messages. `EVENT`/`ACK` packets with attachments are written as
/// `BINARY_EVENT`/`BINARY_ACK`. The namespace is written only when it is not `/` (or empty).
/// The packet is assumed valid (see [`validate`]); `decode(encode(p))` gives `p` back for every
/// valid packet whose kind already is its wire kind.
pub fn encode(p: &Packet) -> (String, Vec<Bytes>) {
    let kind = wire_kind(p);
    let mut out = String::with_capacity(16 + p.nsp.len());
    out.push(kind.digit());
    // `fmt::Write` into a `String` cannot fail.
    if kind.is_binary() {
        let _ = write!(out, "{}-", p.attachments.len());
    }
    if !p.nsp.is_empty() && p.nsp != "/" {
        out.push_str(&p.nsp);
        out.push(',');
    }
    if let Some(id) = p.id {
        let _ = write!(out, "{id}");
    }
    if let Some(data) = &p.data {
        // `Value`'s `Display` is the compact JSON serializer, writing straight into `out`.
        let _ = write!(out, "{data}");
    }
    (out, p.attachments.clone())
}

/// The event name of an `EVENT`/`BINARY_EVENT`: its first array element, a string, or a number
/// rendered as decimal text (integral floats without a fraction, as JavaScript prints them).
/// `None` for other packet types or a payload without a name.
pub fn event_name(p: &Packet) -> Option<String> {
    if !matches!(p.kind, PacketType::Event | PacketType::BinaryEvent) {
        return None;
    }
    match p.data.as_ref()?.as_array()?.first()? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_text(n)),
        _ => None,
    }
}

/// [`event_name`], taking the name out of the packet instead of copying it.
pub fn into_event_name(p: Packet) -> Option<String> {
    if !matches!(p.kind, PacketType::Event | PacketType::BinaryEvent) {
        return None;
    }
    let Value::Array(items) = p.data? else {
        return None;
    };
    match items.into_iter().next()? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(number_text(&n)),
        _ => None,
    }
}

/// A numeric event name as JavaScript prints it (`1.0` is `1`).
pub(super) fn number_text(n: &serde_json::Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64())
        && f.fract() == 0.0
        && f.abs() < 9_007_199_254_740_992.0
    {
        return format!("{}", f as i64);
    }
    n.to_string()
}

/// The type a packet is written as: `EVENT`/`ACK` with attachments become binary.
fn wire_kind(p: &Packet) -> PacketType {
    if p.attachments.is_empty() {
        p.kind
    } else {
        p.kind.to_binary()
    }
}

fn parse_json(kind: PacketType, payload: &str) -> Result<Value, DecodeError> {
    serde_json::from_str(payload).map_err(|e| {
        if let Some(found) = namespace_like_prefix(payload) {
            DecodeError::NamespaceWithoutSlash {
                found: found.chars().take(64).collect(),
            }
        } else {
            DecodeError::InvalidJson {
                kind,
                reason: e.to_string(),
            }
        }
    })
}

/// `admin` for a payload like `admin,{...}`: text before a `,` that starts with a letter and
/// holds no JSON punctuation, so it was most likely meant as a namespace.
fn namespace_like_prefix(payload: &str) -> Option<&str> {
    let (head, _) = payload.split_once(',')?;
    let starts_with_letter = head.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    let json_like =
        head.contains(['{', '[', '"', ':', ' ']) || matches!(head, "true" | "false" | "null");
    (starts_with_letter && !json_like).then_some(head)
}

const CONNECT_EXPECTED: &str = "a JSON object (or absent)";
const CONNECT_ERROR_EXPECTED: &str = "a JSON string or object, e.g. {\"message\":\"...\"}";
const EVENT_EXPECTED: &str = "a JSON array [\"event name\", args...]";
const ACK_EXPECTED: &str = "a JSON array of the ack arguments";

/// socket.io-parser's `isPayloadValid`, with payloads required where `isPacketValid` needs them.
fn check_data(kind: PacketType, data: Option<&Value>) -> Result<(), DecodeError> {
    match kind {
        PacketType::Connect => match data {
            None | Some(Value::Object(_)) => Ok(()),
            Some(_) => Err(DecodeError::InvalidPayload {
                kind,
                expected: CONNECT_EXPECTED,
            }),
        },
        PacketType::Disconnect => match data {
            None => Ok(()),
            Some(_) => Err(DecodeError::UnexpectedPayload),
        },
        PacketType::ConnectError => match data {
            Some(Value::String(_) | Value::Object(_)) => Ok(()),
            None => Err(DecodeError::MissingPayload {
                kind,
                expected: CONNECT_ERROR_EXPECTED,
            }),
            Some(_) => Err(DecodeError::InvalidPayload {
                kind,
                expected: CONNECT_ERROR_EXPECTED,
            }),
        },
        PacketType::Event | PacketType::BinaryEvent => match data {
            Some(Value::Array(items)) => match items.first() {
                None => Err(DecodeError::MissingEventName { kind }),
                Some(Value::Number(_)) => Ok(()),
                Some(Value::String(name)) if RESERVED_EVENTS.contains(&name.as_str()) => {
                    Err(DecodeError::ReservedEventName { name: name.clone() })
                }
                Some(Value::String(_)) => Ok(()),
                Some(_) => Err(DecodeError::InvalidEventName { kind }),
            },
            None => Err(DecodeError::MissingPayload {
                kind,
                expected: EVENT_EXPECTED,
            }),
            Some(_) => Err(DecodeError::InvalidPayload {
                kind,
                expected: EVENT_EXPECTED,
            }),
        },
        PacketType::Ack | PacketType::BinaryAck => match data {
            Some(Value::Array(_)) => Ok(()),
            None => Err(DecodeError::MissingPayload {
                kind,
                expected: ACK_EXPECTED,
            }),
            Some(_) => Err(DecodeError::InvalidPayload {
                kind,
                expected: ACK_EXPECTED,
            }),
        },
    }
}

/// Checks that the placeholders in `data` number `0..declared`, each exactly once.
fn check_placeholders(data: Option<&Value>, declared: usize) -> Result<(), DecodeError> {
    let mut seen: u64 = 0;
    let mut count = 0;
    if let Some(value) = data {
        walk_placeholders(value, declared, &mut seen, &mut count)?;
    }
    if count != declared {
        return Err(DecodeError::AttachmentCountMismatch {
            declared,
            placeholders: count,
        });
    }
    Ok(())
}

// Recursion depth is bounded by serde_json's own nesting limit (128) for decoded data.
fn walk_placeholders(
    value: &Value,
    declared: usize,
    seen: &mut u64,
    count: &mut usize,
) -> Result<(), DecodeError> {
    match value {
        Value::Array(items) => {
            for item in items {
                walk_placeholders(item, declared, seen, count)?;
            }
        }
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            let num = map
                .get("num")
                .and_then(Value::as_u64)
                .ok_or(DecodeError::InvalidPlaceholder)?;
            if num >= declared as u64 {
                return Err(DecodeError::PlaceholderOutOfRange { num, declared });
            }
            let bit = 1u64 << num;
            if *seen & bit != 0 {
                return Err(DecodeError::DuplicatePlaceholder { num });
            }
            *seen |= bit;
            *count += 1;
        }
        Value::Object(map) => {
            for item in map.values() {
                walk_placeholders(item, declared, seen, count)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn packet(kind: PacketType, nsp: &str, id: Option<u64>, data: Option<Value>) -> Packet {
        Packet {
            kind,
            nsp: nsp.to_owned(),
            id,
            data,
            attachments: Vec::new(),
        }
    }

    fn complete(text: &str) -> Packet {
        match decode(text) {
            Ok(Decoded::Complete(p)) => p,
            other => panic!("{text}: expected a complete packet, got {other:?}"),
        }
    }

    fn partial(text: &str) -> PartialBinary {
        match decode(text) {
            Ok(Decoded::AwaitingAttachments(p)) => p,
            other => panic!("{text}: expected a partial packet, got {other:?}"),
        }
    }

    fn encoded(p: &Packet) -> String {
        encode(p).0
    }

    /// The docs/protocol.md §2 wire examples carry the Engine.IO `4`; the codec does not.
    fn strip_eio(wire: &str) -> &str {
        wire.strip_prefix('4').unwrap()
    }

    #[test]
    fn spec_connect_examples() {
        let cases = [
            ("40", packet(PacketType::Connect, "/", None, None)),
            (
                "40/admin,",
                packet(PacketType::Connect, "/admin", None, None),
            ),
            (
                r#"40{"token":"123"}"#,
                packet(PacketType::Connect, "/", None, Some(json!({"token":"123"}))),
            ),
            (
                r#"40/admin,{"token":"abc"}"#,
                packet(
                    PacketType::Connect,
                    "/admin",
                    None,
                    Some(json!({"token":"abc"})),
                ),
            ),
            (
                r#"40{"sid":"Xa1"}"#,
                packet(PacketType::Connect, "/", None, Some(json!({"sid":"Xa1"}))),
            ),
        ];
        for (wire, p) in cases {
            assert_eq!(complete(strip_eio(wire)), p, "{wire}");
            assert_eq!(encoded(&p), strip_eio(wire));
        }
    }

    #[test]
    fn spec_event_and_ack_examples() {
        let cases = [
            (
                r#"42["foo"]"#,
                packet(PacketType::Event, "/", None, Some(json!(["foo"]))),
            ),
            (
                r#"42/admin,["bar",1]"#,
                packet(PacketType::Event, "/admin", None, Some(json!(["bar", 1]))),
            ),
            (
                r#"42/admin,13["foo"]"#,
                packet(PacketType::Event, "/admin", Some(13), Some(json!(["foo"]))),
            ),
            (
                r#"43/admin,13["bar"]"#,
                packet(PacketType::Ack, "/admin", Some(13), Some(json!(["bar"]))),
            ),
            (
                r#"4313["x"]"#,
                packet(PacketType::Ack, "/", Some(13), Some(json!(["x"]))),
            ),
            (
                "4313[]",
                packet(PacketType::Ack, "/", Some(13), Some(json!([]))),
            ),
        ];
        for (wire, p) in cases {
            assert_eq!(complete(strip_eio(wire)), p, "{wire}");
            assert_eq!(encoded(&p), strip_eio(wire));
        }
    }

    #[test]
    fn spec_disconnect_and_connect_error_examples() {
        let cases = [
            ("41", packet(PacketType::Disconnect, "/", None, None)),
            (
                "41/admin,",
                packet(PacketType::Disconnect, "/admin", None, None),
            ),
            (
                r#"44/random,{"message":"Invalid namespace"}"#,
                packet(
                    PacketType::ConnectError,
                    "/random",
                    None,
                    Some(json!({"message":"Invalid namespace"})),
                ),
            ),
            (
                r#"44/admin,{"message":"Not authorized"}"#,
                packet(
                    PacketType::ConnectError,
                    "/admin",
                    None,
                    Some(json!({"message":"Not authorized"})),
                ),
            ),
            (
                r#"44"v2 style""#,
                packet(PacketType::ConnectError, "/", None, Some(json!("v2 style"))),
            ),
        ];
        for (wire, p) in cases {
            assert_eq!(complete(strip_eio(wire)), p, "{wire}");
            assert_eq!(encoded(&p), strip_eio(wire));
        }
    }

    #[test]
    fn spec_binary_event_example() {
        let wire = r#"451-["baz",{"_placeholder":true,"num":0}]"#;
        let part = partial(strip_eio(wire));
        assert_eq!((part.expected(), part.received()), (1, 0));
        assert_eq!(part.packet().kind, PacketType::BinaryEvent);
        assert_eq!(event_name(part.packet()).as_deref(), Some("baz"));
        let bytes = Bytes::from_static(&[1, 2, 3]);
        let Decoded::Complete(p) = part.push(bytes.clone()) else {
            panic!("one attachment completes the packet")
        };
        let expected = Packet {
            kind: PacketType::BinaryEvent,
            nsp: "/".to_owned(),
            id: None,
            data: Some(json!(["baz", {"_placeholder": true, "num": 0}])),
            attachments: vec![bytes.clone()],
        };
        assert_eq!(p, expected);
        assert_eq!(encode(&p), (strip_eio(wire).to_owned(), vec![bytes]));
    }

    #[test]
    fn spec_binary_ack_example() {
        let wire = r#"461-/admin,1[{"_placeholder":true,"num":0}]"#;
        let part = partial(strip_eio(wire));
        assert_eq!(part.packet().nsp, "/admin");
        assert_eq!(part.packet().id, Some(1));
        let Decoded::Complete(p) = part.push(Bytes::from_static(b"x")) else {
            panic!("one attachment completes the packet")
        };
        assert_eq!(p.kind, PacketType::BinaryAck);
        assert_eq!(p.attachments, vec![Bytes::from_static(b"x")]);
        assert_eq!(encode(&p).0, strip_eio(wire));
    }

    #[test]
    fn binary_reassembly_keeps_order() {
        let text =
            r#"52-/ns,7["up",{"b":{"_placeholder":true,"num":1}},[{"_placeholder":true,"num":0}]]"#;
        let part = partial(text);
        let Decoded::AwaitingAttachments(part) = part.push(Bytes::from_static(b"zero")) else {
            panic!("two attachments expected")
        };
        assert_eq!((part.received(), part.received_bytes()), (1, 4));
        let Decoded::Complete(p) = part.push(Bytes::from_static(b"one")) else {
            panic!("second attachment completes")
        };
        assert_eq!(
            p.attachments,
            vec![Bytes::from_static(b"zero"), Bytes::from_static(b"one")]
        );
        assert_eq!(encoded(&p), decode_round_text(text));
    }

    /// serde_json sorts object keys; compare against the re-encoded decode of `text`.
    fn decode_round_text(text: &str) -> String {
        let Ok(Decoded::AwaitingAttachments(part)) = decode(text) else {
            panic!("{text}")
        };
        let mut p = part.packet().clone();
        p.attachments = vec![Bytes::new(); part.expected()];
        encoded(&p)
    }

    #[test]
    fn binary_with_zero_attachments_is_complete() {
        let p = complete(r#"50-["bin"]"#);
        assert_eq!(p.kind, PacketType::BinaryEvent);
        assert!(p.attachments.is_empty());
        assert_eq!(encoded(&p), r#"50-["bin"]"#);
        assert_eq!(complete("60-[]").kind, PacketType::BinaryAck);
    }

    #[test]
    fn encode_promotes_event_with_attachments() {
        let p = Packet {
            kind: PacketType::Event,
            nsp: "/chat".to_owned(),
            id: Some(4),
            data: Some(json!(["file", {"_placeholder": true, "num": 0}])),
            attachments: vec![Bytes::from_static(b"data")],
        };
        assert_eq!(validate(&p), Ok(()));
        let (text, atts) = encode(&p);
        assert_eq!(text, r#"51-/chat,4["file",{"_placeholder":true,"num":0}]"#);
        assert_eq!(atts, p.attachments);
        let mut ack = p.clone();
        ack.kind = PacketType::Ack;
        assert!(encoded(&ack).starts_with("61-/chat,4["));
    }

    #[test]
    fn encode_omits_root_and_empty_namespace() {
        let mut p = packet(PacketType::Connect, "", None, None);
        assert_eq!(encoded(&p), "0");
        p.nsp = "/".to_owned();
        assert_eq!(encoded(&p), "0");
    }

    #[test]
    fn ack_id_on_any_type_is_kept() {
        assert_eq!(
            complete("1/admin,5"),
            packet(PacketType::Disconnect, "/admin", Some(5), None)
        );
        assert_eq!(
            complete(r#"07{"a":1}"#),
            packet(PacketType::Connect, "/", Some(7), Some(json!({"a":1})))
        );
        assert_eq!(complete(&format!("2{}[0]", u64::MAX)).id, Some(u64::MAX));
        // Leading zeros read as in JavaScript's Number().
        assert_eq!(complete(r#"2007["a"]"#).id, Some(7));
    }

    #[test]
    fn namespace_may_end_the_text() {
        assert_eq!(
            complete("0/admin"),
            packet(PacketType::Connect, "/admin", None, None)
        );
        assert_eq!(complete("0/,").nsp, "/");
    }

    #[test]
    fn header_is_borrowed_and_unvalidated() {
        let text = r#"51-/admin,13["x",{"_placeholder":true,"num":0}]"#;
        assert_eq!(
            parse_header(text),
            Ok(Header {
                kind: PacketType::BinaryEvent,
                attachments: 1,
                nsp: "/admin",
                id: Some(13),
                payload: r#"["x",{"_placeholder":true,"num":0}]"#,
            })
        );
        assert_eq!(
            parse_header("2not json"),
            Ok(Header {
                kind: PacketType::Event,
                attachments: 0,
                nsp: "/",
                id: None,
                payload: "not json",
            })
        );
        assert_eq!(parse_header("0").map(|h| (h.nsp, h.payload)), Ok(("/", "")));
    }

    #[test]
    fn event_names() {
        let name = |data: Value| event_name(&packet(PacketType::Event, "/", None, Some(data)));
        assert_eq!(name(json!(["chat", 1])).as_deref(), Some("chat"));
        assert_eq!(name(json!([42])).as_deref(), Some("42"));
        assert_eq!(name(json!([-3])).as_deref(), Some("-3"));
        assert_eq!(name(json!([2.0])).as_deref(), Some("2"));
        assert_eq!(name(json!([1.5])).as_deref(), Some("1.5"));
        assert_eq!(name(json!([{}])), None);
        assert_eq!(name(json!([])), None);
        let binary = Packet {
            kind: PacketType::BinaryEvent,
            attachments: vec![Bytes::new()],
            ..packet(
                PacketType::BinaryEvent,
                "/",
                None,
                Some(json!(["b", {"_placeholder": true, "num": 0}])),
            )
        };
        assert_eq!(event_name(&binary).as_deref(), Some("b"));
        assert_eq!(
            event_name(&packet(PacketType::Event, "/", None, None)),
            None
        );
        assert_eq!(
            event_name(&packet(PacketType::Ack, "/", Some(1), Some(json!(["x"])))),
            None
        );
    }

    #[test]
    fn into_event_name_takes_the_same_name_as_event_name() {
        for (kind, data) in [
            (PacketType::Event, Some(json!(["chat", 1]))),
            (PacketType::Event, Some(json!([42]))),
            (PacketType::Event, Some(json!([2.0]))),
            (PacketType::Event, Some(json!([{}]))),
            (PacketType::Event, Some(json!([]))),
            (PacketType::Event, Some(json!({"a": 1}))),
            (PacketType::Event, None),
            (PacketType::BinaryEvent, Some(json!(["b"]))),
            (PacketType::Ack, Some(json!(["x"]))),
        ] {
            let p = packet(kind, "/", None, data);
            assert_eq!(into_event_name(p.clone()), event_name(&p), "{p:?}");
        }
    }

    #[test]
    fn rejects_empty_and_unknown_type() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(parse_header(""), Err(DecodeError::Empty));
        assert_eq!(decode("7"), Err(DecodeError::UnknownType('7')));
        assert_eq!(decode("x[]"), Err(DecodeError::UnknownType('x')));
        assert_eq!(decode("é"), Err(DecodeError::UnknownType('é')));
    }

    #[test]
    fn rejects_bad_attachment_counts() {
        let bad = |kind| Err(DecodeError::InvalidAttachmentCount { kind });
        assert_eq!(decode(r#"5["a"]"#), bad(PacketType::BinaryEvent));
        assert_eq!(decode(r#"5-["a"]"#), bad(PacketType::BinaryEvent));
        assert_eq!(decode("61[]"), bad(PacketType::BinaryAck));
        assert_eq!(decode("6"), bad(PacketType::BinaryAck));
        assert_eq!(decode("5a-[]"), bad(PacketType::BinaryEvent));
    }

    #[test]
    fn rejects_too_many_attachments() {
        assert_eq!(
            parse_header("565-[]"),
            Err(DecodeError::TooManyAttachments {
                kind: PacketType::BinaryEvent,
                declared: 65,
                max: MAX_ATTACHMENTS
            })
        );
        assert_eq!(
            parse_header("699999999999999999999999-[]"),
            Err(DecodeError::TooManyAttachments {
                kind: PacketType::BinaryAck,
                declared: u64::MAX,
                max: MAX_ATTACHMENTS
            })
        );
        let at_limit: Vec<String> = (0..MAX_ATTACHMENTS)
            .map(|n| format!(r#"{{"_placeholder":true,"num":{n}}}"#))
            .collect();
        let text = format!("564-[\"many\",{}]", at_limit.join(","));
        assert_eq!(partial(&text).expected(), MAX_ATTACHMENTS);
    }

    #[test]
    fn rejects_out_of_range_ack_ids() {
        assert_eq!(
            decode(r#"218446744073709551616["a"]"#),
            Err(DecodeError::AckIdOutOfRange { digits: 20 })
        );
        let long = format!("2{}[\"a\"]", "1".repeat(1000));
        assert_eq!(
            decode(&long),
            Err(DecodeError::AckIdOutOfRange { digits: 1000 })
        );
        assert_eq!(
            decode(r#"2000000000000000000001["a"]"#),
            Err(DecodeError::AckIdOutOfRange { digits: 21 })
        );
    }

    #[test]
    fn rejects_namespace_without_slash() {
        assert_eq!(
            decode("0admin,"),
            Err(DecodeError::NamespaceWithoutSlash {
                found: "admin".to_owned()
            })
        );
        assert_eq!(
            decode(r#"2chat,["hi"]"#),
            Err(DecodeError::NamespaceWithoutSlash {
                found: "chat".to_owned()
            })
        );
        let msg = decode("0admin,").unwrap_err().to_string();
        assert!(msg.contains("\"/admin,\""), "{msg}");
    }

    #[test]
    fn rejects_invalid_json() {
        for text in ["2[", r#"2["a"]x"#, "0{a}", "2true,1", r#"2["a"],"#] {
            assert!(
                matches!(decode(text), Err(DecodeError::InvalidJson { .. })),
                "{text}: {:?}",
                decode(text)
            );
        }
    }

    #[test]
    fn rejects_connect_payload_that_is_not_an_object() {
        for text in ["0[]", r#"0"s""#, "0/admin,[1]", "0null"] {
            assert_eq!(
                decode(text),
                Err(DecodeError::InvalidPayload {
                    kind: PacketType::Connect,
                    expected: CONNECT_EXPECTED
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_disconnect_payload() {
        for text in ["1{}", "1/admin,[]", r#"1"bye""#] {
            assert_eq!(decode(text), Err(DecodeError::UnexpectedPayload), "{text}");
        }
    }

    #[test]
    fn rejects_bad_connect_error_payloads() {
        assert_eq!(
            decode("4/admin,"),
            Err(DecodeError::MissingPayload {
                kind: PacketType::ConnectError,
                expected: CONNECT_ERROR_EXPECTED
            })
        );
        // Digits after the type are an ack id, never a JSON number: `41` has no payload.
        assert_eq!(
            decode("41"),
            Err(DecodeError::MissingPayload {
                kind: PacketType::ConnectError,
                expected: CONNECT_ERROR_EXPECTED
            })
        );
        for text in ["4[]", "4true", "4null", "4/x,1[]"] {
            assert_eq!(
                decode(text),
                Err(DecodeError::InvalidPayload {
                    kind: PacketType::ConnectError,
                    expected: CONNECT_ERROR_EXPECTED
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_event_payloads() {
        assert_eq!(
            decode("2"),
            Err(DecodeError::MissingPayload {
                kind: PacketType::Event,
                expected: EVENT_EXPECTED
            })
        );
        assert_eq!(
            decode("2/admin,13"),
            Err(DecodeError::MissingPayload {
                kind: PacketType::Event,
                expected: EVENT_EXPECTED
            })
        );
        assert_eq!(
            decode(r#"2{"a":1}"#),
            Err(DecodeError::InvalidPayload {
                kind: PacketType::Event,
                expected: EVENT_EXPECTED
            })
        );
        assert_eq!(
            decode("2[]"),
            Err(DecodeError::MissingEventName {
                kind: PacketType::Event
            })
        );
        assert_eq!(
            decode("50-[]"),
            Err(DecodeError::MissingEventName {
                kind: PacketType::BinaryEvent
            })
        );
        for text in ["2[null]", "2[[\"a\"]]", "2[{}]", "2[true]"] {
            assert_eq!(
                decode(text),
                Err(DecodeError::InvalidEventName {
                    kind: PacketType::Event
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_every_reserved_event_name() {
        for name in RESERVED_EVENTS {
            assert_eq!(
                decode(&format!(r#"2["{name}",1]"#)),
                Err(DecodeError::ReservedEventName {
                    name: name.to_owned()
                })
            );
            assert_eq!(
                decode(&format!(r#"50-/x,["{name}"]"#)),
                Err(DecodeError::ReservedEventName {
                    name: name.to_owned()
                })
            );
        }
        // Only the exact names are reserved.
        assert!(decode(r#"2["Connect"]"#).is_ok());
        assert!(decode(r#"2["connected"]"#).is_ok());
    }

    #[test]
    fn rejects_bad_ack_payloads() {
        assert_eq!(
            decode("313"),
            Err(DecodeError::MissingPayload {
                kind: PacketType::Ack,
                expected: ACK_EXPECTED
            })
        );
        assert_eq!(
            decode(r#"31{"a":1}"#),
            Err(DecodeError::InvalidPayload {
                kind: PacketType::Ack,
                expected: ACK_EXPECTED
            })
        );
        assert_eq!(
            decode(r#"60-1"x""#),
            Err(DecodeError::InvalidPayload {
                kind: PacketType::BinaryAck,
                expected: ACK_EXPECTED
            })
        );
    }

    #[test]
    fn rejects_placeholder_mismatches() {
        assert_eq!(
            decode(r#"52-["a",{"_placeholder":true,"num":0}]"#),
            Err(DecodeError::AttachmentCountMismatch {
                declared: 2,
                placeholders: 1
            })
        );
        assert_eq!(
            decode(r#"50-["a",{"_placeholder":true,"num":0}]"#),
            Err(DecodeError::PlaceholderOutOfRange {
                num: 0,
                declared: 0
            })
        );
        assert_eq!(
            decode(r#"51-["a",{"_placeholder":true,"num":1}]"#),
            Err(DecodeError::PlaceholderOutOfRange {
                num: 1,
                declared: 1
            })
        );
        assert_eq!(
            decode(r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#),
            Err(DecodeError::DuplicatePlaceholder { num: 0 })
        );
        for bad_num in ["", r#","num":-1"#, r#","num":0.5"#, r#","num":"0""#] {
            assert_eq!(
                decode(&format!(r#"51-["a",{{"_placeholder":true{bad_num}}}]"#)),
                Err(DecodeError::InvalidPlaceholder),
                "{bad_num}"
            );
        }
        // `_placeholder` other than `true` is ordinary data.
        assert_eq!(
            decode(r#"51-["a",{"_placeholder":false,"num":0}]"#),
            Err(DecodeError::AttachmentCountMismatch {
                declared: 1,
                placeholders: 0
            })
        );
    }

    #[test]
    fn placeholders_outside_binary_packets_are_data() {
        let p = complete(r#"2["a",{"_placeholder":true,"num":9}]"#);
        assert_eq!(p.kind, PacketType::Event);
        assert!(p.attachments.is_empty());
    }

    #[test]
    fn validate_checks_built_packets() {
        assert_eq!(
            validate(&packet(PacketType::Connect, "admin", None, None)),
            Err(DecodeError::InvalidNamespace {
                nsp: "admin".to_owned()
            })
        );
        assert_eq!(
            validate(&packet(PacketType::Connect, "/a,b", None, None)),
            Err(DecodeError::InvalidNamespace {
                nsp: "/a,b".to_owned()
            })
        );
        assert_eq!(
            validate(&packet(PacketType::Disconnect, "/", None, Some(json!({})))),
            Err(DecodeError::UnexpectedPayload)
        );
        let mut p = packet(
            PacketType::BinaryEvent,
            "/",
            None,
            Some(json!(["a", {"_placeholder": true, "num": 0}])),
        );
        assert_eq!(
            validate(&p),
            Err(DecodeError::PlaceholderOutOfRange {
                num: 0,
                declared: 0
            })
        );
        p.attachments.push(Bytes::new());
        assert_eq!(validate(&p), Ok(()));
        p.attachments = vec![Bytes::new(); MAX_ATTACHMENTS + 1];
        assert!(matches!(
            validate(&p),
            Err(DecodeError::TooManyAttachments { .. })
        ));
    }

    #[test]
    fn packet_type_digits_round_trip() {
        for d in b'0'..=b'6' {
            let t = PacketType::from_digit(d).unwrap();
            assert_eq!(t.digit() as u32, u32::from(d));
        }
        assert_eq!(PacketType::from_digit(b'7'), None);
        assert_eq!(PacketType::BinaryAck.to_string(), "BINARY_ACK");
        assert_eq!(PacketType::Event.to_binary(), PacketType::BinaryEvent);
        assert_eq!(PacketType::Connect.to_binary(), PacketType::Connect);
    }

    // ---- property tests: valid packets only ----

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Exact binary fractions survive serde_json's float parsing unchanged.
            (-1000i32..1000).prop_map(|n| Value::from(f64::from(n) / 4.0)),
            any::<String>().prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_]{0,6}", inner, 0..4).prop_map(|m| {
                    Value::Object(m.into_iter().filter(|(k, _)| k != "_placeholder").collect())
                }),
            ]
        })
    }

    fn json_object() -> impl Strategy<Value = Value> {
        proptest::collection::btree_map("\\PC{0,6}", json_value(), 0..4).prop_map(|m| {
            Value::Object(m.into_iter().filter(|(k, _)| k != "_placeholder").collect())
        })
    }

    fn nsp() -> impl Strategy<Value = String> {
        prop_oneof![Just("/".to_owned()), "/[^,]{0,12}"]
    }

    fn event_head() -> impl Strategy<Value = Value> {
        prop_oneof![
            "\\PC{0,12}"
                .prop_filter("not reserved", |s| !RESERVED_EVENTS.contains(&s.as_str()))
                .prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
        ]
    }

    fn event_data() -> impl Strategy<Value = Value> {
        (event_head(), proptest::collection::vec(json_value(), 0..4)).prop_map(|(head, rest)| {
            let mut items = vec![head];
            items.extend(rest);
            Value::Array(items)
        })
    }

    fn ack_data() -> impl Strategy<Value = Value> {
        proptest::collection::vec(json_value(), 0..4).prop_map(Value::Array)
    }

    fn placeholder(num: usize) -> Value {
        serde_json::json!({"_placeholder": true, "num": num})
    }

    /// Binary packets: placeholders in shuffled order, some nested in objects.
    fn binary_packet(kind: PacketType) -> impl Strategy<Value = Packet> {
        let base = if kind == PacketType::BinaryEvent {
            event_data().boxed()
        } else {
            ack_data().boxed()
        };
        (
            nsp(),
            any::<Option<u64>>(),
            base,
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..5),
            any::<bool>(),
        )
            .prop_flat_map(move |(nsp, id, base, blobs, nest)| {
                let order: Vec<usize> = (0..blobs.len()).collect();
                (
                    Just((nsp, id, base, blobs, nest)),
                    Just(order).prop_shuffle(),
                )
            })
            .prop_map(move |((nsp, id, base, blobs, nest), order)| {
                let Value::Array(mut items) = base else {
                    unreachable!("event and ack data are arrays")
                };
                for num in order {
                    let ph = placeholder(num);
                    items.push(if nest {
                        serde_json::json!({"file": ph})
                    } else {
                        ph
                    });
                }
                Packet {
                    kind,
                    nsp,
                    id,
                    data: Some(Value::Array(items)),
                    attachments: blobs.into_iter().map(Bytes::from).collect(),
                }
            })
    }

    fn any_packet() -> impl Strategy<Value = Packet> {
        let simple = |kind: PacketType, data: BoxedStrategy<Option<Value>>| {
            (nsp(), any::<Option<u64>>(), data).prop_map(move |(nsp, id, data)| Packet {
                kind,
                nsp,
                id,
                data,
                attachments: Vec::new(),
            })
        };
        prop_oneof![
            simple(
                PacketType::Connect,
                proptest::option::of(json_object()).boxed()
            ),
            simple(PacketType::Disconnect, Just(None).boxed()),
            simple(PacketType::Event, event_data().prop_map(Some).boxed()),
            simple(PacketType::Ack, ack_data().prop_map(Some).boxed()),
            simple(
                PacketType::ConnectError,
                prop_oneof![any::<String>().prop_map(Value::String), json_object()]
                    .prop_map(Some)
                    .boxed()
            ),
            binary_packet(PacketType::BinaryEvent),
            binary_packet(PacketType::BinaryAck),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(p in any_packet()) {
            prop_assert_eq!(validate(&p), Ok(()));
            let (text, attachments) = encode(&p);
            prop_assert_eq!(&attachments, &p.attachments);
            let header = parse_header(&text).unwrap();
            prop_assert_eq!(header.kind, p.kind);
            prop_assert_eq!(header.attachments, p.attachments.len());
            prop_assert_eq!(header.nsp, p.nsp.as_str());
            prop_assert_eq!(header.id, p.id);
            let mut decoded = decode(&text).unwrap();
            for a in attachments {
                match decoded {
                    Decoded::AwaitingAttachments(part) => decoded = part.push(a),
                    Decoded::Complete(_) => prop_assert!(false, "complete before its attachments"),
                }
            }
            prop_assert_eq!(decoded, Decoded::Complete(p));
        }

        #[test]
        fn decoders_never_panic(s in any::<String>()) {
            let _ = parse_header(&s);
            let _ = decode(&s);
        }

        #[test]
        fn decoders_never_panic_on_near_valid_text(
            digit in 0u8..8,
            s in "[0-9/,\\-\\[\\]{}\":a-z_]{0,24}",
        ) {
            // What the fuzz target checks, on text close enough to valid to get accepted.
            let text = format!("{digit}{s}");
            let header = parse_header(&text);
            let Ok(mut decoded) = decode(&text) else {
                return Ok(());
            };
            prop_assert!(header.is_ok());
            let p = loop {
                match decoded {
                    Decoded::Complete(p) => break p,
                    Decoded::AwaitingAttachments(part) => decoded = part.push(Bytes::new()),
                }
            };
            prop_assert_eq!(validate(&p), Ok(()));
            let (text, attachments) = encode(&p);
            let mut again = decode(&text).unwrap();
            for a in attachments {
                if let Decoded::AwaitingAttachments(part) = again {
                    again = part.push(a);
                }
            }
            prop_assert_eq!(again, Decoded::Complete(p));
        }
    }
}
