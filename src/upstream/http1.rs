//! One HTTP/1.1 webhook connection, driven on the calling task: the request head is written
//! into the connection's reused buffer, the answer read into its reused read buffer and parsed
//! in place (`Content-Length`, chunked and close-delimited bodies, 1xx answers skipped,
//! `Connection: close` honoured). The answer comes out as its head (one copy of the received
//! head) and its body (one copy, bounded by [`MAX_RESPONSE_BODY`]); [`super::pool`] keeps the
//! connections between calls.

use std::io;

use bytes::Bytes;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::MAX_RESPONSE_BODY;
use super::head::{MAX_HEADERS, ResponseHead};

/// Largest answer head read (status line and headers), in bytes.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// A request body up to this size is copied behind its head, so the request leaves in one write.
const INLINE_BODY: usize = 16 * 1024;
/// Read buffer reserved per read; buffers grown beyond [`KEEP_BUFFER`] are released after the
/// call, so an idle pooled connection holds little.
const READ_CHUNK: usize = 2048;
const KEEP_BUFFER: usize = 16 * 1024;

/// A complete answer.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: StatusCode,
    pub head: ResponseHead,
    pub body: Bytes,
}

/// Why an exchange on a connection produced no complete answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// Writing the request or reading the answer failed; `early` when not one byte of the
    /// answer had arrived (a pooled connection the peer had closed, worth one more try).
    Io { error: io::Error, early: bool },
    /// The peer closed the connection; `early` as above.
    Closed { early: bool },
    /// The answer is not HTTP/1.1 we can read.
    Invalid(String),
    /// The body failed after a valid head.
    Body { status: StatusCode, cause: String },
    /// The body is larger than [`MAX_RESPONSE_BODY`].
    TooLarge(StatusCode),
}

impl Failure {
    /// The connection failed before any of the answer arrived.
    pub(super) fn is_early(&self) -> bool {
        matches!(
            self,
            Failure::Io { early: true, .. } | Failure::Closed { early: true }
        )
    }
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection (HTTP/1.0, or no length given).
    Close,
}

/// What the head of an answer says.
#[derive(Debug)]
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    keep_alive: bool,
    /// Where the first `Content-Type` value lies in the head.
    content_type: Option<std::ops::Range<usize>>,
}

/// A webhook connection with its reused buffers.
#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    /// Counted among the pool's open connections while it lives.
    open: Option<super::pool::OpenGuard>,
    read: Vec<u8>,
    /// The request head is written here (by the caller) before [`Conn::round_trip`].
    pub out: Vec<u8>,
}

impl Conn {
    pub(super) async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            open: None,
            read: Vec::new(),
            out: Vec::with_capacity(1024),
        })
    }

    pub(super) fn counted(mut self, guard: super::pool::OpenGuard) -> Conn {
        self.open = Some(guard);
        self
    }

    /// Sends the head in [`Conn::out`] and `body`, then reads the whole answer. Returns it and
    /// whether the connection can carry another request.
    pub(super) async fn round_trip(&mut self, body: &[u8]) -> Result<(Answer, bool), Failure> {
        let sent = self.send(body).await;
        self.out.clear();
        if let Err(error) = sent {
            return Err(Failure::Io { error, early: true });
        }
        let outcome = self.read_answer().await;
        if self.read.capacity() > KEEP_BUFFER {
            self.read = Vec::new();
        }
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::with_capacity(1024);
        }
        outcome
    }

    async fn send(&mut self, body: &[u8]) -> io::Result<()> {
        if body.len() <= INLINE_BODY {
            self.out.extend_from_slice(body);
            self.stream.write_all(&self.out).await
        } else {
            self.stream.write_all(&self.out).await?;
            self.stream.write_all(body).await
        }
    }

    /// Reads more of the answer; `Ok(0)` at the end of the stream.
    async fn fill(&mut self, want: usize) -> io::Result<usize> {
        self.read.reserve(want.clamp(READ_CHUNK, MAX_RESPONSE_BODY));
        self.stream.read_buf(&mut self.read).await
    }

    /// Reads more, failing if the peer closed the connection.
    async fn fill_body(&mut self, status: StatusCode, want: usize) -> Result<(), Failure> {
        match self.fill(want).await {
            Ok(0) => Err(Failure::Body {
                status,
                cause: "the webhook closed the connection before the body was complete".into(),
            }),
            Ok(_) => Ok(()),
            Err(error) => Err(Failure::Body {
                status,
                cause: error.to_string(),
            }),
        }
    }

    async fn read_answer(&mut self) -> Result<(Answer, bool), Failure> {
        let mut early = self.read.is_empty();
        loop {
            let head = loop {
                if !self.read.is_empty() {
                    if let Some(head) = parse_head(&self.read)?.filter(|h| h.len <= MAX_HEAD) {
                        break head;
                    }
                    if self.read.len() > MAX_HEAD {
                        return Err(Failure::Invalid(format!(
                            "the answer's head is larger than {MAX_HEAD} bytes"
                        )));
                    }
                }
                match self.fill(READ_CHUNK).await {
                    Ok(0) => return Err(Failure::Closed { early }),
                    Ok(_) => early = false,
                    Err(error) => return Err(Failure::Io { error, early }),
                }
            };
            if (100..200).contains(&head.status) && head.status != 101 {
                // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                self.read.drain(..head.len);
                continue;
            }
            let status = StatusCode::from_u16(head.status)
                .map_err(|_| Failure::Invalid(format!("invalid status code {}", head.status)))?;
            if head.status == 101 {
                return Err(Failure::Invalid(
                    "the webhook answered 101 Switching Protocols, which was not asked for".into(),
                ));
            }
            let answer_head = ResponseHead::from_raw(&self.read[..head.len], head.content_type);
            self.read.drain(..head.len);
            let body = self.read_body(status, head.framing).await?;
            // Bytes beyond the answer are not ours to read: do not reuse such a connection.
            let keep_alive = head.keep_alive && self.read.is_empty();
            let answer = Answer {
                status,
                head: answer_head,
                body,
            };
            return Ok((answer, keep_alive));
        }
    }

    async fn read_body(&mut self, status: StatusCode, framing: Framing) -> Result<Bytes, Failure> {
        match framing {
            Framing::Empty => Ok(Bytes::new()),
            Framing::Length(len) => {
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= MAX_RESPONSE_BODY)
                    .ok_or(Failure::TooLarge(status))?;
                while self.read.len() < len {
                    self.fill_body(status, len - self.read.len()).await?;
                }
                let body = Bytes::copy_from_slice(&self.read[..len]);
                self.read.drain(..len);
                Ok(body)
            }
            Framing::Chunked => self.read_chunked(status).await,
            Framing::Close => {
                loop {
                    if self.read.len() > MAX_RESPONSE_BODY {
                        return Err(Failure::TooLarge(status));
                    }
                    match self.fill(READ_CHUNK).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(error) => {
                            return Err(Failure::Body {
                                status,
                                cause: error.to_string(),
                            });
                        }
                    }
                }
                Ok(Bytes::from(std::mem::take(&mut self.read)))
            }
        }
    }

    async fn read_chunked(&mut self, status: StatusCode) -> Result<Bytes, Failure> {
        let invalid = |what: &str| Failure::Body {
            status,
            cause: format!("invalid chunked encoding ({what})"),
        };
        let mut body = Vec::new();
        loop {
            let (used, size) = match httparse::parse_chunk_size(&self.read) {
                Ok(httparse::Status::Complete(done)) => done,
                Ok(httparse::Status::Partial) if self.read.len() > MAX_HEAD => {
                    return Err(invalid("chunk size line too long"));
                }
                Ok(httparse::Status::Partial) => {
                    self.fill_body(status, READ_CHUNK).await?;
                    continue;
                }
                Err(_) => return Err(invalid("bad chunk size")),
            };
            if size == 0 {
                self.read.drain(..used);
                self.skip_trailers(status).await?;
                return Ok(Bytes::from(body));
            }
            let size = usize::try_from(size)
                .ok()
                .filter(|size| body.len() + size <= MAX_RESPONSE_BODY)
                .ok_or(Failure::TooLarge(status))?;
            let end = used + size + 2;
            while self.read.len() < end {
                self.fill_body(status, end - self.read.len()).await?;
            }
            if &self.read[used + size..end] != b"\r\n" {
                return Err(invalid("chunk not followed by CRLF"));
            }
            body.extend_from_slice(&self.read[used..used + size]);
            self.read.drain(..end);
        }
    }

    /// Reads the trailer lines after the last chunk, up to the blank line.
    async fn skip_trailers(&mut self, status: StatusCode) -> Result<(), Failure> {
        loop {
            match self.read.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.read.drain(..2);
                    return Ok(());
                }
                Some(at) => {
                    self.read.drain(..at + 2);
                }
                None if self.read.len() > MAX_HEAD => {
                    return Err(Failure::Body {
                        status,
                        cause: "invalid chunked encoding (trailers too long)".into(),
                    });
                }
                None => self.fill_body(status, READ_CHUNK).await?,
            }
        }
    }
}

/// Parses an answer head at the start of `buf`: `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            return Err(Failure::Invalid(format!(
                "the answer is not HTTP/1.1 ({error}): `{}`",
                first_line(buf)
            )));
        }
    };
    let status = response.code.unwrap_or(0);
    let http11 = response.version == Some(1);
    let mut length: Option<u64> = None;
    let (mut chunked, mut other_coding, mut close, mut keep) = (false, false, false, false);
    let mut content_type = None;
    for h in response.headers.iter() {
        if content_type.is_none() && h.name.eq_ignore_ascii_case("content-type") {
            // The value is a slice of `buf`: its place in it, by address.
            let start = h.value.as_ptr() as usize - buf.as_ptr() as usize;
            content_type = Some(start..start + h.value.len());
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Failure::Invalid("invalid Content-Length".into()))?;
            if length.is_some_and(|l| l != value) {
                return Err(Failure::Invalid(
                    "conflicting Content-Length headers".into(),
                ));
            }
            length = Some(value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides: chunked ends the body itself, any other runs to the close.
            let last = tokens(h.value).last().unwrap_or_default();
            chunked = last.eq_ignore_ascii_case(b"chunked");
            other_coding = !chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in tokens(h.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else if chunked && http11 {
        Framing::Chunked
    } else if other_coding {
        Framing::Close
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        Framing::Close
    };
    let keep_alive = framing != Framing::Close && !close && (http11 || keep);
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
        content_type,
    }))
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// The first line of an unreadable answer, for the error (at most 80 characters).
fn first_line(buf: &[u8]) -> String {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line.trim_ascii());
    text.chars()
        .take(80)
        .flat_map(char::escape_default)
        .collect()
}
