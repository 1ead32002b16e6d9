//! A webhook answer's head (status line and header lines) kept as the bytes that arrived, in one
//! allocation: its reason phrase, `Content-Type` and header map are read from them on demand, so
//! an answer nobody inspects costs no `String` or `HeaderMap`.

use std::borrow::Cow;
use std::ops::Range;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::traffic::hop::HeaderLines;

/// Most header lines read in an answer's head (hyper's client default).
pub(crate) const MAX_HEADERS: usize = 100;

/// The status line and header lines of one answer, as received (ending with the blank line),
/// and where its first `Content-Type` value lies in them (found when the head was parsed, so
/// the readers of every answer need not parse it again).
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseHead {
    raw: Box<[u8]>,
    content_type: Option<Range<usize>>,
}

impl std::fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ResponseHead")
            .field(&String::from_utf8_lossy(&self.raw))
            .finish()
    }
}

impl ResponseHead {
    /// The head as received; `raw` must be a complete head (the client parsed it already and
    /// found the first `Content-Type` value at `content_type`).
    pub(crate) fn from_raw(raw: &[u8], content_type: Option<Range<usize>>) -> Self {
        ResponseHead {
            raw: Box::from(raw),
            content_type,
        }
    }

    /// A head made here rather than received (a fault's stand-in answer, tests).
    pub fn new(status: u16, reason: &str, headers: &[(&str, &str)]) -> Self {
        let mut raw = format!("HTTP/1.1 {status:03} {reason}\r\n");
        let mut content_type = None;
        for (name, value) in headers {
            raw.push_str(name);
            raw.push_str(": ");
            if content_type.is_none() && name.eq_ignore_ascii_case("content-type") {
                content_type = Some(raw.len()..raw.len() + value.len());
            }
            raw.push_str(value);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        ResponseHead {
            raw: raw.into_bytes().into_boxed_slice(),
            content_type,
        }
    }

    /// Calls `f` with the parsed head; a head that no longer parses (never: it was checked when
    /// it arrived, or made by [`ResponseHead::new`] from text) reads as empty.
    fn read<'a, T>(&'a self, f: impl FnOnce(Option<&'a str>, &[httparse::Header<'a>]) -> T) -> T {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&self.raw) {
            Ok(httparse::Status::Complete(_)) => f(response.reason, response.headers),
            _ => f(None, &[]),
        }
    }

    /// The server's own reason phrase, trimmed, or the canonical one when it sent none.
    pub fn reason(&self, status: u16) -> &str {
        self.read(|reason, _| reason.map(str::trim).filter(|r| !r.is_empty()))
            .unwrap_or_else(|| canonical_reason(status))
    }

    /// The first `Content-Type` value (lossy UTF-8).
    pub fn content_type(&self) -> Option<Cow<'_, str>> {
        let value = self.raw.get(self.content_type.clone()?)?;
        Some(String::from_utf8_lossy(value))
    }

    /// Every header line as a map (an allocation per call: for the inspector and the preflight).
    pub fn headers(&self) -> HeaderMap {
        self.read(|_, headers| {
            let mut map = HeaderMap::with_capacity(headers.len());
            for h in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(h.name.as_bytes()),
                    HeaderValue::from_bytes(h.value),
                ) {
                    map.append(name, value);
                }
            }
            map
        })
    }
}

/// The inspector's ring reads an answer's headers straight from the bytes that arrived.
impl HeaderLines for ResponseHead {
    fn each_line(&self, f: &mut dyn FnMut(&str, &[u8])) {
        self.read(|_, headers| {
            for h in headers {
                let mut buf = [0u8; 64];
                f(&lower_case(h.name, &mut buf), h.value);
            }
        });
    }
}

/// `name` in lower case, written into `buf` when it has capital letters and fits.
fn lower_case<'a>(name: &'a str, buf: &'a mut [u8; 64]) -> Cow<'a, str> {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(name);
    }
    match buf.get_mut(..name.len()) {
        Some(lower) => {
            lower.copy_from_slice(name.as_bytes());
            lower.make_ascii_lowercase();
            // Lower-casing ASCII letters keeps the text UTF-8.
            std::str::from_utf8(lower)
                .map_or_else(|_| Cow::Owned(name.to_ascii_lowercase()), Cow::Borrowed)
        }
        None => Cow::Owned(name.to_ascii_lowercase()),
    }
}

/// The canonical reason phrase of `status`, or "" for an unknown one.
pub(crate) fn canonical_reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `raw` as the client keeps it, its `Content-Type` value found by hand.
    fn received(raw: &str) -> ResponseHead {
        let content_type = raw.find("Content-Type: ").map(|at| {
            let start = at + "Content-Type: ".len();
            start..start + raw[start..].find("\r\n").unwrap()
        });
        ResponseHead::from_raw(raw.as_bytes(), content_type)
    }

    #[test]
    fn a_received_head_reads_its_reason_type_and_headers() {
        let head = received(
            "HTTP/1.1 200 Fine Thanks \r\nContent-Type: text/plain\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
        );
        assert_eq!(head.reason(200), "Fine Thanks");
        assert_eq!(head.content_type().as_deref(), Some("text/plain"));
        let map = head.headers();
        assert_eq!(map.get_all("x-a").iter().count(), 2);
        let bare = received("HTTP/1.1 404 \r\n\r\n");
        assert_eq!(bare.reason(404), "Not Found");
        assert_eq!(bare.content_type(), None);
        assert_eq!(ResponseHead::new(599, "", &[]).reason(599), "");
        let made = ResponseHead::new(200, "OK", &[("X-A", "1"), ("content-type", "a/b")]);
        assert_eq!(made.content_type().as_deref(), Some("a/b"));
    }
}
