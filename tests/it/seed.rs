//! `serve --seed`: the same sequential scenario (same clients, same webhook answers, same port)
//! recorded twice with the same seed gives byte-identical session files; without `--seed` the
//! files differ (random ids, wall-clock times).
//!
//! Every step waits for its effect to be in the recording before the next one starts, because
//! determinism is promised for a sequential order of requests only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// A `serve` on a fixed port (the port is part of the recording: the header's endpoint and the
/// connect body's Host header).
struct Fixed {
    child: Child,
}

impl Fixed {
    fn start(port: u16, args: &[&str]) -> Fixed {
        let mut child = Command::new(bin())
            .args(["serve", "--port", &port.to_string(), "--format", "json"])
            .args(["--color", "never", "--quiet"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sio-emu");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a ready line").expect("read it");
        assert!(first.contains("\"ready\""), "{first}");
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Fixed { child }
    }

    async fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exited = || self.child.try_wait().unwrap();
        eventually("sio-emu exits", Duration::from_secs(30), exited).await;
    }
}

impl Drop for Fixed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the recording has a line containing every one of `parts`.
async fn wait_record(path: &Path, parts: &[&str]) {
    let read = || std::fs::read_to_string(path).unwrap_or_default();
    let found = || {
        let text = read();
        text.lines()
            .any(|l| parts.iter().all(|p| l.contains(p)))
            .then_some(())
    };
    let seen = poll_until(WAIT, found).await;
    assert!(
        seen.is_some(),
        "no recorded line with {parts:?}:\n{}",
        read()
    );
}

/// Long-polls until a packet starting with `prefix` arrives; returns it.
async fn poll_for(base: &str, sid: &str, prefix: &str) -> String {
    let url = client_url(base, "chat", &format!("transport=polling&sid={sid}"));
    eventually_async(&format!("a {prefix} packet"), WAIT, async || {
        let reply = http("GET", &url, &[], "").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let found = packets(&reply.body)
            .into_iter()
            .find(|p| p.starts_with(prefix));
        found.map(str::to_owned)
    })
    .await
}

async fn post(base: &str, sid: &str, body: &str) {
    let url = client_url(base, "chat", &format!("transport=polling&sid={sid}"));
    let reply = http(
        "POST",
        &url,
        &[("content-type", "text/plain;charset=UTF-8")],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// How the scenario ends.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    /// Leave, wait until the `disconnected` exchange is recorded, then close.
    Stepwise,
    /// What `socket.disconnect()` does: DISCONNECT and the transport close back to back.
    Natural,
}

/// One sequential scenario: handshake, join /ns, an event with an ack, a REST broadcast, leave,
/// close; returns the recording's bytes.
async fn scenario(port: u16, seed: Option<&str>, file: PathBuf, ending: Ending) -> Vec<u8> {
    let hook = Webhook::start().await;
    let template = hook.template();
    let record = file.to_str().unwrap().to_owned();
    let mut args = vec![
        "--webhook",
        template.as_str(),
        "--anonymous",
        "--rest-anonymous",
        "--record",
        record.as_str(),
    ];
    if let Some(seed) = seed {
        args.extend(["--seed", seed]);
    }
    let emu = Fixed::start(port, &args);
    let base = format!("http://127.0.0.1:{port}");

    let open = http(
        "GET",
        &client_url(&base, "chat", "transport=polling"),
        &[],
        "",
    )
    .await;
    let sid = serde_json::from_str::<serde_json::Value>(&open.body[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_record(&file, &["\"handshake\""]).await;

    post(&base, &sid, "40/ns,").await;
    poll_for(&base, &sid, "40/ns,").await;
    hook.wait_for("connected", 1).await;
    wait_record(&file, &["\"webhook\"", "\"event\":\"connected\""]).await;

    post(&base, &sid, r#"42/ns,1["hello","x"]"#).await;
    let ack = poll_for(&base, &sid, "43/ns,1").await;
    assert_eq!(ack, r#"43/ns,1["ok"]"#);
    wait_record(&file, &["\"event\":\"hello\""]).await;

    let send = http(
        "POST",
        &format!("{base}/api/hubs/chat/groups/0~L25z~/:send?api-version=2024-01-01"),
        &[("content-type", "text/plain")],
        r#"42/ns,["news",1]"#,
    )
    .await;
    assert_eq!(send.status, 202, "{}", send.body);
    poll_for(&base, &sid, r#"42/ns,["news""#).await;
    wait_record(&file, &["\"direction\":\"out\"", "news"]).await;

    post(&base, &sid, "41/ns,").await;
    if ending == Ending::Stepwise {
        hook.wait_for("disconnected", 1).await;
        wait_record(&file, &["\"event\":\"disconnected\""]).await;
    }
    post(&base, &sid, "1").await;
    wait_record(&file, &["\"closed\""]).await;

    emu.terminate().await;
    std::fs::read(&file).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("sio-emu-seed-{}-{name}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test]
async fn same_seed_same_scenario_records_identical_sessions() {
    let port = free_port();
    let a = scenario(port, Some("7"), temp("a"), Ending::Stepwise).await;
    let b = scenario(port, Some("7"), temp("b"), Ending::Stepwise).await;
    let text = String::from_utf8_lossy(&a).into_owned();
    assert!(text.lines().count() >= 10, "{text}");
    assert!(
        text.contains("\"startedAt\":\"2024-01-01T00:00:00.000Z\""),
        "{text}"
    );
    assert_eq!(
        text,
        String::from_utf8_lossy(&b),
        "two seeded runs recorded different sessions"
    );
    assert_eq!(a, b);

    let c = scenario(port, None, temp("c"), Ending::Stepwise).await;
    assert_ne!(a, c, "an unseeded run recorded the seeded session");
    for name in ["a", "b", "c"] {
        let _ = std::fs::remove_file(temp(name));
    }
}

#[tokio::test]
async fn a_natural_disconnect_records_the_same_session_every_run() {
    let port = free_port();
    let mut runs = Vec::new();
    for name in ["n1", "n2", "n3"] {
        let bytes = scenario(port, Some("7"), temp(name), Ending::Natural).await;
        runs.push(String::from_utf8(bytes).unwrap());
    }
    let lines: Vec<&str> = runs[0].lines().collect();
    let disconnected = lines
        .iter()
        .position(|l| l.contains("\"event\":\"disconnected\""));
    let closed = lines.iter().position(|l| l.contains("\"type\":\"closed\""));
    assert!(
        disconnected.is_some() && disconnected < closed,
        "the `disconnected` exchange comes before `closed`:\n{}",
        runs[0]
    );
    assert_eq!(
        runs[0], runs[1],
        "two seeded runs recorded different sessions"
    );
    assert_eq!(
        runs[1], runs[2],
        "two seeded runs recorded different sessions"
    );
    for name in ["n1", "n2", "n3"] {
        let _ = std::fs::remove_file(temp(name));
    }
}
