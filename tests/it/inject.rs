//! Fault injection (`serve --fault`, `[[fault]]`, `/_emu/faults`) end to end: the real binary
//! with `--seed 1`, a recording test webhook and a WebSocket client; each fault kind is
//! observed at the client and at the webhook, and every injected fault shows as a `fault` log
//! line. Delays are checked as ordering, never as timing.

use crate::util::{Emu, WsClient, http, pair};

/// Starts the emulator with `--seed 1` and one `--fault` per rule.
async fn with_faults(rules: &[&str]) -> (crate::util::Webhook, Emu) {
    let mut args = vec!["--anonymous", "--seed", "1"];
    for rule in rules {
        args.extend(["--fault", rule]);
    }
    pair(&args).await
}

/// The `fault` log lines so far.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_for_the_handler_without_calling_it() {
    let (hook, emu) = with_faults(&["event=connect,status=500"]).await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    let answer = client.join("/").await;
    assert!(answer.starts_with("44"), "{answer}");
    emu.wait_log("fault line", |e| {
        e["type"] == "fault" && e["action"] == "status=500" && e["event"] == "connect"
    })
    .await;
    assert!(hook.named("connect").is_empty(), "the handler saw connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_calls_the_handler_and_discards_its_answer() {
    let (hook, emu) = with_faults(&["event=connect,timeout"]).await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    let answer = client.join("/").await;
    assert!(answer.starts_with("44"), "{answer}");
    assert!(answer.contains("did not answer"), "{answer}");
    hook.wait_for("connect", 1).await;
    let line = emu
        .wait_log("the fault line", |e| e["type"] == "fault")
        .await;
    assert_eq!(line["action"], "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_never_sends_and_a_blocking_event_times_out() {
    let (hook, emu) = with_faults(&["event=connect,drop"]).await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    let answer = client.join("/").await;
    assert!(answer.starts_with("44"), "{answer}");
    assert!(answer.contains("did not answer"), "{answer}");
    assert!(hook.named("connect").is_empty());
    let line = emu
        .wait_log("the fault line", |e| e["type"] == "fault")
        .await;
    assert_eq!(line["action"], "drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_lets_a_later_event_overtake() {
    let (hook, emu) = with_faults(&["event=slow,delay=1s"]).await;
    let mut a = WsClient::connect(&emu, "chat", "").await.unwrap();
    let mut b = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert!(a.join("/").await.starts_with("40"));
    assert!(b.join("/").await.starts_with("40"));
    a.send(r#"42["slow"]"#).await;
    emu.wait_log("delay fault", |e| {
        e["type"] == "fault" && e["event"] == "slow"
    })
    .await;
    b.send(r#"42["fast"]"#).await;
    hook.wait_for("slow", 1).await;
    let order: Vec<String> = hook
        .events()
        .iter()
        .map(|r| r.event().to_owned())
        .filter(|e| e == "slow" || e == "fast")
        .collect();
    assert_eq!(order, ["fast", "slow"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_delivers_disconnected_twice() {
    let (hook, emu) = with_faults(&["event=disconnected,twice"]).await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert!(client.join("/").await.starts_with("40"));
    hook.wait_for("connected", 1).await;
    client.close().await;
    let gone = hook.wait_for("disconnected", 2).await;
    assert_eq!(gone.len(), 2);
    // The duplicate is the same delivery again, as at-least-once redelivers it: same `ce-id`
    // (what a handler deduplicates on), same signature, same headers, same body.
    assert!(!gone[0].header("ce-id").is_empty(), "{:?}", gone[0].headers);
    assert_eq!(gone[0].header("ce-id"), gone[1].header("ce-id"));
    assert!(!gone[0].header("ce-signature").is_empty());
    assert_eq!(gone[0].headers, gone[1].headers);
    assert_eq!(gone[0].body, gone[1].body);
    assert_eq!(hook.named("connected").len(), 1);
    let line = emu
        .wait_log("the fault line", |e| e["type"] == "fault")
        .await;
    assert_eq!(line["action"], "twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_transport_drops_the_client_after_connected() {
    let (hook, emu) = with_faults(&["disconnect-transport"]).await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert!(client.join("/").await.starts_with("40"));
    client.expect_closed().await;
    let gone = hook.wait_for("disconnected", 1).await;
    assert_eq!(gone[0].json()["reason"], "transport error");
    emu.wait_log("fault line", |e| {
        e["type"] == "fault" && e["action"] == "disconnect-transport"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lists_adds_and_clears_rules() {
    let (hook, emu) = with_faults(&["event=chat*,delay=10ms,p=0.5"]).await;
    let url = format!("{}/_emu/faults", emu.base());
    let list = http("GET", &url, &[], "").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json()["faults"],
        serde_json::json!(["event=chat*,delay=10ms,p=0.5"])
    );

    let added = http("POST", &url, &[], "event=connect,status=503").await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["rule"], "event=connect,status=503");
    let json = http(
        "POST",
        &url,
        &[("content-type", "application/json")],
        r#"{"rule":"hub=chat,event=disconnected,twice"}"#,
    )
    .await;
    assert_eq!(json.status, 201, "{}", json.body);
    let bad = http("POST", &url, &[], "event=x,explode").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("explode"), "{}", bad.body);
    assert_eq!(
        http("GET", &url, &[], "").await.json()["faults"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // The added rule is in force at once.
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert!(client.join("/").await.starts_with("44"));
    assert!(hook.named("connect").is_empty());

    let cleared = http("DELETE", &url, &[], "").await;
    assert_eq!(cleared.status, 204);
    assert_eq!(
        http("GET", &url, &[], "").await.json()["faults"],
        serde_json::json!([])
    );
    assert_eq!(http("PUT", &url, &[], "").await.status, 405);
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert!(client.join("/").await.starts_with("40"));
    // With the rules gone, the handler sees this socket's connect and connected.
    assert_eq!(hook.wait_for("connect", 1).await.len(), 1);
    hook.wait_for("connected", 1).await;
}
