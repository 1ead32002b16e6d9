//! One webhook exchange as one hop ([`WebhookHop`]): what was sent, what came back, and what
//! the live log and the inspector show of it, borrowed from the exchange and handed to the
//! traffic sinks once (each renders or copies what it needs).

use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::traffic::hop::{Answer, Detail, WebhookHop};
use crate::traffic::millis;
use crate::upstream::client::Delivery;
use crate::upstream::{EventKind, WebhookError, WebhookEvent, WebhookResponse};

/// The hop of one webhook exchange, borrowed from it. `started` is the recording clock when
/// the call began (see [`start_clock`]).
pub fn hop<'a>(
    event: &'a WebhookEvent,
    delivery: &'a Delivery,
    started: Option<f64>,
) -> WebhookHop<'a> {
    let result = &delivery.result;
    let (url, attempts, detail, hint) = match result {
        Ok(r) => (
            r.url.as_str(),
            r.attempts,
            Detail::Answer(&r.body),
            if deliberate_refusal(event, r) {
                None
            } else {
                r.hint()
            },
        ),
        Err(e) => (
            e.url(),
            delivery.attempts,
            Detail::Failure(gave_up(e, delivery.attempts)),
            e.hint(),
        ),
    };
    let response = result.as_ref().ok();
    WebhookHop {
        hub: &event.hub,
        event: event.kind.event_name(),
        ce_type: event.kind.ce_type(),
        namespace: &event.namespace,
        socket_id: &event.socket_id,
        connection_id: &event.connection_id,
        user_id: event.user_id.as_deref(),
        body: &event.body,
        response: response.map(|r| Answer {
            status: r.status,
            content_type: r.content_type.as_deref(),
            body: &r.body,
            latency_ms: millis(r.latency),
        }),
        error: result.as_ref().err().map(|e| e.to_string()),
        url,
        attempts,
        detail,
        hint,
        origin: None,
        started,
        ce_id: &delivery.stamp.id,
        ce_time: delivery.stamp.time,
        answer_headers: response.map(|r| &r.headers),
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
        traffic.emit(TrafficEvent::Webhook(&hop(event, &delivery, started)));
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
        && super::webhook::connect_verdict(&Ok(r.clone())).is_err_and(|text| text != r.reason)
}
