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

/// One webhook exchange, from which its live-log event, its session line and what the
/// inspector keeps are each made.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub event: &'a WebhookEvent,
    pub delivery: &'a Delivery,
    /// The recording clock when the call began (see [`start_clock`]).
    pub started: Option<f64>,
}

impl Exchange<'_> {
    /// The live-log event.
    pub fn shown(&self) -> TrafficEvent {
        let (event, result) = (self.event, &self.delivery.result);
        let (url, status, latency_ms, attempts, detail, ok, hint) = match result {
            Ok(r) => (
                r.url.clone(),
                Some(r.status),
                millis(r.latency),
                r.attempts,
                body_preview(&r.body, LOG_BODY_CHARS),
                r.is_success(),
                if deliberate_refusal(event, r) {
                    None
                } else {
                    r.hint()
                },
            ),
            Err(e) => (
                e.url().to_owned(),
                None,
                0.0,
                self.delivery.attempts,
                gave_up(e, self.delivery.attempts),
                false,
                e.hint(),
            ),
        };
        TrafficEvent::Webhook {
            hub: event.hub.clone(),
            event: event.kind.event_name().to_owned(),
            namespace: event.namespace.clone(),
            socket_id: event.socket_id.clone(),
            connection_id: event.connection_id.clone(),
            url,
            status,
            latency_ms,
            attempts,
            detail,
            ok,
            hint,
            origin: None,
        }
    }

    /// The session line, `now` being the recording's clock as the line is written: its `t` is
    /// when the call started, so REST calls made while it ran fall after it.
    pub fn line(&self, now: f64) -> RecordLine {
        let result = &self.delivery.result;
        let measured = result.as_ref().map(|r| millis(r.latency)).unwrap_or(0.0);
        let (t, latency_ms) = call_times(self.started, now, measured);
        exchange_line(self.event, result, t, latency_ms)
    }

    /// What the inspector's ring keeps with the entry, and the bytes it keeps.
    pub fn kept(&self) -> (Attachment, usize) {
        let stamp = &self.delivery.stamp;
        let headers = self.delivery.result.as_ref().ok().map(|r| &r.headers);
        let details = CallDetails::new(stamp.id.clone(), stamp.time, headers);
        let bytes = details.text_len();
        (Box::new(details), bytes)
    }
}

/// Logs one delivery of a client's socket (always when it failed, otherwise unless quiet),
/// appends it to the recording and gives the inspector what it needs to show the call as sent;
/// returns the delivery's outcome.
pub fn log(
    service: &Service,
    event: &WebhookEvent,
    delivery: Delivery,
    started: Option<f64>,
) -> Result<WebhookResponse, WebhookError> {
    let exchange = Exchange {
        event,
        delivery: &delivery,
        started,
    };
    let result = &delivery.result;
    service.hooks().webhooks.answered(event, result);
    let failed = !matches!(result, Ok(r) if r.is_success());
    let traffic = service.traffic();
    if !failed && !traffic.verbose() {
        traffic.record(|now| exchange.line(now));
    } else {
        let kept = Some(exchange.kept());
        let _ = traffic.report(exchange.shown(), |now| exchange.line(now), true, kept);
    }
    delivery.result
}

/// The failure shown for a call that got no answer.
fn gave_up(error: &WebhookError, attempts: u32) -> String {
    if attempts > 1 {
        format!("{error}; gave up after {attempts} attempts, the event was dropped")
    } else {
        error.to_string()
    }
}

/// The `t` of a session line (when the call started) and its latency. Under `--seed` both come
/// from the logical clock: the latency is the ticks the call spanned.
fn call_times(started: Option<f64>, now: f64, measured: f64) -> (f64, f64) {
    match started {
        Some(start) => (start, now - start),
        None => ((now - measured).max(0.0), measured),
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
