//! The bottom every HTTP surface shares (the client endpoint, REST, `/_emu/`, the built-in
//! handlers and replay's REST sink): the response type, a JSON response helper and the accept
//! loop that serves one listener. It knows nothing of the protocols above it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
        let (handle, stop) = (handle.clone(), stop.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, peer).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(true)
                // A client that never finishes its request head cannot hold a connection.
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            match on_stop {
                OnStop::KeepConnections => {
                    let _ = connection.await;
                }
                OnStop::DropConnections => {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = connection => {}
                    }
                }
            }
        });
    }
}
