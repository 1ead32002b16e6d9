//! A minimal HTTP/1.1 server loop for the requests a surface chooses to answer itself (the
//! client endpoint's long-polling GETs and POSTs), so that a connection parked on a long poll
//! holds no read or write buffer: hyper keeps both for as long as a connection lives.
//!
//! Every accepted connection starts here. The first request head is read into a small buffer
//! and parsed ([`httparse`]); when the [`Lite`] surface takes it, the request is answered by this
//! loop, keep-alive, one request after the other (pipelined ones too). Anything else — a head
//! this loop does not understand or will not serve (an upgrade, `Expect`, an unusual framing,
//! a head larger than [`HEAD_MAX`]), or a request the surface does not take — hands the
//! connection to hyper with the bytes already read put back in front ([`Rewind`]), so hyper
//! sees exactly what the client sent.
//!
//! Clients see what hyper would have sent: the status line, the response's headers in order,
//! `connection: close` / `connection: keep-alive` as hyper adds them, `content-length` and
//! `date` last. A head must complete within [`super::HEADER_READ_TIMEOUT`] of the moment the
//! loop starts waiting for it (an idle keep-alive connection included), as hyper's header-read
//! timeout does. A body is read in full before the surface answers, bounded by the limit the
//! surface gives and counted in full (chunk data, whatever the chunk sizes); a body that is
//! larger, malformed or cut short reaches the surface as a body error. After the answer, the
//! unread rest of a larger body is dropped if it has already arrived (as hyper drains it) and
//! the connection closes otherwise. While an answer is pending the loop watches the socket without a buffer:
//! a client that goes away drops the pending answer, as hyper does.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::{HEADER_READ_TIMEOUT, HttpResponse};

/// The most a request head may take on this path; a larger one goes to hyper.
pub const HEAD_MAX: usize = 8 * 1024;

/// The first allocation for a head (grown up to [`HEAD_MAX`]).
const HEAD_FIRST: usize = 1024;

/// The most headers a head may have on this path; more go to hyper.
const MAX_HEADERS: usize = 64;

/// The longest chunk-size line (with extensions) or trailer line of a chunked body.
const CHUNK_LINE_MAX: usize = 4 * 1024;

/// A surface that answers some requests on this path.
pub trait Lite: Send + Sync + 'static {
    /// The body bound of a request this surface answers here, or `None` to hand the
    /// connection to hyper.
    fn takes(&self, head: &Request<()>) -> Option<usize>;

    /// Answers a request it took; `peer` is the TCP peer address.
    fn answer(
        self: Arc<Self>,
        req: Request<LiteBody>,
        peer: SocketAddr,
    ) -> impl Future<Output = HttpResponse> + Send;
}

/// A request body read in full, or the reason it could not be (larger than the bound,
/// malformed, cut short): the surface sees the latter as a body error.
#[derive(Debug)]
pub enum LiteBody {
    /// The whole body (taken by the first poll).
    Whole(Option<Bytes>),
    /// Not readable; the first poll yields the error.
    Failed(Option<BodyError>),
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// More than the bound (declared or counted).
    TooLarge,
    /// Chunked framing broken.
    Malformed,
    /// The connection ended or failed first.
    Incomplete,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyError::TooLarge => "request body larger than its bound",
            BodyError::Malformed => "malformed chunked request body",
            BodyError::Incomplete => "request body cut short",
        })
    }
}

impl std::error::Error for BodyError {}

impl hyper::body::Body for LiteBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Poll::Ready(match self.get_mut() {
            LiteBody::Whole(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
            LiteBody::Failed(error) => error.take().map(Err),
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, LiteBody::Whole(None) | LiteBody::Failed(None))
    }
}

/// An I/O whose first reads return bytes already read from it.
#[derive(Debug)]
pub struct Rewind<T> {
    prefix: Option<Bytes>,
    inner: T,
}

impl<T> Rewind<T> {
    /// `inner`, with `prefix` read first.
    pub fn new(inner: T, prefix: Bytes) -> Self {
        let prefix = (!prefix.is_empty()).then_some(prefix);
        Rewind { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(prefix) = self.prefix.as_mut() {
            let n = prefix.len().min(buf.remaining());
            buf.put_slice(&prefix[..n]);
            prefix.advance(n);
            if prefix.is_empty() {
                self.prefix = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a connection served here ends.
#[derive(Debug)]
pub enum Outcome {
    /// Closed (by either side, a timeout or an error).
    Closed,
    /// Hyper takes over: the stream and the bytes read from it but not yet served.
    HandOff(TcpStream, Bytes),
}

/// A parsed request head this loop can serve, and what its framing says.
struct Head {
    request: Request<()>,
    /// Bytes the head took.
    len: usize,
    body: Framing,
    keep_alive: bool,
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

/// Serves `stream` until it closes or a request goes to hyper.
pub async fn serve<L: Lite>(mut stream: TcpStream, peer: SocketAddr, lite: &Arc<L>) -> Outcome {
    // Bytes read past the requests served so far: empty (and unallocated) while idle.
    let mut pending = BytesMut::new();
    loop {
        let deadline = Instant::now() + HEADER_READ_TIMEOUT;
        let head = match timeout_at(deadline, read_head(&mut stream, &mut pending)).await {
            Ok(HeadRead::Complete) => parse(&pending),
            Ok(HeadRead::NotHere) => None,
            Ok(HeadRead::Closed) | Err(_) => return Outcome::Closed,
        };
        let Some((head, limit)) = head.and_then(|h| lite.takes(&h.request).map(|l| (h, l))) else {
            return Outcome::HandOff(stream, pending.freeze());
        };
        pending.advance(head.len);
        let (version, keep_alive) = (head.request.version(), head.keep_alive);
        let (body, unread) = read_body(&mut stream, &mut pending, head.body, limit).await;
        if pending.is_empty() {
            pending = BytesMut::new();
        }
        let request = head.request.map(|()| body);
        // Pinned here and borrowed below, so the task keeps the pending answer once.
        let mut answer = std::pin::pin!(lite.clone().answer(request, peer));
        let Some(response) = answer_or_vanish(&stream, &mut pending, answer.as_mut()).await else {
            return Outcome::Closed;
        };
        let written = write_response(&mut stream, response, version, keep_alive).await;
        if written.is_err() || !keep_alive {
            let _ = stream.shutdown().await;
            return Outcome::Closed;
        }
        if !drained_now(&mut stream, &mut pending, unread) {
            linger(&mut stream).await;
            return Outcome::Closed;
        }
        if pending.is_empty() {
            pending = BytesMut::new();
        }
    }
}

/// How long a closing side reads what its peer still sends.
const LINGER: Duration = Duration::from_secs(1);

/// At most this much of what a closing peer still sends is read and discarded.
const LINGER_BYTES: usize = 1 << 20;

/// Ends the write side, then reads for a moment what the client still sends (the rest of a
/// body that was not read), so the close does not reset the connection before the client
/// reads the answer.
async fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    discard_unread(stream).await;
}

/// Reads and drops, for at most [`LINGER`] and [`LINGER_BYTES`], what a peer still sends after
/// this side closed (an unread body, the rest of an oversized WebSocket frame), so that closing
/// with unread data does not reset the connection before the peer reads the last answer.
pub(crate) async fn discard_unread(io: &mut (impl AsyncRead + Unpin)) {
    use tokio::io::AsyncReadExt;
    let _ = tokio::time::timeout(LINGER, async {
        let mut buf = [0u8; 512];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Where reading a head got to.
enum HeadRead {
    /// `pending` starts with a complete head.
    Complete,
    /// Not a head this loop parses (an error, too large): hyper's.
    NotHere,
    /// The connection ended or failed.
    Closed,
}

/// Reads until `pending` holds a complete head. No buffer is held while nothing arrives.
async fn read_head(stream: &mut TcpStream, pending: &mut BytesMut) -> HeadRead {
    let mut scanned = 0;
    loop {
        if !pending.is_empty() {
            if head_end(pending, scanned).is_some() {
                return HeadRead::Complete;
            }
            scanned = pending.len();
            if pending.len() >= HEAD_MAX {
                return HeadRead::NotHere;
            }
        }
        if stream.readable().await.is_err() {
            return HeadRead::Closed;
        }
        let want = if pending.capacity() == 0 {
            HEAD_FIRST
        } else {
            (pending.len() * 2).min(HEAD_MAX) - pending.len()
        };
        pending.reserve(want.max(1));
        match stream.try_read_buf(pending) {
            Ok(0) => return HeadRead::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return HeadRead::Closed,
        }
        if pending.is_empty() {
            // Woken with nothing read: give the buffer back while waiting.
            *pending = BytesMut::new();
        }
    }
}

/// Where the blank line ending a head is, looking from a little before `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let tail = &buf[start..];
    tail.windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| tail.windows(3).position(|w| w == b"\n\r\n"))
        .map(|i| start + i)
}

/// Parses the head `buf` starts with, or `None` when this loop leaves it to hyper.
fn parse(buf: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf).ok()? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return None,
    };
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let path = req.path?;
    if !path.starts_with('/') {
        return None;
    }
    let uri = Uri::from_maybe_shared(Bytes::copy_from_slice(path.as_bytes())).ok()?;
    let http11 = match req.version? {
        1 => true,
        0 => false,
        _ => return None,
    };
    let mut map = HeaderMap::with_capacity(req.headers.len());
    let mut keep_alive = http11;
    let mut saw_close = false;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        match name {
            header::TRANSFER_ENCODING => {
                if !http11 || chunked || !value.as_bytes().eq_ignore_ascii_case(b"chunked") {
                    return None;
                }
                chunked = true;
            }
            header::CONTENT_LENGTH => {
                let n = digits(value.as_bytes())?;
                if length.is_some_and(|prev| prev != n) {
                    return None;
                }
                length = Some(n);
            }
            header::CONNECTION => {
                if saw_close || has_token(&value, "close") {
                    saw_close = true;
                    keep_alive = false;
                } else if !keep_alive {
                    keep_alive = has_token(&value, "keep-alive");
                }
            }
            header::EXPECT | header::UPGRADE => return None,
            _ => {}
        }
        map.append(name, value);
    }
    let body = match (chunked, length) {
        (true, Some(_)) => return None,
        (true, None) => Framing::Chunked,
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = if http11 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    *request.headers_mut() = map;
    Some(Head {
        request,
        len,
        body,
        keep_alive,
    })
}

/// A `Content-Length` value: digits only.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Whether a `Connection` value lists `token`.
fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// What of a request body is still unread when the surface answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unread {
    /// Nothing: the connection is at the next request.
    Nothing,
    /// This many bytes of a `Content-Length` body.
    Length(u64),
    /// The rest of a chunked body, from a chunk of this many data bytes.
    Chunked(u64),
    /// Broken or cut short: the connection cannot be reused.
    Broken,
}

/// The most of an unread body (over its bound) drained to keep a connection, and only when it
/// is already there: hyper reads it once, if it can without waiting, and closes otherwise.
const DRAIN_MAX: u64 = 64 * 1024;

/// Reads the body `framing` announces, at most `limit` bytes of it, and what is left unread.
async fn read_body(
    stream: &mut TcpStream,
    pending: &mut BytesMut,
    framing: Framing,
    limit: usize,
) -> (LiteBody, Unread) {
    let result = match framing {
        Framing::Length(0) => Ok(Bytes::new()),
        Framing::Length(n) if n > limit as u64 => Err((BodyError::TooLarge, Unread::Length(n))),
        Framing::Length(n) => read_exact(stream, pending, n as usize)
            .await
            .map(Bytes::from)
            .map_err(|e| (e, Unread::Broken)),
        Framing::Chunked => read_chunked(stream, pending, limit).await,
    };
    match result {
        Ok(bytes) => (LiteBody::Whole(Some(bytes)), Unread::Nothing),
        Err((error, unread)) => (LiteBody::Failed(Some(error)), unread),
    }
}

/// Whether the connection can serve another request after its answer: the unread rest of a
/// body is discarded when it has already arrived (at most [`DRAIN_MAX`]).
fn drained_now(stream: &mut TcpStream, pending: &mut BytesMut, unread: Unread) -> bool {
    use futures_util::FutureExt;
    match unread {
        Unread::Nothing => true,
        Unread::Broken => false,
        rest => matches!(discard(stream, pending, rest).now_or_never(), Some(Ok(()))),
    }
}

/// Reads and drops the rest of a body.
async fn discard(
    stream: &mut TcpStream,
    pending: &mut BytesMut,
    rest: Unread,
) -> Result<(), BodyError> {
    let mut budget = DRAIN_MAX;
    match rest {
        Unread::Length(n) => skip(stream, pending, n, &mut budget).await,
        Unread::Chunked(mut size) => loop {
            // The chunk's data and its line end.
            skip(stream, pending, size + 2, &mut budget).await?;
            size = chunk_size(&read_line(stream, pending).await?).ok_or(BodyError::Malformed)?;
            if size == 0 {
                while !read_line(stream, pending).await?.is_empty() {}
                return Ok(());
            }
        },
        Unread::Nothing => Ok(()),
        Unread::Broken => Err(BodyError::Malformed),
    }
}

/// Drops the next `n` bytes, within `budget`.
async fn skip(
    stream: &mut TcpStream,
    pending: &mut BytesMut,
    n: u64,
    budget: &mut u64,
) -> Result<(), BodyError> {
    if n > *budget {
        return Err(BodyError::TooLarge);
    }
    *budget -= n;
    let mut left = n as usize;
    loop {
        let take = left.min(pending.len());
        pending.advance(take);
        left -= take;
        if left == 0 {
            return Ok(());
        }
        fill(stream, pending, left).await?;
    }
}

/// Reads more of the stream into `pending` (at least one byte, or an error).
async fn fill(
    stream: &mut TcpStream,
    pending: &mut BytesMut,
    want: usize,
) -> Result<(), BodyError> {
    use tokio::io::AsyncReadExt;
    pending.reserve(want.clamp(1, 16 * 1024));
    match stream.read_buf(pending).await {
        Ok(0) | Err(_) => Err(BodyError::Incomplete),
        Ok(_) => Ok(()),
    }
}

/// The next `n` bytes.
async fn read_exact(
    stream: &mut TcpStream,
    pending: &mut BytesMut,
    n: usize,
) -> Result<BytesMut, BodyError> {
    while pending.len() < n {
        fill(stream, pending, n - pending.len()).await?;
    }
    Ok(pending.split_to(n))
}

/// The next line (without its line end), at most [`CHUNK_LINE_MAX`] bytes.
async fn read_line(stream: &mut TcpStream, pending: &mut BytesMut) -> Result<BytesMut, BodyError> {
    let mut scanned = 0;
    loop {
        if let Some(i) = pending[scanned..].iter().position(|&b| b == b'\n') {
            let mut line = pending.split_to(scanned + i + 1);
            line.truncate(scanned + i);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            return Ok(line);
        }
        scanned = pending.len();
        if scanned > CHUNK_LINE_MAX {
            return Err(BodyError::Malformed);
        }
        fill(stream, pending, 512).await?;
    }
}

/// A chunked body's data, counted in full against `limit` (chunk by chunk, before reading it).
async fn read_chunked(
    stream: &mut TcpStream,
    pending: &mut BytesMut,
    limit: usize,
) -> Result<Bytes, (BodyError, Unread)> {
    let broken = |e| (e, Unread::Broken);
    let mut body = BytesMut::new();
    loop {
        let line = read_line(stream, pending).await.map_err(broken)?;
        let size = chunk_size(&line).ok_or((BodyError::Malformed, Unread::Broken))?;
        if size == 0 {
            // Trailers, up to the blank line.
            while !read_line(stream, pending).await.map_err(broken)?.is_empty() {}
            return Ok(body.freeze());
        }
        if size > (limit - body.len()) as u64 {
            return Err((BodyError::TooLarge, Unread::Chunked(size)));
        }
        let data = read_exact(stream, pending, size as usize)
            .await
            .map_err(broken)?;
        body.extend_from_slice(&data);
        if !read_line(stream, pending).await.map_err(broken)?.is_empty() {
            return Err((BodyError::Malformed, Unread::Broken));
        }
    }
}

/// The size of a chunk-size line (hex digits, then optional extensions after `;`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let hex = std::str::from_utf8(&line[..end])
        .ok()?
        .trim_end_matches([' ', '\t']);
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Awaits `answer` while watching the socket without a buffer: `None` when the client
/// went away first. Bytes that arrive meanwhile (a pipelined request) are kept in `pending`,
/// and the watch stops, as hyper's does.
async fn answer_or_vanish(
    stream: &TcpStream,
    pending: &mut BytesMut,
    mut answer: Pin<&mut impl Future<Output = HttpResponse>>,
) -> Option<HttpResponse> {
    if !pending.is_empty() {
        return Some(answer.await);
    }
    loop {
        tokio::select! {
            response = &mut answer => return Some(response),
            ready = stream.readable() => {
                if ready.is_err() {
                    return None;
                }
                let mut probe = [0u8; 1];
                match stream.try_read(&mut probe) {
                    Ok(0) => return None,
                    Ok(_) => {
                        pending.extend_from_slice(&probe);
                        return Some(answer.await);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
            }
        }
    }
}

/// Writes `response` as hyper would for a request of `version` that asked for `keep_alive`.
async fn write_response(
    stream: &mut TcpStream,
    response: HttpResponse,
    version: Version,
    keep_alive: bool,
) -> io::Result<()> {
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if version == Version::HTTP_10 {
        if keep_alive
            && !parts
                .headers
                .get_all(header::CONNECTION)
                .iter()
                .any(|v| has_token(v, "keep-alive"))
        {
            parts
                .headers
                .append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        }
    } else if !keep_alive
        && !parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v, "close"))
    {
        parts
            .headers
            .append(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let out = encode(&parts, &body, version);
    stream.write_all(&out).await
}

/// The bytes hyper writes for a response (lower-case names, `content-length`, `date`).
fn encode(parts: &http::response::Parts, body: &Bytes, version: Version) -> Vec<u8> {
    let status = parts.status;
    let mut out = Vec::with_capacity(128 + parts.headers.len() * 32 + body.len());
    if version == Version::HTTP_11 && status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(if version == Version::HTTP_10 {
            b"HTTP/1.0 "
        } else {
            b"HTTP/1.1 "
        });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if !bodiless && !parts.headers.contains_key(header::CONTENT_LENGTH) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"date: ");
    out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    if !bodiless {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_this_loop_serves() {
        let head = parse(b"POST /p?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
            .expect("a plain POST");
        assert_eq!(head.len, 52);
        assert_eq!(head.body, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(head.request.uri().query(), Some("x=1"));
        let head = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").expect("1.0");
        assert!(head.keep_alive);
        assert_eq!(head.request.version(), Version::HTTP_10);
        let head = parse(b"GET / HTTP/1.0\r\n\r\n").expect("1.0");
        assert!(!head.keep_alive);
        let head = parse(b"GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n")
            .expect("close wins");
        assert!(!head.keep_alive);
        let head =
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").expect("chunked");
        assert_eq!(head.body, Framing::Chunked);
    }

    #[test]
    fn heads_left_to_hyper() {
        for head in [
            &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"G@T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n",
        ] {
            assert!(parse(head).is_none(), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn head_ends() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(15));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n", 0), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n", 0), None);
        // The blank line split across two reads.
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 17), Some(15));
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"A;name=value"), Some(10));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"zz"), None);
        assert_eq!(chunk_size(b"ffffffffffffffffff"), None);
    }

    #[test]
    fn responses_as_hyper_writes_them() {
        let mut response = http::Response::new(());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        let (parts, ()) = response.into_parts();
        let out = encode(&parts, &Bytes::from_static(b"2"), Version::HTTP_11);
        let text = String::from_utf8(out).expect("text");
        assert!(
            text.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=UTF-8\r\ncontent-length: 1\r\ndate: "
            ),
            "{text}"
        );
        assert!(text.ends_with(" GMT\r\n\r\n2"), "{text}");
        let mut response = http::Response::new(());
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        let (parts, ()) = response.into_parts();
        let text =
            String::from_utf8(encode(&parts, &Bytes::new(), Version::HTTP_10)).expect("text");
        assert!(text.starts_with("HTTP/1.0 413 Payload Too Large\r\ncontent-length: 0\r\ndate: "));
    }
}
