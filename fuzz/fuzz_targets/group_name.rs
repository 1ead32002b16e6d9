//! Fuzzes the Socket.IO group-name parser: anything it accepts must be rebuilt to the exact same
//! name, and names built from a namespace and room must parse back to them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_emu::service::group::{SioGroup, namespace_group, parse, room_group};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(group) = parse(text) {
        let rebuilt = match &group.room {
            Some(room) => room_group(&group.namespace, room),
            None => namespace_group(&group.namespace),
        };
        assert_eq!(rebuilt, text);
    }

    // Read the input as "<namespace>\0<room>" and build names from it.
    let (nsp, room) = text.split_once('\0').unwrap_or((text, ""));
    if nsp.starts_with('/') {
        assert_eq!(
            parse(&namespace_group(nsp)),
            Some(SioGroup {
                namespace: nsp.to_owned(),
                room: None
            })
        );
        assert_eq!(
            parse(&room_group(nsp, room)),
            Some(SioGroup {
                namespace: nsp.to_owned(),
                room: (!room.is_empty()).then(|| room.to_owned()),
            })
        );
    }
});
