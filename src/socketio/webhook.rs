//! The Socket.IO layer's webhook calls: building each [`WebhookEvent`], delivering it from the
//! socket's lane ([`super::lane`]), logging the exchange as one traffic line,
//! and reading the answer the way the cloud does: the connect verdict (docs/protocol.md §14 decision 6) and the
//! packet a user event's 200 body carries back to the client (docs/protocol.md §14 decision 10). Fault-injection
//! rules, picked through the service's fault hook, are applied here, just before a call would
//! leave.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::fault::{Action, FaultRule};
use crate::hooks::FaultInjector;
use crate::service::Service;
use crate::traffic::record::{RecordLine, RecordedResponse};
use crate::traffic::ring::Attachment;
use crate::traffic::{TrafficEvent, millis};
use crate::upstream::client::Retry;
use crate::upstream::cloudevents::CeStamp;
use crate::upstream::ledger::Owed;
pub use crate::upstream::user_event_reply;
use crate::upstream::{
    CallDetails, EventKind, UpstreamSettings, WebhookError, WebhookEvent, WebhookResponse,
    body_preview,
};

/// Characters of a response body shown in the log.
const LOG_BODY_CHARS: usize = 120;
/// The longest webhook body used verbatim as a connect refusal message.
const MAX_REFUSAL_TEXT: usize = 200;

/// Who a call is about.
#[derive(Debug, Clone)]
pub struct Caller {
    pub hub: String,
    pub connection_id: Arc<str>,
    /// Shared with every event of the connection (kept once, counted once by its lanes).
    pub user_id: Option<Arc<str>>,
}

impl Caller {
    /// The event for one socket.
    pub fn event(
        &self,
        kind: EventKind,
        namespace: &str,
        socket_id: &str,
        body: Bytes,
    ) -> WebhookEvent {
        WebhookEvent {
            hub: self.hub.clone(),
            kind,
            connection_id: self.connection_id.to_string(),
            namespace: namespace.to_owned(),
            socket_id: socket_id.to_owned(),
            user_id: self.user_id.clone(),
            body,
        }
    }
}

/// How one webhook call was made, for its log line, its session line and the inspector.
#[derive(Debug)]
pub struct Sent {
    /// The recording clock when the call began (see `start_clock`).
    pub started: Option<f64>,
    /// Its `ce-id` and `ce-time`.
    pub stamp: CeStamp,
    /// Attempts made when it failed.
    pub failed_attempts: u32,
    /// Made by the inspector (a resend), not for a client: logged, kept out of the recording.
    pub by_inspector: bool,
}

impl Sent {
    /// A call made for a client's socket.
    pub fn new(started: Option<f64>, stamp: CeStamp, failed_attempts: u32) -> Sent {
        Sent {
            started,
            stamp,
            failed_attempts,
            by_inspector: false,
        }
    }
}

/// Logs one webhook exchange (always when it failed, otherwise unless quiet), appends it to
/// the recording and gives the inspector what it needs to show the call as sent. Returns the
/// inspector's `seq` of the exchange, when it keeps one.
pub fn log_exchange(
    service: &Service,
    event: &WebhookEvent,
    result: &Result<WebhookResponse, WebhookError>,
    sent: Sent,
) -> Option<u64> {
    if !sent.by_inspector {
        service.hooks().webhooks.answered(event, result);
    }
    // `t` is when the call started, so REST calls made while it ran fall after it.
    let measured = result.as_ref().map(|r| millis(r.latency)).unwrap_or(0.0);
    let line = |now| {
        let (t, latency_ms) = call_times(sent.started, now, measured);
        exchange_line(event, result, t, latency_ms)
    };
    let failed = !matches!(result, Ok(r) if r.is_success());
    let traffic = service.traffic();
    if !failed && !traffic.verbose() {
        traffic.record(line);
        return None;
    }
    let shown = exchange_event(event, result, &sent);
    let attachment = CallDetails::new(sent.stamp, result.as_ref().ok());
    let bytes = attachment.text_len();
    let kept = Some((Box::new(attachment) as Attachment, bytes));
    traffic.report(shown, line, !sent.by_inspector, kept)
}

/// The `t` of a session line (when the call started) and its latency. Under `--seed` both come
/// from the logical clock: the latency is the ticks the call spanned.
fn call_times(started: Option<f64>, now: f64, measured: f64) -> (f64, f64) {
    match started {
        Some(start) => (start, now - start),
        None => ((now - measured).max(0.0), measured),
    }
}

/// The live-log event of one exchange.
fn exchange_event(
    event: &WebhookEvent,
    result: &Result<WebhookResponse, WebhookError>,
    sent: &Sent,
) -> TrafficEvent {
    let failed_attempts = sent.failed_attempts;
    let origin = sent.by_inspector.then_some("inspector");
    match result {
        Ok(r) => TrafficEvent::Webhook {
            hub: event.hub.clone(),
            event: event.kind.event_name().to_owned(),
            namespace: event.namespace.clone(),
            socket_id: event.socket_id.clone(),
            connection_id: event.connection_id.clone(),
            url: r.url.clone(),
            status: Some(r.status),
            latency_ms: millis(r.latency),
            attempts: r.attempts,
            detail: body_preview(&r.body, LOG_BODY_CHARS),
            ok: r.is_success(),
            hint: if deliberate_refusal(event, r) {
                None
            } else {
                r.hint()
            },
            origin,
        },
        Err(e) => TrafficEvent::Webhook {
            hub: event.hub.clone(),
            event: event.kind.event_name().to_owned(),
            namespace: event.namespace.clone(),
            socket_id: event.socket_id.clone(),
            connection_id: event.connection_id.clone(),
            url: e.url().to_owned(),
            status: None,
            latency_ms: 0.0,
            attempts: failed_attempts,
            detail: if failed_attempts > 1 {
                format!("{e}; gave up after {failed_attempts} attempts, the event was dropped")
            } else {
                e.to_string()
            },
            ok: false,
            hint: e.hint(),
            origin,
        },
    }
}

/// The recording's logical clock when a call starts, under `--seed` (`None` otherwise: the
/// wall-clock recording derives the start from the measured latency).
fn start_clock(service: &Service) -> Option<f64> {
    if service.traffic().deterministic() {
        service.traffic().clock_ms()
    } else {
        None
    }
}

/// The recording line of one exchange.
fn exchange_line(
    event: &WebhookEvent,
    result: &Result<WebhookResponse, WebhookError>,
    t: f64,
    latency_ms: f64,
) -> RecordLine {
    RecordLine::Webhook {
        t,
        hub: event.hub.clone(),
        event: event.kind.event_name().to_owned(),
        ce_type: event.kind.ce_type().to_owned(),
        namespace: event.namespace.clone(),
        socket_id: event.socket_id.clone(),
        connection_id: event.connection_id.clone(),
        user_id: event.user_id.as_deref().map(str::to_owned),
        body: String::from_utf8_lossy(&event.body).into_owned(),
        response: result.as_ref().ok().map(|r| RecordedResponse {
            status: r.status,
            content_type: r.content_type.clone(),
            body: String::from_utf8_lossy(&r.body).into_owned(),
            latency_ms,
        }),
        error: result.as_ref().err().map(|e| e.to_string()),
    }
}

/// A connect answered 4xx with a short text: the handler refused on purpose, no hint needed.
fn deliberate_refusal(event: &WebhookEvent, r: &WebhookResponse) -> bool {
    event.kind == EventKind::Connect
        && (400..500).contains(&r.status)
        && connect_verdict(&Ok(r.clone())).is_err_and(|text| text != r.reason)
}

/// The handler for an event, or `None` (logged once per event name) when no handler of the
/// hub wants it: such an event is not sent (docs/protocol.md §5.1).
fn route(service: &Service, event: &WebhookEvent) -> Option<Arc<UpstreamSettings>> {
    let settings = service.route(&event.hub, &event.kind);
    let name = event.kind.event_name();
    if settings.is_none() && service.first_unrouted(&event.hub, name) {
        let outcome = match event.kind {
            EventKind::Connect => "sockets are accepted without a call",
            _ => "it is not sent",
        };
        service.traffic().emit(TrafficEvent::Warning {
            message: format!(
                "no event handler of hub `{}` wants `{name}`; {outcome} (said once per event name)",
                event.hub
            ),
            hint: Some(
                "add it to a handler's user-events or system-events in the config file".into(),
            ),
        });
    }
    settings
}

/// Delivers a blocking event (connect, user event) once and logs it; `None` when no handler
/// wants the event.
pub async fn call(
    service: &Service,
    event: &WebhookEvent,
) -> Option<Result<WebhookResponse, WebhookError>> {
    let settings = route(service, event)?;
    let fault = service
        .faults()
        .pick(&event.hub, event.kind.event_name(), &|a| {
            !matches!(a, Action::Twice | Action::DisconnectTransport)
        });
    if let Some(rule) = &fault
        && let Some(answer) = before(service.faults(), rule, event, &settings).await
    {
        return Some(answer);
    }
    let started = start_clock(service);
    let stamp = service.upstream().stamp();
    let result = service
        .upstream()
        .send_stamped(&settings, event, &stamp)
        .await;
    let _ = log_exchange(service, event, &result, Sent::new(started, stamp, 1));
    if fault.is_some_and(|r| r.action == Action::Timeout) {
        return Some(Err(timed_out(&settings)));
    }
    Some(result)
}

/// Delivers `connected` or `disconnected` with retries (docs/protocol.md §14 decision 23), in the caller's lane so
/// that the socket's next event waits for it (docs/protocol.md §14 decision 20). `owed` is the event's ledger entry:
/// settled when the webhook accepts it (or no handler wants it), given up after the last retry.
pub async fn deliver(service: &Service, event: &WebhookEvent, owed: Owed) {
    let Some(settings) = route(service, event) else {
        return;
    };
    let fault = service
        .faults()
        .pick(&event.hub, event.kind.event_name(), &|a| {
            *a != Action::DisconnectTransport
        });
    let mut times = 1;
    if let Some(rule) = &fault {
        if before(service.faults(), rule, event, &settings)
            .await
            .is_some()
        {
            // `status` and `drop`: the handler is not called.
            return;
        }
        if rule.action == Action::Twice {
            times = 2;
        }
    }
    let mut delivered = false;
    // `twice` sends the same delivery again, as at-least-once does: one stamp, so the same
    // `ce-id`, `ce-time`, signature and body both times.
    let stamp = service.upstream().stamp();
    for _ in 0..times {
        let started = start_clock(service);
        let retrying = |retry: Retry<'_>| retry_notice(service, event, &retry);
        let sent = service
            .upstream()
            .send_with_retries_stamped(&settings, event, &stamp, retrying)
            .await;
        let (result, attempts) = match sent {
            Ok(response) => (Ok(response), 1),
            Err(gave_up) => (Err(gave_up.error), gave_up.attempts),
        };
        delivered |= matches!(&result, Ok(r) if r.is_success());
        let _ = log_exchange(
            service,
            event,
            &result,
            Sent::new(started, stamp.clone(), attempts),
        );
    }
    if !delivered {
        owed.give_up();
    }
}

/// Says that a `connected` / `disconnected` attempt failed and when it is retried.
fn retry_notice(service: &Service, event: &WebhookEvent, retry: &Retry<'_>) {
    service.traffic().emit(TrafficEvent::Warning {
        message: format!(
            "webhook `{}` of socket {} (hub {}) failed on attempt {}: {}; retrying in {} with the same ce-id {}",
            event.kind.event_name(),
            event.socket_id,
            event.hub,
            retry.attempt,
            retry.failure(),
            crate::duration::format(retry.delay),
            retry.ce_id
        ),
        hint: Some("later events of this socket wait until it is delivered (order first)".into()),
    });
}

/// Delivers a user event and returns the packets its answer sends back to the client, in order
/// (decision 10: none when the call failed; a packet that breaks the contract is logged and left
/// out, the valid ones of the same answer still go).
pub async fn user_event(service: &Service, event: &WebhookEvent) -> Vec<String> {
    let Some(Ok(response)) = call(service, event).await else {
        return Vec::new();
    };
    let reply = user_event_reply(&response);
    for violation in &reply.violations {
        let what = if reply.several {
            "a packet of the webhook's answer"
        } else {
            "the webhook's answer"
        };
        service.traffic().emit(TrafficEvent::Warning {
            message: format!(
                "{what} to `{}` was not forwarded: {violation}",
                event.kind.event_name()
            ),
            hint: Some(
                "answer 200 with Engine.IO packets such as 43[\"ok\"] (text/plain, several joined by \\x1e), or 204 for no ack"
                    .into(),
            ),
        });
    }
    reply.packets
}

/// The `disconnected` body `{"reason":"…"}` (the key is always present, docs/protocol.md §5.3).
pub fn disconnected_body(reason: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "reason": reason }).to_string())
}

/// The connect verdict: `Ok` when accepted, else the refusal message for `44…` (docs/protocol.md §14 decision 6).
pub fn connect_verdict(result: &Result<WebhookResponse, WebhookError>) -> Result<(), String> {
    match result {
        Ok(r) if r.is_success() => Ok(()),
        Ok(r) => {
            let plain = r
                .content_type
                .as_deref()
                .is_none_or(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/"));
            let text = std::str::from_utf8(&r.body).unwrap_or("").trim();
            if plain
                && !text.is_empty()
                && text.chars().count() <= MAX_REFUSAL_TEXT
                && !text.chars().any(char::is_control)
            {
                Err(text.to_owned())
            } else if !r.reason.is_empty() {
                Err(r.reason.clone())
            } else {
                Err(format!("the connect handler answered {}", r.status))
            }
        }
        Err(WebhookError::Timeout { after, .. }) => Err(format!(
            "the connect handler did not answer within {}",
            humantime::format_duration(*after)
        )),
        Err(WebhookError::Preflight { .. }) => {
            Err("the event handler failed its abuse-protection check".into())
        }
        Err(WebhookError::ResponseTooLarge { .. }) => {
            Err("the connect handler's answer was too large to read".into())
        }
        Err(_) => Err("the connect handler could not be reached".into()),
    }
}

/// The error a `timeout` or `drop` fault stands in for.
fn timed_out(settings: &UpstreamSettings) -> WebhookError {
    WebhookError::Timeout {
        url: settings.url_template.clone(),
        after: settings.timeout,
    }
}

/// Applies `rule` just before a webhook call: marks it, waits for `delay`, and returns the
/// stand-in answer when the handler is not to be called (`status`, `drop`). `timeout` and
/// `twice` are applied by the caller after the call.
async fn before(
    faults: &dyn FaultInjector,
    rule: &FaultRule,
    event: &WebhookEvent,
    settings: &UpstreamSettings,
) -> Option<Result<WebhookResponse, WebhookError>> {
    let detail = match rule.action {
        Action::Delay(d) => format!("waiting {} before the call", crate::duration::format(d)),
        Action::Status(code) => format!("answered {code} on the handler's behalf; not sent"),
        Action::Timeout => "the handler's answer is discarded as if it timed out".into(),
        Action::Drop => "not sent".into(),
        Action::Twice => "delivered twice".into(),
        Action::DisconnectTransport => "transport dropped".into(),
    };
    faults.mark(rule, &event.hub, event.kind.event_name(), detail);
    match rule.action {
        Action::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Action::Status(status) => Some(Ok(stand_in(settings, status))),
        Action::Drop => Some(Err(timed_out(settings))),
        Action::Timeout | Action::Twice | Action::DisconnectTransport => None,
    }
}

/// The answer a `status` fault gives on the handler's behalf.
fn stand_in(settings: &UpstreamSettings, status: u16) -> WebhookResponse {
    WebhookResponse {
        url: settings.url_template.clone(),
        status,
        reason: http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_owned(),
        content_type: None,
        headers: http::HeaderMap::new(),
        body: Bytes::new(),
        latency: std::time::Duration::ZERO,
        attempts: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn response(status: u16, reason: &str, ct: Option<&str>, body: &str) -> WebhookResponse {
        WebhookResponse {
            url: "http://localhost/x".into(),
            status,
            reason: reason.into(),
            content_type: ct.map(str::to_owned),
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
            latency: Duration::ZERO,
            attempts: 1,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(connect_verdict(&Ok(response(200, "OK", None, ""))), Ok(()));
        assert_eq!(
            connect_verdict(&Ok(response(
                401,
                "Unauthorized",
                Some("text/plain"),
                "Invalid namespace"
            ))),
            Err("Invalid namespace".into())
        );
        assert_eq!(
            connect_verdict(&Ok(response(
                500,
                "Internal Server Error",
                Some("application/json"),
                "{}"
            ))),
            Err("Internal Server Error".into())
        );
        assert_eq!(
            connect_verdict(&Ok(response(403, "Forbidden", None, ""))),
            Err("Forbidden".into())
        );
    }

    /// The packets a body sends and how many it drops.
    fn reply(status: u16, body: &str) -> (Vec<String>, usize) {
        let reply = user_event_reply(&response(status, "", Some("text/plain"), body));
        (reply.packets, reply.violations.len())
    }

    #[test]
    fn replies() {
        let sent = |packets: &[&str]| packets.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            reply(200, "43/ns,7[\"ok\"]"),
            (sent(&["43/ns,7[\"ok\"]"]), 0)
        );
        assert_eq!(reply(204, ""), (sent(&[]), 0));
        assert_eq!(reply(200, ""), (sent(&[]), 0));
        assert_eq!(reply(200, "hello"), (sent(&[]), 1));
        assert_eq!(reply(200, "6"), (sent(&[]), 1));
        assert_eq!(reply(500, "43[1]"), (sent(&[]), 0));
    }

    #[test]
    fn a_reply_of_several_packets_sends_each_valid_one_in_order() {
        let body = "43/chat,3[\"ok\"]\u{1e}hello\u{1e}42/chat,[\"extra\",1]\u{1e}";
        let reply = user_event_reply(&response(200, "OK", Some("text/plain"), body));
        assert_eq!(
            reply.packets,
            ["43/chat,3[\"ok\"]", "42/chat,[\"extra\",1]"]
        );
        assert!(reply.several);
        assert_eq!(reply.violations.len(), 2, "{:?}", reply.violations);
        assert!(
            reply.violations[0].starts_with("packet 2 of the 4 "),
            "{reply:?}"
        );
        assert!(
            reply.violations[1].starts_with("packet 4 of the 4 "),
            "{reply:?}"
        );
        // One packet: the message speaks of the body.
        let one = user_event_reply(&response(200, "OK", None, "hello"));
        assert!(!one.several);
        assert!(
            one.violations[0].starts_with("the response body "),
            "{one:?}"
        );
    }
}
