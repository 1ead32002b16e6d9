//! Decision 24 and hub lifetimes against the real binary: the `/_emu/` admin surface refuses
//! cross-site browser requests (a foreign `Origin`, `Sec-Fetch-Site: cross-site`) and requests
//! whose `Host` does not name this server by a loopback name (DNS rebinding), while curl-style
//! and same-origin requests keep working; listening beyond loopback prints a warning naming
//! what is exposed; and hub names chosen by refused clients leave no state and no memory behind,
//! while a hub created by an authorised REST call lives exactly as long as its state.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;
use sio_emu::auth::{self, TokenClaims};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::util::*;

/// `GET /_emu/faults`: the rules in force.
async fn faults(emu: &Emu) -> Vec<Value> {
    let reply = http("GET", &format!("{}/_emu/faults", emu.base()), &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["faults"].as_array().unwrap().clone()
}

/// The hub names `GET /_emu/connections` lists.
async fn listed_hubs(emu: &Emu) -> BTreeSet<String> {
    let reply = http("GET", &format!("{}/_emu/connections", emu.base()), &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hub"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `GET /_emu/connections` lists exactly `expected`.
async fn wait_listed(emu: &Emu, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    let mut listed = BTreeSet::new();
    let found = poll_until_async(WAIT, async || {
        listed = listed_hubs(emu).await;
        (listed == expected).then_some(())
    });
    assert!(
        found.await.is_some(),
        "listed {listed:?}, expected {expected:?}"
    );
}

/// One raw request with the given head lines (the request line and `Host` included).
async fn raw(emu: &Emu, head: &str) -> (u16, Value) {
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    let (status, body) = raw_exchange(&format!("127.0.0.1:{}", emu.port), request.as_bytes(), 4096)
        .await
        .expect("an answer");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A cross-site form POST (the kind a page on any site can make a browser send) adds no fault
/// and resets nothing; the same POST from this server's own origin, or from curl, works.
#[tokio::test]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let emu = Emu::start(&["--anonymous"]);
    let url = format!("{}/_emu/faults", emu.base());
    let evil = [
        ("content-type", "text/plain"),
        ("origin", "http://evil.example"),
    ];
    let reply = http("POST", &url, &evil, "event=connect,status=500").await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.json()["code"], "Forbidden");
    let message = reply.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("Origin `http://evil.example`"),
        "{message}"
    );
    assert!(
        faults(&emu).await.is_empty(),
        "the refused rule took effect"
    );
    emu.wait_log("the refusal's log line", |v| {
        v["type"] == "admin"
            && v["status"] == 403
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("Origin check"))
    })
    .await;

    // Fetch metadata alone also marks a cross-site request.
    let cross = [("sec-fetch-site", "cross-site")];
    let reply = http("POST", &url, &cross, "event=connect,status=500").await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(faults(&emu).await.is_empty());

    // A reset from another site closes nothing.
    let mut client = WsClient::connect(&emu, "chat", "").await.unwrap();
    let reset = format!("{}/_emu/reset", emu.base());
    let reply = http("POST", &reset, &evil, "").await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let view = http("GET", &format!("{}/_emu/connections", emu.base()), &[], "").await;
    assert_eq!(view.json()["connections"], 1, "{}", view.body);

    // Positive controls: this server's own origin, and curl (no Origin), both work.
    let own = format!("http://localhost:{}", emu.port);
    let same = [("content-type", "text/plain"), ("origin", own.as_str())];
    let reply = http("POST", &url, &same, "event=connect,status=500").await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = http("POST", &url, &[], "event=chat,status=503").await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(faults(&emu).await.len(), 2);
    let reply = http("POST", &reset, &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    client.expect_closed().await;
}

/// A page on a DNS name rebound to 127.0.0.1 sends its own name as `Host`: refused, so it cannot
/// read the Engine.IO sids. Loopback names, with or without the port, are answered.
#[tokio::test]
async fn foreign_host_names_are_refused() {
    let emu = Emu::start(&["--anonymous"]);
    let port = emu.port;
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost:{}", port.wrapping_add(1).max(1)),
    ] {
        let (status, body) = raw(
            &emu,
            &format!("GET /_emu/connections HTTP/1.1\r\nHost: {host}"),
        )
        .await;
        assert_eq!(status, 403, "Host: {host}: {body}");
        assert_eq!(body["code"], "Forbidden");
        assert!(body["message"].as_str().unwrap().contains("Host"), "{body}");
    }
    let (status, body) = raw(&emu, "GET /_emu/connections HTTP/1.1").await;
    assert_eq!(status, 403, "no Host: {body}");
    let (status, body) = raw(
        &emu,
        "GET http://evil.example/_emu/connections HTTP/1.1\r\nHost: localhost",
    )
    .await;
    assert_eq!(status, 403, "absolute target: {body}");

    for host in [
        format!("localhost:{port}"),
        "127.0.0.1".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("app.localhost:{port}"),
    ] {
        let (status, body) = raw(
            &emu,
            &format!("GET /_emu/connections HTTP/1.1\r\nHost: {host}"),
        )
        .await;
        assert_eq!(status, 200, "Host: {host}: {body}");
        assert_eq!(body["connections"], 0, "{body}");
    }
}

/// `--host 0.0.0.0` warns, right after the ready line, about the development key, anonymous
/// hubs and the REST API; the default loopback listener does not.
#[tokio::test]
async fn listening_beyond_loopback_warns() {
    let emu = Emu::start(&["--anonymous", "--host", "0.0.0.0"]);
    let warning = emu
        .wait_log("the exposure warning", |v| v["type"] == "warning")
        .await;
    let message = warning["message"].as_str().unwrap();
    for expected in [
        "0.0.0.0",
        "public development access key",
        "anonymous hubs",
        "REST API is reachable",
        "/_emu/ admin surface stays loopback-only",
    ] {
        assert!(message.contains(expected), "`{expected}` in {message}");
    }
    assert!(warning["hint"].as_str().unwrap().contains("--access-key"));

    // Loopback only: the warning would come before any request is served; an admin line
    // proves serving started, and no warning precedes it.
    let quiet = Emu::start(&["--anonymous"]);
    let reply = http("POST", &format!("{}/_emu/reset", quiet.base()), &[], "").await;
    assert_eq!(reply.status, 200);
    quiet
        .wait_log("the admin line", |v| v["type"] == "admin")
        .await;
    assert!(
        !quiet.events().iter().any(|v| v["type"] == "warning"),
        "{:?}",
        quiet.events()
    );
}

/// The pretty banner shows the warning too, even with `--quiet`.
#[tokio::test]
async fn the_pretty_banner_warns_even_when_quiet() {
    let mut child = Command::new(bin())
        .args([
            "serve", "--port", "0", "--host", "0.0.0.0", "--color", "never", "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sio-emu");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let found = loop {
        match rx.recv_timeout(WAIT) {
            Ok(line) if line.contains("warning ") => break Some(line),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.expect("a warning line after the banner");
    assert!(line.contains("public development access key"), "{line}");
}

/// One keep-alive connection sends token-less polling handshakes for `hubs`, pipelined in
/// batches, and checks that every one is refused with 401.
async fn refuse_handshakes(port: u16, hubs: Vec<usize>) {
    const BATCH: usize = 64;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    for batch in hubs.chunks(BATCH) {
        let mut requests = String::new();
        for i in batch {
            requests.push_str(&format!(
                "GET /clients/socketio/hubs/h{i}/?EIO=4&transport=polling HTTP/1.1\r\n\
                 Host: 127.0.0.1:{port}\r\n\r\n"
            ));
        }
        write.write_all(requests.as_bytes()).await.unwrap();
        for _ in batch {
            let (status, _) = read_response(&mut read).await;
            assert_eq!(status, 401);
        }
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body.
async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> (u16, Vec<u8>) {
    let mut line = String::new();
    let mut status = 0;
    let mut length = 0;
    loop {
        line.clear();
        let n = read.read_line(&mut line).await.unwrap();
        assert!(n > 0, "the server closed the keep-alive connection");
        let text = line.trim_end();
        if text.is_empty() {
            break;
        }
        if let Some(rest) = text.strip_prefix("HTTP/1.1 ") {
            status = rest[..3].parse().unwrap();
        } else if let Some((name, value)) = text.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    read.read_exact(&mut body).await.unwrap();
    (status, body)
}

/// Token-less handshakes to `range`'s hub names over `connections` keep-alive connections.
async fn flood(port: u16, range: std::ops::Range<usize>, connections: usize) {
    let mut tasks = Vec::new();
    for c in 0..connections {
        let hubs: Vec<usize> = range.clone().filter(|i| i % connections == c).collect();
        tasks.push(tokio::spawn(refuse_handshakes(port, hubs)));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// 200,000 refused handshakes to distinct hub names: memory stays flat and no hub is listed;
/// an accepted connection's hub (the positive control) is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_handshakes_leave_no_hubs_behind() {
    let mut emu = Watched::start(&[
        "--quiet",
        "--ping-interval",
        "600s",
        "--connect-timeout",
        "600s",
    ]);
    let token = emu.token("kept", None);
    let _kept = WsClient::connect(&emu, "kept", &format!("access_token={token}"))
        .await
        .unwrap();
    flood(emu.port, 0..10_000, 8).await;
    let warm = emu.rss_kib();
    flood(emu.port, 10_000..210_000, 8).await;
    let after = emu.rss_kib();
    eprintln!("RSS after the warm-up {warm} KiB, after 200,000 more {after} KiB");
    emu.assert_healthy().await;
    assert!(
        after < warm + 8 * 1024,
        "RSS grew from {warm} KiB to {after} KiB over 200,000 refused handshakes"
    );
    assert_eq!(listed_hubs(&emu).await, BTreeSet::from(["kept".to_owned()]));
}

/// A signed REST call to `path_and_query` (under `/api/`).
async fn rest(emu: &Emu, method: &str, path_and_query: &str) -> HttpReply {
    let url = format!("{}{path_and_query}", emu.base());
    let token = auth::mint(
        KEY,
        &TokenClaims {
            aud: url.clone(),
            lifetime_secs: 300,
            now: auth::now_unix(),
            ..TokenClaims::default()
        },
    );
    let bearer = format!("Bearer {token}");
    http(method, &url, &[("authorization", bearer.as_str())], "").await
}

/// An authorised REST call to an undeclared hub creates it with its user → group assignment;
/// removing the assignment releases the hub. An unauthorised call creates nothing. A declared
/// hub stays; an undeclared one goes when its last connection closes.
#[tokio::test]
async fn hubs_live_as_long_as_their_state() {
    let emu = Emu::start(&["--hub", "declared", "--ping-interval", "600s"]);
    wait_listed(&emu, &["declared"]).await;

    let path = "/api/hubs/fresh/users/u1/groups/g?api-version=2024-01-01";
    let unsigned = http("PUT", &format!("{}{path}", emu.base()), &[], "").await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    wait_listed(&emu, &["declared"]).await;

    let put = rest(&emu, "PUT", path).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let view = http("GET", &format!("{}/_emu/connections", emu.base()), &[], "").await;
    let fresh = view.json()["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hub"] == "fresh")
        .cloned()
        .expect("the REST call created the hub");
    assert_eq!(fresh["userGroups"]["u1"][0]["name"], "g", "{fresh}");

    let delete = rest(&emu, "DELETE", path).await;
    assert_eq!(delete.status, 204, "{}", delete.body);
    wait_listed(&emu, &["declared"]).await;

    // A connection keeps an undeclared hub while it is open.
    let token = emu.token("visiting", None);
    let client = WsClient::connect(&emu, "visiting", &format!("access_token={token}"))
        .await
        .unwrap();
    wait_listed(&emu, &["declared", "visiting"]).await;
    client.close().await;
    wait_listed(&emu, &["declared"]).await;

    // A refused handshake to an undeclared hub leaves nothing.
    let refused = WsClient::connect(&emu, "stranger", "").await.err().unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(
        listed_hubs(&emu).await,
        BTreeSet::from(["declared".to_owned()])
    );
}
