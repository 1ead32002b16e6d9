//! The Socket.IO layer's webhook calls: building each [`WebhookEvent`], calling the handler
//! from the socket's lane ([`super::lane`]) and reading the answer the way the cloud does: the
//! connect verdict (docs/protocol.md §14 decision 6) and the packets a user event's 200 body
//! carries back to the client (docs/protocol.md §14 decision 10). Fault rules are applied by
//! `faults`, the exchange is logged by [`super::exchange`].

use std::sync::Arc;

use bytes::Bytes;

use super::exchange;
use super::faults;
use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::upstream::client::Retry;
use crate::upstream::cloudevents::RequestCache;
use crate::upstream::ledger::Owed;
pub use crate::upstream::user_event_reply;
use crate::upstream::{
    EventKind, Packets, UpstreamSettings, WebhookError, WebhookEvent, WebhookResponse,
};

/// The longest webhook body used verbatim as a connect refusal message.
const MAX_REFUSAL_TEXT: usize = 200;

/// Who a call is about.
#[derive(Debug, Clone)]
pub struct Caller {
    pub hub: Arc<str>,
    pub connection_id: Arc<str>,
    /// Shared with every event of the connection (kept once, counted once by its lanes).
    pub user_id: Option<Arc<str>>,
}

impl Caller {
    /// The event for one socket: its names are shared with the socket, not copied.
    pub fn event(
        &self,
        kind: EventKind,
        namespace: &Arc<str>,
        socket_id: &Arc<str>,
        body: Bytes,
    ) -> WebhookEvent {
        WebhookEvent {
            hub: self.hub.clone(),
            kind,
            connection_id: self.connection_id.clone(),
            namespace: namespace.clone(),
            socket_id: socket_id.clone(),
            user_id: self.user_id.clone(),
            body,
        }
    }
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
/// wants the event. `requests` is the socket's request template (its lane keeps it).
pub async fn call(
    service: &Service,
    event: &WebhookEvent,
    requests: &mut RequestCache,
) -> Option<Result<WebhookResponse, WebhookError>> {
    let settings = route(service, event)?;
    let plan = faults::plan(service, event, &settings).await;
    if let Some(answer) = plan.instead {
        return Some(answer);
    }
    let started = exchange::start_clock(service);
    let delivery = service
        .upstream()
        .call_cached(&settings, event, requests)
        .send(|_| {})
        .await;
    let result = exchange::log(service, event, delivery, started);
    Some(plan.outcome(result))
}

/// Delivers `connected` or `disconnected` with retries (docs/protocol.md §14 decision 23), in the caller's lane so
/// that the socket's next event waits for it (docs/protocol.md §14 decision 20). `owed` is the event's ledger entry:
/// settled when the webhook accepts it (or no handler wants it), given up after the last retry.
pub async fn deliver(
    service: &Service,
    event: &WebhookEvent,
    owed: Owed,
    requests: &mut RequestCache,
) {
    let Some(settings) = route(service, event) else {
        return;
    };
    let plan = faults::plan(service, event, &settings).await;
    if plan.instead.is_some() {
        // `status` and `drop`: the handler is not called.
        return;
    }
    // `twice` sends the same delivery again, as at-least-once does: one call, so the same
    // `ce-id`, `ce-time`, signature and body both times.
    let call = service.upstream().call_cached(&settings, event, requests);
    let mut delivered = false;
    for _ in 0..plan.sends {
        let started = exchange::start_clock(service);
        let retrying = |retry: Retry<'_>| retry_notice(service, event, &retry);
        let delivery = call.send(retrying).await;
        let result = exchange::log(service, event, delivery, started);
        delivered |= matches!(&result, Ok(r) if r.is_success());
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
pub async fn user_event(
    service: &Service,
    event: &WebhookEvent,
    requests: &mut RequestCache,
) -> Packets {
    let Some(Ok(response)) = call(service, event, requests).await else {
        return Packets::default();
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
                .content_type()
                .as_deref()
                .is_none_or(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/"));
            let text = std::str::from_utf8(&r.body).unwrap_or("").trim();
            if plain
                && !text.is_empty()
                && text.chars().count() <= MAX_REFUSAL_TEXT
                && !text.chars().any(char::is_control)
            {
                Err(text.to_owned())
            } else if !r.reason().is_empty() {
                Err(r.reason().to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn response(status: u16, reason: &str, ct: Option<&str>, body: &str) -> WebhookResponse {
        WebhookResponse {
            url: "http://localhost/x".into(),
            status,
            head: crate::upstream::ResponseHead::new(
                status,
                reason,
                &ct.map(|ct| ("content-type", ct))
                    .into_iter()
                    .collect::<Vec<_>>(),
            ),
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
        (reply.packets.into_iter().collect(), reply.violations.len())
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
            reply.packets.clone().into_iter().collect::<Vec<_>>(),
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
