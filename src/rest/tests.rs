//! Unit tests of the REST layer: the routing table (every route to its operation, 404/405),
//! the pipeline's checks in order, and every operation against a real [`Service`] whose
//! connections are fakes recording the commands they receive. No sockets: requests go through
//! [`serve`] with in-memory bodies.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::auth::{self, Check, TokenClaims};
use crate::config::ServeConfig;
use crate::service::ConnCommand;
use crate::service::hub::ConnHandle;
use crate::traffic::{Format, Traffic};

// ---------------------------------------------------------------------------------------------
// Routing table

fn op(method: Method, path: &str) -> Operation {
    let (hub, op) = route(&method, path).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert_eq!(hub, "hub");
    op
}

#[test]
fn every_route_reaches_its_operation() {
    let s = String::from;
    let cases: Vec<(Method, &str, Operation)> = vec![
        (Method::POST, "/api/hubs/hub/:send", Operation::SendToAll),
        (
            Method::POST,
            "/api/hubs/hub/groups/0~L2NoYXQ~cm9vbQ/:send",
            Operation::SendToGroup {
                group: s("0~L2NoYXQ~cm9vbQ"),
            },
        ),
        (
            Method::POST,
            "/api/hubs/hub/connections/c1/:send",
            Operation::SendToConnection {
                connection_id: s("c1"),
            },
        ),
        (
            Method::POST,
            "/api/hubs/hub/users/alice/:send",
            Operation::SendToUser {
                user_id: s("alice"),
            },
        ),
        (
            Method::POST,
            "/api/hubs/hub/:addToGroups",
            Operation::AddConnectionsToGroups,
        ),
        (
            Method::POST,
            "/api/hubs/hub/:removeFromGroups",
            Operation::RemoveConnectionsFromGroups,
        ),
        (
            Method::PUT,
            "/api/hubs/hub/groups/g/connections/c1",
            Operation::AddConnectionToGroup {
                group: s("g"),
                connection_id: s("c1"),
            },
        ),
        (
            Method::DELETE,
            "/api/hubs/hub/groups/g/connections/c1",
            Operation::RemoveConnectionFromGroup {
                group: s("g"),
                connection_id: s("c1"),
            },
        ),
        (
            Method::DELETE,
            "/api/hubs/hub/connections/c1/groups",
            Operation::RemoveConnectionFromAllGroups {
                connection_id: s("c1"),
            },
        ),
        (
            Method::DELETE,
            "/api/hubs/hub/connections/c1",
            Operation::CloseConnection {
                connection_id: s("c1"),
            },
        ),
        (
            Method::POST,
            "/api/hubs/hub/:closeConnections",
            Operation::CloseAllConnections,
        ),
        (
            Method::POST,
            "/api/hubs/hub/groups/g/:closeConnections",
            Operation::CloseGroupConnections { group: s("g") },
        ),
        (
            Method::POST,
            "/api/hubs/hub/users/u/:closeConnections",
            Operation::CloseUserConnections { user_id: s("u") },
        ),
        (
            Method::HEAD,
            "/api/hubs/hub/connections/c1",
            Operation::ConnectionExists {
                connection_id: s("c1"),
            },
        ),
        (
            Method::GET,
            "/api/hubs/hub/connections/c1",
            Operation::ConnectionExists {
                connection_id: s("c1"),
            },
        ),
        (
            Method::HEAD,
            "/api/hubs/hub/groups/g",
            Operation::GroupExists { group: s("g") },
        ),
        (
            Method::GET,
            "/api/hubs/hub/groups/g",
            Operation::GroupExists { group: s("g") },
        ),
        (
            Method::HEAD,
            "/api/hubs/hub/users/u",
            Operation::UserExists { user_id: s("u") },
        ),
        (
            Method::PUT,
            "/api/hubs/hub/users/u/groups/g",
            Operation::AddUserToGroup {
                user_id: s("u"),
                group: s("g"),
            },
        ),
        (
            Method::DELETE,
            "/api/hubs/hub/users/u/groups/g",
            Operation::RemoveUserFromGroup {
                user_id: s("u"),
                group: s("g"),
            },
        ),
        (
            Method::DELETE,
            "/api/hubs/hub/users/u/groups",
            Operation::RemoveUserFromAllGroups { user_id: s("u") },
        ),
        (
            Method::GET,
            "/api/hubs/hub/groups/g/connections",
            Operation::ListConnectionsInGroup { group: s("g") },
        ),
        (
            Method::POST,
            "/api/hubs/hub/:generateToken",
            Operation::GenerateClientToken,
        ),
        (
            Method::PUT,
            "/api/hubs/hub/permissions/sendToGroup/connections/c1",
            Operation::GrantPermission {
                permission: s("sendToGroup"),
                connection_id: s("c1"),
            },
        ),
        (
            Method::HEAD,
            "/api/hubs/hub/permissions/joinLeaveGroup/connections/c1",
            Operation::CheckPermission {
                permission: s("joinLeaveGroup"),
                connection_id: s("c1"),
            },
        ),
        (
            Method::DELETE,
            "/api/hubs/hub/permissions/sendToGroup/connections/c1",
            Operation::RevokePermission {
                permission: s("sendToGroup"),
                connection_id: s("c1"),
            },
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(op(method.clone(), path), expected, "{method} {path}");
    }
}

#[test]
fn path_segments_are_percent_decoded() {
    assert_eq!(
        op(Method::POST, "/api/hubs/hub/users/a%2Fb%20c%C3%A9/:send"),
        Operation::SendToUser {
            user_id: "a/b cé".into()
        }
    );
    assert_eq!(
        op(Method::POST, "/api/hubs/hub/groups/0%7ELw%7E/:send"),
        Operation::SendToGroup {
            group: "0~Lw~".into()
        }
    );
    assert!(matches!(
        route(&Method::POST, "/api/hubs/hub/users/%FF/:send"),
        Err(RestError::InvalidParameter { name: "path", .. })
    ));
    let (hub, _) = route(&Method::POST, "/api/hubs/My%5FHub/:send").unwrap();
    assert_eq!(hub, "My_Hub");
}

#[test]
fn unknown_paths_and_wrong_methods() {
    for path in [
        "/api/x",
        "/api/hubs",
        "/api/hubs/",
        "/api/hubs/hub",
        "/api/hubs/hub/",
        "/api/hubs/hub/:send/",
        "/api/hubs/hub/:nope",
        "/api/hubs/hub/groups/g/connections/c/extra",
    ] {
        assert!(
            matches!(
                route(&Method::POST, path),
                Err(RestError::NoSuchRoute { .. })
            ),
            "{path}"
        );
    }
    let allowed = |method: Method, path: &str| match route(&method, path) {
        Err(RestError::MethodNotAllowed { allowed, .. }) => allowed,
        other => panic!("{method} {path}: {other:?}"),
    };
    assert_eq!(allowed(Method::GET, "/api/hubs/hub/:send"), "POST");
    assert_eq!(
        allowed(Method::POST, "/api/hubs/hub/groups/g/connections/c"),
        "PUT, DELETE"
    );
    assert_eq!(
        allowed(Method::PUT, "/api/hubs/hub/connections/c"),
        "GET, HEAD, DELETE"
    );
    assert_eq!(allowed(Method::PATCH, "/api/hubs/hub/users/u"), "GET, HEAD");
}

#[test]
fn targets_decode_socketio_groups() {
    assert_eq!(
        describe_group("0~L2NoYXQ~cm9vbQ"),
        r#"group 0~L2NoYXQ~cm9vbQ (/chat room "room")"#
    );
    assert_eq!(
        describe_group("0~L2NoYXQ~"),
        "group 0~L2NoYXQ~ (namespace /chat)"
    );
    assert_eq!(describe_group("plain"), "group plain");
    assert_eq!(
        Operation::SendToUser {
            user_id: "a".into()
        }
        .target(),
        r#"user "a""#
    );
}

// ---------------------------------------------------------------------------------------------
// A service with fake connections

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn events(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn rest_events(&self) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == "rest")
            .collect()
    }
}

struct Fixture {
    service: Service,
    log: Log,
    /// Commands received, per connection id.
    commands: Arc<Mutex<Vec<(String, ConnCommand)>>>,
}

fn fixture(configure: impl FnOnce(&mut ServeConfig)) -> Fixture {
    let mut config = ServeConfig {
        rest_anonymous: true,
        ..ServeConfig::default()
    };
    configure(&mut config);
    let log = Log::default();
    let traffic = Traffic::new(Format::Json, false, Box::new(log.clone()));
    Fixture {
        service: Service::new(
            Arc::new(config),
            "http://localhost:8080".into(),
            traffic,
            CancellationToken::new(),
        ),
        log,
        commands: Arc::default(),
    }
}

impl Fixture {
    /// Registers connection `id` of `user` with one socket `sid` in each of `namespaces`.
    fn connect(&self, id: &str, user: Option<&str>, sockets: &[(&str, &str)]) {
        self.connect_with(id, user, sockets, true);
    }

    fn connect_with(&self, id: &str, user: Option<&str>, sockets: &[(&str, &str)], accepts: bool) {
        let hub = self.service.hub_or_create("hub").unwrap();
        let sink = self.commands.clone();
        let name = id.to_owned();
        let handle = ConnHandle::new(move |c| {
            if accepts {
                sink.lock().unwrap().push((name.clone(), c));
            }
            accepts
        });
        hub.register(
            id.into(),
            user.map(Arc::from),
            &[],
            crate::service::Transport::WebSocket,
            handle,
        );
        for (ns, sid) in sockets {
            hub.socket_joined(id, ns, &Arc::from(*sid));
        }
    }

    fn take(&self) -> Vec<(String, ConnCommand)> {
        let mut commands = std::mem::take(&mut *self.commands.lock().unwrap());
        commands.sort_by(|a, b| a.0.cmp(&b.0));
        commands
    }

    /// Connection ids that received a `Send`.
    fn sent_to(&self) -> Vec<String> {
        self.take()
            .into_iter()
            .map(|(id, c)| match c {
                ConnCommand::Send(_) => id,
                other => panic!("expected Send, got {other:?}"),
            })
            .collect()
    }

    fn in_group(&self, id: &str, group: &str) -> bool {
        self.service
            .hub("hub")
            .unwrap()
            .connection_groups(id)
            .expect("a live connection")
            .iter()
            .any(|g| g == group)
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "localhost:8080");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .unwrap();
        let response = serve(&self.service, request).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    async fn send(&self, path_and_query: &str, body: &str) -> StatusCode {
        self.call(
            Method::POST,
            path_and_query,
            &[("content-type", "text/plain")],
            body,
        )
        .await
        .0
    }
}

fn error_json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("{body:?}"))
}

const V: &str = "api-version=2024-01-01";

// ---------------------------------------------------------------------------------------------
// Pipeline

#[tokio::test]
async fn api_version_is_required() {
    let f = fixture(|_| {});
    let (status, headers, body) = f
        .call(Method::POST, "/api/hubs/hub/:send", &[], "42[\"a\"]")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-ms-error-code"], "MissingApiVersion");
    assert_eq!(error_json(&body)["target"], "api-version");
    assert_eq!(
        f.send("/api/hubs/hub/:send?api-version=2099-01-01", "42[\"a\"]")
            .await,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn invalid_hub_names_are_400() {
    let f = fixture(|_| {});
    let (status, headers, _) = f
        .call(
            Method::POST,
            &format!("/api/hubs/1hub/:send?{V}"),
            &[],
            "42[\"a\"]",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-ms-error-code"], "InvalidHubName");
}

#[tokio::test]
async fn strict_hubs_refuse_undeclared_hubs() {
    let f = fixture(|c| {
        c.strict_hubs = true;
        c.hubs = vec![crate::config::HubConfig::new(
            "Chat",
            false,
            crate::config::DEFAULT_WEBHOOK,
        )];
    });
    assert_eq!(
        f.send(&format!("/api/hubs/chat/:send?{V}"), "42[\"a\"]")
            .await,
        StatusCode::ACCEPTED
    );
    let (status, headers, _) = f
        .call(
            Method::POST,
            &format!("/api/hubs/other/:send?{V}"),
            &[],
            "42[\"a\"]",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-ms-error-code"], "HubNotFound");
}

#[tokio::test]
async fn bearer_tokens_are_checked_against_the_url() {
    let f = fixture(|c| c.rest_anonymous = false);
    f.connect("c1", None, &[("/", "s1")]);
    let uri = format!("/api/hubs/hub/:send?{V}");
    let url = format!("http://localhost:8080{uri}");
    let mint = |aud: &str, key: &str, lifetime: u64, now: u64| {
        auth::mint(
            key,
            &TokenClaims {
                aud: aud.into(),
                lifetime_secs: lifetime,
                now,
                ..Default::default()
            },
        )
    };
    let now = auth::now_unix();
    let good = mint(&url, auth::DEV_ACCESS_KEY, 300, now);
    let bearer = format!("Bearer {good}");
    let (status, _, _) = f
        .call(
            Method::POST,
            &uri,
            &[("authorization", &bearer)],
            "42[\"a\"]",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(f.sent_to(), vec!["c1"]);

    let cases = [
        (None, Check::Missing),
        (Some("Bearer abc".to_owned()), Check::Malformed),
        (
            Some(format!("Bearer {}", mint(&url, "another key", 300, now))),
            Check::Signature,
        ),
        (
            Some(format!(
                "Bearer {}",
                mint(
                    "http://localhost:8080/api/hubs/other/:send",
                    auth::DEV_ACCESS_KEY,
                    300,
                    now
                )
            )),
            Check::Aud,
        ),
        (
            Some(format!(
                "Bearer {}",
                mint(&url, auth::DEV_ACCESS_KEY, 60, now - 3600)
            )),
            Check::Exp,
        ),
    ];
    for (header, check) in cases {
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("authorization", h)])
            .unwrap_or_default();
        let (status, response_headers, body) =
            f.call(Method::POST, &uri, &headers, "42[\"a\"]").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{check}");
        assert_eq!(response_headers["x-ms-error-code"], "Unauthorized");
        let message = error_json(&body)["message"].as_str().unwrap().to_owned();
        assert!(message.contains(&format!("`{check}` check")), "{message}");
    }
    assert!(f.take().is_empty());
    let events = f.log.rest_events();
    assert_eq!(events.len(), 6, "one traffic line per call");
    assert!(
        events[1]["message"]
            .as_str()
            .unwrap()
            .contains("`missing` check")
    );
}

#[tokio::test]
async fn one_traffic_line_per_call() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/chat", "s1")]);
    f.send(
        &format!("/api/hubs/hub/groups/0~L2NoYXQ~czE/:send?{V}"),
        r#"42/chat,["a"]"#,
    )
    .await;
    f.call(Method::GET, "/api/hubs/hub/:send", &[], "").await;
    let events = f.log.rest_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["operation"], "SendToGroup");
    assert_eq!(events[0]["method"], "POST");
    assert_eq!(events[0]["hub"], "hub");
    assert_eq!(
        events[0]["target"],
        r#"group 0~L2NoYXQ~czE (/chat room "s1")"#
    );
    assert_eq!(events[0]["matched"], 1);
    assert_eq!(events[0]["status"], 202);
    assert_eq!(events[0]["message"], r#"42/chat,["a"]"#);
    assert_eq!(events[1]["status"], 405);
}

// ---------------------------------------------------------------------------------------------
// Sends

#[tokio::test]
async fn send_to_a_socket_room_reaches_only_that_connection() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/chat", "s1")]);
    f.connect("c2", None, &[("/chat", "s2")]);
    let room = group::room_group("/chat", "s1");
    let status = f
        .send(
            &format!("/api/hubs/hub/groups/{room}/:send?{V}"),
            r#"42/chat,["ev","x"]"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let commands = f.take();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].0, "c1");
    assert!(matches!(&commands[0].1, ConnCommand::Send(t) if &**t == r#"42/chat,["ev","x"]"#));
}

#[tokio::test]
async fn hub_names_match_case_insensitively() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/", "s1")]);
    assert_eq!(
        f.send(&format!("/api/hubs/HUB/:send?{V}"), r#"42["a"]"#)
            .await,
        StatusCode::ACCEPTED
    );
    assert_eq!(f.sent_to(), vec!["c1"]);
}

#[tokio::test]
async fn namespace_send_with_excluded_and_filter() {
    let f = fixture(|_| {});
    f.connect("c1", Some("alice"), &[("/chat", "s1")]);
    f.connect("c2", Some("bob"), &[("/chat", "s2")]);
    f.connect("c3", None, &[("/chat", "s3")]);
    f.connect("c4", None, &[("/other", "s4")]);
    let ns = group::namespace_group("/chat");
    let base = format!("/api/hubs/hub/groups/{ns}/:send?{V}");
    let body = r#"42/chat,["ev"]"#;

    f.send(&base, body).await;
    assert_eq!(f.sent_to(), vec!["c1", "c2", "c3"]);

    f.send(&format!("{base}&excluded=c1&excluded=c3"), body)
        .await;
    assert_eq!(f.sent_to(), vec!["c2"]);

    let not_s1 = format!("not ('{}' in groups)", group::room_group("/chat", "s1"));
    let encoded: String = form_urlencoded::byte_serialize(not_s1.as_bytes()).collect();
    f.send(&format!("{base}&filter={encoded}"), body).await;
    assert_eq!(f.sent_to(), vec!["c2", "c3"]);

    f.send(
        &format!("{base}&filter=userId%20ne%20null&excluded=c2"),
        body,
    )
    .await;
    assert_eq!(f.sent_to(), vec!["c1"]);

    f.send(&format!("/api/hubs/hub/:send?{V}"), body).await;
    assert_eq!(f.sent_to(), vec!["c1", "c2", "c3", "c4"]);

    f.send(&format!("/api/hubs/hub/users/alice/:send?{V}"), body)
        .await;
    assert_eq!(f.sent_to(), vec!["c1"]);

    f.send(&format!("/api/hubs/hub/connections/c3/:send?{V}"), body)
        .await;
    assert_eq!(f.sent_to(), vec!["c3"]);
}

#[tokio::test]
async fn sends_that_match_nothing_are_still_accepted() {
    let f = fixture(|_| {});
    for path in [
        "/api/hubs/hub/groups/nobody/:send",
        "/api/hubs/fresh/:send",
        "/api/hubs/hub/connections/none/:send",
        "/api/hubs/hub/users/none/:send",
    ] {
        assert_eq!(
            f.send(&format!("{path}?{V}"), r#"42["a"]"#).await,
            StatusCode::ACCEPTED,
            "{path}"
        );
    }
    let events = f.log.rest_events();
    assert_eq!(events[0]["matched"], 0);
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("no connection is in group `nobody`")
    );
    assert!(f.service.hub("fresh").is_none(), "sends do not create hubs");
}

#[tokio::test]
async fn bad_filter_is_400_with_position() {
    let f = fixture(|_| {});
    let (status, headers, body) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/:send?{V}&filter=userId%20eq%20"),
            &[],
            r#"42["a"]"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-ms-error-code"], "Error.BadRequest");
    let json = error_json(&body);
    assert_eq!(json["target"], "filter");
    assert!(
        json["message"].as_str().unwrap().contains("position 10"),
        "{json}"
    );
}

#[tokio::test]
async fn disconnect_is_a_command_for_sockets_of_that_namespace() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/chat", "s1"), ("/", "r1")]);
    f.connect("c2", None, &[("/", "r2")]);
    f.send(
        &format!("/api/hubs/hub/:send?{V}"),
        r#"41/chat,{"close":true}"#,
    )
    .await;
    let commands = f.take();
    assert_eq!(commands.len(), 1, "c2 has no /chat socket");
    assert!(matches!(
        &commands[0],
        (id, ConnCommand::DisconnectSocket { namespace, close: true }) if id == "c1" && namespace == "/chat"
    ));
    f.send(&format!("/api/hubs/hub/groups/0~Lw~/:send?{V}"), "41")
        .await;
    let commands = f.take();
    assert_eq!(commands.len(), 2);
    assert!(commands.iter().all(|(_, c)| matches!(
        c,
        ConnCommand::DisconnectSocket { namespace, close: false } if namespace == "/"
    )));
}

#[tokio::test]
async fn invalid_payloads_are_400_and_reach_nobody() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/", "s1")]);
    for body in [
        "hello",
        "2",
        "42",
        "40",
        r#""42[\"a\"]""#,
        r#"41{"close":"yes"}"#,
        "",
    ] {
        let (status, headers, response) = f
            .call(
                Method::POST,
                &format!("/api/hubs/hub/:send?{V}"),
                &[("content-type", "text/plain")],
                body,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(headers["x-ms-error-code"], "InvalidPayload");
        assert_eq!(error_json(&response)["target"], "message");
    }
    let (status, _, response) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/:send?{V}"),
            &[("content-type", "application/octet-stream")],
            r#"42["a"]"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_json(&response)["message"]
            .as_str()
            .unwrap()
            .contains("Socket.IO clients need text packets")
    );
    assert!(f.take().is_empty());
}

#[tokio::test]
async fn content_type_and_size_limits() {
    let f = fixture(|c| c.engine.max_payload = 32);
    let uri = format!("/api/hubs/hub/:send?{V}");
    let (status, headers, _) = f
        .call(
            Method::POST,
            &uri,
            &[("content-type", "image/png")],
            r#"42["a"]"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(headers["x-ms-error-code"], "UnsupportedMediaType");
    for ct in [
        "text/plain; charset=utf-8",
        "application/json",
        "TEXT/PLAIN",
    ] {
        let (status, _, _) = f
            .call(Method::POST, &uri, &[("content-type", ct)], r#"42["a"]"#)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{ct}");
    }
    let (status, _, _) = f.call(Method::POST, &uri, &[], r#"42["a"]"#).await;
    assert_eq!(status, StatusCode::ACCEPTED, "no content type = text");
    let big = format!(r#"42["{}"]"#, "x".repeat(40));
    let (status, headers, _) = f.call(Method::POST, &uri, &[], &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers["x-ms-error-code"], "PayloadTooLarge");
}

#[tokio::test]
async fn message_ttl_is_validated() {
    let f = fixture(|_| {});
    let send = |ttl: &str| format!("/api/hubs/hub/:send?{V}&messageTtlSeconds={ttl}");
    assert_eq!(f.send(&send("0"), r#"42["a"]"#).await, StatusCode::ACCEPTED);
    assert_eq!(
        f.send(&send("300"), r#"42["a"]"#).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        f.send(&send("301"), r#"42["a"]"#).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn full_queues_are_skipped_with_a_warning() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/", "s1")]);
    f.connect_with("c2", None, &[("/", "s2")], false);
    assert_eq!(
        f.send(&format!("/api/hubs/hub/:send?{V}"), r#"42["a"]"#)
            .await,
        StatusCode::ACCEPTED
    );
    assert_eq!(f.sent_to(), vec!["c1"]);
    let events = f.log.events();
    let warning = events.iter().find(|e| e["type"] == "warning").unwrap();
    assert!(warning["message"].as_str().unwrap().contains("c2"));
    assert_eq!(f.log.rest_events()[0]["matched"], 2);
}

#[tokio::test]
async fn namespace_mismatch_is_warned() {
    let f = fixture(|_| {});
    f.send(
        &format!("/api/hubs/hub/groups/0~L2NoYXQ~/:send?{V}"),
        r#"42["a"]"#,
    )
    .await;
    let events = f.log.events();
    let warning = events.iter().find(|e| e["type"] == "warning").unwrap();
    assert!(warning["message"].as_str().unwrap().contains("namespace /"));
}

// ---------------------------------------------------------------------------------------------
// Groups

#[tokio::test]
async fn add_and_remove_connections_by_filter() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/chat", "s1")]);
    f.connect("c2", None, &[("/chat", "s2")]);
    let room = group::room_group("/chat", "room");
    let body = serde_json::json!({
        "groups": [room],
        "filter": format!("'{}' in groups", group::room_group("/chat", "s1")),
    })
    .to_string();
    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/:addToGroups?{V}"),
            &[("content-type", "application/json")],
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(f.in_group("c1", &room));
    assert!(!f.in_group("c2", &room));
    f.send(
        &format!("/api/hubs/hub/groups/{room}/:send?{V}"),
        r#"42/chat,["a"]"#,
    )
    .await;
    assert_eq!(f.sent_to(), vec!["c1"]);

    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/:removeFromGroups?{V}"),
            &[("content-type", "application/json")],
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!f.in_group("c1", &room));

    // No filter: every connection.
    let all = serde_json::json!({ "groups": ["everyone"] }).to_string();
    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/:addToGroups?{V}"),
            &[],
            &all,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(f.in_group("c1", "everyone") && f.in_group("c2", "everyone"));

    for (bad, code) in [
        ("not json", "InvalidRequestBody"),
        (r#"{"filter":""}"#, "InvalidRequestBody"),
        (r#"{"groups":[""]}"#, "InvalidParameter"),
        (
            r#"{"groups":["g"],"filter":"groups eq"}"#,
            "Error.BadRequest",
        ),
    ] {
        let (status, headers, _) = f
            .call(
                Method::POST,
                &format!("/api/hubs/hub/:addToGroups?{V}"),
                &[],
                bad,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(headers["x-ms-error-code"], code, "{bad}");
    }
    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/:addToGroups?{V}"),
            &[("content-type", "text/plain")],
            &all,
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn single_connection_group_operations() {
    let f = fixture(|_| {});
    f.connect("c1", None, &[("/", "s1")]);
    let uri = |c: &str| format!("/api/hubs/hub/groups/g/connections/{c}?{V}");
    assert_eq!(
        f.call(Method::PUT, &uri("c1"), &[], "").await.0,
        StatusCode::OK
    );
    assert!(f.in_group("c1", "g"));
    let (status, headers, _) = f.call(Method::PUT, &uri("nope"), &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-ms-error-code"], "Error.Connection.NotExisted");
    assert_eq!(
        f.call(Method::DELETE, &uri("c1"), &[], "").await.0,
        StatusCode::NO_CONTENT
    );
    assert!(!f.in_group("c1", "g"));
    assert_eq!(
        f.call(Method::DELETE, &uri("nope"), &[], "").await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _, _) = f
        .call(
            Method::PUT,
            &format!("/api/hubs/hub/groups/%20/connections/c1?{V}"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "whitespace-only group");

    assert_eq!(
        f.call(
            Method::DELETE,
            &format!("/api/hubs/hub/connections/c1/groups?{V}"),
            &[],
            ""
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert!(!f.in_group("c1", "0~Lw~"));
    assert!(
        f.log.events().iter().any(|e| e["type"] == "warning"),
        "losing implicit groups is warned"
    );
}

#[tokio::test]
async fn exists_routes() {
    let f = fixture(|_| {});
    f.connect("c1", Some("alice"), &[("/", "s1")]);
    for (path, expected) in [
        ("connections/c1", StatusCode::OK),
        ("connections/c2", StatusCode::NOT_FOUND),
        ("groups/0~Lw~", StatusCode::OK),
        ("groups/g", StatusCode::NOT_FOUND),
        ("users/alice", StatusCode::OK),
        ("users/bob", StatusCode::NOT_FOUND),
    ] {
        for method in [Method::HEAD, Method::GET] {
            let (status, headers, body) = f
                .call(
                    method.clone(),
                    &format!("/api/hubs/hub/{path}?{V}"),
                    &[],
                    "",
                )
                .await;
            assert_eq!(status, expected, "{method} {path}");
            // Only a GET for something missing has a body: the service's warning.
            let warning = method == Method::GET && expected == StatusCode::NOT_FOUND;
            assert_eq!(!body.is_empty(), warning, "{method} {path}");
            if expected == StatusCode::NOT_FOUND {
                let code = headers["x-ms-error-code"].to_str().unwrap();
                assert!(code.starts_with("Warning.") && code.ends_with(".NotExisted"));
            }
        }
    }
    let (status, _, _) = f
        .call(
            Method::HEAD,
            &format!("/api/hubs/unused/connections/c1?{V}"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn user_groups_persist_for_future_connections() {
    let f = fixture(|_| {});
    f.connect("c1", Some("alice"), &[("/", "s1")]);
    f.connect("c2", Some("bob"), &[("/", "s2")]);
    let uri = format!("/api/hubs/hub/users/alice/groups/vip?{V}");
    assert_eq!(f.call(Method::PUT, &uri, &[], "").await.0, StatusCode::OK);
    assert!(f.in_group("c1", "vip"));
    assert!(!f.in_group("c2", "vip"));
    f.connect("c3", Some("alice"), &[]);
    assert!(
        f.in_group("c3", "vip"),
        "a new connection of alice joins too"
    );

    assert_eq!(
        f.call(Method::DELETE, &uri, &[], "").await.0,
        StatusCode::NO_CONTENT
    );
    assert!(!f.in_group("c1", "vip") && !f.in_group("c3", "vip"));
    f.connect("c4", Some("alice"), &[]);
    assert!(!f.in_group("c4", "vip"));

    f.call(Method::PUT, &uri, &[], "").await;
    f.call(
        Method::PUT,
        &format!("/api/hubs/hub/users/alice/groups/other?{V}"),
        &[],
        "",
    )
    .await;
    assert_eq!(
        f.call(
            Method::DELETE,
            &format!("/api/hubs/hub/users/alice/groups?{V}"),
            &[],
            ""
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert!(!f.in_group("c1", "vip") && !f.in_group("c1", "other"));
    assert!(
        f.service
            .hub("hub")
            .unwrap()
            .user_groups("alice")
            .is_empty()
    );

    // A user group on a hub nobody used yet creates the hub so the assignment survives.
    assert_eq!(
        f.call(
            Method::PUT,
            &format!("/api/hubs/later/users/u/groups/g?{V}"),
            &[],
            ""
        )
        .await
        .0,
        StatusCode::OK
    );
    assert!(f.service.hub("later").is_some());
    f.call(
        Method::DELETE,
        &format!("/api/hubs/later/users/u/groups/g?{V}"),
        &[],
        "",
    )
    .await;
    assert!(
        f.service.hub("later").is_none(),
        "released when empty again"
    );
}

#[tokio::test]
async fn list_connections_in_group() {
    let f = fixture(|_| {});
    f.connect("c2", None, &[("/", "s2")]);
    f.connect("c1", Some("alice"), &[("/", "s1")]);
    let (status, headers, body) = f
        .call(
            Method::GET,
            &format!("/api/hubs/hub/groups/0~Lw~/connections?{V}"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"value": [
            {"connectionId": "c1", "userId": "alice"},
            {"connectionId": "c2", "userId": null},
        ]})
    );
}

// ---------------------------------------------------------------------------------------------
// Closes

#[tokio::test]
async fn close_operations_pass_the_reason() {
    let f = fixture(|_| {});
    f.connect("c1", Some("alice"), &[("/", "s1")]);
    f.connect("c2", Some("alice"), &[("/", "s2")]);
    f.connect("c3", None, &[("/", "s3")]);
    let reasons = |f: &Fixture| -> Vec<(String, String)> {
        f.take()
            .into_iter()
            .map(|(id, c)| match c {
                ConnCommand::Close { reason } => (id, reason),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());

    let (status, _, _) = f
        .call(
            Method::DELETE,
            &format!("/api/hubs/hub/connections/c1?{V}&reason=bye"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(reasons(&f), vec![s("c1", "closed by REST API: bye")]);

    f.call(
        Method::DELETE,
        &format!("/api/hubs/hub/connections/zzz?{V}"),
        &[],
        "",
    )
    .await;
    assert!(reasons(&f).is_empty());

    f.call(
        Method::POST,
        &format!("/api/hubs/hub/:closeConnections?{V}&excluded=c2"),
        &[],
        "",
    )
    .await;
    assert_eq!(
        reasons(&f),
        vec![s("c1", "closed by REST API"), s("c3", "closed by REST API")]
    );

    f.call(
        Method::POST,
        &format!("/api/hubs/hub/users/alice/:closeConnections?{V}&reason=x%20y"),
        &[],
        "",
    )
    .await;
    assert_eq!(
        reasons(&f),
        vec![
            s("c1", "closed by REST API: x y"),
            s("c2", "closed by REST API: x y")
        ]
    );

    let room = group::room_group("/", "s3");
    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/groups/{room}/:closeConnections?{V}"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(reasons(&f), vec![s("c3", "closed by REST API")]);
}

// ---------------------------------------------------------------------------------------------
// Tokens and permissions

#[tokio::test]
async fn generate_token_mints_a_client_token_for_the_hub() {
    let f = fixture(|_| {});
    let (status, _, body) = f
        .call(
            Method::POST,
            &format!("/api/hubs/hub/:generateToken?{V}&userId=alice&role=r1&group=g1&group=g2&minutesToExpire=5"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = json["token"].as_str().unwrap();
    let claims = auth::verify_client_token(
        token,
        &[auth::DEV_ACCESS_KEY.to_owned()],
        "http://localhost:8080/clients/socketio/hubs/hub",
        auth::now_unix(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["role"], "r1");
    assert_eq!(claims["webpubsub.group"], serde_json::json!(["g1", "g2"]));
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 300);

    for ok in [
        "clientType=Default",
        "clientType=default",
        "clientType=socketio",
    ] {
        let (status, _, _) = f
            .call(
                Method::POST,
                &format!("/api/hubs/hub/:generateToken?{V}&{ok}"),
                &[],
                "",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ok}");
    }
    for bad in [
        "clientType=MQTT",
        "minutesToExpire=0",
        "minutesToExpire=x",
        "group=",
    ] {
        let (status, headers, _) = f
            .call(
                Method::POST,
                &format!("/api/hubs/hub/:generateToken?{V}&{bad}"),
                &[],
                "",
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(headers["x-ms-error-code"], "InvalidParameter");
    }
}

#[tokio::test]
async fn permissions_are_not_implemented() {
    let f = fixture(|_| {});
    for method in [Method::PUT, Method::HEAD, Method::DELETE] {
        let (status, headers, body) = f
            .call(
                method.clone(),
                &format!("/api/hubs/hub/permissions/sendToGroup/connections/c1?{V}&targetName=g"),
                &[],
                "",
            )
            .await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{method}");
        assert_eq!(headers["x-ms-error-code"], "NotImplemented");
        if method == Method::HEAD {
            assert!(body.is_empty(), "HEAD answers have no body");
            continue;
        }
        assert!(
            error_json(&body)["message"]
                .as_str()
                .unwrap()
                .contains("do not apply to Socket.IO")
        );
    }
}
