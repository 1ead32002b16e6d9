//! The session actor under tokio's paused clock: `Actor::run` is driven through its `Input`
//! channel (long-polling) or a real WebSocket over an in-memory duplex pipe, with a small
//! [`Probe`] handler that records its calls, echoes messages on request, and whose
//! [`Handler::ready`] a test flips with an event. Timers (pings, timeouts) therefore run on
//! virtual time: every elapsed time asserted here is exact, never a measurement.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::engineio::SessionHandle;
use crate::engineio::transport::{polling, websocket};

const PING_INTERVAL: Duration = Duration::from_secs(25);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What the probe handler saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Open,
    Message(String),
    Close(CloseReason),
}

/// The probe's events: a test's commands to the handler inside its session.
#[derive(Debug)]
enum Ev {
    /// Queue a message for the client.
    Send(String),
    /// Change what `ready()` answers.
    Ready(bool),
    /// Close the session from the service side.
    Close,
}

/// A handler that records its calls; it turns not ready after `pause_after` messages.
struct Probe {
    calls: Arc<Mutex<Vec<Call>>>,
    ready: bool,
    pause_after: Option<usize>,
    echo: bool,
    messages: usize,
}

impl Handler for Probe {
    type Event = Ev;

    fn on_open(&mut self, _ctx: &mut Ctx<'_, Ev>) {
        self.calls.lock().unwrap().push(Call::Open);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Ev>, data: &str) {
        self.calls.lock().unwrap().push(Call::Message(data.into()));
        self.messages += 1;
        if self.pause_after == Some(self.messages) {
            self.ready = false;
        }
        if self.echo {
            ctx.send_message(data);
        }
    }

    fn on_binary(&mut self, _ctx: &mut Ctx<'_, Ev>, _data: Bytes) {}

    fn on_event(&mut self, ctx: &mut Ctx<'_, Ev>, event: Ev) {
        match event {
            Ev::Send(text) => ctx.send_message(&text),
            Ev::Ready(ready) => self.ready = ready,
            Ev::Close => ctx.close(CloseReason::Server("closed by the test".into())),
        }
    }

    fn on_close(&mut self, reason: &CloseReason) {
        self.calls.lock().unwrap().push(Call::Close(reason.clone()));
    }

    fn ready(&self) -> bool {
        self.ready
    }
}

/// How a test session starts.
#[derive(Default)]
struct Setup {
    not_ready_after: Option<usize>,
    echo: bool,
}

/// A running actor and the test's handles on it.
struct Session {
    handle: SessionHandle<Ev>,
    registry: Registry<Ev>,
    calls: Arc<Mutex<Vec<Call>>>,
    shutdown: CancellationToken,
    actor: JoinHandle<()>,
}

fn config() -> Arc<EngineConfig> {
    Arc::new(EngineConfig {
        ping_interval: PING_INTERVAL,
        ping_timeout: PING_TIMEOUT,
        ..EngineConfig::default()
    })
}

/// Starts an actor on long-polling, or on `ws` when given.
fn start(setup: Setup, ws: Option<Box<WsStream>>) -> Session {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let probe = Probe {
        calls: calls.clone(),
        ready: true,
        pause_after: setup.not_ready_after,
        echo: setup.echo,
        messages: 0,
    };
    let sid: Arc<str> = "test-sid".into();
    let (tx, rx) = inbox::channel(16);
    let flags = Arc::new(SharedFlags::default());
    let handle = SessionHandle {
        route: "hub".into(),
        tx: tx.clone(),
        flags: flags.clone(),
    };
    let registry: Registry<Ev> = Arc::new(Mutex::new(HashMap::new()));
    registry.lock().unwrap().insert(sid.clone(), handle.clone());
    let shutdown = CancellationToken::new();
    let actor = Actor::new(
        sid,
        config(),
        probe,
        rx,
        tx,
        flags,
        registry.clone(),
        shutdown.clone(),
        ws,
        None,
    );
    Session {
        handle,
        registry,
        calls,
        shutdown,
        actor: tokio::spawn(actor.run()),
    }
}

impl Session {
    /// A long-poll GET; the receiver resolves with its answer.
    async fn get(&self) -> oneshot::Receiver<PollReply> {
        let (reply, answer) = oneshot::channel();
        self.send(Input::PollGet(reply)).await;
        answer
    }

    /// A POST of text packets; the receiver resolves with its answer.
    async fn post(&self, packets: &[&str]) -> oneshot::Receiver<Result<(), EngineError>> {
        let packets = packets
            .iter()
            .map(|p| Packet::decode_text(p).unwrap())
            .collect();
        let (reply, answer) = oneshot::channel();
        self.send(Input::poll_post(packets, reply)).await;
        answer
    }

    async fn event(&self, event: Ev) {
        self.send(Input::Handler(Box::new(event))).await;
    }

    async fn send(&self, input: Input<Ev>) {
        assert!(self.handle.tx.send(input).await.is_ok(), "session ended");
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn messages(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn closes(&self) -> Vec<CloseReason> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Close(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Waits for the actor to end; returns the one close reason the handler heard.
    async fn ended(self) -> (CloseReason, Session) {
        let Session {
            handle,
            registry,
            calls,
            shutdown,
            actor,
        } = self;
        actor.await.unwrap();
        let session = Session {
            handle,
            registry,
            calls,
            shutdown,
            actor: tokio::spawn(async {}),
        };
        let closes = session.closes();
        assert_eq!(closes.len(), 1, "{closes:?}");
        assert!(
            session.registry.lock().unwrap().is_empty(),
            "the sid is still registered"
        );
        (closes[0].clone(), session)
    }
}

async fn answer(rx: oneshot::Receiver<PollReply>) -> PollReply {
    rx.await.expect("the GET was dropped unanswered")
}

fn ok(text: &str) -> PollReply {
    Ok(text.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Heartbeat
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_ping_goes_out_after_the_ping_interval() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    assert_eq!(answer(s.get().await).await, ok("2"));
    assert_eq!(t0.elapsed(), PING_INTERVAL);
    assert_eq!(s.calls(), [Call::Open]);
}

#[tokio::test(start_paused = true)]
async fn no_pong_within_the_ping_timeout_closes_the_session() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    assert_eq!(answer(s.get().await).await, ok("2"));
    // A GET held across the timeout carries the close packet.
    assert_eq!(answer(s.get().await).await, ok("1"));
    assert_eq!(t0.elapsed(), PING_INTERVAL + PING_TIMEOUT);
    assert_eq!(s.ended().await.0, CloseReason::PingTimeout);
}

#[tokio::test(start_paused = true)]
async fn a_pong_resets_the_heartbeat() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    assert_eq!(answer(s.get().await).await, ok("2"));
    assert_eq!(s.post(&["3"]).await.await.unwrap(), Ok(()));
    // Without the pong the session would close at interval + timeout; it pings again instead,
    // one interval after the pong.
    assert_eq!(answer(s.get().await).await, ok("2"));
    assert_eq!(t0.elapsed(), 2 * PING_INTERVAL);
    assert!(PING_INTERVAL + PING_TIMEOUT < 2 * PING_INTERVAL);
    assert!(s.closes().is_empty());
}

/// One millisecond, the finest step of tokio's timers.
const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn the_pong_deadline_counts_from_when_the_ping_was_due_not_from_a_late_timer() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    // The clock jumps past the ping's time, as on a busy runtime: the ping timer fires late.
    let late = Duration::from_secs(5);
    tokio::time::advance(PING_INTERVAL + late).await;
    assert_eq!(answer(s.get().await).await, ok("2"));
    // A GET held across the deadline carries the close packet, at the ping's due time plus the
    // ping timeout, not at the late firing plus the timeout.
    assert_eq!(answer(s.get().await).await, ok("1"));
    assert_eq!(t0.elapsed(), PING_INTERVAL + PING_TIMEOUT);
    assert_eq!(s.ended().await.0, CloseReason::PingTimeout);
}

#[tokio::test(start_paused = true)]
async fn a_session_is_closed_from_the_instant_of_its_pong_deadline_on() {
    // Two sessions started together: one is polled a millisecond before the deadline, the
    // other exactly at it.
    let before = start(Setup::default(), None);
    let at = start(Setup::default(), None);
    let t0 = Instant::now();
    assert_eq!(answer(before.get().await).await, ok("2"));
    assert_eq!(answer(at.get().await).await, ok("2"));
    assert_eq!(t0.elapsed(), PING_INTERVAL);
    // One millisecond before the deadline the session is open: the GET is held, and the close
    // answers it with the close packet.
    tokio::time::advance(PING_TIMEOUT - MS).await;
    let held = before.get().await;
    // A POST behind the GET, answered before the clock moves on: the GET reached the session
    // before the deadline.
    assert_eq!(before.post(&["4still here"]).await.await.unwrap(), Ok(()));
    assert_eq!(before.messages(), ["still here"]);
    // Exactly at the deadline the session is closed, whether or not its close timer has run:
    // both a GET and a pong are told the sid is unknown.
    tokio::time::advance(MS).await;
    assert_eq!(t0.elapsed(), PING_INTERVAL + PING_TIMEOUT);
    let (pong, pong_answer) = oneshot::channel();
    let pong_packets = vec![Packet::decode_text("3").unwrap()];
    at.send(Input::poll_post(pong_packets, pong)).await;
    let get = at.get().await;
    assert_eq!(pong_answer.await.unwrap(), Err(EngineError::UnknownSid));
    assert_eq!(answer(get).await, Err(EngineError::UnknownSid));
    assert_eq!(at.ended().await.0, CloseReason::PingTimeout);
    assert_eq!(answer(held).await, ok("1"));
    assert_eq!(before.ended().await.0, CloseReason::PingTimeout);
    assert_eq!(t0.elapsed(), PING_INTERVAL + PING_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_ping_timer_that_has_not_fired_by_the_pong_deadline_does_not_keep_the_session() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    // The whole heartbeat passes in one jump: neither the ping nor the close has run, and the
    // first request after it finds the session closed, not a ping.
    tokio::time::advance(PING_INTERVAL + PING_TIMEOUT).await;
    assert_eq!(answer(s.get().await).await, Err(EngineError::UnknownSid));
    assert_eq!(s.ended().await.0, CloseReason::PingTimeout);
    assert_eq!(t0.elapsed(), PING_INTERVAL + PING_TIMEOUT);
}

// ---------------------------------------------------------------------------------------------
// Long-polling
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_held_get_is_released_by_an_outgoing_packet() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    let held = s.get().await;
    s.event(Ev::Send("hello".into())).await;
    assert_eq!(answer(held).await, ok("4hello"));
    assert_eq!(t0.elapsed(), Duration::ZERO);
    // Packets queued while no GET is held are joined into the next one.
    s.event(Ev::Send("a".into())).await;
    s.event(Ev::Send("b".into())).await;
    assert_eq!(answer(s.get().await).await, ok("4a\x1e4b"));
}

#[tokio::test(start_paused = true)]
async fn two_gets_at_once_close_the_session() {
    let s = start(Setup::default(), None);
    let first = s.get().await;
    let second = s.get().await;
    assert_eq!(answer(second).await, Err(EngineError::BadRequest));
    assert_eq!(answer(first).await, ok("1"));
    let (reason, _) = s.ended().await;
    assert!(
        matches!(reason, CloseReason::TransportError(_)),
        "{reason:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_session_is_unknown_at_once() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    // The close and a GET right behind it, with no GET held at the moment of close.
    s.event(Ev::Close).await;
    let late = s.get().await;
    assert_eq!(answer(late).await, Err(EngineError::UnknownSid));
    let (reason, s) = s.ended().await;
    assert_eq!(reason, CloseReason::Server("closed by the test".into()));
    // No linger: the session ended at the instant it closed.
    assert_eq!(t0.elapsed(), Duration::ZERO);
    // A GET through the transport, as a client's next poll would arrive.
    let response = polling::get(&s.handle).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, EngineError::UnknownSid.error_body().to_json());
}

#[tokio::test(start_paused = true)]
async fn a_client_close_gives_the_held_get_a_noop() {
    let s = start(Setup::default(), None);
    let held = s.get().await;
    assert_eq!(s.post(&["1"]).await.await.unwrap(), Ok(()));
    assert_eq!(answer(held).await, ok("6"));
    assert_eq!(s.ended().await.0, CloseReason::ClientClose);
}

// ---------------------------------------------------------------------------------------------
// Backpressure (docs/protocol.md §14 decision 21), long-polling
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_handler_that_is_not_ready_holds_the_rest_of_the_post() {
    let setup = Setup {
        not_ready_after: Some(1),
        ..Setup::default()
    };
    let s = start(setup, None);
    let mut reply = s.post(&["4a", "4b", "4c"]).await;
    // Virtual time runs on and nothing more happens: one message, no reply.
    assert!(
        timeout(Duration::from_secs(5), &mut reply).await.is_err(),
        "the POST was answered while its packets were held"
    );
    assert_eq!(s.messages(), ["a"]);
    s.event(Ev::Ready(true)).await;
    assert_eq!(reply.await.unwrap(), Ok(()));
    assert_eq!(s.messages(), ["a", "b", "c"]);
    assert!(s.closes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_post_that_arrives_while_not_ready_waits_whole() {
    let s = start(Setup::default(), None);
    s.event(Ev::Ready(false)).await;
    let mut reply = s.post(&["4a", "4b"]).await;
    assert!(timeout(Duration::from_secs(5), &mut reply).await.is_err());
    assert!(s.messages().is_empty());
    s.event(Ev::Ready(true)).await;
    assert_eq!(reply.await.unwrap(), Ok(()));
    assert_eq!(s.messages(), ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn the_post_that_paused_the_handler_is_answered_when_it_is_ready() {
    // The last packet turns the handler not ready: the reply still waits for it.
    let setup = Setup {
        not_ready_after: Some(2),
        ..Setup::default()
    };
    let s = start(setup, None);
    let mut reply = s.post(&["4a", "4b"]).await;
    assert!(timeout(Duration::from_secs(5), &mut reply).await.is_err());
    assert_eq!(s.messages(), ["a", "b"]);
    s.event(Ev::Ready(true)).await;
    assert_eq!(reply.await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_second_post_while_one_is_held_closes_the_session() {
    let setup = Setup {
        not_ready_after: Some(1),
        ..Setup::default()
    };
    let s = start(setup, None);
    let first = s.post(&["4a", "4b"]).await;
    let second = s.post(&["4c"]).await;
    assert_eq!(second.await.unwrap(), Err(EngineError::BadRequest));
    // The held POST is answered "ok" when the session ends; its rest is not delivered.
    assert_eq!(first.await.unwrap(), Ok(()));
    let (reason, s) = s.ended().await;
    assert!(
        matches!(reason, CloseReason::TransportError(_)),
        "{reason:?}"
    );
    assert_eq!(s.messages(), ["a"]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_and_close_still_work_while_not_ready() {
    for by_shutdown in [true, false] {
        let setup = Setup {
            not_ready_after: Some(1),
            ..Setup::default()
        };
        let s = start(setup, None);
        let mut held_post = s.post(&["4a", "4b"]).await;
        let held_get = s.get().await;
        // Both are with the actor (virtual time passes, nothing is answered).
        assert!(
            timeout(Duration::from_secs(1), &mut held_post)
                .await
                .is_err()
        );
        assert_eq!(s.messages(), ["a"]);
        if by_shutdown {
            s.shutdown.cancel();
        } else {
            s.event(Ev::Close).await;
        }
        assert_eq!(held_post.await.unwrap(), Ok(()));
        assert_eq!(answer(held_get).await, ok("1"));
        let (reason, s) = s.ended().await;
        let expected = if by_shutdown {
            CloseReason::Shutdown
        } else {
            CloseReason::Server("closed by the test".into())
        };
        assert_eq!(reason, expected);
        assert_eq!(s.messages(), ["a"]);
    }
}

#[tokio::test(start_paused = true)]
async fn no_ping_timeout_while_the_handler_is_not_ready() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    s.event(Ev::Ready(false)).await;
    assert_eq!(answer(s.get().await).await, ok("2"));
    assert_eq!(t0.elapsed(), PING_INTERVAL);
    // No pong, but the service is behind: another ping instead of a close, again and again.
    for n in 1..=3 {
        assert_eq!(answer(s.get().await).await, ok("2"));
        assert_eq!(t0.elapsed(), PING_INTERVAL + n * PING_TIMEOUT);
    }
    assert!(s.closes().is_empty());
    s.event(Ev::Ready(true)).await;
    // The last ping went out while not ready: it gets one more round; then a missing pong
    // closes the session as usual.
    assert_eq!(answer(s.get().await).await, ok("2"));
    assert_eq!(answer(s.get().await).await, ok("1"));
    assert_eq!(t0.elapsed(), PING_INTERVAL + 5 * PING_TIMEOUT);
    assert_eq!(s.ended().await.0, CloseReason::PingTimeout);
}

#[tokio::test(start_paused = true)]
async fn a_pong_held_in_a_post_counts_once_delivered() {
    let s = start(Setup::default(), None);
    let t0 = Instant::now();
    s.event(Ev::Ready(false)).await;
    assert_eq!(answer(s.get().await).await, ok("2"));
    let pong = s.post(&["3"]).await;
    // Past interval + timeout: pinged again, not closed.
    assert_eq!(answer(s.get().await).await, ok("2"));
    s.event(Ev::Ready(true)).await;
    assert_eq!(pong.await.unwrap(), Ok(()));
    // The pong reset the heartbeat: the next ping is one interval after it was delivered.
    assert_eq!(answer(s.get().await).await, ok("2"));
    assert_eq!(t0.elapsed(), 2 * PING_INTERVAL + PING_TIMEOUT);
    assert!(s.closes().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Backpressure, WebSocket (a real WebSocket over an in-memory pipe)
// ---------------------------------------------------------------------------------------------

type Client = WebSocketStream<DuplexStream>;

/// A server-side session WebSocket (through hyper's upgrade, as in production) and its client.
async fn websocket_pair() -> (Box<WsStream>, Client) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let service = service_fn(move |mut req: Request<Incoming>| {
        let response = websocket::accept_response(&req).unwrap();
        let on_upgrade = hyper::upgrade::on(&mut req);
        let tx = tx.lock().unwrap().take();
        tokio::spawn(async move {
            let ws = websocket::finish_upgrade(on_upgrade, &config()).await;
            if let Some(tx) = tx {
                let _ = tx.send(ws);
            }
        });
        async move { Ok::<_, Infallible>(response) }
    });
    tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_io), service)
            .with_upgrades(),
    );
    let (client, _) = tokio_tungstenite::client_async("ws://emu/", client_io)
        .await
        .unwrap();
    (rx.await.unwrap().unwrap(), client)
}

/// The next text frame the client receives within `wait`, answering pings when `pong`.
async fn recv(client: &mut Client, wait: Duration, pong: bool) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, client.next())
            .await
            .ok()??;
        match frame.unwrap() {
            Message::Text(t) if t.as_str() == "2" && pong => {
                client.send(Message::text("3")).await.unwrap();
            }
            Message::Text(t) => return Some(t.to_string()),
            _ => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_websocket_is_not_read_while_the_handler_is_not_ready() {
    let (ws, mut client) = websocket_pair().await;
    let setup = Setup {
        not_ready_after: Some(1),
        echo: true,
    };
    let s = start(setup, Some(ws));
    for text in ["4a", "4b", "4c"] {
        client.send(Message::text(text)).await.unwrap();
    }
    let second = Duration::from_secs(1);
    assert_eq!(
        recv(&mut client, second, false).await.as_deref(),
        Some("4a")
    );
    // The other frames stay unread.
    assert_eq!(recv(&mut client, second, false).await, None);
    assert_eq!(s.messages(), ["a"]);
    s.event(Ev::Ready(true)).await;
    assert_eq!(
        recv(&mut client, second, false).await.as_deref(),
        Some("4b")
    );
    assert_eq!(
        recv(&mut client, second, false).await.as_deref(),
        Some("4c")
    );
    assert_eq!(s.messages(), ["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn a_paused_websocket_keeps_pinging_and_survives() {
    let (ws, mut client) = websocket_pair().await;
    let setup = Setup {
        echo: true,
        ..Setup::default()
    };
    let s = start(setup, Some(ws));
    s.event(Ev::Ready(false)).await;
    client.send(Message::text("4held")).await.unwrap();
    // Ten minutes of virtual time: the client answers every ping, the pongs wait unread
    // behind the held message, and the session stays open.
    let ten_minutes = Duration::from_secs(600);
    assert_eq!(recv(&mut client, ten_minutes, true).await, None);
    assert!(s.closes().is_empty());
    assert!(s.messages().is_empty());
    s.event(Ev::Ready(true)).await;
    assert_eq!(
        recv(&mut client, Duration::from_secs(1), true)
            .await
            .as_deref(),
        Some("4held")
    );
    // Reading resumed: the pongs count again and the session lives on.
    assert_eq!(recv(&mut client, ten_minutes, true).await, None);
    assert!(s.closes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_websocket_busy_with_frames_past_its_pong_deadline_is_pinged_not_closed() {
    let (ws, mut client) = websocket_pair().await;
    let s = start(Setup::default(), Some(ws));
    // The client's frames wait in the socket while the clock passes the ping and its pong
    // deadline, as when a busy session reads a flood: the first thing the session sees is the
    // client's data, so its pong may be queued behind frames not read yet.
    for i in 0..20 {
        client.send(Message::text(format!("4m{i}"))).await.unwrap();
    }
    tokio::time::advance(PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(1)).await;
    // The overdue ping goes out, the client answers it, and the session lives on.
    assert_eq!(recv(&mut client, PING_INTERVAL * 4, true).await, None);
    assert!(s.closes().is_empty(), "closed: {:?}", s.closes());
    assert_eq!(s.messages().len(), 20);
    // Positive control: a client that stops answering is closed by the same session.
    let silent = tokio::time::timeout(PING_INTERVAL * 4, async {
        while let Some(Ok(frame)) = client.next().await {
            assert!(!matches!(frame, Message::Text(ref t) if t.as_str() != "2"));
        }
    });
    assert!(silent.await.is_ok(), "the session closed the socket");
    assert_eq!(s.closes(), [CloseReason::PingTimeout]);
}

/// What every idle session holds for its whole life is its task's future: the actor's state
/// plus the largest state any of its waits keeps. The writes to a WebSocket that must wait for
/// the client, and the closing steps, are boxed, so the future stays near the actor itself.
#[tokio::test]
async fn an_idle_session_future_stays_small() {
    let (tx, rx) = inbox::channel(16);
    let actor = Actor::new(
        "sid".into(),
        config(),
        Probe {
            calls: Arc::default(),
            ready: true,
            pause_after: None,
            echo: false,
            messages: 0,
        },
        rx,
        tx,
        Arc::new(SharedFlags::default()),
        Arc::new(Mutex::new(HashMap::new())),
        CancellationToken::new(),
        None,
        None,
    );
    let actor_bytes = std::mem::size_of_val(&actor);
    let future_bytes = std::mem::size_of_val(&actor.run());
    println!("actor {actor_bytes} B, its future {future_bytes} B");
    assert!(
        future_bytes <= actor_bytes + IDLE_FUTURE_EXTRA,
        "the session's future is {future_bytes} B for an actor of {actor_bytes} B"
    );
}

/// What the run loop's own waits may add to the actor's size (the select over shutdown, the
/// queue, the socket and the timer): 240 B in a test build. The future keeps the actor once:
/// 488 B more when the run loop was an `async fn` that kept its argument and the body's copy
/// of it side by side, 752 B when a slow write's timeout and shutdown watch sat in the future.
const IDLE_FUTURE_EXTRA: usize = 256;
