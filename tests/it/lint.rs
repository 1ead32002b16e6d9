//! The contract lint against the real binary: each rule fires for a purpose-built bad handler
//! (or bad REST call), names its docs/protocol.md section, lands in the recording and in the shutdown
//! summary; a well-behaved handler produces no finding at all.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::*;

/// Rule ids of the lint lines logged so far.
fn rules(emu: &Emu) -> BTreeSet<String> {
    emu.events()
        .iter()
        .filter(|v| v["type"] == "lint")
        .map(|v| {
            assert!(v["section"].as_str().unwrap().starts_with('§'), "{v}");
            assert!(!v["message"].as_str().unwrap().is_empty(), "{v}");
            v["rule"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn wait_rule(emu: &Emu, rule: &str) -> Value {
    emu.wait_log(&format!("lint {rule}"), |v| {
        v["type"] == "lint" && v["rule"] == rule
    })
    .await
}

/// The shutdown summary line.
async fn summary(emu: &mut Emu) -> Value {
    assert_eq!(emu.terminate().await, 0);
    emu.wait_log("lintSummary", |v| v["type"] == "lintSummary")
        .await
}

fn api(emu: &Emu, path: &str) -> String {
    format!("{}/api/hubs/chat{path}", emu.base())
}

async fn send(url: &str, body: &str) -> HttpReply {
    http("POST", url, &[("content-type", "text/plain")], body).await
}

async fn joined(emu: &Emu, nsp: &str) -> WsClient {
    let mut ws = WsClient::connect(emu, "chat", "").await.unwrap();
    let answer = ws.join(nsp).await;
    assert!(answer.starts_with("40"), "{answer}");
    ws
}

#[tokio::test]
async fn a_well_behaved_handler_has_no_findings() {
    let record = std::env::temp_dir().join(format!("sio-emu-lint-ok-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let (hook, mut emu) = pair(&[
        "--anonymous",
        "--rest-anonymous",
        "--record",
        record.to_str().unwrap(),
    ])
    .await;
    let mut ws = joined(&emu, "/ns").await;
    hook.wait_for("connected", 1).await;
    ws.send(r#"42/ns,5["hello"]"#).await;
    assert_eq!(ws.recv().await, r#"43/ns,5["ok"]"#);
    let add = http(
        "POST",
        &api(&emu, "/:addToGroups?api-version=2024-01-01"),
        &[("content-type", "application/json")],
        &format!(
            r#"{{"groups":["0~L25z~cm0"],"filter":"connectionId eq '{}'"}}"#,
            ws.sid
        ),
    )
    .await;
    assert_eq!(add.status, 200, "{}", add.body);
    let to_room = send(
        &api(
            &emu,
            "/groups/0~L25z~cm0/:send?api-version=2024-12-01&filter=not%20('0~L25z~cm0'%20in%20groups)",
        ),
        r#"42/ns,["news"]"#,
    )
    .await;
    assert_eq!(to_room.status, 202, "{}", to_room.body);
    let to_ns = send(
        &api(&emu, "/groups/0~L25z~/:send?api-version=2024-01-01"),
        r#"42/ns,["all"]"#,
    )
    .await;
    assert_eq!(to_ns.status, 202);
    assert_eq!(ws.recv().await, r#"42/ns,["all"]"#);
    ws.send("41/ns,").await;
    hook.wait_for("disconnected", 1).await;
    let summary = summary(&mut emu).await;
    assert_eq!(summary["total"], 0, "{summary}");
    assert!(rules(&emu).is_empty(), "{:?}", rules(&emu));
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(!text.contains("\"type\":\"lint\""), "{text}");
    let _ = std::fs::remove_file(&record);
}

#[tokio::test]
async fn connect_answers() {
    let hook = Webhook::with(|r| match (r.event(), r.header("ce-namespace")) {
        ("connect", "/crash") => Reply::status(500, "boom"),
        ("connect", "/sneaky") => Reply {
            content_type: "application/json",
            ..Reply::status(200, r#"{"statusCode":401}"#)
        },
        _ => echo_ack(r),
    })
    .await;
    let template = hook.template();
    let mut emu = Emu::start(&["--webhook", &template, "--anonymous"]);
    let mut ws = WsClient::connect(&emu, "chat", "").await.unwrap();
    assert!(ws.join("/crash").await.starts_with("44/crash,"));
    let finding = wait_rule(&emu, "connect-status").await;
    assert_eq!(finding["section"], "§5.2");
    assert!(finding["message"].as_str().unwrap().contains("500"));
    assert!(ws.join("/sneaky").await.starts_with("40/sneaky,"));
    wait_rule(&emu, "connect-refusal-body").await;
    assert!(ws.join("/").await.starts_with("40"));
    let summary = summary(&mut emu).await;
    assert_eq!(summary["rules"]["connect-status"], 1, "{summary}");
    assert_eq!(summary["rules"]["connect-refusal-body"], 1, "{summary}");
    assert_eq!(summary["total"], 2, "{summary}");
}

#[tokio::test]
async fn user_event_answers() {
    let hook = Webhook::with(|r| match r.event() {
        "garbage" => Reply::status(200, "hello"),
        "wrong-id" => Reply::status(200, r#"43/ns,99["x"]"#),
        "unasked" => Reply::status(200, r#"43/ns,1["x"]"#),
        "wrong-ns" => Reply::status(200, r#"43/other,1["x"]"#),
        "json" => Reply {
            content_type: "application/json",
            ..Reply::status(200, r#"43/ns,1["x"]"#)
        },
        _ => echo_ack(r),
    })
    .await;
    let template = hook.template();
    let emu = Emu::start(&["--webhook", &template, "--anonymous"]);
    let mut ws = joined(&emu, "/ns").await;
    ws.send(r#"42/ns,1["garbage"]"#).await;
    assert_eq!(wait_rule(&emu, "reply-not-packet").await["section"], "§5.4");
    ws.send(r#"42/ns,1["wrong-id"]"#).await;
    let finding = wait_rule(&emu, "ack-unknown-id").await;
    assert!(
        finding["message"].as_str().unwrap().contains("99"),
        "{finding}"
    );
    ws.send(r#"42/ns,1["wrong-ns"]"#).await;
    wait_rule(&emu, "reply-namespace").await;
    ws.send(r#"42/ns,1["json"]"#).await;
    wait_rule(&emu, "reply-content-type").await;
    ws.send(r#"42/ns,["unasked"]"#).await;
    emu.wait_log("the second ack-unknown-id", |v| {
        v["rule"] == "ack-unknown-id" && v["message"].as_str().unwrap().contains("no ack")
    })
    .await;
    // A correct ack after all that: nothing new.
    let before = emu.events().iter().filter(|v| v["type"] == "lint").count();
    ws.send(r#"42/ns,7["fine"]"#).await;
    // The bad acks above were forwarded too; skip them.
    while ws.recv().await != r#"43/ns,7["ok"]"# {}
    let after = emu.events().iter().filter(|v| v["type"] == "lint").count();
    assert_eq!(before, after, "{:?}", rules(&emu));
    assert!(!rules(&emu).contains("connect-status"));
}

#[tokio::test]
async fn slow_answers_and_failing_system_events() {
    let hook = Webhook::with(|r| match r.event() {
        "slow" => Reply {
            delay: std::time::Duration::from_millis(300),
            ..Reply::status(204, "")
        },
        "connected" | "disconnected" => Reply::status(404, "no such function"),
        _ => echo_ack(r),
    })
    .await;
    let template = hook.template();
    let emu = Emu::start(&["--webhook", &template, "--anonymous", "--lint-slow", "50ms"]);
    let mut ws = joined(&emu, "/").await;
    let finding = wait_rule(&emu, "system-event-status").await;
    assert_eq!(finding["section"], "§5.3");
    assert!(finding["message"].as_str().unwrap().contains("connected"));
    ws.send(r#"42["slow"]"#).await;
    let finding = emu
        .wait_log("slow-response for `slow`", |v| {
            v["rule"] == "slow-response" && v["message"].as_str().unwrap().contains("`slow`")
        })
        .await;
    assert_eq!(finding["section"], "§14 (decision 14)");
}

#[tokio::test]
async fn rest_calls() {
    let record =
        std::env::temp_dir().join(format!("sio-emu-lint-rest-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let (_hook, mut emu) = pair(&[
        "--anonymous",
        "--rest-anonymous",
        "--record",
        record.to_str().unwrap(),
    ])
    .await;
    let _ws = joined(&emu, "/ns").await;

    let bad_group = send(
        &api(&emu, "/groups/0~%2Fns~rm/:send?api-version=2024-01-01"),
        r#"42/ns,["x"]"#,
    )
    .await;
    assert_eq!(bad_group.status, 202);
    assert_eq!(wait_rule(&emu, "group-name").await["section"], "§8");

    let nowhere = send(
        &api(&emu, "/:send?api-version=2024-01-01"),
        r#"42/nope,["x"]"#,
    )
    .await;
    assert_eq!(nowhere.status, 202);
    let finding = wait_rule(&emu, "namespace-never-joined").await;
    assert!(finding["message"].as_str().unwrap().contains("/nope"));

    let disconnect = send(
        &api(&emu, "/groups/0~L25z~/:send?api-version=2024-01-01"),
        r#"41/ns,{"reason":"bye"}"#,
    )
    .await;
    assert_eq!(disconnect.status, 400);
    assert_eq!(
        wait_rule(&emu, "disconnect-payload").await["section"],
        "§7.3"
    );

    let filtered = send(
        &api(
            &emu,
            "/:send?api-version=2024-01-01&filter=%270~L25z~bm9wZQ%27%20in%20groups",
        ),
        r#"42/ns,["x"]"#,
    )
    .await;
    assert_eq!(filtered.status, 202);
    let finding = wait_rule(&emu, "filter-unknown-group").await;
    assert_eq!(finding["section"], "§9");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("0~L25z~bm9wZQ")
    );

    let old = send(
        &api(&emu, "/:send?api-version=2019-01-01"),
        r#"42/ns,["x"]"#,
    )
    .await;
    assert_eq!(old.status, 202);
    wait_rule(&emu, "api-version").await;

    // Correct calls after the bad ones add nothing.
    let before = emu.events().iter().filter(|v| v["type"] == "lint").count();
    let ok = send(
        &api(&emu, "/groups/0~L25z~/:send?api-version=2024-12-01"),
        r#"42/ns,["fine"]"#,
    )
    .await;
    assert_eq!(ok.status, 202);
    let summary = summary(&mut emu).await;
    let after = emu.events().iter().filter(|v| v["type"] == "lint").count();
    assert_eq!(before, after);
    assert_eq!(summary["total"], 5, "{summary}");
    let text = std::fs::read_to_string(&record).unwrap();
    let recorded: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "lint")
        .collect();
    assert_eq!(recorded.len(), 5, "{text}");
    assert!(
        recorded
            .iter()
            .all(|v| v["t"].is_number() && v["section"].is_string())
    );
    let _ = std::fs::remove_file(&record);
}
