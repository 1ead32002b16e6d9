//! Fault-injection rules applied to a socket's webhook events, all in one place: which rule a
//! call gets (picked through the service's fault hook), how it changes the call — waited for,
//! answered on the handler's behalf, not sent, its answer discarded, sent twice — and the
//! transport dropped after a socket's `connected`. Each applied rule is marked through the
//! hook, which reports it.

use bytes::Bytes;

use super::webhook::Caller;
use crate::config::fault::{Action, FaultRule};
use crate::service::Service;
use crate::upstream::{EventKind, UpstreamSettings, WebhookError, WebhookEvent, WebhookResponse};

/// What the fault rules make of one webhook call.
#[derive(Debug)]
pub struct Plan {
    /// The outcome the call has without calling the handler (`status`, `drop`).
    pub instead: Option<Result<WebhookResponse, WebhookError>>,
    /// How many times the same delivery is sent (2 for `twice`).
    pub sends: u32,
    /// The handler's answer is discarded as if it timed out (`timeout`, blocking events).
    discard: Option<WebhookError>,
}

impl Plan {
    /// The outcome of the call once the handler answered `result`.
    pub fn outcome(
        self,
        result: Result<WebhookResponse, WebhookError>,
    ) -> Result<WebhookResponse, WebhookError> {
        match self.discard {
            Some(error) => Err(error),
            None => result,
        }
    }
}

/// Picks the rule for `event`, marks it and applies what comes before the call (a `delay` is
/// waited out here). Blocking events never get `twice`; no call gets `disconnect-transport`,
/// which [`drops_transport`] applies after `connected`.
pub async fn plan(service: &Service, event: &WebhookEvent, settings: &UpstreamSettings) -> Plan {
    let blocking = event.kind.is_blocking();
    let faults = service.faults();
    let rule = faults.pick(&event.hub, event.kind.event_name(), &|a| match a {
        Action::Twice => !blocking,
        Action::DisconnectTransport => false,
        _ => true,
    });
    let mut plan = Plan {
        instead: None,
        sends: 1,
        discard: None,
    };
    let Some(rule) = rule else {
        return plan;
    };
    faults.mark(&rule, &event.hub, event.kind.event_name(), detail(&rule));
    match rule.action {
        Action::Delay(d) => tokio::time::sleep(d).await,
        Action::Status(status) => plan.instead = Some(Ok(stand_in(settings, status))),
        Action::Drop => plan.instead = Some(Err(timed_out(settings))),
        Action::Timeout if blocking => plan.discard = Some(timed_out(settings)),
        Action::Twice => plan.sends = 2,
        Action::Timeout | Action::DisconnectTransport => {}
    }
    plan
}

/// Whether a rule drops the transport of `caller`'s connection now that `socket_id` got its
/// `connected` (the rule is marked when it does).
pub fn drops_transport(service: &Service, caller: &Caller, socket_id: &str) -> bool {
    let event = EventKind::Connected.event_name();
    let faults = service.faults();
    let Some(rule) = faults.pick(&caller.hub, event, &|a| *a == Action::DisconnectTransport) else {
        return false;
    };
    let detail = format!(
        "dropping the transport of conn={} after socket {socket_id}'s connected",
        caller.connection_id
    );
    faults.mark(&rule, &caller.hub, event, detail);
    true
}

/// What a rule's mark says it does to a call.
fn detail(rule: &FaultRule) -> String {
    match rule.action {
        Action::Delay(d) => format!("waiting {} before the call", crate::duration::format(d)),
        Action::Status(code) => format!("answered {code} on the handler's behalf; not sent"),
        Action::Timeout => "the handler's answer is discarded as if it timed out".into(),
        Action::Drop => "not sent".into(),
        Action::Twice => "delivered twice".into(),
        Action::DisconnectTransport => "transport dropped".into(),
    }
}

/// The error a `timeout` or `drop` fault stands in for.
fn timed_out(settings: &UpstreamSettings) -> WebhookError {
    WebhookError::Timeout {
        url: settings.url_template.clone(),
        after: settings.timeout,
    }
}

/// The answer a `status` fault gives on the handler's behalf.
fn stand_in(settings: &UpstreamSettings, status: u16) -> WebhookResponse {
    WebhookResponse {
        url: settings.url_template.as_str().into(),
        status,
        head: crate::upstream::ResponseHead::new(status, "", &[]),
        body: Bytes::new(),
        latency: std::time::Duration::ZERO,
        attempts: 1,
    }
}
