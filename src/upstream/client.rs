//! The webhook client: one keep-alive connection pool shared by every webhook call, the
//! per-call timeout, retries of non-blocking events, and the abuse-protection preflight cache
//! (docs/protocol.md §6, §14 decisions 14 and 15).
//!
//! [`Upstream::call`] stamps an event and builds its request with [`super::cloudevents`];
//! [`Call::send`] delivers it. Blocking events (`connect`, user events) get one attempt, whose
//! answer decides the client's fate; non-blocking ones (`connected`, `disconnected`) are retried.
//! Every outcome is a [`Delivery`] value carrying the stamp it went with: a [`WebhookResponse`]
//! whenever the webhook answered (any status), a [`WebhookError`] when it did not. Only `http://` webhooks are supported: the emulator talks
//! to code running on the developer's machine.

use super::ledger::Ledger;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use tokio::time::Instant;

use super::cloudevents::{
    self, CeStamp, Prepared, RequestCache, RequestTemplate, WEBHOOK_ALLOWED_ORIGIN, WebhookRequest,
};
use super::head::ResponseHead;
use super::hint::{ANSWER_BODY_FAILED, ANSWER_UNREADABLE, CONNECTION_REFUSED};
use super::http1::{Conn, Failure};
use super::pool::Pool;
use super::{UpstreamSettings, WebhookError, WebhookEvent, WebhookResponse, body_preview};

/// Largest webhook response body read, in bytes (1 MiB, the order of Engine.IO's `maxPayload`).
/// A larger answer is a [`WebhookError::ResponseTooLarge`], never truncated.
pub const MAX_RESPONSE_BODY: usize = 1 << 20;
/// How long a successful preflight is trusted before the next event re-validates (docs/protocol.md §6, §0 A3).
pub const PREFLIGHT_TTL: Duration = Duration::from_secs(60);
/// Upper bound of the preflight timeout; the effective one is `min(settings.timeout, this)`.
pub const PREFLIGHT_TIMEOUT_CAP: Duration = Duration::from_secs(10);
/// Idle keep-alive connections are closed after this long: under Node's default server
/// keep-alive (5 s), so a handler is not sent a request on a connection it is closing, and short
/// enough that the connections a burst opened (up to [`MAX_CONCURRENT_CALLS`], some 25 KiB of
/// buffers each) are gone seconds after a disconnect storm. Steady traffic keeps them busy.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Idle keep-alive connections kept per webhook host; concurrent calls beyond it still work,
/// their connections are just closed afterwards instead of pooled.
pub const POOL_MAX_IDLE_PER_HOST: usize = 256;
/// Preflight cache entries (one per URL template and, when the template uses `{hub}`, per hub).
/// Hubs can come from clients, so the cache is capped; when full, expired and idle entries are
/// dropped, and if none can be, that preflight simply runs uncached.
pub const PREFLIGHT_CACHE_CAP: usize = 1024;
/// Webhook requests in flight at once across every handler; more wait for a turn, so a burst
/// of disconnects cannot open thousands of connections to the developer's handler.
pub const MAX_CONCURRENT_CALLS: usize = 256;
/// Characters of a response body quoted in a preflight failure.
const PREFLIGHT_BODY_PREVIEW: usize = 120;

/// Produces the `ce-id` / `ce-time` of each new event; see [`Upstream::with_stamps`].
pub type StampSource = Arc<dyn Fn() -> CeStamp + Send + Sync>;

/// One delivery of an event: the `ce-id` and `ce-time` it went with, its outcome, and how many
/// times it was tried.
#[derive(Debug)]
pub struct Delivery {
    /// The event's stamp, the same on every attempt.
    pub stamp: CeStamp,
    /// Any HTTP answer is `Ok`, whatever its status; `Err` when the webhook never answered.
    pub result: Result<WebhookResponse, WebhookError>,
    /// Attempts made: 1 for a blocking event, 1 + retries for a non-blocking one (0 when its
    /// request could not even be built).
    pub attempts: u32,
}

/// A failed attempt of a non-blocking event that is about to be retried.
#[derive(Debug)]
pub struct Retry<'a> {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// The wait before the next attempt.
    pub delay: Duration,
    failure: &'a Result<WebhookResponse, Failed>,
    /// The event's `ce-id`, the same on every attempt.
    pub ce_id: &'a str,
}

impl Retry<'_> {
    /// What went wrong, in a few words.
    pub fn failure(&self) -> String {
        match self.failure {
            Ok(response) => format!("answered {}", response.status),
            Err(failed) => failed.error.to_string(),
        }
    }
}

/// An event stamped and built by [`Upstream::call`], ready to be delivered.
#[derive(Debug)]
pub struct Call<'a> {
    upstream: &'a Upstream,
    settings: &'a UpstreamSettings,
    hub: &'a str,
    /// Non-blocking events are retried (docs/protocol.md §14 decisions 14 and 23).
    retries: bool,
    stamp: CeStamp,
    /// What the event's socket shares with its other events (a lane's, or this call's own).
    template: Cow<'a, RequestTemplate>,
    request: Result<Prepared, WebhookError>,
    body: &'a Bytes,
}

/// One event's request: its socket's template, its own parts, its id and its body.
#[derive(Debug, Clone, Copy)]
struct Outgoing<'a> {
    template: &'a RequestTemplate,
    prepared: &'a Prepared,
    id: &'a str,
    body: &'a Bytes,
}

/// One request on the wire: an event, or a preflight.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Event(Outgoing<'a>),
    /// A preflight request and the `host:port` it goes to.
    Plain(&'a WebhookRequest, &'a str),
}

impl Wire<'_> {
    /// `host:port` to connect to.
    fn addr(&self) -> &str {
        match self {
            Wire::Event(event) => &event.prepared.target.addr,
            Wire::Plain(_, addr) => addr,
        }
    }

    /// The URL's authority as written, for messages.
    fn authority(&self) -> String {
        let url = match self {
            Wire::Event(event) => event.prepared.url(),
            Wire::Plain(request, _) => &request.url,
        };
        Uri::try_from(url)
            .ok()
            .and_then(|uri| uri.authority().map(|a| a.as_str().to_owned()))
            .unwrap_or_else(|| self.addr().to_owned())
    }

    fn body(&self) -> &[u8] {
        match self {
            Wire::Event(event) => event.body,
            Wire::Plain(request, _) => &request.body,
        }
    }

    /// Writes the request head into a connection's buffer.
    fn write_head(&self, out: &mut Vec<u8>) {
        match self {
            Wire::Event(e) => e.template.write_head(e.prepared, e.id, out),
            Wire::Plain(request, _) => write_plain_head(request, out),
        }
    }
}

/// The head of a request built as a [`WebhookRequest`], written as hyper's client wrote it:
/// its headers in order, then `Host` and (for a body) `Content-Length` when missing.
fn write_plain_head(request: &WebhookRequest, out: &mut Vec<u8>) {
    let path = match request.uri.path_and_query().map(|p| p.as_str()) {
        Some(p) if !p.is_empty() => p,
        _ => "/",
    };
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in &request.headers {
        line(name.as_str(), value.as_bytes());
    }
    if !request.headers.contains_key(http::header::HOST) {
        let host = request.uri.host().unwrap_or("");
        match request.uri.port_u16() {
            Some(port) if port != 80 => line("host", format!("{host}:{port}").as_bytes()),
            _ => line("host", host.as_bytes()),
        }
    }
    if !request.body.is_empty() && !request.headers.contains_key(http::header::CONTENT_LENGTH) {
        line("content-length", request.body.len().to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `host:port` of an `http://` URI (port 80 when it names none).
fn connect_addr(uri: &Uri) -> String {
    format!(
        "{}:{}",
        uri.host().unwrap_or(""),
        uri.port_u16().unwrap_or(80)
    )
}

impl Call<'_> {
    /// Exactly one attempt, whatever the event (a resend from the inspector).
    pub fn once(mut self) -> Self {
        self.retries = false;
        self
    }

    /// Delivers the event. A blocking one (`connect`, user events) gets the preflight if due,
    /// then exactly one attempt bounded by `settings.timeout`. A non-blocking one (`connected`,
    /// `disconnected`) is retried as [`Upstream`] describes; `on_retry` hears of each failed
    /// attempt that will be retried.
    pub async fn send(&self, on_retry: impl Fn(Retry<'_>)) -> Delivery {
        let stamp = self.stamp.clone();
        let (upstream, settings) = (self.upstream, self.settings);
        let request = match &self.request {
            Ok(prepared) => Outgoing {
                template: &self.template,
                prepared,
                id: &self.stamp.id,
                body: self.body,
            },
            Err(error) => {
                let attempts = u32::from(!self.retries);
                let result = Err(error.clone());
                return Delivery {
                    stamp,
                    result,
                    attempts,
                };
            }
        };
        if !self.retries {
            let result = upstream.send_once(settings, self.hub, request).await;
            return Delivery {
                stamp,
                result,
                attempts: 1,
            };
        }
        let (result, attempts) = upstream
            .send_with_retries(settings, self.hub, request, &self.stamp, on_retry)
            .await;
        Delivery {
            stamp,
            result,
            attempts,
        }
    }
}

/// The webhook client. Cheap to clone; clones share the pool and the preflight cache.
#[derive(Clone)]
pub struct Upstream {
    pool: Pool,
    in_flight: Arc<tokio::sync::Semaphore>,
    preflights: Arc<Mutex<PreflightCache>>,
    stamps: Option<StampSource>,
    ledger: Ledger,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("preflight_entries", &self.lock_cache().len)
            .field("custom_stamps", &self.stamps.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    /// A client with an empty pool and preflight cache. Needs no runtime until first used.
    pub fn new() -> Self {
        Upstream {
            pool: Pool::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS)),
            preflights: Arc::new(Mutex::new(PreflightCache::default())),
            stamps: None,
            ledger: Ledger::default(),
        }
    }

    /// The idle connections (tests look at what is kept).
    #[cfg(test)]
    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The non-blocking events owed to webhooks (docs/protocol.md §14 decision 23).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Replaces the process-wide id counter and wall clock used for `ce-id` / `ce-time`, e.g. to
    /// make recorded output deterministic.
    pub fn with_stamps(mut self, stamps: StampSource) -> Self {
        self.stamps = Some(stamps);
        self
    }

    /// One event ready to go: stamped now with a fresh `ce-id` and `ce-time` (or the seeded
    /// generator's), its request built once. [`Call::send`] delivers it; sending it again
    /// delivers the same request (same stamp, signature and body), as at-least-once delivery does.
    pub fn call<'a>(&'a self, settings: &'a UpstreamSettings, event: &'a WebhookEvent) -> Call<'a> {
        let stamp = self.next_stamp();
        let mut template = RequestTemplate::new(settings, event);
        let request = template.prepare(settings, event, &stamp);
        self.made_call(settings, event, stamp, Cow::Owned(template), request)
    }

    /// [`Upstream::call`] for an event of the socket whose template `cache` keeps: the header
    /// block, signature and URL are made once per socket (and again after a reload), not per
    /// event.
    pub fn call_cached<'a>(
        &'a self,
        settings: &'a Arc<UpstreamSettings>,
        event: &'a WebhookEvent,
        cache: &'a mut RequestCache,
    ) -> Call<'a> {
        let stamp = self.next_stamp();
        let template = cache.template(settings, event);
        let request = template.prepare(settings, event, &stamp);
        self.made_call(settings, event, stamp, Cow::Borrowed(template), request)
    }

    fn next_stamp(&self) -> CeStamp {
        self.stamps.as_ref().map_or_else(CeStamp::next, |f| f())
    }

    fn made_call<'a>(
        &'a self,
        settings: &'a UpstreamSettings,
        event: &'a WebhookEvent,
        stamp: CeStamp,
        template: Cow<'a, RequestTemplate>,
        request: Result<Prepared, WebhookError>,
    ) -> Call<'a> {
        Call {
            upstream: self,
            settings,
            hub: &event.hub,
            retries: !event.kind.is_blocking(),
            stamp,
            template,
            request,
            body: &event.body,
        }
    }

    /// Delivers a non-blocking event's request: an answer of 408 or 5xx, a network error or a
    /// timeout is retried after each delay of `settings.retry_delays` in turn (the same request
    /// each time). Returns the last outcome: `Ok` with a non-2xx status when the webhook kept
    /// failing, `Err` when it never answered.
    async fn send_with_retries(
        &self,
        settings: &UpstreamSettings,
        hub: &str,
        request: Outgoing<'_>,
        stamp: &CeStamp,
        on_retry: impl Fn(Retry<'_>),
    ) -> (Result<WebhookResponse, WebhookError>, u32) {
        let mut delays = settings.retry_delays.iter();
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            let outcome = match self.ensure_preflight(settings, hub).await {
                Ok(()) => self.deliver(request, settings.timeout).await,
                Err(failed) => Err(failed),
            };
            let retry = match &outcome {
                Ok(response) => retryable_status(response.status),
                Err(failed) => failed.retryable,
            };
            match delays.next() {
                Some(delay) if retry => {
                    on_retry(Retry {
                        attempt: attempts,
                        delay: *delay,
                        failure: &outcome,
                        ce_id: &stamp.id,
                    });
                    tokio::time::sleep(*delay).await
                }
                _ => {
                    let outcome = outcome.map(|mut response| {
                        response.attempts = attempts;
                        response
                    });
                    return (outcome.map_err(|failed| failed.error), attempts);
                }
            }
        }
    }

    /// Delivers a blocking event's request: the preflight if due, then exactly one attempt
    /// bounded by `settings.timeout`.
    async fn send_once(
        &self,
        settings: &UpstreamSettings,
        hub: &str,
        request: Outgoing<'_>,
    ) -> Result<WebhookResponse, WebhookError> {
        self.ensure_preflight(settings, hub)
            .await
            .map_err(|failed| failed.error)?;
        self.deliver(request, settings.timeout)
            .await
            .map_err(|failed| failed.error)
    }

    /// One exchange for an event; the answer becomes a [`WebhookResponse`].
    async fn deliver(
        &self,
        request: Outgoing<'_>,
        timeout: Duration,
    ) -> Result<WebhookResponse, Failed> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.in_flight.acquire().await.ok();
        let url = || request.prepared.url().to_owned();
        match self.exchange(Wire::Event(request), timeout).await {
            Ok(answer) => Ok(WebhookResponse {
                url: request.prepared.target.url.clone(),
                status: answer.status.as_u16(),
                head: answer.head,
                body: answer.body,
                latency: answer.latency,
                attempts: 1,
            }),
            Err(Trouble::Unreachable { cause, latency }) => {
                Err(Failed::retryable(WebhookError::Unreachable {
                    url: url(),
                    cause,
                    latency,
                }))
            }
            Err(Trouble::Timeout) => Err(Failed::retryable(WebhookError::Timeout {
                url: url(),
                after: timeout,
            })),
            Err(Trouble::TooLarge(status)) => Err(Failed::fatal(WebhookError::ResponseTooLarge {
                url: url(),
                status: status.as_u16(),
                limit: MAX_RESPONSE_BODY,
            })),
        }
    }

    /// Sends `request` and reads the whole answer, all within `timeout`, on a pooled
    /// connection or a new one. A pooled connection the webhook had closed before any of the
    /// answer arrived is replaced by a new one, once. Dropping the future on timeout drops the
    /// connection too, so a late answer cannot be read by the next call.
    async fn exchange(&self, request: Wire<'_>, timeout: Duration) -> Result<Answer, Trouble> {
        let started = Instant::now();
        let addr = request.addr();
        let work = async {
            let (mut conn, reused) = match self.pool.take(addr) {
                Some(conn) => (conn, true),
                None => (self.connect(request).await?, false),
            };
            request.write_head(&mut conn.out);
            let mut outcome = conn.round_trip(request.body()).await;
            if reused && outcome.as_ref().is_err_and(Failure::is_early) {
                self.pool.forget(addr);
                conn = self.connect(request).await?;
                request.write_head(&mut conn.out);
                outcome = conn.round_trip(request.body()).await;
            }
            let (answer, keep_alive) = outcome.map_err(describe_failure)?;
            if keep_alive {
                self.pool.put(addr, conn);
            }
            Ok(answer)
        };
        let answer = match tokio::time::timeout(timeout, work).await {
            Err(_) => return Err(Trouble::Timeout),
            Ok(Err(Stage::TooLarge(status))) => return Err(Trouble::TooLarge(status)),
            Ok(Err(Stage::Failed(cause))) => {
                return Err(Trouble::Unreachable {
                    cause,
                    latency: started.elapsed(),
                });
            }
            Ok(Ok(answer)) => answer,
        };
        Ok(Answer {
            status: answer.status,
            head: answer.head,
            body: answer.body,
            latency: started.elapsed(),
        })
    }

    /// Makes sure the upstream of `settings` passed the abuse-protection check in the last
    /// [`PREFLIGHT_TTL`]. Concurrent callers for one upstream wait for a single preflight and
    /// share its outcome; a failure is not remembered beyond those waiters.
    async fn ensure_preflight(&self, settings: &UpstreamSettings, hub: &str) -> Result<(), Failed> {
        if !settings.preflight {
            return Ok(());
        }
        let template = settings.url_template.as_str();
        // The validate URL depends on the hub only when the template mentions it.
        let hub_key = if template.contains("{hub}") { hub } else { "" };
        let slot = {
            let mut cache = self.lock_cache();
            let now = Instant::now();
            match cache.entry(template, hub_key, now) {
                Some(entry) if entry.is_valid(now) => return Ok(()),
                Some(entry) => Some((entry.gate.clone(), entry.generation)),
                None => None,
            }
        };
        let Some((gate, seen_generation)) = slot else {
            // Cache full of live entries: validate without caching rather than grow.
            return self.run_preflight(settings, hub).await;
        };
        let _turn = gate.lock().await;
        {
            let cache = self.lock_cache();
            if let Some(entry) = cache.get(template, hub_key) {
                if entry.is_valid(Instant::now()) {
                    return Ok(());
                }
                // Someone ran a preflight while we waited: share its failure.
                if entry.generation != seen_generation
                    && let Some(failed) = &entry.last_failure
                {
                    return Err(failed.clone());
                }
            }
        }
        let outcome = self.run_preflight(settings, hub).await;
        let now = Instant::now();
        let mut cache = self.lock_cache();
        if let Some(entry) = cache.entry(template, hub_key, now) {
            entry.generation = entry.generation.wrapping_add(1);
            match &outcome {
                Ok(()) => {
                    entry.valid_until = Some(now + PREFLIGHT_TTL);
                    entry.last_failure = None;
                }
                Err(failed) => {
                    entry.valid_until = None;
                    entry.last_failure = Some(failed.clone());
                }
            }
        }
        outcome
    }

    /// OPTIONS to the validate URL, GET on 404/405, then the `WebHook-Allowed-Origin` check.
    async fn run_preflight(&self, settings: &UpstreamSettings, hub: &str) -> Result<(), Failed> {
        let timeout = settings.timeout.min(PREFLIGHT_TIMEOUT_CAP);
        let options = cloudevents::preflight_request(settings, hub, Method::OPTIONS)
            .map_err(Failed::fatal)?;
        let url = options.url.clone();
        let fail = |detail: String, retryable: bool| Failed {
            error: WebhookError::Preflight {
                url: url.clone(),
                detail,
            },
            retryable,
        };

        let addr = connect_addr(&options.uri);
        let mut answer = self
            .exchange(Wire::Plain(&options, &addr), timeout)
            .await
            .map_err(|t| fail(t.preflight_detail("OPTIONS", timeout), t.retryable()))?;
        let mut method = "OPTIONS".to_owned();
        if matches!(answer.status.as_u16(), 404 | 405) {
            method = format!(
                "the GET fallback (after OPTIONS answered {} {})",
                answer.status.as_u16(),
                answer.reason()
            );
            let get = cloudevents::preflight_request(settings, hub, Method::GET)
                .map_err(Failed::fatal)?;
            answer = self
                .exchange(Wire::Plain(&get, &addr), timeout)
                .await
                .map_err(|t| fail(t.preflight_detail(&method, timeout), t.retryable()))?;
        }

        if !answer.status.is_success() {
            let mut detail = format!(
                "{method} answered {} {}",
                answer.status.as_u16(),
                answer.reason()
            );
            if !answer.body.is_empty() {
                detail.push_str(&format!(
                    " with body `{}`",
                    body_preview(&answer.body, PREFLIGHT_BODY_PREVIEW)
                ));
            }
            return Err(fail(detail, retryable_status(answer.status.as_u16())));
        }
        check_allowed_origin(&answer.head.headers(), &settings.origin).map_err(|problem| {
            fail(
                format!(
                    "{method} answered {} {} {problem}",
                    answer.status.as_u16(),
                    answer.reason()
                ),
                false,
            )
        })
    }

    /// A new connection for `request`, or why there is none.
    async fn connect(&self, request: Wire<'_>) -> Result<Conn, Stage> {
        self.pool.connect(request.addr()).await.map_err(|err| {
            let authority = request.authority();
            Stage::Failed(match err.kind() {
                io::ErrorKind::ConnectionRefused => {
                    format!("{CONNECTION_REFUSED} (nothing is listening on {authority})")
                }
                _ => format!("could not connect to {authority}: {err}"),
            })
        })
    }

    /// Webhook connections open now (idle in the pool or carrying a call).
    pub fn open_connections(&self) -> usize {
        self.pool.open()
    }

    fn lock_cache(&self) -> MutexGuard<'_, PreflightCache> {
        // The cache holds no invariants a panicking holder could break; keep going.
        self.preflights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// 408 and 5xx answers are worth retrying (docs/protocol.md §6: not 429, not other 4xx).
fn retryable_status(status: u16) -> bool {
    status == 408 || (500..600).contains(&status)
}

/// Why a preflight answer does not allow this emulator's origin; completes "OPTIONS answered
/// 200 OK …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum OriginError {
    #[error("without a WebHook-Allowed-Origin header")]
    Missing,
    #[error(
        "with WebHook-Allowed-Origin `{seen}`, which is neither `*` nor this emulator's \
         WebHook-Request-Origin `{origin}`"
    )]
    NotAllowed { seen: String, origin: String },
}

/// Accepts `*` or this emulator's origin (case-insensitive), in any of possibly several header
/// lines or comma-separated values (express answers with its allow-list).
fn check_allowed_origin(headers: &HeaderMap, origin: &str) -> Result<(), OriginError> {
    let mut seen = Vec::new();
    for value in headers.get_all(WEBHOOK_ALLOWED_ORIGIN) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for allowed in text.split(',').map(str::trim) {
            // `@azure/web-pubsub-express` answers with the host of its allowed endpoint, port
            // included (`localhost:8080`); the port does not make it another origin.
            let host = allowed
                .rsplit_once(':')
                .filter(|(_, port)| port.parse::<u16>().is_ok())
                .map_or(allowed, |(host, _)| host);
            if allowed == "*"
                || allowed.eq_ignore_ascii_case(origin)
                || host.eq_ignore_ascii_case(origin)
            {
                return Ok(());
            }
            seen.push(allowed.to_owned());
        }
    }
    if seen.is_empty() {
        Err(OriginError::Missing)
    } else {
        Err(OriginError::NotAllowed {
            seen: seen.join(", "),
            origin: origin.to_owned(),
        })
    }
}

/// A complete HTTP answer.
struct Answer {
    status: StatusCode,
    head: ResponseHead,
    body: Bytes,
    latency: Duration,
}

impl Answer {
    fn reason(&self) -> &str {
        self.head.reason(self.status.as_u16())
    }
}

/// Why an exchange produced no complete answer.
enum Trouble {
    Unreachable { cause: String, latency: Duration },
    Timeout,
    TooLarge(StatusCode),
}

impl Trouble {
    fn retryable(&self) -> bool {
        !matches!(self, Trouble::TooLarge(_))
    }

    fn preflight_detail(&self, method: &str, timeout: Duration) -> String {
        match self {
            Trouble::Unreachable { cause, .. } => format!("{method} could not be sent: {cause}"),
            Trouble::Timeout => format!(
                "{method} got no answer within {}",
                humantime::format_duration(timeout)
            ),
            Trouble::TooLarge(status) => format!(
                "{method} answered {status} with a body larger than {MAX_RESPONSE_BODY} bytes"
            ),
        }
    }
}

/// Inside [`Upstream::exchange`], before the timeout is applied.
enum Stage {
    Failed(String),
    TooLarge(StatusCode),
}

/// A failed call and whether a non-blocking event should try it again.
#[derive(Debug, Clone)]
struct Failed {
    error: WebhookError,
    retryable: bool,
}

impl Failed {
    fn fatal(error: WebhookError) -> Self {
        Failed {
            error,
            retryable: false,
        }
    }

    fn retryable(error: WebhookError) -> Self {
        Failed {
            error,
            retryable: true,
        }
    }
}

/// A sentence for a request that got no (complete) answer, naming the OS-level cause when
/// there is one.
fn describe_failure(failure: Failure) -> Stage {
    Stage::Failed(match failure {
        Failure::TooLarge(status) => return Stage::TooLarge(status),
        Failure::Io { error, .. } => match error.kind() {
            io::ErrorKind::ConnectionReset => {
                "the webhook reset the connection before answering".to_owned()
            }
            io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => {
                "the webhook closed the connection before answering".to_owned()
            }
            _ => error.to_string(),
        },
        Failure::Closed { early: true } => {
            "the webhook closed the connection before answering".to_owned()
        }
        Failure::Closed { early: false } => {
            "the webhook closed the connection in the middle of its answer".to_owned()
        }
        Failure::Invalid(detail) => format!("{ANSWER_UNREADABLE}: {detail}"),
        Failure::Body { status, cause } => {
            format!("{ANSWER_BODY_FAILED} {status} answer's body: {cause}")
        }
    })
}

/// Preflight state of one upstream (URL template, plus hub when the template uses `{hub}`).
struct PreflightEntry {
    /// Set on success; the upstream is trusted until then.
    valid_until: Option<Instant>,
    /// Bumped by every finished preflight, so waiters can tell a fresh outcome from a stale one.
    generation: u64,
    /// The outcome of the last preflight when it failed, shared with callers that waited for it.
    last_failure: Option<Failed>,
    /// Held while a preflight runs: one preflight per upstream at a time.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl PreflightEntry {
    fn new() -> Self {
        PreflightEntry {
            valid_until: None,
            generation: 0,
            last_failure: None,
            gate: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn is_valid(&self, now: Instant) -> bool {
        self.valid_until.is_some_and(|until| now < until)
    }

    /// Nobody waits on or runs its preflight and it vouches for nothing: safe to drop.
    fn is_disposable(&self, now: Instant) -> bool {
        !self.is_valid(now) && Arc::strong_count(&self.gate) == 1
    }
}

/// Template → hub key → entry; looked up by `&str` so the hot path does not allocate.
#[derive(Default)]
struct PreflightCache {
    by_template: HashMap<String, HashMap<String, PreflightEntry>>,
    len: usize,
}

impl PreflightCache {
    fn get(&self, template: &str, hub: &str) -> Option<&PreflightEntry> {
        self.by_template.get(template)?.get(hub)
    }

    /// The entry, created if missing and there is room ([`PREFLIGHT_CACHE_CAP`]).
    fn entry(&mut self, template: &str, hub: &str, now: Instant) -> Option<&mut PreflightEntry> {
        if self.get(template, hub).is_none() {
            if self.len >= PREFLIGHT_CACHE_CAP {
                self.evict(now);
                if self.len >= PREFLIGHT_CACHE_CAP {
                    return None;
                }
            }
            self.by_template
                .entry(template.to_owned())
                .or_default()
                .insert(hub.to_owned(), PreflightEntry::new());
            self.len += 1;
        }
        self.by_template.get_mut(template)?.get_mut(hub)
    }

    fn evict(&mut self, now: Instant) {
        for hubs in self.by_template.values_mut() {
            hubs.retain(|_, entry| !entry.is_disposable(now));
        }
        self.by_template.retain(|_, hubs| !hubs.is_empty());
        self.len = self.by_template.values().map(HashMap::len).sum();
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::upstream::EventKind;
    use std::net::SocketAddr;

    #[test]
    fn origin_error_message_text() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            check_allowed_origin(&headers, "emu")
                .unwrap_err()
                .to_string(),
            "without a WebHook-Allowed-Origin header"
        );
        headers.insert(WEBHOOK_ALLOWED_ORIGIN, "a.example, b".parse().unwrap());
        assert_eq!(
            check_allowed_origin(&headers, "emu")
                .unwrap_err()
                .to_string(),
            "with WebHook-Allowed-Origin `a.example, b`, which is neither `*` nor this emulator's \
             WebHook-Request-Origin `emu`"
        );
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    /// One request as the test webhook saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        uri: String,
        headers: HeaderMap,
        body: Bytes,
        connection: usize,
    }

    /// What the test webhook answers.
    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        delay: Duration,
    }

    impl Reply {
        fn status(status: u16) -> Self {
            Reply {
                status,
                headers: Vec::new(),
                body: Bytes::new(),
                delay: Duration::ZERO,
            }
        }
        fn header(mut self, name: &'static str, value: &str) -> Self {
            self.headers.push((name, value.to_owned()));
            self
        }
        fn body(mut self, body: impl Into<Bytes>) -> Self {
            self.body = body.into();
            self
        }
        fn delay(mut self, delay: Duration) -> Self {
            self.delay = delay;
            self
        }
    }

    /// Decides the answer from the request and how many requests of that method came before.
    type Script = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

    /// A real HTTP/1.1 server on 127.0.0.1:0 that records every request and connection.
    struct TestWebhook {
        addr: SocketAddr,
        seen: Arc<Mutex<Vec<Seen>>>,
        connections: Arc<AtomicUsize>,
        accept_loop: tokio::task::JoinHandle<()>,
    }

    impl Drop for TestWebhook {
        fn drop(&mut self) {
            self.accept_loop.abort();
        }
    }

    impl TestWebhook {
        async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
            Self::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), script)
        }

        /// Serves on `listener`, already bound and listening.
        fn serve(
            listener: TcpListener,
            script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
        ) -> Self {
            let script: Script = Arc::new(script);
            let addr = listener.local_addr().unwrap();
            let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
            let connections = Arc::new(AtomicUsize::new(0));
            let (seen2, connections2) = (seen.clone(), connections.clone());
            let accept_loop = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let connection = connections2.fetch_add(1, Ordering::SeqCst);
                    let (seen, script) = (seen2.clone(), script.clone());
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (seen, script) = (seen.clone(), script.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let request = Seen {
                                method: parts.method,
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                                connection,
                            };
                            let index = {
                                let mut seen = seen.lock().unwrap();
                                let index =
                                    seen.iter().filter(|s| s.method == request.method).count();
                                seen.push(request.clone());
                                index
                            };
                            let reply = script(&request, index);
                            tokio::time::sleep(reply.delay).await;
                            let mut response = Response::new(Full::new(reply.body));
                            *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
                            for (name, value) in reply.headers {
                                response.headers_mut().append(name, value.parse().unwrap());
                            }
                            Ok::<_, hyper::Error>(response)
                        }
                    });
                    tokio::spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            TestWebhook {
                addr,
                seen,
                connections,
                accept_loop,
            }
        }

        fn template(&self) -> String {
            format!("http://{}/api/{{hub}}/{{event}}", self.addr)
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        fn posts(&self) -> Vec<Seen> {
            let seen = self.seen().into_iter();
            seen.filter(|s| s.method == Method::POST).collect()
        }

        fn count(&self, method: Method) -> usize {
            self.seen().iter().filter(|s| s.method == method).count()
        }
    }

    /// Answers the preflight with `*` and every event with 200.
    fn happy(seen: &Seen, _: usize) -> Reply {
        match seen.method {
            Method::OPTIONS => Reply::status(200).header("WebHook-Allowed-Origin", "*"),
            _ => Reply::status(200),
        }
    }

    /// [`happy`], answering requests of `method` only after `delay`.
    fn happy_but_slow(method: Method, delay: Duration) -> impl Fn(&Seen, usize) -> Reply {
        move |seen, i| {
            let slow = seen.method == method;
            happy(seen, i).delay(if slow { delay } else { Duration::ZERO })
        }
    }

    /// [`happy`] preflights; every event answered with `answer()`.
    fn events_answered(
        answer: impl Fn() -> Reply + Send + Sync + 'static,
    ) -> impl Fn(&Seen, usize) -> Reply {
        move |seen, i| match seen.method {
            Method::POST => answer(),
            _ => happy(seen, i),
        }
    }

    fn settings(template: String) -> UpstreamSettings {
        UpstreamSettings {
            url_template: template,
            access_keys: vec!["key-one".into(), "key-two".into()],
            origin: "localhost".into(),
            timeout: Duration::from_secs(5),
            preflight: true,
            retry_delays: vec![Duration::from_millis(5); 3],
        }
    }

    /// A user `alice`'s event of socket `sock1` on `/` of hub `chat` (also the raw-answer tests').
    pub(in crate::upstream) fn event(kind: EventKind, body: &str) -> WebhookEvent {
        WebhookEvent {
            hub: "chat".into(),
            kind,
            connection_id: "conn1".into(),
            namespace: "/".into(),
            socket_id: "sock1".into(),
            user_id: Some("alice".into()),
            body: Bytes::from(body.to_owned()),
        }
    }

    /// Delivers `e` through the real entry point and keeps its outcome.
    async fn deliver(
        upstream: &Upstream,
        s: &UpstreamSettings,
        e: &WebhookEvent,
    ) -> Result<WebhookResponse, WebhookError> {
        upstream.call(s, e).send(|_| {}).await.result
    }

    /// Delivers one `kind` event to `hook` through a fresh [`Upstream`] with [`settings`].
    async fn deliver_to(
        hook: &TestWebhook,
        kind: EventKind,
        body: &str,
    ) -> Result<WebhookResponse, WebhookError> {
        deliver(
            &Upstream::new(),
            &settings(hook.template()),
            &event(kind, body),
        )
        .await
    }

    fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
        seen.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .to_str()
            .unwrap()
    }

    fn fixed_stamps() -> StampSource {
        Arc::new(|| {
            CeStamp::new(
                "7",
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200),
            )
        })
    }

    #[tokio::test]
    async fn connect_event_reaches_the_webhook_with_every_header() {
        let hook = TestWebhook::start(happy).await;
        let upstream = Upstream::new().with_stamps(fixed_stamps());
        let s = settings(hook.template());
        let body =
            r#"{"claims":{},"query":{},"headers":{},"subprotocols":[],"clientCertificates":[]}"#;
        let response = deliver(&upstream, &s, &event(EventKind::Connect, body))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.reason(), "OK");
        assert_eq!(response.attempts, 1);
        assert_eq!(
            &*response.url,
            format!("http://{}/api/chat/connect", hook.addr)
        );

        let seen = hook.seen();
        assert_eq!(seen.len(), 2);
        let options = &seen[0];
        assert_eq!(options.method, Method::OPTIONS);
        assert_eq!(options.uri, "/api/chat/validate");
        assert_eq!(header(options, "webhook-request-origin"), "localhost");
        assert_eq!(header(options, "ce-awpsversion"), "1.0");
        assert!(options.headers.get("ce-signature").is_none());
        assert!(options.body.is_empty());

        let post = &seen[1];
        assert_eq!(post.method, Method::POST);
        assert_eq!(post.uri, "/api/chat/connect");
        let signature = crate::auth::ce_signature(&s.access_keys, "conn1");
        for (name, value) in [
            ("content-type", "application/json; charset=utf-8"),
            ("ce-specversion", "1.0"),
            ("ce-type", "azure.webpubsub.sys.connect"),
            ("ce-source", "/hubs/chat/client/conn1"),
            ("ce-id", "7"),
            ("ce-time", "2024-01-01T00:00:00Z"),
            ("ce-signature", signature.as_str()),
            ("ce-connectionId", "conn1"),
            ("ce-hub", "chat"),
            ("ce-eventName", "connect"),
            ("ce-namespace", "/"),
            ("ce-socketId", "sock1"),
            ("ce-userId", "alice"),
            ("ce-awpsversion", "1.0"),
            ("WebHook-Request-Origin", "localhost"),
            ("content-length", &body.len().to_string()),
        ] {
            assert_eq!(header(post, name), value, "header {name}");
        }
        assert_eq!(&post.body[..], body.as_bytes());
    }

    #[tokio::test]
    async fn user_event_and_its_ack() {
        let hook = TestWebhook::start(|seen: &Seen, _| match seen.method {
            Method::POST => Reply::status(200)
                .header("content-type", "text/plain; charset=utf-8")
                .body(r#"43/chat,7["ok"]"#),
            _ => happy(seen, 0),
        })
        .await;
        let upstream = Upstream::new();
        let mut s = settings(hook.template());
        s.preflight = false;
        let packet = r#"42/chat,7["chat message","hello"]"#;
        let e = event(EventKind::User("chat message".into()), packet);
        let response = deliver(&upstream, &s, &e).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.content_type().as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(&response.body[..], br#"43/chat,7["ok"]"#);

        let seen = hook.seen();
        assert_eq!(seen.len(), 1, "no preflight when disabled");
        let post = &seen[0];
        assert_eq!(post.uri, "/api/chat/chat%20message");
        assert_eq!(header(post, "content-type"), "text/plain");
        assert_eq!(header(post, "ce-type"), "azure.webpubsub.user.message");
        assert_eq!(header(post, "ce-eventName"), "chat message");
        assert_eq!(
            header(post, "ce-signature"),
            crate::auth::ce_signature(&s.access_keys, "conn1")
        );
        assert_eq!(&post.body[..], packet.as_bytes());
    }

    #[tokio::test]
    async fn preflight_is_sent_once_and_cached() {
        let hook = TestWebhook::start(happy).await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        for _ in 0..2 {
            deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
                .await
                .unwrap();
        }
        deliver(&upstream, &s, &event(EventKind::Connected, "{}"))
            .await
            .unwrap();
        assert_eq!(hook.count(Method::OPTIONS), 1);
        assert_eq!(hook.count(Method::POST), 3);

        // Another hub resolves to another validate URL, so it is validated separately.
        let mut other = event(EventKind::Connect, "{}");
        other.hub = "other".into();
        deliver(&upstream, &s, &other).await.unwrap();
        assert_eq!(hook.count(Method::OPTIONS), 2);

        // Once the cached success expires, the next event validates again.
        upstream.expire_preflights();
        deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap();
        assert_eq!(hook.count(Method::OPTIONS), 3);
    }

    #[tokio::test]
    async fn concurrent_first_events_share_one_preflight() {
        let hook =
            TestWebhook::start(happy_but_slow(Method::OPTIONS, Duration::from_millis(100))).await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        let calls = (0..8).map(|_| {
            let (upstream, s) = (upstream.clone(), s.clone());
            tokio::spawn(
                async move { deliver(&upstream, &s, &event(EventKind::Connect, "{}")).await },
            )
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.unwrap().unwrap().status, 200);
        }
        assert_eq!(hook.count(Method::OPTIONS), 1);
        assert_eq!(hook.count(Method::POST), 8);
    }

    #[tokio::test]
    async fn concurrent_first_events_share_one_failed_preflight() {
        let hook = TestWebhook::start(|seen: &Seen, _| match seen.method {
            Method::OPTIONS => Reply::status(400).delay(Duration::from_millis(100)),
            _ => Reply::status(200),
        })
        .await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        let calls: Vec<_> = (0..5)
            .map(|_| {
                let (upstream, s) = (upstream.clone(), s.clone());
                tokio::spawn(async move {
                    deliver(&upstream, &s, &event(EventKind::Connect, "{}")).await
                })
            })
            .collect();
        for call in calls {
            let err = call.await.unwrap().unwrap_err();
            assert!(matches!(err, WebhookError::Preflight { .. }), "{err}");
        }
        assert_eq!(hook.count(Method::OPTIONS), 1);
        assert_eq!(hook.count(Method::POST), 0);
    }

    #[tokio::test]
    async fn preflight_falls_back_to_get_on_405() {
        let hook = TestWebhook::start(|seen: &Seen, _| match seen.method {
            Method::OPTIONS => Reply::status(405),
            // Origin comparison is case-insensitive.
            Method::GET => Reply::status(200).header("WebHook-Allowed-Origin", "LocalHost"),
            _ => Reply::status(200),
        })
        .await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap();
        let methods: Vec<_> = hook.seen().iter().map(|s| s.method.clone()).collect();
        assert_eq!(methods, [Method::OPTIONS, Method::GET, Method::POST]);
        let get = &hook.seen()[1];
        assert_eq!(get.uri, "/api/chat/validate");
        assert_eq!(header(get, "webhook-request-origin"), "localhost");
        assert_eq!(header(get, "ce-awpsversion"), "1.0");
        assert!(get.body.is_empty());
    }

    #[tokio::test]
    async fn failed_preflight_blocks_the_event_and_is_not_cached() {
        let hook = TestWebhook::start(|seen: &Seen, _| match seen.method {
            Method::OPTIONS => Reply::status(400).body("Invalid origin"),
            _ => Reply::status(200),
        })
        .await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        for _ in 0..2 {
            let err = deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
                .await
                .unwrap_err();
            let WebhookError::Preflight { url, detail } = &err else {
                panic!("{err:?}");
            };
            assert!(url.ends_with("/api/chat/validate"), "{url}");
            assert!(
                detail.contains("OPTIONS answered 400 Bad Request"),
                "{detail}"
            );
            assert!(detail.contains("Invalid origin"), "{detail}");
            assert!(err.hint().unwrap().contains("--no-preflight"));
        }
        assert_eq!(
            hook.count(Method::OPTIONS),
            2,
            "failures are retried per event"
        );
        assert_eq!(hook.count(Method::POST), 0);
    }

    #[tokio::test]
    async fn preflight_needs_a_matching_allowed_origin() {
        let hook = TestWebhook::start(|seen: &Seen, i| match (seen.method.clone(), i) {
            (Method::OPTIONS, 0) => {
                Reply::status(200).header("WebHook-Allowed-Origin", "example.com")
            }
            (Method::OPTIONS, _) => Reply::status(200),
            _ => Reply::status(200),
        })
        .await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        let err = deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap_err();
        let detail = err.to_string();
        assert!(
            detail.contains("`example.com`") && detail.contains("`localhost`"),
            "{detail}"
        );
        let err = deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("without a WebHook-Allowed-Origin header"),
            "{err}"
        );
        assert_eq!(hook.count(Method::POST), 0);
    }

    #[tokio::test]
    async fn allowed_origin_lists_are_accepted() {
        let hook = TestWebhook::start(|seen: &Seen, _| match seen.method {
            Method::OPTIONS => Reply::status(200)
                .header("WebHook-Allowed-Origin", "a.example")
                .header("WebHook-Allowed-Origin", "b.example, localhost"),
            _ => Reply::status(204),
        })
        .await;
        let response = deliver_to(&hook, EventKind::Connect, "{}").await.unwrap();
        assert_eq!(response.status, 204);
        assert_eq!(response.reason(), "No Content");
    }

    #[tokio::test]
    async fn slow_webhook_times_out_within_the_budget() {
        let hook = TestWebhook::start(happy_but_slow(Method::POST, Duration::from_secs(3))).await;
        let upstream = Upstream::new();
        let mut s = settings(hook.template());
        s.timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let err = deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{err}");
        let WebhookError::Timeout { url, after } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*after, Duration::from_millis(200));
        assert!(url.ends_with("/api/chat/connect"));
        assert!(err.hint().unwrap().contains("--webhook-timeout"));
    }

    #[tokio::test]
    async fn slow_preflight_times_out_as_a_preflight_failure() {
        let hook =
            TestWebhook::start(|seen: &Seen, i| happy(seen, i).delay(Duration::from_secs(3))).await;
        let upstream = Upstream::new();
        let mut s = settings(hook.template());
        s.timeout = Duration::from_millis(200);
        let err = deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("OPTIONS got no answer within 200ms"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connected_is_retried_on_500_then_succeeds() {
        let hook = TestWebhook::start(|seen: &Seen, i| match seen.method {
            Method::POST if i == 0 => Reply::status(500).body("boom"),
            _ => happy(seen, i),
        })
        .await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        let response = deliver(&upstream, &s, &event(EventKind::Connected, "{}"))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.attempts, 2);
        let posts = hook.posts();
        assert_eq!(posts.len(), 2);
        assert_eq!(
            header(&posts[0], "ce-id"),
            header(&posts[1], "ce-id"),
            "a retry is the same event"
        );
    }

    /// A handler down for 20 s (connections refused), then answering: a `disconnected` on the
    /// default schedule survives it, each attempt at its scheduled instant, all the same event.
    #[tokio::test(start_paused = true)]
    async fn disconnected_survives_a_handler_that_is_down_for_20_seconds() {
        // Bound but not listening: connections are refused, and the port stays ours until it listens.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = socket.local_addr().unwrap();
        let mut s = settings(format!("http://{addr}/api/{{hub}}/{{event}}"));
        let schedule = crate::config::DEFAULT_RETRY_DELAYS_SECS;
        s.retry_delays = schedule.map(Duration::from_secs).to_vec();
        let start = Instant::now();
        let handler = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            TestWebhook::serve(socket.listen(64).unwrap(), happy)
        });
        let upstream = Upstream::new();
        let e = event(EventKind::Disconnected, r#"{"reason":"transport close"}"#);
        let failed = Mutex::new(Vec::new());
        let delivery = upstream
            .call(&s, &e)
            .send(|retry| {
                let at = start.elapsed();
                let what = (retry.attempt, at, retry.delay, retry.ce_id.to_owned());
                failed.lock().unwrap().push((what, retry.failure()));
            })
            .await;
        let answered_at = start.elapsed();
        let hook = handler.await.unwrap();

        // Tries at 0, 1, 3, 7 and 15 s are refused; the one at 30 s, after the handler came back
        // at 20 s, is answered.
        let secs = |n: u64| Duration::from_secs(n);
        let expected = [(1, 0, 1), (2, 1, 2), (3, 3, 4), (4, 7, 8), (5, 15, 15)];
        let failed = failed.into_inner().unwrap();
        assert_eq!(failed.len(), expected.len(), "{failed:?}");
        for (((attempt, at, delay, ce_id), failure), (n, t, d)) in failed.iter().zip(expected) {
            assert_eq!((*attempt, *at, *delay), (n, secs(t), secs(d)), "{failure}");
            assert!(failure.contains("connection refused"), "{failure}");
            assert_eq!(
                **ce_id, *delivery.stamp.id,
                "every attempt is the same event"
            );
        }
        assert_eq!(answered_at, secs(30));
        assert_eq!(delivery.attempts, 6);
        assert_eq!(delivery.result.unwrap().status, 200);
        let posts = hook.posts();
        assert_eq!(posts.len(), 1, "{posts:?}");
        assert_eq!(header(&posts[0], "ce-id"), &*delivery.stamp.id);
        assert_eq!(header(&posts[0], "ce-eventName"), "disconnected");
    }

    #[tokio::test]
    async fn a_call_sent_again_is_the_same_request_and_once_is_not_retried() {
        let hook = TestWebhook::start(events_answered(|| Reply::status(503))).await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        let e = event(EventKind::Connected, "{}");
        let call = upstream.call(&s, &e).once();
        let first = call.send(|_| panic!("once is never retried")).await;
        let again = call.send(|_| panic!("once is never retried")).await;
        assert_eq!((first.attempts, again.attempts), (1, 1));
        assert_eq!(first.stamp.id, again.stamp.id);
        let posts = hook.posts();
        assert_eq!(posts.len(), 2);
        for name in ["ce-id", "ce-time", "ce-signature"] {
            assert_eq!(header(&posts[0], name), header(&posts[1], name), "{name}");
        }
        assert_eq!(header(&posts[0], "ce-id"), &*first.stamp.id);
        assert_eq!(posts[0].body, posts[1].body);
    }

    #[tokio::test]
    async fn retries_give_up_with_the_last_answer() {
        let hook = TestWebhook::start(events_answered(|| Reply::status(503))).await;
        let response = deliver_to(&hook, EventKind::Disconnected, r#"{"reason":""}"#)
            .await
            .unwrap();
        assert_eq!(response.status, 503);
        assert_eq!(response.reason(), "Service Unavailable");
        assert_eq!(response.attempts, 4, "one try and three retries");
        assert_eq!(hook.count(Method::POST), 4);
        assert!(response.hint().is_some());
    }

    #[tokio::test]
    async fn other_4xx_are_not_retried() {
        for status in [400, 404, 429] {
            let hook = TestWebhook::start(events_answered(move || Reply::status(status))).await;
            let response = deliver_to(&hook, EventKind::Connected, "{}").await.unwrap();
            assert_eq!((response.status, response.attempts), (status, 1));
            assert_eq!(hook.count(Method::POST), 1);
        }
    }

    #[tokio::test]
    async fn blocking_events_are_never_retried() {
        let hook = TestWebhook::start(events_answered(|| {
            Reply::status(500).body("Internal error")
        }))
        .await;
        let response = deliver_to(&hook, EventKind::Connect, "{}").await.unwrap();
        assert_eq!(response.status, 500);
        assert_eq!(response.attempts, 1);
        assert_eq!(&response.body[..], b"Internal error");
        assert_eq!(hook.count(Method::POST), 1);
    }

    async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        addr
    }

    #[tokio::test]
    async fn connection_refused_is_unreachable() {
        let addr = closed_port().await;
        let upstream = Upstream::new();
        let mut s = settings(format!("http://{addr}/api/{{hub}}/{{event}}"));
        s.preflight = false;
        let err = deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap_err();
        let WebhookError::Unreachable { cause, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(cause.contains("connection refused"), "{cause}");
        assert!(cause.contains(&addr.to_string()), "{cause}");

        // Non-blocking events retry network errors, then report the last one.
        let err = deliver(&upstream, &s, &event(EventKind::Connected, "{}"))
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookError::Unreachable { .. }), "{err}");

        // With the preflight on, the refusal surfaces as a preflight failure with the same hint.
        s.preflight = true;
        let err = deliver(&upstream, &s, &event(EventKind::Connect, "{}"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert!(
            err.hint().unwrap().contains("nothing is listening"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn sequential_calls_reuse_one_connection() {
        let hook = TestWebhook::start(happy).await;
        let upstream = Upstream::new();
        let s = settings(hook.template());
        for i in 0..5 {
            let e = event(EventKind::User(format!("e{i}")), "42[\"e\"]");
            assert_eq!(deliver(&upstream, &s, &e).await.unwrap().status, 200);
        }
        deliver(&upstream, &s, &event(EventKind::Connected, "{}"))
            .await
            .unwrap();
        assert_eq!(hook.seen().len(), 7, "one preflight and six events");
        assert_eq!(hook.connections.load(Ordering::SeqCst), 1);
        assert!(hook.seen().iter().all(|s| s.connection == 0));
    }

    #[tokio::test]
    async fn oversized_answers_are_errors() {
        let too_large = || Reply::status(200).body(vec![b'x'; MAX_RESPONSE_BODY + 1]);
        let hook = TestWebhook::start(events_answered(too_large)).await;
        let err = deliver_to(&hook, EventKind::Connect, "{}")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                WebhookError::ResponseTooLarge {
                    status: 200,
                    limit: MAX_RESPONSE_BODY,
                    ..
                }
            ),
            "{err}"
        );

        let at_limit = || Reply::status(200).body(vec![b'x'; MAX_RESPONSE_BODY]);
        let hook = TestWebhook::start(events_answered(at_limit)).await;
        let response = deliver_to(&hook, EventKind::Connect, "{}").await.unwrap();
        assert_eq!(
            response.body.len(),
            MAX_RESPONSE_BODY,
            "the limit itself is fine"
        );
    }

    #[tokio::test]
    async fn https_templates_fail_before_any_io() {
        let upstream = Upstream::new();
        let s = settings("https://app.azurewebsites.net/runtime/webhooks/socketio".into());
        for result in [
            deliver(&upstream, &s, &event(EventKind::Connect, "{}")).await,
            deliver(&upstream, &s, &event(EventKind::Connected, "{}")).await,
        ] {
            let err = result.unwrap_err();
            assert!(
                err.to_string().contains("https webhooks are not supported"),
                "{err}"
            );
        }
    }

    #[test]
    fn preflight_cache_is_bounded() {
        let mut cache = PreflightCache::default();
        let now = Instant::now();
        for i in 0..PREFLIGHT_CACHE_CAP {
            let entry = cache.entry("t", &format!("hub{i}"), now).unwrap();
            entry.valid_until = Some(now + PREFLIGHT_TTL);
        }
        // Full of valid entries: nothing to evict, so no new entry.
        assert!(cache.entry("t", "one-more", now).is_none());
        assert_eq!(cache.len, PREFLIGHT_CACHE_CAP);
        // Once they expire, they make room.
        let later = now + PREFLIGHT_TTL + Duration::from_secs(1);
        assert!(cache.entry("t", "one-more", later).is_some());
        assert_eq!(cache.len, 1);
    }

    impl Upstream {
        /// Test hook: forget every cached preflight success, as if the TTL had passed.
        fn expire_preflights(&self) {
            let mut cache = self.lock_cache();
            for hubs in cache.by_template.values_mut() {
                for entry in hubs.values_mut() {
                    entry.valid_until = None;
                }
            }
        }
    }
}
