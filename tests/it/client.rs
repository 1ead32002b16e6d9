//! `sio-emu client`: every flag and command against the real binary, a real webhook and a real
//! `serve`; exit codes 0 (done), 1 (refused, timed out, disconnected by the server), 2 (usage).

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::util::*;

/// What a finished `sio-emu client` run printed and returned.
#[derive(Debug)]
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn lines(&self) -> Vec<Value> {
        self.out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect()
    }
}

/// Starts `sio-emu client <args>` with `env` and stdin from `input` (closed after it).
fn spawn(args: &[&str], env: &[(&str, &str)], input: &str) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.arg("client")
        .args(args)
        .env_remove("SIO_EMU_ENDPOINT")
        .env_remove("SIO_EMU_ACCESS_KEY")
        .env_remove("SIO_EMU_HUB")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start sio-emu client");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    tokio::spawn(async move {
        let _ = stdin.write_all(input.as_bytes()).await;
    });
    child
}

/// Waits (bounded) for a started client to finish.
async fn finish(child: tokio::process::Child) -> Run {
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("sio-emu client did not finish")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn client(args: &[&str], input: &str) -> Run {
    finish(spawn(args, &[], input)).await
}

/// The handshake log lines of `emu`.
fn handshakes(emu: &Emu) -> Vec<Value> {
    emu.events()
        .into_iter()
        .filter(|e| e["type"] == "handshake")
        .collect()
}

#[tokio::test]
async fn emit_with_ack_prints_the_ack_arguments() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let run = client(
        &[
            "--url",
            &base,
            "--hub",
            "chat",
            "--namespace",
            "/chat",
            "--user",
            "alice",
            "--emit",
            "say",
            "\"hi\"",
            "-2",
            "{\"a\":[1]}",
            "--ack",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.out, "[\"ok\"]\n");
    let said = &hook.wait_for("say", 1).await[0];
    assert_eq!(said.header("ce-userId"), "alice");
    assert_eq!(said.header("ce-namespace"), "/chat");
    assert!(
        said.body.ends_with("[\"say\",\"hi\",-2,{\"a\":[1]}]"),
        "{}",
        said.body
    );
    // The run ends with a clean disconnect.
    hook.wait_for("disconnected", 1).await;
}

#[tokio::test]
async fn emit_without_ack_is_delivered_before_the_disconnect() {
    let (hook, emu) = pair(&[]).await;
    let run = client(&["--url", &emu.base(), "--emit", "note", "1"], "").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.out, "");
    let said = &hook.wait_for("note", 1).await[0];
    assert!(said.body.ends_with("[\"note\",1]"), "{}", said.body);
    hook.wait_for("disconnected", 1).await;
    let order: Vec<String> = hook.events().iter().map(|r| r.event().to_owned()).collect();
    assert_eq!(order, ["connect", "connected", "note", "disconnected"]);
}

#[tokio::test]
async fn each_transport_choice_is_honoured() {
    let (_hook, emu) = pair(&[]).await;
    for (flag, handshake, upgrades) in [
        (Some("websocket"), "websocket", 0),
        (Some("polling"), "polling", 0),
        (None, "polling", 1),
    ] {
        let before = handshakes(&emu).len();
        let upgrades_before = emu
            .events()
            .iter()
            .filter(|e| e["type"] == "upgrade")
            .count();
        let mut args = vec![
            "--url".to_owned(),
            emu.base(),
            "--emit".into(),
            "x".into(),
            "--ack".into(),
        ];
        if let Some(t) = flag {
            args.extend(["--transport".to_owned(), t.to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = client(&args, "").await;
        assert_eq!(run.code, 0, "{flag:?}: {run:?}");
        assert_eq!(run.out, "[\"ok\"]\n");
        let shakes = emu
            .wait_logs("handshake", before + 1, |e| e["type"] == "handshake")
            .await;
        assert_eq!(shakes[before]["transport"], handshake, "{flag:?}");
        let upgraded = emu
            .events()
            .iter()
            .filter(|e| e["type"] == "upgrade")
            .count();
        assert_eq!(upgraded - upgrades_before, upgrades, "{flag:?}");
    }
}

#[tokio::test]
async fn listen_prints_events_until_count_and_group_joins() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let child = spawn(
        &[
            "--url", &base, "--hub", "chat", "--user", "bob", "--group", "g1", "--listen",
            "--count", "2",
        ],
        &[],
        "",
    );
    hook.wait_for("connected", 1).await;
    let conns = http("GET", &format!("{base}/_emu/connections"), &[], "")
        .await
        .json();
    let conn = &conns["hubs"][0]["connections"][0];
    assert_eq!(conn["userId"], "bob");
    let groups = conn["groups"].as_array().unwrap();
    assert!(groups.iter().any(|g| g["name"] == "g1"), "{groups:?}");
    for (event, args) in [("news", json!([1, "x"])), ("more", json!([]))] {
        let body = json!({"hub": "chat", "to": "namespace", "event": event, "args": args});
        let r = http(
            "POST",
            &format!("{base}/_emu/actions/emit"),
            &[],
            &body.to_string(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let run = finish(child).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines(),
        [
            json!({"event": "news", "args": [1, "x"]}),
            json!({"event": "more", "args": []})
        ]
    );
}

#[tokio::test]
async fn listen_ends_with_exit_1_when_the_server_disconnects() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let child = spawn(&["--url", &base, "--listen"], &[], "");
    let connected = &hook.wait_for("connected", 1).await[0];
    let body = json!({"hub": "hub", "connectionId": connected.header("ce-connectionId")});
    let r = http(
        "POST",
        &format!("{base}/_emu/actions/close"),
        &[],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = finish(child).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.err.contains("disconnected by the server"),
        "{}",
        run.err
    );
}

#[tokio::test]
async fn a_script_runs_every_command_in_order() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let script = "# a comment\n\nemit say \"a\" {\"n\": 1}\nwait news 10s\nsleep 10ms\nemit-noack \"two words\" 2\ndisconnect\nquit\n";
    let child = spawn(&["--url", &base, "--hub", "chat"], &[], script);
    let said = &hook.wait_for("say", 1).await[0];
    assert!(
        said.body.ends_with("[\"say\",\"a\",{\"n\":1}]"),
        "{}",
        said.body
    );
    let emit = json!({"hub": "chat", "to": "namespace", "event": "news", "args": ["n"]});
    let r = http(
        "POST",
        &format!("{base}/_emu/actions/emit"),
        &[],
        &emit.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = finish(child).await;
    assert_eq!(run.code, 0, "{run:?}");
    // The ack and the event race each other on the way back: either order.
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{}", run.out);
    assert!(lines.contains(&json!(["ok"])), "{}", run.out);
    assert!(
        lines.contains(&json!({"event": "news", "args": ["n"]})),
        "{}",
        run.out
    );
    hook.wait_for("disconnected", 1).await;
    let order: Vec<String> = hook.events().iter().map(|r| r.event().to_owned()).collect();
    assert_eq!(
        order,
        ["connect", "connected", "say", "two words", "disconnected"]
    );
    assert!(
        hook.named("two words")[0]
            .body
            .ends_with("[\"two words\",2]")
    );
}

#[tokio::test]
async fn a_failed_wait_names_its_line_and_exits_1() {
    let (_hook, emu) = pair(&[]).await;
    let run = client(
        &["--url", &emu.base()],
        "emit x\nwait never 200ms\nemit y\n",
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.err
            .contains("line 2: wait never: not received within 200ms"),
        "{}",
        run.err
    );
    // The emit before it ran.
    assert_eq!(run.out, "[\"ok\"]\n");
}

#[tokio::test]
async fn a_missing_ack_times_out_with_exit_1() {
    let hook = Webhook::with(|_r: &Recorded| Reply::status(200, "")).await;
    let emu = Emu::start(&["--webhook", &hook.template()]);
    let run = client(
        &[
            "--url",
            &emu.base(),
            "--emit",
            "x",
            "--ack",
            "--timeout",
            "300ms",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.err.contains("emit x: no ack within 300ms"),
        "{}",
        run.err
    );
    let run = client(&["--url", &emu.base(), "--timeout", "300ms"], "emit x\n").await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.err.contains("line 1: emit x: no ack"), "{}", run.err);
}

#[tokio::test]
async fn a_bad_script_line_is_a_usage_error() {
    let (_hook, emu) = pair(&[]).await;
    let run = client(&["--url", &emu.base()], "shout x\n").await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.err.contains("line 1: unknown command `shout`"),
        "{}",
        run.err
    );
}

#[tokio::test]
async fn a_refused_connect_says_why_and_exits_1() {
    let hook = Webhook::with(|r: &Recorded| {
        if r.event() == "connect" {
            Reply::status(401, "no entry for mallory")
        } else {
            echo_ack(r)
        }
    })
    .await;
    let emu = Emu::start(&["--webhook", &hook.template()]);
    let run = client(&["--url", &emu.base(), "--emit", "x"], "").await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.err.contains("connect refused: no entry for"),
        "{}",
        run.err
    );
    // A script names the failing step too.
    let run = client(&["--url", &emu.base()], "emit x\n").await;
    assert_eq!(run.code, 1, "{run:?}");
}

#[tokio::test]
async fn a_wrong_key_is_an_http_401_with_its_explanation() {
    let (_hook, emu) = pair(&[]).await;
    let run = client(
        &[
            "--url",
            &emu.base(),
            "--access-key",
            "wrong-key",
            "--emit",
            "x",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.err.contains("HTTP 401: signature check failed"),
        "{}",
        run.err
    );
    assert!(
        run.err.contains("hint: the token was refused"),
        "{}",
        run.err
    );
    // The same key from the environment variable `exec` sets.
    let child = spawn(
        &["--url", &emu.base(), "--emit", "x"],
        &[("SIO_EMU_ACCESS_KEY", "wrong-key")],
        "",
    );
    assert_eq!(finish(child).await.code, 1);
}

#[tokio::test]
async fn the_key_url_and_hub_come_from_the_environment() {
    let key = "c2VjcmV0LWtleS1mb3ItdGhlLWNsaWVudC10ZXN0cw==";
    let (hook, emu) = pair(&["--access-key", key]).await;
    let base = emu.base();
    let env = [
        ("SIO_EMU_ENDPOINT", base.as_str()),
        ("SIO_EMU_ACCESS_KEY", key),
        ("SIO_EMU_HUB", "envhub"),
    ];
    let run = finish(spawn(&["--emit", "x", "--ack"], &env, "")).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(hook.wait_for("x", 1).await[0].header("ce-hub"), "envhub");
    // The flag wins over the environment.
    let run = finish(spawn(&["--access-key", "other", "--emit", "x"], &env, "")).await;
    assert_eq!(run.code, 1, "{run:?}");
}

#[tokio::test]
async fn token_no_token_auth_query_and_path() {
    let (hook, emu) = pair(&["--anonymous", "--forward-auth"]).await;
    let base = emu.base();
    // --token: a token minted elsewhere, with its user.
    let token = emu.token("chat", Some("carol"));
    let run = client(
        &[
            "--url", &base, "--hub", "chat", "--token", &token, "--emit", "x", "--ack",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(hook.wait_for("x", 1).await[0].header("ce-userId"), "carol");
    // --no-token on an anonymous hub, --path naming the hub's path, --auth and --query.
    let run = client(
        &[
            "--url",
            &base,
            "--hub",
            "ignored",
            "--path",
            "/clients/socketio/hubs/other",
            "--no-token",
            "--auth",
            "{\"name\":\"dave\"}",
            "--query",
            "room=blue",
            "--query",
            "k=a=b",
            "--emit",
            "y",
            "--ack",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let connect = hook
        .named("connect")
        .into_iter()
        .find(|r| r.header("ce-hub") == "other")
        .expect("connect on hub other");
    let body = connect.json();
    assert_eq!(body["auth"], json!({"name": "dave"}));
    assert_eq!(body["query"]["room"], json!(["blue"]));
    assert_eq!(body["query"]["k"], json!(["a=b"]));
    assert_eq!(body["claims"], json!({}));
}

#[tokio::test]
async fn usage_errors_exit_2() {
    for (args, says) in [
        (vec!["--ack"], "--emit"),
        (vec!["--emit", "x", "nope"], "is not JSON"),
        (
            vec!["--auth", "[1]", "--emit", "x"],
            "--auth must be a JSON object",
        ),
        (vec!["--timeout", "soon", "--emit", "x"], "--timeout"),
        (vec!["--url", "ftp://x", "--emit", "x"], "--url"),
        (vec!["--hub", "1x", "--emit", "x"], "not a valid hub name"),
        (
            vec!["--namespace", "chat", "--emit", "x"],
            "must start with /",
        ),
        (vec!["--query", "novalue", "--emit", "x"], "is not k=v"),
        (
            vec!["--token", "t", "--no-token", "--emit", "x"],
            "cannot be used with",
        ),
        (vec!["--count", "1"], "--listen"),
    ] {
        let run = client(&args, "").await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.err.contains(says), "{args:?}: {}", run.err);
    }
}

#[tokio::test]
/// The command-line contract: an infrastructure failure (target unreachable) is exit 2, like
/// `replay` against a target it cannot reach; a server that answers and refuses is exit 1.
async fn an_unreachable_server_exits_2() {
    let port = free_port();
    let run = client(
        &["--url", &format!("http://127.0.0.1:{port}"), "--emit", "x"],
        "",
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.err.contains("cannot reach"), "{}", run.err);
}

#[tokio::test]
async fn peer_text_is_escaped_in_output_lines() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let child = spawn(&["--url", &base, "--listen", "--count", "1"], &[], "");
    hook.wait_for("connected", 1).await;
    let nasty = "a\u{1b}[2J\u{9b}31m\u{7f}\u{202e}z";
    let body = json!({"hub": "hub", "to": "namespace", "event": "x", "args": [nasty]});
    let r = http(
        "POST",
        &format!("{base}/_emu/actions/emit"),
        &[],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = finish(child).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.out.chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        run.out
    );
    assert!(!run.out.contains('\u{202e}'));
    // Still JSON, and the value comes back whole.
    assert_eq!(run.lines()[0]["args"][0], nasty);
}

#[tokio::test]
async fn exec_gives_client_everything_it_needs() {
    let key = "ZXhlYy1zZXRzLXRoZS1rZXktZm9yLXRoZS1jbGllbnQ=";
    let hook = Webhook::start().await;
    let out = tokio::process::Command::new(bin())
        .args([
            "exec",
            "--port",
            "0",
            "--format",
            "json",
            "--quiet",
            "--access-key",
            key,
            "--webhook",
            &hook.template(),
            "--",
            bin(),
            "client",
            "--emit",
            "x",
            "--ack",
        ])
        .env_remove("SIO_EMU_ACCESS_KEY")
        .env_remove("SIO_EMU_ENDPOINT")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("exec finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().any(|l| l == "[\"ok\"]"), "{stdout}");
    hook.wait_for("x", 1).await;
}

/// Reads a child's stdout into a shared buffer as it comes.
fn collect(mut pipe: tokio::process::ChildStdout) -> std::sync::Arc<std::sync::Mutex<String>> {
    use tokio::io::AsyncReadExt;
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// Waits until the collected text contains `what`.
async fn wait_text(text: &std::sync::Mutex<String>, what: &str) {
    let seen = poll_until(WAIT, || text.lock().unwrap().contains(what).then_some(()));
    if seen.await.is_none() {
        panic!("never saw {what:?} in {:?}", text.lock().unwrap());
    }
}

#[tokio::test]
async fn typed_at_a_terminal_peer_text_is_escaped_and_errors_do_not_end_it() {
    // A terminal for stdin and stdout, from util-linux `script`.
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("util-linux `script` provides the terminal for this test");
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let command = format!("{} client --url {base}", bin());
    let mut child = tokio::process::Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let out = collect(child.stdout.take().unwrap());
    hook.wait_for("connected", 1).await;
    wait_text(&out, "commands:").await;
    let nasty = "a\u{1b}]0;owned\u{7}\u{9b}2J\u{202e}z";
    let body = json!({"hub": "hub", "to": "namespace", "event": "x", "args": [nasty]});
    let r = http(
        "POST",
        &format!("{base}/_emu/actions/emit"),
        &[],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait_text(&out, "\"event\":\"x\"").await;
    stdin.write_all(b"bogus\nemit say 1\n").await.unwrap();
    wait_text(&out, "unknown command `bogus`").await;
    wait_text(&out, "[\"ok\"]").await;
    stdin.write_all(b"quit\n").await.unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let text = out.lock().unwrap().clone();
    for raw in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(
            !text.contains(raw),
            "raw {raw:?} reached the terminal: {text:?}"
        );
    }
    assert!(
        text.contains("a\\u001b]0;owned\\u0007\\u009b2J\\u202ez"),
        "{text:?}"
    );
    hook.wait_for("disconnected", 1).await;
}

#[tokio::test]
async fn a_server_that_stops_pinging_is_a_ping_timeout() {
    let (hook, mut emu) = pair(&["--ping-interval", "200ms", "--ping-timeout", "200ms"]).await;
    let child = spawn(&["--url", &emu.base(), "--listen"], &[], "");
    hook.wait_for("connected", 1).await;
    // Freeze the server: the connection stays open, the pings stop.
    let pid = emu.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let run = finish(child).await;
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.err.contains("disconnected by the server: ping timeout"),
        "{}",
        run.err
    );
    emu.terminate().await;
}
