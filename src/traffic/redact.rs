//! What sio-emu never shows or keeps: one rule, applied here, for every surface (the recording,
//! the inspector's ring and so its export, timeline and entry details, and the live log).
//!
//! - **By name**: the value of a query parameter or a header whose name contains one of
//!   [`SECRET_WORDS`] (`token`, `key`, `secret`, `password`, `passwd`, `sig`, `auth`,
//!   `session`, `cookie`, `jwt`, `code`, `credential`, `principal`; case-insensitive), see
//!   [`is_secret_name`]: the handshake query (its line and the `connect` event body), the
//!   client's headers in that body, the query of a REST call, and the headers of a webhook's
//!   answer.
//! - **By structure**: the Socket.IO CONNECT `auth` payload, found by reading the client's
//!   frame with the Socket.IO codec ([`parse_header`]), whatever its namespace holds
//!   (`40/a{b,{"token":…}`) and with or without an ack id; a CONNECT whose payload does not
//!   parse is redacted whole. With `serve --forward-auth` the `auth` in the `connect` body is
//!   redacted too.
//!
//! Keys stay, values become [`REDACTED`], so what was sent is still visible and a recording
//! replays unchanged otherwise. [`redact_line`] runs on every session line as the recorder
//! serialises it and as the ring keeps it, so callers need not remember.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::record::{Direction, REDACTED, RecordLine};
use crate::socketio::packet::parse_header;

/// Parts of a query key or header name that mark its value as a secret (compared
/// case-insensitively). They cover the names redacted before this rule (`Authorization`,
/// `Cookie`, `X-Api-Key`, `Ocp-Apim-Subscription-Key`, `access_token`, `code`, …).
pub const SECRET_WORDS: [&str; 13] = [
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "sig",
    "auth",
    "session",
    "cookie",
    "jwt",
    "code",
    "credential",
    "principal",
];

/// Whether the value of the query parameter or header `name` is a secret: its name contains
/// one of [`SECRET_WORDS`], in any case.
pub fn is_secret_name(name: &str) -> bool {
    SECRET_WORDS.iter().any(|word| {
        name.as_bytes()
            .windows(word.len())
            .any(|part| part.eq_ignore_ascii_case(word.as_bytes()))
    })
}

/// Query pairs with secrets redacted.
pub fn redacted_query(query: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let value = if is_secret_name(&k) {
                REDACTED.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect()
}

/// A client's Engine.IO message with the `auth` payload of a Socket.IO CONNECT redacted: read
/// with the codec, so the namespace and ack id are found wherever a `{` or digit sits. An
/// object keeps its keys (every value becomes [`REDACTED`]); any other payload, or one that is
/// not JSON, is replaced whole; a CONNECT whose framing does not parse keeps only `40`. Other
/// packets are returned unchanged.
pub fn redacted_frame(packet: &str) -> Cow<'_, str> {
    // A CONNECT is Engine.IO `message` (4) holding Socket.IO type 0; it has no binary form.
    let Some(text) = packet.strip_prefix('4').filter(|t| t.starts_with('0')) else {
        return Cow::Borrowed(packet);
    };
    let Ok(header) = parse_header(text) else {
        return Cow::Owned(format!("40{REDACTED}"));
    };
    if header.payload.is_empty() {
        return Cow::Borrowed(packet);
    }
    let head = &packet[..packet.len() - header.payload.len()];
    let payload = match serde_json::from_str(header.payload) {
        Ok(Value::Object(auth)) => redacted_values(auth).to_string(),
        _ => REDACTED.to_owned(),
    };
    Cow::Owned(format!("{head}{payload}"))
}

/// An object with every value replaced by [`REDACTED`].
fn redacted_values(object: Map<String, Value>) -> Value {
    Value::Object(
        object
            .into_iter()
            .map(|(k, _)| (k, Value::String(REDACTED.into())))
            .collect(),
    )
}

/// Redacts the values under secret names in a `{name: [values…]}` map; `true` if anything
/// changed.
fn redact_multimap(map: Option<&mut Value>) -> bool {
    let Some(Value::Object(map)) = map else {
        return false;
    };
    let mut changed = false;
    for (name, values) in map.iter_mut() {
        if !is_secret_name(name) {
            continue;
        }
        let redacted = match values {
            Value::Array(items) => Value::Array(vec![Value::String(REDACTED.into()); items.len()]),
            _ => Value::String(REDACTED.into()),
        };
        changed |= *values != redacted;
        *values = redacted;
    }
    changed
}

/// The `connect` event body with its secrets redacted (query, headers, forwarded `auth`), or
/// `None` when it holds none (or is not a JSON object), so it is kept byte for byte.
pub fn redacted_connect_body(body: &str) -> Option<String> {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(body) else {
        return None;
    };
    let mut changed = redact_multimap(object.get_mut("query"));
    changed |= redact_multimap(object.get_mut("headers"));
    if let Some(auth) = object.get_mut("auth") {
        let redacted = match std::mem::take(auth) {
            Value::Object(map) => redacted_values(map),
            Value::Null => Value::Null,
            _ => Value::String(REDACTED.into()),
        };
        changed |= *auth != redacted;
        *auth = redacted;
    }
    changed.then(|| Value::Object(object).to_string())
}

/// Redacts every secret a line may carry (see the module docs).
pub fn redact_line(line: &mut RecordLine) {
    match line {
        RecordLine::Handshake { query, .. } => redact_query_values(query),
        RecordLine::Frame {
            direction: Direction::In,
            packet,
            ..
        } => redact_packet(packet),
        RecordLine::Webhook { call, .. } => redact_event(call),
        RecordLine::Rest { call, .. } => redact_rest(call),
        _ => {}
    }
}

/// Redacts a handshake's secret query values.
pub fn redact_query_values(query: &mut std::collections::BTreeMap<String, String>) {
    for (name, value) in query.iter_mut() {
        if is_secret_name(name) {
            *value = REDACTED.into();
        }
    }
}

/// Redacts the `auth` of a client's CONNECT packet.
pub fn redact_packet(packet: &mut String) {
    if let Cow::Owned(redacted) = redacted_frame(packet) {
        *packet = redacted;
    }
}

/// Redacts the body of a `connect` webhook event (the client's `auth`, query and headers).
pub fn redact_event(call: &mut super::record::RecordedEvent) {
    if call.event == "connect"
        && let Some(redacted) = redacted_connect_body(&call.body)
    {
        call.body = redacted;
    }
}

/// Redacts a REST call's secret query values.
pub fn redact_rest(call: &mut super::rest_call::RestCall) {
    for (name, values) in call.query.iter_mut() {
        if is_secret_name(name) {
            values.iter_mut().for_each(|v| *v = REDACTED.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_say_secret() {
        // The names redacted before the word rule stay redacted.
        for name in [
            "Cookie",
            "authorization",
            "X-Api-Key",
            "Proxy-Authorization",
            "Set-Cookie",
            "X-Functions-Key",
            "X-Auth-Token",
            "x-client-secret",
            "Ocp-Apim-Subscription-Key",
            "X-CSRF-Token",
            "code",
            "CODE",
            "access_token",
            "refresh_token",
            "apiKey",
            "password",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        // Each word, anywhere in the name, in any case.
        for name in [
            "x-session-id",
            "X-MS-CLIENT-PRINCIPAL",
            "x-jwt",
            "passwd",
            "sig",
            "x-request-Sig",
            "authz",
            "promoCode",
            "user_credential",
            "keyring",
            "MyCookie",
            "sec-websocket-key",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "host",
            "user-agent",
            "origin",
            "EIO",
            "transport",
            "room",
            "sid",
            "t",
            "",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn connect_auth_is_found_by_the_codec_in_any_namespace() {
        let cases = [
            // A namespace holding `{`, a `,`-less namespace, an ack id, the default namespace.
            (
                r#"40/a{b,{"token":"s1"}"#,
                r#"40/a{b,{"token":"<redacted>"}"#,
            ),
            (
                r#"40/a{b,7{"token":"s1","n":{"k":1}}"#,
                r#"40/a{b,7{"n":"<redacted>","token":"<redacted>"}"#,
            ),
            (r#"40{"token":"s1"}"#, r#"40{"token":"<redacted>"}"#),
            (
                r#"40/chat,12{"token":"s1"}"#,
                r#"40/chat,12{"token":"<redacted>"}"#,
            ),
            // Payloads that do not parse (or are no object) go whole; the framing stays.
            (r#"40/a{b,{"token":"s1""#, "40/a{b,<redacted>"),
            (r#"40/chat,["s1"]"#, "40/chat,<redacted>"),
            (r#"40"s1""#, "40<redacted>"),
            (r#"40s1,{"token":"s1"}"#, "40<redacted>"),
            // Framing that does not parse (an ack id too long): all but the type goes.
            (
                r#"40/a,123456789012345678901234{"token":"s1"}"#,
                "40<redacted>",
            ),
        ];
        for (packet, want) in cases {
            assert_eq!(redacted_frame(packet), want, "{packet}");
        }
        // No payload, or not a CONNECT: kept as is (a namespace may look like JSON).
        for packet in [
            r#"40/a{"token":"s1"}"#,
            "40/chat,",
            "40",
            r#"42["a",{"b":1}]"#,
            r#"41/a{b,"#,
            "2probe",
        ] {
            assert!(
                matches!(redacted_frame(packet), Cow::Borrowed(_)),
                "{packet}"
            );
        }
    }

    #[test]
    fn answer_headers_and_rest_queries_go_by_name() {
        assert!(is_secret_name("set-cookie"));
        assert!(is_secret_name("x-session-token"));
        assert!(!is_secret_name("content-type"));
        let mut rest: RecordLine = serde_json::from_str(
            r#"{"type":"rest","t":1,"method":"POST","operation":"SendToAll","hub":"h",
                "path":"/api/hubs/h/:send","query":{"sig":["s3"],"api-version":["2024-01-01"]},
                "body":"","status":202}"#,
        )
        .unwrap();
        redact_line(&mut rest);
        let RecordLine::Rest { call, .. } = rest else {
            panic!("a rest line")
        };
        assert_eq!(call.query["sig"], [REDACTED]);
        assert_eq!(call.query["api-version"], ["2024-01-01"]);
    }

    #[test]
    fn connect_body_query_headers_and_auth_are_redacted() {
        let body = r#"{"claims":{"sub":["u"]},"query":{"code":["s1"],"room":["a"]},
            "headers":{"cookie":["s2","s3"],"x-api-key":["s4"],"host":["h"]},
            "auth":{"token":"s5","n":{"deep":"s6"}},"subprotocols":[],"clientCertificates":[]}"#;
        let redacted = redacted_connect_body(body).expect("something to redact");
        for secret in ["s1", "s2", "s3", "s4", "s5", "s6"] {
            assert!(!redacted.contains(&format!("\"{secret}\"")), "{redacted}");
        }
        let value: Value = serde_json::from_str(&redacted).unwrap();
        assert_eq!(value["query"]["room"][0], "a");
        assert_eq!(value["query"]["code"], serde_json::json!([REDACTED]));
        assert_eq!(
            value["headers"]["cookie"],
            serde_json::json!([REDACTED, REDACTED])
        );
        assert_eq!(value["headers"]["host"][0], "h");
        assert_eq!(value["auth"]["token"], REDACTED);
        assert_eq!(value["auth"]["n"], REDACTED);
        assert_eq!(value["claims"]["sub"][0], "u");
    }

    #[test]
    fn a_body_without_secrets_is_kept_byte_for_byte() {
        let body = r#"{"claims":{},"query":{"room":["a"]},"headers":{"host":["h"]}}"#;
        assert_eq!(redacted_connect_body(body), None);
        assert_eq!(redacted_connect_body("not json"), None);
    }

    #[test]
    fn lines_are_redacted_where_secrets_live() {
        let mut handshake = RecordLine::Handshake {
            t: 1.0,
            hub: "h".into(),
            connection_id: None,
            transport: "websocket".into(),
            user_id: None,
            query: [("code".to_owned(), "s1".to_owned())].into(),
            refused: None,
        };
        redact_line(&mut handshake);
        assert!(!serde_json::to_string(&handshake).unwrap().contains("s1"));
        let mut frame = RecordLine::Frame {
            t: 1.0,
            hub: "h".into(),
            connection_id: "c".into(),
            direction: Direction::In,
            packet: r#"40/chat,{"token":"s2"}"#.into(),
        };
        redact_line(&mut frame);
        assert!(!serde_json::to_string(&frame).unwrap().contains("s2"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the namespace holds (`{`, `"`, digits) and whether an ack id follows,
            /// the token never survives and the framing before the payload is kept.
            #[test]
            fn a_connect_token_never_survives(
                nsp in "(/[a-z{}\"0-9:]{0,8})?",
                id in proptest::option::of(0u32..1000),
                cut in any::<bool>(),
            ) {
                let head = match nsp.as_str() {
                    "" => String::new(),
                    nsp => format!("{nsp},"),
                };
                let id = id.map(|i| i.to_string()).unwrap_or_default();
                let mut packet = format!(r#"40{head}{id}{{"token":"zz-secret"}}"#);
                if cut {
                    packet.pop();
                }
                let redacted = redacted_frame(&packet);
                prop_assert!(!redacted.contains("zz-secret"), "{packet} -> {redacted}");
                prop_assert!(redacted.starts_with(&format!("40{head}{id}")), "{packet} -> {redacted}");
            }

            /// Any text at all: no panic, and only a CONNECT is ever changed.
            #[test]
            fn other_packets_are_kept(text in "\\PC{0,40}") {
                let redacted = redacted_frame(&text);
                if !text.starts_with("40") {
                    prop_assert_eq!(redacted.as_ref(), text.as_str());
                }
            }
        }
    }
}
