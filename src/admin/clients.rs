//! Virtual clients: Socket.IO clients the inspector creates and drives, so a handler can be
//! tried without writing one. `POST /_emu/clients` connects one, `GET /_emu/clients` lists
//! them, `POST /_emu/clients/<id>/emit` sends an event (and waits for its ack),
//! `GET /_emu/clients/<id>/events` streams what it receives (server-sent events) and
//! `DELETE /_emu/clients/<id>` disconnects it.
//!
//! Each is a real client ([`crate::client`]) connected over loopback to this server's own
//! listener with a token minted inside: it goes through the real handshake, its `connect`,
//! `connected`, events and `disconnected` reach the webhook through its socket's lane like any
//! client's, and its traffic is recorded and replayable (it is a client of the handler, not an
//! inspector action). Its connection is marked `"virtual": true` in `/_emu/connections` and on
//! the timeline. Bounds: at most [`MAX_CLIENTS`] at once (429 past that); what one received is
//! kept for late readers up to [`HISTORY_EVENTS`] events and [`HISTORY_BYTES`] bytes (oldest
//! dropped first, and the stream says how many), and it reads from the server with the byte
//! bounds of [`crate::client::engine`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::{self, TokenClaims};
use crate::client::{self, Client, ConnectError, Options, Received, Target, TransportChoice};
use crate::http::{HttpResponse, ResponseBody};
use crate::service::Service;

use super::AdminError;

/// Most virtual clients at once.
pub const MAX_CLIENTS: usize = 100;
/// Most received events kept per client for a stream opened later.
pub const HISTORY_EVENTS: usize = 256;
/// Most bytes of received events kept per client.
pub const HISTORY_BYTES: usize = 1024 * 1024;
/// How long connecting, an ack, or a disconnect may take.
pub const WAIT: Duration = Duration::from_secs(10);
/// Connection ids remembered as virtual after their client is gone (for the timeline).
const REMEMBERED: usize = 1024;
/// Query parameters the handshake sets itself; a body's values for them are ignored.
const RESERVED_QUERY: [&str; 5] = ["EIO", "transport", "sid", "t", "access_token"];
/// Lifetime of the minted token.
const TOKEN_LIFETIME_SECS: u64 = 3600;

/// The virtual clients of one service (kept with it as a [`Service::extension`]).
#[derive(Default)]
pub struct VirtualClients {
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Live clients by id.
    clients: HashMap<u64, Arc<VirtualClient>>,
    /// Clients the server disconnected, newest last (at most [`MAX_CLIENTS`]): their stream
    /// still tells why, until DELETE or until newer ones push them out.
    ended: VecDeque<Arc<VirtualClient>>,
    /// Slots taken by clients still connecting.
    connecting: usize,
    /// Connection ids of virtual clients, the newest [`REMEMBERED`] (for the timeline).
    virtual_ids: HashSet<String>,
    virtual_order: VecDeque<String>,
}

/// One connected virtual client.
struct VirtualClient {
    id: u64,
    hub: String,
    namespace: String,
    user_id: Option<String>,
    client: Client,
    feed: Mutex<Feed>,
    /// Live feed lines (`data:` JSON); a reader that lags is told how many it missed.
    live: broadcast::Sender<Arc<str>>,
}

/// What a client received, kept for readers that come later.
#[derive(Default)]
struct Feed {
    lines: VecDeque<Arc<str>>,
    bytes: usize,
    dropped: u64,
    ended: bool,
}

impl Feed {
    fn push(&mut self, line: Arc<str>) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > HISTORY_EVENTS || self.bytes > HISTORY_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.dropped += 1;
        }
    }
}

impl VirtualClient {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "hub": self.hub,
            "namespace": self.namespace,
            "userId": self.user_id,
            "connectionId": self.client.connection_id,
            "socketId": self.client.socket_id,
        })
    }
}

fn lock(clients: &VirtualClients) -> std::sync::MutexGuard<'_, State> {
    clients.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The virtual clients of `service`.
fn registry(service: &Service) -> Arc<VirtualClients> {
    service.extension::<VirtualClients>()
}

/// Whether `connection_id` is (or was) a virtual client's.
pub fn is_virtual(service: &Service, connection_id: &str) -> bool {
    registry(service).contains(connection_id)
}

/// The virtual clients of `service`, for marking timeline objects on the reader's side.
pub fn marker(service: &Service) -> Arc<VirtualClients> {
    registry(service)
}

impl VirtualClients {
    fn contains(&self, connection_id: &str) -> bool {
        lock(self).virtual_ids.contains(connection_id)
    }

    /// Adds `"virtual": true` to a timeline object of a virtual client's connection.
    pub fn mark(&self, value: &mut Value) {
        let virtual_one = match value.get("connectionId").and_then(Value::as_str) {
            Some(id) => self.contains(id),
            None => false,
        };
        if virtual_one {
            value["virtual"] = Value::Bool(true);
        }
    }
}

/// `POST /_emu/clients` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    hub: String,
    #[serde(default = "super::actions::root")]
    namespace: String,
    user_id: Option<String>,
    auth: Option<Value>,
    #[serde(default)]
    query: HashMap<String, String>,
}

fn bad(message: String) -> AdminError {
    AdminError::new(StatusCode::BAD_REQUEST, "InvalidClient", message)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not the expected JSON: {e}")))
}

/// A slot among [`MAX_CLIENTS`] held while connecting; dropped once the client is registered
/// (it then counts as a client) or when connecting failed.
struct Slot(Arc<VirtualClients>);

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.0).connecting -= 1;
    }
}

/// `POST /_emu/clients`: connects a client through the real handshake.
pub async fn create(service: &Service, body: &[u8]) -> Result<(Value, String), AdminError> {
    let body: CreateBody = parse(body)?;
    if !crate::config::valid_hub_name(&body.hub) {
        return Err(bad(format!("`{}` is not a valid hub name", body.hub)));
    }
    if !body.namespace.starts_with('/') {
        return Err(bad(format!(
            "namespace `{}` must start with /",
            body.namespace
        )));
    }
    if matches!(&body.auth, Some(a) if !a.is_object() && !a.is_null()) {
        return Err(bad("`auth` must be a JSON object".into()));
    }
    if body.user_id.as_deref() == Some("") {
        return Err(bad("`userId` must not be empty; omit it for no user".into()));
    }
    let clients = registry(service);
    let slot = {
        let mut state = lock(&clients);
        if state.clients.len() + state.connecting >= MAX_CLIENTS {
            return Err(AdminError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyClients",
                format!(
                    "at most {MAX_CLIENTS} virtual clients at once; DELETE /_emu/clients/<id> one first"
                ),
            ));
        }
        state.connecting += 1;
        Slot(clients.clone())
    };
    let options = options(service, &body);
    let (client, received) = match tokio::time::timeout(WAIT, client::connect(options)).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(refused(&e)),
        Err(_) => {
            return Err(AdminError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "ConnectTimeout",
                format!("the connect was not answered within {}s", WAIT.as_secs()),
            ));
        }
    };
    let id = clients.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let (live, _) = broadcast::channel(HISTORY_EVENTS);
    let vc = Arc::new(VirtualClient {
        id,
        hub: body.hub,
        namespace: body.namespace,
        user_id: body.user_id,
        client,
        feed: Mutex::new(Feed::default()),
        live,
    });
    {
        let mut state = lock(&clients);
        state.clients.insert(id, vc.clone());
        remember(&mut state, &vc.client.connection_id);
    }
    drop(slot);
    tokio::spawn(pump(clients, vc.clone(), received));
    let note = format!(
        "virtual client {id} connected to hub {} namespace {} as connection {}",
        vc.hub, vc.namespace, vc.client.connection_id
    );
    Ok((vc.json(), note))
}

fn remember(state: &mut State, connection_id: &str) {
    if state.virtual_ids.insert(connection_id.to_owned()) {
        state.virtual_order.push_back(connection_id.to_owned());
    }
    while state.virtual_order.len() > REMEMBERED {
        if let Some(old) = state.virtual_order.pop_front() {
            state.virtual_ids.remove(&old);
        }
    }
}

/// The client options: this server's own listener, the hub's path and a minted token.
fn options(service: &Service, body: &CreateBody) -> Options {
    let endpoint = service.endpoint();
    let mut query: Vec<(String, String)> = body
        .query
        .iter()
        .filter(|(k, _)| !RESERVED_QUERY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    query.sort();
    if let Some(key) = service.config().access_keys.first() {
        let token = auth::mint(
            key,
            &TokenClaims {
                aud: auth::client_audience(endpoint, &body.hub),
                sub: body.user_id.clone(),
                lifetime_secs: TOKEN_LIFETIME_SECS,
                now: auth::now_unix(),
                ..TokenClaims::default()
            },
        );
        query.push(("access_token".into(), token));
    }
    Options {
        target: Target {
            base: endpoint.to_owned(),
            path: format!("{}{}", auth::CLIENT_PATH, body.hub),
            query,
        },
        transport: TransportChoice::WebSocket,
        namespace: body.namespace.clone(),
        auth: body.auth.clone().filter(|a| !a.is_null()),
    }
}

/// A refused connect, with its reason.
fn refused(e: &ConnectError) -> AdminError {
    let code = match e {
        ConnectError::Refused(_) => "ConnectRefused",
        ConnectError::Engine(client::EngineError::Refused { .. }) => "HandshakeRefused",
        _ => "ConnectFailed",
    };
    AdminError::new(StatusCode::FORBIDDEN, code, e.to_string())
}

/// Moves what the client receives into its feed until it is gone, then forgets it.
async fn pump(
    clients: Arc<VirtualClients>,
    vc: Arc<VirtualClient>,
    mut received: tokio::sync::mpsc::Receiver<Received>,
) {
    while let Some(item) = received.recv().await {
        let last = matches!(item, Received::Disconnected { .. });
        let line: Arc<str> = item.to_json().to_string().into();
        {
            let mut feed = vc.feed.lock().unwrap_or_else(|e| e.into_inner());
            feed.push(line.clone());
            feed.ended = last;
            let _ = vc.live.send(line);
        }
        if last {
            break;
        }
    }
    let mut state = lock(&clients);
    if state.clients.remove(&vc.id).is_some() {
        state.ended.push_back(vc);
        if state.ended.len() > MAX_CLIENTS {
            state.ended.pop_front();
        }
    }
}

/// The client `id` (live, or ended and not yet deleted), or 404.
fn find(service: &Service, id: u64) -> Result<Arc<VirtualClient>, AdminError> {
    let clients = registry(service);
    let state = lock(&clients);
    state
        .clients
        .get(&id)
        .or_else(|| state.ended.iter().find(|c| c.id == id))
        .cloned()
        .ok_or_else(|| {
            AdminError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no virtual client {id}: it was never created or was deleted"),
            )
        })
}

/// `GET /_emu/clients`.
pub fn list(service: &Service) -> Value {
    let clients = registry(service);
    let state = lock(&clients);
    let mut all: Vec<&Arc<VirtualClient>> = state.clients.values().collect();
    all.sort_by_key(|c| c.id);
    json!({ "clients": all.iter().map(|c| c.json()).collect::<Vec<_>>(), "max": MAX_CLIENTS })
}

/// `POST /_emu/clients/<id>/emit` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitBody {
    event: String,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    ack: bool,
}

/// `POST /_emu/clients/<id>/emit`: sends the event; with `ack`, answers with its arguments.
pub async fn emit(service: &Service, id: u64, body: &[u8]) -> Result<(Value, String), AdminError> {
    let body: EmitBody = parse(body)?;
    if body.event.is_empty()
        || crate::socketio::packet::RESERVED_EVENTS.contains(&body.event.as_str())
    {
        return Err(bad(format!(
            "`{}` cannot be emitted: the name is empty or reserved",
            body.event
        )));
    }
    let vc = find(service, id)?;
    if !vc.client.is_open() {
        return Err(AdminError::new(
            StatusCode::CONFLICT,
            "Disconnected",
            format!("virtual client {id} is disconnected"),
        ));
    }
    let note = format!("virtual client {id} emitted {}", body.event);
    let Some(rx) = vc.client.emit(&body.event, body.args, body.ack) else {
        return Ok((json!({ "sent": true }), note));
    };
    match tokio::time::timeout(WAIT, rx).await {
        Ok(Ok(args)) => Ok((json!({ "sent": true, "ack": args }), note)),
        Ok(Err(_)) => Err(AdminError::new(
            StatusCode::CONFLICT,
            "Disconnected",
            format!("virtual client {id} was disconnected before the ack came"),
        )),
        Err(_) => Err(AdminError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "AckTimeout",
            format!(
                "no ack within {}s (does the handler answer with an ack?)",
                WAIT.as_secs()
            ),
        )),
    }
}

/// `DELETE /_emu/clients/<id>`: disconnects and waits (bounded) until it is gone.
pub async fn delete(service: &Service, id: u64) -> Result<(Value, String), AdminError> {
    let vc = find(service, id)?;
    let mut live = vc.live.subscribe();
    let ended = vc.feed.lock().unwrap_or_else(|e| e.into_inner()).ended;
    vc.client.disconnect();
    if !ended {
        let _ = tokio::time::timeout(WAIT, async {
            loop {
                match live.recv().await {
                    Err(broadcast::error::RecvError::Closed) => return,
                    Ok(line) if line.starts_with("{\"disconnected\"") => return,
                    _ => {}
                }
            }
        })
        .await;
    }
    let clients = registry(service);
    let mut state = lock(&clients);
    state.clients.remove(&id);
    state.ended.retain(|c| c.id != id);
    drop(state);
    Ok((
        json!({ "disconnected": true, "connectionId": vc.client.connection_id }),
        format!("virtual client {id} disconnected"),
    ))
}

/// `GET /_emu/clients/<id>/events`: what the client received (kept history first), then each
/// new item, as server-sent events; ends after its `disconnected` item.
pub fn events(service: &Service, id: u64) -> Result<HttpResponse, AdminError> {
    let vc = find(service, id)?;
    let (history, dropped, ended, mut live) = {
        let feed = vc.feed.lock().unwrap_or_else(|e| e.into_inner());
        (
            feed.lines.iter().cloned().collect::<Vec<_>>(),
            feed.dropped,
            feed.ended,
            vc.live.subscribe(),
        )
    };
    let (tx, body) = ResponseBody::channel(16);
    let stop = service.shutdown().clone();
    tokio::spawn(async move {
        let mut chunk = String::from(": sio-emu virtual client\n\n");
        if dropped > 0 {
            chunk.push_str(&format!(
                "event: dropped\ndata: {{\"dropped\":{dropped}}}\n\n"
            ));
        }
        for line in &history {
            chunk.push_str(&format!("data: {line}\n\n"));
        }
        if tx.send(Bytes::from(chunk)).await.is_err() || ended {
            return;
        }
        loop {
            let text = tokio::select! {
                _ = stop.cancelled() => return,
                item = live.recv() => match item {
                    Ok(line) => {
                        let last = line.starts_with("{\"disconnected\"");
                        let sent = tx.send(Bytes::from(format!("data: {line}\n\n"))).await.is_ok();
                        if last || !sent {
                            return;
                        }
                        continue;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        format!("event: dropped\ndata: {{\"dropped\":{n}}}\n\n")
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tokio::time::sleep(super::timeline::STREAM_PING) => ": ping\n\n".to_owned(),
            };
            if tx.send(Bytes::from(text)).await.is_err() {
                return;
            }
        }
    });
    Ok(super::timeline::event_stream(body))
}
