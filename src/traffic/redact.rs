//! What a recording never contains. [`redact_line`] runs on every line as the recorder
//! serialises it, so callers need not remember: secret query values (`access_token`, `code`,
//! and names that say token, secret, password or API key) in the handshake line and in the
//! `connect` webhook body; the values of secret headers (`Authorization`, `Cookie`,
//! `X-Api-Key`, `Proxy-Authorization` and the like, see [`is_secret_header`]) in that body; and
//! the values of the Socket.IO CONNECT `auth` payload, both in the client's CONNECT frame and
//! under `auth` in the connect body (`serve --forward-auth`). Keys stay, values become
//! [`REDACTED`], so the recording still shows what was sent and replays unchanged otherwise.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::record::{Direction, REDACTED, RecordLine};

/// Header names whose values are secrets (compared case-insensitively).
const SECRET_HEADERS: [&str; 10] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-functions-key",
    "ocp-apim-subscription-key",
    "x-csrf-token",
    "x-xsrf-token",
];
/// Parts of a header or query name that mark its value as a secret.
const SECRET_WORDS: [&str; 6] = [
    "token", "secret", "password", "apikey", "api-key", "api_key",
];

/// Whether the value of header `name` is a secret.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&name.as_str()) || SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// Whether the value of query parameter `name` is a secret: `access_token`, `code` (an Azure
/// Functions key, or an OAuth code) and names that say token, secret, password or API key.
pub fn is_secret_query_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "code" || SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// Query pairs with secrets redacted.
pub fn redacted_query(query: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let value = if is_secret_query_key(&k) {
                REDACTED.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect()
}

/// A client's Socket.IO CONNECT frame with the values of its `auth` payload redacted (it often
/// carries a token); the keys stay, so the recording still shows what was sent. Other frames
/// are returned unchanged.
pub fn redacted_frame(packet: &str) -> Cow<'_, str> {
    let Some(rest) = packet.strip_prefix("40") else {
        return Cow::Borrowed(packet);
    };
    let Some(brace) = rest.find('{') else {
        return Cow::Borrowed(packet);
    };
    let Ok(Value::Object(auth)) = serde_json::from_str(&rest[brace..]) else {
        return Cow::Borrowed(packet);
    };
    Cow::Owned(format!("40{}{}", &rest[..brace], redacted_values(auth)))
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

/// Redacts the values under the keys `secret` picks in a `{name: [values…]}` map; `true` if
/// anything changed.
fn redact_multimap(map: Option<&mut Value>, secret: fn(&str) -> bool) -> bool {
    let Some(Value::Object(map)) = map else {
        return false;
    };
    let mut changed = false;
    for (name, values) in map.iter_mut() {
        if !secret(name) {
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
    let mut changed = redact_multimap(object.get_mut("query"), is_secret_query_key);
    changed |= redact_multimap(object.get_mut("headers"), is_secret_header);
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
        RecordLine::Handshake { query, .. } => {
            for (name, value) in query.iter_mut() {
                if is_secret_query_key(name) {
                    *value = REDACTED.into();
                }
            }
        }
        RecordLine::Frame {
            direction: Direction::In,
            packet,
            ..
        } => {
            if let Cow::Owned(redacted) = redacted_frame(packet) {
                *packet = redacted;
            }
        }
        RecordLine::Webhook { event, body, .. } if event == "connect" => {
            if let Some(redacted) = redacted_connect_body(body) {
                *body = redacted;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_and_query_keys() {
        for name in [
            "Cookie",
            "authorization",
            "X-Api-Key",
            "Proxy-Authorization",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in [
            "X-Auth-Token",
            "x-client-secret",
            "Ocp-Apim-Subscription-Key",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["host", "user-agent", "sec-websocket-key", "origin"] {
            assert!(!is_secret_header(name), "{name}");
        }
        for name in [
            "code",
            "CODE",
            "access_token",
            "refresh_token",
            "apiKey",
            "password",
        ] {
            assert!(is_secret_query_key(name), "{name}");
        }
        for name in ["EIO", "transport", "room", "sid"] {
            assert!(!is_secret_query_key(name), "{name}");
        }
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
}
