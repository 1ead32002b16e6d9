//! One Engine.IO connection's Socket.IO side (docs/protocol.md §2, §4): its namespace sockets, each moving
//! `connecting` (the blocking `connect` webhook is out) → `connected` → gone, with the reference
//! server's rules (first packet must be CONNECT within the connect timeout; a packet for a
//! namespace not joined, or a second CONNECT, closes the connection).
//!
//! Each socket's webhook events go through its own [`Lane`], one at a time in protocol order
//! (docs/protocol.md §14 decision 20); events that arrive while `connect` is pending wait there too (§14 decision 8).
//! What waits in a socket's lane is bounded in bytes: past [`LANE_PAYLOADS`] × `maxPayload` the
//! connection stops taking client packets until the lane drains (docs/protocol.md §14 decision 21), so nothing the
//! client sent is dropped. Every accepted socket gets exactly one `disconnected` (docs/protocol.md §14 decision 13):
//! when it leaves, when the connection ends, when the REST API disconnects it, or — if the client
//! vanished while `connect` was at the webhook — when the webhook's acceptance arrives too late.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use super::event_head;
use super::lane::{self, ConnectionEnd, Lane, SentSlot, Step};
use super::packet::{self, Decoded, PacketType, PartialBinary};
use super::webhook::Caller;
use crate::engineio::{CloseReason, Ctx, Handler, Transport};
use crate::service::{ConnCommand, ConnHandle, Hub, Service};
use crate::traffic::record::Direction;
use crate::traffic::{Preview, TrafficEvent};
use crate::upstream::{EventKind, Packets};

/// The handler's own events.
#[derive(Debug)]
pub enum SioEvent {
    /// The connect timeout passed.
    ConnectTimeout,
    /// The `connect` webhook answered.
    ConnectDone {
        socket_id: Arc<str>,
        verdict: Result<(), String>,
        /// Takes the receiver that fires once the client has its `40…` (see [`SentSlot`]).
        sent: SentSlot,
    },
    /// A user event's webhook call finished; `replies` are the packets to forward, in order,
    /// `cost` what the event counted against its lane's bound.
    EventDone {
        socket_id: Arc<str>,
        replies: Packets,
        cost: usize,
    },
    /// A command from the REST API.
    Command(ConnCommand),
    /// A `disconnect-transport` fault fired: drop the transport.
    FaultDisconnect,
    /// The recording's queue has room again: reading from the client resumes.
    RecordingRoom,
}

/// How many `maxPayload`s of user events may wait in one socket's lane before the connection
/// stops reading from the client (docs/protocol.md §14 decision 21).
pub const LANE_PAYLOADS: usize = 4;
/// What a queued event costs beyond its packet's bytes (the step and the event around it).
const STEP_OVERHEAD: usize = 256;
/// Characters of a forwarded packet shown in the live log.
const LOG_PACKET_CHARS: usize = 120;

#[derive(Debug)]
struct Socket {
    namespace: Arc<str>,
    id: Arc<str>,
    /// The client has its `40…` (else `connect` is still at the webhook).
    connected: bool,
    lane: super::queue::Sender<Lane>,
    /// Bytes of user events in the lane (docs/protocol.md §14 decision 21).
    queued: usize,
    /// What the socket keeps for its whole life and every waiting event shares: its namespace,
    /// the connection's user id and its `connect` body (the token's claims), counted once
    /// against the lane's bound.
    kept: usize,
}

/// The Socket.IO state of one connection.
pub struct SioConnection {
    service: Arc<Service>,
    hub: Arc<Hub>,
    caller: Caller,
    token_groups: Vec<String>,
    /// The transport it opened with (the hub is told of an upgrade).
    transport: Transport,
    connect_body: Bytes,
    sockets: Vec<Socket>,
    seen_connect: bool,
    /// A binary packet waiting for its attachments. Boxed: rare, and the connection's state
    /// is part of every idle session's task.
    partial: Option<Box<PartialBinary>>,
    /// The recording's `closed` line, shared with the lanes (written when the last lets go).
    end: Option<Arc<ConnectionEnd>>,
    /// Bytes of user events one socket's lane may hold before reading stops.
    lane_limit: usize,
    /// The connect-timeout task, stopped by the first CONNECT so an idle connection holds no
    /// timer.
    connect_timer: Option<tokio::task::AbortHandle>,
    /// Lines of this connection wait for the recording's file: reading stops until it has
    /// room (docs/protocol.md §14 decision 22: sessions wait, the rest of the service does not).
    awaiting_recording: bool,
}

impl SioConnection {
    /// The state for a freshly admitted connection.
    pub fn new(
        service: Arc<Service>,
        hub: Arc<Hub>,
        connection_id: Arc<str>,
        user_id: Option<String>,
        token_groups: Vec<String>,
        connect_body: Bytes,
        transport: Transport,
    ) -> Self {
        let end = Arc::new(ConnectionEnd {
            service: service.clone(),
            hub: hub.name().to_owned(),
            connection_id: connection_id.clone(),
            reason: OnceLock::new(),
        });
        let lane_limit = LANE_PAYLOADS * service.config().engine.max_payload;
        let caller = Caller {
            hub: hub.name().into(),
            connection_id,
            user_id: user_id.map(Arc::from),
        };
        SioConnection {
            service,
            hub,
            caller,
            token_groups,
            connect_body,
            transport,
            sockets: Vec::new(),
            seen_connect: false,
            partial: None,
            end: Some(end),
            lane_limit,
            connect_timer: None,
            awaiting_recording: false,
        }
    }

    /// After recording: when the recording's queue holds its bound, stop reading from the
    /// client until a task hears that it has room again.
    fn hold_for_recording(&mut self, ctx: &mut Ctx<'_, SioEvent>) {
        if self.awaiting_recording || !self.service.traffic().recording_full() {
            return;
        }
        self.awaiting_recording = true;
        let (service, sender) = (self.service.clone(), ctx.sender());
        tokio::spawn(async move {
            tokio::select! {
                _ = service.traffic().recording_room() => {
                    let _ = sender.send(SioEvent::RecordingRoom).await;
                }
                _ = sender.closed() => {}
            }
        });
    }

    fn socket_index(&self, namespace: &str) -> Option<usize> {
        self.sockets.iter().position(|s| &*s.namespace == namespace)
    }

    fn socket_by_id(&self, id: &str) -> Option<usize> {
        self.sockets.iter().position(|s| &*s.id == id)
    }

    /// Sends one complete Engine.IO text packet to the client, recording it.
    fn send(&self, ctx: &mut Ctx<'_, SioEvent>, packet: String) {
        self.record_frame(Direction::Out, Cow::Borrowed(&packet));
        ctx.send_packet_text(packet);
    }

    /// Records one frame when something keeps frames (a recording, the inspector's ring).
    /// The frame is borrowed: only a recording copies it (its line goes to another thread).
    fn record_frame(&self, direction: Direction, packet: Cow<'_, str>) {
        let traffic = self.service.traffic();
        if !traffic.recording() {
            return;
        }
        traffic.emit(TrafficEvent::Frame {
            hub: &self.caller.hub,
            connection_id: &self.caller.connection_id,
            direction,
            // Redacted (a client CONNECT's `auth`) before any sink keeps it.
            packet,
        });
    }

    fn warn(&self, message: String, hint: Option<String>) {
        self.service
            .traffic()
            .emit(TrafficEvent::Warning { message, hint });
    }

    /// Closes the connection for a protocol violation, explaining it in the log.
    fn violation(&self, ctx: &mut Ctx<'_, SioEvent>, detail: String) {
        self.warn(
            format!(
                "conn={} broke the Socket.IO protocol: {detail}; closing the connection",
                self.caller.connection_id
            ),
            None,
        );
        ctx.close(CloseReason::TransportError(detail));
    }

    fn on_connect(
        &mut self,
        ctx: &mut Ctx<'_, SioEvent>,
        namespace: &str,
        auth: Option<serde_json::Value>,
    ) {
        if self.socket_index(namespace).is_some() {
            self.violation(ctx, format!("a second CONNECT for namespace {namespace}"));
            return;
        }
        self.seen_connect = true;
        if let Some(timer) = self.connect_timer.take() {
            timer.abort();
        }
        let Some(end) = self.end.clone() else { return };
        let id: Arc<str> = self.service.ids().next_id().into();
        let namespace: Arc<str> = namespace.into();
        let lane = Lane::open(
            &self.service,
            self.caller.clone(),
            namespace.clone(),
            id.clone(),
            ctx.sender(),
            end,
        );
        let body = match auth.filter(|_| self.service.config().forward_auth) {
            Some(auth) => {
                let mut value: serde_json::Value =
                    serde_json::from_slice(&self.connect_body).unwrap_or_default();
                value["auth"] = auth;
                Bytes::from(value.to_string())
            }
            None => self.connect_body.clone(),
        };
        let event = self.caller.event(EventKind::Connect, &namespace, &id, body);
        let _ = lane.send(Step::Connect(event));
        // Most connections join one namespace: no room for four.
        self.sockets.reserve_exact(1);
        let kept = namespace.len()
            + self.caller.user_id.as_deref().map_or(0, str::len)
            + self.connect_body.len();
        self.sockets.push(Socket {
            namespace,
            id,
            connected: false,
            lane,
            queued: 0,
            kept,
        });
    }

    fn on_connect_done(
        &mut self,
        ctx: &mut Ctx<'_, SioEvent>,
        socket_id: &str,
        verdict: Result<(), String>,
        sent: SentSlot,
    ) {
        // Gone (the client left; its lane decides about `disconnected`) or closing.
        let Some(index) = self.socket_by_id(socket_id) else {
            return;
        };
        if ctx.is_closed() {
            return;
        }
        let namespace = self.sockets[index].namespace.clone();
        let prefix = nsp_prefix(&namespace);
        let id = self.sockets[index].id.clone();
        let refused = verdict.err();
        match &refused {
            None => {
                self.hub
                    .socket_joined(&self.caller.connection_id, &namespace, &id);
                self.send(ctx, format!("40{prefix}{{\"sid\":\"{id}\"}}"));
                self.sockets[index].connected = true;
                // Decision 9: the lane sends `connected` once the client has its `40…`.
                let _ = sent.send(ctx.when_sent());
            }
            Some(message) => {
                // The lane drops what waited behind the refused connect (docs/protocol.md §14 decision 8).
                self.sockets.remove(index);
                let payload = serde_json::json!({ "message": message });
                self.send(ctx, format!("44{prefix}{payload}"));
            }
        }
        self.service.traffic().emit(TrafficEvent::NamespaceConnect {
            hub: self.caller.hub.to_string(),
            connection_id: self.caller.connection_id.to_string(),
            namespace: namespace.to_string(),
            socket_id: id.to_string(),
            refused,
        });
    }

    /// An `EVENT` the fast reader left to the full decoder: a name it does not take, or an
    /// error, reported in the decoder's words.
    fn on_event_slow(&mut self, ctx: &mut Ctx<'_, SioEvent>, index: usize, data: &str) {
        match packet::decode(data) {
            Ok(Decoded::Complete(p)) => {
                let name = packet::into_event_name(p).unwrap_or_default();
                self.on_event_packet(index, data, name);
            }
            Ok(Decoded::AwaitingAttachments(_)) => {
                self.violation(ctx, "an EVENT packet declared binary attachments".into());
            }
            Err(e) => self.violation(ctx, format!("invalid EVENT packet: {e}")),
        }
    }

    /// Queues a user event in the socket's lane; the bytes count until the lane is done with it.
    /// An event keeps its packet and its name; the socket's names and the user id are shared
    /// with the socket (counted once, in its `kept`).
    fn on_event_packet(&mut self, index: usize, data: &str, name: String) {
        let mut text = String::with_capacity(data.len() + 1);
        text.push('4');
        text.push_str(data);
        let socket = &mut self.sockets[index];
        let cost = text.len() + name.len() + STEP_OVERHEAD;
        let event = self.caller.event(
            EventKind::User(name),
            &socket.namespace,
            &socket.id,
            Bytes::from(text),
        );
        socket.queued += cost;
        let _ = socket.lane.send(Step::User { event, cost });
    }

    /// A user event left the socket's lane: forward its reply and release its bytes.
    fn on_event_done(
        &mut self,
        ctx: &mut Ctx<'_, SioEvent>,
        socket_id: &str,
        replies: Packets,
        cost: usize,
    ) {
        let Some(index) = self.socket_by_id(socket_id) else {
            return;
        };
        let socket = &mut self.sockets[index];
        socket.queued = socket.queued.saturating_sub(cost);
        if ctx.is_closed() {
            return;
        }
        // Each packet of the answer is a packet of its own: a frame each on a WebSocket, a
        // record each in the next long-polling payload (docs/protocol.md §5.4).
        for reply in replies {
            if self.service.traffic().verbose() {
                self.service.traffic().emit(TrafficEvent::AckForwarded {
                    hub: &self.caller.hub,
                    connection_id: &self.caller.connection_id,
                    namespace: &self.sockets[index].namespace,
                    // Cut like a webhook line's body: a large ack must not make a large log line.
                    packet: Preview::new(&reply, LOG_PACKET_CHARS),
                });
            }
            self.send(ctx, reply);
        }
    }

    /// A socket leaves: its groups go and its lane sends `disconnected` after what it holds
    /// (or, while `connect` is pending, only if the webhook accepts it).
    fn leave(&mut self, index: usize, reason: &str) {
        let socket = self.sockets.remove(index);
        let owed = socket.connected.then(|| {
            self.hub
                .socket_left(&self.caller.connection_id, &socket.namespace);
            lane::owe(
                &self.service,
                &self.caller,
                &EventKind::Disconnected,
                &socket.namespace,
                &socket.id,
            )
        });
        let _ = socket.lane.send(Step::Leave {
            reason: reason.to_owned(),
            owed,
        });
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, SioEvent>, command: ConnCommand) {
        match command {
            ConnCommand::Send(packet) => self.send(ctx, packet.to_string()),
            ConnCommand::DisconnectSocket { namespace, close } => {
                if let Some(index) = self.socket_index(&namespace)
                    && self.sockets[index].connected
                {
                    self.send(ctx, format!("41{}", nsp_prefix(&namespace)));
                    self.leave(index, "disconnected by REST API");
                }
                if close {
                    ctx.close(CloseReason::Server("closed by REST API".into()));
                }
            }
            ConnCommand::Close { reason } => ctx.close(CloseReason::Server(reason)),
        }
    }

    fn on_complete_binary(&self, packet: &packet::Packet) {
        self.warn(
            format!(
                "conn={} sent a binary {} on {}; binary events and acks are not forwarded to the webhook (docs/protocol.md §14 decision 11)",
                self.caller.connection_id,
                if packet.kind == PacketType::BinaryAck { "ack" } else { "event" },
                packet.nsp
            ),
            Some("send binary data as base64 text, or use emit without Buffer/ArrayBuffer arguments".into()),
        );
    }
}

/// `/ns,` for a namespace other than `/`, else nothing.
fn nsp_prefix(namespace: &str) -> String {
    if namespace == "/" {
        String::new()
    } else {
        format!("{namespace},")
    }
}

impl Handler for SioConnection {
    type Event = SioEvent;

    fn on_open(&mut self, ctx: &mut Ctx<'_, SioEvent>) {
        let sender = ctx.sender();
        let commands = sender.clone();
        let handle =
            ConnHandle::new(move |command| commands.try_send(SioEvent::Command(command)).is_ok());
        self.hub.register(
            self.caller.connection_id.clone(),
            self.caller.user_id.clone(),
            &self.token_groups,
            self.transport,
            handle,
        );
        let wait: Duration = self.service.config().engine.connect_timeout;
        let timer = tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(wait) => { let _ = sender.send(SioEvent::ConnectTimeout).await; }
                _ = sender.closed() => {}
            }
        });
        self.connect_timer = Some(timer.abort_handle());
    }

    fn on_upgrade(&mut self) {
        self.hub.upgraded(&self.caller.connection_id);
        if self.service.traffic().verbose() {
            self.service.traffic().emit(TrafficEvent::Upgrade {
                hub: self.caller.hub.to_string(),
                connection_id: self.caller.connection_id.to_string(),
            });
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, SioEvent>, data: &str) {
        if self.service.traffic().recording() {
            self.record_frame(Direction::In, Cow::Owned(format!("4{data}")));
            self.hold_for_recording(ctx);
        }
        if self.partial.is_some() {
            self.violation(
                ctx,
                "a text packet arrived while binary attachments were expected".into(),
            );
            return;
        }
        let header = match packet::parse_header(data) {
            Ok(h) => h,
            Err(e) => return self.violation(ctx, format!("invalid Socket.IO packet: {e}")),
        };
        let namespace = header.nsp;
        let index = self.socket_index(namespace);
        match (header.kind, index) {
            (PacketType::Connect, _) => match packet::decode(data) {
                Ok(Decoded::Complete(p)) => {
                    let ns = p.nsp.clone();
                    self.on_connect(ctx, &ns, p.data);
                }
                Ok(Decoded::AwaitingAttachments(_)) | Err(_) => {
                    self.violation(ctx, "a CONNECT packet with an invalid payload".into());
                }
            },
            (_, None) => self.violation(
                ctx,
                format!("a packet for namespace {namespace}, which it has not joined"),
            ),
            // DISCONNECT carries no payload (docs/protocol.md §0 P1 `isPayloadValid`); one that does is malformed.
            (PacketType::Disconnect, Some(index)) => match packet::decode(data) {
                Ok(_) => self.leave(index, ""),
                Err(e) => self.violation(ctx, format!("invalid DISCONNECT packet: {e}")),
            },
            (PacketType::Event, Some(index)) => match event_head::event_name(&header) {
                Some(name) => self.on_event_packet(index, data, name),
                None => self.on_event_slow(ctx, index, data),
            },
            (PacketType::BinaryEvent | PacketType::BinaryAck, Some(_)) => {
                match packet::decode(data) {
                    Ok(Decoded::Complete(p)) => self.on_complete_binary(&p),
                    Ok(Decoded::AwaitingAttachments(partial)) => {
                        self.partial = Some(Box::new(partial))
                    }
                    Err(e) => self.violation(ctx, format!("invalid binary packet: {e}")),
                }
            }
            (PacketType::Ack, Some(_)) => {
                // Dropped, but still validated: an ACK's payload must be an array.
                if let Err(e) = packet::decode(data) {
                    return self.violation(ctx, format!("invalid ACK packet: {e}"));
                }
                if self.service.traffic().verbose() {
                    self.warn(
                        format!(
                            "conn={} acked on {namespace}; client acks have no webhook event and are dropped",
                            self.caller.connection_id
                        ),
                        None,
                    );
                }
            }
            (PacketType::ConnectError, Some(_)) => {
                self.violation(ctx, "clients may not send CONNECT_ERROR".into());
            }
        }
    }

    fn on_binary(&mut self, ctx: &mut Ctx<'_, SioEvent>, data: Bytes) {
        let Some(partial) = self.partial.take() else {
            self.violation(
                ctx,
                "a binary attachment arrived without a binary packet".into(),
            );
            return;
        };
        match (*partial).push(data) {
            Decoded::Complete(p) => self.on_complete_binary(&p),
            Decoded::AwaitingAttachments(rest) => self.partial = Some(Box::new(rest)),
        }
    }

    fn on_event(&mut self, ctx: &mut Ctx<'_, SioEvent>, event: SioEvent) {
        match event {
            SioEvent::ConnectTimeout => {
                if !self.seen_connect && !ctx.is_closed() {
                    self.warn(
                        format!(
                            "conn={} sent no Socket.IO CONNECT within {}; closing it",
                            self.caller.connection_id,
                            humantime::format_duration(
                                self.service.config().engine.connect_timeout
                            )
                        ),
                        None,
                    );
                    ctx.close(CloseReason::Server("connect timeout".into()));
                }
            }
            SioEvent::ConnectDone {
                socket_id,
                verdict,
                sent,
            } => self.on_connect_done(ctx, &socket_id, verdict, sent),
            SioEvent::EventDone {
                socket_id,
                replies,
                cost,
            } => self.on_event_done(ctx, &socket_id, replies, cost),
            SioEvent::Command(command) => {
                if !ctx.is_closed() {
                    self.on_command(ctx, command);
                }
            }
            SioEvent::RecordingRoom => {
                self.awaiting_recording = false;
                self.hold_for_recording(ctx);
            }
            SioEvent::FaultDisconnect => {
                if !ctx.is_closed() {
                    ctx.close(CloseReason::TransportError(
                        "dropped by a disconnect-transport fault".into(),
                    ));
                }
            }
        }
    }

    fn on_close(&mut self, reason: &CloseReason) {
        if let Some(timer) = self.connect_timer.take() {
            timer.abort();
        }
        let text = reason.reason_text();
        if let Some(end) = self.end.take() {
            let _ = end.reason.set(text.clone());
        }
        while !self.sockets.is_empty() {
            self.leave(0, &text);
        }
        self.hub.unregister(&self.caller.connection_id);
        self.service.release_hub(&self.hub);
        self.service.traffic().emit(TrafficEvent::ConnectionClosed {
            hub: self.caller.hub.to_string(),
            connection_id: self.caller.connection_id.to_string(),
            reason: reason.describe(),
        });
    }

    /// Reading stops while a socket's lane holds its bound (docs/protocol.md §14 decision 21),
    /// counting what the socket keeps once; an empty lane always takes the next event.
    fn ready(&self) -> bool {
        !self.awaiting_recording
            && self
                .sockets
                .iter()
                .all(|s| s.queued == 0 || s.kept + s.queued < self.lane_limit)
    }
}
