//! rust_socketio, a third Socket.IO client family (after socket.io-client and python-socketio in
//! the e2e suites), against the real `sio-emu serve` and a real recording webhook: a token
//! minted by `sio-emu token` in `query.access_token`, the hub in the path without a trailing
//! slash (as rust_socketio sends it), connect → connected with the right CloudEvents headers, an
//! emit whose ack the webhook answers, REST sends reaching an `on(event)` listener, a custom
//! namespace, a connect the webhook refuses (a connect error at the client), and one
//! `disconnected` per socket.
//!
//! Every scenario runs on each of rust_socketio's transport options: `Any` (polling handshake,
//! then the WebSocket upgrade), `Polling` and `Websocket`. The client's callbacks feed a
//! channel, and the tests wait on that channel and on the webhook, never on the clock.

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::util::*;

const HUB: &str = "chat";
const API: &str = "api-version=2024-01-01";

/// What a client's callbacks reported, in the order they ran.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// The server accepted the namespace (`40…`).
    Connect,
    /// An `on(event)` listener ran with these arguments.
    Event(String, Vec<Value>),
    /// An `emit_with_ack` callback ran with this payload.
    Ack(Vec<Value>),
    /// The `error` callback ran (a connect error among others).
    Error(String),
    /// The server disconnected the socket (`41…`).
    Close,
}

/// One of rust_socketio's transport options, with a name for messages.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// `TransportType::Any`: a polling handshake, then the upgrade to WebSocket.
    Upgrade,
    Polling,
    Websocket,
}

impl Transport {
    fn option(self) -> TransportType {
        match self {
            Transport::Upgrade => TransportType::Any,
            Transport::Polling => TransportType::Polling,
            Transport::Websocket => TransportType::Websocket,
        }
    }

    /// The `transport` the emulator logs for the handshake.
    fn handshake(self) -> &'static str {
        match self {
            Transport::Upgrade | Transport::Polling => "polling",
            Transport::Websocket => "websocket",
        }
    }
}

/// The payload's values (binary payloads are not expected here and show as a marker).
#[allow(deprecated)]
fn values(payload: Payload) -> Vec<Value> {
    match payload {
        Payload::Text(values) => values,
        Payload::String(text) => vec![Value::String(text)],
        Payload::Binary(bytes) => vec![json!(format!("<{} binary bytes>", bytes.len()))],
    }
}

/// A rust_socketio client on one namespace whose callbacks report to a channel.
struct Rsio {
    client: Client,
    seen: mpsc::UnboundedReceiver<Seen>,
    report: mpsc::UnboundedSender<Seen>,
}

/// How to reach the emulator: the hub in the path (no trailing slash), the token in the query.
fn address(emu: &Emu, token: Option<&str>) -> String {
    let base = format!("{}/clients/socketio/hubs/{HUB}", emu.base());
    match token {
        Some(token) => format!("{base}?access_token={token}"),
        None => base,
    }
}

impl Rsio {
    /// Connects to `namespace` with listeners for `events`; `Err` when the handshake fails.
    async fn connect(
        address: &str,
        namespace: &str,
        transport: Transport,
        events: &[&str],
    ) -> Result<Rsio, rust_socketio::Error> {
        let (report, seen) = mpsc::unbounded_channel();
        let mut builder = ClientBuilder::new(address)
            .namespace(namespace)
            .transport_type(transport.option())
            .reconnect(false);
        for (event, make) in [
            (
                Event::Connect,
                (|_| Seen::Connect) as fn(Vec<Value>) -> Seen,
            ),
            (Event::Close, |_| Seen::Close),
            (Event::Error, |v| Seen::Error(error_text(&v))),
        ] {
            let report = report.clone();
            builder = builder.on(event, move |payload, _| {
                let _ = report.send(make(values(payload)));
                async {}.boxed()
            });
        }
        for name in events {
            let (report, label) = (report.clone(), (*name).to_owned());
            builder = builder.on(*name, move |payload, _| {
                let _ = report.send(Seen::Event(label.clone(), values(payload)));
                async {}.boxed()
            });
        }
        let client = builder.connect().await?;
        Ok(Rsio {
            client,
            seen,
            report,
        })
    }

    /// Connects and waits until the namespace is accepted.
    async fn joined(address: &str, namespace: &str, transport: Transport, events: &[&str]) -> Rsio {
        let mut rsio = Rsio::connect(address, namespace, transport, events)
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: rust_socketio could not connect: {e}"));
        assert_eq!(rsio.next().await, Seen::Connect, "{transport:?}");
        rsio
    }

    /// The next thing a callback reported.
    async fn next(&mut self) -> Seen {
        match tokio::time::timeout(WAIT, self.seen.recv()).await {
            Ok(Some(seen)) => seen,
            Ok(None) => panic!("the client's callbacks are gone"),
            Err(_) => panic!("no callback ran within {WAIT:?}"),
        }
    }

    /// Emits `event` with `args`; the ack callback reports [`Seen::Ack`].
    async fn emit_with_ack(&self, event: &str, args: Vec<Value>) {
        let report = self.report.clone();
        self.client
            .emit_with_ack(event, Payload::Text(args), WAIT, move |payload, _| {
                let _ = report.send(Seen::Ack(values(payload)));
                async {}.boxed()
            })
            .await
            .expect("emit_with_ack");
    }

    async fn disconnect(&self) {
        self.client.disconnect().await.expect("disconnect");
    }
}

/// The error callback's text.
fn error_text(values: &[Value]) -> String {
    match values {
        [Value::String(text)] => text.clone(),
        other => json!(other).to_string(),
    }
}

/// A REST POST signed with a Bearer token minted by `sio-emu token --rest` for this URL.
async fn rest_post(emu: &Emu, path_and_query: &str, body: &str) -> HttpReply {
    let url = format!("{}{path_and_query}", emu.base());
    let bearer = format!("Bearer {}", mint(&["--rest", &url], None));
    http(
        "POST",
        &url,
        &[("authorization", &bearer), ("content-type", "text/plain")],
        body,
    )
    .await
}

/// The one event named `name` whose socket is `socket_id`.
fn only_for(hook: &Webhook, name: &str, socket_id: &str) -> Recorded {
    let got: Vec<Recorded> = hook
        .named(name)
        .into_iter()
        .filter(|r| r.header("ce-socketId") == socket_id)
        .collect();
    assert_eq!(
        got.len(),
        1,
        "`{name}` events for socket {socket_id}: {got:?}"
    );
    got[0].clone()
}

/// Runs `scenario` once per transport option, as three tests in a module named `$name`.
macro_rules! per_transport {
    ($name:ident, $scenario:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn upgrade() {
                $scenario(Transport::Upgrade).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn polling() {
                $scenario(Transport::Polling).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn websocket() {
                $scenario(Transport::Websocket).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Connect with a token: connect, then connected, with the right headers
// ---------------------------------------------------------------------------------------------

per_transport!(token_connect_then_connected, token_connect_then_connected);

async fn token_connect_then_connected(transport: Transport) {
    let (hook, emu) = pair(&[]).await; // the hub is not anonymous: a token is required
    // A token for another hub is refused at the handshake, before any webhook call.
    let wrong = emu.token("elsewhere", Some("alice"));
    let refused = Rsio::connect(&address(&emu, Some(&wrong)), "/", transport, &[]).await;
    assert!(
        refused.is_err(),
        "{transport:?}: a wrong token was accepted"
    );
    emu.wait_log("the refused handshake", |v| {
        v["type"] == "handshake" && v["refused"].as_str().is_some_and(|r| r.contains("aud"))
    })
    .await;

    let token = emu.token(HUB, Some("alice"));
    let _alice = Rsio::joined(&address(&emu, Some(&token)), "/", transport, &[]).await;
    let connected = hook.wait_for("connected", 1).await;
    // The refused handshake called nothing: the first request is this socket's connect.
    let events = hook.events();
    let names: Vec<&str> = events.iter().map(Recorded::event).collect();
    assert_eq!(names, ["connect", "connected"], "{transport:?}");
    let (connect, connected) = (&events[0], &connected[0]);
    check_connect_and_connected(connect, connected, transport);
    let connection_id = connect.header("ce-connectionId");

    // The transport is the one rust_socketio was told to use.
    let handshake = emu
        .wait_log("the accepted handshake", |v| {
            v["type"] == "handshake" && v["connectionId"] == connection_id
        })
        .await;
    assert_eq!(handshake["transport"], transport.handshake(), "{handshake}");
    assert_eq!(handshake["userId"], "alice");
    if let Transport::Upgrade = transport {
        emu.wait_log("the upgrade to WebSocket", |v| {
            v["type"] == "upgrade" && v["connectionId"] == connection_id
        })
        .await;
    }
}

/// The `connect` request of alice's socket on `/`, and its `connected`: CloudEvents headers that
/// agree, and a connect body with the token's claims and the handshake query minus the token.
fn check_connect_and_connected(connect: &Recorded, connected: &Recorded, transport: Transport) {
    for (header, want) in [
        ("ce-type", "azure.webpubsub.sys.connect"),
        ("ce-eventName", "connect"),
        ("ce-hub", HUB),
        ("ce-namespace", "/"),
        ("ce-userId", "alice"),
        ("ce-specversion", "1.0"),
        ("ce-awpsversion", "1.0"),
    ] {
        assert_eq!(connect.header(header), want, "{transport:?}: {header}");
    }
    let (connection_id, socket_id) = (
        connect.header("ce-connectionId"),
        connect.header("ce-socketId"),
    );
    assert_eq!(socket_id.len(), 20, "{transport:?}: {socket_id}");
    assert_eq!(
        connect.header("ce-source"),
        format!("/hubs/{HUB}/client/{connection_id}")
    );
    assert_eq!(connected.header("ce-type"), "azure.webpubsub.sys.connected");
    assert_eq!(connected.header("ce-connectionId"), connection_id);
    assert_eq!(connected.header("ce-socketId"), socket_id);
    assert_eq!(connected.header("ce-userId"), "alice");
    let body = connect.json();
    assert_eq!(body["claims"]["sub"], json!(["alice"]), "{body}");
    assert_eq!(body["query"]["EIO"], json!(["4"]), "{body}");
    assert!(body["query"].get("access_token").is_none(), "{body}");
    assert_eq!(body["subprotocols"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// Emit with an ack: the webhook answers the ack packet
// ---------------------------------------------------------------------------------------------

per_transport!(ack_from_the_webhook, ack_from_the_webhook);

async fn ack_from_the_webhook(transport: Transport) {
    let hook = Webhook::with(|r: &Recorded| {
        if r.event() == "say" {
            let ack = ack_for(&r.body, &json!(["got", {"n": 1}])).unwrap_or_default();
            return Reply::status(200, &ack);
        }
        echo_ack(r)
    })
    .await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--anonymous"]);
    let mut rsio = Rsio::joined(&address(&emu, None), "/", transport, &[]).await;
    rsio.emit_with_ack("say", vec![json!("hi"), json!({"x": [1, 2]})])
        .await;
    // rust_socketio 0.6 hands an ack's argument list to the callback as one array value.
    assert_eq!(
        rsio.next().await,
        Seen::Ack(vec![json!(["got", {"n": 1}])]),
        "{transport:?}"
    );
    let say = &hook.wait_for("say", 1).await[0];
    assert_eq!(say.header("ce-type"), "azure.webpubsub.user.message");
    assert!(say.header("content-type").starts_with("text/plain"));
    // The full Socket.IO packet with rust_socketio's ack id: `42<id>["say",…]`.
    let id: String = say.body[2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(!id.is_empty(), "no ack id in {}", say.body);
    assert_eq!(say.body, format!(r#"42{id}["say","hi",{{"x":[1,2]}}]"#));
    emu.wait_log("the forwarded ack", |v| {
        v["type"] == "ackForwarded" && v["packet"] == format!(r#"43{id}["got",{{"n":1}}]"#)
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// REST sends reach the client's listener
// ---------------------------------------------------------------------------------------------

per_transport!(
    rest_send_reaches_the_listener,
    rest_send_reaches_the_listener
);

async fn rest_send_reaches_the_listener(transport: Transport) {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let mut rsio = Rsio::joined(&address(&emu, None), "/", transport, &["news"]).await;
    let connected = &hook.wait_for("connected", 1).await[0];
    let connection_id = connected.header("ce-connectionId");

    let to_connection = rest_post(
        &emu,
        &format!("/api/hubs/{HUB}/connections/{connection_id}/:send?{API}"),
        r#"42["news","to the connection",{"n":1}]"#,
    )
    .await;
    assert_eq!(to_connection.status, 202, "{}", to_connection.body);
    assert_eq!(
        rsio.next().await,
        Seen::Event(
            "news".into(),
            vec![json!("to the connection"), json!({"n": 1})]
        ),
        "{transport:?}"
    );

    let namespace = sio_emu::service::group::namespace_group("/");
    let to_namespace = rest_post(
        &emu,
        &format!("/api/hubs/{HUB}/groups/{namespace}/:send?{API}"),
        r#"42["news","to the namespace"]"#,
    )
    .await;
    assert_eq!(to_namespace.status, 202, "{}", to_namespace.body);
    assert_eq!(
        rsio.next().await,
        Seen::Event("news".into(), vec![json!("to the namespace")]),
        "{transport:?}"
    );

    // A DISCONNECT sent by REST reaches the client as a server disconnect.
    let socket_id = connected.header("ce-socketId");
    let room = sio_emu::service::group::room_group("/", socket_id);
    let kick = rest_post(
        &emu,
        &format!("/api/hubs/{HUB}/groups/{room}/:send?{API}"),
        "41",
    )
    .await;
    assert_eq!(kick.status, 202, "{}", kick.body);
    assert_eq!(rsio.next().await, Seen::Close, "{transport:?}");
    let gone = hook.wait_for("disconnected", 1).await;
    assert_eq!(gone[0].header("ce-socketId"), socket_id);
    assert_eq!(gone[0].json()["reason"], "disconnected by REST API");
}

// ---------------------------------------------------------------------------------------------
// A custom namespace, and a connect the webhook refuses
// ---------------------------------------------------------------------------------------------

per_transport!(
    namespaces_accepted_and_refused,
    namespaces_accepted_and_refused
);

async fn namespaces_accepted_and_refused(transport: Transport) {
    let hook = Webhook::with(|r: &Recorded| {
        if r.event() == "connect" && r.header("ce-namespace") == "/private" {
            return Reply::status(401, "Not allowed here");
        }
        echo_ack(r)
    })
    .await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--anonymous"]);
    let address = address(&emu, None);

    let mut chat = Rsio::joined(&address, "/chat", transport, &[]).await;
    let connected = &hook.wait_for("connected", 1).await[0];
    assert_eq!(connected.header("ce-namespace"), "/chat");
    chat.emit_with_ack("hello", vec![json!(1)]).await;
    assert_eq!(chat.next().await, Seen::Ack(vec![json!(["ok"])]));
    let hello = &hook.wait_for("hello", 1).await[0];
    assert_eq!(hello.header("ce-namespace"), "/chat");
    assert!(hello.body.starts_with("42/chat,"), "{}", hello.body);

    // The webhook's 401 and its text body reach the client as a connect error.
    let mut private = Rsio::connect(&address, "/private", transport, &[])
        .await
        .expect("the Engine.IO handshake itself is accepted");
    let Seen::Error(error) = private.next().await else {
        panic!("{transport:?}: no connect error");
    };
    assert!(
        error.contains("ConnectError") && error.contains(r#"{"message":"Not allowed here"}"#),
        "{transport:?}: {error}"
    );
    let refused = hook.wait_for("connect", 2).await;
    assert_eq!(refused[1].header("ce-namespace"), "/private");
    // Leaving after the refusal: rust_socketio may find its connection already closed by then.
    let _ = private.client.disconnect().await;

    // The accepted socket's `disconnected`, sent after the refused one's departure, is the
    // control: the refused socket never gets `connected` or `disconnected`.
    chat.disconnect().await;
    let gone = hook.wait_for("disconnected", 1).await;
    assert_eq!(
        gone[0].header("ce-socketId"),
        connected.header("ce-socketId")
    );
    assert_eq!(gone[0].json()["reason"], "");
    assert_eq!(hook.named("connected").len(), 1, "{transport:?}");
    assert_eq!(hook.named("disconnected").len(), 1, "{transport:?}");
}

// ---------------------------------------------------------------------------------------------
// Disconnect: one `disconnected` per socket
// ---------------------------------------------------------------------------------------------

per_transport!(
    disconnect_sends_disconnected_once,
    disconnect_sends_disconnected_once
);

async fn disconnect_sends_disconnected_once(transport: Transport) {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let address = address(&emu, None);
    let first = Rsio::joined(&address, "/", transport, &[]).await;
    let first_id = hook.wait_for("connected", 1).await[0]
        .header("ce-socketId")
        .to_owned();
    first.disconnect().await;
    hook.wait_for("disconnected", 1).await;
    let gone = only_for(&hook, "disconnected", &first_id);
    assert_eq!(gone.json(), json!({"reason": ""}), "{transport:?}");
    assert_eq!(
        gone.header("content-type"),
        "application/json; charset=utf-8"
    );
    emu.wait_log("the socket's departure", |v| {
        v["type"] == "socketDisconnected" && v["socketId"] == first_id.as_str()
    })
    .await;

    // Control: a later socket's `disconnected` arrives, so a duplicate of the first one (sent
    // earlier) would have arrived too; each socket has exactly one.
    let second = Rsio::joined(&address, "/", transport, &[]).await;
    let second_id = hook.wait_for("connected", 2).await[1]
        .header("ce-socketId")
        .to_owned();
    second.disconnect().await;
    let reasons =
        assert_one_disconnected_each(|| hook.events(), &[first_id, second_id], WAIT).await;
    assert_eq!(reasons, ["", ""]);
    assert_eq!(hook.named("disconnected").len(), 2, "{transport:?}");
}
