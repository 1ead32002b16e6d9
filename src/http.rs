//! The bottom every HTTP surface shares (the client endpoint, REST, `/_emu/`, the built-in
//! handlers and replay's REST sink): the response type, a JSON response helper, the error body
//! every surface answers with ([`ErrorBody`]) and the accept loop that serves one listener
//! (with hyper, or first with the minimal HTTP/1 path of [`lite`] for the requests a surface
//! answers there). It knows nothing of the protocols above it.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub mod lite;

pub use lite::{Lite, LiteBody};

/// The response type of every HTTP surface.
pub type HttpResponse = Response<ResponseBody>;

/// The body of an [`HttpResponse`]: whole, or sent chunk by chunk as it is produced (the
/// inspector's server-sent events) until its sender is dropped. A client that goes away drops
/// the body, so the producer's next send fails.
#[derive(Debug)]
pub enum ResponseBody {
    /// The whole body, known when the response is built.
    Full(Full<Bytes>),
    /// Chunks as a producer sends them ([`ResponseBody::channel`]).
    Streaming(mpsc::Receiver<Bytes>),
}

impl ResponseBody {
    /// A whole body.
    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Full(Full::new(bytes.into()))
    }

    /// An empty body.
    pub fn empty() -> ResponseBody {
        ResponseBody::full(Bytes::new())
    }

    /// A streaming body and the sender that feeds it; `capacity` chunks may wait.
    pub fn channel(capacity: usize) -> (mpsc::Sender<Bytes>, ResponseBody) {
        let (tx, rx) = mpsc::channel(capacity);
        (tx, ResponseBody::Streaming(rx))
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ResponseBody::Full(full) => Pin::new(full).poll_frame(cx),
            ResponseBody::Streaming(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(full) => full.is_end_stream(),
            ResponseBody::Streaming(_) => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ResponseBody::Full(full) => full.size_hint(),
            ResponseBody::Streaming(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The `code` of an error body: a name (`"NotFound"`), or the number Engine.IO answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ErrorCode {
    Name(&'static str),
    Number(u8),
}

impl From<&'static str> for ErrorCode {
    fn from(name: &'static str) -> Self {
        ErrorCode::Name(name)
    }
}

impl From<u8> for ErrorCode {
    fn from(number: u8) -> Self {
        ErrorCode::Number(number)
    }
}

/// The error body of every HTTP surface: `{"code","message"}`, followed by whatever fields `X`
/// adds (the REST API's `target`, `details`, `innererror`, or its validation problem's fields).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody<'a, X = ()> {
    pub code: ErrorCode,
    pub message: Cow<'a, str>,
    #[serde(flatten)]
    pub more: X,
}

/// `Content-Type` of an error body, unless the surface says otherwise.
pub const JSON: &str = "application/json";

impl<'a> ErrorBody<'a> {
    /// `{"code","message"}` and nothing more.
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<Cow<'a, str>>) -> Self {
        ErrorBody::with(code, message, ())
    }
}

impl<'a, X: Serialize> ErrorBody<'a, X> {
    /// `{"code","message"}` followed by the fields of `more`.
    pub fn with(code: impl Into<ErrorCode>, message: impl Into<Cow<'a, str>>, more: X) -> Self {
        ErrorBody {
            code: code.into(),
            message: message.into(),
            more,
        }
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The answer carrying this body, as `application/json`.
    pub fn response(&self, status: StatusCode) -> HttpResponse {
        self.response_as(status, JSON)
    }

    /// The answer carrying this body, as `content_type`; the one way an error becomes a response.
    pub fn response_as(&self, status: StatusCode, content_type: &'static str) -> HttpResponse {
        let mut response = Response::new(ResponseBody::full(self.to_json()));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    /// The answer with the code repeated in `x-ms-error-code`, as the Azure services send it.
    pub fn ms_response_as(&self, status: StatusCode, content_type: &'static str) -> HttpResponse {
        let mut response = self.response_as(status, content_type);
        if let ErrorCode::Name(code) = self.code {
            response
                .headers_mut()
                .insert("x-ms-error-code", HeaderValue::from_static(code));
        }
        response
    }
}

/// How long a client may take to send a request head.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What happens to open connections when a listener stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    /// They run until they end by themselves.
    KeepConnections,
    /// They are dropped at once.
    DropConnections,
}

/// Accepts HTTP/1.1 connections on `listener` until `stop` fires: one task per connection,
/// keep-alive and upgrades on; `handle` answers each request, given the peer's address. Used
/// by the service, the built-in handlers and replay's REST sink.
pub async fn serve_http<H, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    on_stop: OnStop,
    handle: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    accept(listener, stop, on_stop, move |stream, peer| {
        serve_hyper(TokioIo::new(stream), handle.clone(), peer)
    })
    .await
}

/// [`serve_http`], with the requests `lite` takes answered on the minimal HTTP/1 path
/// ([`lite`]) and every other connection handed to hyper as [`serve_http`] serves it.
pub async fn serve_http_lite<H, Fut, L>(
    listener: TcpListener,
    stop: CancellationToken,
    on_stop: OnStop,
    handle: H,
    lite: Arc<L>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
    L: Lite,
{
    accept(listener, stop, on_stop, move |stream, peer| {
        let (handle, lite) = (handle.clone(), lite.clone());
        async move {
            if let lite::Outcome::HandOff(stream, read) = lite::serve(stream, peer, &lite).await {
                // Boxed, so a connection served here does not carry hyper's state inline.
                let io = TokioIo::new(lite::Rewind::new(stream, read));
                Box::pin(serve_hyper(io, handle, peer)).await;
            }
        }
    })
    .await
}

/// The accept loop: `connection` serves each accepted stream on a task of its own.
async fn accept<C, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    on_stop: OnStop,
    connection: C,
) where
    C: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let served = connection(stream, peer);
        match on_stop {
            // The connection's future is the task: wrapped in another future, it would be
            // kept twice in the task (once captured, once awaited).
            OnStop::KeepConnections => drop(tokio::spawn(served)),
            OnStop::DropConnections => {
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = served => {}
                    }
                });
            }
        }
    }
}

/// Serves one connection with hyper until it ends.
async fn serve_hyper<I, H, Fut>(io: I, handle: H, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let service = service_fn(move |req| {
        let handle = handle.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(req, peer).await) }
    });
    let _ = http1::Builder::new()
        .keep_alive(true)
        // A client that never finishes its request head cannot hold a connection.
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service)
        .with_upgrades()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        assert_eq!(
            ErrorBody::new(3u8, "Bad request").to_json(),
            r#"{"code":3,"message":"Bad request"}"#
        );
        #[derive(Serialize)]
        struct More {
            target: Option<&'static str>,
            innererror: Option<()>,
        }
        let more = More {
            target: Some("hub"),
            innererror: None,
        };
        let body = ErrorBody::with("InvalidHubName", "`a\"b` is bad", more);
        assert_eq!(
            body.to_json(),
            r#"{"code":"InvalidHubName","message":"`a\"b` is bad","target":"hub","innererror":null}"#
        );
        let plain = ErrorBody::new("NotFound", "m").response(StatusCode::NOT_FOUND);
        assert_eq!(plain.status(), StatusCode::NOT_FOUND);
        assert_eq!(plain.headers()[header::CONTENT_TYPE], JSON);
        assert!(plain.headers().get("x-ms-error-code").is_none());
        let ms = body.ms_response_as(StatusCode::BAD_REQUEST, "application/problem+json");
        assert_eq!(ms.headers()["x-ms-error-code"], "InvalidHubName");
        assert_eq!(
            ms.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
