//! The Socket.IO connection state machine under tokio's paused clock: a [`SioConnection`] runs
//! inside a real Engine.IO session actor driven through its long-polling inputs. The hub's
//! handler wants no system events (so `connect` is accepted without a call) and fault rules stand
//! in for a slow handler, so the connect timeout and the lane's backpressure (docs/protocol.md §14 decision 21) are
//! checked on virtual time, exactly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use super::connection::{SioConnection, SioEvent};
use crate::config::fault::{Action, FaultRule};
use crate::config::{EngineConfig, EventPattern, HandlerConfig, HubConfig, ServeConfig};
use crate::engineio::packet::Packet;
use crate::engineio::session::{Actor, Input, PollReply, inbox};
use crate::engineio::{EngineError, Registry, SharedFlags};
use crate::hooks::{FaultInjector, Hooks};
use crate::service::Service;
use crate::traffic::Traffic;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// Far beyond every test, so heartbeats stay out of the way.
const PING_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const MAX_PAYLOAD: usize = 1_000;

/// A service whose undeclared hubs send user events (only) to a closed local port, with `faults`.
fn service(faults: &[&str]) -> Arc<Service> {
    let config = ServeConfig {
        default_hub: HubConfig {
            name: "*".into(),
            anonymous: true,
            handlers: vec![HandlerConfig {
                url: "http://127.0.0.1:9/{event}".into(),
                user_events: EventPattern::All,
                system_events: Vec::new(),
            }],
        },
        preflight: false,
        engine: engine(),
        ..ServeConfig::default()
    };
    let rules = Rules(faults.iter().map(|f| f.parse().unwrap()).collect());
    let hooks = Hooks {
        faults: Arc::new(rules),
        ..Hooks::default()
    };
    Arc::new(
        Service::new(
            Arc::new(config),
            "http://localhost:8080".into(),
            Traffic::silent(),
            CancellationToken::new(),
        )
        .with_hooks(hooks),
    )
}

/// Fault rules applied as written (exact event names, every time): the fault hook these tests
/// plug in, standing in for a slow handler.
struct Rules(Vec<FaultRule>);

impl FaultInjector for Rules {
    fn pick(&self, _: &str, event: &str, applies: &dyn Fn(&Action) -> bool) -> Option<FaultRule> {
        let hit = |r: &&FaultRule| r.event == event && applies(&r.action);
        self.0.iter().find(hit).cloned()
    }
    fn mark(&self, _: &FaultRule, _: &str, _: &str, _: String) {}
    fn list(&self) -> Vec<FaultRule> {
        self.0.clone()
    }
    fn add(&self, _: FaultRule) -> Result<(), crate::hooks::AddFaultError> {
        Err(crate::hooks::AddFaultError::Unavailable)
    }
    fn clear(&self) -> usize {
        0
    }
    fn remove(&self, _: &str) -> bool {
        false
    }
}

fn engine() -> EngineConfig {
    EngineConfig {
        ping_interval: PING_INTERVAL,
        connect_timeout: CONNECT_TIMEOUT,
        max_payload: MAX_PAYLOAD,
        ..EngineConfig::default()
    }
}

type Tx = inbox::Sender<Input<SioEvent>>;

/// Starts a connection's session on long-polling; returns its input channel.
fn start(service: &Arc<Service>) -> Tx {
    let hub = service.hub_or_create("chat").unwrap();
    let sid: Arc<str> = "conn-1".into();
    let handler = SioConnection::new(
        service.clone(),
        hub,
        sid.clone(),
        None,
        Vec::new(),
        Bytes::from_static(b"{}"),
        crate::engineio::Transport::Polling,
    );
    let (tx, rx) = inbox::channel(16);
    let registry: Registry<SioEvent> = Arc::new(Mutex::new(HashMap::new()));
    let actor = Actor::new(
        sid,
        Arc::new(engine()),
        handler,
        rx,
        tx.clone(),
        Arc::new(SharedFlags::default()),
        registry,
        CancellationToken::new(),
        None,
        None,
    );
    tokio::spawn(actor.run());
    tx
}

async fn get(tx: &Tx) -> oneshot::Receiver<PollReply> {
    let (reply, answer) = oneshot::channel();
    assert!(tx.send(Input::PollGet(reply)).await.is_ok());
    answer
}

async fn post(tx: &Tx, packets: &[String]) -> oneshot::Receiver<Result<(), EngineError>> {
    let packets = packets
        .iter()
        .map(|p| Packet::decode_text(p).unwrap())
        .collect();
    let (reply, answer) = oneshot::channel();
    assert!(tx.send(Input::poll_post(packets, reply)).await.is_ok());
    answer
}

/// Joins `/` and returns the `40…` the client got.
async fn join(tx: &Tx) -> String {
    post(tx, &["40".into()]).await.await.unwrap().unwrap();
    get(tx).await.await.unwrap().unwrap()
}

#[tokio::test(start_paused = true)]
async fn no_connect_within_the_connect_timeout_closes_the_connection() {
    let tx = start(&service(&[]));
    let t0 = Instant::now();
    let held = get(&tx).await;
    assert_eq!(held.await.unwrap(), Ok("1".into()), "the close packet");
    assert_eq!(t0.elapsed(), CONNECT_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_connect_in_time_keeps_the_connection() {
    let tx = start(&service(&[]));
    let joined = join(&tx).await;
    assert!(joined.starts_with("40{\"sid\":\""), "{joined}");
    let held = get(&tx).await;
    let waited = timeout(CONNECT_TIMEOUT * 2, held).await;
    assert!(waited.is_err(), "the connection was closed: {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_full_lane_holds_the_post_until_it_drains() {
    // Each `slow` event spends ten minutes in the lane; the lane holds 4 × 1000 bytes.
    let tx = start(&service(&["event=slow,delay=10m"]));
    join(&tx).await;
    let event = format!(r#"42["slow","{}"]"#, "x".repeat(500));
    let t0 = Instant::now();
    let mut answer = post(&tx, &vec![event; 8]).await;
    // Held while the lane is full: the client's packets wait, nothing is dropped.
    let early = timeout(Duration::from_secs(500), &mut answer).await;
    assert!(
        early.is_err(),
        "the POST was answered while the lane was full"
    );
    // Once enough events have left the lane, the rest are taken and the POST is answered.
    assert_eq!(answer.await.unwrap(), Ok(()));
    assert!(
        t0.elapsed() >= Duration::from_secs(600),
        "{:?}",
        t0.elapsed()
    );
}

/// Waits (on virtual time, at most an hour) until `done` holds; false if it never did.
async fn until(done: impl Fn() -> bool) -> bool {
    timeout(Duration::from_secs(3600), async {
        while !done() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test(start_paused = true)]
async fn an_idle_socket_holds_no_lane_task() {
    // Each `slow` event spends ten minutes in the lane.
    let service = service(&["event=slow,delay=10m"]);
    let tracker = service.tracker().clone();
    let tx = start(&service);
    join(&tx).await;
    assert!(
        until(|| tracker.is_empty()).await,
        "the lane's task outlived `connect`"
    );
    for round in 0..2 {
        let sent = post(&tx, &[r#"42["slow"]"#.into()]).await;
        assert_eq!(sent.await.unwrap(), Ok(()));
        // The event found the lane parked and started it; it is in the lane for ten minutes.
        assert_eq!(tracker.len(), 1, "round {round}: the lane runs the event");
        assert!(
            until(|| tracker.is_empty()).await,
            "round {round}: the lane's task outlived its event"
        );
    }
}

/// What an idle connection holds for its whole life is its session's task: the session's state
/// with the connection's inside it, once, plus the run loop's waits. Lanes hold no task while
/// idle ([`an_idle_socket_holds_no_lane_task`]).
#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_one_small_future() {
    let service = service(&[]);
    let hub = service.hub_or_create("chat").unwrap();
    let handler = SioConnection::new(
        service.clone(),
        hub,
        "conn-1".into(),
        None,
        Vec::new(),
        Bytes::new(),
        crate::engineio::Transport::WebSocket,
    );
    let handler_bytes = std::mem::size_of_val(&handler);
    let (tx, rx) = inbox::channel(16);
    let actor = Actor::new(
        "sid".into(),
        Arc::new(engine()),
        handler,
        rx,
        tx,
        Arc::new(SharedFlags::default()),
        Arc::new(Mutex::new(HashMap::new())),
        CancellationToken::new(),
        None,
        None,
    );
    let future_bytes = std::mem::size_of_val(&actor.run());
    println!("connection state {handler_bytes} B, its session's future {future_bytes} B");
    assert!(
        handler_bytes <= IDLE_CONNECTION_STATE,
        "the connection's state is {handler_bytes} B"
    );
    assert!(
        future_bytes <= IDLE_SESSION_FUTURE,
        "the session's future is {future_bytes} B"
    );
}

/// The connection's Socket.IO state in a test build: 192 B; 296 B while a binary packet's
/// pending attachments were kept inline.
const IDLE_CONNECTION_STATE: usize = 200;
/// Its session's whole future in a test build: 608 B; 1,248 B when the run loop kept the
/// actor twice and the rare states (a held POST, pending attachments) inline.
const IDLE_SESSION_FUTURE: usize = 640;
