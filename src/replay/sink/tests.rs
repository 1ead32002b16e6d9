//! Unit tests of the REST sink's answers where they must agree with `serve`'s: the service's
//! `Warning.<Entity>.NotExisted` 404 of an existence check and the `api-supported-versions`
//! header of every operation's answer (docs/protocol.md §7.5).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::rest::error::Entity;
use crate::rest::request::API_SUPPORTED_VERSIONS;

/// One HTTP/1.1 request on a fresh connection; the raw answer, lower-cased header names.
async fn call(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost:{port}\r\ncontent-type: text/plain\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The port `sink` listens on, read from the endpoint it gives the handler.
fn port_of(sink: &Sink) -> u16 {
    let endpoint = sink.endpoint();
    let port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok());
    port.unwrap_or_else(|| panic!("no port in {endpoint}"))
}

// The recorded answer (Azure/azure-sdk-for-js
// `sdk/web-pubsub/web-pubsub/recordings/node/hubclient_working_with_a_hub/recording_can_manage_users.json`:
// HEAD users/foo → 404 `Warning.User.NotExisted`, Content-Length 120), built by the same function
// `serve` uses, so replay and `serve` answer alike.
#[tokio::test]
async fn existence_checks_and_successes_answer_like_serve() {
    let sink = Sink::start("127.0.0.1", 0, "key", Rules::default(), None)
        .await
        .unwrap();
    let port = port_of(&sink);
    let v = "api-version=2024-01-01";

    let (status, headers, body) =
        call(port, "HEAD", &format!("/api/hubs/h/users/foo?{v}"), "").await;
    assert_eq!(status, 404);
    assert_eq!(
        header(&headers, "x-ms-error-code"),
        Some("Warning.User.NotExisted")
    );
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(header(&headers, "content-length"), Some("120"));
    assert_eq!(
        header(&headers, "api-supported-versions"),
        Some(API_SUPPORTED_VERSIONS)
    );
    assert!(body.is_empty());

    let expected = crate::rest::error::not_existed(Entity::Group, "g");
    let expected = http_body_util::BodyExt::collect(expected.into_body())
        .await
        .unwrap()
        .to_bytes();
    let (status, headers, body) = call(port, "GET", &format!("/api/hubs/h/groups/g?{v}"), "").await;
    assert_eq!(status, 404);
    assert_eq!(
        header(&headers, "x-ms-error-code"),
        Some("Warning.Group.NotExisted")
    );
    assert_eq!(body.as_bytes(), expected.as_ref());

    let (status, headers, _) = call(
        port,
        "POST",
        &format!("/api/hubs/h/:send?{v}"),
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        header(&headers, "api-supported-versions"),
        Some(API_SUPPORTED_VERSIONS)
    );

    let (status, headers, _) = call(port, "GET", "/api/health", "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "api-supported-versions"), None);
}

// The sink runs `serve`'s operations: a call `serve` refuses is refused alike, with the same
// error code, instead of getting the operation's success status.
#[tokio::test]
async fn calls_serve_would_refuse_are_refused_alike() {
    let sink = Sink::start("127.0.0.1", 0, "key", Rules::default(), None)
        .await
        .unwrap();
    let port = port_of(&sink);
    let v = "api-version=2024-01-01";

    let (status, headers, _) = call(port, "POST", &format!("/api/hubs/h/:send?{v}"), "").await;
    assert_eq!(status, 400);
    assert_eq!(header(&headers, "x-ms-error-code"), Some("InvalidPayload"));

    let long = "g".repeat(1025);
    let path = format!("/api/hubs/h/groups/{long}/connections/c?{v}");
    let (status, _, body) = call(port, "PUT", &path, "").await;
    assert_eq!(status, 400);
    assert!(body.contains("group"), "{body}");

    let (status, _, _) = call(
        port,
        "POST",
        &format!("/api/hubs/h/:send?{v}"),
        r#"42["a"]"#,
    )
    .await;
    assert_eq!(status, 202, "the positive control");
}
