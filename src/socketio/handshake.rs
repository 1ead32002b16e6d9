//! Handshake admission (docs/protocol.md §3, §14 decisions 5 and 17): the `access_token` query parameter is
//! verified against the access keys and the hub's client audience; anonymous hubs accept a
//! missing token but still verify a present one. A refusal is an HTTP 401 whose JSON body names
//! the failed check, and never reaches the webhook. An accepted handshake yields the
//! connection's identity and the `connect` body every namespace CONNECT will carry.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::connection::SioConnection;
use crate::auth::{self, Check, Rejection};
use crate::engineio::{Acceptor, Handshake, Refusal};
use crate::http::ErrorBody;
use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::traffic::hop::HandshakeRecord;
use crate::traffic::record::redacted_query;

/// Admits Engine.IO handshakes for the service.
#[derive(Debug, Clone)]
pub struct SioAcceptor {
    pub service: Arc<Service>,
}

fn refusal(status: StatusCode, code: &'static str, message: String) -> Refusal {
    Refusal {
        status,
        body: ErrorBody::new(code, message),
    }
}

/// Query pairs, percent-decoded.
fn query_pairs(handshake: &Handshake<'_>) -> Vec<(String, String)> {
    form_urlencoded::parse(handshake.uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A claim value as the connect body carries it: an array of strings (docs/protocol.md §5.2).
fn claim_strings(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.iter().flat_map(claim_strings).collect(),
        Value::String(s) => vec![Value::String(s.clone())],
        Value::Null => Vec::new(),
        other => vec![Value::String(other.to_string())],
    }
}

/// The `connect` body: `claims`, `query` (without `access_token`), `headers` (without
/// `Authorization`), `subprotocols`, `clientCertificates` — all five keys always present.
fn connect_body(
    handshake: &Handshake<'_>,
    pairs: &[(String, String)],
    claims: &Map<String, Value>,
) -> Bytes {
    let claims: Map<String, Value> = claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::Array(claim_strings(v))))
        .collect();
    let mut query = Map::new();
    for (k, v) in pairs.iter().filter(|(k, _)| k != "access_token") {
        let entry = query
            .entry(k.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(v.clone()));
        }
    }
    let mut headers = Map::new();
    for (name, value) in handshake.headers {
        if name == http::header::AUTHORIZATION {
            continue;
        }
        let entry = headers
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
    }
    let body = json!({
        "claims": claims,
        "query": query,
        "headers": headers,
        "subprotocols": [],
        "clientCertificates": [],
    });
    // Exactly sized: the body stays with the connection for each namespace it joins.
    Bytes::from(body.to_string().into_bytes().into_boxed_slice())
}

/// How a handshake ended, for its log line and its session line.
struct Outcome<'a> {
    /// The hub's name as the service knows it.
    hub: &'a str,
    connection_id: Option<&'a str>,
    user_id: Option<&'a str>,
    refused: Option<&'a str>,
    /// Decoded (unverified) claims of a refused token.
    claims: Option<Value>,
}

/// Reports one handshake as one hop: its live-log line and its session line (token redacted).
fn report_handshake(service: &Service, handshake: &Handshake<'_>, outcome: Outcome<'_>) {
    let traffic = service.traffic();
    traffic.emit(TrafficEvent::Handshake {
        hub: outcome.hub.to_owned(),
        connection_id: outcome.connection_id.map(str::to_owned),
        transport: handshake.transport.as_str(),
        user_id: outcome.user_id.map(str::to_owned),
        refused: outcome.refused.map(str::to_owned),
        claims: outcome.claims,
        recorded: traffic.recording().then(|| {
            Box::new(HandshakeRecord {
                route: handshake.route.to_owned(),
                query: redacted_query(handshake.uri.query().unwrap_or("")),
            })
        }),
    });
}

/// String values of a claim that may be a string or an array.
fn claim_list(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl SioAcceptor {
    /// The audiences a client token may carry: the printed endpoint, and the endpoint the
    /// client actually used (a client may reach `localhost` as 127.0.0.1).
    fn verify(
        &self,
        token: &str,
        hub: &str,
        host: Option<&str>,
    ) -> Result<Map<String, Value>, Rejection> {
        let service = &self.service;
        let now = auth::now_unix();
        let keys = &service.config().access_keys;
        let primary = auth::client_audience(service.endpoint(), hub);
        match auth::verify_client_token(token, keys, &primary, now) {
            Err(rejection) if rejection.check == Check::Aud => {
                let Some(host) = host else {
                    return Err(rejection);
                };
                let used = auth::client_audience(&format!("http://{host}"), hub);
                auth::verify_client_token(token, keys, &used, now).map_err(|_| rejection)
            }
            other => other,
        }
    }

    fn refuse(&self, handshake: &Handshake<'_>, rejection: Rejection) -> Refusal {
        let message = format!("{} check failed: {}", rejection.check, rejection.message);
        let outcome = Outcome {
            hub: handshake.route,
            connection_id: None,
            user_id: None,
            refused: Some(&message),
            claims: rejection.claims.map(Value::Object),
        };
        report_handshake(&self.service, handshake, outcome);
        refusal(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    /// Refuses a hub that is not declared while `--strict-hubs` is on, saying so in the log.
    fn unknown_hub(&self, handshake: &Handshake<'_>) -> Refusal {
        let message = format!(
            "hub `{}` is not declared and --strict-hubs is on; declare it with --hub",
            handshake.route
        );
        self.service.traffic().emit(TrafficEvent::Handshake {
            hub: handshake.route.to_owned(),
            connection_id: None,
            transport: handshake.transport.as_str(),
            user_id: None,
            refused: Some(message.clone()),
            claims: None,
            recorded: None,
        });
        refusal(StatusCode::NOT_FOUND, "HubNotFound", message)
    }
}

impl Acceptor for SioAcceptor {
    type Handler = SioConnection;

    fn new_sid(&self) -> String {
        self.service.ids().next_id()
    }

    fn accept(&self, handshake: &Handshake<'_>) -> Result<SioConnection, Refusal> {
        let service = &self.service;
        // The token is checked before any hub is made, so refused handshakes leave nothing.
        let name = match service.hub(handshake.route) {
            Some(hub) => hub.name().to_owned(),
            None if !service.config().strict_hubs => handshake.route.to_owned(),
            None => return Err(self.unknown_hub(handshake)),
        };
        let pairs = query_pairs(handshake);
        let token = pairs
            .iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.as_str());
        let host = handshake
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        let claims = match token {
            Some(token) => self
                .verify(token, &name, host)
                .map_err(|r| self.refuse(handshake, r))?,
            None if service.config().hub(&name).anonymous => Map::new(),
            None => {
                let rejection = Rejection {
                    check: Check::Missing,
                    message: "no access_token query parameter; pass a token from `sio-emu token` \
                              (query: { access_token }) or start serve with --anonymous"
                        .into(),
                    claims: None,
                };
                return Err(self.refuse(handshake, rejection));
            }
        };
        let user_id = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let token_groups = claim_list(&claims, "webpubsub.group");
        let Some(hub) = service.hub_or_create(handshake.route) else {
            // The configuration was reloaded meanwhile and the hub is no longer declared.
            return Err(self.unknown_hub(handshake));
        };
        let body = connect_body(handshake, &pairs, &claims);
        let outcome = Outcome {
            hub: hub.name(),
            connection_id: Some(handshake.sid),
            user_id: user_id.as_deref(),
            refused: None,
            claims: None,
        };
        report_handshake(service, handshake, outcome);
        Ok(SioConnection::new(
            service.clone(),
            hub,
            handshake.sid.into(),
            user_id,
            token_groups,
            body,
            handshake.transport,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_string_arrays() {
        assert_eq!(claim_strings(&json!("a")), vec![json!("a")]);
        assert_eq!(claim_strings(&json!(17)), vec![json!("17")]);
        assert_eq!(
            claim_strings(&json!(["x", 2])),
            vec![json!("x"), json!("2")]
        );
    }
}
