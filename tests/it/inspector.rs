//! The inspector's endpoints against the real binary: the timeline stream (`/_emu/events`),
//! one entry's details, the session-file export (replayed by `sio-emu replay`), the actions
//! and resend, the ring's byte bound, a stream nobody reads, and the admin gate's refusals.

use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::util::*;

/// A live `GET /_emu/events` stream, read as server-sent events.
pub struct Stream {
    body: hyper::body::Incoming,
    buffer: String,
}

impl Stream {
    pub async fn open(emu: &Emu, query: &str) -> Stream {
        let base = emu.base();
        let authority = base.trim_start_matches("http://").to_owned();
        let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get(format!("/_emu/events{query}"))
            .header("host", authority)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Stream {
            body: res.into_body(),
            buffer: String::new(),
        }
    }

    /// The next message: (event name, data).
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let message: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message".to_owned();
                let mut data = None;
                for line in message.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = name.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = Some(d.to_owned());
                    }
                }
                match data {
                    Some(data) => return (event, data),
                    None => continue, // a comment (hello, ping)
                }
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("no timeline entry within the wait")
                .expect("the stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Timeline objects until one matches `pred`; returns all of them.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let (event, data) = self.next().await;
            if event != "message" {
                continue;
            }
            let value: Value = serde_json::from_str(&data).unwrap();
            let done = pred(&value);
            seen.push(value);
            if done {
                return seen;
            }
        }
    }
}

async fn get_json(emu: &Emu, path: &str) -> HttpReply {
    http("GET", &format!("{}{path}", emu.base()), &[], "").await
}

async fn post_json(emu: &Emu, path: &str, body: Value) -> HttpReply {
    let headers = [("content-type", "application/json")];
    http(
        "POST",
        &format!("{}{path}", emu.base()),
        &headers,
        &body.to_string(),
    )
    .await
}

/// A WebSocket client in `/` that emitted `hello` with ack id 1 and got its ack.
async fn acked_hello(emu: &Emu) -> WsClient {
    let mut client = WsClient::connect(emu, "chat", "").await.unwrap();
    assert!(client.join("/").await.starts_with("40"));
    client.send(r#"421["hello","world"]"#).await;
    assert_eq!(client.recv().await, r#"431["ok"]"#);
    client
}

fn of_type<'a>(seen: &'a [Value], kind: &str) -> Vec<&'a Value> {
    seen.iter().filter(|v| v["type"] == kind).collect()
}

#[tokio::test]
async fn the_timeline_streams_every_hop_and_an_entry_shows_the_call_as_sent() {
    let (hook, emu) = pair(&["--hub", "chat", "--anonymous"]).await;
    let mut stream = Stream::open(&emu, "").await;
    let _client = acked_hello(&emu).await;
    let seen = stream
        .until(|v| {
            v["type"] == "frame" && v["direction"] == "out" && v["socketio"]["type"] == "ACK"
        })
        .await;
    let seqs: Vec<u64> = seen.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );
    assert_eq!(of_type(&seen, "handshake")[0]["hub"], "chat");
    let hello_in = seen
        .iter()
        .find(|v| v["type"] == "frame" && v["socketio"]["event"] == "hello")
        .expect("the client's frame, decoded");
    assert_eq!(hello_in["direction"], "in");
    assert_eq!(hello_in["socketio"]["args"], json!(["world"]));
    assert_eq!(hello_in["socketio"]["ackId"], 1);
    let webhook = of_type(&seen, "webhook")
        .into_iter()
        .find(|v| v["event"] == "hello")
        .expect("the webhook call")
        .clone();
    assert_eq!(webhook["status"], 200);
    assert_eq!(of_type(&seen, "ackForwarded")[0]["packet"], r#"431["ok"]"#);

    let sent = &hook.named("hello")[0];
    let details = get_json(&emu, &format!("/_emu/entries/{}", webhook["seq"])).await;
    assert_eq!(details.status, 200, "{}", details.body);
    let details = details.json();
    let header = |name: &str| -> String {
        details["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    for name in [
        "ce-id",
        "ce-signature",
        "ce-eventname",
        "ce-connectionid",
        "ce-time",
    ] {
        assert_eq!(
            header(name),
            sent.header(name),
            "{name} as the handler received it"
        );
    }
    assert_eq!(details["request"]["body"], sent.body.as_str());
    assert_eq!(details["response"]["status"], 200);
    assert_eq!(details["response"]["body"], r#"431["ok"]"#);
    let curl = details["curl"].as_str().unwrap();
    assert!(curl.contains(&format!("ce-signature: {}", sent.header("ce-signature"))));
    assert!(
        curl.contains(
            &hook
                .template()
                .replace("{hub}", "chat")
                .replace("{event}", "hello")
        )
    );

    let missing = get_json(&emu, "/_emu/entries/999999").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn an_export_replays_against_the_same_handler() {
    let (hook, emu) = pair(&["--hub", "chat", "--anonymous"]).await;
    let client = acked_hello(&emu).await;
    client.close().await;
    hook.wait_for("disconnected", 1).await;
    let export = get_json(&emu, "/_emu/export").await;
    assert_eq!(export.status, 200);
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = export
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines.iter().filter(|l| l["type"] == "header").count(), 1);
    let events: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "webhook")
        .map(|l| l["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["connect", "connected", "hello", "disconnected"]);

    let path = std::env::temp_dir().join(format!("sio-emu-export-{}.jsonl", std::process::id()));
    std::fs::write(&path, &export.body).unwrap();
    let file = path.to_string_lossy().into_owned();
    let template = hook.template();
    let args = ["replay", &file, "--target", &template, "--rest-port", "0"].map(str::to_owned);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin())
            .args(args)
            .env_remove("SIO_EMU_ACCESS_KEY")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn actions_reach_the_socket_and_are_not_the_handlers_rest_calls() {
    let (_hook, emu) = pair(&["--hub", "chat", "--anonymous"]).await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    let answer = client.join("/").await;
    let socket: Value = serde_json::from_str(answer.trim_start_matches("40")).unwrap();
    let socket_id = socket["sid"].as_str().unwrap().to_owned();

    let emit = json!({"hub": "chat", "to": "socket", "socketId": socket_id, "event": "srv", "args": [1, "x"]});
    let reply = post_json(&emu, "/_emu/actions/emit", emit).await;
    assert_eq!(reply.json()["matched"], 1, "{}", reply.body);
    assert_eq!(client.recv().await, r#"42["srv",1,"x"]"#);

    let join = json!({"hub": "chat", "socketId": socket_id, "room": "lobby"});
    assert_eq!(
        post_json(&emu, "/_emu/actions/join", join).await.status,
        200
    );
    let view = get_json(&emu, "/_emu/connections").await.json();
    let rooms = &view["hubs"][0]["connections"][0]["sockets"][0]["rooms"];
    assert!(
        rooms.as_array().unwrap().contains(&json!("lobby")),
        "{view}"
    );
    let to_room = json!({"hub": "chat", "to": "room", "room": "lobby", "event": "in-lobby"});
    assert_eq!(
        post_json(&emu, "/_emu/actions/emit", to_room).await.json()["matched"],
        1
    );
    assert_eq!(client.recv().await, r#"42["in-lobby"]"#);

    let unknown = json!({"hub": "chat", "socketId": "nope", "room": "lobby"});
    assert_eq!(
        post_json(&emu, "/_emu/actions/leave", unknown).await.status,
        404
    );

    let export = get_json(&emu, "/_emu/export").await.body;
    assert!(
        !export.contains("\"type\":\"rest\""),
        "actions are not REST calls"
    );
    let admin = emu
        .wait_log("an action's admin line", |v| {
            v["type"] == "admin" && v["path"] == "/_emu/actions/join"
        })
        .await;
    assert_eq!(admin["origin"], "inspector");

    let disconnect = json!({"hub": "chat", "socketId": socket_id});
    assert_eq!(
        post_json(&emu, "/_emu/actions/disconnect", disconnect)
            .await
            .status,
        200
    );
    assert_eq!(client.recv().await, "41");
}

#[tokio::test]
async fn a_resend_is_re_signed_with_a_fresh_ce_id() {
    let (hook, emu) = pair(&["--hub", "chat", "--anonymous"]).await;
    let _client = acked_hello(&emu).await;
    let mut stream = Stream::open(&emu, "").await;
    let seen = stream
        .until(|v| v["type"] == "webhook" && v["event"] == "hello")
        .await;
    let seq = seen.last().unwrap()["seq"].clone();
    let reply = post_json(&emu, "/_emu/resend", json!({ "seq": seq })).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = reply.json();
    assert_eq!(reply["old"]["body"], r#"431["ok"]"#);
    assert_eq!(reply["new"]["body"], r#"431["ok"]"#);
    let calls = hook.wait_for("hello", 2).await;
    assert_ne!(calls[0].header("ce-id"), calls[1].header("ce-id"));
    assert_eq!(
        calls[0].header("ce-signature"),
        calls[1].header("ce-signature")
    );
    assert_eq!(calls[0].body, calls[1].body);
    let new = stream.until(|v| v["seq"] == reply["seq"]).await;
    assert_eq!(new.last().unwrap()["origin"], "inspector");
    let export = get_json(&emu, "/_emu/export").await.body;
    let hellos = export.matches("\"event\":\"hello\"").count();
    assert_eq!(hellos, 1, "a resend is not part of the session");
}

#[tokio::test]
async fn the_ring_stays_within_its_bound_and_a_stream_nobody_reads_never_slows_serving() {
    let (_hook, emu) = pair(&[
        "--hub",
        "chat",
        "--anonymous",
        "--inspector-buffer",
        "200000",
    ])
    .await;
    // Opened, never read: its queue fills, entries are dropped for it and counted.
    let mut idle = Stream::open(&emu, "").await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert!(client.join("/").await.starts_with("40"));
    let payload = "p".repeat(2000);
    let events = 5000;
    for id in 0..events {
        client.send(&format!(r#"42{id}["e","{payload}"]"#)).await;
        assert_eq!(client.recv().await, format!(r#"43{id}["ok"]"#));
    }
    let status = get_json(&emu, "/_emu/status").await.json();
    let ring = &status["ring"];
    assert!(ring["bytes"].as_u64().unwrap() <= 200_000, "{status}");
    assert!(ring["evicted"].as_u64().unwrap() > 0, "{status}");
    let export = get_json(&emu, "/_emu/export").await;
    assert!(
        export.body.len() < 400_000,
        "the export is the ring: {}",
        export.body.len()
    );
    // Read now: first the count of what was dropped, then what was kept.
    loop {
        let (event, _) = idle.next().await;
        if event == "dropped" {
            break;
        }
    }
    // Positive control: the stream carries new entries again once it is read.
    client.send(r#"42999999["after"]"#).await;
    assert_eq!(client.recv().await, r#"43999999["ok"]"#);
    idle.until(|v| v["type"] == "webhook" && v["event"] == "after")
        .await;
}

#[tokio::test]
async fn foreign_pages_cannot_read_the_stream_or_export() {
    let (_hook, emu) = pair(&["--hub", "chat", "--anonymous"]).await;
    let base = emu.base();
    let port = base.rsplit(':').next().unwrap().to_owned();
    for path in ["/_emu/events", "/_emu/export", "/_emu/entries/1", "/_emu/"] {
        let url = format!("{base}{path}");
        let origin = http("GET", &url, &[("origin", "http://evil.example")], "").await;
        assert_eq!(origin.status, 403, "{path}: {}", origin.body);
        let site = http("GET", &url, &[("sec-fetch-site", "cross-site")], "").await;
        assert_eq!(site.status, 403, "{path}");
        if path != "/_emu/events" {
            let own = format!("http://localhost:{port}");
            let same = http("GET", &url, &[("origin", own.as_str())], "").await;
            assert_ne!(same.status, 403, "{path}: its own page may");
        }
    }
    let inspector = emu.ready["inspector"].as_str().unwrap();
    assert_eq!(inspector, format!("http://localhost:{port}/_emu/"));
    let page = get_json(&emu, "/_emu/").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].starts_with("text/html"));
    assert!(
        page.body.contains(r#"<script src="/_emu/inspector.js">"#),
        "the page loads its own script"
    );
    assert!(!page.body.contains("https://"), "no external resource");
    let script = get_json(&emu, "/_emu/inspector.js").await;
    assert_eq!(script.status, 200);
    assert!(
        script.body.contains("EventSource"),
        "the page's script is the inspector"
    );
    assert!(!script.body.contains("https://"), "no external resource");
}

#[tokio::test]
async fn one_fault_rule_can_be_removed() {
    let (_hook, emu) = pair(&["--hub", "chat", "--anonymous"]).await;
    let url = format!("{}/_emu/faults", emu.base());
    for rule in ["event=connect,status=500", "event=hello,delay=1s"] {
        assert_eq!(http("POST", &url, &[], rule).await.status, 201);
    }
    let one = format!("{url}?rule=event%3Dconnect%2Cstatus%3D500");
    assert_eq!(http("DELETE", &one, &[], "").await.status, 204);
    assert_eq!(http("DELETE", &one, &[], "").await.status, 404);
    let left = http("GET", &url, &[], "").await.json();
    assert_eq!(left["faults"], json!(["event=hello,delay=1s"]));
}
