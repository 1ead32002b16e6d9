//! Virtual clients (`/_emu/clients`): real clients of the handler made from the admin surface,
//! against the real binary and a real webhook.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::*;

async fn post(base: &str, path: &str, body: Value) -> HttpReply {
    http("POST", &format!("{base}{path}"), &[], &body.to_string()).await
}

/// Reads a server-sent event stream until `pred` holds for what was read (bounded by WAIT).
async fn stream_until(base: &str, path: &str, pred: impl Fn(&str) -> bool) -> String {
    let authority = base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 8192];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pred(&text) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("stream {path} never matched; read:\n{text}"))
            .unwrap();
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text
}

#[tokio::test]
async fn two_virtual_clients_chat_through_the_handler() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let alice = post(&base, "/_emu/clients", json!({"hub": "chat", "namespace": "/chat", "userId": "alice", "auth": {"k": 1}, "query": {"q": "v", "EIO": "3", "access_token": "forged"}})).await;
    assert_eq!(alice.status, 201, "{}", alice.body);
    let alice = alice.json();
    let bob = post(
        &base,
        "/_emu/clients",
        json!({"hub": "chat", "namespace": "/chat", "userId": "bob"}),
    )
    .await
    .json();
    // The real handshake path: connect and connected reached the webhook with the user.
    let connects = hook.wait_for("connected", 2).await;
    assert_eq!(connects[0].header("ce-userId"), "alice");
    assert_eq!(connects[0].header("ce-connectionId"), alice["connectionId"]);
    assert_eq!(connects[0].header("ce-socketId"), alice["socketId"]);
    let connect = &hook.named("connect")[0];
    assert_eq!(connect.json()["query"]["q"], json!(["v"]));
    // The handshake's own parameters cannot be overridden from the body.
    assert_eq!(connect.json()["query"]["EIO"], json!(["4"]));
    // (A forged `access_token` in the body would have been a 401: the minted one is used.)

    // Alice emits with an ack: the event goes through her lane to the webhook, the ack comes back.
    let r = post(
        &base,
        &format!("/_emu/clients/{}/emit", alice["id"]),
        json!({"event": "say", "args": ["hi", 2], "ack": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ack"], json!(["ok"]));
    let said = &hook.wait_for("say", 1).await[0];
    assert_eq!(said.header("ce-connectionId"), alice["connectionId"]);
    assert!(said.body.ends_with("[\"say\",\"hi\",2]"), "{}", said.body);
    // Without an ack.
    let r = post(
        &base,
        &format!("/_emu/clients/{}/emit", alice["id"]),
        json!({"event": "note"}),
    )
    .await;
    assert_eq!(r.json(), json!({"sent": true}));
    hook.wait_for("note", 1).await;

    // Bob receives what is sent to the namespace.
    let emit = json!({"hub": "chat", "namespace": "/chat", "to": "namespace", "event": "news", "args": ["x"]});
    assert_eq!(post(&base, "/_emu/actions/emit", emit).await.status, 200);
    let text = stream_until(&base, &format!("/_emu/clients/{}/events", bob["id"]), |t| {
        t.contains("news")
    })
    .await;
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(
        text.contains("data: {\"args\":[\"x\"],\"event\":\"news\"}"),
        "{text}"
    );

    // Marked virtual in the connections view.
    let conns = http("GET", &format!("{base}/_emu/connections"), &[], "")
        .await
        .json();
    let listed = &conns["hubs"][0]["connections"];
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["virtual"] == true),
        "{conns}"
    );
    let list = http("GET", &format!("{base}/_emu/clients"), &[], "")
        .await
        .json();
    assert_eq!(list["clients"].as_array().unwrap().len(), 2);
    assert_eq!(list["clients"][0]["userId"], "alice");

    // DELETE disconnects: `disconnected` fires, and the id is gone.
    let r = http(
        "DELETE",
        &format!("{base}/_emu/clients/{}", alice["id"]),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let gone = &hook.wait_for("disconnected", 1).await[0];
    assert_eq!(gone.header("ce-connectionId"), alice["connectionId"]);
    let r = http(
        "DELETE",
        &format!("{base}/_emu/clients/{}", alice["id"]),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post(
        &base,
        &format!("/_emu/clients/{}/emit", alice["id"]),
        json!({"event": "x"}),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn virtual_clients_are_marked_on_the_timeline() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let c = post(&base, "/_emu/clients", json!({"hub": "hub"}))
        .await
        .json();
    hook.wait_for("connected", 1).await;
    // A positive control: a real client's lines carry no mark.
    let mut real = WsClient::connect(
        &emu,
        "hub",
        &format!("access_token={}", emu.token("hub", None)),
    )
    .await
    .unwrap();
    real.join("/").await;
    hook.wait_for("connected", 2).await;
    let real_id = real.sid.clone();
    let text = stream_until(&base, "/_emu/events", |t| {
        t.contains(&real_id) && t.contains("\"virtual\":true")
    })
    .await;
    let id = c["connectionId"].as_str().unwrap();
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["connectionId"].as_str() {
            Some(conn) if conn == id => assert_eq!(v["virtual"], true, "{v}"),
            Some(conn) if conn == real_id => assert!(v.get("virtual").is_none(), "{v}"),
            _ => {}
        }
    }
    real.close().await;
}

#[tokio::test]
async fn a_refused_connect_answers_with_its_reason() {
    let hook = Webhook::with(|r: &Recorded| {
        if r.event() == "connect" {
            Reply::status(401, "members only")
        } else {
            echo_ack(r)
        }
    })
    .await;
    let emu = Emu::start(&["--webhook", &hook.template()]);
    let r = post(
        &emu.base(),
        "/_emu/clients",
        json!({"hub": "hub", "userId": "eve"}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "ConnectRefused");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("members only"),
        "{}",
        r.body
    );
    assert_eq!(hook.named("connect")[0].header("ce-userId"), "eve");
    // Nothing is left behind.
    let list = http("GET", &format!("{}/_emu/clients", emu.base()), &[], "")
        .await
        .json();
    assert_eq!(list["clients"], json!([]));
}

#[tokio::test]
async fn at_most_100_at_once() {
    let (_hook, emu) = pair(&[]).await;
    let base = emu.base();
    let mut ids = Vec::new();
    for _ in 0..100 {
        let r = post(&base, "/_emu/clients", json!({"hub": "hub"})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.json()["id"].clone());
    }
    let r = post(&base, "/_emu/clients", json!({"hub": "hub"})).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["code"], "TooManyClients");
    assert!(r.body.contains("at most 100"), "{}", r.body);
    // One disconnected frees its slot.
    let r = http(
        "DELETE",
        &format!("{base}/_emu/clients/{}", ids[0]),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = post(&base, "/_emu/clients", json!({"hub": "hub"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn a_server_disconnect_ends_the_stream_and_the_client() {
    let (hook, emu) = pair(&[]).await;
    let base = emu.base();
    let c = post(&base, "/_emu/clients", json!({"hub": "hub"}))
        .await
        .json();
    hook.wait_for("connected", 1).await;
    let close = json!({"hub": "hub", "connectionId": c["connectionId"]});
    assert_eq!(post(&base, "/_emu/actions/close", close).await.status, 200);
    let text = stream_until(&base, &format!("/_emu/clients/{}/events", c["id"]), |t| {
        t.contains("disconnected")
    })
    .await;
    assert!(text.contains("data: {\"disconnected\":"), "{text}");
    hook.wait_for("disconnected", 1).await;
    let mut list = Value::Null;
    let gone = poll_until_async(WAIT, async || {
        list = http("GET", &format!("{base}/_emu/clients"), &[], "")
            .await
            .json();
        (list["clients"] == json!([])).then_some(())
    });
    assert!(gone.await.is_some(), "{list}");
    // Its stream still tells why, an emit is refused, and DELETE forgets it.
    let text = stream_until(&base, &format!("/_emu/clients/{}/events", c["id"]), |t| {
        t.contains("disconnected")
    })
    .await;
    assert!(text.contains("data: {\"disconnected\":"), "{text}");
    let r = post(
        &base,
        &format!("/_emu/clients/{}/emit", c["id"]),
        json!({"event": "x"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = http(
        "DELETE",
        &format!("{base}/_emu/clients/{}", c["id"]),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http(
        "GET",
        &format!("{base}/_emu/clients/{}/events", c["id"]),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test]
async fn bad_requests_are_explained() {
    let (_hook, emu) = pair(&[]).await;
    let base = emu.base();
    for (body, says) in [
        (json!({"hub": "1x"}), "not a valid hub name"),
        (json!({"hub": "h", "namespace": "x"}), "must start with /"),
        (
            json!({"hub": "h", "auth": [1]}),
            "`auth` must be a JSON object",
        ),
        (
            json!({"hub": "h", "userId": ""}),
            "`userId` must not be empty",
        ),
        (json!({"hub": "h", "extra": 1}), "not the expected JSON"),
        (json!({}), "not the expected JSON"),
    ] {
        let r = post(&base, "/_emu/clients", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.json()["message"].as_str().unwrap().contains(says),
            "{body}: {}",
            r.body
        );
    }
    let c = post(&base, "/_emu/clients", json!({"hub": "h"}))
        .await
        .json();
    let r = post(
        &base,
        &format!("/_emu/clients/{}/emit", c["id"]),
        json!({"event": "connect"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http("GET", &format!("{base}/_emu/clients/{}", c["id"]), &[], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "DELETE");
    let r = http("PUT", &format!("{base}/_emu/clients"), &[], "").await;
    assert_eq!(r.status, 405);
    let r = http("GET", &format!("{base}/_emu/clients/999/events"), &[], "").await;
    assert_eq!(r.status, 404);
    // The page's panel is served with its type.
    for (file, kind) in [
        ("playground.js", "text/javascript"),
        ("playground.css", "text/css"),
    ] {
        let r = http("GET", &format!("{base}/_emu/{file}"), &[], "").await;
        assert_eq!(r.status, 200);
        assert!(
            r.headers["content-type"].starts_with(kind),
            "{file}: {:?}",
            r.headers
        );
    }
    // The same loopback gate as every admin route.
    let r = http(
        "POST",
        &format!("{base}/_emu/clients"),
        &[("origin", "http://evil.example")],
        "{\"hub\":\"h\"}",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn their_traffic_is_recorded_like_any_clients() {
    let dir =
        std::env::temp_dir().join(format!("sio-emu-vc-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("session.jsonl");
    let (hook, mut emu) = pair(&["--record", file.to_str().unwrap()]).await;
    let base = emu.base();
    let c = post(
        &base,
        "/_emu/clients",
        json!({"hub": "hub", "userId": "vera"}),
    )
    .await
    .json();
    let r = post(
        &base,
        &format!("/_emu/clients/{}/emit", c["id"]),
        json!({"event": "say", "args": [1], "ack": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    hook.wait_for("say", 1).await;
    assert_eq!(emu.terminate().await, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    let id = c["connectionId"].as_str().unwrap();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(id)).collect();
    assert!(mine.iter().any(|l| l.contains("\"say\"")), "{text}");
    assert!(mine.iter().any(|l| l.contains("disconnected")), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
