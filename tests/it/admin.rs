//! The `/_emu/` admin surface against the real binary: the connections view decodes Socket.IO
//! groups and lists sockets, reset closes every connection with its documented reason and
//! clears groups, and peers that are not loopback get a 403.

use serde_json::{Value, json};

use crate::util::*;

/// A loopback client joins `/ns`, is added to a room and to a user group over REST; the view
/// shows all of it, decoded.
#[tokio::test]
async fn connections_view_decodes_groups_and_sockets() {
    let (_hook, emu) = pair(&["--anonymous", "--rest-anonymous"]).await;
    let empty = http("GET", &format!("{}/_emu/connections", emu.base()), &[], "").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.json()["connections"], 0);

    let token = emu.token("chat", Some("alice"));
    let mut ws = WsClient::connect(&emu, "chat", &format!("access_token={token}"))
        .await
        .unwrap();
    let joined = ws.join("/ns").await;
    assert!(joined.starts_with("40/ns,"), "{joined}");
    let socket_id = serde_json::from_str::<Value>(&joined["40/ns,".len()..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Room "rm" of /ns is 0~L25z~cm0 (docs/protocol.md §8).
    let put = http(
        "PUT",
        &format!(
            "{}/api/hubs/chat/groups/0~L25z~cm0/connections/{}?api-version=2024-01-01",
            emu.base(),
            ws.sid
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let put = http(
        "PUT",
        &format!(
            "{}/api/hubs/chat/users/alice/groups/plain?api-version=2024-01-01",
            emu.base()
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);

    let view = http("GET", &format!("{}/_emu/connections", emu.base()), &[], "").await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert!(view.headers["content-type"].starts_with("application/json"));
    let view = view.json();
    assert_eq!(view["connections"], 1);
    let hub = &view["hubs"][0];
    assert_eq!(hub["hub"], "chat");
    let conn = &hub["connections"][0];
    assert_eq!(conn["connectionId"], ws.sid.as_str());
    assert_eq!(conn["userId"], "alice");
    assert_eq!(conn["transport"], "websocket");
    assert_eq!(conn["sockets"][0]["namespace"], "/ns");
    assert_eq!(conn["sockets"][0]["socketId"], socket_id.as_str());
    let rooms = conn["sockets"][0]["rooms"].as_array().unwrap();
    assert!(rooms.contains(&json!("rm")), "{rooms:?}");
    assert!(rooms.contains(&json!(socket_id)), "its own room: {rooms:?}");
    let groups = conn["groups"].as_array().unwrap();
    for expected in [
        json!({ "name": "0~L25z~", "namespace": "/ns", "room": null }),
        json!({ "name": "0~L25z~cm0", "namespace": "/ns", "room": "rm" }),
        json!({ "name": "plain" }),
    ] {
        assert!(groups.contains(&expected), "{expected} not in {groups:?}");
    }
    assert!(
        groups.iter().any(|g| g["room"] == socket_id.as_str()),
        "the socket's own room is listed: {groups:?}"
    );
    assert_eq!(hub["userGroups"]["alice"], json!([{ "name": "plain" }]));
    ws.close().await;
}

/// Reset closes every connection; each socket's `disconnected` carries the documented reason;
/// groups and user groups are gone afterwards.
#[tokio::test]
async fn reset_closes_everything_and_clears_groups() {
    let (hook, emu) = pair(&["--anonymous", "--rest-anonymous"]).await;
    let mut a = WsClient::connect(&emu, "chat", "").await.unwrap();
    let mut b = WsClient::connect(&emu, "other", "").await.unwrap();
    assert!(a.join("/").await.starts_with("40"));
    assert!(a.join("/ns").await.starts_with("40/ns,"));
    assert!(b.join("/").await.starts_with("40"));
    hook.wait_for("connected", 3).await;
    let put = http(
        "PUT",
        &format!(
            "{}/api/hubs/chat/users/u1/groups/g?api-version=2024-01-01",
            emu.base()
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(put.status, 200);

    let reset = http("POST", &format!("{}/_emu/reset", emu.base()), &[], "").await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let counts = reset.json();
    assert_eq!(counts["connectionsClosed"], 2, "{counts}");
    assert_eq!(counts["userGroupsCleared"], 1, "{counts}");
    // chat: 0~Lw~, own room on /, 0~L25z~, own room on /ns; other: 0~Lw~ and its own room.
    assert_eq!(counts["groupsCleared"], 6, "{counts}");

    a.expect_closed().await;
    b.expect_closed().await;
    let gone = hook.wait_for("disconnected", 3).await;
    for event in &gone {
        assert_eq!(
            event.json()["reason"],
            "reset by /_emu/reset",
            "{}",
            event.body
        );
    }
    emu.wait_log("the admin line", |v| {
        v["type"] == "admin" && v["path"] == "/_emu/reset" && v["status"] == 200
    })
    .await;
    let url = format!("{}/_emu/connections", emu.base());
    let mut view = Value::Null;
    let emptied = poll_until_async(WAIT, async || {
        view = http("GET", &url, &[], "").await.json();
        (view["connections"] == 0).then_some(())
    });
    assert!(emptied.await.is_some(), "still listed: {view}");
    for hub in view["hubs"].as_array().unwrap() {
        assert_eq!(hub["userGroups"], json!({}), "{view}");
    }
}

#[tokio::test]
async fn wrong_method_is_405() {
    let emu = Emu::start(&["--anonymous"]);
    let reply = http("GET", &format!("{}/_emu/reset", emu.base()), &[], "").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "POST");
    let reply = http("GET", &format!("{}/_emu/what", emu.base()), &[], "").await;
    assert_eq!(reply.status, 404);
}

/// This machine's address on its default route, when it has one that is not loopback.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // A UDP connect sends nothing; it only picks the outgoing interface.
    socket.connect("192.0.2.200:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn other_peers_are_refused() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address");
        return;
    };
    let emu = Emu::start(&["--anonymous", "--host", "0.0.0.0"]);
    let base = format!("http://{ip}:{}", emu.port);
    for (method, path) in [("GET", "/_emu/connections"), ("POST", "/_emu/reset")] {
        let reply = http(method, &format!("{base}{path}"), &[], "").await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        assert_eq!(reply.json()["code"], "Forbidden");
        assert!(
            reply.json()["message"]
                .as_str()
                .unwrap()
                .contains("loopback")
        );
    }
    // The same server answers loopback.
    let reply = http("GET", &format!("{}/_emu/connections", emu.base()), &[], "").await;
    assert_eq!(reply.status, 200);
}
