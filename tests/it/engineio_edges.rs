//! Engine.IO edges the reference test suite checks, against the real binary: a closed session's
//! sid is unknown at once (no lingering `200 "1"`), a client's own close answers the held GET
//! with a noop, a second WebSocket for a session is accepted and then closed without disturbing
//! the session, and a WebSocket client that breaks the protocol receives a close frame with the
//! matching code (1002, 1007, 1009) instead of a bare TCP close. A session polled at the instant
//! its pong deadline passes is closed, even before its close timer runs.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::util::*;

const HUB: &str = "edges";

fn assert_unknown_sid(reply: &HttpReply) {
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"code": 1, "message": "Session ID unknown"}),
        "{reply:?}"
    );
}

/// A polling session whose default namespace is joined (its `40…` collected, pings left
/// unanswered); returns the sid.
async fn poll_joined(emu: &Emu) -> String {
    let (reply, open) = poll_handshake(emu, HUB, "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(poll_post(emu, HUB, &sid, "40").await.body, "ok");
    eventually_async("the namespace's 40", WAIT, async || {
        let got = poll_get(emu, HUB, &sid).await;
        assert_eq!(got.status, 200, "{got:?}");
        packets(&got.body)
            .iter()
            .any(|p| p.starts_with("40{"))
            .then_some(())
    })
    .await;
    sid
}

/// Starts a long-poll GET on its own connection.
fn spawn_get(emu: &Emu, sid: &str) -> tokio::task::JoinHandle<HttpReply> {
    let url = client_url(&emu.base(), HUB, &format!("transport=polling&sid={sid}"));
    tokio::spawn(async move { http("GET", &url, &[], "").await })
}

#[tokio::test]
async fn a_session_closed_by_ping_timeout_is_unknown_at_once() {
    let (hook, emu) = pair(&[
        "--anonymous",
        "--ping-interval",
        "300ms",
        "--ping-timeout",
        "200ms",
    ])
    .await;
    let sid = poll_joined(&emu).await;
    // No GET is held and no pong comes: the session times out.
    let gone = hook.wait_for("disconnected", 1).await;
    assert_eq!(gone[0].json()["reason"], "ping timeout");
    assert_unknown_sid(&poll_get(&emu, HUB, &sid).await);
    assert_unknown_sid(&poll_post(&emu, HUB, &sid, "3").await);
}

#[tokio::test]
async fn a_session_closed_by_an_invalid_packet_is_unknown_at_once() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let (_, open) = poll_handshake(&emu, HUB, "").await;
    let sid = open["sid"].as_str().unwrap();
    let bad = poll_post(&emu, HUB, sid, "abc").await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_unknown_sid(&poll_get(&emu, HUB, sid).await);
}

#[tokio::test]
async fn a_session_closed_by_the_server_is_unknown_at_once() {
    let (hook, emu) = pair(&["--anonymous", "--rest-anonymous"]).await;
    let sid = poll_joined(&emu).await;
    let url = format!(
        "{}/api/hubs/{HUB}/connections/{sid}?api-version=2024-01-01",
        emu.base()
    );
    let closed = http("DELETE", &url, &[], "").await;
    assert_eq!(closed.status, 204, "{closed:?}");
    hook.wait_for("disconnected", 1).await;
    assert_unknown_sid(&poll_get(&emu, HUB, &sid).await);
}

#[tokio::test]
async fn a_client_close_answers_the_held_get_with_a_noop() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    // The GET has to be held when the close arrives. Nothing tells the client when the server
    // holds it, so a GET that lost the race (it gets 400: the session was already gone) is
    // retried on a new session; the check itself runs on a GET that was held.
    for _ in 0..20 {
        let (_, open) = poll_handshake(&emu, HUB, "").await;
        let sid = open["sid"].as_str().unwrap().to_owned();
        let held = spawn_get(&emu, &sid);
        // A round trip on another connection, so the GET has most likely arrived.
        assert_eq!(
            http("GET", &format!("{}/api/health", emu.base()), &[], "")
                .await
                .status,
            200
        );
        assert_eq!(poll_post(&emu, HUB, &sid, "1").await.body, "ok");
        let got = held.await.unwrap();
        if got.status == 400 {
            assert_unknown_sid(&got);
            continue;
        }
        assert_eq!(got.status, 200, "{got:?}");
        assert_eq!(
            got.body, "6",
            "the held GET gets a noop, not the close packet"
        );
        assert_unknown_sid(&poll_get(&emu, HUB, &sid).await);
        return;
    }
    panic!("in 20 tries the GET never reached the session before the close");
}

#[tokio::test]
async fn a_second_websocket_is_accepted_then_closed_without_disturbing_the_session() {
    let (hook, emu) = pair(&["--anonymous"]).await;

    // A session born on WebSocket.
    let mut born = WsClient::connect(&emu, HUB, "").await.unwrap();
    let mut extra = WsClient::upgrade(&emu, HUB, &born.sid).await;
    assert_eq!(extra.ended().await, WsEnd::CloseFrame(None));
    assert!(born.join("/").await.starts_with("40{"));

    // A polling session, during and after its upgrade.
    let (_, open) = poll_handshake(&emu, HUB, "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    let mut ws = WsClient::upgrade(&emu, HUB, &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv().await, "3probe");
    let mut extra = WsClient::upgrade(&emu, HUB, &sid).await;
    assert_eq!(extra.ended().await, WsEnd::CloseFrame(None));
    ws.send("5").await;
    // Polling answers noops until the upgrade is complete, then 400.
    eventually_async("polling ending with the upgrade", WAIT, async || {
        let got = poll_get(&emu, HUB, &sid).await;
        if got.status == 400 {
            return Some(());
        }
        assert_eq!(got.body, "6", "{got:?}");
        None
    })
    .await;
    let mut extra = WsClient::upgrade(&emu, HUB, &sid).await;
    assert_eq!(extra.ended().await, WsEnd::CloseFrame(None));
    assert!(ws.join("/").await.starts_with("40{"));

    // Both sessions still work end to end.
    ws.send("421[\"after\"]").await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");
    born.send("422[\"after\"]").await;
    assert_eq!(born.recv().await, "432[\"ok\"]");
    hook.wait_for("after", 2).await;
    assert!(hook.named("disconnected").is_empty());
}

/// A text frame whose payload is not UTF-8 (tungstenite's `Message::Text` cannot carry one).
fn invalid_utf8_text() -> Message {
    Message::Frame(Frame::message(
        vec![b'4', 0xff, 0xfe],
        OpCode::Data(Data::Text),
        true,
    ))
}

#[tokio::test]
async fn protocol_breakers_get_a_close_frame_with_the_code() {
    let (_hook, emu) = pair(&["--anonymous", "--max-payload", "100"]).await;
    let cases: Vec<(&str, Message, u16)> = vec![
        ("invalid packet type", Message::text("9nine"), 1002),
        ("empty packet", Message::text(""), 1002),
        ("open packet from the client", Message::text("0{}"), 1002),
        ("invalid UTF-8", invalid_utf8_text(), 1007),
        (
            "frame over maxPayload",
            Message::text(format!("4{}", "x".repeat(200))),
            1009,
        ),
        (
            "frame far over maxPayload",
            Message::text(format!("4{}", "x".repeat(256 * 1024))),
            1009,
        ),
    ];
    for (what, message, code) in cases {
        let mut ws = WsClient::connect(&emu, HUB, "").await.unwrap();
        // The server may close before a large frame is fully written.
        let _ = ws.send_message(message).await;
        assert_eq!(ws.ended().await, WsEnd::CloseFrame(Some(code)), "{what}");
    }
}

/// Sessions polled at the instant their pong deadline passes are closed, however late their
/// timers run: each session's clock starts before its handshake answer reaches the client, so a
/// poll sent `pingInterval + pingTimeout` after that answer is past the session's deadline
/// whatever the scheduling, and must find the sid unknown (never the ping, never the close
/// packet of a session still open).
#[tokio::test]
async fn sessions_polled_exactly_at_their_pong_deadline_are_closed() {
    let (_hook, emu) = pair(&[
        "--anonymous",
        "--ping-interval",
        "300ms",
        "--ping-timeout",
        "200ms",
    ])
    .await;
    let mut polls = Vec::new();
    for _ in 0..20 {
        let (reply, open) = poll_handshake(&emu, HUB, "").await;
        let answered = tokio::time::Instant::now();
        assert_eq!(reply.status, 200, "{reply:?}");
        let heartbeat =
            open["pingInterval"].as_u64().unwrap() + open["pingTimeout"].as_u64().unwrap();
        assert_eq!(heartbeat, 500, "{open}");
        let deadline = answered + std::time::Duration::from_millis(heartbeat);
        let sid = open["sid"].as_str().unwrap();
        let url = client_url(&emu.base(), HUB, &format!("transport=polling&sid={sid}"));
        polls.push(tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            http("GET", &url, &[], "").await
        }));
    }
    for poll in polls {
        assert_unknown_sid(&poll.await.unwrap());
    }
}
