//! One Engine.IO session as an actor task: it owns the outgoing buffer, the heartbeat, the
//! pending long-poll and, after an upgrade, the WebSocket. Transport requests, the upper
//! layer's asynchronous results and external commands all arrive on one bounded channel, so the
//! session's state is never shared and every close happens exactly once.
//!
//! The upper layer implements [`Handler`]; it sees each message, each of its own events, and
//! exactly one [`Handler::on_close`]. Inputs still queued when the session ends are drained and
//! handed to the handler (with a closed [`Ctx`]) so no result is lost.
//!
//! Backpressure (docs/protocol.md §14 decision 21): after every input the actor asks [`Handler::ready`]. While the
//! handler is not ready the actor stops reading the WebSocket and holds the long-polling POST
//! it is processing; heartbeats go on, and a missing pong is not held against the client.
//!
//! A closed session is forgotten at once: its sid is unknown to any later request. A GET held at
//! the moment of close receives the close packet (a noop when the client closed).
//!
//! Heartbeat deadlines come from the schedule, not from the timers (docs/protocol.md §1): the
//! pong is due `pingTimeout` after the ping was due, and from that instant on the session is
//! closed, so a request processed after it finds the sid unknown even if no timer has run yet.

use std::collections::VecDeque;
use std::future::{Future, pending, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::packet::Packet;
use super::transport::websocket::{CLOSE_LINGER, close_and_linger, close_code_for, close_frame};
use super::{EngineError, Registry, SharedFlags};
use crate::config::EngineConfig;

/// The WebSocket type every session speaks.
pub type WsStream = WebSocketStream<TokioIo<Upgraded>>;

/// The session table gives memory back once it is this many times larger than needed…
const SPARE_FACTOR: usize = 4;
/// …and larger than this many entries times that factor.
const MIN_SHRINK_CAPACITY: usize = 64;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent an Engine.IO close packet or a WebSocket close frame.
    ClientClose,
    /// The client did not answer a ping within `pingTimeout`.
    PingTimeout,
    /// The transport failed or the client broke the protocol (detail for the log).
    TransportError(String),
    /// Closed by the service (REST call, protocol rule); the text is the reason.
    Server(String),
    /// The service is shutting down.
    Shutdown,
}

impl CloseReason {
    /// The `disconnected` reason text (docs/protocol.md §14 decision 13).
    pub fn reason_text(&self) -> String {
        match self {
            CloseReason::ClientClose => String::new(),
            CloseReason::PingTimeout => "ping timeout".into(),
            CloseReason::TransportError(_) => "transport error".into(),
            CloseReason::Server(text) => text.clone(),
            CloseReason::Shutdown => "server shutting down".into(),
        }
    }

    /// A longer description for the live log.
    pub fn describe(&self) -> String {
        match self {
            CloseReason::ClientClose => String::new(),
            CloseReason::TransportError(detail) => format!("transport error: {detail}"),
            other => other.reason_text(),
        }
    }
}

/// What a long-poll GET receives.
pub(crate) type PollReply = Result<String, EngineError>;

/// A long-polling POST's packets and where its answer goes.
pub(crate) type PollPost = (Vec<Packet>, oneshot::Sender<Result<(), EngineError>>);

/// Everything a session actor reacts to. Every variant is one pointer (larger payloads are
/// boxed), so the session's queue ([`inbox`]) moves and keeps small values.
pub(crate) enum Input<E> {
    PollGet(oneshot::Sender<PollReply>),
    PollPost(Box<PollPost>),
    /// A WebSocket probe succeeded: release the pending GET with a noop, and answer every
    /// GET with a noop until the upgrade completes or is abandoned.
    Probe,
    /// The upgrade completed with `5`: the session moves to this WebSocket.
    Upgraded(Box<WsStream>),
    /// A transport noticed a protocol violation; close the session. Boxed to keep the input
    /// one pointer wide (a `Box<str>` is two).
    #[allow(clippy::box_collection)]
    Fail(Box<String>),
    Handler(Box<E>),
}

impl<E> Input<E> {
    /// A long-polling POST's packets.
    pub(crate) fn poll_post(
        packets: Vec<Packet>,
        reply: oneshot::Sender<Result<(), EngineError>>,
    ) -> Self {
        Input::PollPost(Box::new((packets, reply)))
    }

    /// A protocol violation noticed by a transport.
    pub(crate) fn fail(detail: impl Into<String>) -> Self {
        Input::Fail(Box::new(detail.into()))
    }
}

/// Sends the handler's own events back into its session; cloned into spawned tasks.
pub struct EventSender<E> {
    tx: inbox::Sender<Input<E>>,
}

impl<E> Clone for EventSender<E> {
    fn clone(&self) -> Self {
        EventSender {
            tx: self.tx.clone(),
        }
    }
}

impl<E> std::fmt::Debug for EventSender<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSender")
    }
}

impl<E: Send + 'static> EventSender<E> {
    /// Waits for room in the session's queue. Gives the event back if the session has ended.
    pub async fn send(&self, event: E) -> Result<(), E> {
        self.tx
            .send(Input::Handler(Box::new(event)))
            .await
            .map_err(|e| match e.0 {
                Input::Handler(ev) => *ev,
                _ => unreachable_input(),
            })
    }

    /// Queues without waiting. Gives the event back if the queue is full or the session ended.
    pub fn try_send(&self, event: E) -> Result<(), E> {
        self.tx
            .try_send(Input::Handler(Box::new(event)))
            .map_err(|e| match e.into_inner() {
                Input::Handler(ev) => *ev,
                _ => unreachable_input(),
            })
    }

    /// Resolves when the session has ended.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

fn unreachable_input() -> ! {
    // Only `Input::Handler` values are ever sent through an `EventSender`.
    unreachable!("EventSender returned a non-handler input")
}

/// An outgoing packet in its wire form.
enum Out {
    /// A text packet, type digit included (`42[...]`, `2`, `1`).
    Text(String),
    /// Fires once everything queued before it has been handed to the transport.
    Marker(oneshot::Sender<()>),
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Text(t) => t.len(),
            Out::Marker(_) => 0,
        }
    }
}

/// The handler's view of its session during a callback.
pub struct Ctx<'a, E> {
    outbox: &'a mut VecDeque<Out>,
    outbox_bytes: &'a mut usize,
    close: &'a mut Option<CloseReason>,
    closed: bool,
    tx: &'a inbox::Sender<Input<E>>,
}

impl<E> Ctx<'_, E> {
    /// Whether the session has ended (sends are then dropped).
    pub fn is_closed(&self) -> bool {
        self.closed || self.close.is_some()
    }

    /// Queues one complete Engine.IO text packet (`4…` for messages) for the client.
    pub fn send_packet_text(&mut self, packet: String) {
        if self.is_closed() {
            return;
        }
        *self.outbox_bytes += packet.len();
        self.outbox.push_back(Out::Text(packet));
    }

    /// Queues a message packet: `4` + `data`.
    #[cfg(test)]
    pub fn send_message(&mut self, data: &str) {
        let mut text = String::with_capacity(data.len() + 1);
        text.push('4');
        text.push_str(data);
        self.send_packet_text(text);
    }

    /// Resolves once everything queued so far has been handed to the transport; fails if the
    /// session ends first.
    pub fn when_sent(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if !self.is_closed() {
            self.outbox.push_back(Out::Marker(tx));
        }
        rx
    }

    /// Ends the session after this callback.
    pub fn close(&mut self, reason: CloseReason) {
        if self.close.is_none() && !self.closed {
            *self.close = Some(reason);
        }
    }

    /// A sender for the handler's own events (for spawned tasks).
    pub fn sender(&self) -> EventSender<E> {
        EventSender {
            tx: self.tx.clone(),
        }
    }
}

/// The upper layer's side of a session.
pub trait Handler: Send + 'static {
    /// The handler's own asynchronous results and external commands.
    type Event: Send + 'static;
    /// The session exists; the open packet is on its way.
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self::Event>);
    /// A text message packet (`4` + `data`); `data` excludes the `4`.
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self::Event>, data: &str);
    /// A binary message packet.
    fn on_binary(&mut self, ctx: &mut Ctx<'_, Self::Event>, data: Bytes);
    /// The session moved from long-polling to WebSocket.
    fn on_upgrade(&mut self) {}
    /// One of the handler's own events; `ctx.is_closed()` tells whether the session has ended.
    fn on_event(&mut self, ctx: &mut Ctx<'_, Self::Event>, event: Self::Event);
    /// The session ended; called exactly once.
    fn on_close(&mut self, reason: &CloseReason);
    /// Whether the handler takes more client packets now. While false, the session stops reading
    /// the WebSocket and holds the long-polling POST it is processing (its remaining packets wait)
    /// until the handler is ready again; heartbeats continue and a missing pong is not counted
    /// against the client meanwhile (the service, not the client, is behind).
    fn ready(&self) -> bool {
        true
    }
}

/// A long-polling POST whose remaining packets wait for the handler (docs/protocol.md §14 decision 21). The POST is
/// answered once its last packet is delivered.
struct HeldPost {
    packets: std::vec::IntoIter<Packet>,
    reply: oneshot::Sender<Result<(), EngineError>>,
}

/// Which transport carries the session now.
enum Carrier {
    Polling {
        pending_get: Option<oneshot::Sender<PollReply>>,
    },
    WebSocket(Box<WsStream>),
}

/// One session's actor state.
pub(crate) struct Actor<H: Handler> {
    pub sid: Arc<str>,
    pub config: Arc<EngineConfig>,
    pub handler: H,
    pub rx: inbox::Receiver<Input<H::Event>>,
    pub tx: inbox::Sender<Input<H::Event>>,
    pub flags: Arc<SharedFlags>,
    pub registry: Registry<H::Event>,
    pub shutdown: CancellationToken,
    carrier: Carrier,
    outbox: VecDeque<Out>,
    outbox_bytes: usize,
    close: Option<CloseReason>,
    awaiting_pong: bool,
    /// The handler was not ready at some moment since the last ping went out, so a missing
    /// pong may be the service's delay, not the client's.
    stalled: bool,
    /// The POST being processed while the handler is not ready.
    /// Boxed: rare, and the actor is part of every idle session's task.
    held_post: Option<Box<HeldPost>>,
    /// The close code owed to a WebSocket client that broke the protocol.
    ws_close: Option<CloseCode>,
    /// A probe succeeded: polling GETs get an immediate noop so the client can pause polling.
    probed: bool,
    timer: Pin<Box<Sleep>>,
}

impl<H: Handler> Actor<H> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        sid: Arc<str>,
        config: Arc<EngineConfig>,
        handler: H,
        rx: inbox::Receiver<Input<H::Event>>,
        tx: inbox::Sender<Input<H::Event>>,
        flags: Arc<SharedFlags>,
        registry: Registry<H::Event>,
        shutdown: CancellationToken,
        websocket: Option<Box<WsStream>>,
        open_packet: Option<String>,
    ) -> Self {
        let timer = Box::pin(sleep(config.ping_interval));
        let carrier = match websocket {
            Some(ws) => Carrier::WebSocket(ws),
            None => Carrier::Polling { pending_get: None },
        };
        let mut outbox = VecDeque::new();
        let mut outbox_bytes = 0;
        if let Some(open) = open_packet {
            outbox_bytes += open.len();
            outbox.push_back(Out::Text(open));
        }
        Actor {
            sid,
            config,
            handler,
            rx,
            tx,
            flags,
            registry,
            shutdown,
            carrier,
            outbox,
            outbox_bytes,
            close: None,
            awaiting_pong: false,
            stalled: false,
            held_post: None,
            ws_close: None,
            probed: false,
            timer,
        }
    }

    fn ctx(&mut self) -> (&mut H, Ctx<'_, H::Event>) {
        (
            &mut self.handler,
            Ctx {
                outbox: &mut self.outbox,
                outbox_bytes: &mut self.outbox_bytes,
                close: &mut self.close,
                closed: false,
                tx: &self.tx,
            },
        )
    }

    /// Runs the session to its end. An `async` block, not an `async fn`: the block keeps the
    /// actor where it was captured, while an `async fn` would keep its argument and the body's
    /// copy of it side by side in every idle session's task (a few hundred bytes each).
    #[allow(clippy::manual_async_fn)] // the point: an `async fn` would keep the actor twice
    pub(crate) fn run(mut self) -> impl Future<Output = ()> {
        async move {
            {
                let (handler, mut ctx) = self.ctx();
                handler.on_open(&mut ctx);
            }
            self.after_input();
            self.flush().await;
            let mut late = None;
            while self.close.is_none() {
                // A handler that is not ready leaves the client's frames in the socket.
                let reading = self.handler.ready();
                let ws = match &mut self.carrier {
                    Carrier::WebSocket(ws) if reading => Some(ws),
                    _ => None,
                };
                // Past the pong deadline the session is closed, whatever woke it: an input that
                // arrives now is answered as the closed session's (docs/protocol.md §1).
                tokio::select! {
                    biased;
                    _ = self.shutdown.cancelled() => {
                        self.close = Some(CloseReason::Shutdown);
                    }
                    input = self.rx.recv() => match input {
                        Some(input) if self.expired() => late = Some(input),
                        Some(input) => self.on_input(input),
                        // Unreachable while the actor holds a sender; treat as shutdown.
                        None => self.close = Some(CloseReason::Shutdown),
                    },
                    frame = next_frame(ws) => {
                        self.on_client_data();
                        self.on_frame(frame);
                    }
                    _ = &mut self.timer => if !self.expired() {
                        self.on_timer();
                    },
                }
                self.after_input();
                self.check_backlog();
                self.flush().await;
            }
            // Boxed: the closing steps are large and would otherwise sit in every idle session's future.
            Box::pin(self.finish(late)).await;
        }
    }

    /// When a missing pong closes the session: the ping's due time plus `pingTimeout`, taken
    /// from the schedule, never from when a (possibly late) timer fired, and whether or not the
    /// ping timer has fired yet.
    fn pong_deadline(&self) -> Instant {
        let due = self.timer.deadline();
        if self.awaiting_pong {
            due
        } else {
            due + self.config.ping_timeout
        }
    }

    /// A WebSocket frame shows the client alive. A busy session reads its timer last, so a ping
    /// may be overdue: it goes out now. A pong the client sent may wait behind frames not read
    /// yet, so a missing pong is not held against it this round (the next ping's deadline is
    /// kept as strictly as any); a client that sends nothing is closed at its deadline.
    fn on_client_data(&mut self) {
        if !self.awaiting_pong && Instant::now() >= self.timer.deadline() {
            self.on_timer();
        }
        if self.awaiting_pong {
            self.stalled = true;
        }
    }

    /// Closes the session when its pong deadline has passed: it is closed from that instant on,
    /// even before its close timer fires. A handler that is or was not ready (docs/protocol.md §14
    /// decision 21) leaves the client its pong, as [`Self::on_timer`] does.
    fn expired(&mut self) -> bool {
        let overdue = self.handler.ready()
            && !(self.awaiting_pong && self.stalled)
            && Instant::now() >= self.pong_deadline();
        if overdue {
            self.close = Some(CloseReason::PingTimeout);
        }
        overdue
    }

    fn on_input(&mut self, input: Input<H::Event>) {
        match input {
            Input::PollGet(reply) => self.on_poll_get(reply),
            Input::PollPost(post) => {
                let (packets, reply) = *post;
                self.on_poll_post(packets, reply)
            }
            Input::Probe => {
                self.probed = true;
                if let Carrier::Polling { pending_get } = &mut self.carrier
                    && let Some(get) = pending_get.take()
                {
                    let _ = get.send(Ok("6".into()));
                }
            }
            Input::Upgraded(ws) => {
                if let Carrier::Polling { pending_get } = &mut self.carrier
                    && let Some(get) = pending_get.take()
                {
                    let _ = get.send(Ok("6".into()));
                }
                self.carrier = Carrier::WebSocket(ws);
                self.flags.upgraded.store(true, Ordering::Release);
                self.flags.upgrading.store(false, Ordering::Release);
                self.handler.on_upgrade();
            }
            Input::Fail(detail) => self.close = Some(CloseReason::TransportError(*detail)),
            Input::Handler(event) => {
                let (handler, mut ctx) = self.ctx();
                handler.on_event(&mut ctx, *event);
            }
        }
    }

    /// Re-checks the handler after an input: a ready handler takes the rest of a held POST; one
    /// that is not ready stalls the current ping.
    fn after_input(&mut self) {
        if self.held_post.is_some() && self.close.is_none() && self.handler.ready() {
            self.resume_post();
        }
        if !self.handler.ready() {
            self.stalled = true;
        }
    }

    fn on_poll_post(
        &mut self,
        packets: Vec<Packet>,
        reply: oneshot::Sender<Result<(), EngineError>>,
    ) {
        if matches!(self.carrier, Carrier::WebSocket(_)) {
            let _ = reply.send(Err(EngineError::BadRequest));
            return;
        }
        if self.held_post.is_some() {
            // The transport refuses a concurrent POST before it gets here; same answer.
            let _ = reply.send(Err(EngineError::BadRequest));
            self.close = Some(CloseReason::TransportError(
                "two long-polling POST requests at once".into(),
            ));
            return;
        }
        self.held_post = Some(Box::new(HeldPost {
            packets: packets.into_iter(),
            reply,
        }));
        self.resume_post();
    }

    /// Delivers the held POST's packets while the handler is ready; answers the POST once the
    /// last one is in (or the session closed meanwhile), else keeps holding it.
    fn resume_post(&mut self) {
        let Some(mut post) = self.held_post.take() else {
            return;
        };
        while self.close.is_none() && self.handler.ready() {
            match post.packets.next() {
                Some(packet) => self.on_packet(packet),
                None => break,
            }
        }
        if self.close.is_some() || (post.packets.len() == 0 && self.handler.ready()) {
            let _ = post.reply.send(Ok(()));
        } else {
            self.held_post = Some(post);
        }
    }

    fn on_poll_get(&mut self, reply: oneshot::Sender<PollReply>) {
        match &mut self.carrier {
            Carrier::WebSocket(_) => {
                let _ = reply.send(Err(EngineError::BadRequest));
            }
            Carrier::Polling { pending_get } => {
                // An abandoned upgrade clears `upgrading`, and polling resumes normally.
                if self.probed && self.flags.upgrading.load(Ordering::Acquire) {
                    // Mid-upgrade: buffered packets wait for the WebSocket (docs/protocol.md §0 E1 noop rule).
                    let _ = reply.send(Ok("6".into()));
                } else if pending_get.is_some() {
                    // A second concurrent GET: refuse it and close the session; the first
                    // GET is answered with the close packet (docs/protocol.md §0 E1 test-suite).
                    let _ = reply.send(Err(EngineError::BadRequest));
                    self.close = Some(CloseReason::TransportError(
                        "two long-polling GET requests at once".into(),
                    ));
                } else {
                    *pending_get = Some(reply);
                }
            }
        }
    }

    fn on_frame(&mut self, frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) {
        // A message, by far the most frequent frame, reaches the handler without a copy.
        if let Some(Ok(Message::Text(text))) = &frame
            && let Some(data) = text.as_str().strip_prefix('4')
        {
            let (handler, mut ctx) = self.ctx();
            handler.on_message(&mut ctx, data);
            return;
        }
        let packet = match frame {
            Some(Ok(Message::Text(text))) => match Packet::decode_text(text.as_str()) {
                Ok(p) => p,
                Err(e) => {
                    self.ws_close = Some(CloseCode::Protocol);
                    self.close = Some(CloseReason::TransportError(format!(
                        "invalid Engine.IO packet: {e}"
                    )));
                    return;
                }
            },
            Some(Ok(Message::Binary(data))) => Packet::Binary(data),
            Some(Ok(Message::Close(_))) => {
                self.close = Some(CloseReason::ClientClose);
                return;
            }
            Some(Ok(_)) => return, // WebSocket ping/pong frames: tungstenite answers them.
            Some(Err(e)) => {
                self.ws_close = close_code_for(&e);
                self.close = Some(CloseReason::TransportError(e.to_string()));
                return;
            }
            None => {
                self.close = Some(CloseReason::TransportError(
                    "the WebSocket closed without a close frame".into(),
                ));
                return;
            }
        };
        self.on_packet(packet);
    }

    fn on_packet(&mut self, packet: Packet) {
        match packet {
            Packet::Message(data) => {
                let (handler, mut ctx) = self.ctx();
                handler.on_message(&mut ctx, &data);
            }
            Packet::Binary(data) => {
                let (handler, mut ctx) = self.ctx();
                handler.on_binary(&mut ctx, data);
            }
            Packet::Pong(_) => {
                if self.awaiting_pong {
                    self.awaiting_pong = false;
                    let at = Instant::now() + self.config.ping_interval;
                    self.timer.as_mut().reset(at);
                }
            }
            Packet::Close => self.close = Some(CloseReason::ClientClose),
            // v4 clients do not ping; probes and upgrades outside an upgrade, and noops,
            // carry nothing for the session.
            Packet::Ping(_) | Packet::Upgrade | Packet::Noop => {}
            Packet::Open(_) => {
                // Only a WebSocket hears the code; a long-polling client gets its 400.
                self.ws_close = Some(CloseCode::Protocol);
                self.close = Some(CloseReason::TransportError(
                    "the client sent an open packet".into(),
                ));
            }
        }
    }

    /// Sends the next ping. A missing pong has already closed the session ([`Self::expired`] runs
    /// first) unless the client may have sent it while the handler was not ready, so it is still
    /// unread: then ping again instead of closing.
    fn on_timer(&mut self) {
        self.awaiting_pong = true;
        self.stalled = !self.handler.ready();
        self.outbox_bytes += 1;
        self.outbox.push_back(Out::Text("2".into()));
        // From when the ping was due: a timer that fired late does not lend the client time.
        let at = self.timer.deadline() + self.config.ping_timeout;
        self.timer.as_mut().reset(at);
    }

    /// A client that stops reading cannot make the service buffer without bound.
    fn check_backlog(&mut self) {
        if self.close.is_none()
            && (self.outbox.len() > self.config.max_buffered_packets
                || self.outbox_bytes > self.config.max_buffered_bytes)
        {
            self.close = Some(CloseReason::TransportError(format!(
                "the client is not reading: {} packets ({} bytes) buffered",
                self.outbox.len(),
                self.outbox_bytes
            )));
        }
    }

    /// Delivers what the outbox holds through the current transport.
    async fn flush(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        match &mut self.carrier {
            Carrier::Polling { pending_get } => {
                if let Some(get) = pending_get.take() {
                    let body = drain_payload(&mut self.outbox, &mut self.outbox_bytes);
                    let _ = get.send(Ok(body));
                }
            }
            Carrier::WebSocket(ws) => {
                // Most writes complete at once (the socket has room). Only a client that is slow
                // to read makes the session wait, and that wait, with its timeout and its watch
                // on shutdown, is boxed: it would otherwise sit in every idle session's future.
                let outbox = &mut self.outbox;
                let attempt = poll_fn(|cx| Poll::Ready(poll_write_out(ws, outbox, cx))).await;
                let result = match attempt {
                    Poll::Ready(written) => Ok(written),
                    Poll::Pending => {
                        let budget = self.config.ping_timeout;
                        Box::pin(write_or_give_up(ws, outbox, budget, &self.shutdown)).await
                    }
                };
                self.outbox_bytes = self.outbox.iter().map(Out::len).sum();
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        self.close
                            .get_or_insert(CloseReason::TransportError(e.to_string()));
                    }
                    Err(WriteStopped::Shutdown) => {
                        self.close.get_or_insert(CloseReason::Shutdown);
                    }
                    Err(WriteStopped::Budget(budget)) => {
                        self.close
                            .get_or_insert(CloseReason::TransportError(format!(
                                "the client accepted no data for {budget:?}"
                            )));
                    }
                }
            }
        }
    }

    /// Ends the session: the handler hears the close once, the registry forgets the sid (a later
    /// request is told it is unknown), the client gets the close packet (or frame), and queued
    /// inputs are drained.
    async fn finish(mut self, late: Option<Input<H::Event>>) {
        let reason = self.close.take().unwrap_or(CloseReason::Shutdown);
        self.handler.on_close(&reason);
        if let Some(post) = self.held_post.take() {
            // Its remaining packets end with the session; the client learns of the close from
            // its GET (or the next request), as it would on a WebSocket.
            let _ = post.reply.send(Ok(()));
        }
        {
            let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
            registry.remove(&self.sid);
            // After a storm of closes the table would keep its peak size for good.
            let live = registry.len();
            if registry.capacity() > SPARE_FACTOR * live.max(MIN_SHRINK_CAPACITY) {
                registry.shrink_to(live * 2);
            }
        }
        match &mut self.carrier {
            Carrier::WebSocket(ws) => {
                if let Some(code) = self.ws_close {
                    tokio::select! {
                        _ = close_and_linger(ws, Some(close_frame(code))) => {}
                        _ = self.shutdown.cancelled() => {}
                    }
                } else if reason != CloseReason::ClientClose
                    && !matches!(reason, CloseReason::TransportError(_))
                {
                    let outbox = &mut self.outbox;
                    let _ = timeout(CLOSE_LINGER, async {
                        poll_fn(|cx| poll_write_out(ws, outbox, cx)).await?;
                        SinkExt::close(ws).await
                    })
                    .await;
                }
            }
            Carrier::Polling { pending_get } => {
                if let Some(get) = pending_get.take() {
                    // The reference server answers a client's own close with a noop.
                    let body = if reason == CloseReason::ClientClose {
                        "6".to_owned()
                    } else {
                        self.outbox.push_back(Out::Text("1".into()));
                        drain_payload(&mut self.outbox, &mut self.outbox_bytes)
                    };
                    let _ = get.send(Ok(body));
                }
            }
        }
        self.rx.close();
        if let Some(input) = late {
            self.drain_one(input);
        }
        while let Some(input) = self.rx.try_recv() {
            self.drain_one(input);
        }
    }

    /// Handles an input that arrives after the session ended.
    fn drain_one(&mut self, input: Input<H::Event>) {
        match input {
            Input::PollGet(reply) => {
                let _ = reply.send(Err(EngineError::UnknownSid));
            }
            Input::PollPost(post) => {
                let _ = post.1.send(Err(EngineError::UnknownSid));
            }
            Input::Handler(event) => {
                let mut outbox = VecDeque::new();
                let mut bytes = 0;
                let mut close = None;
                let mut ctx = Ctx {
                    outbox: &mut outbox,
                    outbox_bytes: &mut bytes,
                    close: &mut close,
                    closed: true,
                    tx: &self.tx,
                };
                self.handler.on_event(&mut ctx, *event);
            }
            Input::Probe | Input::Upgraded(_) | Input::Fail(_) => {}
        }
    }
}

async fn next_frame(
    ws: Option<&mut Box<WsStream>>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => pending().await,
    }
}

/// Why a write that had to wait was given up.
enum WriteStopped {
    /// The client accepted no data for this long.
    Budget(std::time::Duration),
    /// The service is shutting down.
    Shutdown,
}

/// Hands the outbox to the WebSocket: each text packet in order, a marker once everything
/// before it is flushed to the socket, and a final flush. What could not be sent yet stays in
/// the outbox, so the next poll goes on where this one stopped.
fn poll_write_out(
    ws: &mut WsStream,
    outbox: &mut VecDeque<Out>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), tokio_tungstenite::tungstenite::Error>> {
    loop {
        match outbox.front() {
            None => return Pin::new(&mut *ws).poll_flush(cx),
            Some(Out::Marker(_)) => {
                ready!(Pin::new(&mut *ws).poll_flush(cx))?;
                if let Some(Out::Marker(marker)) = outbox.pop_front() {
                    let _ = marker.send(());
                }
            }
            Some(Out::Text(_)) => {
                ready!(Pin::new(&mut *ws).poll_ready(cx))?;
                if let Some(Out::Text(text)) = outbox.pop_front() {
                    Pin::new(&mut *ws).start_send(Message::Text(text.into()))?;
                }
            }
        }
    }
}

/// The rest of a write the client is slow to take: it has `budget` (a client that accepts no
/// data for a whole ping timeout is gone), and shutdown does not wait for it (up to the whole
/// budget, often longer than --shutdown-grace): the session stops writing and closes.
async fn write_or_give_up(
    ws: &mut WsStream,
    outbox: &mut VecDeque<Out>,
    budget: std::time::Duration,
    shutdown: &CancellationToken,
) -> Result<Result<(), tokio_tungstenite::tungstenite::Error>, WriteStopped> {
    tokio::select! {
        written = timeout(budget, poll_fn(|cx| poll_write_out(ws, outbox, cx))) => {
            written.map_err(|_| WriteStopped::Budget(budget))
        }
        _ = shutdown.cancelled() => Err(WriteStopped::Shutdown),
    }
}

/// Joins the buffered packets into one long-polling payload.
fn drain_payload(outbox: &mut VecDeque<Out>, outbox_bytes: &mut usize) -> String {
    let mut body = String::with_capacity(*outbox_bytes + outbox.len());
    let mut first = true;
    for out in outbox.drain(..) {
        if let Out::Marker(marker) = out {
            let _ = marker.send(());
            continue;
        }
        if !first {
            body.push('\x1e');
        }
        first = false;
        if let Out::Text(text) = out {
            body.push_str(&text);
        }
    }
    *outbox_bytes = 0;
    body
}

pub(crate) mod inbox;

#[cfg(test)]
mod tests;
