//! Engine.IO v4 long-polling payloads: several packets in one HTTP body (docs/protocol.md §1).
//!
//! A payload is one or more records joined by the record separator `\x1e`; each record is one
//! packet in its polling form, read and written by [`super::packet`] (text packets as
//! `<digit><data>`, binary messages as `b<base64>`). The polling transport hands this module a
//! POST body or asks it to build a GET response; the codec is pure and knows nothing about HTTP.
//!
//! Bounds: the body is refused before any parsing when it is longer than the session's
//! `maxPayload`, which also bounds the number of records (each is at least one byte plus a
//! separator). Records are borrowed slices of the body; only the returned packets allocate.
//!
//! Decisions: an empty record (a doubled, leading or trailing separator) is an error, as in the
//! reference server, which answers such a body with 400 and closes the session. The format has
//! no escaping, so a text packet whose data contains `\x1e` cannot travel in a payload; Socket.IO
//! packets never do, because JSON writes that control character as `\u001e`.

use super::packet::{DecodeError, Packet};

/// The record separator between packets of a long-polling payload.
pub const RECORD_SEPARATOR: char = '\x1e';

/// Decodes a long-polling body (the POST body sent by a client) into its packets, in order.
///
/// `max_payload` is the session's limit in bytes; a longer body is refused whole with
/// [`DecodeError::TooLarge`]. A bad record is reported as [`DecodeError::Record`] with its index.
pub fn decode_payload(body: &str, max_payload: usize) -> Result<Vec<Packet>, DecodeError> {
    if body.len() > max_payload {
        return Err(DecodeError::TooLarge {
            len: body.len(),
            max: max_payload,
        });
    }
    if body.is_empty() {
        return Err(DecodeError::EmptyPayload);
    }
    let records = body.as_bytes().iter().filter(|&&b| b == 0x1e).count() + 1;
    let mut packets = Vec::with_capacity(records);
    for (index, record) in body.split(RECORD_SEPARATOR).enumerate() {
        let packet =
            Packet::decode_polling_record(record).map_err(|error| DecodeError::Record {
                index,
                error: Box::new(error),
            })?;
        packets.push(packet);
    }
    Ok(packets)
}

/// Appends the long-polling form of `packets` to `out`: each packet's polling record, joined by
/// [`RECORD_SEPARATOR`]. Appends nothing for an empty sequence.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a Packet>, out: &mut String) {
    for (i, packet) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(RECORD_SEPARATOR);
        }
        packet.encode_text(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::packet::tests::any_packet;
    use bytes::Bytes;
    use proptest::prelude::*;

    const MAX: usize = 1_000_000;

    fn encode(packets: &[Packet]) -> String {
        let mut out = String::new();
        encode_payload(packets, &mut out);
        out
    }

    #[test]
    fn decodes_one_and_many() {
        assert_eq!(
            decode_payload("4hello", MAX),
            Ok(vec![Packet::Message("hello".to_owned())])
        );
        assert_eq!(
            decode_payload("4hello\x1e2probe\x1ebAQIDBA==\x1e6\x1e1", MAX),
            Ok(vec![
                Packet::Message("hello".to_owned()),
                Packet::Ping("probe".to_owned()),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
                Packet::Noop,
                Packet::Close,
            ])
        );
    }

    #[test]
    fn socketio_binary_event_over_polling() {
        let body = "451-[\"baz\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID";
        assert_eq!(
            decode_payload(body, MAX),
            Ok(vec![
                Packet::Message(r#"51-["baz",{"_placeholder":true,"num":0}]"#.to_owned()),
                Packet::Binary(Bytes::from_static(&[1, 2, 3])),
            ])
        );
    }

    #[test]
    fn encodes_one_and_many() {
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[Packet::Noop]), "6");
        assert_eq!(
            encode(&[
                Packet::Message("0{\"sid\":\"x\"}".to_owned()),
                Packet::Ping(String::new()),
                Packet::Binary(Bytes::from_static(b"hi")),
            ]),
            "40{\"sid\":\"x\"}\x1e2\x1ebaGk="
        );
        let mut out = String::from("6");
        encode_payload([&Packet::Close], &mut out);
        assert_eq!(out, "61");
    }

    #[test]
    fn rejects_empty_body() {
        assert_eq!(decode_payload("", MAX), Err(DecodeError::EmptyPayload));
    }

    #[test]
    fn rejects_too_large_before_parsing() {
        assert_eq!(
            decode_payload("4abcdef", 6),
            Err(DecodeError::TooLarge { len: 7, max: 6 })
        );
        assert!(decode_payload("4abcde", 6).is_ok());
        // Invalid content is not even looked at when the size is over the limit.
        assert_eq!(
            decode_payload("xxxx", 3),
            Err(DecodeError::TooLarge { len: 4, max: 3 })
        );
    }

    #[test]
    fn rejects_empty_records() {
        for (body, index) in [
            ("\x1e4a", 0),
            ("4a\x1e", 1),
            ("4a\x1e\x1e4b", 1),
            ("\x1e", 0),
        ] {
            assert_eq!(
                decode_payload(body, MAX),
                Err(DecodeError::Record {
                    index,
                    error: Box::new(DecodeError::Empty)
                }),
                "{body:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_records_with_their_index() {
        assert_eq!(
            decode_payload("4ok\x1eabc", MAX),
            Err(DecodeError::Record {
                index: 1,
                error: Box::new(DecodeError::UnknownType('a'))
            })
        );
        let err = decode_payload("4ok\x1eb!!", MAX).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Record { index: 1, error } if matches!(**error, DecodeError::InvalidBase64 { .. })),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("record 1 of the long-polling body: ")
        );
    }

    fn payload_packet() -> impl Strategy<Value = Packet> {
        any_packet().prop_filter("no record separator in text data", |p| match p {
            Packet::Open(s) | Packet::Ping(s) | Packet::Pong(s) | Packet::Message(s) => {
                !s.contains(RECORD_SEPARATOR)
            }
            _ => true,
        })
    }

    proptest! {
        #[test]
        fn round_trip(packets in proptest::collection::vec(payload_packet(), 1..8)) {
            let body = encode(&packets);
            prop_assert_eq!(decode_payload(&body, body.len()), Ok(packets));
        }

        #[test]
        fn decoder_never_panics(s in any::<String>(), max in 0usize..64) {
            let _ = decode_payload(&s, max);
        }
    }
}
