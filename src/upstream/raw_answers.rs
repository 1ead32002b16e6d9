//! The webhook client against a real loopback server that writes raw answers byte for byte:
//! each way an HTTP/1.1 body can end, interim answers, answers too large or unreadable, a
//! pooled connection the server closed while idle, and a server that never answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::MAX_RESPONSE_BODY;
use super::{EventKind, Upstream, UpstreamSettings, WebhookError, WebhookEvent, WebhookResponse};

/// What the server does with one request.
#[derive(Clone)]
enum Act {
    /// Writes these bytes and keeps the connection.
    Answer(Vec<u8>),
    /// Writes these bytes, then closes the connection.
    AnswerAndClose(Vec<u8>),
    /// Closes the connection without answering.
    Close,
    /// Never answers, keeps the connection open.
    Silent,
}

/// One request as received: its connection, its head as sent, its body.
#[derive(Debug, Clone)]
struct Received {
    connection: usize,
    head: String,
    body: Vec<u8>,
}

/// A server on 127.0.0.1:0 whose answers are the bytes `script(connection, request)` says.
struct RawServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
    /// Notified each time the server closes a connection.
    closed: Arc<Notify>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

type Script = Arc<dyn Fn(usize, usize) -> Act + Send + Sync>;

impl RawServer {
    async fn start(script: impl Fn(usize, usize) -> Act + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script: Script = Arc::new(script);
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(Notify::new());
        let (r, c, n) = (received.clone(), connections.clone(), closed.clone());
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = c.fetch_add(1, Ordering::SeqCst);
                let (r, n, script) = (r.clone(), n.clone(), script.clone());
                tokio::spawn(serve(stream, connection, r, n, script));
            }
        });
        RawServer {
            addr,
            received,
            connections,
            closed,
            accept_loop,
        }
    }

    fn settings(&self) -> UpstreamSettings {
        UpstreamSettings {
            url_template: format!("http://{}/api/{{hub}}/{{event}}", self.addr),
            access_keys: vec!["key".into()],
            origin: "localhost".into(),
            timeout: Duration::from_secs(5),
            preflight: false,
            retry_delays: vec![],
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Serves one connection: reads each request (head and `Content-Length` body), records it and
/// acts as the script says.
async fn serve(
    mut stream: TcpStream,
    connection: usize,
    received: Arc<Mutex<Vec<Received>>>,
    closed: Arc<Notify>,
    script: Script,
) {
    let mut buf = Vec::new();
    loop {
        let (head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = request.parse(&buf) {
                let length = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| {
                        std::str::from_utf8(h.value).unwrap().parse().unwrap()
                    });
                break (n, length);
            }
            if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        };
        while buf.len() < head_len + body_len {
            if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
        let index = {
            let mut received = received.lock().unwrap();
            received.push(Received {
                connection,
                head: String::from_utf8_lossy(&buf[..head_len]).into_owned(),
                body: buf[head_len..head_len + body_len].to_vec(),
            });
            received.len() - 1
        };
        buf.drain(..head_len + body_len);
        match script(connection, index) {
            // The client may have hung up already (an answer too large): nothing to do then.
            Act::Answer(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Act::AnswerAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                drop(stream);
                closed.notify_one();
                return;
            }
            Act::Close => {
                drop(stream);
                closed.notify_one();
                return;
            }
            Act::Silent => std::future::pending::<()>().await,
        }
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `msg` event with `body`.
fn event(body: &str) -> WebhookEvent {
    super::client::tests::event(EventKind::User("msg".into()), body)
}

async fn call(upstream: &Upstream, s: &UpstreamSettings) -> Result<WebhookResponse, WebhookError> {
    let e = event("42[\"msg\",1]");
    upstream.call(s, &e).send(|_| {}).await.result
}

fn unreachable_cause(result: Result<WebhookResponse, WebhookError>) -> String {
    match result {
        Err(WebhookError::Unreachable { cause, .. }) => cause,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_chunked_body_is_read_whole_and_the_connection_kept() {
    let server = RawServer::start(|_, _| {
        Act::Answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
              5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let upstream = Upstream::new();
    let s = server.settings();
    for _ in 0..2 {
        let response = call(&upstream, &s).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(&response.body[..], b"hello world");
        assert_eq!(response.content_type().as_deref(), Some("text/plain"));
    }
    assert_eq!(server.received().len(), 2);
    assert_eq!(
        server.connections(),
        1,
        "the trailers were read, the connection reused"
    );
    assert_eq!(upstream.pool().idle(), 1);
}

#[tokio::test]
async fn close_delimited_bodies_end_with_the_connection() {
    let server = RawServer::start(|_, i| match i {
        // HTTP/1.0 without a length: the body runs to the close.
        0 => {
            Act::AnswerAndClose(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbye".to_vec())
        }
        // HTTP/1.1 without a length or chunking: the same.
        1 => Act::AnswerAndClose(b"HTTP/1.1 200 OK\r\n\r\nsee you".to_vec()),
        // `Connection: close` with a length: read by length, the connection not reused.
        2 => Act::Answer(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ),
        _ => Act::Answer(ok("again")),
    })
    .await;
    let upstream = Upstream::new();
    let s = server.settings();
    for expected in ["bye", "see you", "ok", "again"] {
        let body = call(&upstream, &s).await.unwrap().body;
        assert_eq!(body, expected.as_bytes());
    }
    let connections: Vec<usize> = server.received().iter().map(|r| r.connection).collect();
    assert_eq!(
        connections,
        [0, 1, 2, 3],
        "no connection reused after a close"
    );
    assert_eq!(upstream.pool().idle(), 1);
}

#[tokio::test]
async fn a_pooled_connection_closed_while_idle_is_replaced_once() {
    let server = RawServer::start(|connection, _| match connection {
        0 => Act::AnswerAndClose(ok("first")),
        1 => Act::Answer(ok("second")),
        _ => Act::Close,
    })
    .await;
    let upstream = Upstream::new();
    let s = server.settings();
    // Answered with keep-alive, so pooled; then the server closes it.
    assert_eq!(&call(&upstream, &s).await.unwrap().body[..], b"first");
    server.closed.notified().await;
    assert_eq!(upstream.pool().idle(), 1);
    // The next call finds it closed before any answer, and goes again on a new connection.
    let delivery = upstream
        .call(&s, &event("42[\"msg\",2]"))
        .send(|_| {})
        .await;
    let response = delivery.result.unwrap();
    assert_eq!(&response.body[..], b"second");
    assert_eq!(
        delivery.attempts, 1,
        "the replacement is part of the attempt"
    );
    let received = server.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[1].connection, 1);
    assert_eq!(received[1].body, b"42[\"msg\",2]");

    // Once only: a fresh connection closed before answering is an error, not tried again.
    let server2 = RawServer::start(|connection, _| match connection {
        0 => Act::AnswerAndClose(ok("first")),
        _ => Act::Close,
    })
    .await;
    let s2 = server2.settings();
    call(&upstream, &s2).await.unwrap();
    server2.closed.notified().await;
    let cause = unreachable_cause(call(&upstream, &s2).await);
    assert!(
        cause.contains("closed the connection before answering"),
        "{cause}"
    );
    assert_eq!(
        server2.connections(),
        2,
        "the pooled one and one new one, no third"
    );
}

#[tokio::test]
async fn answers_over_the_limit_are_errors_whatever_their_framing() {
    let over = MAX_RESPONSE_BODY + 1;
    let server = RawServer::start(move |_, i| match i {
        0 => Act::Answer(format!("HTTP/1.1 200 OK\r\nContent-Length: {over}\r\n\r\n").into_bytes()),
        1 => Act::Answer(
            format!("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n{over:x}\r\n")
                .into_bytes(),
        ),
        _ => {
            let mut answer = b"HTTP/1.0 202 Accepted\r\n\r\n".to_vec();
            answer.resize(answer.len() + over, b'x');
            Act::AnswerAndClose(answer)
        }
    })
    .await;
    let upstream = Upstream::new();
    let s = server.settings();
    for expected in [200, 201, 202] {
        match call(&upstream, &s).await {
            Err(WebhookError::ResponseTooLarge { status, limit, .. }) => {
                assert_eq!((status, limit), (expected, MAX_RESPONSE_BODY));
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
    assert_eq!(
        upstream.pool().idle(),
        0,
        "no connection with an unread body is kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out() {
    let server = RawServer::start(|_, _| Act::Silent).await;
    let upstream = Upstream::new();
    let mut s = server.settings();
    s.timeout = Duration::from_secs(3);
    let started = Instant::now();
    match call(&upstream, &s).await {
        Err(WebhookError::Timeout { after, .. }) => assert_eq!(after, s.timeout),
        other => panic!("{other:?}"),
    }
    assert_eq!(started.elapsed(), s.timeout);
    assert_eq!(
        upstream.pool().idle(),
        0,
        "a connection owing an answer is dropped"
    );
}

#[tokio::test]
async fn interim_answers_are_skipped() {
    let server = RawServer::start(|_, _| {
        Act::Answer(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n\
              HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        )
    })
    .await;
    let upstream = Upstream::new();
    let response = call(&upstream, &server.settings()).await.unwrap();
    assert_eq!((response.status, response.reason()), (201, "Created"));
    assert_eq!(&response.body[..], b"ok");
    assert!(
        response.headers().get("link").is_none(),
        "the final answer's headers"
    );
}

#[tokio::test]
async fn unreadable_answers_are_clear_errors() {
    // A head over the limit, whole in one write (it must not pass for having arrived at once).
    let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70_000));
    big.extend(b"\r\nContent-Length: 0\r\n\r\n");
    let big: &'static [u8] = Box::leak(big.into_boxed_slice());
    for (answer, expected) in [
        (big, "larger than 65536 bytes"),
        (&b"HELLO WORLD\r\n\r\n"[..], "HELLO WORLD"),
        (b"HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 abc OK"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            "conflicting Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "invalid chunked encoding",
        ),
    ] {
        let server = RawServer::start(move |_, _| Act::AnswerAndClose(answer.to_vec())).await;
        let upstream = Upstream::new();
        let error = call(&upstream, &server.settings()).await.unwrap_err();
        let hint = error.hint().unwrap_or_default();
        let cause = unreachable_cause(Err(error));
        assert!(cause.contains(expected), "{cause}");
        // The webhook is running and answered: the hint is about its answer, not its address.
        assert!(hint.contains("what the handler writes"), "{hint}");
        assert!(!hint.contains("host and port"), "{hint}");
    }
}

/// The preflight leaves as hyper's client wrote it: its two headers, then `host`.
#[tokio::test]
async fn the_preflight_head_is_written_as_before() {
    let server = RawServer::start(|_, i| match i {
        0 => Act::Answer(
            b"HTTP/1.1 200 OK\r\nWebHook-Allowed-Origin: *\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        _ => Act::Answer(ok("")),
    })
    .await;
    let upstream = Upstream::new();
    let mut s = server.settings();
    s.preflight = true;
    call(&upstream, &s).await.unwrap();
    let received = server.received();
    assert_eq!(
        received[0].head,
        format!(
            "OPTIONS /api/chat/validate HTTP/1.1\r\nwebhook-request-origin: localhost\r\n\
             ce-awpsversion: 1.0\r\nhost: {}\r\n\r\n",
            server.addr
        )
    );
    assert!(
        received[1]
            .head
            .starts_with("POST /api/chat/msg HTTP/1.1\r\n")
    );
    assert_eq!(
        received[1].connection, 0,
        "the preflight's connection was reused"
    );
}
