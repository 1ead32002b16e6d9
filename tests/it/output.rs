//! Decision 22 end to end: the live log is a view that a reader who stops reading cannot use to
//! stall the service (lines are dropped, counted and announced), and the `--record` file is
//! data that stays trustworthy: secrets redacted everywhere they travel, and a run appended to
//! a file cut mid-line still replays.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::util::{
    Emu, WAIT, Webhook, Ws, bin, eventually, free_port, http, next_text, poll_until_async,
};

/// What the dropped-lines notice and the shutdown summary say.
const NOTICE: &str = "log lines dropped: stdout is not being read";
const SUMMARY: &str = "dropped in all: stdout was not being read";

/// A `serve` whose stdout is a pipe this test holds and does not read (until it says so).
struct Unread {
    child: Child,
    stdout: Option<ChildStdout>,
    base: String,
}

impl Unread {
    fn start(format: &str, webhook: &str) -> Unread {
        let port = free_port();
        let mut child = Command::new(bin())
            .args(["serve", "--port", &port.to_string(), "--format", format])
            .args(["--color", "never", "--anonymous", "--webhook", webhook])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sio-emu");
        let stdout = child.stdout.take();
        Unread {
            child,
            stdout,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Starts reading stdout: every line from now on lands in the returned list.
    fn drain(&mut self) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stdout = self.stdout.take().expect("stdout not yet read");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        (lines, reader)
    }

    /// SIGTERM, then the exit code.
    async fn terminate(&mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exited = || self.child.try_wait().unwrap();
        let status = eventually("sio-emu exits", Duration::from_secs(30), exited).await;
        status.code().unwrap_or(-1)
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the listener accepts, then checks that `/api/health` answers 200.
async fn healthy(base: &str) {
    let addr = base.trim_start_matches("http://").to_owned();
    let listening = poll_until_async(WAIT, async || {
        tokio::net::TcpStream::connect(&addr).await.ok()
    });
    assert!(listening.await.is_some(), "{base} never listened");
    let reply = http("GET", &format!("{base}/api/health"), &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// A WebSocket client joined to `/chat`.
async fn joined(base: &str) -> Ws {
    let url = format!("{base}/clients/socketio/hubs/chat/?EIO=4&transport=websocket")
        .replacen("http://", "ws://", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    assert!(next_text(&mut ws).await.starts_with('0'));
    ws.send(Message::Text("40/chat,".into())).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/chat,"));
    ws
}

/// Sends `count` events with ack ids from one client and waits for every ack.
async fn acked_events(mut ws: Ws, name: String, first_id: u64, count: u64) -> Ws {
    for id in first_id..first_id + count {
        let packet = format!("42/chat,{id}[\"{name}\",{id}]");
        ws.send(Message::Text(packet.into())).await.unwrap();
        let ack = next_text(&mut ws).await;
        assert_eq!(ack, format!("43/chat,{id}[\"ok\"]"));
    }
    ws
}

/// The count of a notice or summary line (`1,234 log lines …`).
fn count(line: &str) -> u64 {
    let head = &line[..line.find(" log line").unwrap()];
    let start = head
        .rfind(|c: char| !c.is_ascii_digit() && c != ',')
        .map_or(0, |i| i + 1);
    let number = head[start..].replace(',', "");
    number
        .parse()
        .unwrap_or_else(|_| panic!("no count in {line}"))
}

/// A few thousand acked events while stdout is not read: every ack arrives and the health
/// check answers; once stdout is read again the log says how many lines it dropped, and the
/// shutdown summary's total is the sum of those notices.
async fn unread_stdout_does_not_stall_serving(format: &str) {
    const CLIENTS: u64 = 8;
    const EVENTS: u64 = 400;
    let hook = Webhook::start().await;
    let mut emu = Unread::start(format, &hook.template());
    healthy(&emu.base).await;
    // Long event names make long log lines: the pipe and the log buffer fill within seconds.
    let name = "e".repeat(1000);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (base, name) = (emu.base.clone(), name.clone());
            tokio::spawn(async move {
                acked_events(joined(&base).await, name, c * EVENTS, EVENTS).await
            })
        })
        .collect();
    let mut sockets = Vec::new();
    for client in clients {
        sockets.push(client.await.expect("every ack arrived"));
    }
    healthy(&emu.base).await;

    // Reading again: the next lines are preceded by the notice.
    let (lines, reader) = emu.drain();
    let mut ws = Some(sockets.pop().unwrap());
    let mut id = CLIENTS * EVENTS;
    // Each round sends one more event, so there is a line for the notice to precede.
    let noticed = poll_until_async(WAIT, async || {
        if lines.lock().unwrap().iter().any(|l| l.contains(NOTICE)) {
            return Some(());
        }
        let client = ws.take().expect("the client of the last round");
        ws = Some(acked_events(client, "more".into(), id, 1).await);
        id += 1;
        None
    });
    assert!(noticed.await.is_some(), "no `{NOTICE}` line");
    assert_eq!(emu.terminate().await, 0);
    reader.join().unwrap();

    let lines = lines.lock().unwrap().clone();
    let notices: Vec<&String> = lines.iter().filter(|l| l.contains(NOTICE)).collect();
    let dropped: u64 = notices.iter().map(|l| count(l)).sum();
    assert!(dropped > 0);
    let summary = lines
        .iter()
        .find(|l| l.contains(SUMMARY))
        .unwrap_or_else(|| panic!("no shutdown summary of dropped lines"));
    assert_eq!(count(summary), dropped, "{notices:?}\n{summary}");
    if format == "json" {
        for line in &lines {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"));
            if line.contains(NOTICE) {
                assert_eq!(value["type"], "warning", "{line}");
            }
        }
    } else {
        assert!(notices.iter().all(|l| l.contains("warning")), "{notices:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_stdout_drops_json_log_lines_and_keeps_serving() {
    unread_stdout_does_not_stall_serving("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_stdout_drops_pretty_log_lines_and_keeps_serving() {
    unread_stdout_does_not_stall_serving("pretty").await;
}

// ---------------------------------------------------------------------------------------------
// The recording
// ---------------------------------------------------------------------------------------------

fn temp(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "sio-emu-output-{}-{name}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// `sio-emu replay <session> --target <hook>` off the runtime's threads; the JSON summary line
/// and the whole output.
async fn replay(session: &Path, hook: &Webhook) -> (i32, Value, String) {
    let args = [
        "replay".to_owned(),
        session.display().to_string(),
        "--target".into(),
        hook.template(),
        "--rest-port".into(),
        free_port().to_string(),
        "--format".into(),
        "json".into(),
        "--settle".into(),
        "0ms".into(),
    ];
    let output: Output = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run sio-emu replay")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let summary = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .unwrap_or(Value::Null);
    let all = format!(
        "{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), summary, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_hold_no_secrets_anywhere() {
    let secrets = [
        "code-s3cret",
        "cookie-s3cret",
        "apikey-s3cret",
        "proxy-s3cret",
        "auth-s3cret",
        "nested-s3cret",
    ];
    let file = temp("secrets");
    let hook = Webhook::start().await;
    let template = hook.template();
    let record = file.display().to_string();
    let mut emu = Emu::start(&[
        "--anonymous",
        "--forward-auth",
        "--webhook",
        &template,
        "--record",
        &record,
    ]);
    let url = format!(
        "{}/clients/socketio/hubs/chat/?EIO=4&transport=websocket&code={}&room=lobby",
        emu.base(),
        secrets[0]
    )
    .replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", format!("session={}", secrets[1]).parse().unwrap());
    headers.insert("x-api-key", secrets[2].parse().unwrap());
    headers.insert("proxy-authorization", secrets[3].parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    let connect = format!(
        "40/chat,{{\"token\":\"{}\",\"n\":{{\"k\":\"{}\"}}}}",
        secrets[4], secrets[5]
    );
    ws.send(Message::Text(connect.into())).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/chat,"));
    ws = acked_events(ws, "hello".into(), 1, 1).await;
    // Positive control: every secret did travel to the handler in the connect event.
    let sent = &hook.wait_for("connect", 1).await[0].body;
    for secret in secrets {
        assert!(sent.contains(secret), "{secret} not sent: {sent}");
    }
    let _ = ws.close(None).await;
    hook.wait_for("disconnected", 1).await;
    assert_eq!(emu.terminate().await, 0);

    let text = std::fs::read_to_string(&file).unwrap();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} recorded:\n{text}");
    }
    let connect_line: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "webhook" && v["event"] == "connect")
        .expect("a connect line");
    let body: Value = serde_json::from_str(connect_line["body"].as_str().unwrap()).unwrap();
    // The keys stay, the values go; what is not secret is kept.
    assert_eq!(body["query"]["code"][0], "<redacted>", "{body}");
    assert_eq!(body["query"]["room"][0], "lobby", "{body}");
    assert_eq!(body["headers"]["x-api-key"][0], "<redacted>", "{body}");
    assert_eq!(body["auth"]["token"], "<redacted>", "{body}");

    // The redacted recording still replays.
    let (code, summary, all) = replay(&file, &hook).await;
    assert_eq!(code, 0, "{all}");
    assert_eq!(summary["mismatched"], 0, "{all}");
    let _ = std::fs::remove_file(&file);
}

/// One short recorded session: join, one acked event, leave, SIGTERM.
async fn record_once(hook: &Webhook, file: &Path) {
    let template = hook.template();
    let record = file.display().to_string();
    let mut emu = Emu::start(&["--anonymous", "--webhook", &template, "--record", &record]);
    let before = hook.named("disconnected").len();
    let ws = acked_events(joined(&emu.base()).await, "hello".into(), 1, 1).await;
    let mut ws = ws;
    let _ = ws.close(None).await;
    hook.wait_for("disconnected", before + 1).await;
    assert_eq!(emu.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_appended_to_a_file_cut_mid_line_still_replays() {
    let file = temp("append");
    let hook = Webhook::start().await;
    record_once(&hook, &file).await;
    // Cut the first run in the middle of its last line, as a kill -9 mid-write would.
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text.trim_end().lines().last().unwrap();
    let cut = text.trim_end().len() - last.len() / 2;
    std::fs::write(&file, &text[..cut]).unwrap();
    record_once(&hook, &file).await;

    let text = std::fs::read_to_string(&file).unwrap();
    let complete = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["type"] == "webhook"))
        .count();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"type\":\"header\""))
            .count(),
        2,
        "{text}"
    );
    let (code, summary, all) = replay(&file, &hook).await;
    assert_eq!(code, 0, "{all}");
    assert_eq!(summary["events"], complete, "{all}");
    assert_eq!(summary["mismatched"], 0, "{all}");
    assert!(all.contains("incomplete"), "the cut line is flagged: {all}");
    let _ = std::fs::remove_file(&file);
}
