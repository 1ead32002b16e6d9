//! `POST /_emu/resend {"seq":N}`: sends a past webhook call to the handler again, built from
//! its session line as the emulator builds every call (re-signed, a fresh `ce-id` and
//! `ce-time`), once, without retries or faults, and answers the old and the new outcome side by
//! side. The new call appears on the timeline with `"origin":"inspector"`; it is not recorded
//! and not linted, since no client caused it.

use http::StatusCode;
use serde_json::{Value, json};

use crate::service::Service;
use crate::socketio::exchange;
use crate::traffic::TrafficEvent;
use crate::traffic::hop::INSPECTOR;
use crate::traffic::ring::KeptCall;
use crate::upstream::WebhookEvent;
use crate::upstream::client::Delivery;

use super::AdminError;
use super::timeline::{answer_json, header_pairs, ring};

/// The `seq` of a resend request body.
fn requested_seq(body: &[u8]) -> Result<u64, AdminError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("seq").and_then(Value::as_u64))
        .ok_or_else(|| {
            AdminError::new(
                StatusCode::BAD_REQUEST,
                "InvalidResend",
                "the body must be {\"seq\": <the seq of a webhook entry>}".into(),
            )
        })
}

/// The webhook call of entry `seq`: the event to send again, and the old call.
fn recorded_call(service: &Service, seq: u64) -> Result<(WebhookEvent, KeptCall), AdminError> {
    let entry = ring(service)?.get(seq).map_err(|_| {
        AdminError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("entry {seq} is not in the inspector's ring"),
        )
    })?;
    let old = entry.webhook().ok_or_else(|| not_a_call(seq))?;
    Ok((WebhookEvent::recorded(&old.call), old))
}

fn not_a_call(seq: u64) -> AdminError {
    AdminError::new(
        StatusCode::BAD_REQUEST,
        "NotAWebhookCall",
        format!("entry {seq} is not a webhook call"),
    )
}

/// Answers one resend request; `Ok` carries the answer and the admin log line's message.
pub async fn run(service: &Service, body: &[u8]) -> Result<(Value, String), AdminError> {
    let seq = requested_seq(body)?;
    let (event, old) = recorded_call(service, seq)?;
    let Some(settings) = service.route(&event.hub, &event.kind) else {
        return Err(AdminError::new(
            StatusCode::CONFLICT,
            "NoHandler",
            format!(
                "no event handler of hub `{}` wants `{}` now",
                event.hub,
                event.kind.event_name()
            ),
        ));
    };
    let delivery = service
        .upstream()
        .call(&settings, &event)
        .once()
        .send(|_| {})
        .await;
    let result = &delivery.result;
    let answer = result.as_ref().ok().map(|r| {
        json!({
            "status": r.status,
            "headers": header_pairs(&r.headers()),
            "body": String::from_utf8_lossy(&r.body),
            "latencyMs": crate::traffic::millis(r.latency),
        })
    });
    let error_text = result.as_ref().err().map(|e| e.to_string());
    let new_seq = report(service, &event, &delivery);
    let message = format!(
        "resent `{}` of socket {} (entry {seq})",
        event.kind.event_name(),
        event.socket_id
    );
    Ok((
        json!({
            "seq": new_seq,
            "old": answer_json(&old),
            "new": answer,
            "error": error_text,
        }),
        message,
    ))
}

/// Shows the new call on the timeline, marked as the inspector's: only the ring keeps it, out
/// of the recording and exports, and no observer (lint, counts) hears of it. Its `seq`.
fn report(service: &Service, event: &WebhookEvent, delivery: &Delivery) -> Option<u64> {
    let mut hop = exchange::hop(event, delivery, None);
    hop.origin = Some(INSPECTOR);
    service.traffic().hop(TrafficEvent::Webhook(&hop))
}
