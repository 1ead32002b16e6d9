//! Fuzzes the Engine.IO long-polling payload decoder: the size limit holds, and a decoded
//! payload re-encodes to a body that decodes to the same packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_emu::engineio::packet::DecodeError;
use sio_emu::engineio::payload::{decode_payload, encode_payload};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(max) = body.len().checked_sub(1) {
        assert_eq!(
            decode_payload(body, max),
            Err(DecodeError::TooLarge {
                len: body.len(),
                max
            })
        );
    }
    if let Ok(packets) = decode_payload(body, body.len()) {
        assert!(!packets.is_empty());
        let mut encoded = String::new();
        encode_payload(&packets, &mut encoded);
        assert_eq!(decode_payload(&encoded, encoded.len()), Ok(packets));
    }
});
