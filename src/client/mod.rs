//! A Socket.IO 5 client over Engine.IO 4: what `sio-emu client` and the inspector's virtual
//! clients use to be real clients of a hub (or of any Socket.IO server).
//!
//! [`connect`] opens a session ([`engine`]), joins one namespace with the `CONNECT` payload,
//! and hands back a [`Client`] (to emit, with or without an ack, and to disconnect) plus a
//! bounded queue of what the server sends ([`Received`]). One task per client drives the
//! session: it answers pings, notices a server that stops pinging (`ping timeout`, as
//! socket.io-client says), matches acks to their emits, and reassembles binary attachments,
//! which are shown as `{"base64":"…"}` in the arguments. When the queue is full it stops reading,
//! so a slow reader slows its own session only. Packets are read and written with the pure
//! codecs (`socketio::packet`).

pub mod engine;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::engineio::packet::Packet as EioPacket;
use crate::socketio::packet::{self as sio, Decoded, PacketType, PartialBinary};
pub use engine::{EngineError, Target, TransportChoice};

/// What the server sent, queued for the reader.
const RECEIVED_QUEUE: usize = 1024;

/// How to connect.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub transport: TransportChoice,
    /// The namespace to join, `/` by default.
    pub namespace: String,
    /// The `CONNECT` payload (`auth`), if any.
    pub auth: Option<Value>,
}

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An event on the namespace.
    Event { event: String, args: Vec<Value> },
    /// The socket is gone; nothing follows.
    Disconnected { reason: String },
}

impl Received {
    /// `{"event":…,"args":[…]}`, the line `client --listen` prints.
    pub fn to_json(&self) -> Value {
        match self {
            Received::Event { event, args } => serde_json::json!({ "event": event, "args": args }),
            Received::Disconnected { reason } => serde_json::json!({ "disconnected": reason }),
        }
    }
}

/// Why connecting failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The server answered `CONNECT` with `CONNECT_ERROR`.
    #[error("connect refused: {0}")]
    Refused(String),
    /// The session ended before the namespace answered.
    #[error("disconnected before the namespace answered: {0}")]
    Closed(String),
}

/// A connected socket.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    /// The Engine.IO session id (the service's connectionId).
    pub connection_id: String,
    /// The namespace socket's id.
    pub socket_id: String,
    /// The transport in use after the upgrade, if any.
    pub transport: &'static str,
}

enum Command {
    Emit {
        event: String,
        args: Vec<Value>,
        ack: Option<oneshot::Sender<Vec<Value>>>,
    },
    Disconnect,
}

impl Client {
    /// Sends an event; with `want_ack`, the receiver yields the ack's arguments (it fails
    /// when the socket goes first).
    pub fn emit(
        &self,
        event: &str,
        args: Vec<Value>,
        want_ack: bool,
    ) -> Option<oneshot::Receiver<Vec<Value>>> {
        let (tx, rx) = want_ack.then(oneshot::channel).unzip();
        let _ = self.commands.send(Command::Emit {
            event: event.to_owned(),
            args,
            ack: tx,
        });
        rx
    }

    /// Leaves the namespace and closes the session; a `Disconnected` with reason
    /// `io client disconnect` follows on the queue.
    pub fn disconnect(&self) {
        let _ = self.commands.send(Command::Disconnect);
    }

    /// Whether the socket's task still runs.
    pub fn is_open(&self) -> bool {
        !self.commands.is_closed()
    }
}

/// Connects and joins the namespace. The caller bounds the wait (a server may never answer).
pub async fn connect(options: Options) -> Result<(Client, mpsc::Receiver<Received>), ConnectError> {
    let (open, mut link) = engine::open(&options.target, options.transport).await?;
    let nsp = options.namespace.clone();
    let connect = sio::Packet {
        kind: PacketType::Connect,
        nsp: nsp.clone(),
        id: None,
        data: options.auth.clone(),
        attachments: Vec::new(),
    };
    link.send(&[EioPacket::Message(sio::encode(&connect).0)])
        .await?;
    let socket_id = loop {
        let packet = match link.recv().await {
            Some(p) => p?,
            None => return Err(ConnectError::Closed("transport close".into())),
        };
        match packet {
            EioPacket::Ping(p) => link.send(&[EioPacket::Pong(p)]).await?,
            EioPacket::Close => return Err(ConnectError::Closed("server close".into())),
            EioPacket::Message(text) => {
                let Ok(Decoded::Complete(p)) = sio::decode(&text) else {
                    continue;
                };
                if p.nsp != nsp {
                    continue;
                }
                match p.kind {
                    PacketType::Connect => {
                        break p
                            .data
                            .as_ref()
                            .and_then(|d| d["sid"].as_str())
                            .unwrap_or("")
                            .to_owned();
                    }
                    PacketType::ConnectError => {
                        return Err(ConnectError::Refused(connect_error_message(
                            p.data.as_ref(),
                        )));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    };
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (received_tx, received) = mpsc::channel(RECEIVED_QUEUE);
    let client = Client {
        commands,
        connection_id: open.sid.clone(),
        socket_id,
        transport: link.name(),
    };
    let driver = Driver {
        link,
        nsp,
        silence: open.ping_interval + open.ping_timeout,
        acks: HashMap::new(),
        next_ack: 0,
        partial: None,
        received: received_tx,
    };
    tokio::spawn(driver.run(command_rx));
    Ok((client, received))
}

/// The text of a `CONNECT_ERROR`: its `message`, or the payload itself.
fn connect_error_message(data: Option<&Value>) -> String {
    match data {
        Some(Value::Object(o)) => match o.get("message") {
            Some(Value::String(s)) => s.clone(),
            _ => Value::Object(o.clone()).to_string(),
        },
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "no reason given".into(),
    }
}

/// The task that owns one session.
struct Driver {
    link: engine::Link,
    nsp: String,
    /// How long without a ping before the server counts as gone.
    silence: Duration,
    acks: HashMap<u64, oneshot::Sender<Vec<Value>>>,
    next_ack: u64,
    partial: Option<PartialBinary>,
    received: mpsc::Sender<Received>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let reason = self.serve(&mut commands).await;
        self.link.close().await;
        let _ = self.received.send(Received::Disconnected { reason }).await;
    }

    /// Runs until the session ends; returns the disconnect reason.
    async fn serve(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> String {
        let mut deadline = tokio::time::Instant::now() + self.silence;
        loop {
            tokio::select! {
                packet = self.link.recv() => {
                    deadline = tokio::time::Instant::now() + self.silence;
                    match packet {
                        None => return "transport close".into(),
                        Some(Err(e)) => return format!("transport error: {e}"),
                        Some(Ok(packet)) => {
                            if let Some(reason) = self.on_packet(packet).await {
                                return reason;
                            }
                        }
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Emit { event, args, ack }) => {
                        if let Err(e) = self.emit(event, args, ack).await {
                            return format!("transport error: {e}");
                        }
                    }
                    Some(Command::Disconnect) | None => {
                        let leave = sio::Packet {
                            kind: PacketType::Disconnect,
                            nsp: self.nsp.clone(),
                            id: None,
                            data: None,
                            attachments: Vec::new(),
                        };
                        let _ = self.link.send(&[EioPacket::Message(sio::encode(&leave).0), EioPacket::Close]).await;
                        return "io client disconnect".into();
                    }
                },
                () = tokio::time::sleep_until(deadline) => return "ping timeout".into(),
            }
        }
    }

    async fn emit(
        &mut self,
        event: String,
        args: Vec<Value>,
        ack: Option<oneshot::Sender<Vec<Value>>>,
    ) -> Result<(), EngineError> {
        let id = ack.map(|tx| {
            let id = self.next_ack;
            self.next_ack += 1;
            self.acks.insert(id, tx);
            id
        });
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::String(event));
        data.extend(args);
        let packet = sio::Packet {
            kind: PacketType::Event,
            nsp: self.nsp.clone(),
            id,
            data: Some(Value::Array(data)),
            attachments: Vec::new(),
        };
        self.link
            .send(&[EioPacket::Message(sio::encode(&packet).0)])
            .await
    }

    /// Handles one Engine.IO packet; `Some(reason)` ends the session.
    async fn on_packet(&mut self, packet: EioPacket) -> Option<String> {
        let decoded = match packet {
            EioPacket::Ping(p) => {
                return self
                    .link
                    .send(&[EioPacket::Pong(p)])
                    .await
                    .err()
                    .map(|e| format!("transport error: {e}"));
            }
            EioPacket::Close => return Some("transport close".into()),
            EioPacket::Message(text) => match sio::decode(&text) {
                Ok(d) => d,
                Err(e) => return Some(format!("parse error: {e}")),
            },
            EioPacket::Binary(data) => match self.partial.take() {
                Some(partial) => partial.push(data),
                None => return None,
            },
            _ => return None,
        };
        let packet = match decoded {
            Decoded::Complete(p) => p,
            Decoded::AwaitingAttachments(partial) => {
                self.partial = Some(partial);
                return None;
            }
        };
        if packet.nsp != self.nsp {
            return None;
        }
        match packet.kind {
            PacketType::Event | PacketType::BinaryEvent => {
                let (event, args) = event_parts(packet);
                if self
                    .received
                    .send(Received::Event { event, args })
                    .await
                    .is_err()
                {
                    return Some("io client disconnect".into());
                }
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let tx = packet.id.and_then(|id| self.acks.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(args_of(packet));
                }
            }
            PacketType::Disconnect => return Some("io server disconnect".into()),
            _ => {}
        }
        None
    }
}

/// An event packet's name and arguments, attachments shown as `{"base64":"…"}`.
fn event_parts(packet: sio::Packet) -> (String, Vec<Value>) {
    let mut args = args_of(packet);
    let event = match args.first() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    if !args.is_empty() {
        args.remove(0);
    }
    (event, args)
}

/// A packet's array payload with attachments put back in place of their placeholders.
fn args_of(packet: sio::Packet) -> Vec<Value> {
    let mut data = packet.data.unwrap_or(Value::Null);
    if !packet.attachments.is_empty() {
        fill_placeholders(&mut data, &packet.attachments);
    }
    match data {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn fill_placeholders(value: &mut Value, attachments: &[bytes::Bytes]) {
    match value {
        Value::Object(o) if o.get("_placeholder") == Some(&Value::Bool(true)) => {
            let bytes = o
                .get("num")
                .and_then(Value::as_u64)
                .and_then(|n| attachments.get(n as usize));
            if let Some(bytes) = bytes {
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                *value = serde_json::json!({ "base64": text });
            }
        }
        Value::Object(o) => o
            .values_mut()
            .for_each(|v| fill_placeholders(v, attachments)),
        Value::Array(a) => a.iter_mut().for_each(|v| fill_placeholders(v, attachments)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_base64() {
        let mut v = serde_json::json!(["e", {"_placeholder": true, "num": 0}]);
        fill_placeholders(&mut v, &[bytes::Bytes::from_static(b"hi")]);
        assert_eq!(v, serde_json::json!(["e", {"base64": "aGk="}]));
    }

    #[test]
    fn connect_error_messages() {
        let data = serde_json::json!({"message": "nope", "data": 1});
        assert_eq!(connect_error_message(Some(&data)), "nope");
        assert_eq!(connect_error_message(None), "no reason given");
    }
}
