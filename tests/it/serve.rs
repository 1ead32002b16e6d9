//! `serve` end to end: real Engine.IO / Socket.IO sessions over loopback against the real
//! binary, with a real recording webhook.

use std::time::Instant;

use serde_json::Value;

use crate::util::*;

fn sid_of(packet: &str) -> String {
    let json = &packet[packet.find('{').unwrap()..];
    serde_json::from_str::<Value>(json).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The positive control for "no other event arrived": a fresh socket on `hub` joins `/` and
/// leaves, and this waits until its `connected` and `disconnected` reached the webhook. Any event
/// the sockets under test caused was sent before this socket even connected, through the same
/// webhook path, so it would have arrived by then. Returns the control socket's id.
async fn control_socket(emu: &Emu, hook: &Webhook, hub: &str) -> String {
    let mut ws = WsClient::connect(emu, hub, "").await.unwrap();
    let id = sid_of(&ws.join("/").await);
    wait_for_socket(hook, "connected", &id).await;
    ws.close().await;
    wait_for_socket(hook, "disconnected", &id).await;
    id
}

/// Waits until the webhook got `name` for socket `id`.
async fn wait_for_socket(hook: &Webhook, name: &str, id: &str) {
    let found = || {
        let named = hook.named(name);
        named
            .iter()
            .any(|r| r.header("ce-socketId") == id)
            .then_some(())
    };
    eventually(&format!("`{name}` for socket {id}"), WAIT, found).await;
}

/// Events named `name` for sockets other than `except`.
fn named_except(hook: &Webhook, name: &str, except: &str) -> Vec<Recorded> {
    hook.named(name)
        .into_iter()
        .filter(|r| r.header("ce-socketId") != except)
        .collect()
}

#[tokio::test]
async fn polling_handshake_has_exactly_the_open_keys() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let (reply, open) = poll_handshake(&emu, "chat", "t=1").await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers["content-type"].starts_with("text/plain"));
    let mut keys: Vec<&str> = open
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25000);
    assert_eq!(open["pingTimeout"], 20000);
    assert_eq!(open["maxPayload"], 1000000);
    assert_eq!(open["sid"].as_str().unwrap().len(), 20);
}

#[tokio::test]
async fn websocket_handshake_advertises_no_upgrades_and_path_forms() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let ws = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert_eq!(ws.open["upgrades"], serde_json::json!([]));
    // Without the trailing slash and with parameters in another order.
    let url = format!(
        "{}/clients/socketio/hubs/chat?transport=polling&t=x&EIO=4",
        emu.base()
    );
    let reply = http("GET", &url, &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.starts_with("0{"));
}

#[tokio::test]
async fn engineio_error_codes() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let base = format!("{}/clients/socketio/hubs/chat/", emu.base());
    let cases = [
        ("GET", format!("{base}?EIO=3&transport=polling"), 400, 5),
        ("GET", format!("{base}?transport=polling"), 400, 5),
        (
            "GET",
            format!("{base}?EIO=4&transport=carrier-pigeon"),
            400,
            0,
        ),
        ("GET", format!("{base}?EIO=4"), 400, 0),
        (
            "GET",
            format!("{base}?EIO=4&transport=polling&sid=nope"),
            400,
            1,
        ),
        ("POST", format!("{base}?EIO=4&transport=polling"), 400, 2),
        ("GET", format!("{base}?EIO=4&transport=websocket"), 400, 3),
    ];
    for (method, url, status, code) in cases {
        let reply = http(method, &url, &[], "").await;
        assert_eq!(reply.status, status, "{method} {url}: {}", reply.body);
        assert_eq!(reply.json()["code"], code, "{method} {url}: {}", reply.body);
        assert!(reply.json()["message"].is_string());
    }
    let wrong = http(
        "GET",
        &format!(
            "{}/clients/socketio/hubs/9x/?EIO=4&transport=polling",
            emu.base()
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(wrong.status, 404);
    let elsewhere = http(
        "GET",
        &format!("{}/socket.io/?EIO=4&transport=polling", emu.base()),
        &[],
        "",
    )
    .await;
    assert_eq!(elsewhere.status, 404);
    assert!(elsewhere.body.contains("/clients/socketio/hubs/"));
}

#[tokio::test]
async fn invalid_polling_packet_closes_the_session() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let (_, open) = poll_handshake(&emu, "chat", "").await;
    let sid = open["sid"].as_str().unwrap();
    let bad = poll_post(&emu, "chat", sid, "abc").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["code"], 3);
    emu.wait_log("the session's end", |v| {
        v["type"] == "connectionClosed" && v["connectionId"] == sid
    })
    .await;
    let after = poll_get(&emu, "chat", sid).await;
    assert!(
        after.status == 400 || after.body.ends_with('1'),
        "{after:?}"
    );
}

#[tokio::test]
async fn oversized_payloads_are_refused() {
    let (_hook, emu) = pair(&["--anonymous", "--max-payload", "100"]).await;
    let (_, open) = poll_handshake(&emu, "chat", "").await;
    assert_eq!(open["maxPayload"], 100);
    let sid = open["sid"].as_str().unwrap();
    let big = format!("4{}", "x".repeat(200));
    let reply = poll_post(&emu, "chat", sid, &big).await;
    assert_eq!(reply.status, 413);
    // Over WebSocket the frame limit closes the connection.
    let mut ws = WsClient::connect(&emu, "chat", "").await.unwrap();
    ws.send(&big).await;
    ws.expect_closed().await;
}

#[tokio::test]
async fn duplicate_poll_closes_the_session() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let (_, open) = poll_handshake(&emu, "chat", "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    // Two GETs at once. Nothing is queued, so whichever the session sees first is held; the
    // other is refused, and the held one is answered with the close packet.
    let (a, b) = tokio::join!(poll_get(&emu, "chat", &sid), poll_get(&emu, "chat", &sid));
    let mut answers = [(a.status, a.body), (b.status, b.body)];
    answers.sort();
    assert_eq!(answers[0], (200, "1".to_owned()), "{answers:?}");
    assert_eq!(answers[1].0, 400, "{answers:?}");
    let after = poll_get(&emu, "chat", &sid).await;
    assert_eq!(after.status, 400);
}

#[tokio::test]
async fn connected_waits_until_the_client_has_its_sid() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let (_, open) = poll_handshake(&emu, "chat", "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    poll_post(&emu, "chat", &sid, "40").await;
    hook.wait_for("connect", 1).await;
    // Control: a socket that connects later and reads its `40` at once gets `connected`.
    let mut later = WsClient::connect(&emu, "chat", "").await.unwrap();
    later.join("/").await;
    let connected = hook.wait_for("connected", 1).await;
    assert_eq!(connected.len(), 1, "sent before the client had its 40");
    assert_eq!(connected[0].header("ce-connectionId"), later.sid);
    assert!(poll_get(&emu, "chat", &sid).await.body.starts_with("40{"));
    let both = hook.wait_for("connected", 2).await;
    assert_eq!(both[1].header("ce-connectionId"), sid);
}

#[tokio::test]
async fn polling_connect_event_ack_and_leave() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let (_, open) = poll_handshake(&emu, "chat", "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(poll_post(&emu, "chat", &sid, "40/chat,").await.body, "ok");
    let got = poll_get(&emu, "chat", &sid).await;
    assert!(got.body.starts_with("40/chat,{\"sid\":\""), "{}", got.body);
    let socket_id = sid_of(&got.body);
    hook.wait_for("connected", 1).await;
    assert_eq!(
        poll_post(&emu, "chat", &sid, "42/chat,7[\"hello\",1]")
            .await
            .body,
        "ok"
    );
    let ack = poll_get(&emu, "chat", &sid).await;
    assert_eq!(ack.body, "43/chat,7[\"ok\"]");
    let event = &hook.wait_for("hello", 1).await[0];
    assert_eq!(event.body, "42/chat,7[\"hello\",1]");
    assert_eq!(event.header("ce-socketId"), socket_id);
    poll_post(&emu, "chat", &sid, "41/chat,").await;
    let gone = &hook.wait_for("disconnected", 1).await[0];
    assert_eq!(gone.json(), serde_json::json!({"reason": ""}));
    assert_eq!(gone.header("ce-socketId"), socket_id);
}

#[tokio::test]
async fn upgrade_from_polling_to_websocket() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let (_, open) = poll_handshake(&emu, "chat", "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    // A GET that overlaps the upgrade is answered with a noop: released by the probe when it
    // was already held, at once when it arrives after the probe (docs/protocol.md §0 E1). The WebSocket handshake
    // below makes the held case the usual one; both are correct, so no wait orders them.
    let pending = {
        let base = emu.base();
        let sid = sid.clone();
        tokio::spawn(async move {
            http(
                "GET",
                &client_url(&base, "chat", &format!("transport=polling&sid={sid}")),
                &[],
                "",
            )
            .await
        })
    };
    let mut ws = WsClient::upgrade(&emu, "chat", &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv().await, "3probe");
    assert_eq!(pending.await.unwrap().body, "6");
    ws.send("5").await;
    emu.wait_log("the completed upgrade", |v| {
        v["type"] == "upgrade" && v["connectionId"] == sid.as_str()
    })
    .await;
    // The old transport is refused from now on.
    let refused = poll_get(&emu, "chat", &sid).await;
    assert_eq!(refused.status, 400);
    assert_eq!(ws.join("/").await.get(..2), Some("40"));
    ws.send("421[\"ping\"]").await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");
    hook.wait_for("ping", 1).await;
    // A second WebSocket for the session is accepted, then closed (as the reference server does).
    let mut extra = WsClient::upgrade(&emu, "chat", &sid).await;
    assert_eq!(extra.ended().await, WsEnd::CloseFrame(None));
}

#[tokio::test]
async fn webhook_requests_carry_every_header_body_and_signature() {
    let (hook, emu) = pair(&[]).await;
    let token = emu.token("chat", Some("alice"));
    let mut ws = WsClient::connect(&emu, "chat", &format!("access_token={token}&foo=bar"))
        .await
        .unwrap();
    let answer = ws.join("/chat").await;
    let socket_id = sid_of(&answer);
    let connect = &hook.wait_for("connect", 1).await[0];
    let conn = ws.sid.clone();
    let expected_sig = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(conn.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let expect = [
        ("content-type", "application/json; charset=utf-8"),
        ("ce-specversion", "1.0"),
        ("ce-type", "azure.webpubsub.sys.connect"),
        ("ce-source", &format!("/hubs/chat/client/{conn}")),
        ("ce-signature", &expected_sig),
        ("ce-connectionid", &conn),
        ("ce-hub", "chat"),
        ("ce-eventname", "connect"),
        ("ce-namespace", "/chat"),
        ("ce-socketid", &socket_id),
        ("ce-userid", "alice"),
        ("ce-awpsversion", "1.0"),
        ("webhook-request-origin", "localhost"),
    ];
    for (name, value) in expect {
        assert_eq!(connect.header(name), value, "header {name}");
    }
    assert!(!connect.header("ce-id").is_empty());
    assert!(connect.header("ce-time").ends_with('Z'));
    assert_eq!(connect.path, "/api/chat/connect");
    let body = connect.json();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "claims",
            "clientCertificates",
            "headers",
            "query",
            "subprotocols"
        ]
    );
    assert_eq!(body["claims"]["sub"], serde_json::json!(["alice"]));
    assert!(body["claims"]["exp"][0].is_string());
    assert_eq!(body["query"]["foo"], serde_json::json!(["bar"]));
    assert!(
        body["query"].get("access_token").is_none(),
        "token stripped"
    );
    assert_eq!(body["subprotocols"], serde_json::json!([]));
    // The preflight came first, without signature.
    let first = hook.requests.lock().unwrap()[0].clone();
    assert_eq!(first.method, "OPTIONS");
    assert_eq!(first.path, "/api/chat/validate");
    assert_eq!(first.header("webhook-request-origin"), "localhost");
    assert_eq!(first.header("ce-awpsversion"), "1.0");

    let connected = &hook.wait_for("connected", 1).await[0];
    assert_eq!(connected.header("ce-type"), "azure.webpubsub.sys.connected");
    assert_eq!(connected.body, "{}");

    ws.send("42/chat,5[\"say hi\",{\"x\":1}]").await;
    assert_eq!(ws.recv().await, "43/chat,5[\"ok\"]");
    let user = &hook.wait_for("say hi", 1).await[0];
    assert_eq!(user.header("ce-type"), "azure.webpubsub.user.message");
    assert_eq!(user.header("content-type"), "text/plain");
    assert_eq!(user.body, "42/chat,5[\"say hi\",{\"x\":1}]");
    assert_eq!(user.path, "/api/chat/say%20hi");
    assert_eq!(user.header("ce-signature"), expected_sig);
    ws.close().await;
    let gone = &hook.wait_for("disconnected", 1).await[0];
    assert_eq!(
        gone.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(gone.json()["reason"], "");
}

#[tokio::test]
async fn refused_connect_sends_connect_error_with_the_body() {
    let hook = Webhook::with(|r: &Recorded| {
        if r.event() == "connect" && r.header("ce-namespace") == "/random" {
            Reply::status(401, "Invalid namespace")
        } else if r.event() == "connect" && r.header("ce-namespace") == "/json" {
            Reply {
                content_type: "application/json",
                ..Reply::status(403, "{\"a\":1}")
            }
        } else {
            echo_ack(r)
        }
    })
    .await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--anonymous"]);
    let mut ws = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert_eq!(
        ws.join("/random").await,
        "44/random,{\"message\":\"Invalid namespace\"}"
    );
    assert_eq!(
        ws.join("/json").await,
        "44/json,{\"message\":\"Forbidden\"}"
    );
    // The connection stays open and other namespaces work.
    assert!(ws.join("/").await.starts_with("40{\"sid\""));
    hook.wait_for("connected", 1).await;
    ws.close().await;
    hook.wait_for("disconnected", 1).await;
    let control = control_socket(&emu, &hook, "chat").await;
    // Refused sockets never get connected/disconnected.
    assert_eq!(named_except(&hook, "connected", &control).len(), 1);
    assert_eq!(named_except(&hook, "disconnected", &control).len(), 1);
}

#[tokio::test]
async fn unreachable_webhook_refuses_connect_and_explains() {
    // Bind and drop a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let template = format!("http://127.0.0.1:{port}/{{event}}");
    let emu = Emu::start(&["--webhook", &template, "--anonymous", "--no-preflight"]);
    let mut ws = WsClient::connect(&emu, "chat", "").await.unwrap();
    let answer = ws.join("/").await;
    assert!(answer.starts_with("44{\"message\":"), "{answer}");
    let line = emu
        .wait_log("failed webhook", |v| {
            v["type"] == "webhook" && v["ok"] == false
        })
        .await;
    assert!(
        line["detail"].as_str().unwrap().contains("unreachable"),
        "{line}"
    );
}

#[tokio::test]
async fn ack_forwarding_and_204_sends_nothing() {
    let hook = Webhook::with(|r: &Recorded| match r.event() {
        "quiet" => Reply::status(204, ""),
        "empty" => Reply::ok(),
        "garbage" => Reply::status(200, "not a packet"),
        "custom" => Reply::status(200, "43/ns,9[{\"n\":42}]"),
        _ => echo_ack(r),
    })
    .await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--anonymous"]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/ns").await;
    ws.send("42/ns,1[\"quiet\"]").await;
    ws.send("42/ns,2[\"empty\"]").await;
    ws.send("42/ns,3[\"garbage\"]").await;
    ws.send("42/ns,9[\"custom\"]").await;
    assert_eq!(ws.recv().await, "43/ns,9[{\"n\":42}]");
    hook.wait_for("custom", 1).await;
    // Control: a socket's events reach the webhook one at a time, in order, so the next packet
    // is this later event's ack only if nothing was forwarded for the three before.
    ws.send("42/ns,10[\"last\"]").await;
    assert_eq!(ws.recv().await, "43/ns,10[\"ok\"]");
    emu.wait_log("contract warning", |v| {
        v["type"] == "warning" && v["message"].as_str().unwrap_or("").contains("garbage")
    })
    .await;
}

/// Waits until the recording at `path` has an incoming frame for each of `packets`.
async fn wait_recorded_in(path: &std::path::Path, packets: &[&str]) {
    let mut text = String::new();
    let recorded = poll_until(WAIT, || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        let frames: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "frame" && v["direction"] == "in")
            .collect();
        let all = |p: &&str| frames.iter().any(|f| f["packet"] == *p);
        packets.iter().all(all).then_some(())
    });
    assert!(
        recorded.await.is_some(),
        "the recording never showed {packets:?}:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_connect_answer_are_queued_in_order() {
    // The connect answer is held until the recording shows that both events arrived, so they
    // certainly arrive while `connect` is pending.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let hook = Webhook::with(move |r: &Recorded| {
        if r.event() == "connect" {
            // The responder is synchronous: park this worker thread, not the runtime.
            tokio::task::block_in_place(|| {
                let _ = held.lock().unwrap().recv_timeout(WAIT);
            });
            Reply::ok()
        } else {
            echo_ack(r)
        }
    })
    .await;
    let record = std::env::temp_dir().join(format!(
        "sio-emu-serve-queued-{}-{}.jsonl",
        std::process::id(),
        free_port()
    ));
    let record_arg = record.display().to_string();
    let emu = Emu::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--record",
        &record_arg,
    ]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.send("40").await;
    ws.send("421[\"a\"]").await;
    ws.send("422[\"b\"]").await;
    wait_recorded_in(&record, &["421[\"a\"]", "422[\"b\"]"]).await;
    let _ = std::fs::remove_file(&record);
    release.send(()).unwrap();
    assert!(ws.recv().await.starts_with("40{\"sid\""));
    assert_eq!(ws.recv().await, "431[\"ok\"]");
    assert_eq!(ws.recv().await, "432[\"ok\"]");
    let names: Vec<String> = hook
        .events()
        .iter()
        .filter(|r| r.header("ce-type") == "azure.webpubsub.user.message")
        .map(|r| r.event().to_owned())
        .collect();
    assert_eq!(names, ["a", "b"]);
    // The webhook records `connect` when its held answer is released, so an event forwarded
    // while `connect` was pending would come before it.
    // Decision 20: `connected` comes before the queued events.
    let order: Vec<String> = hook.events().iter().map(|r| r.event().to_owned()).collect();
    assert_eq!(order, ["connect", "connected", "a", "b"]);
}

#[tokio::test]
async fn protocol_violations_close_the_connection() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    // A packet for a namespace not joined.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.send("42/other,[\"x\"]").await;
    ws.expect_closed().await;
    // A second CONNECT for the same namespace.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/").await;
    ws.send("40").await;
    ws.expect_closed().await;
    hook.wait_for("disconnected", 1).await;
    // Garbage Socket.IO.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.send("4zzz").await;
    ws.expect_closed().await;
    // Reserved event name.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/").await;
    ws.send("42[\"disconnect\"]").await;
    ws.expect_closed().await;
    hook.wait_for("disconnected", 2).await;
    assert!(hook.named("disconnect").is_empty());
}

#[tokio::test]
async fn binary_events_are_parsed_but_not_forwarded() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/").await;
    ws.send("451-[\"up\",{\"_placeholder\":true,\"num\":0}]")
        .await;
    ws.send_binary(&[1, 2, 3]).await;
    ws.send("42[\"after\"]").await;
    hook.wait_for("after", 1).await;
    assert!(hook.named("up").is_empty());
    emu.wait_log("binary warning", |v| {
        v["type"] == "warning" && v["message"].as_str().unwrap_or("").contains("binary")
    })
    .await;
}

#[tokio::test]
async fn connect_timeout_closes_a_silent_connection() {
    let (_hook, emu) = pair(&["--anonymous", "--connect-timeout", "200ms"]).await;
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.expect_closed().await;
}

#[tokio::test]
async fn ping_timeout_sends_disconnected_once() {
    let (hook, emu) = pair(&[
        "--anonymous",
        "--ping-interval",
        "100ms",
        "--ping-timeout",
        "100ms",
    ])
    .await;
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    assert_eq!(ws.open["pingInterval"], 100);
    let socket = sid_of(&ws.join("/").await);
    // Stop answering pings, until the server gives up.
    let deadline = Instant::now() + WAIT;
    let mut saw_ping = false;
    while let Some(m) = ws.next_raw(WAIT).await {
        assert!(Instant::now() < deadline, "still open without pongs");
        if m.to_text().unwrap_or("") == "2" {
            saw_ping = true;
        }
    }
    assert!(saw_ping);
    let gone = hook.wait_for("disconnected", 1).await;
    assert_eq!(gone[0].json()["reason"], "ping timeout");
    assert_eq!(gone[0].header("ce-socketId"), socket);
    let control = control_socket(&emu, &hook, "h").await;
    assert_eq!(named_except(&hook, "disconnected", &control).len(), 1);
}

#[tokio::test]
async fn pongs_keep_the_session_alive() {
    let (hook, emu) = pair(&[
        "--anonymous",
        "--ping-interval",
        "50ms",
        "--ping-timeout",
        "100ms",
    ])
    .await;
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/").await;
    // Ten pings answered span five ping intervals past the 100 ms timeout.
    answer_pings(&mut ws, 10).await;
    ws.send("421[\"still here\"]").await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");
    assert!(hook.named("disconnected").is_empty());
}

/// Answers `n` pings, failing on anything else (or a closed connection) before that.
async fn answer_pings(ws: &mut WsClient, n: usize) {
    for _ in 0..n {
        match ws.next_raw(WAIT).await {
            Some(m) if m.to_text().unwrap_or("") == "2" => ws.send("3").await,
            other => panic!("expected a ping, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn several_namespaces_on_one_connection_each_get_one_disconnected() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    let a = sid_of(&ws.join("/").await);
    let b = sid_of(&ws.join("/admin").await);
    assert_ne!(a, b);
    hook.wait_for("connected", 2).await;
    ws.send("41/admin,").await;
    let first = hook.wait_for("disconnected", 1).await;
    assert_eq!(first[0].header("ce-namespace"), "/admin");
    ws.close().await;
    let both = hook.wait_for("disconnected", 2).await;
    assert_eq!(both[1].header("ce-namespace"), "/");
    let control = control_socket(&emu, &hook, "h").await;
    let gone = named_except(&hook, "disconnected", &control);
    assert_eq!(gone.len(), 2);
    assert_eq!(gone[0].header("ce-socketId"), b);
    assert_eq!(gone[1].header("ce-socketId"), a);
}

#[tokio::test]
async fn tokens_are_checked_and_refusals_explained() {
    let (hook, emu) = pair(&[]).await;
    // Missing.
    let refused = WsClient::connect(&emu, "chat", "").await.err().unwrap();
    assert_eq!(refused.status, 401);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["code"], "Unauthorized");
    assert!(
        body["message"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    // Wrong hub (aud).
    let other = emu.token("other", None);
    let (reply, _) = poll_handshake(&emu, "chat", &format!("access_token={other}")).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.json()["message"].as_str().unwrap().contains("aud"),
        "{}",
        reply.body
    );
    // Tampered signature.
    let good = emu.token("chat", Some("bob"));
    let tampered = format!("{}x", &good[..good.len() - 1]);
    let (reply, _) = poll_handshake(&emu, "chat", &format!("access_token={tampered}")).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{}",
        reply.body
    );
    // Garbage.
    let (reply, _) = poll_handshake(&emu, "chat", "access_token=abc").await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{}",
        reply.body
    );
    // A good token works, over either transport; localhost and 127.0.0.1 both fine.
    let (reply, _) = poll_handshake(&emu, "chat", &format!("access_token={good}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    emu.wait_log("refusal line", |v| {
        v["type"] == "handshake" && v["refused"].as_str().unwrap_or("").contains("signature")
    })
    .await;
    // None of the refusals reached the webhook.
    assert!(hook.events().is_empty());
}

#[tokio::test]
async fn anonymous_hubs_still_verify_given_tokens() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let (reply, _) = poll_handshake(&emu, "chat", "access_token=abc").await;
    assert_eq!(reply.status, 401);
    let (reply, _) = poll_handshake(&emu, "chat", "").await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn strict_hubs_refuse_undeclared_hubs() {
    let (_hook, emu) = pair(&["--anonymous", "--hub", "Chat", "--strict-hubs"]).await;
    let (ok, _) = poll_handshake(&emu, "chat", "").await;
    assert_eq!(ok.status, 200, "hub names are case-insensitive");
    let (refused, _) = poll_handshake(&emu, "other", "").await;
    assert_eq!(refused.status, 404);
    assert!(refused.body.contains("--hub"));
}

#[tokio::test]
async fn cors_for_browser_pages() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let url = client_url(&emu.base(), "chat", "transport=polling");
    let pre = http(
        "OPTIONS",
        &url,
        &[
            ("origin", "http://example.test"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        "",
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.headers["access-control-allow-origin"],
        "http://example.test"
    );
    assert_eq!(pre.headers["access-control-allow-credentials"], "true");
    assert!(pre.headers["access-control-allow-methods"].contains("POST"));
    let get = http("GET", &url, &[("origin", "http://example.test")], "").await;
    assert_eq!(
        get.headers["access-control-allow-origin"],
        "http://example.test"
    );
}

#[tokio::test]
async fn health_and_sigterm_sends_every_disconnected() {
    let (hook, mut emu) = pair(&["--anonymous"]).await;
    let health = http("GET", &format!("{}/api/health", emu.base()), &[], "").await;
    assert_eq!(health.status, 200);
    let head = http("HEAD", &format!("{}/api/health", emu.base()), &[], "").await;
    assert_eq!(head.status, 200);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
        ws.join("/").await;
        ws.join("/b").await;
        clients.push(ws);
    }
    // And one on long-polling.
    let (_, open) = poll_handshake(&emu, "h", "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    poll_post(&emu, "h", &sid, "40").await;
    // `connected` leaves only once the client has collected its `40…` (docs/protocol.md §14 decision 9).
    assert!(poll_get(&emu, "h", &sid).await.body.starts_with("40{"));
    hook.wait_for("connected", 7).await;
    assert_eq!(emu.terminate().await, 0);
    let gone = hook.named("disconnected");
    assert_eq!(gone.len(), 7);
    assert!(
        gone.iter()
            .all(|r| r.json()["reason"] == "server shutting down")
    );
    let mut ids: Vec<&str> = gone.iter().map(|r| r.header("ce-socketId")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7);
}

/// `--stop-on-stdin-close`: the parent holding stdin's other end goes away, and `serve` shuts
/// down the graceful way (every socket's `disconnected`, exit 0), as on SIGTERM.
#[tokio::test]
async fn stop_on_stdin_close_shuts_down_gracefully() {
    let hook = Webhook::start().await;
    let template = hook.template();
    let (mut emu, stdin) = Emu::start_with_stdin(&[
        "--webhook",
        &template,
        "--anonymous",
        "--stop-on-stdin-close",
    ]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/").await;
    hook.wait_for("connected", 1).await;
    drop(stdin);
    assert_eq!(emu.exit_code("stdin closed").await, 0);
    let gone = hook.named("disconnected");
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].json()["reason"], "server shutting down");
}

/// A SIGTERM sent as soon as the `ready` line is read is a graceful stop (exit 0, the shutdown
/// line), not death by the default action: the signal handlers are in place before the ready
/// line is printed. Several rounds, since the window it guards is short.
#[tokio::test]
async fn sigterm_right_after_the_ready_line_is_graceful() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for _ in 0..20 {
        // With the stdin watch too, as the npm and Python packages run it.
        let (mut emu, _stdin) =
            Emu::start_with_stdin(&["--webhook", "builtin:echo", "--stop-on-stdin-close"]);
        // Straight from this process: `kill(1)` would take long enough to hide the window.
        kill(Pid::from_raw(emu.pid() as i32), Signal::SIGTERM).unwrap();
        assert_eq!(emu.exit_code("SIGTERM").await, 0);
        emu.wait_log("the shutdown line", |v| v["type"] == "shuttingDown")
            .await;
    }
}
