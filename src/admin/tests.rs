//! Unit tests of the `/_emu/` admin surface: loopback-only peers, refused requests changing
//! nothing, the routes, and view/reset against a real [`Service`].

use super::*;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::service::ConnHandle;
use crate::traffic::Traffic;

fn service() -> Service {
    let faults = crate::fault::Faults::new(Vec::new(), None, Traffic::silent());
    Service::new(
        Arc::new(ServeConfig::default()),
        "http://localhost:8080".into(),
        Traffic::silent(),
        CancellationToken::new(),
    )
    .with_hooks(crate::hooks::Hooks {
        faults: Arc::new(faults),
        ..Default::default()
    })
}

/// A request as curl sends it to the service at `http://localhost:8080`.
fn empty_request(method: Method, path: &str) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost:8080")
        .body(Bytes::new())
        .unwrap()
}

async fn body(response: HttpResponse) -> Value {
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);

#[tokio::test]
async fn only_loopback_peers() {
    let service = service();
    let peer = SocketAddr::new("192.168.1.9".parse().unwrap(), 5);
    let response = serve(
        &service,
        &empty_request(Method::GET, "/_emu/connections"),
        peer,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let json = body(response).await;
    assert_eq!(json["code"], "Forbidden");
    assert!(json["message"].as_str().unwrap().contains("192.168.1.9"));
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let service = service();
    let mut req = empty_request(Method::POST, "/_emu/faults");
    *req.body_mut() = Bytes::from_static(b"event=connect,status=500");
    req.headers_mut().insert(
        "origin",
        http::HeaderValue::from_static("http://evil.example"),
    );
    let response = serve(&service, &req, LOOPBACK).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let json = body(response).await;
    assert_eq!(json["code"], "Forbidden");
    assert!(
        json["message"].as_str().unwrap().contains("Origin"),
        "{json}"
    );
    assert!(service.faults().list().is_empty());

    req.headers_mut().insert(
        "origin",
        http::HeaderValue::from_static("http://localhost:8080"),
    );
    assert_eq!(
        serve(&service, &req, LOOPBACK).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(service.faults().list().len(), 1);
}

#[tokio::test]
async fn routes() {
    let service = service();
    let cases = [
        (Method::GET, "/_emu/connections", StatusCode::OK),
        (Method::GET, "/_emu/connections/", StatusCode::OK),
        (Method::GET, "/_emu/", StatusCode::OK),
        (Method::GET, "/_emu/status", StatusCode::OK),
        (Method::GET, "/_emu/lint", StatusCode::OK),
        (
            Method::POST,
            "/_emu/connections",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/_emu/reset", StatusCode::METHOD_NOT_ALLOWED),
        (
            Method::GET,
            "/_emu/actions/emit",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::POST, "/_emu/actions/explode", StatusCode::NOT_FOUND),
        (Method::GET, "/_emu/entries/x", StatusCode::NOT_FOUND),
        (Method::GET, "/_emu/nope", StatusCode::NOT_FOUND),
    ];
    for (method, path, want) in cases {
        let got = serve(&service, &empty_request(method.clone(), path), LOOPBACK)
            .await
            .status();
        assert_eq!(got, want, "{method} {path}");
    }
}

#[tokio::test]
async fn view_and_reset() {
    let service = service();
    let hub = service.hub_or_create("chat").unwrap();
    let closes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = closes.clone();
    hub.register(
        "c1".into(),
        Some("alice".into()),
        &["plain".into()],
        crate::engineio::Transport::WebSocket,
        ConnHandle::new(move |c| {
            sink.lock().unwrap().push(c);
            true
        }),
    );
    hub.socket_joined("c1", "/ns", &Arc::from("s1"));
    hub.add_user_to_group("bob", "vip");

    let view = body(
        serve(
            &service,
            &empty_request(Method::GET, "/_emu/connections"),
            LOOPBACK,
        )
        .await,
    )
    .await;
    assert_eq!(view["connections"], 1);
    let conn = &view["hubs"][0]["connections"][0];
    assert_eq!(conn["connectionId"], "c1");
    assert_eq!(conn["userId"], "alice");
    assert_eq!(conn["transport"], "websocket");
    assert_eq!(
        conn["sockets"],
        json!([{ "namespace": "/ns", "socketId": "s1", "rooms": ["s1"] }])
    );
    let groups = conn["groups"].as_array().unwrap();
    assert!(groups.contains(&json!({ "name": "0~L25z~", "namespace": "/ns", "room": null })));
    assert!(groups.contains(&json!({ "name": "0~L25z~czE", "namespace": "/ns", "room": "s1" })));
    assert!(groups.contains(&json!({ "name": "plain" })));
    assert_eq!(
        view["hubs"][0]["userGroups"]["bob"],
        json!([{ "name": "vip" }])
    );

    let counts = body(
        serve(
            &service,
            &empty_request(Method::POST, "/_emu/reset"),
            LOOPBACK,
        )
        .await,
    )
    .await;
    assert_eq!(
        counts,
        json!({ "connectionsClosed": 1, "groupsCleared": 3, "userGroupsCleared": 1 })
    );
    let snapshot = hub.snapshot();
    assert!(
        hub.known_groups().is_empty(),
        "no group and no assignment is left"
    );
    assert!(snapshot.user_groups.is_empty());
    assert!(snapshot.connections[0].groups.is_empty());
    let closes = closes.lock().unwrap();
    assert!(
        matches!(&closes[..], [ConnCommand::Close { reason }] if reason == RESET_REASON),
        "{closes:?}"
    );
}

#[test]
fn fault_body_error_message_text() {
    assert_eq!(
        FaultBodyError::NotUtf8.to_string(),
        "the body is not UTF-8 text"
    );
    assert_eq!(
        FaultBodyError::NoRule.to_string(),
        r#"the JSON body needs a string `rule`, e.g. {"rule":"event=connect,status=500"}"#
    );
    assert_eq!(
        FaultBodyError::Refused(crate::hooks::AddFaultError::Unavailable).to_string(),
        "fault injection is not available here"
    );
}
