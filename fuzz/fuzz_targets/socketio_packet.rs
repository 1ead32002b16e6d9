//! Fuzzes the Socket.IO header parser and full decoder, binary reassembly included, and checks
//! that every accepted packet is valid and survives `decode(encode(p)) == p` (skipped when the
//! payload holds non-integer numbers: serde_json's default float parsing is best-effort).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sio_emu::socketio::packet::{Decoded, decode, encode, parse_header, validate};

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

fn complete(mut decoded: Decoded, attachments: &[Bytes]) -> sio_emu::socketio::packet::Packet {
    let mut next = attachments.iter();
    loop {
        match decoded {
            Decoded::Complete(p) => return p,
            Decoded::AwaitingAttachments(part) => {
                decoded = part.push(next.next().cloned().unwrap_or_default());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let header = parse_header(text);
    let Ok(decoded) = decode(text) else {
        return;
    };
    let header = header.expect("decode accepted what parse_header refused");
    let filler: Vec<Bytes> = (0..header.attachments)
        .map(|i| Bytes::from(vec![i as u8; i]))
        .collect();
    let packet = complete(decoded, &filler);
    assert_eq!(packet.attachments.len(), header.attachments);
    assert_eq!(validate(&packet), Ok(()));

    let (encoded, attachments) = encode(&packet);
    let again = complete(
        decode(&encoded).expect("encode wrote an undecodable packet"),
        &attachments,
    );
    if !packet.data.as_ref().is_some_and(has_float) {
        assert_eq!(again, packet);
    }
});
