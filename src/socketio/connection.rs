//! One Engine.IO connection's Socket.IO side (SPEC §2, §4): its namespace sockets, each moving
//! `connecting` (the blocking `connect` webhook is out) → `connected` → gone, with the reference
//! server's rules (first packet must be CONNECT within the connect timeout; a packet for a
//! namespace not joined, or a second CONNECT, closes the connection).
//!
//! User events go to the webhook one at a time per socket, in order; events that arrive while
//! `connect` is pending wait in a bounded queue (decision 8). Every accepted socket gets exactly
//! one `disconnected` (decision 13): when it leaves, when the connection ends, when the REST API
//! disconnects it, or — if the client vanished while `connect` was at the webhook — when the
//! webhook's acceptance arrives too late.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use super::packet::{self, Decoded, PacketType, PartialBinary};
use super::webhook::{self, Caller};
use crate::engineio::{CloseReason, Ctx, EventSender, Handler};
use crate::service::{ConnCommand, ConnHandle, Hub, Service};
use crate::traffic::TrafficEvent;
use crate::traffic::record::{Direction, RecordLine, redacted_frame};
use crate::upstream::EventKind;

/// The handler's own events.
#[derive(Debug)]
pub enum SioEvent {
    /// The connect timeout passed.
    ConnectTimeout,
    /// The `connect` webhook answered.
    ConnectDone {
        socket_id: Arc<str>,
        verdict: Result<(), String>,
    },
    /// A user event's webhook call finished; `reply` is the packet to forward.
    EventDone {
        socket_id: Arc<str>,
        reply: Option<String>,
    },
    /// A command from the REST API.
    Command(ConnCommand),
    /// A `disconnect-transport` fault fired: drop the transport.
    FaultDisconnect,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Connected,
    /// The client left while `connect` was pending; the reason for a late `disconnected`.
    Abandoned(String),
}

#[derive(Debug)]
struct Socket {
    namespace: String,
    id: Arc<str>,
    phase: Phase,
    /// A user event is at the webhook.
    busy: bool,
    /// Complete Engine.IO packets (`42…`) waiting for the webhook, with their event names.
    queue: VecDeque<(String, String)>,
}

/// The Socket.IO state of one connection.
pub struct SioConnection {
    service: Arc<Service>,
    hub: Arc<Hub>,
    caller: Caller,
    token_groups: Vec<String>,
    connect_body: Bytes,
    sockets: Vec<Socket>,
    seen_connect: bool,
    partial: Option<PartialBinary>,
    /// Set when the connection ends, for late `disconnected` events.
    close_reason: Arc<OnceLock<String>>,
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
    ) -> Self {
        let caller = Caller {
            hub: hub.name.clone(),
            connection_id,
            user_id,
        };
        SioConnection {
            service,
            hub,
            caller,
            token_groups,
            connect_body,
            sockets: Vec::new(),
            seen_connect: false,
            partial: None,
            close_reason: Arc::new(OnceLock::new()),
        }
    }

    fn socket_index(&self, namespace: &str) -> Option<usize> {
        self.sockets.iter().position(|s| s.namespace == namespace)
    }

    fn socket_by_id(&self, id: &str) -> Option<usize> {
        self.sockets.iter().position(|s| &*s.id == id)
    }

    /// Sends one complete Engine.IO text packet to the client, recording it.
    fn send(&self, ctx: &mut Ctx<'_, SioEvent>, packet: String) {
        self.record_frame(Direction::Out, &packet);
        ctx.send_packet_text(packet);
    }

    fn record_frame(&self, direction: Direction, packet: &str) {
        self.service.traffic.record(|t| RecordLine::Frame {
            t,
            hub: self.caller.hub.clone(),
            connection_id: self.caller.connection_id.to_string(),
            direction,
            packet: redacted_frame(packet).into_owned(),
        });
    }

    fn warn(&self, message: String, hint: Option<String>) {
        self.service
            .traffic
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
        let id: Arc<str> = self.service.ids.next_id().into();
        self.sockets.push(Socket {
            namespace: namespace.to_owned(),
            id: id.clone(),
            phase: Phase::Connecting,
            busy: false,
            queue: VecDeque::new(),
        });
        let body = match auth.filter(|_| self.service.config().forward_auth) {
            Some(auth) => {
                let mut value: serde_json::Value =
                    serde_json::from_slice(&self.connect_body).unwrap_or_default();
                value["auth"] = auth;
                Bytes::from(value.to_string())
            }
            None => self.connect_body.clone(),
        };
        let event = self.caller.event(EventKind::Connect, namespace, &id, body);
        let service = self.service.clone();
        let sender = ctx.sender();
        let caller = self.caller.clone();
        let close_reason = self.close_reason.clone();
        let namespace = namespace.to_owned();
        self.service.tracker.spawn(async move {
            // No handler wants `connect`: the socket is accepted without a call.
            let verdict = match webhook::call(&service, &event).await {
                Some(result) => webhook::connect_verdict(&result),
                None => Ok(()),
            };
            let accepted = verdict.is_ok();
            let done = SioEvent::ConnectDone {
                socket_id: id.clone(),
                verdict,
            };
            if sender.send(done).await.is_err() && accepted {
                // The connection ended before the acceptance arrived: the webhook accepted a
                // socket, so it still gets its one `disconnected`.
                let reason = close_reason.get().cloned().unwrap_or_default();
                late_disconnected(&service, &caller, &namespace, &id, &reason);
            }
        });
    }

    fn on_connect_done(
        &mut self,
        ctx: &mut Ctx<'_, SioEvent>,
        socket_id: &str,
        verdict: Result<(), String>,
    ) {
        let Some(index) = self.socket_by_id(socket_id) else {
            return;
        };
        let abandoned = match &self.sockets[index].phase {
            Phase::Abandoned(reason) => Some(reason.clone()),
            _ if ctx.is_closed() => Some(self.close_reason.get().cloned().unwrap_or_default()),
            _ => None,
        };
        if let Some(reason) = abandoned {
            let socket = self.sockets.remove(index);
            if verdict.is_ok() {
                late_disconnected(
                    &self.service,
                    &self.caller,
                    &socket.namespace,
                    &socket.id,
                    &reason,
                );
            }
            return;
        }
        let namespace = self.sockets[index].namespace.clone();
        let prefix = nsp_prefix(&namespace);
        let traffic = &self.service.traffic;
        match verdict {
            Ok(()) => {
                let id = self.sockets[index].id.clone();
                self.hub
                    .socket_joined(&self.caller.connection_id, &namespace, &id);
                self.send(ctx, format!("40{prefix}{{\"sid\":\"{id}\"}}"));
                self.sockets[index].phase = Phase::Connected;
                traffic.emit(TrafficEvent::NamespaceConnect {
                    hub: self.caller.hub.clone(),
                    connection_id: self.caller.connection_id.to_string(),
                    namespace: namespace.clone(),
                    socket_id: id.to_string(),
                    refused: None,
                });
                // Decision 9: `connected` leaves once the client has its `40…{"sid"}`.
                let connected = self.caller.event(
                    EventKind::Connected,
                    &namespace,
                    &id,
                    Bytes::from_static(b"{}"),
                );
                let delivered = ctx.when_sent();
                let service = self.service.clone();
                let fault = self.service.faults.pick(
                    &self.caller.hub,
                    EventKind::Connected.event_name(),
                    |a| *a == crate::fault::Action::DisconnectTransport,
                );
                let sender = ctx.sender();
                tokio::spawn(async move {
                    if delivered.await.is_ok() {
                        webhook::notify(&service, connected.clone());
                        if let Some(rule) = fault {
                            crate::fault::mark(
                                &service,
                                &rule,
                                &connected.hub,
                                EventKind::Connected.event_name(),
                                format!(
                                    "dropping the transport of conn={} after socket {}'s connected",
                                    connected.connection_id, connected.socket_id
                                ),
                            );
                            let _ = sender.send(SioEvent::FaultDisconnect).await;
                        }
                    }
                });
                self.dispatch_next(ctx, index);
            }
            Err(message) => {
                let socket = self.sockets.remove(index);
                let payload = serde_json::json!({ "message": message });
                self.send(ctx, format!("44{prefix}{payload}"));
                traffic.emit(TrafficEvent::NamespaceConnect {
                    hub: self.caller.hub.clone(),
                    connection_id: self.caller.connection_id.to_string(),
                    namespace,
                    socket_id: socket.id.to_string(),
                    refused: Some(message),
                });
                if !socket.queue.is_empty() {
                    self.warn(
                        format!(
                            "dropped {} event(s) sent before the refused connect",
                            socket.queue.len()
                        ),
                        None,
                    );
                }
            }
        }
    }

    /// Sends the socket's next queued user event to the webhook, if it is free.
    fn dispatch_next(&mut self, ctx: &mut Ctx<'_, SioEvent>, index: usize) {
        let socket = &mut self.sockets[index];
        if socket.busy || socket.phase != Phase::Connected {
            return;
        }
        let Some((packet_text, name)) = socket.queue.pop_front() else {
            return;
        };
        socket.busy = true;
        let event = self.caller.event(
            EventKind::User(name),
            &socket.namespace,
            &socket.id,
            Bytes::from(packet_text),
        );
        let socket_id = socket.id.clone();
        let service = self.service.clone();
        let sender: EventSender<SioEvent> = ctx.sender();
        self.service.tracker.spawn(async move {
            let reply = match webhook::call(&service, &event).await {
                Some(Ok(response)) => match webhook::user_event_reply(&response) {
                    Ok(reply) => reply,
                    Err(violation) => {
                        service.traffic.emit(TrafficEvent::Warning {
                            message: format!(
                                "the webhook's answer to `{}` was not forwarded: {violation}",
                                event.kind.event_name()
                            ),
                            hint: Some(
                                "answer 200 with an Engine.IO packet such as 43[\"ok\"] (text/plain), or 204 for no ack"
                                    .into(),
                            ),
                        });
                        None
                    }
                },
                Some(Err(_)) | None => None,
            };
            let _ = sender.send(SioEvent::EventDone { socket_id, reply }).await;
        });
    }

    fn on_event_packet(
        &mut self,
        ctx: &mut Ctx<'_, SioEvent>,
        index: usize,
        data: &str,
        name: String,
    ) {
        let limit = self.service.config().engine.socket_event_queue;
        let socket = &mut self.sockets[index];
        if socket.queue.len() >= limit {
            let namespace = socket.namespace.clone();
            self.warn(
                format!(
                    "conn={} {namespace}: {limit} events already wait for the webhook; this one was dropped",
                    self.caller.connection_id
                ),
                Some("the webhook answers more slowly than the client emits".into()),
            );
            return;
        }
        let mut text = String::with_capacity(data.len() + 1);
        text.push('4');
        text.push_str(data);
        socket.queue.push_back((text, name));
        self.dispatch_next(ctx, index);
    }

    /// A socket leaves: its groups go, the log says so, and `disconnected` is sent.
    fn leave(&mut self, index: usize, reason: &str) {
        let socket = self.sockets.remove(index);
        match socket.phase {
            Phase::Connected => {
                self.hub
                    .socket_left(&self.caller.connection_id, &socket.namespace);
                late_disconnected(
                    &self.service,
                    &self.caller,
                    &socket.namespace,
                    &socket.id,
                    reason,
                );
            }
            // `connect` is still at the webhook: its answer decides (see on_connect_done).
            Phase::Connecting => self.sockets.push(Socket {
                phase: Phase::Abandoned(reason.to_owned()),
                queue: VecDeque::new(),
                ..socket
            }),
            Phase::Abandoned(_) => self.sockets.push(socket),
        }
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, SioEvent>, command: ConnCommand) {
        match command {
            ConnCommand::Send(packet) => self.send(ctx, packet.to_string()),
            ConnCommand::DisconnectSocket { namespace, close } => {
                if let Some(index) = self.socket_index(&namespace)
                    && self.sockets[index].phase == Phase::Connected
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
                "conn={} sent a binary {} on {}; binary events and acks are not forwarded to the webhook (decision 11)",
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

/// Logs a socket's departure and sends its `disconnected` event.
fn late_disconnected(
    service: &Arc<Service>,
    caller: &Caller,
    namespace: &str,
    socket_id: &str,
    reason: &str,
) {
    service.traffic.emit(TrafficEvent::SocketDisconnected {
        hub: caller.hub.clone(),
        connection_id: caller.connection_id.to_string(),
        namespace: namespace.to_owned(),
        socket_id: socket_id.to_owned(),
        reason: reason.to_owned(),
    });
    let event = caller.event(
        EventKind::Disconnected,
        namespace,
        socket_id,
        webhook::disconnected_body(reason),
    );
    webhook::notify(service, event);
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
            self.caller.user_id.as_deref().map(Arc::from),
            &self.token_groups,
            handle,
        );
        let wait: Duration = self.service.config().engine.connect_timeout;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(wait) => { let _ = sender.send(SioEvent::ConnectTimeout).await; }
                _ = sender.closed() => {}
            }
        });
    }

    fn on_upgrade(&mut self) {
        if self.service.traffic.verbose() {
            self.service.traffic.emit(TrafficEvent::Upgrade {
                hub: self.caller.hub.clone(),
                connection_id: self.caller.connection_id.to_string(),
            });
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, SioEvent>, data: &str) {
        if self.service.traffic.recording() {
            self.record_frame(Direction::In, &format!("4{data}"));
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
            // DISCONNECT carries no payload (P1 `isPayloadValid`); one that does is malformed.
            (PacketType::Disconnect, Some(index)) => match packet::decode(data) {
                Ok(_) => self.leave(index, ""),
                Err(e) => self.violation(ctx, format!("invalid DISCONNECT packet: {e}")),
            },
            (PacketType::Event, Some(index)) => match packet::decode(data) {
                Ok(_) if matches!(self.sockets[index].phase, Phase::Abandoned(_)) => {}
                Ok(Decoded::Complete(p)) => {
                    let name = packet::event_name(&p).unwrap_or_default();
                    self.on_event_packet(ctx, index, data, name);
                }
                Ok(Decoded::AwaitingAttachments(_)) => {
                    self.violation(ctx, "an EVENT packet declared binary attachments".into());
                }
                Err(e) => self.violation(ctx, format!("invalid EVENT packet: {e}")),
            },
            (PacketType::BinaryEvent | PacketType::BinaryAck, Some(_)) => {
                match packet::decode(data) {
                    Ok(Decoded::Complete(p)) => self.on_complete_binary(&p),
                    Ok(Decoded::AwaitingAttachments(partial)) => self.partial = Some(partial),
                    Err(e) => self.violation(ctx, format!("invalid binary packet: {e}")),
                }
            }
            (PacketType::Ack, Some(_)) => {
                // Dropped, but still validated: an ACK's payload must be an array.
                if let Err(e) = packet::decode(data) {
                    return self.violation(ctx, format!("invalid ACK packet: {e}"));
                }
                if self.service.traffic.verbose() {
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
        match partial.push(data) {
            Decoded::Complete(p) => self.on_complete_binary(&p),
            Decoded::AwaitingAttachments(rest) => self.partial = Some(rest),
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
            SioEvent::ConnectDone { socket_id, verdict } => {
                self.on_connect_done(ctx, &socket_id, verdict)
            }
            SioEvent::EventDone { socket_id, reply } => {
                let Some(index) = self.socket_by_id(&socket_id) else {
                    return;
                };
                if let Some(reply) = reply
                    && !ctx.is_closed()
                {
                    if self.service.traffic.verbose() {
                        self.service.traffic.emit(TrafficEvent::AckForwarded {
                            hub: self.caller.hub.clone(),
                            connection_id: self.caller.connection_id.to_string(),
                            namespace: self.sockets[index].namespace.clone(),
                            packet: reply.clone(),
                        });
                    }
                    self.send(ctx, reply);
                }
                self.sockets[index].busy = false;
                if !ctx.is_closed() {
                    self.dispatch_next(ctx, index);
                }
            }
            SioEvent::Command(command) => {
                if !ctx.is_closed() {
                    self.on_command(ctx, command);
                }
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
        let text = reason.reason_text();
        let _ = self.close_reason.set(text.clone());
        while let Some(index) = self
            .sockets
            .iter()
            .position(|s| !matches!(s.phase, Phase::Abandoned(_)))
        {
            self.leave(index, &text);
        }
        self.hub.unregister(&self.caller.connection_id);
        self.service.release_hub(&self.hub);
        self.service.traffic.record(|t| RecordLine::Closed {
            t,
            hub: self.caller.hub.clone(),
            connection_id: self.caller.connection_id.to_string(),
            reason: text.clone(),
        });
        self.service.traffic.emit(TrafficEvent::ConnectionClosed {
            hub: self.caller.hub.clone(),
            connection_id: self.caller.connection_id.to_string(),
            reason: reason.describe(),
        });
    }
}
