//! `sio-emu replay` end to end: the real binary replays session files against a Rust test
//! webhook (the harness's recording [`Webhook`]) that answers with acks and calls the replay's
//! REST sink back, and the tests check exit codes, the report and the rewritten files.
//!
//! Synthetic sessions are built line by line here, so each test states exactly what was
//! "recorded"; the last test records a real session with `serve --record` under load and cuts it
//! with `kill -9`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::util::{
    Emu, KEY, Recorded, Reply, WAIT, Webhook, Ws, ack_for, bin, eventually, free_port,
};

/// What the synthetic sessions' handler does: join rooms through REST, ack events.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// The sink's port, for the handler's REST calls.
    rest_port: u16,
    /// `join` calls AddConnectionsToGroups before acking.
    join_calls_rest: bool,
    /// The first ack argument of `chat`.
    chat_ack: &'static str,
    /// `chat` also broadcasts through SendToAll (not in the recording).
    chat_calls_rest: bool,
}

impl Behaviour {
    fn new(rest_port: u16) -> Self {
        Behaviour {
            rest_port,
            join_calls_rest: true,
            chat_ack: "ok",
            chat_calls_rest: false,
        }
    }

    /// The webhook's answer. Runs inside the webhook's task; the REST call is a short blocking
    /// request to the replay process (tests use the multi-threaded runtime).
    fn answer(&self, r: &Recorded) -> Reply {
        if r.header("ce-type") != "azure.webpubsub.user.message" {
            return Reply::ok();
        }
        match r.event() {
            "join" => {
                if self.join_calls_rest {
                    let status = rest_call(
                        self.rest_port,
                        "POST",
                        "/api/hubs/chat/:addToGroups?api-version=2024-01-01",
                        r#"{"groups":["0~L2NoYXQ~bG9iYnk"],"filter":"'0~L2NoYXQ~czE' in groups"}"#,
                    );
                    assert_eq!(
                        status, 200,
                        "the sink answers AddConnectionsToGroups with 200"
                    );
                }
                ack(r, json!(["joined", "lobby"]))
            }
            "chat" => {
                if self.chat_calls_rest {
                    let status = rest_call(
                        self.rest_port,
                        "POST",
                        "/api/hubs/chat/:send?api-version=2024-01-01",
                        r#"42/chat,["said","hi"]"#,
                    );
                    assert_eq!(status, 202, "the sink answers SendToAll with 202");
                }
                let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
                ack(r, json!([self.chat_ack, now.to_string()]))
            }
            _ => Reply::status(204, ""),
        }
    }
}

fn ack(r: &Recorded, args: Value) -> Reply {
    match ack_for(&r.body, &args) {
        Some(packet) => Reply::status(200, &packet),
        None => Reply::status(204, ""),
    }
}

/// One blocking HTTP/1.1 request to 127.0.0.1:`port`; returns the status code.
fn rest_call(port: u16, method: &str, path: &str, body: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("reach the sink");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost:{port}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Synthetic sessions
// ---------------------------------------------------------------------------------------------

fn header() -> Value {
    json!({"type":"header","format":"sio-emu-session","version":1,"sioEmuVersion":"0.1.0",
           "hubs":["chat"],"endpoint":"http://localhost:8080","startedAt":"2026-01-01T00:00:00.000Z"})
}

fn webhook(t: f64, event: &str, body: &str, status: u16, answer: &str) -> Value {
    let ce_type = if ["connect", "connected", "disconnected"].contains(&event) {
        format!("azure.webpubsub.sys.{event}")
    } else {
        "azure.webpubsub.user.message".to_owned()
    };
    json!({"type":"webhook","t":t,"hub":"chat","event":event,"ceType":ce_type,"namespace":"/chat",
           "socketId":"s1","connectionId":"c1","userId":"alice","body":body,
           "response":{"status":status,"contentType":"text/plain","body":answer,"latencyMs":5.0}})
}

/// The chat session: connect, connected, join (with its REST call), chat, disconnected.
fn chat_session() -> Vec<Value> {
    vec![
        header(),
        json!({"type":"handshake","t":0.5,"hub":"chat","connectionId":"c1","transport":"websocket",
               "userId":"alice","query":{"EIO":"4","access_token":"<redacted>"},"refused":null}),
        webhook(
            1.0,
            "connect",
            r#"{"claims":{},"query":{},"headers":{},"subprotocols":[],"clientCertificates":[]}"#,
            200,
            "",
        ),
        webhook(8.0, "connected", "{}", 200, ""),
        json!({"type":"frame","t":9.0,"hub":"chat","connectionId":"c1","direction":"in",
               "packet":"42/chat,1[\"join\",\"lobby\"]"}),
        json!({"type":"rest","t":12.0,"method":"POST","operation":"AddConnectionsToGroups","hub":"chat",
               "path":"/api/hubs/chat/:addToGroups","query":{"api-version":["2024-12-01"]},
               "body":r#"{"filter":"'0~L2NoYXQ~czE' in groups","groups":["0~L2NoYXQ~bG9iYnk"]}"#,"status":200}),
        webhook(
            10.0,
            "join",
            r#"42/chat,1["join","lobby"]"#,
            200,
            r#"43/chat,1["joined","lobby"]"#,
        ),
        webhook(
            30.0,
            "chat",
            r#"42/chat,2["chat","hi"]"#,
            200,
            r#"43/chat,2["ok","2026-01-01T00:00:00.000Z"]"#,
        ),
        webhook(31.0, "typing", r#"42/chat,["typing"]"#, 204, ""),
        webhook(50.0, "disconnected", r#"{"reason":""}"#, 200, ""),
        json!({"type":"closed","t":51.0,"hub":"chat","connectionId":"c1","reason":""}),
    ]
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("sio-emu-replay-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, lines: &[Value]) -> PathBuf {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.write_text(name, &text)
    }

    fn write_text(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The result of one `sio-emu replay` run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `sio-emu replay <session> --target <hook> --rest-port <port> <extra>` off the runtime's
/// threads (the webhook keeps serving meanwhile).
async fn replay(session: &Path, hook: &Webhook, rest_port: u16, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        "replay".into(),
        session.display().to_string(),
        "--target".into(),
        hook.template(),
        "--rest-port".into(),
        rest_port.to_string(),
        "--color".into(),
        "never".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run_binary(args).await
}

async fn run_binary(args: Vec<String>) -> Run {
    let output: Output = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .args(&args)
            .env_remove("SIO_EMU_ACCESS_KEY")
            .stdin(Stdio::null())
            .output()
            .expect("run sio-emu replay")
    })
    .await
    .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn hook_with(behaviour: Behaviour) -> Webhook {
    Webhook::with(move |r| behaviour.answer(r)).await
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faithful_handler_matches_and_gets_resigned_events() {
    let dir = Scratch::new("faithful");
    let session = dir.write("chat.jsonl", &chat_session());
    let port = free_port();
    let hook = hook_with(Behaviour::new(port)).await;

    let run = replay(&session, &hook, port, &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    for name in [
        "connect",
        "connected",
        "join",
        "chat",
        "typing",
        "disconnected",
    ] {
        assert!(
            run.stdout.contains(name),
            "{name} not reported: {}",
            run.all()
        );
    }
    assert!(run.stdout.contains("all events matched"), "{}", run.all());
    // The handler made no signed REST call: a warning, never a failure.
    assert!(
        run.stderr
            .contains("AddConnectionsToGroups call with a token"),
        "{}",
        run.all()
    );

    // Every event arrived in recorded order, signed with the development key, with fresh ids.
    let events = hook.events();
    let names: Vec<&str> = events.iter().map(Recorded::event).collect();
    assert_eq!(
        names,
        [
            "connect",
            "connected",
            "join",
            "chat",
            "typing",
            "disconnected"
        ]
    );
    let signature = sio_emu::auth::ce_signature(&[KEY.to_owned()], "c1");
    for e in &events {
        assert_eq!(e.header("ce-signature"), signature);
        assert_eq!(e.header("ce-hub"), "chat");
        assert_eq!(e.header("ce-namespace"), "/chat");
        assert_eq!(e.header("ce-userId"), "alice");
        assert!(!e.header("ce-time").is_empty());
        assert!(e.path.starts_with("/api/chat/"), "{}", e.path);
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e.header("ce-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "ce-ids are unique");
    assert_eq!(events[3].body, r#"42/chat,2["chat","hi"]"#);
    assert_eq!(events[3].header("content-type"), "text/plain");

    // A second run sends new ce-ids.
    let again = replay(&session, &hook, port, &["--format", "json"]).await;
    assert_eq!(again.code, 0, "{}", again.all());
    let summary: Value =
        serde_json::from_str(again.stdout.lines().last().unwrap()).expect("JSON summary line");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["events"], 6);
    assert_eq!(summary["matched"], 6);
    let later = &hook.events()[6..];
    assert!(later.iter().all(|e| !ids.contains(&e.header("ce-id"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_ack_is_a_mismatch_naming_the_event() {
    let dir = Scratch::new("ack");
    let session = dir.write("chat.jsonl", &chat_session());
    let port = free_port();
    let hook = hook_with(Behaviour {
        chat_ack: "nope",
        ..Behaviour::new(port)
    })
    .await;

    let run = replay(&session, &hook, port, &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with('✗'))
        .unwrap_or_else(|| panic!("no ✗ line: {}", run.all()));
    assert!(
        line.contains("chat") && line.contains("chat.jsonl:8"),
        "{line}"
    );
    assert!(run.stdout.contains("body differs"), "{}", run.all());
    assert!(
        run.stdout
            .contains(r#"expected: 43/chat,2["ok","2026-01-01T00:00:00.000Z"]"#),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .contains(r#"payload $[0]: expected "ok", got "nope""#),
        "{}",
        run.all()
    );
    // The time in the ack differs too, but times are volatile: not reported.
    assert!(!run.stdout.contains("payload $[1]"), "{}", run.all());
    assert!(
        run.stdout.contains("1 event(s) mismatched"),
        "{}",
        run.all()
    );

    // Ignore rules silence exactly what they name.
    let by_path = replay(&session, &hook, port, &["--ignore", "body:$[0]"]).await;
    assert_eq!(by_path.code, 0, "{}", by_path.all());
    let by_event = replay(&session, &hook, port, &["--ignore", "event:ch*"]).await;
    assert_eq!(by_event.code, 0, "{}", by_event.all());
    assert!(by_event.stdout.contains("(ignored)"), "{}", by_event.all());
    let unrelated = replay(&session, &hook, port, &["--ignore", "event:join"]).await;
    assert_eq!(unrelated.code, 1, "{}", unrelated.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_rest_call_is_reported_missing() {
    let dir = Scratch::new("skip");
    let session = dir.write("chat.jsonl", &chat_session());
    let port = free_port();
    let hook = hook_with(Behaviour {
        join_calls_rest: false,
        ..Behaviour::new(port)
    })
    .await;

    let run = replay(&session, &hook, port, &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with('✗'))
        .unwrap_or_else(|| panic!("no ✗ line: {}", run.all()));
    assert!(line.contains("join"), "{line}");
    assert!(
        run.stdout
            .contains("1 recorded REST call(s) missing (the handler did not make them):"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(
            r#"- AddConnectionsToGroups [all connections] body {"filter":"'0~L2NoYXQ~czE' in groups","groups":["0~L2NoYXQ~bG9iYnk"]}"#
        ),
        "{}",
        run.all()
    );
    // Without REST comparison for that operation the rest matches.
    let ignored = replay(&session, &hook, port, &["--ignore", "rest:AddConnections*"]).await;
    assert_eq!(ignored.code, 0, "{}", ignored.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_exit_2_before_anything_is_compared() {
    let dir = Scratch::new("closed");
    let session = dir.write("chat.jsonl", &chat_session());
    let closed = free_port();
    for extra in [&[][..], &["--no-preflight"][..]] {
        let mut args = vec![
            "replay".to_owned(),
            session.display().to_string(),
            "--target".into(),
            format!("http://127.0.0.1:{closed}/{{event}}"),
            "--rest-port".into(),
            "0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = run_binary(args).await;
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(run.stderr.contains("could not be reached"), "{}", run.all());
        assert!(run.stderr.contains("connection refused"), "{}", run.all());
        assert!(
            run.stderr.contains("hint: start the event handler"),
            "{}",
            run.all()
        );
        assert!(!run.stdout.contains('✗'), "{}", run.all());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sessions_are_exit_2_with_the_line_number() {
    let dir = Scratch::new("invalid");
    let port = free_port();
    let hook = hook_with(Behaviour::new(port)).await;

    let mut lines = chat_session();
    lines.insert(2, json!({"type":"webhook","t":1}));
    let bad = dir.write("bad.jsonl", &lines);
    let run = replay(&bad, &hook, port, &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("bad.jsonl:3:"), "{}", run.all());
    assert!(run.stderr.contains("missing field"), "{}", run.all());
    assert!(
        hook.events().is_empty(),
        "nothing is sent for an invalid file"
    );

    let garbage = dir.write_text("garbage.jsonl", &format!("{}\nnot json\n", header()));
    let run = replay(&garbage, &hook, port, &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("garbage.jsonl:2: not a JSON object"),
        "{}",
        run.all()
    );

    let mut newer = header();
    newer["version"] = json!(99);
    let newer = dir.write("newer.jsonl", &[newer]);
    let run = replay(&newer, &hook, port, &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("format version 99"), "{}", run.all());

    let missing = dir.path("missing.jsonl");
    let run = replay(&missing, &hook, port, &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("cannot read session"), "{}", run.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_rewrites_only_what_changed() {
    let dir = Scratch::new("update");
    let session = dir.write("chat.jsonl", &chat_session());
    let before = std::fs::read_to_string(&session).unwrap();
    let port = free_port();
    // A deliberate change: `join` no longer calls REST, `chat` acks differently and broadcasts.
    let hook = hook_with(Behaviour {
        join_calls_rest: false,
        chat_ack: "changed",
        chat_calls_rest: true,
        ..Behaviour::new(port)
    })
    .await;

    let run = replay(&session, &hook, port, &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let update = replay(&session, &hook, port, &["--update"]).await;
    assert_eq!(update.code, 0, "{}", update.all());
    assert!(
        update.stdout.contains("2 event(s) updated in the file"),
        "{}",
        update.all()
    );
    let after = replay(&session, &hook, port, &[]).await;
    assert_eq!(after.code, 0, "{}", after.all());
    assert!(
        after.stdout.contains("all events matched"),
        "{}",
        after.all()
    );

    let text = std::fs::read_to_string(&session).unwrap();
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = text.lines().collect();
    // Lines of unchanged events, frames, handshakes and closes are kept byte for byte.
    for kept in [0, 1, 2, 3, 4, 8, 9, 10] {
        assert!(
            new.contains(&old[kept]),
            "line {} was rewritten:\n{text}",
            kept + 1
        );
    }
    // The old REST call of `join` is gone, the new one of `chat` is pinned to it.
    let rest: Vec<Value> = new
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "rest")
        .collect();
    assert_eq!(rest.len(), 1, "{text}");
    assert_eq!(rest[0]["operation"], "SendToAll");
    assert_eq!(
        rest[0]["event"], 4,
        "the fourth webhook line is `chat`: {text}"
    );
    assert!(text.contains(r#"43/chat,2[\"changed\""#), "{text}");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");

    // Updating a session that matches leaves it alone.
    let again = replay(&session, &hook, port, &["--update"]).await;
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(
        again.stdout.contains("nothing to update"),
        "{}",
        again.all()
    );
    assert_eq!(std::fs::read_to_string(&session).unwrap(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_has_one_case_per_event_and_is_well_formed() {
    let dir = Scratch::new("junit");
    let session = dir.write("chat <&>.jsonl", &chat_session());
    let port = free_port();
    let hook = hook_with(Behaviour {
        chat_ack: "<&\"'>",
        ..Behaviour::new(port)
    })
    .await;
    let report = dir.path("report.xml");
    let run = replay(
        &session,
        &hook,
        port,
        &[
            "--junit",
            &report.display().to_string(),
            "--ignore",
            "event:typing",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.all());
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{xml}"
    );
    check_well_formed(&xml);
    assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert_eq!(xml.matches("<skipped ").count(), 1, "{xml}");
    assert!(
        xml.contains("<testsuites name=\"sio-emu replay\" tests=\"6\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"#4 chat /chat socket s1 (line 8)\""),
        "{xml}"
    );
    assert!(xml.contains("chat &lt;&amp;&gt;.jsonl"), "{xml}");
    assert!(xml.contains("&lt;&amp;\\&quot;&apos;&gt;"), "{xml}");
}

/// A minimal XML well-formedness check: tags nest and close, attributes are quoted, `&` starts
/// an entity, no raw `<` in text.
fn check_well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .unwrap();
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag.split_whitespace().next().unwrap().to_owned();
            let attrs = &tag[name.len()..];
            assert_eq!(
                attrs.matches('"').count() % 2,
                0,
                "unbalanced quotes in <{tag}>"
            );
            check_text(&attrs.replace('"', ""));
            if !self_closing {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
}

fn check_text(text: &str) {
    assert!(!text.contains('<'), "raw < in {text:?}");
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| entity.starts_with(e)),
            "bare & in {text:?}"
        );
    }
}

/// The next text frame, answering pings; `None` once the connection is gone.
async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                ws.send(Message::Text("3".into())).await.ok()?;
            }
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

/// One raw Socket.IO client that sends events (half of them with an ack id) until `stop`,
/// tolerating the service vanishing.
async fn chatter(base: String, stop: Arc<AtomicBool>, sent: Arc<AtomicUsize>) {
    let url = format!("{base}/clients/socketio/hubs/chat/?EIO=4&transport=websocket")
        .replacen("http://", "ws://", 1);
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
        return;
    };
    let Some(_open) = next_text(&mut ws).await else {
        return;
    };
    if ws.send(Message::Text("40/chat,".into())).await.is_err() {
        return;
    }
    let Some(joined) = next_text(&mut ws).await else {
        return;
    };
    assert!(joined.starts_with("40/chat,"), "{joined}");
    let mut i: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let with_ack = i.is_multiple_of(2);
        let packet = if with_ack {
            format!("42/chat,{i}[\"chat\",{i}]")
        } else {
            format!("42/chat,[\"note\",{i}]")
        };
        if ws.send(Message::Text(packet.into())).await.is_err() {
            return;
        }
        sent.fetch_add(1, Ordering::SeqCst);
        if with_ack && next_text(&mut ws).await.is_none() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_cut_by_kill_9_under_load_replays_up_to_its_last_line() {
    let dir = Scratch::new("kill9");
    let record = dir.path("load.jsonl");
    let hook = Webhook::start().await; // accepts every connect, acks with ["ok"]
    let template = hook.template();
    let record_arg = record.display().to_string();
    let emu = Emu::start(&[
        "--anonymous",
        "--webhook",
        &template,
        "--record",
        &record_arg,
        "--quiet",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| tokio::spawn(chatter(emu.base(), stop.clone(), sent.clone())))
        .collect();
    // Under load: kill while clients are still sending and events are still in flight.
    let reached = || (hook.events().len() >= 120).then_some(());
    eventually("120 events reach the webhook", WAIT, reached).await;
    let killed = Command::new("kill")
        .args(["-KILL", &emu.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let _ = tokio::time::timeout(WAIT, client).await;
    }
    drop(emu);

    // A write torn by the kill leaves a partial last line; make sure this one has one.
    let mut text = std::fs::read_to_string(&record).unwrap();
    let webhook_lines = text
        .lines()
        .filter(|l| l.contains(r#""type":"webhook""#))
        .count();
    assert!(
        webhook_lines >= 100,
        "{webhook_lines} webhook lines recorded"
    );
    text.push_str(r#"{"type":"webhook","t":99999.5,"hub":"chat","event":"chat","ceTy"#);
    std::fs::write(&record, &text).unwrap();

    let run = replay(
        &record,
        &hook,
        free_port(),
        &["--settle", "0ms", "--format", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let warning = lines
        .iter()
        .find(|l| l["type"] == "warning")
        .unwrap_or_else(|| panic!("no warning: {}", run.all()));
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("the last line is incomplete"),
        "{warning}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["events"], webhook_lines, "{}", run.all());
    assert_eq!(summary["mismatched"], 0, "{}", run.all());
}

// ---------------------------------------------------------------------------------------------
// --strict: the contract lint over the replay
// ---------------------------------------------------------------------------------------------

/// A handler that acks every `ping` with id 9, whatever id the event carried.
fn bad_ack_session() -> Vec<Value> {
    vec![
        header(),
        webhook(
            1.0,
            "connect",
            r#"{"claims":{},"query":{},"headers":{},"subprotocols":[],"clientCertificates":[]}"#,
            200,
            "",
        ),
        webhook(
            10.0,
            "ping",
            r#"42/chat,5["ping"]"#,
            200,
            r#"43/chat,9["pong"]"#,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_fails_a_matching_replay_that_breaks_the_contract() {
    let dir = Scratch::new("strict-bad");
    let session = dir.write("bad.jsonl", &bad_ack_session());
    let port = free_port();
    let hook = Webhook::with(|r| {
        if r.event() == "ping" {
            Reply::status(200, r#"43/chat,9["pong"]"#)
        } else {
            Reply::ok()
        }
    })
    .await;

    let lenient = replay(&session, &hook, port, &[]).await;
    assert_eq!(lenient.code, 0, "{}", lenient.all());
    assert!(
        !lenient.stdout.contains("ack-unknown-id"),
        "{}",
        lenient.all()
    );

    let junit = dir.path("strict.xml");
    let strict = replay(
        &session,
        &hook,
        port,
        &["--strict", "--junit", &junit.display().to_string()],
    )
    .await;
    assert_eq!(strict.code, 1, "{}", strict.all());
    assert!(strict.stdout.contains("ack-unknown-id"), "{}", strict.all());
    assert!(
        strict.stdout.contains("contract finding"),
        "{}",
        strict.all()
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("type=\"lint\""), "{xml}");
    assert!(xml.contains("ack-unknown-id"), "{xml}");

    let json = replay(&session, &hook, port, &["--strict", "--format", "json"]).await;
    assert_eq!(json.code, 1, "{}", json.all());
    let lines: Vec<Value> = json
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ping = lines
        .iter()
        .find(|l| l["type"] == "event" && l["event"] == "ping")
        .expect("the ping event line");
    assert_eq!(ping["verdict"], "matched");
    assert_eq!(ping["findings"][0]["rule"], "ack-unknown-id");
    let summary = lines.last().unwrap();
    assert_eq!(summary["findings"], 1, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_passes_a_clean_handler() {
    let dir = Scratch::new("strict-clean");
    let session = dir.write("chat.jsonl", &chat_session());
    let port = free_port();
    let hook = hook_with(Behaviour::new(port)).await;
    let run = replay(&session, &hook, port, &["--strict"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("all events matched"), "{}", run.all());
    assert!(!run.stdout.contains("lint"), "{}", run.all());
}
