//! CloudEvents binary-mode request building for webhook calls (docs/protocol.md §5.1, §6): pure functions,
//! no I/O.
//!
//! [`event_request`] resolves the hub's URL template and produces the POST with every `ce-*`
//! header, the signature from [`crate::auth::ce_signature`] and the raw body;
//! [`preflight_request`] produces the abuse-protection validation request (OPTIONS, or its GET
//! fallback) to the template with `{event}` = `validate`. The id and time of an event come from
//! a [`CeStamp`] so callers (and tests, and replays) can make the output deterministic.
//! [`super::client`] sends what this module builds.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{EventKind, UpstreamSettings, WebhookError, WebhookEvent};

/// The `{event}` substitution of the abuse-protection request.
pub const VALIDATE_EVENT: &str = "validate";

/// `Content-Type` of system events (`connect`, `connected`, `disconnected`).
pub const SYSTEM_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// `Content-Type` of user events: exactly `text/plain`, because Azure Functions rejects any
/// other media type for user events with 400 (docs/protocol.md §5.1).
pub const USER_CONTENT_TYPE: &str = "text/plain";

// `HeaderName::from_static` wants lower case; these are the same names as in [`names`].
const CE_SPECVERSION: &str = "ce-specversion";
const CE_TYPE: &str = "ce-type";
const CE_SOURCE: &str = "ce-source";
const CE_ID: &str = "ce-id";
const CE_TIME: &str = "ce-time";
const CE_SIGNATURE: &str = "ce-signature";
const CE_CONNECTION_ID: &str = "ce-connectionid";
const CE_HUB: &str = "ce-hub";
const CE_EVENT_NAME: &str = "ce-eventname";
const CE_NAMESPACE: &str = "ce-namespace";
const CE_SOCKET_ID: &str = "ce-socketid";
const CE_USER_ID: &str = "ce-userid";
const CE_AWPSVERSION: &str = "ce-awpsversion";
const WEBHOOK_REQUEST_ORIGIN: &str = "webhook-request-origin";
/// `WebHook-Allowed-Origin`, read from preflight answers.
pub const WEBHOOK_ALLOWED_ORIGIN: HeaderName = HeaderName::from_static("webhook-allowed-origin");

/// Bytes escaped in a `{hub}` / `{event}` substitution: everything but RFC 3986 unreserved
/// characters, so the value is one path segment and also safe inside a query string.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `ce-id` and `ce-time` of one event. Retries of one event reuse its stamp; cloning it
/// shares the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeStamp {
    pub id: Arc<str>,
    pub time: SystemTime,
}

static NEXT_EVENT_ID: AtomicU64 = AtomicU64::new(1);

impl CeStamp {
    /// A fixed stamp, for deterministic output.
    pub fn new(id: impl Into<Arc<str>>, time: SystemTime) -> Self {
        CeStamp {
            id: id.into(),
            time,
        }
    }

    /// The next process-wide id (1, 2, 3, …) and the current time.
    pub fn next() -> Self {
        let mut digits = [0; 20];
        let id = decimal(NEXT_EVENT_ID.fetch_add(1, Ordering::Relaxed), &mut digits);
        CeStamp {
            // Decimal digits are ASCII.
            id: Arc::from(std::str::from_utf8(id).unwrap_or("0")),
            time: SystemTime::now(),
        }
    }
}

/// `ce-time` text: UTC, whole seconds, `2024-01-01T00:00:00Z`.
pub fn format_ce_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A built webhook request, as the inspector shows it and as a preflight is sent.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: Method,
    /// The resolved URL as text, for logs and for [`super::WebhookResponse::url`].
    pub url: String,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Builds the CloudEvents POST for `event` under `settings` (docs/protocol.md §5.1): the headers
/// the webhook gets, in their order, without the `Host` and `Content-Length` of the wire.
pub fn event_request(
    settings: &UpstreamSettings,
    event: &WebhookEvent,
    stamp: &CeStamp,
) -> Result<WebhookRequest, WebhookError> {
    let mut template = RequestTemplate::new(settings, event);
    let prepared = template.prepare(settings, event, stamp)?;
    let (url, uri) = resolve_url(&settings.url_template, &event.hub, event.kind.event_name())?;
    let mut headers = HeaderMap::with_capacity(18);
    template.render(&prepared, &stamp.id, &mut headers);
    Ok(WebhookRequest {
        method: Method::POST,
        url,
        uri,
        headers,
        body: event.body.clone(),
    })
}

/// What every request of one socket shares, in wire form: one block of pre-rendered header
/// lines (`ce-source`, its signature, `ce-connectionId`, `ce-hub`, `ce-namespace`,
/// `ce-socketId`, `ce-userId`, `ce-awpsversion`, `WebHook-Request-Origin`), the URL of the last
/// event name, and the last `ce-time`. Writing a request from it copies the block into the
/// connection's buffer with the event's own `ce-id`, `ce-time`, `ce-type`, `ce-eventName` and
/// length; nothing is allocated and no signature computed per event.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// Who the template is for (hub, connection id, namespace, socket id, user id, one after
    /// the other; `ends` marks where each stops); an event of another socket gets its own.
    identity: Box<str>,
    ends: [u32; 5],
    has_user: bool,
    /// The socket's header lines, split where the event's own lines go between them.
    block: Box<[u8]>,
    splits: [u32; 2],
    /// Whether the origin could be written as a header (else every event fails with why).
    origin_ok: bool,
    /// The last event name's URL and header.
    target: Option<Arc<Target>>,
    /// The last `ce-time` second and its text.
    time: Option<(u64, Arc<str>)>,
}

/// Where one event name goes.
#[derive(Debug)]
pub struct Target {
    event_name: Box<str>,
    /// The resolved URL.
    pub(super) url: Arc<str>,
    /// The request target of the request line (path and query).
    pub(super) path: Box<str>,
    /// `host:port` to connect to (the port 80 when the URL names none); the pool's key.
    pub(super) addr: Box<str>,
    /// The `Host` header (`host[:port]`, the port when not 80).
    host: Box<str>,
    /// `ce-eventName`.
    name: Box<[u8]>,
}

/// What is particular to one event's request (its name, type, time and length); the rest is
/// its socket's [`RequestTemplate`] and the stamp's id. Cloning it copies no text.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) target: Arc<Target>,
    system: bool,
    ce_type: &'static str,
    time: Arc<str>,
    length: usize,
}

impl Prepared {
    /// The resolved URL.
    pub fn url(&self) -> &str {
        &self.target.url
    }
}

/// Where a request's header lines are written: a connection's buffer, or a header map.
pub(super) trait HeaderSink {
    /// One header.
    fn header(&mut self, name: &'static str, value: &[u8]);
    /// Pre-rendered `name: value\r\n` lines.
    fn lines(&mut self, lines: &[u8]);
}

impl HeaderSink for Vec<u8> {
    fn header(&mut self, name: &'static str, value: &[u8]) {
        self.extend_from_slice(name.as_bytes());
        self.extend_from_slice(b": ");
        self.extend_from_slice(value);
        self.extend_from_slice(b"\r\n");
    }

    fn lines(&mut self, lines: &[u8]) {
        self.extend_from_slice(lines);
    }
}

impl HeaderSink for HeaderMap {
    fn header(&mut self, name: &'static str, value: &[u8]) {
        // Values come from `header_bytes`, so they are always valid.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            self.insert(HeaderName::from_static(name), value);
        }
    }

    fn lines(&mut self, lines: &[u8]) {
        for line in lines.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(at) = line.windows(2).position(|w| w == b": ") else {
                continue;
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..at]),
                HeaderValue::from_bytes(&line[at + 2..]),
            ) {
                self.insert(name, value);
            }
        }
    }
}

/// What says whose a template is: hub, connection id, namespace, socket id, user id.
fn identity_parts(event: &WebhookEvent) -> [&str; 5] {
    [
        &event.hub,
        &event.connection_id,
        &event.namespace,
        &event.socket_id,
        event.user_id.as_deref().unwrap_or(""),
    ]
}

impl RequestTemplate {
    /// The template of `event`'s socket under `settings`.
    pub fn new(settings: &UpstreamSettings, event: &WebhookEvent) -> RequestTemplate {
        let source = format!("/hubs/{}/client/{}", event.hub, event.connection_id);
        let signature = crate::auth::ce_signature(&settings.access_keys, &event.connection_id);
        let origin = HeaderValue::from_str(&settings.origin).ok();
        let mut block = Vec::with_capacity(256 + signature.len());
        block.header(CE_SOURCE, &header_bytes(&source));
        let first = block.len();
        // No keys (identity-style configuration) means no signature rather than an empty header.
        if !signature.is_empty() {
            block.header(CE_SIGNATURE, &header_bytes(&signature));
        }
        block.header(CE_CONNECTION_ID, &header_bytes(&event.connection_id));
        block.header(CE_HUB, &header_bytes(&event.hub));
        let second = block.len();
        block.header(CE_NAMESPACE, &header_bytes(&event.namespace));
        block.header(CE_SOCKET_ID, &header_bytes(&event.socket_id));
        if let Some(user_id) = event.user_id.as_deref().filter(|u| !u.is_empty()) {
            block.header(CE_USER_ID, &header_bytes(user_id));
        }
        block.header(CE_AWPSVERSION, b"1.0");
        if let Some(origin) = &origin {
            block.header(WEBHOOK_REQUEST_ORIGIN, origin.as_bytes());
        }
        let parts = identity_parts(event);
        let mut identity = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0; 5];
        for (end, part) in ends.iter_mut().zip(parts) {
            identity.push_str(part);
            *end = offset(identity.len());
        }
        RequestTemplate {
            identity: identity.into_boxed_str(),
            ends,
            has_user: event.user_id.is_some(),
            block: block.into_boxed_slice(),
            splits: [offset(first), offset(second)],
            origin_ok: origin.is_some(),
            target: None,
            time: None,
        }
    }

    /// Whether `event` belongs to this template's socket.
    fn fits(&self, event: &WebhookEvent) -> bool {
        let parts = identity_parts(event);
        let mut start = 0;
        self.has_user == event.user_id.is_some()
            && parts.iter().zip(self.ends).all(|(part, end)| {
                let mine = self.identity.get(start..end as usize);
                start = end as usize;
                mine == Some(*part)
            })
    }

    /// The parts of `event`'s request stamped `stamp` under `settings` (the template's own):
    /// its URL resolved (or the last one reused), `ce-time` made anew only when the second
    /// changed.
    pub fn prepare(
        &mut self,
        settings: &UpstreamSettings,
        event: &WebhookEvent,
        stamp: &CeStamp,
    ) -> Result<Prepared, WebhookError> {
        let event_name = event.kind.event_name();
        let target = match &self.target {
            Some(target) if &*target.event_name == event_name => target.clone(),
            _ => {
                let target = Arc::new(Target::new(&settings.url_template, &event.hub, event_name)?);
                self.target = Some(target.clone());
                target
            }
        };
        if !self.origin_ok {
            // The same settings made the block without a valid origin: say why.
            origin_value(settings)?;
        }
        let second = stamp
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let time = match &self.time {
            Some((s, text)) if *s == second => text.clone(),
            _ => {
                let text: Arc<str> = Arc::from(format_ce_time(stamp.time));
                self.time = Some((second, text.clone()));
                text
            }
        };
        Ok(Prepared {
            target,
            system: !matches!(event.kind, EventKind::User(_)),
            ce_type: event.kind.ce_type(),
            time,
            length: event.body.len(),
        })
    }

    /// The event's headers in their documented order, `ce-id` being `id`.
    pub(super) fn render(&self, p: &Prepared, id: &str, out: &mut impl HeaderSink) {
        let content_type = if p.system {
            SYSTEM_CONTENT_TYPE
        } else {
            USER_CONTENT_TYPE
        };
        let [first, second] = self.splits.map(|s| s as usize);
        out.header("content-type", content_type.as_bytes());
        out.header(CE_SPECVERSION, b"1.0");
        out.header(CE_TYPE, p.ce_type.as_bytes());
        out.lines(&self.block[..first]);
        out.header(CE_ID, &header_bytes(id));
        out.header(CE_TIME, p.time.as_bytes());
        out.lines(&self.block[first..second]);
        out.header(CE_EVENT_NAME, &p.target.name);
        out.lines(&self.block[second..]);
    }

    /// The whole request head of one attempt of `p`, as the HTTP client sends it: the request
    /// line, the headers of [`RequestTemplate::render`], then `Host` and (for a body)
    /// `Content-Length`.
    pub(super) fn write_head(&self, p: &Prepared, id: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(p.target.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        self.render(p, id, out);
        out.header("host", p.target.host.as_bytes());
        // An empty body goes without the header, as hyper's client sends it.
        if p.length > 0 {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(decimal(p.length as u64, &mut [0; 20]));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Bytes this template keeps on the heap (its block, identity and last target), for
    /// memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.block.len()
            + self.identity.len()
            + self.target.as_ref().map_or(0, |t| t.heap_bytes())
            + self.time.as_ref().map_or(0, |(_, t)| t.len() + 16)
    }
}

impl Target {
    fn new(url_template: &str, hub: &str, event_name: &str) -> Result<Target, WebhookError> {
        let (url, uri) = resolve_url(url_template, hub, event_name)?;
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            Some(p) if !p.is_empty() => p,
            _ => "/",
        };
        let host = uri.host().unwrap_or("");
        let port = uri.port_u16().unwrap_or(80);
        Ok(Target {
            event_name: event_name.into(),
            path: path.into(),
            addr: format!("{host}:{port}").into_boxed_str(),
            host: host_value(&uri).into_boxed_str(),
            name: header_bytes(event_name).into_owned().into_boxed_slice(),
            url: Arc::from(url),
        })
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Target>()
            + 16
            + self.event_name.len()
            + self.url.len()
            + 16
            + self.path.len()
            + self.addr.len()
            + self.host.len()
            + self.name.len()
    }
}

/// Offsets inside a template are `u32` (header blocks are small).
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `n` in decimal, written at the end of `digits`.
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[at..];
        }
    }
}

/// `host[:port]` of `uri`, as the HTTP client writes its `Host` header.
fn host_value(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("");
    match uri.port_u16() {
        Some(port) if port != 80 => format!("{host}:{port}"),
        _ => host.to_owned(),
    }
}

/// One socket's [`RequestTemplate`], kept while the settings in force stay the same: a lane
/// holds one, so its events share their header block.
#[derive(Debug, Default)]
pub struct RequestCache {
    entry: Option<(Arc<UpstreamSettings>, RequestTemplate)>,
}

impl RequestCache {
    /// The template for `event` under `settings`, made anew when the settings were reloaded
    /// or the event belongs to another socket.
    pub fn template(
        &mut self,
        settings: &Arc<UpstreamSettings>,
        event: &WebhookEvent,
    ) -> &mut RequestTemplate {
        let entry = match self.entry.take() {
            Some((s, t)) if Arc::ptr_eq(&s, settings) && t.fits(event) => (s, t),
            _ => (settings.clone(), RequestTemplate::new(settings, event)),
        };
        &mut self.entry.insert(entry).1
    }
}

/// Builds the abuse-protection request (docs/protocol.md §6): `method` is `OPTIONS`, or `GET` for the
/// fallback; `{event}` = `validate`; headers `WebHook-Request-Origin` and `ce-awpsversion: 1.0`;
/// no body, no signature.
pub fn preflight_request(
    settings: &UpstreamSettings,
    hub: &str,
    method: Method,
) -> Result<WebhookRequest, WebhookError> {
    let (url, uri) = resolve_url(&settings.url_template, hub, VALIDATE_EVENT)?;
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(WEBHOOK_REQUEST_ORIGIN, origin_value(settings)?);
    headers.insert(CE_AWPSVERSION, HeaderValue::from_static("1.0"));
    Ok(WebhookRequest {
        method,
        url,
        uri,
        headers,
        body: Bytes::new(),
    })
}

/// Substitutes `{hub}` and `{event}` (each percent-encoded as one URL component) and checks that
/// the result is an absolute `http://` URL. Returns the URL text and its parsed form.
pub fn resolve_url(template: &str, hub: &str, event: &str) -> Result<(String, Uri), WebhookError> {
    let mut url = String::with_capacity(template.len() + hub.len() + event.len() + 8);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        url.push_str(&rest[..open]);
        let tail = &rest[open..];
        if let Some(after) = tail.strip_prefix("{hub}") {
            push_component(&mut url, hub);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{event}") {
            push_component(&mut url, event);
            rest = after;
        } else if let Some(close) = tail.find('}') {
            return Err(WebhookError::InvalidUrl {
                url: template.to_owned(),
                detail: format!(
                    "unknown placeholder `{}`; only {{hub}} and {{event}} are substituted",
                    &tail[..=close]
                ),
            });
        } else {
            url.push('{');
            rest = &tail[1..];
        }
    }
    url.push_str(rest);

    let invalid = |detail: String| WebhookError::InvalidUrl {
        url: template.to_owned(),
        detail,
    };
    let uri = Uri::try_from(url.as_str()).map_err(|e| {
        invalid(format!(
            "`{url}` is not a valid URL ({e}); expected an absolute http:// URL such as \
             http://localhost:7071/runtime/webhooks/socketio, where only {{hub}} and {{event}} \
             are substituted"
        ))
    })?;
    // `Uri` parses the scheme case-insensitively, so `HTTP://` arrives here as "http".
    match uri.scheme_str() {
        Some("http") => {}
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => {
            return Err(invalid(
                "https webhooks are not supported; the emulator calls a webhook running on your \
                 machine, so give a local http:// URL such as \
                 http://localhost:7071/runtime/webhooks/socketio"
                    .into(),
            ));
        }
        Some(scheme) => {
            return Err(invalid(format!(
                "the scheme `{scheme}` is not supported; give a local http:// URL such as \
                 http://localhost:7071/runtime/webhooks/socketio"
            )));
        }
        None => {
            return Err(invalid(
                "the URL has no scheme or host; give an absolute http:// URL such as \
                 http://localhost:7071/runtime/webhooks/socketio"
                    .into(),
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(
            "the URL has no host; give an absolute http:// URL such as \
             http://localhost:7071/runtime/webhooks/socketio"
                .into(),
        ));
    }
    Ok((url, uri))
}

/// Appends `value` percent-encoded as one URL component. A whole `.` or `..` is encoded too, so
/// a user event named `..` cannot be normalised into the parent path by the receiver.
fn push_component(url: &mut String, value: &str) {
    if value == "." || value == ".." {
        for _ in 0..value.len() {
            url.push_str("%2E");
        }
        return;
    }
    url.extend(utf8_percent_encode(value, URL_COMPONENT));
}

fn origin_value(settings: &UpstreamSettings) -> Result<HeaderValue, WebhookError> {
    HeaderValue::from_str(&settings.origin).map_err(|_| WebhookError::InvalidUrl {
        url: settings.url_template.clone(),
        detail: format!(
            "the WebHook-Request-Origin `{}` cannot be sent as an HTTP header; it must be a host \
             name such as `localhost`",
            settings.origin.escape_debug()
        ),
    })
}

/// A header value carrying `text` verbatim whenever HTTP allows it (printable ASCII, spaces and
/// UTF-8 bytes, so `ce-eventName` stays equal to the event name inside the payload). Control
/// characters cannot travel in a header at all; only then is the value percent-encoded
/// (controls, DEL and `%`), as the CloudEvents HTTP binding (§3.1.3.2) describes.
pub fn header_value(text: &str) -> HeaderValue {
    // Every byte of `header_bytes` is allowed by `HeaderValue::from_bytes`.
    HeaderValue::from_bytes(&header_bytes(text)).unwrap_or(HeaderValue::from_static(""))
}

/// The bytes of [`header_value`]`(text)`, borrowed when `text` can travel verbatim.
pub fn header_bytes(text: &str) -> Cow<'_, [u8]> {
    if text.bytes().all(|b| (b >= 32 && b != 127) || b == b'\t') {
        return Cow::Borrowed(text.as_bytes());
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        if ch == '%' || (ch.is_ascii_control() && ch != '\t') {
            escaped.push_str(&format!("%{:02X}", ch as u32));
        } else {
            escaped.push(ch);
        }
    }
    Cow::Owned(escaped.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(template: &str) -> UpstreamSettings {
        UpstreamSettings {
            url_template: template.into(),
            access_keys: vec!["7aab239577fd4f24bc919802fb629f5f".into()],
            origin: "localhost".into(),
            timeout: Duration::from_secs(30),
            preflight: true,
            retry_delays: vec![],
        }
    }

    fn event(kind: EventKind, user_id: Option<&str>, body: &str) -> WebhookEvent {
        WebhookEvent {
            hub: "hub".into(),
            kind,
            connection_id: "0f9c97a2f0bf4706afe87a14e0797b11".into(),
            namespace: "/chat".into(),
            socket_id: "s1".into(),
            user_id: user_id.map(Into::into),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn stamp() -> CeStamp {
        CeStamp::new(
            "42",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200),
        )
    }

    fn header<'a>(request: &'a WebhookRequest, name: &str) -> Option<&'a str> {
        request.headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn connect_request_has_every_header() {
        let s = settings("http://localhost:7071/api/{hub}/{event}");
        let e = event(EventKind::Connect, Some("alice"), r#"{"claims":{}}"#);
        let r = event_request(&s, &e, &stamp()).unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.url, "http://localhost:7071/api/hub/connect");
        assert_eq!(r.uri.to_string(), r.url);
        let expected = [
            ("content-type", "application/json; charset=utf-8"),
            ("ce-specversion", "1.0"),
            ("ce-type", "azure.webpubsub.sys.connect"),
            (
                "ce-source",
                "/hubs/hub/client/0f9c97a2f0bf4706afe87a14e0797b11",
            ),
            ("ce-id", "42"),
            ("ce-time", "2024-01-01T00:00:00Z"),
            (
                "ce-signature",
                "sha256=7767effcb3946f3e1de039df4b986ef02c110b1469d02c0a06f41b3b727ab561",
            ),
            ("ce-connectionId", "0f9c97a2f0bf4706afe87a14e0797b11"),
            ("ce-hub", "hub"),
            ("ce-eventName", "connect"),
            ("ce-namespace", "/chat"),
            ("ce-socketId", "s1"),
            ("ce-userId", "alice"),
            ("ce-awpsversion", "1.0"),
            ("WebHook-Request-Origin", "localhost"),
        ];
        for (name, value) in expected {
            assert_eq!(header(&r, name), Some(value), "header {name}");
        }
        assert_eq!(r.headers.len(), expected.len(), "no extra headers");
        assert_eq!(&r.body[..], br#"{"claims":{}}"#);
    }

    #[test]
    fn system_event_types_and_names() {
        let s = settings("http://localhost/{event}");
        for (kind, ce_type, name) in [
            (EventKind::Connect, "azure.webpubsub.sys.connect", "connect"),
            (
                EventKind::Connected,
                "azure.webpubsub.sys.connected",
                "connected",
            ),
            (
                EventKind::Disconnected,
                "azure.webpubsub.sys.disconnected",
                "disconnected",
            ),
        ] {
            let r = event_request(&s, &event(kind, None, "{}"), &stamp()).unwrap();
            assert_eq!(header(&r, "ce-type"), Some(ce_type));
            assert_eq!(header(&r, "ce-eventName"), Some(name));
            assert_eq!(header(&r, "content-type"), Some(SYSTEM_CONTENT_TYPE));
            assert_eq!(r.url, format!("http://localhost/{name}"));
        }
    }

    #[test]
    fn user_event_is_text_plain_message() {
        let s = settings("http://localhost:7071/runtime/webhooks/socketio");
        let body = r#"42/chat,7["chat","hello"]"#;
        let e = event(EventKind::User("chat".into()), None, body);
        let r = event_request(&s, &e, &stamp()).unwrap();
        assert_eq!(header(&r, "content-type"), Some("text/plain"));
        assert_eq!(header(&r, "ce-type"), Some("azure.webpubsub.user.message"));
        assert_eq!(header(&r, "ce-eventName"), Some("chat"));
        assert_eq!(&r.body[..], body.as_bytes());
        assert_eq!(r.url, "http://localhost:7071/runtime/webhooks/socketio");
    }

    #[test]
    fn user_id_only_when_known() {
        let s = settings("http://localhost/x");
        for user in [None, Some("")] {
            let r = event_request(&s, &event(EventKind::Connected, user, "{}"), &stamp()).unwrap();
            assert!(r.headers.get("ce-userid").is_none(), "{user:?}");
        }
        let r = event_request(
            &s,
            &event(EventKind::Connected, Some("bob"), "{}"),
            &stamp(),
        );
        assert_eq!(header(&r.unwrap(), "ce-userId"), Some("bob"));
    }

    #[test]
    fn signature_uses_every_key_in_order() {
        let mut s = settings("http://localhost/x");
        s.access_keys = vec!["k1".into(), "k2".into()];
        let e = event(EventKind::Connect, None, "{}");
        let r = event_request(&s, &e, &stamp()).unwrap();
        let expected = crate::auth::ce_signature(&s.access_keys, &e.connection_id);
        assert_eq!(header(&r, "ce-signature"), Some(expected.as_str()));
        assert_eq!(expected.matches("sha256=").count(), 2);

        s.access_keys.clear();
        let r = event_request(&s, &e, &stamp()).unwrap();
        assert!(r.headers.get("ce-signature").is_none());
    }

    #[test]
    fn second_signature_vector() {
        let mut s = settings("http://localhost/x");
        s.access_keys = vec![crate::auth::DEV_ACCESS_KEY.into()];
        let mut e = event(EventKind::Connect, None, "{}");
        e.connection_id = "conn1".into();
        let r = event_request(&s, &e, &stamp()).unwrap();
        assert_eq!(
            header(&r, "ce-signature"),
            Some("sha256=8de7281e588e23b0a30a7180ffa240257b8176e983004c240c9f3f7a7233c993")
        );
    }

    #[test]
    fn event_names_are_escaped_in_the_url_only() {
        let s = settings("http://localhost/api/{hub}/{event}?e={event}");
        for (name, encoded) in [
            ("chat message", "chat%20message"),
            ("a/b", "a%2Fb"),
            ("你好", "%E4%BD%A0%E5%A5%BD"),
            ("50%?#&=+", "50%25%3F%23%26%3D%2B"),
            ("ok-._~", "ok-._~"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("{hub}", "%7Bhub%7D"),
        ] {
            let e = event(EventKind::User(name.into()), None, "");
            let r = event_request(&s, &e, &stamp()).unwrap();
            assert_eq!(
                r.url,
                format!("http://localhost/api/hub/{encoded}?e={encoded}"),
                "{name}"
            );
            assert_eq!(
                r.headers.get("ce-eventname").unwrap().as_bytes(),
                name.as_bytes(),
                "ce-eventName carries {name} verbatim"
            );
        }
    }

    #[test]
    fn unknown_placeholders_are_rejected() {
        let err = resolve_url("http://localhost/{eventName}", "h", "e").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown placeholder `{eventName}`"),
            "{err}"
        );
        let (url, _) = resolve_url("http://localhost/{hub}{event}", "h", "e").unwrap();
        assert_eq!(url, "http://localhost/he");
    }

    #[test]
    fn hub_is_substituted_and_escaped() {
        let (url, uri) = resolve_url("http://127.0.0.1:9/{hub}/x", "Chat_1.v[2]", "e").unwrap();
        assert_eq!(url, "http://127.0.0.1:9/Chat_1.v%5B2%5D/x");
        assert_eq!(uri.path(), "/Chat_1.v%5B2%5D/x");
    }

    #[test]
    fn https_and_malformed_templates_are_rejected() {
        for (template, needle) in [
            (
                "https://app.azurewebsites.net/runtime/webhooks/socketio",
                "https webhooks are not supported",
            ),
            ("HTTPS://x/y", "https webhooks are not supported"),
            ("ftp://x/y", "scheme `ftp` is not supported"),
            ("localhost:7071/api", "http://"),
            ("/runtime/webhooks/socketio", "no scheme or host"),
            ("http://", "not a valid URL"),
            ("http://local host/x", "not a valid URL"),
            ("", "not a valid URL"),
        ] {
            let err = resolve_url(template, "hub", "connect").unwrap_err();
            let WebhookError::InvalidUrl { url, detail } = &err else {
                panic!("{template}: {err:?}");
            };
            assert_eq!(url, template);
            assert!(detail.contains(needle), "{template}: {detail}");
        }
        assert!(resolve_url("http://localhost:7071/runtime/webhooks/socketio", "h", "e").is_ok());
        assert!(resolve_url("HTTP://localhost/{hub}/{event}", "h", "e").is_ok());
    }

    #[test]
    fn preflight_requests() {
        let s = settings("http://localhost:7071/api/{hub}/{event}?code=abc");
        for method in [Method::OPTIONS, Method::GET] {
            let r = preflight_request(&s, "hub", method.clone()).unwrap();
            assert_eq!(r.method, method);
            assert_eq!(r.url, "http://localhost:7071/api/hub/validate?code=abc");
            assert_eq!(header(&r, "WebHook-Request-Origin"), Some("localhost"));
            assert_eq!(header(&r, "ce-awpsversion"), Some("1.0"));
            assert_eq!(r.headers.len(), 2, "no signature, no ce-* event headers");
            assert!(r.body.is_empty());
        }
    }

    #[test]
    fn bad_origin_is_reported() {
        let mut s = settings("http://localhost/x");
        s.origin = "local\nhost".into();
        let err = preflight_request(&s, "hub", Method::OPTIONS).unwrap_err();
        assert!(err.to_string().contains("WebHook-Request-Origin"), "{err}");
    }

    #[test]
    fn stamps_increase_and_times_format() {
        let a = CeStamp::next();
        let b = CeStamp::next();
        let (a, b): (u64, u64) = (a.id.parse().unwrap(), b.id.parse().unwrap());
        assert!(b > a);
        assert_eq!(
            format_ce_time(SystemTime::UNIX_EPOCH + Duration::from_millis(1_704_067_200_999)),
            "2024-01-01T00:00:00Z"
        );
    }

    #[test]
    fn header_values_verbatim_unless_impossible() {
        assert_eq!(header_value("a b").as_bytes(), b"a b");
        assert_eq!(header_value("é/ü").as_bytes(), "é/ü".as_bytes());
        assert_eq!(header_value("100%").as_bytes(), b"100%");
        assert_eq!(header_value("a\nb%").as_bytes(), b"a%0Ab%25");
        assert_eq!(header_value("\u{7f}").as_bytes(), b"%7F");
    }

    /// A socket's cached template builds, event after event, exactly the request a fresh one
    /// builds; a reload (new settings) or another socket's event makes a new template.
    #[test]
    fn a_cached_template_builds_the_same_requests_as_a_fresh_one() {
        let mut cache = RequestCache::default();
        let mut s = Arc::new(settings("http://localhost:7071/api/{hub}/{event}"));
        let mut seconds = 1_704_067_200;
        for (i, (kind, user, body)) in [
            (EventKind::Connect, Some("alice"), r#"{"claims":{}}"#),
            (EventKind::Connected, Some("alice"), "{}"),
            (
                EventKind::User("chat".into()),
                Some("alice"),
                "42[\"chat\",1]",
            ),
            (
                EventKind::User("chat".into()),
                Some("alice"),
                "42[\"chat\",22]",
            ),
            (EventKind::User("other".into()), Some("alice"), ""),
            (EventKind::User("other".into()), None, "42[\"other\"]"),
            (EventKind::Disconnected, None, r#"{"reason":""}"#),
        ]
        .into_iter()
        .enumerate()
        {
            if i == 3 {
                let mut reloaded = (*s).clone();
                reloaded.access_keys = vec!["another key".into()];
                s = Arc::new(reloaded);
            }
            seconds += i as u64 % 2;
            let stamp = CeStamp::new(
                i.to_string(),
                SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
            );
            let e = event(kind, user, body);
            let fresh = event_request(&s, &e, &stamp).unwrap();
            let template = cache.template(&s, &e);
            let prepared = template.prepare(&s, &e, &stamp).unwrap();
            assert_eq!(prepared.url(), fresh.url);
            let mut rendered = HeaderMap::new();
            template.render(&prepared, &stamp.id, &mut rendered);
            assert_eq!(rendered, fresh.headers, "event {i}");
            let mut head = Vec::new();
            template.write_head(&prepared, &stamp.id, &mut head);
            let mut lines = [httparse::EMPTY_HEADER; 32];
            let mut wire = httparse::Request::new(&mut lines);
            assert_eq!(
                wire.parse(&head).unwrap(),
                httparse::Status::Complete(head.len())
            );
            assert_eq!(wire.method, Some("POST"));
            assert_eq!(wire.path, fresh.uri.path_and_query().map(|p| p.as_str()));
            let mut names: Vec<&str> = wire.headers.iter().map(|h| h.name).collect();
            let mut expected: Vec<&str> = fresh.headers.keys().map(|k| k.as_str()).collect();
            expected.push("host");
            if !body.is_empty() {
                expected.push("content-length");
            }
            assert_eq!(
                names, expected,
                "event {i}: the documented order, then the wire's"
            );
            let value = |name: &str| {
                let h = wire.headers.iter().find(|h| h.name == name).unwrap();
                std::str::from_utf8(h.value).unwrap()
            };
            assert_eq!(value("host"), "localhost:7071");
            if !body.is_empty() {
                assert_eq!(value("content-length"), body.len().to_string());
            }
            names.retain(|n| !matches!(*n, "host" | "content-length"));
            for name in names {
                assert_eq!(
                    value(name).as_bytes(),
                    fresh.headers[name].as_bytes(),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn the_host_header_names_a_port_unless_it_is_80() {
        for (url, host) in [
            ("http://localhost/x", "localhost"),
            ("http://localhost:80/x", "localhost"),
            ("http://127.0.0.1:7071/x", "127.0.0.1:7071"),
            ("http://[::1]:8080/x", "[::1]:8080"),
        ] {
            let uri: Uri = url.parse().unwrap();
            assert_eq!(host_value(&uri), host, "{url}");
        }
    }

    /// The bytes hyper's client wrote for an event (lower-case names in the map's order, then
    /// `host` and `content-length`), byte for byte.
    #[test]
    fn an_event_head_is_written_as_the_http_client_wrote_it() {
        let s = settings("http://localhost/x?code=a%20b");
        let e = event(EventKind::Connect, None, "{}");
        let mut template = RequestTemplate::new(&s, &e);
        let prepared = template.prepare(&s, &e, &stamp()).unwrap();
        let mut head = Vec::new();
        template.write_head(&prepared, "42", &mut head);
        let signature = crate::auth::ce_signature(&s.access_keys, &e.connection_id);
        let expected = format!(
            "POST /x?code=a%20b HTTP/1.1\r\n\
             content-type: application/json; charset=utf-8\r\n\
             ce-specversion: 1.0\r\n\
             ce-type: azure.webpubsub.sys.connect\r\n\
             ce-source: /hubs/hub/client/0f9c97a2f0bf4706afe87a14e0797b11\r\n\
             ce-id: 42\r\n\
             ce-time: 2024-01-01T00:00:00Z\r\n\
             ce-signature: {signature}\r\n\
             ce-connectionid: 0f9c97a2f0bf4706afe87a14e0797b11\r\n\
             ce-hub: hub\r\n\
             ce-eventname: connect\r\n\
             ce-namespace: /chat\r\n\
             ce-socketid: s1\r\n\
             ce-awpsversion: 1.0\r\n\
             webhook-request-origin: localhost\r\n\
             host: localhost\r\n\
             content-length: 2\r\n\r\n"
        );
        assert_eq!(String::from_utf8(head).unwrap(), expected);
    }

    /// A socket's template is a few hundred bytes of header lines, not a map of shared values.
    #[test]
    fn a_template_is_small() {
        let s = settings("http://localhost:7071/api/{hub}/{event}");
        let e = event(
            EventKind::User("chat".into()),
            Some("alice"),
            "42[\"chat\"]",
        );
        let mut template = RequestTemplate::new(&s, &e);
        template.prepare(&s, &e, &stamp()).unwrap();
        let total = std::mem::size_of::<RequestTemplate>() + template.heap_bytes();
        assert!(total < 1024, "{total} bytes");
    }
}
