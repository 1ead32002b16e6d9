//! Tests of the Socket.IO group names: the docs/protocol.md §8 examples, strict parsing, round trips.

use super::*;
use proptest::prelude::*;

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn spec_room_examples() {
    let cases = [
        ("/", "rm", "0~Lw~cm0"),
        ("/ns", "rm", "0~L25z~cm0"),
        ("/ns", "socketId", "0~L25z~c29ja2V0SWQ"),
    ];
    for (nsp, room, group) in cases {
        assert_eq!(room_group(nsp, room), group);
        assert_eq!(
            parse(group),
            Some(SioGroup {
                namespace: nsp.to_owned(),
                room: Some(room.to_owned())
            })
        );
    }
}

#[test]
fn spec_namespace_example() {
    assert_eq!(namespace_group("/ns"), "0~L25z~");
    assert_eq!(namespace_group("/"), "0~Lw~");
    assert_eq!(
        parse("0~L25z~"),
        Some(SioGroup {
            namespace: "/ns".to_owned(),
            room: None
        })
    );
}

#[test]
fn spec_segment_examples() {
    let cases = [
        ("/admin", "L2FkbWlu"),
        ("héllo", "aMOpbGxv"),
        ("a??>", "YT8_Pg"),
        ("~~~", "fn5-"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(b64(plain), encoded);
        assert_eq!(room_group("/", plain), format!("0~Lw~{encoded}"));
        assert_eq!(
            parse(&format!("0~Lw~{encoded}")),
            Some(SioGroup {
                namespace: "/".to_owned(),
                room: Some(plain.to_owned())
            })
        );
    }
    assert_eq!(namespace_group("/admin"), "0~L2FkbWlu~");
    assert_eq!(
        parse("0~L2FkbWlu~YT8_Pg").map(|g| (g.namespace, g.room)),
        Some(("/admin".to_owned(), Some("a??>".to_owned())))
    );
}

#[test]
fn empty_room_is_the_namespace_group() {
    assert_eq!(room_group("/ns", ""), namespace_group("/ns"));
}

#[test]
fn rejects_non_socketio_groups() {
    for bad in [
        "",
        "plain-group",
        "0~",
        "0~~",          // empty namespace
        "0~~cm0",       // empty namespace
        "1~Lw~cm0",     // wrong prefix
        "0~Lw",         // no room separator
        "0~Lw~cm0~",    // third separator
        "0~Lw~cm0~cm0", // three segments
        "0~Lw==~cm0",   // padding
        "0~Lw~cm0=",    // padding
        "0~L+~cm0",     // standard alphabet, not URL-safe
        "0~Lx~cm0",     // non-canonical trailing bits
        "0~L~cm0",      // impossible length
        "0~YWJj~cm0",   // namespace "abc" does not start with '/'
        "0~Lw~_w",      // room is byte 0xff, not UTF-8
        "0~L_8~cm0",    // namespace "/\xff", not UTF-8
    ] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn round_trip(nsp in "/\\PC*", room in "\\PC*") {
        let ns_group = namespace_group(&nsp);
        prop_assert_eq!(
            parse(&ns_group),
            Some(SioGroup { namespace: nsp.clone(), room: None })
        );
        let group = room_group(&nsp, &room);
        let expected_room = if room.is_empty() { None } else { Some(room.clone()) };
        prop_assert_eq!(parse(&group), Some(SioGroup { namespace: nsp, room: expected_room }));
    }

    #[test]
    fn parse_is_an_exact_inverse(s in "0~[A-Za-z0-9_~=-]{0,12}") {
        if let Some(g) = parse(&s) {
            let rebuilt = match &g.room {
                Some(room) => room_group(&g.namespace, room),
                None => namespace_group(&g.namespace),
            };
            prop_assert_eq!(rebuilt, s);
        }
    }
}
