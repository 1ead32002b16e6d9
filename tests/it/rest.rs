//! The REST data plane end to end: the real `sio-emu serve` binary, real Engine.IO / Socket.IO
//! clients over loopback (WebSocket and long-polling, from `util`), a real recording webhook,
//! and REST calls signed the way the SDKs sign them (a Bearer JWT whose `aud` is the request
//! URL). Each test checks an operation's status code and its visible effect on the clients and
//! on the webhook.

use std::time::Duration;

use serde_json::Value;
use sio_emu::auth::{self, TokenClaims};
use sio_emu::service::group::{namespace_group, room_group};

use crate::util::*;

const HUB: &str = "chat";
const V: &str = "api-version=2024-01-01";
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// A REST token for `url` signed with `key`, valid from `now` for `lifetime` seconds.
fn rest_token(url: &str, key: &str, now: u64, lifetime: u64) -> String {
    auth::mint(
        key,
        &TokenClaims {
            aud: url.to_owned(),
            lifetime_secs: lifetime,
            now,
            ..TokenClaims::default()
        },
    )
}

/// A signed REST call; `path_and_query` starts with `/api/`.
async fn rest(emu: &Emu, method: &str, path_and_query: &str, body: &str) -> HttpReply {
    rest_typed(emu, method, path_and_query, "text/plain", body).await
}

async fn rest_typed(
    emu: &Emu,
    method: &str,
    path_and_query: &str,
    content_type: &str,
    body: &str,
) -> HttpReply {
    let url = format!("{}{path_and_query}", emu.base());
    let bearer = format!("Bearer {}", rest_token(&url, KEY, auth::now_unix(), 300));
    let mut headers = vec![("authorization", bearer.as_str())];
    if !content_type.is_empty() {
        headers.push(("content-type", content_type));
    }
    http(method, &url, &headers, body).await
}

/// A POST send to `target` (`:send` is appended) with `query` extras.
async fn send(emu: &Emu, target: &str, query: &str, body: &str) -> HttpReply {
    let path = format!("/api/hubs/{HUB}/{target}:send?{V}{query}");
    let reply = rest(emu, "POST", &path, body).await;
    assert_eq!(reply.status, 202, "{path}: {}", reply.body);
    reply
}

/// Percent-encodes a query value.
fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A connected WebSocket client with one socket in `nsp`.
struct Sock {
    ws: WsClient,
    /// The Socket.IO socket id.
    sid: String,
    nsp: String,
}

impl Sock {
    /// The Engine.IO session id, which is the Web PubSub connection id (docs/protocol.md §14 decision 3).
    fn conn(&self) -> &str {
        &self.ws.sid
    }

    fn room(&self) -> String {
        room_group(&self.nsp, &self.sid)
    }

    async fn expect(&mut self, packet: &str) {
        assert_eq!(self.ws.recv().await, packet);
    }

    async fn expect_nothing(&mut self) {
        self.ws.expect_silence(QUIET).await;
    }
}

/// Connects a client with a token for `user` and joins `nsp`.
async fn connect(emu: &Emu, user: Option<&str>, nsp: &str) -> Sock {
    let token = emu.token(HUB, user);
    connect_with(emu, &token, nsp).await
}

async fn connect_with(emu: &Emu, token: &str, nsp: &str) -> Sock {
    let mut ws = WsClient::connect(emu, HUB, &format!("access_token={token}"))
        .await
        .unwrap_or_else(|r| panic!("refused: {r:?}"));
    let answer = ws.join(nsp).await;
    let json = &answer[answer.find('{').expect("CONNECT answer with a sid")..];
    let sid = serde_json::from_str::<Value>(json).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    Sock {
        ws,
        sid,
        nsp: nsp.to_owned(),
    }
}

/// Waits until the emulator logged `n` REST lines (the call's effects are queued by then).
async fn rest_lines(emu: &Emu, n: usize) -> Vec<Value> {
    emu.wait_log(&format!("{n} REST lines"), |_| {
        emu.events().iter().filter(|e| e["type"] == "rest").count() >= n
    })
    .await;
    emu.events()
        .into_iter()
        .filter(|e| e["type"] == "rest")
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sends

#[tokio::test]
async fn send_to_a_socket_room_reaches_only_that_client() {
    let (_hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, None, "/chat").await;
    let mut b = connect(&emu, None, "/chat").await;
    let packet = r#"42/chat,["ev","x"]"#;
    let reply = send(&emu, &format!("groups/{}/", a.room()), "", packet).await;
    assert!(reply.body.is_empty());
    a.expect(packet).await;
    b.expect_nothing().await;

    // SendToConnection, SendToAll and the namespace group reach by their own rules.
    send(&emu, &format!("connections/{}/", b.conn()), "", packet).await;
    b.expect(packet).await;
    a.expect_nothing().await;
    send(&emu, "", "", r#"42/chat,["all"]"#).await;
    a.expect(r#"42/chat,["all"]"#).await;
    b.expect(r#"42/chat,["all"]"#).await;

    let line = &rest_lines(&emu, 3).await[0];
    assert_eq!(line["operation"], "SendToGroup");
    assert_eq!(line["status"], 202);
    assert_eq!(line["matched"], 1);
    assert_eq!(
        line["target"],
        format!("group {} (/chat room \"{}\")", a.room(), a.sid)
    );
}

#[tokio::test]
async fn polling_clients_get_the_packet_verbatim() {
    let (hook, emu) = pair(&["--anonymous"]).await;
    let (_, open) = poll_handshake(&emu, HUB, "").await;
    let conn = open["sid"].as_str().unwrap().to_owned();
    poll_post(&emu, HUB, &conn, "40").await;
    assert!(poll_get(&emu, HUB, &conn).await.body.starts_with("40{"));
    hook.wait_for("connected", 1).await;
    send(
        &emu,
        &format!("connections/{conn}/"),
        "",
        r#"42["a",{"b":[1,2]}]"#,
    )
    .await;
    assert_eq!(
        poll_get(&emu, HUB, &conn).await.body,
        r#"42["a",{"b":[1,2]}]"#
    );
}

#[tokio::test]
async fn add_to_a_room_then_send_then_remove() {
    let (_hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, None, "/chat").await;
    let mut b = connect(&emu, None, "/chat").await;
    let room = room_group("/chat", "room");
    let body = serde_json::json!({
        "groups": [room],
        "filter": format!("'{}' in groups", a.room()),
    })
    .to_string();
    let add = rest_typed(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/:addToGroups?{V}"),
        "application/json",
        &body,
    )
    .await;
    assert_eq!(add.status, 200, "{}", add.body);
    let packet = r#"42/chat,["room","hi"]"#;
    send(&emu, &format!("groups/{room}/"), "", packet).await;
    a.expect(packet).await;
    b.expect_nothing().await;

    // The single-connection form adds b.
    let put = rest(
        &emu,
        "PUT",
        &format!("/api/hubs/{HUB}/groups/{room}/connections/{}?{V}", b.conn()),
        "",
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    send(&emu, &format!("groups/{room}/"), "", packet).await;
    a.expect(packet).await;
    b.expect(packet).await;

    let remove = rest_typed(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/:removeFromGroups?{V}"),
        "application/json",
        &body,
    )
    .await;
    assert_eq!(remove.status, 200, "{}", remove.body);
    let delete = rest(
        &emu,
        "DELETE",
        &format!("/api/hubs/{HUB}/groups/{room}/connections/{}?{V}", b.conn()),
        "",
    )
    .await;
    assert_eq!(delete.status, 204, "{}", delete.body);
    send(&emu, &format!("groups/{room}/"), "", packet).await;
    a.expect_nothing().await;
    b.expect_nothing().await;

    // 404 for a connection that does not exist.
    let missing = rest(
        &emu,
        "PUT",
        &format!("/api/hubs/{HUB}/groups/{room}/connections/nope?{V}"),
        "",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.headers["x-ms-error-code"],
        "Error.Connection.NotExisted"
    );
}

#[tokio::test]
async fn namespace_send_with_excluded_and_filter() {
    let (_hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, None, "/chat").await;
    let mut b = connect(&emu, None, "/chat").await;
    let mut c = connect(&emu, None, "/chat").await;
    let mut other = connect(&emu, None, "/other").await;
    let ns = namespace_group("/chat");
    let packet = r#"42/chat,["news"]"#;
    let filter = enc(&format!("not ('{}' in groups)", c.room()));
    send(
        &emu,
        &format!("groups/{ns}/"),
        &format!("&excluded={}&filter={filter}", b.conn()),
        packet,
    )
    .await;
    a.expect(packet).await;
    b.expect_nothing().await;
    c.expect_nothing().await;
    other.expect_nothing().await;
}

#[tokio::test]
async fn disconnect_packet_is_a_command() {
    let (hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, None, "/chat").await;
    hook.wait_for("connected", 1).await;
    send(&emu, &format!("groups/{}/", a.room()), "", "41/chat,").await;
    a.expect("41/chat,").await;
    let gone = &hook.wait_for("disconnected", 1).await[0];
    assert_eq!(gone.header("ce-socketId"), a.sid);
    assert_eq!(gone.json()["reason"], "disconnected by REST API");
    // The socket left its groups; the connection stays and can join again.
    let exists = rest(
        &emu,
        "HEAD",
        &format!("/api/hubs/{HUB}/groups/{}?{V}", a.room()),
        "",
    )
    .await;
    assert_eq!(exists.status, 404);
    let again = a.ws.join("/chat").await;
    assert!(again.starts_with("40/chat,{\"sid\""), "{again}");
}

#[tokio::test]
async fn disconnect_with_close_true_closes_the_connection() {
    let (hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, None, "/chat").await;
    let mut b = connect(&emu, None, "/chat").await;
    hook.wait_for("connected", 2).await;
    let filter = enc(&format!("'{}' in groups", a.room()));
    send(
        &emu,
        "",
        &format!("&filter={filter}"),
        r#"41/chat,{"close":true}"#,
    )
    .await;
    a.expect("41/chat,").await;
    a.ws.expect_closed().await;
    hook.wait_for("disconnected", 1).await;
    b.expect_nothing().await;
    let exists = rest(
        &emu,
        "HEAD",
        &format!("/api/hubs/{HUB}/connections/{}?{V}", a.conn()),
        "",
    )
    .await;
    assert_eq!(exists.status, 404);
}

#[tokio::test]
async fn invalid_payloads_are_refused() {
    let (_hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, None, "/").await;
    for body in [
        "hello",
        "42",
        "40",
        r#"41{"close":"x"}"#,
        "\"42[\\\"a\\\"]\"",
    ] {
        let reply = rest(&emu, "POST", &format!("/api/hubs/{HUB}/:send?{V}"), body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.headers["x-ms-error-code"], "InvalidPayload");
        assert!(reply.json()["message"].as_str().unwrap().len() > 20);
    }
    let binary = rest_typed(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/:send?{V}"),
        "application/octet-stream",
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(binary.status, 400);
    assert!(binary.body.contains("Socket.IO clients need text packets"));
    a.expect_nothing().await;
}

// ---------------------------------------------------------------------------------------------
// Closes

#[tokio::test]
async fn close_connection_with_a_reason() {
    let (hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, None, "/chat").await;
    hook.wait_for("connected", 1).await;
    let reply = rest(
        &emu,
        "DELETE",
        &format!("/api/hubs/{HUB}/connections/{}?{V}&reason=bye", a.conn()),
        "",
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    a.ws.expect_closed().await;
    let gone = &hook.wait_for("disconnected", 1).await[0];
    assert_eq!(gone.json()["reason"], "closed by REST API: bye");
}

#[tokio::test]
async fn close_all_group_and_user_connections() {
    let (hook, emu) = pair(&[]).await;
    let mut a = connect(&emu, Some("alice"), "/").await;
    let mut b = connect(&emu, Some("bob"), "/").await;
    let mut c = connect(&emu, Some("carol"), "/").await;
    let mut d = connect(&emu, Some("dave"), "/").await;
    hook.wait_for("connected", 4).await;

    let user = rest(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/users/alice/:closeConnections?{V}"),
        "",
    )
    .await;
    assert_eq!(user.status, 204);
    a.ws.expect_closed().await;
    let gone = &hook.wait_for("disconnected", 1).await[0];
    assert_eq!(gone.json()["reason"], "closed by REST API");
    assert_eq!(gone.header("ce-userId"), "alice");

    let group = rest(
        &emu,
        "POST",
        &format!(
            "/api/hubs/{HUB}/groups/{}/:closeConnections?{V}&reason=kicked",
            b.room()
        ),
        "",
    )
    .await;
    assert_eq!(group.status, 204);
    b.ws.expect_closed().await;
    let gone = hook.wait_for("disconnected", 2).await;
    assert_eq!(gone[1].json()["reason"], "closed by REST API: kicked");

    let all = rest(
        &emu,
        "POST",
        &format!(
            "/api/hubs/{HUB}/:closeConnections?{V}&excluded={}",
            d.conn()
        ),
        "",
    )
    .await;
    assert_eq!(all.status, 204);
    c.ws.expect_closed().await;
    hook.wait_for("disconnected", 3).await;
    d.expect_nothing().await;
    assert_eq!(hook.named("disconnected").len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Existence, users, tokens

#[tokio::test]
async fn exists_routes() {
    let (_hook, emu) = pair(&[]).await;
    let a = connect(&emu, Some("alice"), "/chat").await;
    let cases = [
        (format!("connections/{}", a.conn()), 200),
        ("connections/nope".to_owned(), 404),
        (format!("groups/{}", a.room()), 200),
        (format!("groups/{}", namespace_group("/chat")), 200),
        (format!("groups/{}", namespace_group("/none")), 404),
        ("users/alice".to_owned(), 200),
        ("users/bob".to_owned(), 404),
    ];
    for (path, status) in cases {
        for method in ["HEAD", "GET"] {
            let reply = rest(&emu, method, &format!("/api/hubs/{HUB}/{path}?{V}"), "").await;
            assert_eq!(reply.status, status, "{method} {path}");
        }
    }
    let list = rest(
        &emu,
        "GET",
        &format!("/api/hubs/{HUB}/groups/{}/connections?{V}", a.room()),
        "",
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json(),
        serde_json::json!({"value": [{"connectionId": a.conn(), "userId": "alice"}]})
    );
}

#[tokio::test]
async fn user_groups_apply_now_and_to_future_connections() {
    let (_hook, emu) = pair(&[]).await;
    let mut first = connect(&emu, Some("alice"), "/").await;
    let mut bob = connect(&emu, Some("bob"), "/").await;
    let add = rest(
        &emu,
        "PUT",
        &format!("/api/hubs/{HUB}/users/alice/groups/vip?{V}"),
        "",
    )
    .await;
    assert_eq!(add.status, 200, "{}", add.body);
    let mut second = connect(&emu, Some("alice"), "/").await;
    send(&emu, "groups/vip/", "", r#"42["vip"]"#).await;
    first.expect(r#"42["vip"]"#).await;
    second.expect(r#"42["vip"]"#).await;
    bob.expect_nothing().await;

    send(&emu, "users/alice/", "", r#"42["to alice"]"#).await;
    first.expect(r#"42["to alice"]"#).await;
    second.expect(r#"42["to alice"]"#).await;
    bob.expect_nothing().await;

    let remove = rest(
        &emu,
        "DELETE",
        &format!("/api/hubs/{HUB}/users/alice/groups/vip?{V}"),
        "",
    )
    .await;
    assert_eq!(remove.status, 204);
    let mut third = connect(&emu, Some("alice"), "/").await;
    send(&emu, "groups/vip/", "", r#"42["vip"]"#).await;
    first.expect_nothing().await;
    second.expect_nothing().await;
    third.expect_nothing().await;

    let all = rest(
        &emu,
        "DELETE",
        &format!("/api/hubs/{HUB}/users/alice/groups?{V}"),
        "",
    )
    .await;
    assert_eq!(all.status, 204);
}

#[tokio::test]
async fn generated_tokens_let_clients_connect() {
    let (hook, emu) = pair(&[]).await;
    let reply = rest(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/:generateToken?{V}&userId=zoe&minutesToExpire=5"),
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.headers["content-type"].starts_with("application/json"));
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    let mut zoe = connect_with(&emu, &token, "/").await;
    let connect_event = &hook.wait_for("connect", 1).await[0];
    assert_eq!(connect_event.header("ce-userId"), "zoe");
    send(&emu, "users/zoe/", "", r#"42["hi zoe"]"#).await;
    zoe.expect(r#"42["hi zoe"]"#).await;

    let mqtt = rest(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/:generateToken?{V}&clientType=MQTT"),
        "",
    )
    .await;
    assert_eq!(mqtt.status, 400);
}

#[tokio::test]
async fn permissions_answer_501() {
    let (_hook, emu) = pair(&[]).await;
    let reply = rest(
        &emu,
        "PUT",
        &format!("/api/hubs/{HUB}/permissions/sendToGroup/connections/c1?{V}&targetName=g"),
        "",
    )
    .await;
    assert_eq!(reply.status, 501);
    assert_eq!(reply.headers["x-ms-error-code"], "NotImplemented");
    assert!(reply.body.contains("do not apply to Socket.IO"));
}

// ---------------------------------------------------------------------------------------------
// Filters

#[tokio::test]
async fn filter_table_against_live_clients() {
    let (_hook, emu) = pair(&[]).await;
    let mut socks = [
        connect(&emu, Some("alice"), "/chat").await,
        connect(&emu, Some("bob"), "/chat").await,
        connect(&emu, Some("Carol"), "/chat").await,
        connect(&emu, None, "/chat").await,
    ];
    // alice and bob share a room; Carol is in "vip" by user assignment.
    let room = room_group("/chat", "lobby");
    for i in [0, 1] {
        let path = format!(
            "/api/hubs/{HUB}/groups/{room}/connections/{}?{V}",
            socks[i].conn()
        );
        assert_eq!(rest(&emu, "PUT", &path, "").await.status, 200);
    }
    let vip = rest(
        &emu,
        "PUT",
        &format!("/api/hubs/{HUB}/users/Carol/groups/vip?{V}"),
        "",
    )
    .await;
    assert_eq!(vip.status, 200);

    let sid0 = socks[0].room();
    let conn3 = socks[3].conn().to_owned();
    let table: Vec<(String, Vec<usize>)> = vec![
        (String::new(), vec![0, 1, 2, 3]),
        ("userId eq 'alice'".into(), vec![0]),
        ("userId ne 'alice'".into(), vec![1, 2, 3]),
        ("userId eq null".into(), vec![3]),
        ("userId in ('alice', 'Carol')".into(), vec![0, 2]),
        (format!("'{room}' in groups"), vec![0, 1]),
        (
            format!("'{room}' in groups and not ('{sid0}' in groups)"),
            vec![1],
        ),
        (format!("'vip' in groups or '{sid0}' in groups"), vec![0, 2]),
        // `A or B and not C` is `A or (B and not C)`.
        (
            format!("'vip' in groups or '{room}' in groups and not ('{sid0}' in groups)"),
            vec![1, 2],
        ),
        ("tolower(userId) eq 'carol'".into(), vec![2]),
        (
            "startswith(userId, 'b') or endswith(userId, 'ce')".into(),
            vec![0, 1],
        ),
        ("contains(userId, 'o')".into(), vec![1, 2]),
        (format!("connectionId eq '{conn3}'"), vec![3]),
        ("length(userId) gt 3".into(), vec![0, 2]),
        ("userId eq 'nobody'".into(), vec![]),
    ];
    for (n, (filter, expected)) in table.iter().enumerate() {
        let packet = format!(r#"42/chat,["case",{n}]"#);
        let query = if filter.is_empty() {
            String::new()
        } else {
            format!("&filter={}", enc(filter))
        };
        send(&emu, "", &query, &packet).await;
        for (i, sock) in socks.iter_mut().enumerate() {
            if expected.contains(&i) {
                assert_eq!(
                    sock.ws.recv().await,
                    packet,
                    "filter {filter:?} → client {i}"
                );
            }
        }
        // A final marker to everyone proves the others got nothing in between.
        let marker = format!(r#"42/chat,["marker",{n}]"#);
        send(&emu, "", "", &marker).await;
        for (i, sock) in socks.iter_mut().enumerate() {
            assert_eq!(
                sock.ws.recv().await,
                marker,
                "filter {filter:?} must not reach client {i}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[tokio::test]
async fn auth_failures_name_the_check() {
    let (_hook, emu) = pair(&[]).await;
    let path = format!("/api/hubs/{HUB}/:send?{V}");
    let url = format!("{}{path}", emu.base());
    let now = auth::now_unix();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing"),
        (Some(rest_token(&url, "not the key", now, 300)), "signature"),
        (
            Some(rest_token(
                &format!("{}/api/hubs/other/:send?{V}", emu.base()),
                KEY,
                now,
                300,
            )),
            "aud",
        ),
        (Some(rest_token(&url, KEY, now - 7200, 600)), "exp"),
    ];
    for (token, check) in &cases {
        let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("authorization", b)])
            .unwrap_or_default();
        let reply = http("POST", &url, &headers, r#"42["a"]"#).await;
        assert_eq!(reply.status, 401, "{check}: {}", reply.body);
        assert_eq!(reply.headers["x-ms-error-code"], "Unauthorized");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(&format!("`{check}` check")), "{message}");
    }
    let lines = rest_lines(&emu, cases.len()).await;
    assert!(lines.iter().all(|l| l["status"] == 401));
    assert!(
        lines[3]["message"]
            .as_str()
            .unwrap()
            .contains("`exp` check")
    );

    // A token minted by `sio-emu token --rest` for the exact URL works.
    let token = mint(&["--rest", &url], None);
    let ok = http(
        "POST",
        &url,
        &[("authorization", &format!("Bearer {token}"))],
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(ok.status, 202, "{}", ok.body);
}

#[tokio::test]
async fn rest_anonymous_skips_auth() {
    let (_hook, emu) = pair(&["--rest-anonymous"]).await;
    let reply = http(
        "POST",
        &format!("{}/api/hubs/{HUB}/:send?{V}", emu.base()),
        &[],
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[tokio::test]
async fn request_refusals() {
    let (_hook, emu) = pair(&["--max-payload", "64"]).await;
    let no_version = rest(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/:send"),
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(no_version.status, 400);
    assert_eq!(no_version.headers["x-ms-error-code"], "MissingApiVersion");

    let media = rest_typed(
        &emu,
        "POST",
        &format!("/api/hubs/{HUB}/:send?{V}"),
        "image/png",
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(media.status, 415);
    assert_eq!(media.headers["x-ms-error-code"], "UnsupportedMediaType");

    let big = format!(r#"42["{}"]"#, "x".repeat(100));
    let too_large = rest(&emu, "POST", &format!("/api/hubs/{HUB}/:send?{V}"), &big).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.headers["x-ms-error-code"], "PayloadTooLarge");

    let filter = rest(
        &emu,
        "POST",
        &format!(
            "/api/hubs/{HUB}/:send?{V}&filter={}",
            enc("userId eq 'a' and")
        ),
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(filter.status, 400);
    assert_eq!(filter.headers["x-ms-error-code"], "Error.BadRequest");
    assert!(
        filter.json()["message"]
            .as_str()
            .unwrap()
            .contains("position 17"),
        "{}",
        filter.body
    );

    let hub = rest(
        &emu,
        "POST",
        &format!("/api/hubs/9bad/:send?{V}"),
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(hub.status, 400);
    assert_eq!(hub.headers["x-ms-error-code"], "InvalidHubName");

    let route = rest(&emu, "POST", &format!("/api/hubs/{HUB}/:nothing?{V}"), "").await;
    assert_eq!(route.status, 404);
    let method = rest(&emu, "GET", &format!("/api/hubs/{HUB}/:send?{V}"), "").await;
    assert_eq!(method.status, 405);
    assert_eq!(method.headers["allow"], "POST");
}

// ---------------------------------------------------------------------------------------------
// The service's error codes and shapes, and its `api-supported-versions` header

/// The versions sio-emu answers in `api-supported-versions`: the recorded form (comma and space
/// between versions, e.g. "2021-10-01, 2022-11-01, 2023-07-01" in Azure/azure-sdk-for-js
/// `sdk/web-pubsub/web-pubsub/recordings/node/client_working_with_multiple_groups/recording_can_join_multiple_groups_with_filter.json`)
/// listing every version sio-emu knows.
const SUPPORTED: &str = "2021-10-01, 2022-11-01, 2023-07-01, 2024-01-01, 2024-12-01";

/// The keys of an error body, sorted, to compare with the recorded ones.
fn error_detail_keys(json: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = json
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// The recorded keys of an `ErrorDetail` body, sorted.
const ERROR_DETAIL_KEYS: [&str; 5] = ["code", "details", "innererror", "message", "target"];

// Azure/azure-sdk-for-js
// `sdk/web-pubsub/web-pubsub/recordings/node/group_client_working_with_a_group/recording_can_manage_connections.json`:
// PUT /groups/group/connections/xxxx → 404, `x-ms-error-code: Error.Connection.NotExisted`,
// `application/json; charset=utf-8`, `api-supported-versions`, body
// {"code":"Error.Connection.NotExisted","message":"Connection `xxxx` is not found.",
//  "target":"Connection","details":null,"innererror":null}.
#[tokio::test]
async fn a_missing_connection_is_the_services_error_detail() {
    let (_hook, emu) = pair(&[]).await;
    let reply = rest(
        &emu,
        "PUT",
        &format!("/api/hubs/{HUB}/groups/group/connections/xxxx?{V}"),
        "",
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(
        reply.headers["x-ms-error-code"],
        "Error.Connection.NotExisted"
    );
    assert_eq!(
        reply.headers["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(reply.headers["api-supported-versions"], SUPPORTED);
    let json = reply.json();
    assert_eq!(error_detail_keys(&json), ERROR_DETAIL_KEYS, "{json}");
    assert_eq!(json["code"], "Error.Connection.NotExisted");
    assert_eq!(json["message"], "Connection `xxxx` is not found.");
    assert_eq!(json["target"], "Connection");
    assert_eq!(json["innererror"], Value::Null);
    // sio-emu's explanation rides in `details`, an array of ErrorDetail in the specification.
    let help = json["details"][0]["message"].as_str().unwrap_or_default();
    assert!(help.contains("may have closed"), "{json}");
    assert_eq!(json["details"][0]["code"], "Error.Connection.NotExisted");
    // The live log keeps the explanation.
    let line = &rest_lines(&emu, 1).await[0];
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("may have closed"),
        "{line}"
    );
}

/// The recorded answer to `filter=invalid filter`: the same message wherever the filter is.
const BAD_FILTER_MESSAGE: &str = "Invalid syntax for 'invalid filter': Syntax error at position \
                                  14 in 'invalid filter'. (Parameter 'filter')";

/// Checks a 400 for `invalid filter` against the recorded problem+json answer, `target` being
/// `filter` for the query parameter and `Filter` for the `:addToGroups` body field.
fn assert_bad_filter(reply: &HttpReply, target: &str) {
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.headers["x-ms-error-code"], "Error.BadRequest");
    assert_eq!(
        reply.headers["content-type"],
        "application/problem+json; charset=utf-8"
    );
    assert!(
        !reply.headers.contains_key("api-supported-versions"),
        "the recorded validation error has no api-supported-versions"
    );
    let json = reply.json();
    assert_eq!(
        error_detail_keys(&json),
        [
            "code",
            "detail",
            "errors",
            "extensions",
            "instance",
            "message",
            "status",
            "target",
            "title",
            "type"
        ],
        "{json}"
    );
    assert_eq!(json["code"], "Error.BadRequest");
    assert_eq!(json["message"], BAD_FILTER_MESSAGE);
    assert_eq!(json["target"], target);
    assert_eq!(
        json["errors"][target],
        serde_json::json!([BAD_FILTER_MESSAGE])
    );
    assert_eq!(json["type"], Value::Null);
    assert_eq!(json["title"], "One or more validation errors occurred.");
    assert_eq!(json["status"], 400);
    assert_eq!(json["instance"], Value::Null);
    assert_eq!(json["extensions"], serde_json::json!({}));
    // sio-emu's explanation rides in `detail`, RFC 9457's human-readable explanation.
    let detail = json["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("invalid OData filter"), "{json}");
    assert!(detail.contains("'filter'"), "{json}");
}

// Azure/azure-sdk-for-js `sdk/web-pubsub/web-pubsub/recordings/node/`
// `hubclient_working_with_a_hub/recording_can_broadcast_with_filter.json` (SendToAll),
// `group_client_working_with_a_group/recording_can_broadcast_to_group_with_filter.json`
// (SendToGroup), `hubclient_working_with_a_hub/recording_can_send_to_a_user_with_filter.json`
// (SendToUser): target `filter`; `client_working_with_multiple_groups/`
// `recording_can_join_multiple_groups_with_filter.json` and
// `recording_can_leave_multiple_groups_with_filter.json`: target `Filter`.
#[tokio::test]
async fn a_bad_filter_is_the_services_problem_details() {
    let (_hook, emu) = pair(&[]).await;
    let filter = enc("invalid filter");
    for target in ["", "groups/group/", "users/brian/"] {
        let path = format!("/api/hubs/{HUB}/{target}:send?{V}&filter={filter}");
        let reply = rest(&emu, "POST", &path, r#"42["a"]"#).await;
        assert_bad_filter(&reply, "filter");
    }
    let body = serde_json::json!({"groups": ["group1", "group2"], "filter": "invalid filter"});
    for op in [":addToGroups", ":removeFromGroups"] {
        let reply = rest_typed(
            &emu,
            "POST",
            &format!("/api/hubs/{HUB}/{op}?{V}"),
            "application/json",
            &body.to_string(),
        )
        .await;
        assert_bad_filter(&reply, "Filter");
    }
    // The live log keeps sio-emu's explanation.
    let lines = rest_lines(&emu, 5).await;
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .contains("invalid OData filter"),
        "{}",
        lines[0]
    );
}

// Azure/azure-sdk-for-js `sdk/web-pubsub/web-pubsub/recordings/node/`
// `hubclient_working_with_a_hub/recording_can_manage_users.json` (HEAD users/foo: 404,
// `Warning.User.NotExisted`, `application/json; charset=utf-8`, Content-Length 120, no body),
// `hubclient_working_with_a_hub/recording_can_trace_through_the_various_options.json` (HEAD
// groups/foo: `Warning.Group.NotExisted`; HEAD connections/xxxx: `Warning.Connection.NotExisted`,
// Content-Length 139); Azure/azure-sdk-for-python
// `sdk/webpubsub/azure-messaging-webpubsubservice/tests/recordings/test_smoke.test_no_users_groups.yaml`
// (HEAD users/fake%20user and groups/fake%20group: the same codes, Content-Length 126) and
// `test_smoke.test_add_user_to_group.yaml` (the user body: {"code":"Warning.User.NotExisted",
// "message":"User `some_user` is not found.","target":"User","details":null,"innererror":null}).
#[tokio::test]
async fn missing_users_groups_and_connections_are_the_services_warnings() {
    let (_hook, emu) = pair(&[]).await;
    for (path, code, length) in [
        ("users/foo", "Warning.User.NotExisted", Some("120")),
        ("users/fake%20user", "Warning.User.NotExisted", Some("126")),
        ("groups/foo", "Warning.Group.NotExisted", None),
        (
            "connections/xxxx",
            "Warning.Connection.NotExisted",
            Some("139"),
        ),
    ] {
        let head = rest(&emu, "HEAD", &format!("/api/hubs/{HUB}/{path}?{V}"), "").await;
        assert_eq!(head.status, 404, "{path}");
        assert_eq!(head.headers["x-ms-error-code"], code, "{path}");
        assert_eq!(
            head.headers["content-type"], "application/json; charset=utf-8",
            "{path}"
        );
        assert_eq!(head.headers["api-supported-versions"], SUPPORTED, "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD has no body");
        if let Some(length) = length {
            assert_eq!(head.headers["content-length"], length, "{path}");
        }
        // The same call as GET shows the body HEAD announces.
        let get = rest(&emu, "GET", &format!("/api/hubs/{HUB}/{path}?{V}"), "").await;
        assert_eq!(get.status, 404, "{path}");
        assert_eq!(get.headers["x-ms-error-code"], code, "{path}");
        let json = get.json();
        assert_eq!(json["code"], code, "{path}");
        assert_eq!(error_detail_keys(&json), ERROR_DETAIL_KEYS, "{json}");
        assert_eq!(
            get.headers["content-length"], head.headers["content-length"],
            "{path}"
        );
    }
    let get = rest(
        &emu,
        "GET",
        &format!("/api/hubs/{HUB}/users/some_user?{V}"),
        "",
    )
    .await;
    assert_eq!(
        get.body,
        r#"{"code":"Warning.User.NotExisted","message":"User `some_user` is not found.","target":"User","details":null,"innererror":null}"#
    );
}

// Every recorded success carries `api-supported-versions` (e.g. Azure/azure-sdk-for-js
// `sdk/web-pubsub/web-pubsub/recordings/node/hubclient_working_with_a_hub/recording_can_trace_through_the_various_options.json`:
// 202 sends, 204 closes and removals; `client_working_with_multiple_groups/recording_can_join_multiple_groups_with_filter.json`:
// 200 :addToGroups).
#[tokio::test]
async fn every_success_carries_api_supported_versions() {
    let (_hook, emu) = pair(&[]).await;
    let a = connect(&emu, Some("alice"), "/").await;
    let conn = a.conn().to_owned();
    let ns = namespace_group("/");
    let groups = serde_json::json!({"groups": ["g"], "filter": "userId eq 'alice'"}).to_string();
    let calls: Vec<(&str, String, &str, String, u16)> = vec![
        (
            "POST",
            format!("/api/hubs/{HUB}/:send?{V}"),
            "text/plain",
            r#"42["a"]"#.into(),
            202,
        ),
        (
            "POST",
            format!("/api/hubs/{HUB}/:addToGroups?{V}"),
            "application/json",
            groups,
            200,
        ),
        (
            "HEAD",
            format!("/api/hubs/{HUB}/users/alice?{V}"),
            "",
            String::new(),
            200,
        ),
        (
            "HEAD",
            format!("/api/hubs/{HUB}/groups/{ns}?{V}"),
            "",
            String::new(),
            200,
        ),
        (
            "HEAD",
            format!("/api/hubs/{HUB}/connections/{conn}?{V}"),
            "",
            String::new(),
            200,
        ),
        (
            "GET",
            format!("/api/hubs/{HUB}/groups/g/connections?api-version=2024-12-01"),
            "",
            String::new(),
            200,
        ),
        (
            "PUT",
            format!("/api/hubs/{HUB}/users/bob/groups/g?{V}"),
            "",
            String::new(),
            200,
        ),
        (
            "DELETE",
            format!("/api/hubs/{HUB}/users/bob/groups?{V}"),
            "",
            String::new(),
            204,
        ),
        (
            "POST",
            format!("/api/hubs/{HUB}/:generateToken?{V}"),
            "",
            String::new(),
            200,
        ),
        (
            "DELETE",
            format!("/api/hubs/{HUB}/connections/{conn}?{V}"),
            "",
            String::new(),
            204,
        ),
    ];
    for (method, path, content_type, body, status) in calls {
        let reply = rest_typed(&emu, method, &path, content_type, &body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        assert_eq!(
            reply
                .headers
                .get("api-supported-versions")
                .map(String::as_str),
            Some(SUPPORTED),
            "{method} {path}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// ListConnectionsInGroup pages (2024-12-01)

/// One page of ListConnectionsInGroup: its members as (connectionId, userId) and its nextLink
/// made relative to the emulator (the link is absolute, like the service's).
async fn list_page(emu: &Emu, path_and_query: &str) -> (Vec<(String, Value)>, Option<String>) {
    let reply = rest(emu, "GET", path_and_query, "").await;
    assert_eq!(reply.status, 200, "{path_and_query}: {}", reply.body);
    let json = reply.json();
    let members = json["value"]
        .as_array()
        .unwrap_or_else(|| panic!("{json}"))
        .iter()
        .map(|m| {
            let fields = m.as_object().unwrap();
            assert!(fields.contains_key("userId"), "userId is always there: {m}");
            (
                m["connectionId"].as_str().unwrap().to_owned(),
                m["userId"].clone(),
            )
        })
        .collect();
    let next = json.get("nextLink").and_then(Value::as_str).map(|link| {
        link.strip_prefix(&emu.base())
            .unwrap_or_else(|| panic!("nextLink {link} is not on {}", emu.base()))
            .to_owned()
    });
    (members, next)
}

/// Follows nextLinks from `first`; returns every page's members.
async fn list_all(emu: &Emu, first: &str) -> Vec<Vec<(String, Value)>> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(link) = next {
        let (members, following) = list_page(emu, &link).await;
        pages.push(members);
        next = following;
        assert!(pages.len() <= 10, "nextLink never ends");
    }
    pages
}

// Azure/azure-rest-api-specs
// `specification/webpubsub/data-plane/WebPubSub/stable/2024-12-01/examples/WebPubSub_ListConnectionsInGroup.json`:
// `maxpagesize` and `top` query parameters, a page `{"value":[{"connectionId","userId"}…],
// "nextLink"}` whose nextLink is the absolute URL of the next page (with `continuationToken`);
// the operation's parameters (`maxpagesize` 1..200, `top` ≥ 1: "If the value is not set, then
// all the connections in a group are returned") as `@azure/web-pubsub` 1.2's generated client
// carries them from `stable/2024-12-01/webpubsub.json`.
#[tokio::test]
async fn list_connections_in_group_pages_like_the_service() {
    let (hook, emu) = pair(&[]).await;
    let mut socks = Vec::new();
    for user in [Some("u1"), None, Some("u3"), None, Some("u5")] {
        socks.push(connect(&emu, user, "/").await);
    }
    let mut expected: Vec<(String, Value)> = socks
        .iter()
        .zip([Some("u1"), None, Some("u3"), None, Some("u5")])
        .map(|(s, u)| (s.conn().to_owned(), u.map_or(Value::Null, Value::from)))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let group = namespace_group("/");
    let base = format!("/api/hubs/{HUB}/groups/{group}/connections?api-version=2024-12-01");

    // Pages of 2: 2, 2, 1, in connection-id order, every member once.
    let pages = list_all(&emu, &format!("{base}&maxpagesize=2")).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(pages.concat(), expected);

    // `top` bounds the whole listing, across pages.
    let pages = list_all(&emu, &format!("{base}&maxpagesize=2&top=3")).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 1]);
    assert_eq!(pages.concat(), expected[..3]);
    let pages = list_all(&emu, &format!("{base}&top=4")).await;
    assert_eq!(pages, [expected[..4].to_vec()]);

    // Without either, one page holds every member and there is no nextLink.
    let (all, next) = list_page(&emu, &base).await;
    assert_eq!(all, expected);
    assert_eq!(next, None);

    // A member that leaves between pages is not listed, and nobody is listed twice.
    let (first, next) = list_page(&emu, &format!("{base}&maxpagesize=2")).await;
    assert_eq!(first, expected[..2]);
    let leaving = &expected[2].0;
    let close = rest(
        &emu,
        "DELETE",
        &format!("/api/hubs/{HUB}/connections/{leaving}?{V}"),
        "",
    )
    .await;
    assert_eq!(close.status, 204);
    hook.wait_for("disconnected", 1).await;
    let rest_pages = list_all(&emu, &next.expect("a nextLink after the first page")).await;
    assert_eq!(rest_pages.concat(), expected[3..]);
}

// The parameter ranges of `@azure/web-pubsub` 1.2's generated client (from Azure/azure-rest-api-specs
// `specification/webpubsub/data-plane/WebPubSub/stable/2024-12-01/webpubsub.json`): `maxpagesize`
// 1..200, `top` 1..2147483647; a `continuationToken` sio-emu never issued is refused too.
#[tokio::test]
async fn list_connections_in_group_refuses_bad_paging_parameters() {
    let (_hook, emu) = pair(&[]).await;
    let base = format!("/api/hubs/{HUB}/groups/g/connections?api-version=2024-12-01");
    for (query, target) in [
        ("maxpagesize=0", "maxpagesize"),
        ("maxpagesize=201", "maxpagesize"),
        ("maxpagesize=two", "maxpagesize"),
        ("top=0", "top"),
        ("top=-1", "top"),
        ("continuationToken=nonsense", "continuationToken"),
    ] {
        let reply = rest(&emu, "GET", &format!("{base}&{query}"), "").await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(reply.json()["target"], target, "{query}: {}", reply.body);
    }
    for query in ["maxpagesize=1", "maxpagesize=200", "top=2147483647"] {
        let reply = rest(&emu, "GET", &format!("{base}&{query}"), "").await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    }
}
