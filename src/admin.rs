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
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use bytes::Bytes;
    use tokio_util::sync::CancellationToken;

    use crate::config::ServeConfig;
    use crate::service::ConnHandle;
    use crate::traffic::Traffic;

    fn service() -> Service {
        let faults = crate::fault::Faults::new(Vec::new(), None, Traffic::silent());
        Service::new(
            Arc::new(ServeConfig::default()),
            "http://localhost:8080".into(),
            Traffic::silent(),
            CancellationToken::new(),
        )
        .with_hooks(crate::hooks::Hooks {
            faults: Arc::new(faults),
            ..Default::default()
        })
    }

    /// A request as curl sends it to the service at `http://localhost:8080`.
    fn empty_request(method: Method, path: &str) -> Request<Bytes> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost:8080")
            .body(Bytes::new())
            .unwrap()
    }

    async fn body(response: HttpResponse) -> Value {
        use http_body_util::BodyExt;
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);

    #[tokio::test]
    async fn only_loopback_peers() {
        let service = service();
        let peer = SocketAddr::new("192.168.1.9".parse().unwrap(), 5);
        let response = serve(
            &service,
            &empty_request(Method::GET, "/_emu/connections"),
            peer,
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let json = body(response).await;
        assert_eq!(json["code"], "Forbidden");
        assert!(json["message"].as_str().unwrap().contains("192.168.1.9"));
    }

    #[tokio::test]
    async fn refused_requests_change_nothing() {
        let service = service();
        let mut req = empty_request(Method::POST, "/_emu/faults");
        *req.body_mut() = Bytes::from_static(b"event=connect,status=500");
        req.headers_mut().insert(
            "origin",
            http::HeaderValue::from_static("http://evil.example"),
        );
        let response = serve(&service, &req, LOOPBACK);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let json = body(response).await;
        assert_eq!(json["code"], "Forbidden");
        assert!(
            json["message"].as_str().unwrap().contains("Origin"),
            "{json}"
        );
        assert!(service.faults().list().is_empty());

        req.headers_mut().insert(
            "origin",
            http::HeaderValue::from_static("http://localhost:8080"),
        );
        assert_eq!(
            serve(&service, &req, LOOPBACK).status(),
            StatusCode::CREATED
        );
        assert_eq!(service.faults().list().len(), 1);
    }

    #[test]
    fn routes() {
        let service = service();
        let status = |m: Method, p: &str| serve(&service, &empty_request(m, p), LOOPBACK).status();
        assert_eq!(status(Method::GET, "/_emu/connections"), StatusCode::OK);
        assert_eq!(status(Method::GET, "/_emu/connections/"), StatusCode::OK);
        assert_eq!(
            status(Method::POST, "/_emu/connections"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(Method::GET, "/_emu/reset"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(status(Method::GET, "/_emu/nope"), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn view_and_reset() {
        let service = service();
        let hub = service.hub_or_create("chat").unwrap();
        let closes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = closes.clone();
        hub.register(
            "c1".into(),
            Some("alice".into()),
            &["plain".into()],
            ConnHandle::new(move |c| {
                sink.lock().unwrap().push(c);
                true
            }),
        );
        hub.socket_joined("c1", "/ns", &Arc::from("s1"));
        hub.add_user_to_group("bob", "vip");

        let view = body(serve(
            &service,
            &empty_request(Method::GET, "/_emu/connections"),
            LOOPBACK,
        ))
        .await;
        assert_eq!(view["connections"], 1);
        let conn = &view["hubs"][0]["connections"][0];
        assert_eq!(conn["connectionId"], "c1");
        assert_eq!(conn["userId"], "alice");
        assert_eq!(
            conn["sockets"],
            json!([{ "namespace": "/ns", "socketId": "s1" }])
        );
        let groups = conn["groups"].as_array().unwrap();
        assert!(groups.contains(&json!({ "name": "0~L25z~", "namespace": "/ns", "room": null })));
        assert!(
            groups.contains(&json!({ "name": "0~L25z~czE", "namespace": "/ns", "room": "s1" }))
        );
        assert!(groups.contains(&json!({ "name": "plain" })));
        assert_eq!(
            view["hubs"][0]["userGroups"]["bob"],
            json!([{ "name": "vip" }])
        );

        let counts = body(serve(
            &service,
            &empty_request(Method::POST, "/_emu/reset"),
            LOOPBACK,
        ))
        .await;
        assert_eq!(
            counts,
            json!({ "connectionsClosed": 1, "groupsCleared": 3, "userGroupsCleared": 1 })
        );
        let snapshot = hub.snapshot();
        assert!(
            hub.known_groups().is_empty(),
            "no group and no assignment is left"
        );
        assert!(snapshot.user_groups.is_empty());
        assert!(snapshot.connections[0].groups.is_empty());
        let closes = closes.lock().unwrap();
        assert!(
            matches!(&closes[..], [ConnCommand::Close { reason }] if reason == RESET_REASON),
            "{closes:?}"
        );
    }
}
