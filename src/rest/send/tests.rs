//! Unit tests of REST send payloads: what is accepted as an event or ack, disconnect as a
//! command, what a client cannot take, and delivery sharing one buffer.

use super::*;
use std::sync::Mutex;

fn packet(text: &str) -> SendPayload {
    parse_payload(text.as_bytes(), BodyKind::Text).unwrap()
}

fn refused(text: &str) -> PayloadError {
    parse_payload(text.as_bytes(), BodyKind::Text).unwrap_err()
}

#[test]
fn accepts_events_and_acks() {
    for (text, ns) in [
        (r#"42/chat,["event","arg"]"#, "/chat"),
        (r#"42["event"]"#, "/"),
        (r#"42/ns,7["event",{"a":1}]"#, "/ns"),
        (r#"43/ns,7["ok"]"#, "/ns"),
        (r#"44/ns,{"message":"no"}"#, "/ns"),
        (r#"450-["bin"]"#, "/"),
    ] {
        match packet(text) {
            SendPayload::Packet { text: t, namespace } => {
                assert_eq!(&*t, text);
                assert_eq!(namespace, ns);
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn disconnect_is_a_command() {
    let cases = [
        ("41", "/", false),
        ("41/ns,", "/ns", false),
        ("41/ns", "/ns", false),
        (r#"41/ns,{"close":true}"#, "/ns", true),
        (r#"41{"close":true}"#, "/", true),
        (r#"41/ns,{"close":false}"#, "/ns", false),
    ];
    for (text, ns, close) in cases {
        assert_eq!(
            packet(text),
            SendPayload::Disconnect {
                namespace: ns.into(),
                close
            },
            "{text}"
        );
    }
    for bad in [
        r#"41/ns,{"close":1}"#,
        r#"41/ns,{"close":true,"x":1}"#,
        r#"41/ns,["close"]"#,
        "41/ns,nope",
    ] {
        assert!(
            matches!(refused(bad), PayloadError::DisconnectPayload { .. }),
            "{bad}"
        );
    }
}

#[test]
fn refuses_what_a_client_cannot_take() {
    assert_eq!(
        parse_payload(&[0x34, 0xff], BodyKind::Text).unwrap_err(),
        PayloadError::NotUtf8
    );
    assert_eq!(
        parse_payload(b"42[\"a\"]", BodyKind::Binary).unwrap_err(),
        PayloadError::Binary
    );
    assert_eq!(refused(""), PayloadError::Empty);
    assert_eq!(refused("\"42[\\\"a\\\"]\""), PayloadError::JsonString);
    assert_eq!(
        refused("42[\"a\"]\x1e42[\"b\"]"),
        PayloadError::RecordSeparator
    );
    assert!(matches!(refused("2"), PayloadError::NotAMessage { .. }));
    assert!(matches!(refused("hello"), PayloadError::NotAMessage { .. }));
    assert!(matches!(
        refused("{\"a\":1}"),
        PayloadError::NotAMessage { .. }
    ));
    assert!(matches!(refused("4"), PayloadError::InvalidSocketIo { .. }));
    assert!(matches!(
        refused("49"),
        PayloadError::InvalidSocketIo { .. }
    ));
    assert!(matches!(
        refused("42"),
        PayloadError::InvalidSocketIo { .. }
    ));
    assert!(matches!(
        refused("42[\"a\""),
        PayloadError::InvalidSocketIo { .. }
    ));
    assert!(matches!(
        refused("42[\"connect\"]"),
        PayloadError::InvalidSocketIo { .. }
    ));
    assert!(matches!(
        refused("42chat,[\"a\"]"),
        PayloadError::InvalidSocketIo { .. }
    ));
    assert_eq!(refused("40/ns,"), PayloadError::Connect);
    assert_eq!(
        refused(r#"451-["a",{"_placeholder":true,"num":0}]"#),
        PayloadError::Attachments {
            kind: SioType::BinaryEvent,
            attachments: 1
        }
    );
}

#[test]
fn messages_show_an_example() {
    for error in [
        refused("hello"),
        refused("42[\"a\""),
        PayloadError::Empty,
        PayloadError::JsonString,
    ] {
        assert!(error.to_string().contains(EXAMPLE), "{error}");
    }
    assert!(refused("2").to_string().contains("Engine.IO ping packet"));
}

#[test]
fn delivery_shares_one_arc_and_reports_full_queues() {
    let seen: Arc<Mutex<Vec<ConnCommand>>> = Arc::default();
    let sink = seen.clone();
    let ok = ConnHandle::new(move |c| {
        sink.lock().unwrap().push(c);
        true
    });
    let full = ConnHandle::new(|_| false);
    let recipients = vec![
        (Arc::<str>::from("a"), ok.clone()),
        (Arc::<str>::from("b"), full),
        (Arc::<str>::from("c"), ok),
    ];
    let payload = packet(r#"42["x"]"#);
    let report = deliver(&payload, &recipients);
    assert_eq!(report.delivered, 2);
    assert_eq!(report.skipped, vec![Arc::<str>::from("b")]);
    let seen = seen.lock().unwrap();
    let SendPayload::Packet { text, .. } = &payload else {
        unreachable!()
    };
    for command in seen.iter() {
        match command {
            ConnCommand::Send(t) => assert!(Arc::ptr_eq(t, text)),
            other => panic!("{other:?}"),
        }
    }
}
