//! The inspector's actions on live sockets (`POST /_emu/actions/<name>`): emit an event to a
//! socket, a room or a namespace; make a socket join or leave a room; disconnect a socket; close
//! a connection. Each goes through the same hub methods and connection commands as the REST
//! API (docs/protocol.md §7, §8), so clients see exactly what a REST call would send them, but
//! none is a REST call: the lint, the recording and replay never count them as the handler's.
//! The admin log line of each carries `"origin":"inspector"`.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::service::hub::{Scope, Selection};
use crate::service::{ConnCommand, ConnHandle, Hub, Service, group};
use crate::socketio::packet::{self as sio, Packet, PacketType};

use super::AdminError;

/// The `disconnected` reason of a connection closed from the inspector.
pub const CLOSE_REASON: &str = "closed from the inspector";

/// One action, by the last segment of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Emit,
    Join,
    Leave,
    Disconnect,
    Close,
}

impl Action {
    /// The action named by `/_emu/actions/<name>`.
    pub fn from_name(name: &str) -> Option<Action> {
        Some(match name {
            "emit" => Action::Emit,
            "join" => Action::Join,
            "leave" => Action::Leave,
            "disconnect" => Action::Disconnect,
            "close" => Action::Close,
            _ => return None,
        })
    }
}

/// Who an emit goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum To {
    Socket,
    Room,
    Namespace,
}

/// The body every action reads (each uses the fields it needs).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    hub: String,
    #[serde(default = "root")]
    namespace: String,
    socket_id: Option<String>,
    connection_id: Option<String>,
    room: Option<String>,
    to: Option<To>,
    event: Option<String>,
    #[serde(default)]
    args: Vec<Value>,
}

/// The default namespace of a request body.
pub(super) fn root() -> String {
    "/".into()
}

type Outcome = Result<(Value, String), AdminError>;

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::new(StatusCode::BAD_REQUEST, "InvalidAction", message.into())
}

fn not_found(message: impl Into<String>) -> AdminError {
    AdminError::new(StatusCode::NOT_FOUND, "NotFound", message.into())
}

/// Runs one action; `Ok` carries the answer and the admin log line's message.
pub fn run(service: &Service, action: Action, body: &[u8]) -> Outcome {
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the action's JSON body is not valid: {e}")))?;
    let hub = service
        .hub(&body.hub)
        .ok_or_else(|| not_found(format!("hub `{}` has no connections", body.hub)))?;
    match action {
        Action::Emit => emit(&hub, &body),
        Action::Join | Action::Leave => membership(&hub, &body, action == Action::Join),
        Action::Disconnect => disconnect(&hub, &body),
        Action::Close => close(&hub, &body),
    }
}

/// The field `name` of the body, or a 400 naming it.
fn field<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, AdminError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad(format!("this action needs `{name}`")))
}

/// The connection holding socket `socket_id` in `namespace`, and its handle.
fn socket_connection(
    hub: &Hub,
    namespace: &str,
    socket_id: &str,
) -> Result<(Arc<str>, ConnHandle), AdminError> {
    let owner = hub.snapshot().connections.into_iter().find(|c| {
        c.sockets
            .iter()
            .any(|(ns, id)| ns == namespace && &**id == socket_id)
    });
    let owner = owner.ok_or_else(|| {
        not_found(format!(
            "no socket {socket_id} in namespace {namespace} of hub {}",
            hub.name()
        ))
    })?;
    let selected = hub.select(
        Scope::Connection(&owner.connection_id),
        &Selection::default(),
        None,
    );
    selected
        .into_iter()
        .next()
        .ok_or_else(|| not_found(format!("socket {socket_id} has just left")))
}

fn emit(hub: &Hub, body: &Body) -> Outcome {
    let event = field(&body.event, "event")?;
    let mut data = vec![Value::String(event.to_owned())];
    data.extend(body.args.iter().cloned());
    let packet = Packet {
        kind: PacketType::Event,
        nsp: body.namespace.clone(),
        id: None,
        data: Some(Value::Array(data)),
        attachments: Vec::new(),
    };
    sio::validate(&packet).map_err(|e| bad(format!("cannot emit this event: {e}")))?;
    let text: Arc<str> = format!("4{}", sio::encode(&packet).0).into();
    let ns = body.namespace.as_str();
    let to = body.to.unwrap_or(To::Socket);
    let (targets, whom) = match to {
        To::Socket => {
            let socket = field(&body.socket_id, "socketId")?;
            (
                vec![socket_connection(hub, ns, socket)?],
                format!("socket {socket}"),
            )
        }
        To::Room => {
            let room = field(&body.room, "room")?;
            let group = group::room_group(ns, room);
            let scope = Scope::Group(&group);
            let selected = hub.select(scope, &Selection::default(), Some(ns));
            (selected, format!("room `{room}` of {ns}"))
        }
        To::Namespace => {
            let selected = hub.select(Scope::All, &Selection::default(), Some(ns));
            (selected, format!("namespace {ns}"))
        }
    };
    let matched = targets
        .iter()
        .filter(|(_, handle)| handle.send(ConnCommand::Send(text.clone())))
        .count();
    Ok((
        json!({ "matched": matched }),
        format!("emitted `{event}` to {whom} ({matched} connection(s))"),
    ))
}

fn membership(hub: &Hub, body: &Body, join: bool) -> Outcome {
    let socket = field(&body.socket_id, "socketId")?;
    let room = field(&body.room, "room")?;
    let (connection_id, _) = socket_connection(hub, &body.namespace, socket)?;
    let group = group::room_group(&body.namespace, room);
    let changed = if join {
        hub.join(&connection_id, &group)
    } else {
        hub.leave(&connection_id, &group)
    };
    let verb = if join { "joined" } else { "left" };
    Ok((
        json!({ "ok": true, "changed": changed }),
        format!("socket {socket} {verb} room `{room}` of {}", body.namespace),
    ))
}

fn disconnect(hub: &Hub, body: &Body) -> Outcome {
    let socket = field(&body.socket_id, "socketId")?;
    let (_, handle) = socket_connection(hub, &body.namespace, socket)?;
    let sent = handle.send(ConnCommand::DisconnectSocket {
        namespace: body.namespace.clone(),
        close: false,
    });
    Ok((
        json!({ "ok": sent }),
        format!("disconnected socket {socket} of {}", body.namespace),
    ))
}

fn close(hub: &Hub, body: &Body) -> Outcome {
    let connection_id = field(&body.connection_id, "connectionId")?;
    let selected = hub.select(
        Scope::Connection(connection_id),
        &Selection::default(),
        None,
    );
    let (_, handle) = selected.into_iter().next().ok_or_else(|| {
        not_found(format!(
            "no connection {connection_id} in hub {}",
            hub.name()
        ))
    })?;
    let sent = handle.send(ConnCommand::Close {
        reason: CLOSE_REASON.into(),
    });
    Ok((
        json!({ "ok": sent }),
        format!("closed connection {connection_id}"),
    ))
}
