//! The Web PubSub data-plane REST API under `/api/hubs/<hub>/…` (docs/protocol.md §7): what the developer's
//! event handler (the Functions output binding, the `@azure/web-pubsub` and
//! `azure-messaging-webpubsubservice` SDKs) calls to send to sockets, rooms and namespaces, to
//! manage groups and to close connections.
//!
//! `server` hands every `/api/…` request except `/api/health` to [`handle`]. This module owns the
//! one routing table (`table`, a single `match` over method and path) and the pipeline every
//! call goes through: route (404/405) → hub name (400) → `api-version` (400) → Bearer token
//! (401, unless `rest_anonymous`) → `--strict-hubs` (404) → the operation in [`operations`]. Each
//! call ends with exactly one [`TrafficEvent::Rest`] line. Errors become responses only in
//! [`error`]; query, token and body reading live in [`request`]; payload validation and delivery
//! in [`send`]. The pipeline ([`run`]) and the operations are written once over a [`Store`]:
//! `serve` gives them the live service (whose hub locks are never held across an `await`),
//! `replay` its recorded world; each operation's contract is declared in [`contract`].

pub mod contract;
pub mod error;
pub mod operations;
pub mod paging;
pub mod request;
pub mod send;
pub mod store;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request};
use hyper::body::{Body, Incoming};
use percent_encoding::percent_decode_str;

use crate::auth::Endpoint;
use crate::config::valid_hub_name;
use crate::http::HttpResponse;
use crate::service::{Service, group};
use crate::traffic::hop::RestHop;
use crate::traffic::rest_call::{OperationName, RestCall, query_map};
use crate::traffic::{TrafficEvent, millis};

pub use error::RestError;
use request::{Query, RequestBody};
pub use store::Store;

/// Path prefix of every hub-scoped operation.
const HUBS_PREFIX: &str = "/api/hubs/";

/// One REST operation with its decoded path parameters; names follow docs/protocol.md §0 R1's operationIds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    SendToAll,
    SendToGroup {
        group: String,
    },
    SendToConnection {
        connection_id: String,
    },
    SendToUser {
        user_id: String,
    },
    AddConnectionsToGroups,
    RemoveConnectionsFromGroups,
    AddConnectionToGroup {
        group: String,
        connection_id: String,
    },
    RemoveConnectionFromGroup {
        group: String,
        connection_id: String,
    },
    RemoveConnectionFromAllGroups {
        connection_id: String,
    },
    CloseConnection {
        connection_id: String,
    },
    CloseAllConnections,
    CloseGroupConnections {
        group: String,
    },
    CloseUserConnections {
        user_id: String,
    },
    ConnectionExists {
        connection_id: String,
    },
    GroupExists {
        group: String,
    },
    UserExists {
        user_id: String,
    },
    AddUserToGroup {
        user_id: String,
        group: String,
    },
    RemoveUserFromGroup {
        user_id: String,
        group: String,
    },
    RemoveUserFromAllGroups {
        user_id: String,
    },
    ListConnectionsInGroup {
        group: String,
    },
    GenerateClientToken,
    GrantPermission {
        permission: String,
        connection_id: String,
    },
    CheckPermission {
        permission: String,
        connection_id: String,
    },
    RevokePermission {
        permission: String,
        connection_id: String,
    },
}

impl Operation {
    /// The docs/protocol.md §0 R1 operationId (the live log's operation name).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The operationId as data, without the path parameters.
    pub fn kind(&self) -> OperationName {
        match self {
            Operation::SendToAll => OperationName::SendToAll,
            Operation::SendToGroup { .. } => OperationName::SendToGroup,
            Operation::SendToConnection { .. } => OperationName::SendToConnection,
            Operation::SendToUser { .. } => OperationName::SendToUser,
            Operation::AddConnectionsToGroups => OperationName::AddConnectionsToGroups,
            Operation::RemoveConnectionsFromGroups => OperationName::RemoveConnectionsFromGroups,
            Operation::AddConnectionToGroup { .. } => OperationName::AddConnectionToGroup,
            Operation::RemoveConnectionFromGroup { .. } => OperationName::RemoveConnectionFromGroup,
            Operation::RemoveConnectionFromAllGroups { .. } => {
                OperationName::RemoveConnectionFromAllGroups
            }
            Operation::CloseConnection { .. } => OperationName::CloseConnection,
            Operation::CloseAllConnections => OperationName::CloseAllConnections,
            Operation::CloseGroupConnections { .. } => OperationName::CloseGroupConnections,
            Operation::CloseUserConnections { .. } => OperationName::CloseUserConnections,
            Operation::ConnectionExists { .. } => OperationName::ConnectionExists,
            Operation::GroupExists { .. } => OperationName::GroupExists,
            Operation::UserExists { .. } => OperationName::UserExists,
            Operation::AddUserToGroup { .. } => OperationName::AddUserToGroup,
            Operation::RemoveUserFromGroup { .. } => OperationName::RemoveUserFromGroup,
            Operation::RemoveUserFromAllGroups { .. } => OperationName::RemoveUserFromAllGroups,
            Operation::ListConnectionsInGroup { .. } => OperationName::ListConnectionsInGroup,
            Operation::GenerateClientToken => OperationName::GenerateClientToken,
            Operation::GrantPermission { .. } => OperationName::GrantPermission,
            Operation::CheckPermission { .. } => OperationName::CheckPermission,
            Operation::RevokePermission { .. } => OperationName::RevokePermission,
        }
    }

    /// What the operation addresses, for the live log; Socket.IO groups are decoded.
    pub fn target(&self) -> String {
        match self {
            Operation::SendToAll
            | Operation::CloseAllConnections
            | Operation::AddConnectionsToGroups
            | Operation::RemoveConnectionsFromGroups => "all connections".to_owned(),
            Operation::GenerateClientToken => "client token".to_owned(),
            Operation::SendToGroup { group }
            | Operation::CloseGroupConnections { group }
            | Operation::GroupExists { group }
            | Operation::ListConnectionsInGroup { group } => describe_group(group),
            Operation::SendToConnection { connection_id }
            | Operation::RemoveConnectionFromAllGroups { connection_id }
            | Operation::CloseConnection { connection_id }
            | Operation::ConnectionExists { connection_id } => {
                format!("connection {connection_id}")
            }
            Operation::AddConnectionToGroup {
                group,
                connection_id,
            }
            | Operation::RemoveConnectionFromGroup {
                group,
                connection_id,
            } => format!("connection {connection_id}, {}", describe_group(group)),
            Operation::SendToUser { user_id }
            | Operation::CloseUserConnections { user_id }
            | Operation::UserExists { user_id }
            | Operation::RemoveUserFromAllGroups { user_id } => format!("user {user_id:?}"),
            Operation::AddUserToGroup { user_id, group }
            | Operation::RemoveUserFromGroup { user_id, group } => {
                format!("user {user_id:?}, {}", describe_group(group))
            }
            Operation::GrantPermission {
                permission,
                connection_id,
            }
            | Operation::CheckPermission {
                permission,
                connection_id,
            }
            | Operation::RevokePermission {
                permission,
                connection_id,
            } => format!("permission {permission} of connection {connection_id}"),
        }
    }
}

/// A group as the live log shows it: Socket.IO groups decoded back to namespace and room, e.g.
/// `group 0~L2NoYXQ~cm9vbQ (/chat room "room")` or `group 0~L2NoYXQ~ (namespace /chat)`.
pub fn describe_group(name: &str) -> String {
    match group::parse(name) {
        Some(group::SioGroup {
            namespace,
            room: Some(room),
        }) => format!("group {name} ({namespace} room {room:?})"),
        Some(group::SioGroup {
            namespace,
            room: None,
        }) => format!("group {name} (namespace {namespace})"),
        None => format!("group {name}"),
    }
}

/// The HTTP methods the table distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Head,
    Put,
    Post,
    Delete,
}

impl Verb {
    const ALL: [Verb; 5] = [Verb::Get, Verb::Head, Verb::Put, Verb::Post, Verb::Delete];

    fn of(method: &Method) -> Option<Verb> {
        Some(match *method {
            Method::GET => Verb::Get,
            Method::HEAD => Verb::Head,
            Method::PUT => Verb::Put,
            Method::POST => Verb::Post,
            Method::DELETE => Verb::Delete,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Head => "HEAD",
            Verb::Put => "PUT",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }
}

/// THE routing table: method and decoded path segments after `/api/hubs/<hub>/` → operation
/// (docs/protocol.md §7.2). Existence checks answer HEAD and also GET.
fn table(verb: Verb, path: &[&str]) -> Option<Operation> {
    use Operation as Op;
    use Verb::*;
    let s = |v: &str| v.to_owned();
    Some(match (verb, path) {
        (Post, [":send"]) => Op::SendToAll,
        (Post, [":addToGroups"]) => Op::AddConnectionsToGroups,
        (Post, [":removeFromGroups"]) => Op::RemoveConnectionsFromGroups,
        (Post, [":closeConnections"]) => Op::CloseAllConnections,
        (Post, [":generateToken"]) => Op::GenerateClientToken,
        (Head | Get, ["groups", g]) => Op::GroupExists { group: s(g) },
        (Post, ["groups", g, ":send"]) => Op::SendToGroup { group: s(g) },
        (Post, ["groups", g, ":closeConnections"]) => Op::CloseGroupConnections { group: s(g) },
        (Get, ["groups", g, "connections"]) => Op::ListConnectionsInGroup { group: s(g) },
        (Put, ["groups", g, "connections", c]) => Op::AddConnectionToGroup {
            group: s(g),
            connection_id: s(c),
        },
        (Delete, ["groups", g, "connections", c]) => Op::RemoveConnectionFromGroup {
            group: s(g),
            connection_id: s(c),
        },
        (Head | Get, ["connections", c]) => Op::ConnectionExists {
            connection_id: s(c),
        },
        (Delete, ["connections", c]) => Op::CloseConnection {
            connection_id: s(c),
        },
        (Post, ["connections", c, ":send"]) => Op::SendToConnection {
            connection_id: s(c),
        },
        (Delete, ["connections", c, "groups"]) => Op::RemoveConnectionFromAllGroups {
            connection_id: s(c),
        },
        (Head | Get, ["users", u]) => Op::UserExists { user_id: s(u) },
        (Post, ["users", u, ":send"]) => Op::SendToUser { user_id: s(u) },
        (Post, ["users", u, ":closeConnections"]) => Op::CloseUserConnections { user_id: s(u) },
        (Delete, ["users", u, "groups"]) => Op::RemoveUserFromAllGroups { user_id: s(u) },
        (Put, ["users", u, "groups", g]) => Op::AddUserToGroup {
            user_id: s(u),
            group: s(g),
        },
        (Delete, ["users", u, "groups", g]) => Op::RemoveUserFromGroup {
            user_id: s(u),
            group: s(g),
        },
        (Put, ["permissions", p, "connections", c]) => Op::GrantPermission {
            permission: s(p),
            connection_id: s(c),
        },
        (Head | Get, ["permissions", p, "connections", c]) => Op::CheckPermission {
            permission: s(p),
            connection_id: s(c),
        },
        (Delete, ["permissions", p, "connections", c]) => Op::RevokePermission {
            permission: s(p),
            connection_id: s(c),
        },
        _ => return None,
    })
}

/// Resolves a request to its hub (as written in the path, percent-decoded) and operation.
pub fn route(method: &Method, path: &str) -> Result<(String, Operation), RestError> {
    let no_route = || RestError::NoSuchRoute {
        path: path.to_owned(),
    };
    let rest = path.strip_prefix(HUBS_PREFIX).ok_or_else(no_route)?;
    let mut segments = Vec::with_capacity(6);
    for raw in rest.split('/') {
        segments.push(decode_segment(raw)?);
    }
    let (hub, tail) = segments.split_first().ok_or_else(no_route)?;
    let tail: Vec<&str> = tail.iter().map(|s| s.as_ref()).collect();
    if let Some(op) = Verb::of(method).and_then(|verb| table(verb, &tail)) {
        return Ok((hub.clone().into_owned(), op));
    }
    let allowed: Vec<&str> = Verb::ALL
        .into_iter()
        .filter(|&verb| table(verb, &tail).is_some())
        .map(Verb::as_str)
        .collect();
    if allowed.is_empty() {
        return Err(no_route());
    }
    Err(RestError::MethodNotAllowed {
        method: method.to_string(),
        path: path.to_owned(),
        allowed: allowed.join(", "),
    })
}

/// Percent-decodes one path segment (group names and user ids may hold any character).
fn decode_segment(raw: &str) -> Result<Cow<'_, str>, RestError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| RestError::InvalidParameter {
            name: "path",
            message: format!("path segment `{raw}` is not percent-encoded UTF-8"),
        })
}

/// What the live log line of one call says beyond method and status.
#[derive(Debug, Default)]
pub struct Call {
    pub operation: &'static str,
    pub hub: String,
    pub target: String,
    pub matched: Option<usize>,
    /// A note for a successful call (the payload sent, a hint).
    pub note: Option<String>,
    /// The request body, kept only while recording.
    pub body: Option<String>,
}

impl Call {
    /// Keeps the body for the recording, if one is being written.
    pub fn keep_body(&mut self, store: &dyn Store, bytes: &[u8]) {
        if store.keeps_bodies() {
            self.body = Some(String::from_utf8_lossy(bytes).into_owned());
        }
    }
}

/// Answers one REST request.
pub async fn handle(service: &Arc<Service>, req: Request<Incoming>) -> HttpResponse {
    serve(service, req).await
}

/// [`handle`] for any body type, so tests can call it without a socket.
pub async fn serve<B: RequestBody>(service: &Service, req: Request<B>) -> HttpResponse {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let mut call = Call {
        operation: "Unknown",
        target: parts.uri.path().to_owned(),
        ..Call::default()
    };
    let outcome = run(service, &parts, body, &mut call).await;
    let message = match &outcome {
        Ok(_) => call.note.take(),
        Err(error) => Some(error.to_string()),
    };
    let response = respond(&parts.method, outcome);
    let status = response.status().as_u16();
    let operation = OperationName::from_name(call.operation);
    let traffic = service.traffic();
    if traffic.verbose() || traffic.recording() {
        traffic.emit(TrafficEvent::Rest(Box::new(RestHop {
            call: RestCall {
                method: parts.method.clone(),
                operation,
                hub: call.hub,
                path: parts.uri.path().to_owned(),
                query: query_map(parts.uri.query()),
                body: call.body.take().unwrap_or_default(),
                status,
            },
            target: call.target,
            matched: call.matched,
            latency_ms: millis(started.elapsed()),
            message,
        })));
    }
    // The call's session line waits for the recording's file: so does the caller's answer.
    service.traffic().recording_room().await;
    response
}

/// The HTTP answer to a call's outcome; a HEAD gets the headers only.
pub fn respond(method: &Method, outcome: Result<operations::Reply, RestError>) -> HttpResponse {
    let response = match outcome {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    };
    if *method == Method::HEAD {
        without_body(response)
    } else {
        response
    }
}

/// A HEAD answer: the headers of the GET answer, `Content-Length` included, and no body, as the
/// service answers a HEAD for a missing user (docs/protocol.md §7.5).
fn without_body(response: HttpResponse) -> HttpResponse {
    let length = response.body().size_hint().exact().unwrap_or(0);
    let (mut parts, _) = response.into_parts();
    if length > 0 {
        parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(length),
        );
    }
    HttpResponse::from_parts(parts, crate::http::ResponseBody::empty())
}

/// The pipeline of one call over any [`Store`] (see the module docs for the order of the
/// checks): what `serve` and `replay` both run.
pub async fn run<B: RequestBody>(
    store: &dyn Store,
    parts: &http::request::Parts,
    body: B,
    call: &mut Call,
) -> Result<operations::Reply, RestError> {
    let (hub, operation) = route(&parts.method, parts.uri.path())?;
    call.operation = operation.name();
    call.target = operation.target();
    call.hub.clone_from(&hub);
    if !valid_hub_name(&hub) {
        return Err(RestError::InvalidHubName { hub });
    }
    let query = Query::parse(parts.uri.query());
    let version = query.api_version(&|message| store.warn(message, None))?;
    store
        .observer()
        .api_version(call.operation, version, &request::KNOWN_API_VERSIONS);
    let endpoint = Endpoint::parse(store.endpoint()).ok();
    let fallback_host = endpoint.as_ref().map_or("", Endpoint::authority);
    let url = request::request_url(parts, fallback_host);
    store.admit(&hub, &parts.headers, &url)?;
    let ctx = operations::Ctx {
        store,
        hub: &hub,
        query: &query,
        headers: &parts.headers,
        url: &url,
    };
    operations::execute(&ctx, operation, body, call).await
}

#[cfg(test)]
mod tests;
