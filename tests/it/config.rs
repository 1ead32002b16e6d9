//! `serve --config`: several hubs with their own handlers and policies, handler order and
//! patterns, unrouted events, two access keys, hot reload (valid and invalid), precedence, and
//! `sio-emu init`.

use std::path::PathBuf;

use crate::util::*;

/// A config file in a fresh temporary directory, removed with the guard.
struct TempConfig {
    dir: PathBuf,
    pub path: PathBuf,
}

impl TempConfig {
    fn new(text: &str) -> TempConfig {
        let dir = std::env::temp_dir().join(format!(
            "sio-emu-config-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sio-emu.toml");
        std::fs::write(&path, text).unwrap();
        TempConfig { dir, path }
    }

    fn write(&self, text: &str) {
        // Write beside and rename, so the watcher never reads half a file.
        let tmp = self.dir.join("next.toml");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }

    fn arg(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) * 1000
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_micros() as u64
}

fn user_events(hook: &Webhook) -> Vec<String> {
    hook.events()
        .iter()
        .filter(|r| r.header("ce-type") == "azure.webpubsub.user.message")
        .map(|r| r.event().to_owned())
        .collect()
}

#[tokio::test]
async fn hubs_have_their_own_handlers_and_policies() {
    let (a, b) = (Webhook::start().await, Webhook::start().await);
    let cfg = TempConfig::new(&format!(
        r#"
[[hub]]
name = "open"
anonymous = true
[[hub.handler]]
url = "{}"

[[hub]]
name = "closed"
[[hub.handler]]
url = "{}"
"#,
        a.template(),
        b.template()
    ));
    let emu = Emu::start(&["--config", &cfg.arg()]);
    let mut ws = WsClient::connect(&emu, "open", "").await.unwrap();
    assert!(ws.join("/").await.starts_with("40{"));
    a.wait_for("connect", 1).await;
    let refused = WsClient::connect(&emu, "closed", "").await.err().unwrap();
    assert_eq!(refused.status, 401);
    let token = emu.token("closed", Some("u"));
    let mut ws2 = WsClient::connect(&emu, "closed", &format!("access_token={token}"))
        .await
        .unwrap();
    ws2.join("/").await;
    b.wait_for("connect", 1).await;
    assert_eq!(a.named("connect").len(), 1, "each hub uses its own handler");
    // Undeclared hubs keep the default policy (tokens required).
    assert_eq!(
        WsClient::connect(&emu, "other", "")
            .await
            .err()
            .unwrap()
            .status,
        401
    );
}

#[tokio::test]
async fn first_matching_handler_wins_and_unwanted_events_are_not_sent() {
    let (first, second) = (Webhook::start().await, Webhook::start().await);
    // Hub `control` exists only to prove that a `disconnected` would have arrived (below).
    let control = Webhook::start().await;
    let cfg = TempConfig::new(&format!(
        r#"
anonymous = true
[[hub]]
name = "h"
[[hub.handler]]
url = "{}"
user-events = "chat, typing"
system-events = []
[[hub.handler]]
url = "{}"
user-events = "other"
system-events = ["connect"]

[[hub]]
name = "control"
[[hub.handler]]
url = "{}"
system-events = ["connected", "disconnected"]
"#,
        first.template(),
        second.template(),
        control.template()
    ));
    let emu = Emu::start(&["--config", &cfg.arg()]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/").await;
    second.wait_for("connect", 1).await;
    ws.send("421[\"chat\",1]").await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");
    ws.send("422[\"other\"]").await;
    assert_eq!(ws.recv().await, "432[\"ok\"]");
    ws.send("42[\"nobody\"]").await;
    ws.send("42[\"nobody\"]").await;
    ws.send("423[\"typing\"]").await;
    assert_eq!(ws.recv().await, "433[\"ok\"]");
    assert_eq!(user_events(&first), ["chat", "typing"]);
    assert_eq!(user_events(&second), ["other"]);
    let warnings: Vec<_> = emu
        .events()
        .into_iter()
        .filter(|v| {
            v["type"] == "warning" && v["message"].as_str().unwrap_or("").contains("`nobody`")
        })
        .collect();
    assert_eq!(warnings.len(), 1, "said once per event name");
    let closed = ws.sid.clone();
    ws.close().await;
    emu.wait_log("the connection's end", |v| {
        v["type"] == "connectionClosed" && v["connectionId"] == closed.as_str()
    })
    .await;
    // Control: a later socket on hub `control`, whose handler takes connected / disconnected,
    // gets both; had hub `h` routed its socket's, they were sent before this one connected.
    let mut later = WsClient::connect(&emu, "control", "").await.unwrap();
    later.join("/").await;
    control.wait_for("connected", 1).await;
    later.close().await;
    control.wait_for("disconnected", 1).await;
    // Nobody asked for connected / disconnected.
    assert!(first.named("connected").is_empty() && second.named("connected").is_empty());
    assert!(first.named("disconnected").is_empty() && second.named("disconnected").is_empty());
}

#[tokio::test]
async fn no_connect_handler_accepts_without_a_call() {
    let hook = Webhook::start().await;
    let cfg = TempConfig::new(&format!(
        "anonymous = true\n[[hub]]\nname = \"h\"\n[[hub.handler]]\nurl = \"{}\"\nsystem-events = [\"disconnected\"]\n",
        hook.template()
    ));
    let emu = Emu::start(&["--config", &cfg.arg()]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    assert!(ws.join("/").await.starts_with("40{"));
    ws.close().await;
    hook.wait_for("disconnected", 1).await;
    assert!(hook.named("connect").is_empty());
}

#[tokio::test]
async fn both_keys_sign_and_verify() {
    use hmac::{Hmac, Mac};
    let hook = Webhook::start().await;
    let cfg = TempConfig::new(&format!(
        "access-key = \"primary-key-0123456789\"\nsecondary-key = \"secondary-key-0123456789\"\n[webhook]\nurl = \"{}\"\n",
        hook.template()
    ));
    let emu = Emu::start(&["--config", &cfg.arg()]);
    let endpoint = format!("http://localhost:{}", emu.port);
    // A token signed with the secondary key is accepted.
    let token = mint(
        &[
            "--hub",
            "h",
            "--endpoint",
            &endpoint,
            "--access-key",
            "secondary-key-0123456789",
        ],
        None,
    );
    let mut ws = WsClient::connect(&emu, "h", &format!("access_token={token}"))
        .await
        .unwrap();
    ws.join("/").await;
    let connect = &hook.wait_for("connect", 1).await[0];
    let sig = |key: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(ws.sid.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    assert_eq!(
        connect.header("ce-signature"),
        format!(
            "{},{}",
            sig("primary-key-0123456789"),
            sig("secondary-key-0123456789")
        )
    );
    // The development key is no longer accepted.
    let dev = emu.token("h", None);
    assert_eq!(
        WsClient::connect(&emu, "h", &format!("access_token={dev}"))
            .await
            .err()
            .unwrap()
            .status,
        401
    );
}

#[tokio::test]
async fn reload_switches_handlers_without_dropping_clients_and_refuses_bad_files() {
    let (a, b) = (Webhook::start().await, Webhook::start().await);
    let body = |url: &str| {
        format!("anonymous = true\n[[hub]]\nname = \"h\"\n[[hub.handler]]\nurl = \"{url}\"\n")
    };
    let cfg = TempConfig::new(&body(&a.template()));
    let emu = Emu::start(&["--config", &cfg.arg()]);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    ws.join("/").await;
    ws.send("421[\"before\"]").await;
    assert_eq!(ws.recv().await, "431[\"ok\"]");

    cfg.write(&body(&b.template()));
    emu.wait_log("reload line", |v| {
        v["type"] == "config" && v["message"].as_str().unwrap_or("").contains("reloaded")
    })
    .await;
    ws.send("422[\"after\"]").await;
    assert_eq!(
        ws.recv().await,
        "432[\"ok\"]",
        "the same connection still works"
    );
    assert_eq!(user_events(&a), ["before"]);
    assert_eq!(user_events(&b), ["after"]);

    cfg.write("anonymous = true\n[[hub]]\nname = \"h\"\n[[hub.handler]]\nurl = \"ftp://nope\"\n");
    let refusal = emu
        .wait_log("refusal", |v| {
            v["type"] == "error" && v["message"].as_str().unwrap_or("").contains("refused")
        })
        .await;
    assert!(
        refusal["message"].as_str().unwrap().contains("line 5"),
        "{refusal}"
    );
    ws.send("423[\"still b\"]").await;
    assert_eq!(ws.recv().await, "433[\"ok\"]");
    assert_eq!(user_events(&b), ["after", "still b"]);
}

#[tokio::test]
async fn flags_win_over_the_file() {
    let hook = Webhook::start().await;
    let cfg = TempConfig::new(
        "anonymous = false\n[listen]\nport = 1\n[webhook]\nurl = \"http://127.0.0.1:9/{event}\"\n[engine]\nping-interval = \"7s\"\n",
    );
    // --port 0 (from Emu::start) beats port 1; --webhook beats the file; the file's
    // ping-interval beats the default.
    let emu = Emu::start(&[
        "--config",
        &cfg.arg(),
        "--webhook",
        &hook.template(),
        "--anonymous",
    ]);
    assert_ne!(emu.port, 1);
    let mut ws = WsClient::connect(&emu, "h", "").await.unwrap();
    assert_eq!(ws.open["pingInterval"], 7000);
    ws.join("/").await;
    hook.wait_for("connect", 1).await;
}

#[tokio::test]
async fn a_bad_file_stops_the_start_with_its_line() {
    let cfg = TempConfig::new("[listen]\nport = \"eighty\"\n");
    let out = std::process::Command::new(bin())
        .args(["serve", "--port", "0", "--config", &cfg.arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("sio-emu: invalid configuration"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[tokio::test]
async fn init_writes_a_starter_that_serve_accepts() {
    let cfg = TempConfig::new("");
    std::fs::remove_file(&cfg.path).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(bin())
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["init", &cfg.arg()]).status.success());
    let again = run(&["init", &cfg.arg()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(run(&["init", &cfg.arg(), "--force"]).status.success());
    let emu = Emu::start(&["--config", &cfg.arg()]);
    let config = emu.wait_log("config line", |v| v["type"] == "config").await;
    assert_eq!(config["config"]["hubs"][0]["name"], "chat");
    assert_eq!(
        config["config"]["accessKeys"][0], "ABCD…EFGH",
        "secrets masked"
    );
}
