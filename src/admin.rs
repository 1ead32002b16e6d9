//! The emulator's own admin surface under `/_emu/`, for people and test suites debugging a
//! handler: `GET /_emu/connections` shows every hub's connections with their user, groups
//! (Socket.IO groups decoded to namespace and room, docs/protocol.md §8) and namespace sockets;
//! `POST /_emu/reset` closes every connection (each socket gets its `disconnected` with the
//! reason [`RESET_REASON`]) and forgets every group and user-group assignment;
//! `GET`/`POST`/`DELETE /_emu/faults` list, add and clear fault-injection rules
//! ([`crate::fault`]).
//!
//! None of this exists in the cloud service, and it can close connections and make webhooks
//! fail, so [`gate`] lets through only loopback peers that name this server by a loopback
//! `Host` and send no foreign `Origin` (docs/protocol.md §14 decision 24): `server` passes the peer address of the
//! TCP connection, and a refused request gets a 403 JSON body naming the failed check.
//! This module owns its one routing `match` ([`table`]); it reads and changes the hub state
//! only through [`crate::service`], never holding a hub lock across an `await`, and reports each
//! call as one [`TrafficEvent::Admin`] line.

pub mod gate;

use std::net::SocketAddr;

use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::http::{HttpResponse, json_response};
use crate::service::{ConnCommand, Service, group};
use crate::traffic::TrafficEvent;

/// Path prefix of every admin route.
pub const PREFIX: &str = "/_emu/";

/// The `disconnected` reason of every socket closed by `POST /_emu/reset`.
pub const RESET_REASON: &str = "reset by /_emu/reset";

/// One admin operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminOp {
    Connections,
    Reset,
    FaultsList,
    FaultsAdd,
    FaultsClear,
}

/// Largest admin request body read (one fault rule), in bytes.
pub const MAX_BODY: usize = 4096;

/// THE admin routing table: method and path → operation; `Err` lists the allowed methods of a
/// known path.
fn table(method: &Method, path: &str) -> Option<Result<AdminOp, &'static str>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    Some(match (method, path) {
        (&Method::GET, "/_emu/connections") => Ok(AdminOp::Connections),
        (_, "/_emu/connections") => Err("GET"),
        (&Method::POST, "/_emu/reset") => Ok(AdminOp::Reset),
        (_, "/_emu/reset") => Err("POST"),
        (&Method::GET, "/_emu/faults") => Ok(AdminOp::FaultsList),
        (&Method::POST, "/_emu/faults") => Ok(AdminOp::FaultsAdd),
        (&Method::DELETE, "/_emu/faults") => Ok(AdminOp::FaultsClear),
        (_, "/_emu/faults") => Err("GET, POST, DELETE"),
        _ => return None,
    })
}

fn error(status: StatusCode, code: &str, message: String) -> HttpResponse {
    json_response(
        status,
        json!({ "code": code, "message": message }).to_string(),
    )
}

/// Reads the body of one `/_emu/…` request (at most [`MAX_BODY`]) and answers it.
pub async fn handle(
    service: &Service,
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                format!("admin request bodies are at most {MAX_BODY} bytes"),
            );
        }
    };
    serve(service, &Request::from_parts(parts, bytes), peer)
}

/// `GET /_emu/faults`: the rules in force.
fn faults_json(service: &Service) -> Value {
    let rules: Vec<String> = service
        .faults()
        .list()
        .iter()
        .map(|r| r.to_string())
        .collect();
    json!({ "faults": rules })
}

/// `POST /_emu/faults`: one rule, as plain text or `{"rule":"…"}`.
fn add_fault(service: &Service, body: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(body)
        .map_err(|_| "the body is not UTF-8 text".to_owned())?
        .trim();
    let rule_text = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map
            .get("rule")
            .and_then(Value::as_str)
            .ok_or(
                "the JSON body needs a string `rule`, e.g. {\"rule\":\"event=connect,status=500\"}",
            )?
            .to_owned(),
        Ok(Value::String(rule)) => rule,
        _ => text.to_owned(),
    };
    let rule: crate::fault::FaultRule = rule_text.parse()?;
    let shown = rule.to_string();
    service.faults().add(rule)?;
    Ok(shown)
}

/// Answers one `/_emu/…` request from `peer`.
pub fn serve<B: AsRef<[u8]>>(
    service: &Service,
    req: &Request<B>,
    peer: SocketAddr,
) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let port = gate::endpoint_port(service.endpoint());
    let (response, message) = match gate::check(peer.ip(), req.headers(), req.uri(), port) {
        Ok(()) => answer(service, &method, &path, req.body().as_ref()),
        Err(refusal) => {
            let note = format!(
                "refused {} by the {} check: {}",
                peer.ip(),
                refusal.check,
                refusal.message
            );
            (
                error(StatusCode::FORBIDDEN, "Forbidden", refusal.message),
                Some(note),
            )
        }
    };
    service.traffic().emit(TrafficEvent::Admin {
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
        message,
    });
    response
}

/// Answers an admin request that passed the [`gate`]; the text is for the log line.
fn answer(
    service: &Service,
    method: &Method,
    path: &str,
    body: &[u8],
) -> (HttpResponse, Option<String>) {
    match table(method, path) {
        Some(Ok(AdminOp::Connections)) => (
            json_response(StatusCode::OK, connections(service).to_string()),
            None,
        ),
        Some(Ok(AdminOp::Reset)) => {
            let counts = reset(service);
            let note = format!(
                "closed {} connection(s), cleared {} group(s) and {} user group assignment(s)",
                counts["connectionsClosed"], counts["groupsCleared"], counts["userGroupsCleared"]
            );
            (
                json_response(StatusCode::OK, counts.to_string()),
                Some(note),
            )
        }
        Some(Ok(AdminOp::FaultsList)) => (
            json_response(StatusCode::OK, faults_json(service).to_string()),
            None,
        ),
        Some(Ok(AdminOp::FaultsAdd)) => match add_fault(service, body) {
            Ok(rule) => (
                json_response(StatusCode::CREATED, json!({ "rule": rule }).to_string()),
                Some(format!("fault rule added: {rule}")),
            ),
            Err(e) => (
                error(StatusCode::BAD_REQUEST, "InvalidFault", e.clone()),
                Some(e),
            ),
        },
        Some(Ok(AdminOp::FaultsClear)) => {
            let n = service.faults().clear();
            let mut response = json_response(StatusCode::NO_CONTENT, String::new());
            response.headers_mut().remove(http::header::CONTENT_TYPE);
            (response, Some(format!("cleared {n} fault rule(s)")))
        }
        Some(Err(allow)) => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{path} answers {allow} only"),
            );
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
            (response, None)
        }
        None => (
            error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!(
                    "nothing at {path}; the admin routes are GET /_emu/connections, \
                         POST /_emu/reset and GET/POST/DELETE /_emu/faults"
                ),
            ),
            None,
        ),
    }
}

/// A group for the admin view: its name, and namespace and room when it is a Socket.IO group.
fn group_json(name: &str) -> Value {
    match group::parse(name) {
        Some(g) => json!({ "name": name, "namespace": g.namespace, "room": g.room }),
        None => json!({ "name": name }),
    }
}

/// `GET /_emu/connections`: hubs by name, connections by id, groups by name — sorted, so two
/// snapshots of the same state compare equal.
fn connections(service: &Service) -> Value {
    let mut hubs = service.hubs();
    hubs.sort_by(|a, b| a.name().cmp(b.name()));
    let mut total = 0;
    let hubs: Vec<Value> = hubs
        .iter()
        .map(|hub| {
            let snapshot = hub.snapshot();
            total += snapshot.connections.len();
            let connections: Vec<Value> = snapshot
                .connections
                .iter()
                .map(|e| {
                    json!({
                        "connectionId": &*e.connection_id,
                        "userId": e.user_id.as_deref(),
                        "groups": e.groups.iter().map(|g| group_json(g)).collect::<Vec<_>>(),
                        "sockets": e.sockets.iter().map(|(namespace, id)| json!({
                            "namespace": namespace,
                            "socketId": &**id,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let user_groups: serde_json::Map<String, Value> = snapshot
                .user_groups
                .iter()
                .map(|(user, groups)| {
                    (
                        user.clone(),
                        Value::Array(groups.iter().map(|g| group_json(g)).collect()),
                    )
                })
                .collect();
            json!({
                "hub": hub.name(),
                "connections": connections,
                "userGroups": user_groups,
            })
        })
        .collect();
    json!({ "connections": total, "hubs": hubs })
}

/// `POST /_emu/reset`: under each hub lock, empties every group and user-group assignment and
/// collects the connections' handles; after releasing it, asks each connection to close. The
/// sessions then send every socket's `disconnected` with [`RESET_REASON`].
fn reset(service: &Service) -> Value {
    let (mut closed, mut groups_cleared, mut user_groups_cleared) = (0usize, 0usize, 0usize);
    for hub in service.hubs() {
        let reset = hub.reset();
        groups_cleared += reset.groups_cleared;
        user_groups_cleared += reset.user_groups_cleared;
        for handle in reset.handles {
            if handle.send(ConnCommand::Close {
                reason: RESET_REASON.into(),
            }) {
                closed += 1;
            }
        }
        service.release_hub(&hub);
    }
    json!({
        "connectionsClosed": closed,
        "groupsCleared": groups_cleared,
        "userGroupsCleared": user_groups_cleared,
    })
}

#[cfg(test)]
mod tests;
