//! One webhook exchange as one hop ([`WebhookHop`]): what was sent, what came back, and what
//! the live log and the inspector show of it, built once and handed to the traffic sinks.

use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::traffic::call_details::CallDetails;
use crate::traffic::hop::WebhookHop;
use crate::traffic::millis;
use crate::traffic::record::{RecordedEvent, RecordedResponse};
use crate::upstream::client::Delivery;
use crate::upstream::{EventKind, WebhookError, WebhookEvent, WebhookResponse, body_preview};

/// Characters of a response body shown in the log.
const LOG_BODY_CHARS: usize = 120;

/// The hop of one webhook exchange. `started` is the recording clock when the call began
/// (see [`start_clock`]).
pub fn hop(event: &WebhookEvent, delivery: &Delivery, started: Option<f64>) -> WebhookHop {
    let result = &delivery.result;
    let (url, attempts, detail, hint) = match result {
        Ok(r) => (
            r.url.to_string(),
            r.attempts,
            body_preview(&r.body, LOG_BODY_CHARS),
            if deliberate_refusal(event, r) {
                None
            } else {
                r.hint()
            },
        ),
        Err(e) => (
            e.url().to_owned(),
            delivery.attempts,
            gave_up(e, delivery.attempts),
            e.hint(),
        ),
    };
    let stamp = &delivery.stamp;
    let headers = result.as_ref().ok().map(WebhookResponse::headers);
    WebhookHop {
        call: recorded_event(event),
        response: result.as_ref().ok().map(|r| RecordedResponse {
            status: r.status,
            content_type: r.content_type().map(String::from),
            body: String::from_utf8_lossy(&r.body).into_owned(),
            latency_ms: millis(r.latency),
        }),
        error: result.as_ref().err().map(|e| e.to_string()),
        url,
        attempts,
        detail,
        hint,
        origin: None,
        started,
        details: CallDetails::new(stamp.id.to_string(), stamp.time, headers.as_ref()),
    }
}

/// The event as a session line records it.
fn recorded_event(event: &WebhookEvent) -> RecordedEvent {
    RecordedEvent {
        hub: event.hub.clone(),
        event: event.kind.event_name().to_owned(),
        ce_type: event.kind.ce_type().to_owned(),
        namespace: event.namespace.clone(),
        socket_id: event.socket_id.clone(),
        connection_id: event.connection_id.clone(),
        user_id: event.user_id.as_deref().map(str::to_owned),
        body: String::from_utf8_lossy(&event.body).into_owned(),
    }
}

/// Reports one delivery of a client's socket as one hop (shown always when it failed,
/// otherwise unless quiet; recorded; kept by the inspector); returns the delivery's outcome.
pub fn log(
    service: &Service,
    event: &WebhookEvent,
    delivery: Delivery,
    started: Option<f64>,
) -> Result<WebhookResponse, WebhookError> {
    service.hooks().webhooks.answered(event, &delivery.result);
    let failed = !matches!(&delivery.result, Ok(r) if r.is_success());
    let traffic = service.traffic();
    if failed || traffic.verbose() || traffic.recording() {
        traffic.emit(TrafficEvent::Webhook(Box::new(hop(
            event, &delivery, started,
        ))));
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

/// The recording's logical clock when a call starts, under `--seed` (`None` otherwise: the
/// wall-clock recording derives the start from the measured latency).
pub fn start_clock(service: &Service) -> Option<f64> {
    if service.traffic().deterministic() {
        service.traffic().clock_ms()
    } else {
        None
    }
}

/// A connect answered 4xx with a short text: the handler refused on purpose, no hint needed.
fn deliberate_refusal(event: &WebhookEvent, r: &WebhookResponse) -> bool {
    event.kind == EventKind::Connect
        && (400..500).contains(&r.status)
        && super::webhook::connect_verdict(&Ok(r.clone())).is_err_and(|text| text != r.reason())
}
