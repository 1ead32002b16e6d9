//! The built-in handlers (`--webhook builtin:echo|chat`) through the real binary: acks, the chat
//! broadcast over the service's own REST API, the preflight answer and the signature check.

use std::time::Duration;

use crate::util::*;

const QUIET: Duration = Duration::from_millis(300);

async fn joined(emu: &Emu, nsp: &str) -> WsClient {
    let mut ws = WsClient::connect(emu, "hub", "").await.unwrap();
    let answer = ws.join(nsp).await;
    let expected = if nsp == "/" {
        "40{".to_string()
    } else {
        format!("40{nsp},{{")
    };
    assert!(answer.starts_with(&expected), "join {nsp}: {answer}");
    ws
}

#[tokio::test]
async fn echo_acks_with_the_event_arguments() {
    let emu = Emu::start(&["--webhook", "builtin:echo", "--anonymous"]);
    let mut ws = joined(&emu, "/chat").await;
    ws.send(r#"42/chat,7["ev",1,{"b":[2],"a":1.5}]"#).await;
    assert_eq!(ws.recv().await, r#"43/chat,7[1,{"b":[2],"a":1.5}]"#);
    // No ack id: 204, nothing for the client.
    ws.send(r#"42/chat,["ev",1]"#).await;
    ws.expect_silence(QUIET).await;
    // Root namespace, no arguments.
    let mut root = joined(&emu, "/").await;
    root.send(r#"4212["ping"]"#).await;
    assert_eq!(root.recv().await, "4312[]");
    // Every call went through the real webhook path, preflight and signature included.
    let hook = emu
        .wait_log("the user event webhook", |v| {
            v["type"] == "webhook" && v["event"] == "ev" && v["status"] == 200
        })
        .await;
    assert_eq!(hook["ok"], true);
    assert!(
        hook["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{hook}"
    );
    assert!(
        emu.events()
            .iter()
            .filter(|v| v["type"] == "webhook")
            .all(|v| v["ok"] == true),
        "{:?}",
        emu.events()
    );
}

#[tokio::test]
async fn chat_broadcasts_to_the_rest_of_the_namespace_and_acks() {
    let emu = Emu::start(&["--webhook", "builtin:chat", "--anonymous"]);
    let mut sender = joined(&emu, "/chat").await;
    let mut other = joined(&emu, "/chat").await;
    let mut elsewhere = joined(&emu, "/").await;
    sender.send(r#"42/chat,5["msg","hello",{"n":1}]"#).await;
    assert_eq!(other.recv().await, r#"42/chat,["msg","hello",{"n":1}]"#);
    assert_eq!(sender.recv().await, r#"43/chat,5["hello",{"n":1}]"#);
    // The sender gets its ack only; another namespace gets nothing.
    sender.expect_silence(QUIET).await;
    elsewhere.expect_silence(Duration::ZERO).await;
    // Without an ack id the others still get it, the sender gets nothing.
    sender.send(r#"42/chat,["msg","again"]"#).await;
    assert_eq!(other.recv().await, r#"42/chat,["msg","again"]"#);
    sender.expect_silence(QUIET).await;
    elsewhere.expect_silence(Duration::ZERO).await;
    // The broadcast was a real, authenticated REST call to the namespace group.
    let rest = emu
        .wait_log("the broadcast REST call", |v| v["type"] == "rest")
        .await;
    assert_eq!(rest["status"], 202, "{rest}");
    assert_eq!(rest["hub"], "hub", "{rest}");
    assert_eq!(rest["matched"], 1, "{rest}");
}

#[tokio::test]
async fn chat_uses_the_configured_access_key() {
    let emu = Emu::start(&[
        "--webhook",
        "builtin:chat",
        "--anonymous",
        "--access-key",
        "another-key-for-this-test",
    ]);
    let mut sender = joined(&emu, "/").await;
    let mut other = joined(&emu, "/").await;
    sender.send(r#"421["m",1]"#).await;
    assert_eq!(other.recv().await, r#"42["m",1]"#);
    assert_eq!(sender.recv().await, "431[1]");
}

#[tokio::test]
async fn handlers_answer_the_preflight_and_check_signatures() {
    let emu = Emu::start(&["--webhook", "builtin:echo"]);
    let template = emu.ready["webhook"].as_str().unwrap().to_owned();
    assert!(template.starts_with("http://127.0.0.1:"), "{template}");
    let url = |event: &str| template.replace("{hub}", "hub").replace("{event}", event);

    let preflight = http(
        "OPTIONS",
        &url("validate"),
        &[("WebHook-Request-Origin", "localhost")],
        "",
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.headers["webhook-allowed-origin"], "*");

    let event = |signature: String| {
        let url = url("ev");
        async move {
            http(
                "POST",
                &url,
                &[
                    ("content-type", "text/plain"),
                    ("ce-type", "azure.webpubsub.user.message"),
                    ("ce-connectionId", "conn1"),
                    ("ce-hub", "hub"),
                    ("ce-namespace", "/"),
                    ("ce-socketId", "s1"),
                    ("ce-eventName", "ev"),
                    ("ce-signature", &signature),
                ],
                r#"423["ev","x"]"#,
            )
            .await
        }
    };
    // docs/protocol.md §6 vector: the development key signs `conn1` like this.
    let good = "sha256=8de7281e588e23b0a30a7180ffa240257b8176e983004c240c9f3f7a7233c993";
    let ok = event(good.into()).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, r#"433["x"]"#);
    assert!(ok.headers["content-type"].starts_with("text/plain"));
    let forged = event(format!("sha256={}", "0".repeat(64))).await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert!(forged.body.contains("ce-signature"), "{}", forged.body);
    let unsigned = event(String::new()).await;
    assert_eq!(unsigned.status, 401);
}

#[tokio::test]
async fn unknown_builtin_is_a_usage_error() {
    let out = std::process::Command::new(bin())
        .args(["serve", "--port", "0", "--webhook", "builtin:nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown built-in handler `builtin:nope`")
            && stderr.contains("builtin:echo, builtin:chat"),
        "{stderr}"
    );
}
