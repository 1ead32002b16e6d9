//! One webhook exchange as traffic: its live-log line (always when it failed, otherwise unless
//! quiet), its session line for the recording, and what the inspector keeps to show the call
//! as it was sent.

use crate::service::Service;
use crate::traffic::call_details::CallDetails;
use crate::traffic::record::{RecordLine, RecordedResponse};
use crate::traffic::ring::Attachment;
use crate::traffic::{TrafficEvent, millis};
use crate::upstream::client::Delivery;
use crate::upstream::{EventKind, WebhookError, WebhookEvent, WebhookResponse, body_preview};

/// Characters of a response body shown in the log.
const LOG_BODY_CHARS: usize = 120;

/// How one webhook call was made, beyond its [`Delivery`], for its log line and session line.
#[derive(Debug)]
pub struct Sent {
    /// The recording clock when the call began (see [`start_clock`]).
    pub started: Option<f64>,
    /// Made by the inspector (a resend), not for a client: logged, kept out of the recording.
    pub by_inspector: bool,
}

impl Sent {
    /// A call made for a client's socket.
    pub fn new(started: Option<f64>) -> Sent {
        Sent {
            started,
            by_inspector: false,
        }
    }
}

/// Logs one delivery (see [`log_exchange`]) and returns its outcome.
pub fn log(
    service: &Service,
    event: &WebhookEvent,
    delivery: Delivery,
    sent: Sent,
) -> Result<WebhookResponse, WebhookError> {
    let _ = log_exchange(service, event, &delivery, sent);
    delivery.result
}

/// Logs one webhook exchange (always when it failed, otherwise unless quiet), appends it to
/// the recording and gives the inspector what it needs to show the call as sent. Returns the
/// inspector's `seq` of the exchange, when it keeps one.
pub fn log_exchange(
    service: &Service,
    event: &WebhookEvent,
    delivery: &Delivery,
    sent: Sent,
) -> Option<u64> {
    let result = &delivery.result;
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
    let shown = exchange_event(event, result, delivery.attempts, sent.by_inspector);
    let attachment = CallDetails::new(
        delivery.stamp.id.clone(),
        delivery.stamp.time,
        result.as_ref().ok().map(|r| &r.headers),
    );
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
    failed_attempts: u32,
    by_inspector: bool,
) -> TrafficEvent {
    let origin = by_inspector.then_some("inspector");
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
pub fn start_clock(service: &Service) -> Option<f64> {
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
        && super::webhook::connect_verdict(&Ok(r.clone())).is_err_and(|text| text != r.reason)
}
