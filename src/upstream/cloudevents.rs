//! CloudEvents binary-mode request building for webhook calls (docs/protocol.md §5.1, §6): pure functions,
//! no I/O.
//!
//! [`event_request`] resolves the hub's URL template and produces the POST with every `ce-*`
//! header, the signature from [`crate::auth::ce_signature`] and the raw body;
//! [`preflight_request`] produces the abuse-protection validation request (OPTIONS, or its GET
//! fallback) to the template with `{event}` = `validate`. The id and time of an event come from
//! a [`CeStamp`] so callers (and tests, and replays) can make the output deterministic.
//! [`super::client`] sends what this module builds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
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
const CE_SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
const CE_TYPE: HeaderName = HeaderName::from_static("ce-type");
const CE_SOURCE: HeaderName = HeaderName::from_static("ce-source");
const CE_ID: HeaderName = HeaderName::from_static("ce-id");
const CE_TIME: HeaderName = HeaderName::from_static("ce-time");
const CE_SIGNATURE: HeaderName = HeaderName::from_static("ce-signature");
const CE_CONNECTION_ID: HeaderName = HeaderName::from_static("ce-connectionid");
const CE_HUB: HeaderName = HeaderName::from_static("ce-hub");
const CE_EVENT_NAME: HeaderName = HeaderName::from_static("ce-eventname");
const CE_NAMESPACE: HeaderName = HeaderName::from_static("ce-namespace");
const CE_SOCKET_ID: HeaderName = HeaderName::from_static("ce-socketid");
const CE_USER_ID: HeaderName = HeaderName::from_static("ce-userid");
const CE_AWPSVERSION: HeaderName = HeaderName::from_static("ce-awpsversion");
const WEBHOOK_REQUEST_ORIGIN: HeaderName = HeaderName::from_static("webhook-request-origin");
/// `WebHook-Allowed-Origin`, read from preflight answers.
pub const WEBHOOK_ALLOWED_ORIGIN: HeaderName = HeaderName::from_static("webhook-allowed-origin");

const VERSION_1_0: HeaderValue = HeaderValue::from_static("1.0");

/// Bytes escaped in a `{hub}` / `{event}` substitution: everything but RFC 3986 unreserved
/// characters, so the value is one path segment and also safe inside a query string.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `ce-id` and `ce-time` of one event. Retries of one event reuse its stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeStamp {
    pub id: String,
    pub time: SystemTime,
}

static NEXT_EVENT_ID: AtomicU64 = AtomicU64::new(1);

impl CeStamp {
    /// A fixed stamp, for deterministic output.
    pub fn new(id: impl Into<String>, time: SystemTime) -> Self {
        CeStamp {
            id: id.into(),
            time,
        }
    }

    /// The next process-wide id (1, 2, 3, …) and the current time.
    pub fn next() -> Self {
        CeStamp {
            id: NEXT_EVENT_ID.fetch_add(1, Ordering::Relaxed).to_string(),
            time: SystemTime::now(),
        }
    }
}

/// `ce-time` text: UTC, whole seconds, `2024-01-01T00:00:00Z`.
pub fn format_ce_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A built webhook request, ready to send (and to resend: retries clone it).
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: Method,
    /// The resolved URL as text, for logs and for [`super::WebhookResponse::url`].
    pub url: String,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl WebhookRequest {
    /// A hyper request carrying a copy of this one (the body is shared, not copied).
    pub fn to_http(&self) -> Request<Full<Bytes>> {
        self.clone().into_http().1
    }

    /// Splits into the URL text and a hyper request, without copying headers.
    pub fn into_http(self) -> (String, Request<Full<Bytes>>) {
        let mut request = Request::new(Full::new(self.body));
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.headers_mut() = self.headers;
        (self.url, request)
    }
}

/// Builds the CloudEvents POST for `event` under `settings` (docs/protocol.md §5.1).
pub fn event_request(
    settings: &UpstreamSettings,
    event: &WebhookEvent,
    stamp: &CeStamp,
) -> Result<WebhookRequest, WebhookError> {
    let mut template = RequestTemplate::new(settings, event);
    let prepared = template.prepare(event, stamp)?;
    Ok(WebhookRequest {
        method: Method::POST,
        url: prepared.target.url.clone(),
        uri: prepared.target.uri.clone(),
        headers: template.headers(&prepared, false),
        body: event.body.clone(),
    })
}

/// What every request of one socket shares, in wire form: the `ce-*` headers that name the
/// socket, its signature (an HMAC of the connection id, so the same for each of its events),
/// the origin, and the URL of the last event name. Building a request from it copies no header
/// text (a value's bytes are shared: cloning one is a reference count) and computes no
/// signature; only `ce-id` is new for each event, and `ce-time` once a second.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    url_template: String,
    /// Who the template is for; an event of another socket gets a template of its own.
    hub: Arc<str>,
    connection_id: Arc<str>,
    namespace: Arc<str>,
    socket_id: Arc<str>,
    user_id: Option<Arc<str>>,
    source: HeaderValue,
    signature: Option<HeaderValue>,
    connection_id_value: HeaderValue,
    hub_value: HeaderValue,
    namespace_value: HeaderValue,
    socket_id_value: HeaderValue,
    user_id_value: Option<HeaderValue>,
    origin: Result<HeaderValue, WebhookError>,
    /// The last event name's URL and header.
    target: Option<Arc<Target>>,
    /// The last `ce-time` second and its header.
    time: Option<(u64, HeaderValue)>,
    /// The last body length and its `Content-Length` header.
    length: Option<(usize, HeaderValue)>,
}

/// Where one event name goes.
#[derive(Debug)]
struct Target {
    event_name: String,
    url: String,
    uri: Uri,
    name: HeaderValue,
    /// The `Host` header the HTTP client would add (`host[:port]`, the port when not 80).
    host: HeaderValue,
}

/// What is particular to one event's request (its stamp, name, type and length); the rest is
/// its socket's [`RequestTemplate`]. Cloning it copies no text.
#[derive(Debug, Clone)]
pub struct Prepared {
    target: Arc<Target>,
    system: bool,
    ce_type: &'static str,
    id: HeaderValue,
    time: HeaderValue,
    origin: HeaderValue,
    length: Option<HeaderValue>,
}

impl Prepared {
    /// The resolved URL.
    pub fn url(&self) -> &str {
        &self.target.url
    }
}

impl RequestTemplate {
    /// The template of `event`'s socket under `settings`.
    pub fn new(settings: &UpstreamSettings, event: &WebhookEvent) -> RequestTemplate {
        let source = format!("/hubs/{}/client/{}", event.hub, event.connection_id);
        let signature = crate::auth::ce_signature(&settings.access_keys, &event.connection_id);
        RequestTemplate {
            url_template: settings.url_template.clone(),
            hub: event.hub.clone(),
            connection_id: event.connection_id.clone(),
            namespace: event.namespace.clone(),
            socket_id: event.socket_id.clone(),
            user_id: event.user_id.clone(),
            source: header_value(&source),
            // No keys (identity-style configuration) means no signature rather than an empty header.
            signature: (!signature.is_empty()).then(|| header_value(&signature)),
            connection_id_value: header_value(&event.connection_id),
            hub_value: header_value(&event.hub),
            namespace_value: header_value(&event.namespace),
            socket_id_value: header_value(&event.socket_id),
            user_id_value: event
                .user_id
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(header_value),
            origin: origin_value(settings),
            target: None,
            time: None,
            length: None,
        }
    }

    /// Whether `event` belongs to this template's socket.
    fn fits(&self, event: &WebhookEvent) -> bool {
        self.hub == event.hub
            && self.connection_id == event.connection_id
            && self.namespace == event.namespace
            && self.socket_id == event.socket_id
            && self.user_id == event.user_id
    }

    /// The parts of `event`'s request stamped `stamp`: its URL resolved (or the last one
    /// reused), `ce-time` and `Content-Length` made anew only when they changed.
    pub fn prepare(
        &mut self,
        event: &WebhookEvent,
        stamp: &CeStamp,
    ) -> Result<Prepared, WebhookError> {
        let event_name = event.kind.event_name();
        let target = match &self.target {
            Some(target) if target.event_name == event_name => target.clone(),
            _ => {
                let (url, uri) = resolve_url(&self.url_template, &event.hub, event_name)?;
                let target = Arc::new(Target {
                    event_name: event_name.to_owned(),
                    host: host_value(&uri),
                    url,
                    uri,
                    name: header_value(event_name),
                });
                self.target = Some(target.clone());
                target
            }
        };
        let origin = self.origin.clone()?;
        let second = stamp
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let time = match &self.time {
            Some((s, value)) if *s == second => value.clone(),
            _ => {
                let value = header_value(&format_ce_time(stamp.time));
                self.time = Some((second, value.clone()));
                value
            }
        };
        let len = event.body.len();
        let length = match &self.length {
            Some((l, value)) if *l == len => value.clone(),
            _ => {
                let value = HeaderValue::from(len);
                self.length = Some((len, value.clone()));
                value
            }
        };
        Ok(Prepared {
            target,
            system: !matches!(event.kind, EventKind::User(_)),
            ce_type: event.kind.ce_type(),
            id: header_value(&stamp.id),
            time,
            origin,
            // An empty body goes without the header, as the HTTP client sends it.
            length: (len > 0).then_some(length),
        })
    }

    /// The event's headers in their documented order; with `wire`, also `Host` and
    /// `Content-Length` as the HTTP client would add them, so that it adds nothing.
    fn headers(&self, p: &Prepared, wire: bool) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(18);
        let content_type = if p.system {
            SYSTEM_CONTENT_TYPE
        } else {
            USER_CONTENT_TYPE
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CE_SPECVERSION, VERSION_1_0);
        headers.insert(CE_TYPE, HeaderValue::from_static(p.ce_type));
        headers.insert(CE_SOURCE, self.source.clone());
        headers.insert(CE_ID, p.id.clone());
        headers.insert(CE_TIME, p.time.clone());
        if let Some(signature) = &self.signature {
            headers.insert(CE_SIGNATURE, signature.clone());
        }
        headers.insert(CE_CONNECTION_ID, self.connection_id_value.clone());
        headers.insert(CE_HUB, self.hub_value.clone());
        headers.insert(CE_EVENT_NAME, p.target.name.clone());
        headers.insert(CE_NAMESPACE, self.namespace_value.clone());
        headers.insert(CE_SOCKET_ID, self.socket_id_value.clone());
        if let Some(user_id) = &self.user_id_value {
            headers.insert(CE_USER_ID, user_id.clone());
        }
        headers.insert(CE_AWPSVERSION, VERSION_1_0);
        headers.insert(WEBHOOK_REQUEST_ORIGIN, p.origin.clone());
        if wire {
            headers.insert(HOST, p.target.host.clone());
            if let Some(length) = &p.length {
                headers.insert(CONTENT_LENGTH, length.clone());
            }
        }
        headers
    }

    /// The hyper request for one attempt of `p`; `body` is shared, not copied.
    pub fn to_http(&self, p: &Prepared, body: &Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = p.target.uri.clone();
        *request.headers_mut() = self.headers(p, true);
        request
    }
}

/// `host[:port]` of `uri`, as the HTTP client writes its `Host` header.
fn host_value(uri: &Uri) -> HeaderValue {
    let host = uri.host().unwrap_or("");
    match uri.port_u16() {
        Some(port) if port != 80 => header_value(&format!("{host}:{port}")),
        _ => header_value(host),
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
    headers.insert(CE_AWPSVERSION, VERSION_1_0);
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
    if let Ok(value) = HeaderValue::from_str(text) {
        return value;
    }
    if let Ok(value) = HeaderValue::from_bytes(text.as_bytes()) {
        return value;
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        if ch == '%' || (ch.is_ascii_control() && ch != '\t') {
            escaped.push_str(&format!("%{:02X}", ch as u32));
        } else {
            escaped.push(ch);
        }
    }
    // Every remaining byte is allowed by `HeaderValue::from_bytes`.
    HeaderValue::from_bytes(escaped.as_bytes()).unwrap_or(HeaderValue::from_static(""))
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
            let prepared = template.prepare(&e, &stamp).unwrap();
            assert_eq!(prepared.url(), fresh.url);
            assert_eq!(
                template.headers(&prepared, false),
                fresh.headers,
                "event {i}"
            );
            let wire = template.to_http(&prepared, &e.body);
            assert_eq!(wire.uri(), &fresh.uri);
            assert_eq!(wire.headers().get("host").unwrap(), "localhost:7071");
            let length = wire.headers().get("content-length");
            if body.is_empty() {
                assert!(length.is_none());
            } else {
                assert_eq!(length.unwrap(), &body.len().to_string());
            }
            let mut rest = wire.headers().clone();
            rest.remove("host");
            rest.remove("content-length");
            assert_eq!(rest, fresh.headers, "event {i}");
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

    #[test]
    fn to_http_copies_everything() {
        let s = settings("http://localhost/x");
        let r = event_request(&s, &event(EventKind::Connect, None, "{}"), &stamp()).unwrap();
        let h = r.to_http();
        assert_eq!(h.method(), Method::POST);
        assert_eq!(h.uri(), &r.uri);
        assert_eq!(h.headers(), &r.headers);
    }
}
