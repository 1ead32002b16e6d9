//! `sio-emu exec`: the command sees working connection details, its exit status comes back, a
//! service that cannot start never runs it, and SIGTERM / SIGINT reach it before the graceful
//! shutdown. Children are `sh -c` scripts whose waits are bounded, so nothing outlives a test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::util::*;

/// A child loop step, and how many steps it waits at most (20 s).
const CHILD_WAIT: &str =
    "i=0; while [ $i -lt 400 ] && [ ! -e \"$2\" ]; do sleep 0.05; i=$((i+1)); done";

/// A fresh, empty scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "sio-emu-exec-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until `path` exists.
async fn wait_file(path: &Path) {
    let what = format!("{} appears", path.display());
    eventually(&what, WAIT, || path.exists().then_some(())).await;
}

/// A running `sio-emu exec --port 0 --format json --color never <args> -- <command>`; its
/// stdout lines are sio-emu's NDJSON log and the command's own output, interleaved.
struct Exec(Process);

impl Exec {
    fn start(args: &[&str], command: &[&str]) -> Exec {
        let mut all = vec![
            "exec", "--port", "0", "--format", "json", "--color", "never",
        ];
        all.extend_from_slice(args);
        all.push("--");
        all.extend_from_slice(command);
        Exec(Process::start(&all, Stdio::inherit(), true))
    }

    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn lines(&self) -> Vec<String> {
        self.0.lines.lock().unwrap().clone()
    }

    fn json(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The `ready` line (the first line sio-emu prints).
    async fn ready(&self) -> Value {
        self.wait_json("the ready line", |v| v["type"] == "ready")
            .await
    }

    async fn wait_json(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let found = poll_until(WAIT, || self.json().into_iter().find(|v| pred(v))).await;
        found.unwrap_or_else(|| {
            panic!(
                "no line for {what}; stdout:\n{}\nstderr:\n{}",
                self.lines().join("\n"),
                self.0.stderr.lock().unwrap()
            )
        })
    }

    /// Waits for sio-emu to exit and returns its exit code.
    async fn exit_code(&mut self) -> i32 {
        let status = self.0.exited("sio-emu exec exits", Duration::from_secs(30));
        status.await.code().expect("sio-emu exited by a signal")
    }
}

/// A WebSocket Engine.IO session to `endpoint` (as printed: `http://localhost:<port>`).
async fn websocket(
    endpoint: &str,
    hub: &str,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/clients/socketio/hubs/{hub}/?EIO=4&transport=websocket&{query}",
        endpoint.replacen("http://", "ws://", 1)
    );
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connect");
    ws
}

/// The next text frame.
async fn next_text(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("nothing received within {WAIT:?}"),
        }
    }
}

#[tokio::test]
async fn the_command_gets_working_connection_details() {
    let dir = scratch("env");
    let (env_file, done) = (dir.join("env"), dir.join("done"));
    let script = format!(
        "printf '%s\\n' \"$SIO_EMU_ENDPOINT\" \"$SIO_EMU_PORT\" \"$SIO_EMU_CONNECTION_STRING\" \
         \"$WebPubSubForSocketIOConnectionString\" \"$SIO_EMU_TOKEN\" \"$SIO_EMU_HUB\" > \"$1.tmp\" \
         && mv \"$1.tmp\" \"$1\"; {CHILD_WAIT}; exit 0"
    );
    let mut exec = Exec::start(
        &["--webhook", "builtin:echo", "--hub", "game"],
        &[
            "sh",
            "-c",
            &script,
            "sh",
            env_file.to_str().unwrap(),
            done.to_str().unwrap(),
        ],
    );
    let ready = exec.ready().await;
    wait_file(&env_file).await;
    let env = std::fs::read_to_string(&env_file).unwrap();
    let vars: Vec<&str> = env.lines().collect();
    let [endpoint, port, connection, functions, token, hub] = vars[..] else {
        panic!("unexpected environment dump: {env:?}");
    };
    let port_number = ready["port"].as_u64().unwrap();
    assert_eq!(endpoint, format!("http://localhost:{port_number}"));
    assert_eq!(endpoint, ready["endpoint"]);
    assert_eq!(port, port_number.to_string());
    assert_eq!(
        connection,
        format!("Endpoint={endpoint};AccessKey={KEY};Version=1.0;")
    );
    assert_eq!(functions, connection);
    assert_eq!(hub, "game");

    // The token admits a client of that hub (the hub is not anonymous), and events round-trip.
    let mut ws = websocket(endpoint, hub, &format!("access_token={token}")).await;
    let open = next_text(&mut ws).await.unwrap();
    let sid = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.send(Message::Text("40".into())).await.unwrap();
    assert!(next_text(&mut ws).await.unwrap().starts_with("40{"));
    ws.send(Message::Text(r#"421["hi","x"]"#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await.unwrap(), r#"431["x"]"#);

    // The connection string signs REST calls.
    let url = format!("{endpoint}/api/hubs/{hub}/connections/{sid}?api-version=2024-01-01");
    let rest_token = mint(&["--rest", &url, "--connection-string", connection], None);
    let exists = http(
        "HEAD",
        &url,
        &[("authorization", &format!("Bearer {rest_token}"))],
        "",
    )
    .await;
    assert_eq!(exists.status, 200);

    // The command ends: sio-emu shuts down gracefully and exits with its status.
    std::fs::write(&done, "").unwrap();
    assert_eq!(exec.exit_code().await, 0);
    // The client was disconnected by the shutdown (whatever it was told on the way out).
    while next_text(&mut ws).await.is_some() {}
    let events = exec.json();
    assert!(events.iter().any(|v| v["type"] == "shuttingDown"));
    let gone = events
        .iter()
        .find(|v| v["type"] == "webhook" && v["event"] == "disconnected")
        .expect("a disconnected webhook during shutdown");
    assert_eq!(gone["ok"], true, "{gone}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_exit_status_is_the_commands() {
    for (script, code) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -KILL $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
    ] {
        let out = Command::new(bin())
            .args(["exec", "--port", "0", "--quiet", "--", "sh", "-c", script])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(bin())
        .args([
            "exec",
            "--port",
            "0",
            "--quiet",
            "--",
            "no-such-command-xyz",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("sio-emu: cannot run `no-such-command-xyz`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_service_that_cannot_start_never_runs_the_command() {
    let dir = scratch("nostart");
    let marker = dir.join("ran");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let touch = ["sh", "-c", "touch \"$1\"", "sh", marker.to_str().unwrap()];
    let cases: [(&[&str], &str); 3] = [
        (&["--host", "127.0.0.1", "--port", &port], "cannot listen"),
        (&["--port", "0", "--max-payload", "0"], "max-payload"),
        (
            &["--port", "0", "--webhook", "builtin:nope"],
            "builtin:nope",
        ),
    ];
    for (args, needle) in cases {
        let out = Command::new(bin())
            .arg("exec")
            .args(args)
            .arg("--")
            .args(touch)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!marker.exists(), "{args:?}: the command ran");
    }
    // Without a command at all: a usage error too.
    let out = Command::new(bin())
        .args(["exec", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    drop(taken);
    let _ = std::fs::remove_dir_all(dir);
}

async fn signal_reaches_the_child(signal: &str) {
    let hook = Webhook::start().await;
    let template = hook.template();
    let dir = scratch(signal);
    let (started, never) = (dir.join("started"), dir.join("never"));
    // The child reports the signal on the shared stdout, then exits 3.
    let script = format!(
        "trap 'echo child-got-{signal}; exit 3' {signal}; touch \"$1\"; {CHILD_WAIT}; exit 9"
    );
    let mut exec = Exec::start(
        &["--webhook", &template, "--anonymous"],
        &[
            "sh",
            "-c",
            &script,
            "sh",
            started.to_str().unwrap(),
            never.to_str().unwrap(),
        ],
    );
    let ready = exec.ready().await;
    wait_file(&started).await;
    let mut ws = websocket(ready["endpoint"].as_str().unwrap(), "hub", "").await;
    next_text(&mut ws).await.unwrap();
    ws.send(Message::Text("40".into())).await.unwrap();
    assert!(next_text(&mut ws).await.unwrap().starts_with("40{"));
    hook.wait_for("connected", 1).await;

    Command::new("kill")
        .args([&format!("-{signal}"), &exec.pid().to_string()])
        .status()
        .unwrap();
    assert_eq!(exec.exit_code().await, 3, "the child's status");
    let lines = exec.lines();
    let got = lines
        .iter()
        .position(|l| l == &format!("child-got-{signal}"))
        .unwrap_or_else(|| panic!("the child never got {signal}:\n{}", lines.join("\n")));
    let shutdown = lines
        .iter()
        .position(|l| l.contains("\"shuttingDown\""))
        .expect("a graceful shutdown");
    assert!(got < shutdown, "shut down before the child exited");
    let gone = hook.wait_for("disconnected", 1).await;
    assert_eq!(gone[0].json()["reason"], "server shutting down");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sigterm_reaches_the_child_then_shutdown_is_graceful() {
    signal_reaches_the_child("TERM").await;
}

#[tokio::test]
async fn sigint_reaches_the_child_then_shutdown_is_graceful() {
    signal_reaches_the_child("INT").await;
}
