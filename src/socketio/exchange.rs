//! One webhook exchange as one hop ([`WebhookHop`]): what was sent, what came back, and what
//! the live log and the inspector show of it, borrowed from the exchange and handed to the
//! traffic sinks once (each renders or copies what it needs).

use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::traffic::hop::{Answer, Detail, HeaderLines, WebhookHop};
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
            &*r.url,
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
            content_type: r.content_type(),
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
        answer_headers: response.map(|r| &r.head as &dyn HeaderLines),
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
        && super::webhook::connect_verdict(&Ok(r.clone())).is_err_and(|text| text != r.reason())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;

    use super::*;
    use crate::traffic::ring::Ring;
    use crate::traffic::{Format, Traffic};
    use crate::upstream::ResponseHead;
    use crate::upstream::cloudevents::CeStamp;

    fn event() -> WebhookEvent {
        WebhookEvent {
            hub: "chat".into(),
            kind: EventKind::User("message".into()),
            connection_id: "c1".into(),
            namespace: "/".into(),
            socket_id: "s1".into(),
            user_id: Some("ann".into()),
            body: Bytes::from_static(b"42[\"message\",\"hi\"]"),
        }
    }

    fn delivery() -> Delivery {
        Delivery {
            stamp: CeStamp::new("7", SystemTime::UNIX_EPOCH),
            result: Ok(WebhookResponse {
                url: "http://127.0.0.1:1/api/events".into(),
                status: 200,
                head: ResponseHead::new(200, "OK", &[("content-type", "text/plain")]),
                body: Bytes::from_static(b"43[\"ok\"]"),
                latency: Duration::from_millis(1),
                attempts: 1,
            }),
            attempts: 1,
        }
    }

    /// The serving path of a default `serve --quiet` (the inspector's ring on, nothing shown,
    /// nothing recorded): the hop is built from borrows and encoded into the ring with no
    /// allocation (counted on this thread).
    #[test]
    fn a_hop_only_the_ring_wants_allocates_nothing() {
        let (event, delivery) = (event(), delivery());
        let live = |quiet: bool| {
            let ring = Some(Ring::new(1 << 20));
            Traffic::live(Format::Pretty, quiet, Box::new(std::io::sink()), None, ring).unwrap()
        };
        let report = |traffic: &Traffic| {
            allocation_counter::measure(|| {
                traffic.emit(TrafficEvent::Webhook(&hop(&event, &delivery, None)));
            })
        };
        // The count sees this thread's allocations: a live-log line, when shown, is some.
        let shown = report(&live(false));
        assert!(shown.count_total > 0, "{shown:?}");
        let quiet = live(true);
        let counted = report(&quiet);
        assert_eq!(counted.count_total, 0, "{counted:?}");
        // The hop was kept, whole.
        let kept = quiet.ring().unwrap().get(1).unwrap().webhook().unwrap();
        assert_eq!(kept.call.body, "42[\"message\",\"hi\"]");
        assert_eq!(kept.details.ce_id, "7");
    }
}
