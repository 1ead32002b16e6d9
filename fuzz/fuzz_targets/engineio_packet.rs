//! Fuzzes the Engine.IO single-packet decoders (WebSocket text frame, long-polling record,
//! binary frame) and checks that whatever decodes re-encodes to text that decodes to the same
//! packet.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sio_emu::engineio::packet::Packet;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    assert_eq!(Packet::decode_binary(frame.clone()), Packet::Binary(frame));

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packet) = Packet::decode_text(text) {
        assert!(!matches!(packet, Packet::Binary(_)));
        assert_eq!(Packet::decode_text(&packet.to_text()), Ok(packet));
    }
    if let Ok(packet) = Packet::decode_polling_record(text) {
        assert_eq!(Packet::decode_polling_record(&packet.to_text()), Ok(packet));
    }
});
