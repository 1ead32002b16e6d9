//! The emulator's own admin surface under `/_emu/`, for people and test suites debugging a
//! handler. Every route it serves (the `table` below is the one place that routes them):
//!
//! - `GET /_emu/`, `GET /_emu/inspector.css`, `GET /_emu/inspector.js`,
//!   `GET /_emu/playground.css`, `GET /_emu/playground.js`: the inspector page and its files
//!   (`ASSETS`);
//! - `GET /_emu/status`, `GET /_emu/events` (streamed), `GET /_emu/entries/<seq>`,
//!   `GET /_emu/export` (a session file), `GET /_emu/lint`: the recent traffic the inspector
//!   shows ([`timeline`]);
//! - `GET /_emu/connections`: every hub's connections with their user, groups (Socket.IO
//!   groups decoded to namespace and room, docs/protocol.md §8) and namespace sockets;
//! - `POST /_emu/reset`: closes every connection (each socket gets its `disconnected` with the
//!   reason [`RESET_REASON`]) and forgets every group and user-group assignment;
//! - `GET`/`POST`/`DELETE /_emu/faults`: list, add and clear fault-injection rules
//!   ([`crate::fault`]);
//! - `POST /_emu/actions/<emit|join|leave|disconnect|close>`: the inspector's actions on a
//!   connection ([`actions`]);
//! - `POST /_emu/resend`: sends a recorded webhook call again ([`resend`]);
//! - `GET`/`POST /_emu/clients`, `POST /_emu/clients/<id>/emit`, `GET /_emu/clients/<id>/events`
//!   (streamed), `DELETE /_emu/clients/<id>`: virtual clients ([`clients`]).
//!
//! None of this exists in the cloud service, and it can close connections and make webhooks
//! fail, so [`gate`] lets through only loopback peers that name this server by a loopback
//! `Host` and send no foreign `Origin` (docs/protocol.md §14 decision 24): `server` passes the peer address of the
//! TCP connection, and a refused request gets a 403 JSON body naming the failed check.
//! This module owns its one routing `match` (`table`); it reads and changes the hub state
//! only through [`crate::service`], never holding a hub lock across an `await`, and reports each
//! call as one [`TrafficEvent::Admin`] line.

pub mod actions;
pub mod clients;
pub mod curl;
pub mod gate;
pub mod resend;
pub mod timeline;

use std::net::SocketAddr;

use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::http::{ErrorBody, HttpResponse, json_response};
use crate::service::{ConnCommand, Service, group};
use crate::traffic::TrafficEvent;

use actions::Action;

/// Path prefix of every admin route.
pub const PREFIX: &str = "/_emu/";

/// The inspector page and the files it loads, part of the binary: path (without a trailing
/// slash), content type, content. A file is added with one line here and one tag in the page.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/_emu",
        "text/html; charset=utf-8",
        include_str!("admin/page/inspector.html"),
    ),
    (
        "/_emu/inspector.css",
        "text/css; charset=utf-8",
        include_str!("admin/page/inspector.css"),
    ),
    (
        "/_emu/inspector.js",
        "text/javascript; charset=utf-8",
        include_str!("admin/page/inspector.js"),
    ),
    (
        "/_emu/playground.css",
        "text/css; charset=utf-8",
        include_str!("admin/page/playground.css"),
    ),
    (
        "/_emu/playground.js",
        "text/javascript; charset=utf-8",
        include_str!("admin/page/playground.js"),
    ),
];

/// The policy of every `/_emu/` answer: the page's own files and requests only (no inline
/// script, style or event handler, nothing from elsewhere), and no page may frame it
/// (clickjacking); `X-Frame-Options` says the same to older browsers.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; form-action 'none'; \
    object-src 'none'; frame-ancestors 'none'";

/// The `disconnected` reason of every socket closed by `POST /_emu/reset`.
pub const RESET_REASON: &str = "reset by /_emu/reset";

/// One admin operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminOp {
    /// One of [`ASSETS`], by index.
    Asset(usize),
    Status,
    Events,
    Entry(u64),
    Export,
    Lint,
    Connections,
    Reset,
    FaultsList,
    FaultsAdd,
    FaultsClear,
    Act(Action),
    Resend,
    ClientsList,
    ClientCreate,
    ClientEmit(u64),
    ClientEvents(u64),
    ClientDelete(u64),
}

impl AdminOp {
    /// Whether the call gets an admin log line when it succeeds: changes do; the page's
    /// reads do not, so an open inspector does not fill its own timeline.
    fn logged(self) -> bool {
        !matches!(
            self,
            AdminOp::Asset(_)
                | AdminOp::Connections
                | AdminOp::Status
                | AdminOp::Events
                | AdminOp::Entry(_)
                | AdminOp::Export
                | AdminOp::Lint
                | AdminOp::FaultsList
                | AdminOp::ClientsList
                | AdminOp::ClientEvents(_)
        )
    }

    /// The inspector's actions are marked as such on the timeline.
    fn origin(self) -> Option<&'static str> {
        matches!(self, AdminOp::Act(_) | AdminOp::Resend).then_some("inspector")
    }
}

/// Largest admin request body read (a fault rule, an action with its arguments), in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Every route, for the 404 answer.
const ROUTES: &str = "GET /_emu/ (the inspector, with /_emu/inspector.css, /_emu/inspector.js, \
    /_emu/playground.css and /_emu/playground.js), GET /_emu/status, GET /_emu/events, \
    GET /_emu/entries/<seq>, GET /_emu/export, GET /_emu/lint, GET /_emu/connections, \
    POST /_emu/reset, GET/POST/DELETE /_emu/faults, POST /_emu/actions/<emit|join|leave|disconnect|close>, \
    POST /_emu/resend, GET/POST /_emu/clients, POST /_emu/clients/<id>/emit, \
    GET /_emu/clients/<id>/events, DELETE /_emu/clients/<id>";

/// THE admin routing table: method and path → operation; `Err` lists the allowed methods of a
/// known path.
fn table(method: &Method, path: &str) -> Option<Result<AdminOp, &'static str>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let get = |op| {
        if method == Method::GET || method == Method::HEAD {
            Ok(op)
        } else {
            Err("GET")
        }
    };
    let post = |op| {
        if method == Method::POST {
            Ok(op)
        } else {
            Err("POST")
        }
    };
    if let Some(seq) = path.strip_prefix("/_emu/entries/") {
        return seq.parse().ok().map(|seq| get(AdminOp::Entry(seq)));
    }
    if let Some(rest) = path.strip_prefix("/_emu/clients/") {
        return client_route(method, rest);
    }
    if let Some(name) = path.strip_prefix("/_emu/actions/") {
        return Action::from_name(name).map(|a| post(AdminOp::Act(a)));
    }
    if let Some(i) = ASSETS.iter().position(|(at, _, _)| *at == path) {
        return Some(get(AdminOp::Asset(i)));
    }
    Some(match (method, path) {
        (_, "/_emu/status") => get(AdminOp::Status),
        (_, "/_emu/events") => get(AdminOp::Events),
        (_, "/_emu/export") => get(AdminOp::Export),
        (_, "/_emu/lint") => get(AdminOp::Lint),
        (_, "/_emu/connections") => get(AdminOp::Connections),
        (_, "/_emu/reset") => post(AdminOp::Reset),
        (_, "/_emu/resend") => post(AdminOp::Resend),
        (&Method::GET, "/_emu/faults") => Ok(AdminOp::FaultsList),
        (&Method::POST, "/_emu/faults") => Ok(AdminOp::FaultsAdd),
        (&Method::DELETE, "/_emu/faults") => Ok(AdminOp::FaultsClear),
        (_, "/_emu/faults") => Err("GET, POST, DELETE"),
        (&Method::GET | &Method::HEAD, "/_emu/clients") => Ok(AdminOp::ClientsList),
        (&Method::POST, "/_emu/clients") => Ok(AdminOp::ClientCreate),
        (_, "/_emu/clients") => Err("GET, POST"),
        _ => return None,
    })
}

/// `/_emu/clients/<id>`, `/_emu/clients/<id>/emit`, `/_emu/clients/<id>/events`.
fn client_route(method: &Method, rest: &str) -> Option<Result<AdminOp, &'static str>> {
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let id: u64 = id.parse().ok()?;
    Some(match (tail, method) {
        ("", &Method::DELETE) => Ok(AdminOp::ClientDelete(id)),
        ("", _) => Err("DELETE"),
        ("emit", &Method::POST) => Ok(AdminOp::ClientEmit(id)),
        ("emit", _) => Err("POST"),
        ("events", &Method::GET) => Ok(AdminOp::ClientEvents(id)),
        ("events", _) => Err("GET"),
        _ => return None,
    })
}

/// An admin JSON error.
pub fn error(status: StatusCode, code: &'static str, message: String) -> HttpResponse {
    ErrorBody::new(code, message).response(status)
}

/// Why an admin request failed: answered as [`error`] with these.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &'static str, message: String) -> AdminError {
        AdminError {
            status,
            code,
            message,
        }
    }

    fn into_response(self) -> HttpResponse {
        error(self.status, self.code, self.message)
    }
}

/// Reads the body of one `/_emu/…` request (at most [`MAX_BODY`]) and answers it, every
/// answer with the `CONTENT_SECURITY_POLICY` and its companions.
pub async fn handle(
    service: &Service,
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let response = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => {
            serve(
                service,
                &Request::from_parts(parts, collected.to_bytes()),
                peer,
            )
            .await
        }
        Err(_) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("admin request bodies are at most {MAX_BODY} bytes"),
        ),
    };
    secured(response)
}

/// `response` with the headers that keep the inspector from being framed or sniffed.
fn secured(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            http::header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ),
        (http::header::X_FRAME_OPTIONS, "DENY"),
        (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, http::HeaderValue::from_static(value));
    }
    response
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

/// Why `POST /_emu/faults` refused its body.
#[derive(Debug, thiserror::Error)]
enum FaultBodyError {
    #[error("the body is not UTF-8 text")]
    NotUtf8,
    #[error("the JSON body needs a string `rule`, e.g. {{\"rule\":\"event=connect,status=500\"}}")]
    NoRule,
    #[error("{0}")]
    Rule(#[from] crate::config::fault::FaultRuleError),
    #[error("{0}")]
    Refused(#[from] crate::hooks::AddFaultError),
}

/// `POST /_emu/faults`: one rule, as plain text or `{"rule":"…"}`.
fn add_fault(service: &Service, body: &[u8]) -> Result<String, FaultBodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| FaultBodyError::NotUtf8)?
        .trim();
    let rule_text = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map
            .get("rule")
            .and_then(Value::as_str)
            .ok_or(FaultBodyError::NoRule)?
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
pub async fn serve<B: AsRef<[u8]>>(
    service: &Service,
    req: &Request<B>,
    peer: SocketAddr,
) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let port = gate::endpoint_port(service.endpoint());
    let op = table(&method, &path).and_then(Result::ok);
    let (response, message) = match gate::check(peer.ip(), req.headers(), req.uri(), port) {
        Ok(()) => answer(service, req, req.body().as_ref()).await,
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
    let status = response.status();
    if op.is_none_or(AdminOp::logged) || status.is_client_error() || status.is_server_error() {
        service.traffic().emit(TrafficEvent::Admin {
            method: method.to_string(),
            path,
            status: status.as_u16(),
            message,
            origin: op.and_then(AdminOp::origin),
        });
    }
    response
}

/// A JSON answer (200) and no log message.
fn ok_json(value: Value) -> (HttpResponse, Option<String>) {
    (json_response(StatusCode::OK, value.to_string()), None)
}

/// A finished answer, or an error answer, with no log message.
fn either(result: Result<HttpResponse, AdminError>) -> (HttpResponse, Option<String>) {
    (result.unwrap_or_else(AdminError::into_response), None)
}

/// One of the inspector's files.
fn asset(index: usize) -> HttpResponse {
    let (_, content_type, body) = ASSETS[index];
    with_headers(
        bytes::Bytes::from_static(body.as_bytes()),
        [
            (http::header::CONTENT_TYPE, content_type),
            (http::header::CACHE_CONTROL, "no-store"),
        ],
    )
}

/// A 200 answer with `body` and these headers.
pub fn with_headers<const N: usize>(
    body: bytes::Bytes,
    headers: [(http::HeaderName, &'static str); N],
) -> HttpResponse {
    let mut response = http::Response::new(crate::http::ResponseBody::full(body));
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
    }
    response
}

/// Where the event stream starts: `?after=<seq>`, or the `Last-Event-ID` of a reconnect.
fn stream_after<B>(req: &Request<B>) -> u64 {
    let query = req.uri().query().unwrap_or("");
    let from_query = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "after")
        .and_then(|(_, v)| v.parse().ok());
    let from_header = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    from_query.or(from_header).unwrap_or(0)
}

/// Answers an admin request that passed the [`gate`]; the text is for the log line.
async fn answer<B>(
    service: &Service,
    req: &Request<B>,
    body: &[u8],
) -> (HttpResponse, Option<String>) {
    let path = req.uri().path();
    match table(req.method(), path) {
        Some(Ok(AdminOp::Asset(index))) => (asset(index), None),
        Some(Ok(AdminOp::Status)) => ok_json(timeline::status(service)),
        Some(Ok(AdminOp::Events)) => either(timeline::events(service, stream_after(req))),
        Some(Ok(AdminOp::Entry(seq))) => either(
            timeline::details(service, seq).map(|v| json_response(StatusCode::OK, v.to_string())),
        ),
        Some(Ok(AdminOp::Export)) => either(timeline::export(service)),
        Some(Ok(AdminOp::Lint)) => ok_json(timeline::lint(service)),
        Some(Ok(AdminOp::Act(action))) => acted(actions::run(service, action, body)),
        Some(Ok(AdminOp::Resend)) => acted(resend::run(service, body).await),
        Some(Ok(AdminOp::ClientsList)) => ok_json(clients::list(service)),
        Some(Ok(AdminOp::ClientCreate)) => created(clients::create(service, body).await),
        Some(Ok(AdminOp::ClientEmit(id))) => acted(clients::emit(service, id, body).await),
        Some(Ok(AdminOp::ClientEvents(id))) => either(clients::events(service, id)),
        Some(Ok(AdminOp::ClientDelete(id))) => acted(clients::delete(service, id).await),
        Some(Ok(op)) => answer_state(service, op, req.uri().query(), body),
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
                format!("nothing at {path}; the admin routes are {ROUTES}"),
            ),
            None,
        ),
    }
}

/// The answer of an action: its JSON and log message, or its error.
fn acted(outcome: Result<(Value, String), AdminError>) -> (HttpResponse, Option<String>) {
    match outcome {
        Ok((value, message)) => (
            json_response(StatusCode::OK, value.to_string()),
            Some(message),
        ),
        Err(e) => (e.into_response(), None),
    }
}

/// The answer of a creation: 201 with its JSON and log message, or its error (with the
/// reason in the log line too).
fn created(outcome: Result<(Value, String), AdminError>) -> (HttpResponse, Option<String>) {
    match outcome {
        Ok((value, message)) => (
            json_response(StatusCode::CREATED, value.to_string()),
            Some(message),
        ),
        Err(e) => {
            let note = e.message.clone();
            (e.into_response(), Some(note))
        }
    }
}

/// The operations on the service's state: connections, reset and fault rules.
fn answer_state(
    service: &Service,
    op: AdminOp,
    query: Option<&str>,
    body: &[u8],
) -> (HttpResponse, Option<String>) {
    match op {
        AdminOp::Connections => ok_json(connections(service)),
        AdminOp::Reset => {
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
        AdminOp::FaultsList => ok_json(faults_json(service)),
        AdminOp::FaultsAdd => match add_fault(service, body) {
            Ok(rule) => (
                json_response(StatusCode::CREATED, json!({ "rule": rule }).to_string()),
                Some(format!("fault rule added: {rule}")),
            ),
            Err(e) => (
                error(StatusCode::BAD_REQUEST, "InvalidFault", e.to_string()),
                Some(e.to_string()),
            ),
        },
        _ => remove_faults(service, query),
    }
}

/// `DELETE /_emu/faults` (every rule) or `DELETE /_emu/faults?rule=<rule>` (that one).
fn remove_faults(service: &Service, query: Option<&str>) -> (HttpResponse, Option<String>) {
    let one = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "rule")
        .map(|(_, v)| v.into_owned());
    let no_content = || {
        let mut response = json_response(StatusCode::NO_CONTENT, String::new());
        response.headers_mut().remove(http::header::CONTENT_TYPE);
        response
    };
    match one {
        None => {
            let n = service.faults().clear();
            (no_content(), Some(format!("cleared {n} fault rule(s)")))
        }
        Some(text) => {
            let canonical = text
                .parse::<crate::fault::FaultRule>()
                .map(|r| r.to_string())
                .unwrap_or(text);
            if service.faults().remove(&canonical) {
                (
                    no_content(),
                    Some(format!("fault rule removed: {canonical}")),
                )
            } else {
                (
                    error(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("no fault rule `{canonical}` is in force"),
                    ),
                    None,
                )
            }
        }
    }
}

/// A group for the admin view: its name, and namespace and room when it is a Socket.IO group.
fn group_json(name: &str) -> Value {
    match group::parse(name) {
        Some(g) => json!({ "name": name, "namespace": g.namespace, "room": g.room }),
        None => json!({ "name": name }),
    }
}

/// One connection of `GET /_emu/connections`, each socket with the rooms its connection is
/// in for the socket's namespace.
fn connection_json(service: &Service, e: &crate::service::hub::SnapshotConnection) -> Value {
    let age = std::time::SystemTime::now()
        .duration_since(e.opened)
        .unwrap_or_default();
    let rooms = |namespace: &str| -> Vec<String> {
        e.groups
            .iter()
            .filter_map(|g| group::parse(g))
            .filter(|g| g.namespace == namespace)
            .filter_map(|g| g.room)
            .collect()
    };
    let mut value = json!({
        "connectionId": &*e.connection_id,
        "userId": e.user_id.as_deref(),
        "transport": e.transport.as_str(),
        "connectedAt": humantime::format_rfc3339_millis(e.opened).to_string(),
        "ageMs": age.as_millis() as u64,
        "groups": e.groups.iter().map(|g| group_json(g)).collect::<Vec<_>>(),
        "sockets": e.sockets.iter().map(|(namespace, id)| json!({
            "namespace": namespace,
            "socketId": &**id,
            "rooms": rooms(namespace),
        })).collect::<Vec<_>>(),
    });
    if clients::is_virtual(service, &e.connection_id) {
        value["virtual"] = Value::Bool(true);
    }
    value
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
                .map(|c| connection_json(service, c))
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
