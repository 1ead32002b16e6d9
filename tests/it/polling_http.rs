//! Long-polling requests over raw TCP, against the server's own HTTP/1 path for them: pipelined
//! requests, a head split across many writes, bodies over maxPayload, a head that never ends,
//! a client that vanishes while its GET is parked, HTTP/1.0 and `Connection: close`, the bytes
//! of an answer as hyper writes them, and a request for another surface on a connection that
//! began with long-polling (handed to hyper).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::util::*;

const HUB: &str = "lite";

/// One raw HTTP/1 connection, reading answers one at a time.
struct Raw {
    stream: TcpStream,
    read: Vec<u8>,
}

/// An answer: its head (status line and headers, as sent, `date` value masked) and body.
#[derive(Debug)]
struct Answer {
    head: String,
    body: String,
}

impl Answer {
    fn status(&self) -> u16 {
        self.head.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

impl Raw {
    async fn open(emu: &Emu) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
        Raw {
            stream,
            read: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more; false at the end of the stream.
    async fn more(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.read.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!("nothing within {WAIT:?}; read so far: {:?}", self.text()),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.read).into_owned()
    }

    /// The next whole answer (`Content-Length` framed).
    async fn answer(&mut self) -> Answer {
        loop {
            if let Some(end) = self.text().find("\r\n\r\n") {
                let head = self.text()[..end].to_owned();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                if self.read.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&self.read[end + 4..end + 4 + len]);
                    let answer = Answer {
                        head: mask_date(&head),
                        body: body.into_owned(),
                    };
                    self.read.drain(..end + 4 + len);
                    return answer;
                }
            }
            assert!(self.more().await, "closed mid-answer: {:?}", self.text());
        }
    }

    /// The server closes the connection with nothing more sent.
    async fn expect_closed(&mut self) {
        while self.more().await {}
        assert_eq!(self.text(), "", "unexpected bytes before the close");
    }
}

/// A head with its `date` value replaced by `<date>` (after checking its shape).
fn mask_date(head: &str) -> String {
    head.lines()
        .map(|l| match l.strip_prefix("date: ") {
            Some(date) => {
                assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
                "date: <date>".to_owned()
            }
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn path(query: &str) -> String {
    format!("/clients/socketio/hubs/{HUB}/?EIO=4&transport=polling{query}")
}

fn get(query: &str, extra: &str) -> Vec<u8> {
    format!("GET {} HTTP/1.1\r\nhost: x\r\n{extra}\r\n", path(query)).into_bytes()
}

fn post(query: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: {}\r\n\r\n{body}",
        path(query),
        body.len()
    )
    .into_bytes()
}

fn sid_of_open(body: &str) -> String {
    let open: serde_json::Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn answers_carry_the_bytes_hyper_wrote() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let mut raw = Raw::open(&emu).await;
    raw.send(&get("", "origin: http://page.example\r\n")).await;
    let open = raw.answer().await;
    assert_eq!(
        open.head,
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=UTF-8\r\naccess-control-allow-origin: http://page.example\r\naccess-control-allow-credentials: true\r\ncontent-length: {}\r\ndate: <date>",
            open.body.len()
        )
    );
    let sid = sid_of_open(&open.body);
    raw.send(&post(&format!("&sid={sid}"), "40")).await;
    let ok = raw.answer().await;
    assert_eq!(
        ok.head,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\ndate: <date>"
    );
    assert_eq!(ok.body, "ok");
    raw.send(&get("&sid=nope", "")).await;
    let unknown = raw.answer().await;
    let body = r#"{"code":1,"message":"Session ID unknown"}"#;
    assert_eq!(
        unknown.head,
        format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\ndate: <date>",
            body.len()
        )
    );
    assert_eq!(unknown.body, body);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let mut raw = Raw::open(&emu).await;
    raw.send(&get("", "")).await;
    let sid = sid_of_open(&raw.answer().await.body);
    // The join, the GET that collects its answer, and a bad request: one write.
    let mut three = post(&format!("&sid={sid}"), "40");
    three.extend(get(&format!("&sid={sid}"), ""));
    three.extend(get("&sid=nope", ""));
    raw.send(&three).await;
    assert_eq!(raw.answer().await.body, "ok");
    let joined = raw.answer().await;
    assert!(joined.body.starts_with("40{"), "{joined:?}");
    assert_eq!(raw.answer().await.status(), 400);
    hook.wait_for("connected", 1).await;
}

#[tokio::test]
async fn a_head_split_across_many_writes_is_served() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let mut raw = Raw::open(&emu).await;
    let request = get(
        "",
        "origin: http://page.example\r\nuser-agent: slow but steady\r\n",
    );
    for byte in request.chunks(1) {
        raw.send(byte).await;
        raw.stream.flush().await.unwrap();
    }
    let open = raw.answer().await;
    assert_eq!(open.status(), 200, "{open:?}");
    let sid = sid_of_open(&open.body);
    // A body split too, at the worst places.
    let request = post(&format!("&sid={sid}"), "40");
    for part in request.chunks(3) {
        raw.send(part).await;
    }
    assert_eq!(raw.answer().await.body, "ok");
}

#[tokio::test]
async fn bodies_over_max_payload_are_refused_counted_in_full() {
    let (hook, emu) = pair(&["--anonymous", "--max-payload", "100"]).await;
    for framing in ["length", "chunked", "length, body still coming"] {
        let (reply, open) = poll_handshake(&emu, HUB, "").await;
        assert_eq!(reply.status, 200);
        let sid = open["sid"].as_str().unwrap().to_owned();
        assert_eq!(poll_post(&emu, HUB, &sid, "40").await.body, "ok");
        let mut raw = Raw::open(&emu).await;
        let request = match framing {
            "length" => post(&format!("&sid={sid}"), &"4".repeat(101)),
            "chunked" => {
                // Twenty-one chunks of five bytes: each small, 105 in all.
                let mut r = format!(
                    "POST {} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
                    path(&format!("&sid={sid}"))
                );
                for _ in 0..21 {
                    r.push_str("5\r\n44444\r\n");
                }
                r.push_str("0\r\n\r\n");
                r.into_bytes()
            }
            _ => format!(
                "POST {} HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n4444",
                path(&format!("&sid={sid}"))
            )
            .into_bytes(),
        };
        raw.send(&request).await;
        let refused = raw.answer().await;
        assert_eq!(
            refused.head, "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\ndate: <date>",
            "{framing}"
        );
        if framing.contains("still coming") {
            // The rest of the body is not there to drain: the connection closes.
            raw.expect_closed().await;
        } else {
            // The whole body had arrived: drained, and the connection serves on.
            raw.send(&get("", "")).await;
            assert_eq!(raw.answer().await.status(), 200, "{framing}");
        }
    }
    let gone = hook.wait_for("disconnected", 3).await;
    assert!(gone.iter().all(|d| d.json()["reason"] == "transport error"));
    // At the limit exactly (positive control): accepted.
    let (_, open) = poll_handshake(&emu, HUB, "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    let at_limit = format!("42[\"pad\",\"{}\"]", "x".repeat(88));
    assert_eq!(at_limit.len(), 100);
    let mut raw = Raw::open(&emu).await;
    raw.send(&post(&format!("&sid={sid}"), &at_limit)).await;
    assert_eq!(raw.answer().await.body, "ok");
}

#[tokio::test]
async fn a_head_that_never_finishes_is_closed() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let mut raw = Raw::open(&emu).await;
    raw.send(b"GET /clients/socketio/hubs/lite/?EIO=4&transport=polling HTTP/1.1\r\nhost: x\r\n")
        .await;
    // A complete head on another connection is served meanwhile (positive control).
    let (reply, _) = poll_handshake(&emu, HUB, "").await;
    assert_eq!(reply.status, 200);
    // The header-read timeout (30 s) closes the unfinished one without an answer.
    let started = Instant::now();
    let mut chunk = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(60), raw.stream.read(&mut chunk)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "still open after {:?}: {read:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_gone_while_its_get_is_parked_still_ends_with_disconnected() {
    let (hook, emu) = pair(&[
        "--anonymous",
        "--ping-interval",
        "1s",
        "--ping-timeout",
        "1s",
    ])
    .await;
    let (_, open) = poll_handshake(&emu, HUB, "").await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(poll_post(&emu, HUB, &sid, "40").await.body, "ok");
    let joined = poll_get(&emu, HUB, &sid).await;
    assert!(joined.body.starts_with("40{"), "{joined:?}");
    hook.wait_for("connected", 1).await;
    // A GET that parks (nothing to send until the ping), then the client is gone.
    let mut raw = Raw::open(&emu).await;
    raw.send(&get(&format!("&sid={sid}"), "")).await;
    drop(raw);
    let gone = hook.wait_for("disconnected", 1).await;
    assert_eq!(gone[0].json()["reason"], "ping timeout");
}

#[tokio::test]
async fn http_1_0_and_connection_close() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let handshake = path("");
    // HTTP/1.0 without keep-alive: a 1.0 answer, then the close.
    let mut raw = Raw::open(&emu).await;
    raw.send(format!("GET {handshake} HTTP/1.0\r\n\r\n").as_bytes())
        .await;
    let open = raw.answer().await;
    assert!(
        open.head.starts_with(
            "HTTP/1.0 200 OK\r\ncontent-type: text/plain; charset=UTF-8\r\ncontent-length: "
        ),
        "{open:?}"
    );
    raw.expect_closed().await;
    // HTTP/1.0 with keep-alive: told so, and the connection serves a second request.
    let mut raw = Raw::open(&emu).await;
    let keep = format!("GET {handshake} HTTP/1.0\r\nconnection: keep-alive\r\n\r\n");
    raw.send(keep.as_bytes()).await;
    let open = raw.answer().await;
    assert!(
        open.head
            .contains("\r\nconnection: keep-alive\r\ncontent-length: "),
        "{open:?}"
    );
    raw.send(keep.as_bytes()).await;
    assert_eq!(raw.answer().await.status(), 200);
    // HTTP/1.1 with Connection: close: told so, then the close.
    let mut raw = Raw::open(&emu).await;
    raw.send(&get("", "connection: close\r\n")).await;
    let open = raw.answer().await;
    assert!(
        open.head
            .contains("\r\nconnection: close\r\ncontent-length: "),
        "{open:?}"
    );
    raw.expect_closed().await;
}

#[tokio::test]
async fn another_surface_on_a_polling_connection_is_served_by_hyper() {
    let (_hook, emu) = pair(&["--anonymous"]).await;
    let mut raw = Raw::open(&emu).await;
    raw.send(&get("", "")).await;
    assert_eq!(raw.answer().await.status(), 200);
    raw.send(b"GET /api/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let health = raw.answer().await;
    assert_eq!(
        health.head,
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\ndate: <date>",
            health.body.len()
        )
    );
    assert_eq!(health.body, r#"{"status":"healthy"}"#);
    // Hyper keeps the connection, long-polling included.
    raw.send(&get("", "")).await;
    assert_eq!(raw.answer().await.status(), 200);
    // A WebSocket still upgrades on a fresh connection (the handshake goes to hyper).
    let ws = WsClient::connect(&emu, HUB, "").await;
    assert!(ws.is_ok());
}
