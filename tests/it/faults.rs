//! Fault injection against the real binary: webhooks that refuse, stall, fail, answer garbage
//! or vanish; clients that vanish mid-call, send oversized or malformed packets, flood binary
//! attachments, connect by the thousand, never read; and SIGTERM under load.
//!
//! Every test checks the same invariants besides its documented outcome (docs/protocol.md §14 decisions 6,
//! 10, 13, 14): the process does not panic (still alive, `GET /api/health` answers 200, nothing
//! on stderr says "panicked"), nothing hangs (every wait is bounded), and each accepted socket
//! gets exactly one `disconnected` event at the webhook (retries of one event share its
//! `ce-id`). No assertion is about how long something took.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::util::*;

/// Bound for waits that involve many connections or retries.
const LONG: Duration = Duration::from_secs(60);

fn sid_of(packet: &str) -> String {
    let json = &packet[packet.find('{').expect("a JSON object")..];
    serde_json::from_str::<Value>(json).unwrap()["sid"]
        .as_str()
        .expect("a sid")
        .to_owned()
}

/// The `message` of a `44…{"message":…}` answer.
fn refusal_message(packet: &str) -> String {
    assert!(packet.starts_with("44"), "not a CONNECT_ERROR: {packet}");
    let json = &packet[packet.find('{').expect("a JSON object")..];
    serde_json::from_str::<Value>(json).unwrap()["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {packet}"))
        .to_owned()
}

/// Joins `nsp` and returns the socket id, failing unless the socket was accepted.
async fn join_ok(ws: &mut WsClient, nsp: &str) -> String {
    let answer = ws.join(nsp).await;
    assert!(answer.starts_with("40"), "join {nsp}: {answer}");
    sid_of(&answer)
}

fn delayed(reply: Reply, delay: Duration) -> Reply {
    Reply { delay, ..reply }
}

/// An HTTP/1.1 answer on raw TCP with a body, then close.
fn raw_reply(status: &str, body: &str) -> RawAnswer {
    RawAnswer::Bytes(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn webhook_lines(emu: &Watched, event: &str) -> Vec<Value> {
    emu.lines_of("webhook")
        .into_iter()
        .filter(|v| v["event"] == event)
        .collect()
}

/// The sentinel for "no duplicate `disconnected`": waits until each socket's `disconnected` has
/// its `webhook` outcome line. Its lane logs that after the event's last attempt and sends
/// nothing after it, so every attempt (a duplicate included) reached the webhook before.
async fn lanes_drained(emu: &Watched, sockets: &[String]) {
    for socket in sockets {
        emu.wait_log_within("the outcome of a socket's `disconnected`", LONG, |v| {
            v["type"] == "webhook"
                && v["event"] == "disconnected"
                && v["socketId"] == socket.as_str()
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unreachable_webhook_refuses_connect_and_the_connection_recovers() {
    let port = free_port();
    let template = format!("http://127.0.0.1:{port}/api/{{hub}}/{{event}}");
    let mut emu = Watched::start(&[
        "--webhook",
        &template,
        "--anonymous",
        "--no-preflight",
        "--webhook-retry",
        "10ms,10ms",
    ]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();

    // Nothing listens: the connect is refused with a sentence, the log explains.
    let message = refusal_message(&ws.join("/").await);
    assert!(message.contains("could not be reached"), "{message}");
    let line = emu
        .wait_log_within("failed connect", WAIT, |v| {
            v["type"] == "webhook" && v["event"] == "connect" && v["ok"] == false
        })
        .await;
    let detail = line["detail"].as_str().unwrap();
    assert!(detail.contains("connection refused"), "{line}");
    assert!(detail.contains(&port.to_string()), "{line}");
    assert!(
        line["hint"]
            .as_str()
            .unwrap_or("")
            .contains("nothing is listening"),
        "{line}"
    );

    // The Engine.IO connection stays open: once the handler is up, the same connection joins.
    let hook = Webhook::on_port(port, echo_ack).await;
    let socket = join_ok(&mut ws, "/").await;
    hook.wait_for("connected", 1).await;
    ws.send("421[\"hello\"]").await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");

    // The handler goes away again: `disconnected` is retried (1 + 2 attempts), then dropped
    // with a log line; the service carries on.
    hook.kill();
    ws.close().await;
    let line = emu
        .wait_log_within("dropped disconnected", LONG, |v| {
            v["type"] == "webhook" && v["event"] == "disconnected"
        })
        .await;
    assert_eq!(line["ok"], false, "{line}");
    assert_eq!(line["socketId"], socket.as_str(), "{line}");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{line}"
    );
    // That line is the lane's last: every attempt was made before it.
    assert_eq!(webhook_lines(&emu, "disconnected").len(), 1);
    assert!(hook.named("disconnected").is_empty());
    let left: Vec<Value> = emu
        .lines_of("socketDisconnected")
        .into_iter()
        .filter(|v| v["socketId"] == socket.as_str())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    emu.assert_healthy().await;
    // The log line says how hard the service tried before dropping the event.
    assert_eq!(line["attempts"], 3, "one try and two retries: {line}");
}

#[tokio::test]
async fn slow_webhook_times_out_connect_and_events_without_closing() {
    let slow = Duration::from_secs(2);
    let hook = Webhook::with(move |r: &Recorded| {
        if r.event() == "connect" && r.header("ce-namespace") == "/slow" {
            delayed(Reply::ok(), slow)
        } else if r.event() == "slow" {
            delayed(echo_ack(r), slow)
        } else {
            echo_ack(r)
        }
    })
    .await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--webhook-timeout",
        "200ms",
    ]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    let message = refusal_message(&ws.join("/slow").await);
    assert!(message.contains("did not answer within 200ms"), "{message}");
    let slow_socket = hook.named("connect")[0].header("ce-socketId").to_owned();

    let socket = join_ok(&mut ws, "/").await;
    ws.send("421[\"slow\"]").await;
    // The late answer (after 2 s) must not reach the client either.
    ws.expect_silence(slow + Duration::from_millis(500)).await;
    let line = emu
        .wait_log_within("timed-out event", WAIT, |v| {
            v["type"] == "webhook" && v["event"] == "slow"
        })
        .await;
    assert_eq!(line["ok"], false, "{line}");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains("did not answer within 200ms"),
        "{line}"
    );
    // Still open, still served.
    ws.send("422[\"fast\"]").await;
    assert_eq!(ws.recv().await, "432[\"ok\"]");
    ws.close().await;
    lanes_drained(&emu, std::slice::from_ref(&socket)).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &[socket], WAIT).await;
    assert_eq!(reasons, [""]);
    // The timed-out connect counts as refused: no connected/disconnected for that socket.
    assert!(
        hook.named("connected")
            .iter()
            .all(|r| r.header("ce-socketId") != slow_socket)
    );
    emu.assert_healthy().await;
}

#[tokio::test]
async fn webhook_500_refuses_connect_drops_the_event_and_retries_notifications() {
    let hook = Webhook::with(|r: &Recorded| match r.event() {
        "connect" if r.header("ce-namespace") == "/c500" => Reply::status(500, "boom"),
        "e500" => Reply::status(500, "event failed"),
        "connected" | "disconnected" => Reply::status(500, "notification failed"),
        _ => echo_ack(r),
    })
    .await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--webhook-retry",
        "10ms,10ms",
    ]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    assert_eq!(ws.join("/c500").await, "44/c500,{\"message\":\"boom\"}");
    let socket = join_ok(&mut ws, "/").await;
    ws.send("421[\"e500\"]").await;
    ws.send("422[\"fine\"]").await;
    // Nothing for the failed event; the next one is answered.
    assert_eq!(ws.recv().await, "432[\"ok\"]");
    emu.wait_log_within("failed event", WAIT, |v| {
        v["type"] == "webhook" && v["event"] == "e500" && v["status"] == 500 && v["ok"] == false
    })
    .await;

    // `connected` is retried: three attempts of the same event.
    hook.wait_for_within("connected", 3, WAIT).await;
    ws.close().await;
    hook.wait_for_within("disconnected", 3, WAIT).await;
    lanes_drained(&emu, std::slice::from_ref(&socket)).await;
    // Blocking events are never retried.
    let connects: Vec<Recorded> = hook
        .named("connect")
        .into_iter()
        .filter(|r| r.header("ce-namespace") == "/c500")
        .collect();
    assert_eq!(connects.len(), 1);
    assert_eq!(hook.named("e500").len(), 1);
    // Non-blocking ones: one try and two retries, same ce-id, then dropped with a log line.
    for name in ["connected", "disconnected"] {
        let seen: Vec<Recorded> = hook.named(name);
        assert_eq!(seen.len(), 3, "{name} attempts");
        assert!(
            seen.iter()
                .all(|r| r.header("ce-id") == seen[0].header("ce-id"))
        );
        let lines = webhook_lines(&emu, name);
        assert_eq!(lines.len(), 1, "{name}: {lines:?}");
        assert_eq!(lines[0]["attempts"], 3, "{}", lines[0]);
        assert_eq!(lines[0]["status"], 500, "{}", lines[0]);
    }
    let reasons = assert_one_disconnected_each(|| hook.events(), &[socket], WAIT).await;
    assert_eq!(reasons, [""]);
    emu.assert_healthy().await;
}

/// How the raw webhook misbehaves, and whether `disconnected` should be retried for it.
fn garbage_cases() -> Vec<(&'static str, RawAnswer, u32)> {
    vec![
        (
            "non-HTTP bytes",
            RawAnswer::Bytes(b"\x00\x01\x02 this is not HTTP at all\r\n\r\n\xff\xfe".to_vec()),
            3,
        ),
        ("immediate close", RawAnswer::Close, 3),
        ("connection reset", RawAnswer::Reset, 3),
        (
            "malformed status line",
            RawAnswer::Bytes(b"HTTP/1.1 twohundred OK\r\n\r\n".to_vec()),
            3,
        ),
        (
            "body shorter than Content-Length",
            RawAnswer::Bytes(
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n43[1]"
                    .to_vec(),
            ),
            3,
        ),
        // Larger than the 1 MiB response limit: an error, and not retried (not a network error).
        ("huge body", RawAnswer::Huge(2 << 20), 1),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_are_errors_not_hangs() {
    for (what, fault, disconnected_attempts) in garbage_cases() {
        let f = fault.clone();
        let hook = RawHook::with(move |r: &Recorded| match r.event() {
            "connect" if r.header("ce-namespace") == "/bad" => f.clone(),
            "bad" | "disconnected" => f.clone(),
            "good" => raw_reply("200 OK", "431[\"ok\"]"),
            _ => RawAnswer::Ok,
        })
        .await;
        let mut emu = Watched::start(&[
            "--webhook",
            &hook.template(),
            "--anonymous",
            "--no-preflight",
            "--webhook-retry",
            "10ms,10ms",
            "--webhook-timeout",
            "5s",
        ]);
        let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
        let answer = ws.join("/bad").await;
        let message = refusal_message(&answer);
        assert!(!message.is_empty(), "{what}: {answer}");
        let line = emu
            .wait_log_within(what, WAIT, |v| {
                v["type"] == "webhook" && v["event"] == "connect" && v["ok"] == false
            })
            .await;
        assert!(
            !line["detail"].as_str().unwrap_or("").is_empty(),
            "{what}: {line}"
        );
        let socket = join_ok(&mut ws, "/").await;
        ws.send("421[\"bad\"]").await;
        ws.send("421[\"good\"]").await;
        assert_eq!(ws.recv().await, "431[\"ok\"]", "{what}");
        let line = emu
            .wait_log_within(what, WAIT, |v| {
                v["type"] == "webhook" && v["event"] == "bad"
            })
            .await;
        assert_eq!(line["ok"], false, "{what}: {line}");
        ws.close().await;
        lanes_drained(&emu, std::slice::from_ref(&socket)).await;
        let reasons =
            assert_one_disconnected_each(|| hook.events(), std::slice::from_ref(&socket), WAIT)
                .await;
        assert_eq!(reasons, [""], "{what}");
        assert_eq!(
            hook.named("disconnected").len() as u32,
            disconnected_attempts,
            "{what}: attempts of `disconnected`"
        );
        assert_eq!(
            hook.named("bad").len(),
            1,
            "{what}: blocking events are not retried"
        );
        emu.assert_healthy().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Clients vanishing while the webhook works
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_vanishing_while_its_event_is_at_the_webhook() {
    let hook = Webhook::with(|r: &Recorded| {
        if r.event() == "slow" {
            delayed(echo_ack(r), Duration::from_millis(500))
        } else {
            echo_ack(r)
        }
    })
    .await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--ping-interval",
        "200ms",
        "--ping-timeout",
        "200ms",
    ]);
    // Over WebSocket: the TCP connection drops without a close frame.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    let ws_socket = join_ok(&mut ws, "/").await;
    ws.send("421[\"slow\"]").await;
    ws.send("422[\"queued\"]").await;
    hook.wait_for("slow", 1).await;
    drop(ws);

    // Over long-polling: the client stops polling (the ping timeout ends the session).
    let (_, open) = poll_handshake(&emu, "h", "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    poll_post(&emu, "h", &sid, "40").await;
    let poll_socket = sid_of(&poll_get(&emu, "h", &sid).await.body);
    poll_post(&emu, "h", &sid, "421[\"slow\"]").await;
    hook.wait_for("slow", 2).await;

    let sockets = [ws_socket.clone(), poll_socket];
    lanes_drained(&emu, &sockets).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &sockets, WAIT).await;
    assert_eq!(reasons, ["transport error", "ping timeout"]);
    // The event queued behind the slow one is not lost with the client (docs/protocol.md §14 decision 21): it still
    // reaches the webhook, once, after the slow one and before the socket's `disconnected`.
    let lane: Vec<String> = hook
        .events()
        .iter()
        .filter(|r| r.header("ce-socketId") == ws_socket)
        .map(|r| r.event().to_owned())
        .collect();
    assert_eq!(
        lane,
        ["connect", "connected", "slow", "queued", "disconnected"]
    );
    emu.assert_healthy().await;
}

#[tokio::test]
async fn client_vanishing_while_connect_is_at_the_webhook() {
    let hook = Webhook::with(|r: &Recorded| {
        if r.event() == "connect" {
            let reply = if r.header("ce-namespace") == "/no" {
                Reply::status(403, "no")
            } else {
                Reply::ok()
            };
            delayed(reply, Duration::from_millis(500))
        } else {
            echo_ack(r)
        }
    })
    .await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
    ]);

    // The client asks for "/" (accepted later) and "/no" (refused later), then vanishes.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.send("40").await;
    ws.send("40/no,").await;
    ws.send("421[\"early\"]").await;
    hook.wait_for("connect", 2).await;
    drop(ws);

    // Another client leaves "/" with 41 while its connect is pending, and stays.
    let mut stays = WsClient::connect(&emu, "h", "").await.unwrap();
    stays.send("40/two,").await;
    stays.send("41/two,").await;
    hook.wait_for("connect", 3).await;

    let connects = hook.named("connect");
    let socket_of = |conn: &str, nsp: &str| -> String {
        connects
            .iter()
            .find(|r| r.header("ce-connectionId") == conn && r.header("ce-namespace") == nsp)
            .unwrap_or_else(|| panic!("no connect for {nsp}"))
            .header("ce-socketId")
            .to_owned()
    };
    let first_conn = connects[0].header("ce-connectionId").to_owned();
    let vanished = socket_of(&first_conn, "/");
    let left = socket_of(&stays.sid, "/two");
    let sockets = [vanished, left];
    lanes_drained(&emu, &sockets).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &sockets, WAIT).await;
    assert_eq!(reasons, ["transport error", ""]);
    assert!(
        hook.named("connected").is_empty(),
        "no socket was ever connected"
    );
    assert!(
        hook.named("early").is_empty(),
        "events of abandoned sockets are dropped"
    );
    // The client that left was not told it joined, and its connection still works.
    stays.expect_silence(Duration::from_millis(300)).await;
    let socket = join_ok(&mut stays, "/").await;
    stays.close().await;
    hook.wait_for_within("disconnected", 3, WAIT).await;
    assert!(
        hook.named("disconnected")
            .iter()
            .any(|r| r.header("ce-socketId") == socket)
    );
    emu.assert_healthy().await;
}

// ---------------------------------------------------------------------------------------------
// Oversized and malformed input
// ---------------------------------------------------------------------------------------------

/// Long-polls until the session is gone (400, or a payload carrying the close packet `1`),
/// answering pings on the way.
async fn poll_expect_closed(emu: &Emu, hub: &str, sid: &str) {
    for _ in 0..20 {
        let got = poll_get(emu, hub, sid).await;
        if got.status == 400 || packets(&got.body).contains(&"1") {
            return;
        }
        if packets(&got.body).contains(&"2") {
            poll_post(emu, hub, sid, "3").await;
        }
    }
    panic!("polling session {sid} is still open");
}

/// A polling session joined to "/"; returns (sid, socket id).
async fn poll_join(emu: &Emu, hub: &str) -> (String, String) {
    let (reply, open) = poll_handshake(emu, hub, "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(poll_post(emu, hub, &sid, "40").await.body, "ok");
    let got = poll_get(emu, hub, &sid).await;
    assert!(got.body.starts_with("40{"), "{}", got.body);
    (sid, sid_of(&got.body))
}

fn host_port(emu: &Emu) -> String {
    format!("127.0.0.1:{}", emu.port)
}

fn poll_path(hub: &str, sid: &str) -> String {
    format!("/clients/socketio/hubs/{hub}/?EIO=4&transport=polling&sid={sid}")
}

#[tokio::test]
async fn oversized_frames_and_bodies_close_the_session() {
    let hook = Webhook::with(echo_ack).await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--max-payload",
        "1000",
    ]);
    let mut accepted = Vec::new();

    // At the limit: fine, on both transports.
    let at_limit = |prefix: &str| {
        let frame = format!("{prefix}[\"pad\",\"\"]");
        format!("{prefix}[\"pad\",\"{}\"]", "x".repeat(1000 - frame.len()))
    };
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    accepted.push(join_ok(&mut ws, "/").await);
    let packet = at_limit("421");
    assert_eq!(packet.len(), 1000);
    ws.send(&packet).await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");
    // A WebSocket frame over maxPayload.
    ws.send(&format!("422[\"big\",\"{}\"]", "x".repeat(2000)))
        .await;
    ws.expect_closed().await;

    // A long-polling POST over maxPayload with Content-Length: 413, session closed.
    let (sid, socket) = poll_join(&emu, "h").await;
    accepted.push(socket);
    let packet = at_limit("423");
    assert_eq!(poll_post(&emu, "h", &sid, &packet).await.body, "ok");
    assert_eq!(poll_get(&emu, "h", &sid).await.body, "433[\"ok\"]");
    let big = format!("42[\"big\",\"{}\"]", "x".repeat(2000));
    assert_eq!(poll_post(&emu, "h", &sid, &big).await.status, 413);
    poll_expect_closed(&emu, "h", &sid).await;

    // The same without Content-Length (chunked): 413 as soon as the limit is passed.
    let (sid, socket) = poll_join(&emu, "h").await;
    accepted.push(socket);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
        poll_path("h", &sid)
    )
    .into_bytes();
    for _ in 0..50 {
        request.extend_from_slice(format!("64\r\n{}\r\n", "y".repeat(100)).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = raw_exchange(&host_port(&emu), &request, 512)
        .await
        .expect("an answer");
    assert_eq!(status, 413);
    poll_expect_closed(&emu, "h", &sid).await;

    // A chunked body that never ends (the client stops sending after the limit): still 413.
    let (sid, socket) = poll_join(&emu, "h").await;
    accepted.push(socket);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        poll_path("h", &sid)
    )
    .into_bytes();
    request.extend_from_slice(format!("7d0\r\n{}\r\n", "z".repeat(2000)).as_bytes());
    let (status, _) = raw_exchange(&host_port(&emu), &request, 4096)
        .await
        .expect("an answer");
    assert_eq!(status, 413);
    poll_expect_closed(&emu, "h", &sid).await;

    lanes_drained(&emu, &accepted).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &accepted, WAIT).await;
    assert!(
        reasons.iter().all(|r| r == "transport error"),
        "{reasons:?}"
    );
    emu.assert_healthy().await;
}

/// What a malformed packet must do to the session.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// The session closes: `disconnected` with "transport error".
    Closed,
    /// Ignored or handled: the session keeps serving.
    Open,
}

/// (packet sent after joining "/", outcome). Engine.IO and Socket.IO level, both transports.
fn malformed_table() -> Vec<(&'static str, Outcome)> {
    use Outcome::*;
    vec![
        // Engine.IO
        ("9", Closed),
        ("x", Closed),
        ("0{\"sid\":\"x\"}", Closed),
        ("\u{feff}4", Closed),
        ("3", Open),
        ("5", Open),
        ("6", Open),
        // Socket.IO
        ("4", Closed),
        ("4zzz", Closed),
        ("47", Closed),
        ("42", Closed),
        ("42{}", Closed),
        ("42[]", Closed),
        ("42[null]", Closed),
        ("42[{\"a\":1}]", Closed),
        ("42[\"x\"", Closed),
        ("42abc", Closed),
        ("42[\"disconnect\"]", Closed),
        ("42[\"connect\"]", Closed),
        ("42/nope,[\"x\"]", Closed),
        ("42/nope", Closed),
        ("42123456789012345678901[\"x\"]", Closed),
        ("44{\"message\":\"x\"}", Closed),
        ("40", Closed),
        ("41{\"a\":1}", Closed),
        ("431{}", Closed),
        ("43[\"no id\"]", Open),
        ("431[\"stray ack\"]", Open),
        ("45", Closed),
        ("45-[\"x\"]", Closed),
        ("451-[\"x\",{\"_placeholder\":true,\"num\":3}]", Closed),
        ("4565-[\"x\"]", Closed),
        ("4599999999999999999999-[\"x\"]", Closed),
        ("42[\"ok\",\"\u{1F600}\"]", Open),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_over_websocket() {
    let hook = Webhook::with(echo_ack).await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
    ]);
    let mut accepted = Vec::new();
    let mut expected = Vec::new();
    let mut cases: Vec<(String, Outcome)> = malformed_table()
        .into_iter()
        .map(|(p, o)| (p.to_owned(), o))
        .collect();
    // WebSocket-only shapes.
    cases.push((String::new(), Outcome::Closed));
    cases.push(("bAQID".into(), Outcome::Closed));
    for (packet, outcome) in cases {
        println!("case {packet:?}, expected {outcome:?}");
        let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
        accepted.push(join_ok(&mut ws, "/").await);
        ws.send(&packet).await;
        match outcome {
            Outcome::Closed => {
                ws.expect_closed().await;
                expected.push("transport error".to_owned());
            }
            Outcome::Open => {
                ws.send("4277[\"probe\"]").await;
                assert_eq!(ws.recv().await, "4377[\"ok\"]", "after {packet:?}");
                ws.close().await;
                expected.push(String::new());
            }
        }
    }

    // Binary frames out of place.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    accepted.push(join_ok(&mut ws, "/").await);
    ws.send_binary(&[1, 2, 3]).await;
    ws.expect_closed().await;
    expected.push("transport error".into());
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    accepted.push(join_ok(&mut ws, "/").await);
    ws.send("451-[\"x\",{\"_placeholder\":true,\"num\":0}]")
        .await;
    ws.send("42[\"text while binary expected\"]").await;
    ws.expect_closed().await;
    expected.push("transport error".into());

    // Client-side close packet: a clean close.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    accepted.push(join_ok(&mut ws, "/").await);
    ws.send("1").await;
    ws.expect_closed().await;
    expected.push(String::new());

    lanes_drained(&emu, &accepted).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &accepted, WAIT).await;
    let table: Vec<_> = reasons.iter().zip(&expected).collect();
    assert_eq!(reasons, expected, "{table:?}");
    assert!(hook.named("disconnect").is_empty() && hook.named("connect").len() == accepted.len());
    emu.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_over_long_polling() {
    let hook = Webhook::with(echo_ack).await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
    ]);
    let mut accepted = Vec::new();
    let mut expected = Vec::new();
    let mut cases: Vec<(String, Outcome)> = malformed_table()
        .into_iter()
        .map(|(p, o)| (p.to_owned(), o))
        .collect();
    // Polling-only shapes: payload framing.
    cases.push((String::new(), Outcome::Closed));
    cases.push(("42[\"a\"]\x1e".into(), Outcome::Closed));
    cases.push(("\x1e42[\"a\"]".into(), Outcome::Closed));
    cases.push(("bnot base64!".into(), Outcome::Closed));
    cases.push(("bAQID".into(), Outcome::Closed));
    cases.push(("6\x1e6\x1e3".into(), Outcome::Open));
    for (packet, outcome) in cases {
        println!("case {packet:?}, expected {outcome:?}");
        let (sid, socket) = poll_join(&emu, "h").await;
        accepted.push(socket);
        let reply = poll_post(&emu, "h", &sid, &packet).await;
        match outcome {
            Outcome::Closed => {
                assert!(
                    reply.status == 200 || reply.status == 400,
                    "{packet:?}: {reply:?}"
                );
                poll_expect_closed(&emu, "h", &sid).await;
                expected.push("transport error".to_owned());
            }
            Outcome::Open => {
                assert_eq!(reply.status, 200, "{packet:?}: {reply:?}");
                poll_post(&emu, "h", &sid, "4277[\"probe\"]").await;
                assert_eq!(
                    poll_get(&emu, "h", &sid).await.body,
                    "4377[\"ok\"]",
                    "after {packet:?}"
                );
                poll_post(&emu, "h", &sid, "1").await;
                expected.push(String::new());
            }
        }
    }

    // A body that is not UTF-8.
    let (sid, socket) = poll_join(&emu, "h").await;
    accepted.push(socket);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nconnection: close\r\n\r\n",
        poll_path("h", &sid)
    )
    .into_bytes();
    request.extend_from_slice(b"42\xff\xfe");
    let (status, _) = raw_exchange(&host_port(&emu), &request, 4096)
        .await
        .expect("an answer");
    assert_eq!(status, 400);
    poll_expect_closed(&emu, "h", &sid).await;
    expected.push("transport error".into());

    lanes_drained(&emu, &accepted).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &accepted, WAIT).await;
    let table: Vec<_> = reasons.iter().zip(&expected).collect();
    assert_eq!(reasons, expected, "{table:?}");
    emu.assert_healthy().await;
}

type RawWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw TCP connection that completed the WebSocket handshake for a new session and
/// consumed the open packet frame; what follows is written by the test, byte for byte.
async fn raw_websocket(emu: &Emu) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(host_port(emu)).await.unwrap();
    let request = "GET /clients/socketio/hubs/h/?EIO=4&transport=websocket HTTP/1.1\r\n\
                   host: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
                   sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    // The 101 head, then the open packet frame (unmasked text frame, length < 65536).
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).await.unwrap();
            u16::from_be_bytes(ext) as usize
        }
        n => n as usize,
    };
    let mut open = vec![0u8; len];
    stream.read_exact(&mut open).await.unwrap();
    assert_eq!(open[0], b'0');
    stream
}

/// Waits until the peer closes the raw connection (EOF or reset), reading whatever it sends.
async fn raw_expect_closed(stream: &mut TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("raw WebSocket still open"),
        }
    }
}

/// A masked client frame.
fn frame(first: u8, payload: &[u8], declared: Option<u64>) -> Vec<u8> {
    let mut out = vec![first];
    let len = declared.unwrap_or(payload.len() as u64);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as u64 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    let mask = [1u8, 2, 3, 4];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_websocket_frames_close_the_connection() {
    use tokio::io::AsyncWriteExt;
    let hook = Webhook::with(echo_ack).await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--max-payload",
        "1000",
    ]);
    let unmasked = {
        let mut f = vec![0x81, 2];
        f.extend_from_slice(b"40");
        f
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("declared length 2^62", frame(0x81, b"", Some(1 << 62))),
        (
            "declared length over maxPayload",
            frame(0x81, b"", Some(100_000)),
        ),
        ("invalid UTF-8 text", frame(0x81, b"42[\"\xff\"]", None)),
        ("reserved opcode 3", frame(0x83, b"x", None)),
        ("RSV1 without extension", frame(0xC1, b"40", None)),
        ("unmasked client frame", unmasked),
        ("ping over 125 bytes", frame(0x89, &[b'p'; 200], None)),
        ("fragmented control frame", frame(0x09, b"p", None)),
        ("continuation without start", frame(0x80, b"40", None)),
        (
            "fragments over maxPayload",
            [
                frame(0x01, &[b'4'; 600], None),
                frame(0x80, &[b'2'; 600], None),
            ]
            .concat(),
        ),
        (
            "garbage bytes",
            b"\x00\x00\x00\x00\x00\x00\x00\x00 hello".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        println!("case {what}");
        let mut stream = raw_websocket(&emu).await;
        let _ = stream.write_all(&bytes).await;
        raw_expect_closed(&mut stream).await;
        emu.assert_healthy().await;
    }
    // A joined socket whose connection then breaks the framing: one `disconnected`.
    let mut stream = raw_websocket(&emu).await;
    stream.write_all(&frame(0x81, b"40", None)).await.unwrap();
    hook.wait_for("connected", 1).await;
    let socket = hook.named("connected")[0].header("ce-socketId").to_owned();
    stream.write_all(&frame(0x83, b"x", None)).await.unwrap();
    raw_expect_closed(&mut stream).await;
    lanes_drained(&emu, std::slice::from_ref(&socket)).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &[socket], WAIT).await;
    assert_eq!(reasons, ["transport error"]);
    emu.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_attachment_floods() {
    let hook = Webhook::with(echo_ack).await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--max-payload",
        "100000",
    ]);
    let mut accepted = Vec::new();
    let mut expected = Vec::new();
    let placeholders = |n: usize| -> String {
        (0..n)
            .map(|i| format!("{{\"_placeholder\":true,\"num\":{i}}}"))
            .collect::<Vec<_>>()
            .join(",")
    };

    // Over the attachment limit (64): refused before any JSON is read.
    for n in [65usize, 1000, 1 << 20] {
        let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
        accepted.push(join_ok(&mut ws, "/").await);
        ws.send(&format!("45{n}-[\"flood\",{}]", placeholders(n.min(70))))
            .await;
        ws.expect_closed().await;
        expected.push("transport error".to_owned());
    }

    // At the limit, with full-size attachments: parsed, not forwarded, the session lives on.
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    accepted.push(join_ok(&mut ws, "/").await);
    ws.send(&format!("4564-[\"flood\",{}]", placeholders(64)))
        .await;
    let attachment = vec![7u8; 99_000];
    for _ in 0..64 {
        ws.send_binary(&attachment).await;
    }
    // Many complete binary events in a row.
    for _ in 0..200 {
        ws.send("451-[\"flood\",{\"_placeholder\":true,\"num\":0}]")
            .await;
        ws.send_binary(&[1, 2, 3]).await;
    }
    ws.send("421[\"after\"]").await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");
    assert!(hook.named("flood").is_empty());
    ws.close().await;
    expected.push(String::new());
    // More attachments than declared: the extra frame has no packet to belong to.
    let mut raw = ws_open(emu.port, "h").await;
    accepted.push(ws_join(&mut raw).await);
    let two = "452-[\"flood\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
    raw.send(Message::Text(two.into())).await.unwrap();
    for _ in 0..50 {
        let send = raw.send(Message::Binary(attachment.clone().into()));
        match tokio::time::timeout(Duration::from_secs(2), send).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    raw_ws_expect_closed(&mut raw).await;
    expected.push("transport error".into());

    // Over long-polling: the limit, and `b` attachments.
    let (sid, socket) = poll_join(&emu, "h").await;
    accepted.push(socket);
    poll_post(
        &emu,
        "h",
        &sid,
        "451-[\"flood\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
    )
    .await;
    poll_post(&emu, "h", &sid, "4277[\"after\"]").await;
    assert_eq!(poll_get(&emu, "h", &sid).await.body, "4377[\"ok\"]");
    poll_post(
        &emu,
        "h",
        &sid,
        &format!("4565-[\"flood\",{}]", placeholders(65)),
    )
    .await;
    poll_expect_closed(&emu, "h", &sid).await;
    expected.push("transport error".into());

    let rss = emu.rss_kib();
    assert!(rss < 512 * 1024, "RSS {rss} KiB");
    lanes_drained(&emu, &accepted).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &accepted, WAIT).await;
    assert_eq!(reasons, expected);
    emu.wait_log_within("binary warning", WAIT, |v| {
        v["type"] == "warning" && v["message"].as_str().unwrap_or("").contains("binary")
    })
    .await;
    emu.assert_healthy().await;
}

// ---------------------------------------------------------------------------------------------
// Many clients, shutdown under load
// ---------------------------------------------------------------------------------------------

/// Opens a WebSocket session on `hub` and reads the open packet.
async fn ws_open(port: u16, hub: &str) -> RawWs {
    let url =
        format!("ws://127.0.0.1:{port}/clients/socketio/hubs/{hub}/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with('0') => ws,
        other => panic!("expected the open packet, got {other:?}"),
    }
}

/// Waits until the server ends the session (close frame, EOF or error).
async fn raw_ws_expect_closed(ws: &mut RawWs) {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("connection still open"),
        }
    }
}

/// Joins "/" and returns the socket id (answering pings on the way).
async fn ws_join(ws: &mut RawWs) -> String {
    ws.send(Message::Text("40".into())).await.unwrap();
    loop {
        match tokio::time::timeout(LONG, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                ws.send(Message::Text("3".into())).await.unwrap();
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                assert!(t.starts_with("40{"), "{t}");
                return sid_of(&t);
            }
            other => panic!("no answer to 40: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connects() {
    const N: usize = 1000;
    let hook = Webhook::with(echo_ack).await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--quiet",
    ]);
    let port = emu.port;
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            tokio::spawn(async move {
                let mut ws = ws_open(port, "h").await;
                let socket = ws_join(&mut ws).await;
                (ws, socket)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(N);
    for task in tasks {
        clients.push(task.await.expect("client task"));
    }
    let mut ids: Vec<String> = clients.iter().map(|(_, s)| s.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "distinct socket ids");
    assert_eq!(hook.wait_for_within("connect", N, LONG).await.len(), N);
    assert_eq!(hook.wait_for_within("connected", N, LONG).await.len(), N);

    let closes: Vec<_> = clients
        .into_iter()
        .map(|(mut ws, _)| {
            tokio::spawn(async move {
                let _ = ws.close(None).await;
            })
        })
        .collect();
    for c in closes {
        c.await.unwrap();
    }
    hook.wait_for_within("disconnected", N, LONG).await;
    // The sentinel (the log is quiet): a socket that joins and leaves once every `disconnected`
    // is in; its own comes after any duplicate of theirs would have.
    let mut last = WsClient::connect(&emu, "h", "").await.unwrap();
    ids.push(join_ok(&mut last, "/").await);
    last.close().await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &ids, LONG).await;
    assert!(reasons.iter().all(|r| r.is_empty()), "{reasons:?}");
    assert_eq!(hook.named("connect").len(), N + 1);
    emu.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_sends_every_disconnected() {
    const N: usize = 100;
    let hook = Webhook::with(echo_ack).await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--quiet",
    ]);
    let port = emu.port;
    let mut ids = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..N {
        let mut ws = ws_open(port, "h").await;
        ids.push(ws_join(&mut ws).await);
        // Emit with acks until the connection ends; count acks.
        tasks.push(tokio::spawn(async move {
            let mut acks = 0u64;
            for id in 0u64.. {
                if ws
                    .send(Message::Text(format!("42{id}[\"load\",{id}]").into()))
                    .await
                    .is_err()
                {
                    break;
                }
                let answered = loop {
                    match tokio::time::timeout(LONG, ws.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) if t.starts_with("43") => break true,
                        Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                            let _ = ws.send(Message::Text("3".into())).await;
                        }
                        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                            break false;
                        }
                        Ok(Some(Ok(_))) => {}
                        Err(_) => panic!("no ack and no close"),
                    }
                };
                if !answered {
                    break;
                }
                acks += 1;
            }
            acks
        }));
    }
    // Under load: wait until a good number of events went through.
    hook.wait_for_within("load", 20 * N, LONG).await;
    assert_eq!(emu.terminate().await, 0, "exit code after SIGTERM");
    emu.assert_no_panic();
    let mut total = 0;
    for task in tasks {
        total += tokio::time::timeout(LONG, task)
            .await
            .expect("client noticed the shutdown")
            .expect("client task");
    }
    assert!(total > 0);
    // The emulator has exited: nothing more can arrive.
    let reasons = assert_one_disconnected_each(|| hook.events(), &ids, WAIT).await;
    assert!(
        reasons.iter().all(|r| r == "server shutting down"),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_client_that_never_reads() {
    // The stalled client's writes block until --ping-timeout; shutdown must not wait for that
    // longer than its grace, and the stalled socket still gets its `disconnected`.
    let big = format!("[\"{}\"]", "b".repeat(256 * 1024));
    let hook = Webhook::with(move |r: &Recorded| {
        if r.event() == "big" {
            ack_for(&r.body, &serde_json::from_str(&big).unwrap())
                .map(|a| Reply::status(200, &a))
                .unwrap_or(Reply::ok())
        } else {
            echo_ack(r)
        }
    })
    .await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--quiet",
        // Long enough that the blocked writes never time out before SIGTERM, even on a loaded
        // machine: the reason must come from the shutdown.
        "--ping-timeout",
        "120s",
        "--shutdown-grace",
        "3s",
    ]);
    let mut stalled = ws_open(emu.port, "h").await;
    let stalled_socket = ws_join(&mut stalled).await;
    let mut healthy = WsClient::connect(&emu, "h", "").await.unwrap();
    let healthy_socket = join_ok(&mut healthy, "/").await;
    stall(&mut stalled).await;

    let started = Instant::now();
    assert_eq!(emu.terminate().await, 0);
    println!(
        "exit {:?} after SIGTERM; log:\n{}",
        started.elapsed(),
        tail(&emu.log.lock().unwrap(), 10)
    );
    emu.assert_no_panic();
    // The emulator has exited: nothing more can arrive.
    let reasons =
        assert_one_disconnected_each(|| hook.events(), &[stalled_socket, healthy_socket], WAIT)
            .await;
    assert_eq!(reasons, ["server shutting down", "server shutting down"]);
    drop(stalled);
}

/// Sends `big` events without ever reading until the server stops taking them: its writes to
/// this client block, so it reads no more from it, and once the socket buffers between them
/// are full (each event carries 64 KB so that they fill) a send no longer completes.
async fn stall(ws: &mut RawWs) {
    let padding = "p".repeat(64 * 1024);
    let mut sent = 0;
    for id in 0..1000u32 {
        let send = ws.send(Message::Text(
            format!("42{id}[\"big\",\"{padding}\"]").into(),
        ));
        match tokio::time::timeout(Duration::from_millis(500), send).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
    }
    assert!(sent > 0);
    assert!(sent < 1000, "the server never stopped taking events");
}

// ---------------------------------------------------------------------------------------------
// Memory stays bounded
// ---------------------------------------------------------------------------------------------

/// Generous: the process idles at a few MiB; the buffers involved are a few MiB each.
const RSS_BOUND_KIB: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_is_closed_and_memory_stays_bounded() {
    let big = format!("[\"{}\"]", "b".repeat(256 * 1024));
    let hook = Webhook::with(move |r: &Recorded| {
        if r.event() == "big" {
            ack_for(&r.body, &serde_json::from_str(&big).unwrap())
                .map(|a| Reply::status(200, &a))
                .unwrap_or(Reply::ok())
        } else {
            echo_ack(r)
        }
    })
    .await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--ping-timeout",
        "2s",
    ]);
    let sampler = RssSampler::start(emu.pid());

    // WebSocket: the kernel buffers fill, the write budget (ping timeout) runs out.
    let mut ws = ws_open(emu.port, "h").await;
    let ws_socket = ws_join(&mut ws).await;
    stall(&mut ws).await;
    let closed = emu
        .wait_log_within("stalled WebSocket closed", LONG, |v| {
            v["type"] == "connectionClosed"
                && v["reason"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("transport error")
        })
        .await;
    assert!(
        closed["reason"]
            .as_str()
            .unwrap()
            .contains("accepted no data"),
        "{closed}"
    );

    // Long-polling: the client posts events and never polls; the outgoing buffer limit
    // (4 MB / 1024 packets) closes the session.
    let (sid, poll_socket) = poll_join(&emu, "h").await;
    let body: Vec<String> = (0..100).map(|i| format!("42{i}[\"big\"]")).collect();
    let body = body.join("\x1e");
    for _ in 0..5 {
        let reply = poll_post(&emu, "h", &sid, &body).await;
        if reply.status != 200 {
            break;
        }
    }
    let closed = emu
        .wait_log_within("backlogged polling session closed", LONG, |v| {
            v["type"] == "connectionClosed" && v["connectionId"] == sid.as_str()
        })
        .await;
    let reason = closed["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("transport error") && reason.contains("not reading"),
        "{closed}"
    );

    let sockets = [ws_socket, poll_socket];
    lanes_drained(&emu, &sockets).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &sockets, LONG).await;
    assert_eq!(reasons, ["transport error", "transport error"]);
    let peak = sampler.max_kib();
    assert!(peak < RSS_BOUND_KIB, "peak RSS {peak} KiB");
    drop(ws);
    emu.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_that_never_answers_times_out_and_nothing_is_dropped() {
    let hook = Webhook::with(|r: &Recorded| {
        if r.header("ce-type") == "azure.webpubsub.user.message" {
            delayed(Reply::ok(), Duration::from_secs(3600))
        } else {
            Reply::ok()
        }
    })
    .await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--anonymous",
        "--no-preflight",
        "--webhook-timeout",
        "300ms",
        "--max-payload",
        "50000",
    ]);
    let sampler = RssSampler::start(emu.pid());
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    let socket = join_ok(&mut ws, "/").await;
    let payload = "p".repeat(30_000);
    // 600 KB against a lane bound of 4 × 50 KB: the emulator stops reading instead of dropping.
    for i in 0..20 {
        ws.send(&format!("42{i}[\"never\",\"{payload}\"]")).await;
    }
    let timeout = emu
        .wait_log_within("timeout", WAIT, |v| {
            v["type"] == "webhook" && v["event"] == "never"
        })
        .await;
    assert_eq!(timeout["ok"], false);
    assert!(
        timeout["detail"]
            .as_str()
            .unwrap()
            .contains("did not answer within 300ms"),
        "{timeout}"
    );
    // The timeouts fire one event at a time; nothing is sent to the client.
    hook.wait_for_within("never", 3, WAIT).await;
    ws.expect_silence(Duration::from_millis(500)).await;
    ws.close().await;
    // Every event still reaches the webhook, in order, before the socket's `disconnected`.
    let never = hook.wait_for_within("never", 20, LONG).await;
    let ids: Vec<String> = never.iter().map(|r| r.body[2..4].to_owned()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("{i}[")[..2].to_owned()).collect();
    assert_eq!(ids, expected, "events in the order they were sent");
    lanes_drained(&emu, std::slice::from_ref(&socket)).await;
    let reasons = assert_one_disconnected_each(|| hook.events(), &[socket], WAIT).await;
    assert_eq!(reasons, [""]);
    assert!(
        !emu.lines_of("warning")
            .iter()
            .any(|v| v["message"].as_str().unwrap_or("").contains("dropped")),
        "nothing was dropped"
    );
    let peak = sampler.max_kib();
    assert!(peak < RSS_BOUND_KIB, "peak RSS {peak} KiB");
    emu.assert_healthy().await;
}
