//! Delivery to the webhook under a real working day: each socket's events in protocol order
//! (docs/protocol.md §14 decision 20), client events held back rather than dropped (§14 decision 21), and `connected` /
//! `disconnected` delivered at least once across a handler restart (docs/protocol.md §14 decision 23).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// The events of each socket in arrival order, retries of one event (same `ce-id`) counted once.
fn by_socket(events: &[Recorded]) -> HashMap<String, Vec<String>> {
    let mut seen = HashSet::new();
    let mut lanes: HashMap<String, Vec<String>> = HashMap::new();
    for r in events {
        if !seen.insert(r.header("ce-id").to_owned()) {
            continue;
        }
        lanes
            .entry(r.header("ce-socketId").to_owned())
            .or_default()
            .push(r.event().to_owned());
    }
    lanes
}

/// Asserts `connect`, `connected`, the user events `users`, `disconnected` for every socket.
fn assert_protocol_order(events: &[Recorded], sockets: usize, users: &[&str]) {
    let lanes = by_socket(events);
    assert_eq!(lanes.len(), sockets, "sockets seen by the webhook");
    let mut expected = vec!["connect".to_owned(), "connected".to_owned()];
    expected.extend(users.iter().map(|u| u.to_string()));
    expected.push("disconnected".into());
    let wrong: Vec<_> = lanes.iter().filter(|(_, got)| **got != expected).collect();
    assert!(
        wrong.is_empty(),
        "{} of {sockets} sockets out of order, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
}

/// Waits until the log shows `n` answered (2xx) webhook calls of `event`.
async fn wait_answered(emu: &Emu, event: &str, n: usize) {
    emu.wait_logs(&format!("{n} answered `{event}`"), n, |v| {
        v["type"] == "webhook" && v["event"] == event && v["ok"] == true
    })
    .await;
}

/// The warning that an attempt of `event` failed and will be retried.
fn is_retry(v: &Value, event: &str) -> bool {
    v["type"] == "warning"
        && v["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("webhook `{event}`")) && m.contains("retrying in"))
}

/// Opens a WebSocket client, joins `/`, emits `hello`, and closes at once.
async fn short_lived(emu: &Emu) {
    let mut client = WsClient::connect(emu, "chat", "").await.unwrap();
    let joined = client.join("/").await;
    assert!(joined.starts_with("40{"), "{joined}");
    client.send(r#"42["hello"]"#).await;
    client.close().await;
}

async fn run_short_lived(emu: &Arc<Emu>, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let emu = emu.clone();
            tokio::spawn(async move { short_lived(&emu).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_lived_sockets_reach_the_webhook_in_protocol_order() {
    let (hook, emu) = pair(&["--anonymous", "--quiet"]).await;
    let emu = Arc::new(emu);
    run_short_lived(&emu, 200).await;
    hook.wait_for_within("disconnected", 200, Duration::from_secs(60))
        .await;
    assert_protocol_order(&hook.events(), 200, &["hello"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_connected_still_comes_before_the_next_events() {
    let failed_once = Arc::new(Mutex::new(HashSet::new()));
    let seen = failed_once.clone();
    let hook = Webhook::with(move |r| {
        let first = r.event() == "connected"
            && seen
                .lock()
                .unwrap()
                .insert(r.header("ce-socketId").to_owned());
        if first {
            Reply::status(503, "restarting")
        } else {
            echo_ack(r)
        }
    })
    .await;
    let template = hook.template();
    let emu = Arc::new(Emu::start(&["--webhook", &template, "--anonymous"]));
    run_short_lived(&emu, 20).await;
    hook.wait_for_within("disconnected", 20, Duration::from_secs(30))
        .await;
    let events = hook.events();
    assert_protocol_order(&events, 20, &["hello"]);
    let connected = events.iter().filter(|r| r.event() == "connected").count();
    assert_eq!(
        connected, 40,
        "each `connected` failed once, then was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_unacked_events_all_arrive_in_order() {
    let (hook, emu) = pair(&["--anonymous", "--quiet"]).await;
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    client.join("/").await;
    for i in 0..20_000 {
        client.send(&format!(r#"42["n",{i}]"#)).await;
    }
    let got = hook
        .wait_for_within("n", 20_000, Duration::from_secs(400))
        .await;
    let order: Vec<u64> = got
        .iter()
        .map(|r| {
            let packet: Value = serde_json::from_str(&r.body[2..]).unwrap();
            packet[1].as_u64().unwrap()
        })
        .collect();
    assert!(order.iter().copied().eq(0..20_000), "events out of order");
    assert!(
        !emu.events().iter().any(|v| v["type"] == "warning"),
        "a warning was logged: {:?}",
        emu.events()
    );
    client.close().await;
}

/// Four clients each send 60 events of 950 KB to `emu` and leave; returns once the webhook has
/// them all and every `disconnected`.
async fn flood_with_large_events(emu: &Arc<Emu>, hook: &Webhook, round: usize) {
    let big = format!(r#"42["big","{}"]"#, "x".repeat(950_000));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (emu, big) = (emu.clone(), big.clone());
            tokio::spawn(async move {
                let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
                client.join("/").await;
                for _ in 0..60 {
                    client.send(&big).await;
                }
                client
            })
        })
        .collect();
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.unwrap());
    }
    hook.wait_for_within("big", 240 * round, Duration::from_secs(120))
        .await;
    for client in clients {
        client.close().await;
    }
    hook.wait_for("disconnected", 4 * round).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_events_to_a_slow_webhook_keep_memory_bounded() {
    let hook = Webhook::with(|r| {
        let mut reply = echo_ack(r);
        if r.header("ce-type") == "azure.webpubsub.user.message" {
            reply.delay = Duration::from_millis(150);
        }
        reply
    })
    .await;
    let template = hook.template();
    let emu = Arc::new(Emu::start(&[
        "--webhook",
        &template,
        "--anonymous",
        "--quiet",
    ]));
    let idle = proc_status_kib(emu.pid(), "VmRSS");
    let first = RssSampler::start(emu.pid());
    flood_with_large_events(&emu, &hook, 1).await;
    let peak_one = first.max_kib();
    drop(first);
    let after_one = proc_status_kib(emu.pid(), "VmRSS");
    let second = RssSampler::start(emu.pid());
    flood_with_large_events(&emu, &hook, 2).await;
    let peak_two = second.max_kib();
    let after_two = proc_status_kib(emu.pid(), "VmRSS");
    eprintln!(
        "RSS idle {idle} KiB, peaks {peak_one} and {peak_two} KiB, after {after_one} and {after_two} KiB"
    );
    // 240 events of 950 KB (228 MB) per round: without backpressure the process holds most of
    // them at once, and a leak of even a sixth of them shows in the second round.
    for peak in [peak_one, peak_two] {
        assert!(
            peak < idle + 80 * 1024,
            "RSS grew from {idle} KiB to {peak} KiB"
        );
    }
    // What the allocator keeps after a burst is what one burst needed, not added up across
    // bursts. How much of it glibc returns between bursts varies from run to run (its arenas
    // and trim threshold), so the bound is the first burst's peak, not its aftermath.
    assert!(
        after_two < peak_one + 8 * 1024,
        "RSS after two rounds {after_two} KiB, first round's peak {peak_one} KiB"
    );
    assert_eq!(hook.named("big").len(), 480, "every event arrived once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undelivered_events_are_named_at_shutdown() {
    let hook = Webhook::start().await;
    let template = hook.template();
    let mut emu = Emu::start(&[
        "--webhook",
        &template,
        "--anonymous",
        "--shutdown-grace",
        "1s",
    ]);
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    let joined = client.join("/").await;
    let sid: Value = serde_json::from_str(&joined[2..]).unwrap();
    let socket = sid["sid"].as_str().unwrap().to_owned();
    hook.wait_for("connected", 1).await;
    wait_answered(&emu, "connected", 1).await;
    hook.kill();
    client.close().await;
    emu.wait_log("a retried disconnected", |v| is_retry(v, "disconnected"))
        .await;
    assert_eq!(emu.terminate().await, 0);
    let summary = emu.wait_log("the undelivered summary", |v| {
        v["type"] == "error"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("still waiting for the webhook at shutdown"))
    });
    let summary = summary.await;
    let message = summary["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("`disconnected` of socket {socket}")),
        "{message}"
    );
}
