//! One value per hop: the parts of a [`TrafficEvent`] that only some sinks render. A caller
//! builds one event and hands it to [`super::Traffic::emit`] once; the live log renders what it
//! shows ([`super::pretty`], [`super::json`]), the recorder the session line
//! ([`TrafficEvent::line`]), and the inspector's ring keeps the whole value, redacted
//! ([`TrafficEvent::redact`]), to render its timeline, details and exports on the reader's side.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::TrafficEvent;
use super::call_details::CallDetails;
use super::record::{RecordLine, RecordedEvent, RecordedResponse};
use super::redact;
use super::rest_call::RestCall;

/// The origin of a hop the inspector caused (a resend): shown, kept by the ring, never recorded.
pub const INSPECTOR: &str = "inspector";

/// One webhook exchange: the event sent, what came back, and what the live log and the
/// inspector show of it.
#[derive(Debug, Clone)]
pub struct WebhookHop {
    /// The event sent.
    pub call: RecordedEvent,
    /// The answer, its latency as measured.
    pub response: Option<RecordedResponse>,
    /// The failure, when there was no answer.
    pub error: Option<String>,
    pub url: String,
    pub attempts: u32,
    /// The start of the response body, or the failure when there was no response.
    pub detail: String,
    pub hint: Option<String>,
    /// [`INSPECTOR`] for a call the inspector made (a resend).
    pub origin: Option<&'static str>,
    /// The recording's logical clock when the call began (`serve --seed`), else `None`.
    pub started: Option<f64>,
    /// The call's `ce-id`, `ce-time` and answer headers, for the inspector's details.
    pub details: CallDetails,
}

impl WebhookHop {
    /// Whether the handler answered 2xx.
    pub fn ok(&self) -> bool {
        self.response
            .as_ref()
            .is_some_and(|r| (200..300).contains(&r.status))
    }

    fn latency_ms(&self) -> f64 {
        self.response.as_ref().map_or(0.0, |r| r.latency_ms)
    }

    /// The session line, `now` being the recording's clock as the line is written: its `t` is
    /// when the call started, so REST calls made while it ran fall after it.
    fn line(&self, now: f64) -> RecordLine {
        let (t, latency_ms) = call_times(self.started, now, self.latency_ms());
        RecordLine::Webhook {
            t,
            call: self.call.clone(),
            response: self.response.as_ref().map(|r| RecordedResponse {
                latency_ms,
                ..r.clone()
            }),
            error: self.error.clone(),
        }
    }
}

/// The live log's `webhook` object (`--format json`).
impl Serialize for WebhookHop {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let call = &self.call;
        let mut s = serializer.serialize_struct("Webhook", 13)?;
        s.serialize_field("hub", &call.hub)?;
        s.serialize_field("event", &call.event)?;
        s.serialize_field("namespace", &call.namespace)?;
        s.serialize_field("socketId", &call.socket_id)?;
        s.serialize_field("connectionId", &call.connection_id)?;
        s.serialize_field("url", &self.url)?;
        s.serialize_field("status", &self.response.as_ref().map(|r| r.status))?;
        s.serialize_field("latencyMs", &self.latency_ms())?;
        s.serialize_field("attempts", &self.attempts)?;
        s.serialize_field("detail", &self.detail)?;
        s.serialize_field("ok", &self.ok())?;
        if let Some(hint) = &self.hint {
            s.serialize_field("hint", hint)?;
        }
        if let Some(origin) = &self.origin {
            s.serialize_field("origin", origin)?;
        }
        s.end()
    }
}

/// The `t` of a session line (when the call started) and its latency. Under `--seed` both come
/// from the logical clock: the latency is the ticks the call spanned.
pub fn call_times(started: Option<f64>, now: f64, measured: f64) -> (f64, f64) {
    match started {
        Some(start) => (start, now - start),
        None => ((now - measured).max(0.0), measured),
    }
}

/// One REST call: the call as the handler sent it and what the live log says of it.
#[derive(Debug, Clone)]
pub struct RestHop {
    pub call: RestCall,
    /// The path as shown (the request's path, or what the operation targets).
    pub target: String,
    pub matched: Option<usize>,
    pub latency_ms: f64,
    /// A note for a successful call, or the error.
    pub message: Option<String>,
}

/// The live log's `rest` object (`--format json`).
impl Serialize for RestHop {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Rest", 8)?;
        s.serialize_field("method", self.call.method.as_str())?;
        s.serialize_field("operation", &self.call.operation)?;
        s.serialize_field("hub", &self.call.hub)?;
        s.serialize_field("target", &self.target)?;
        s.serialize_field("matched", &self.matched)?;
        s.serialize_field("status", &self.call.status)?;
        s.serialize_field("latencyMs", &self.latency_ms)?;
        if let Some(message) = &self.message {
            s.serialize_field("message", message)?;
        }
        s.end()
    }
}

/// What a handshake's session line holds beyond its live-log line.
#[derive(Debug, Clone)]
pub struct HandshakeRecord {
    /// The hub as the client's path named it.
    pub route: String,
    /// The query, secret values redacted.
    pub query: BTreeMap<String, String>,
}

impl TrafficEvent {
    /// Whether the live log shows it (client frames and the session's `closed` lines are only
    /// kept).
    pub fn in_live_log(&self) -> bool {
        !matches!(
            self,
            TrafficEvent::Frame { .. } | TrafficEvent::Closed { .. }
        )
    }

    /// Whether the inspector's timeline shows it.
    pub fn on_timeline(&self) -> bool {
        !matches!(self, TrafficEvent::Closed { .. })
    }

    /// Whether it belongs in the recording and in exports: it has a session line and the
    /// inspector did not make it.
    pub fn recorded(&self) -> bool {
        match self {
            TrafficEvent::Webhook(hop) => hop.origin.is_none(),
            TrafficEvent::Handshake { recorded, .. } => recorded.is_some(),
            TrafficEvent::Rest(_)
            | TrafficEvent::Frame { .. }
            | TrafficEvent::Closed { .. }
            | TrafficEvent::Lint { .. }
            | TrafficEvent::Fault { .. } => true,
            _ => false,
        }
    }

    /// The session line of the hop at `t` (the recording's clock as it is written), if it has
    /// one.
    pub fn line(&self, t: f64) -> Option<RecordLine> {
        use TrafficEvent as E;
        Some(match self {
            E::Webhook(hop) => hop.line(t),
            E::Rest(hop) => RecordLine::Rest {
                t,
                call: hop.call.clone(),
                event: None,
            },
            E::Handshake {
                connection_id,
                transport,
                user_id,
                refused,
                recorded: Some(record),
                ..
            } => RecordLine::Handshake {
                t,
                hub: record.route.clone(),
                connection_id: connection_id.clone(),
                transport: (*transport).to_owned(),
                user_id: user_id.clone(),
                query: record.query.clone(),
                refused: refused.clone(),
            },
            E::Frame {
                hub,
                connection_id,
                direction,
                packet,
            } => RecordLine::Frame {
                t,
                hub: hub.clone(),
                connection_id: connection_id.clone(),
                direction: *direction,
                packet: packet.clone(),
            },
            E::Closed {
                hub,
                connection_id,
                reason,
            } => RecordLine::Closed {
                t,
                hub: hub.clone(),
                connection_id: connection_id.clone(),
                reason: reason.clone(),
            },
            E::Lint {
                rule,
                section,
                message,
                ..
            } => RecordLine::Lint {
                t,
                rule: rule.clone(),
                section: section.clone(),
                message: message.clone(),
            },
            E::Fault {
                rule,
                event,
                action,
                ..
            } => RecordLine::Fault {
                t,
                rule: rule.clone(),
                event: event.clone(),
                action: action.clone(),
            },
            _ => return None,
        })
    }

    /// Writes what its session line and details hold beyond its timeline object, as one JSON
    /// object (nothing for hops whose line is their object): what the inspector's ring keeps
    /// after the object ([`super::ring`]), borrowed from the hop, without allocating.
    pub fn write_kept(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        match self {
            TrafficEvent::Webhook(hop) => {
                let call = &hop.call;
                let kept = WebhookKept {
                    ce_type: &call.ce_type,
                    user_id: call.user_id.as_deref(),
                    body: &call.body,
                    response: hop.response.as_ref(),
                    error: hop.error.as_deref(),
                    started: hop.started,
                    ce_id: &hop.details.ce_id,
                    ce_time_ns: hop
                        .details
                        .ce_time
                        .duration_since(std::time::SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64),
                    answer_headers: hop.details.answer_headers.as_deref(),
                };
                serde_json::to_writer(out, &kept)?;
            }
            TrafficEvent::Rest(hop) => {
                let call = &hop.call;
                let kept = RestKept {
                    path: &call.path,
                    query: &call.query,
                    body: &call.body,
                };
                serde_json::to_writer(out, &kept)?;
            }
            TrafficEvent::Handshake {
                recorded: Some(record),
                ..
            } => {
                let kept = HandshakeKept {
                    hub: &record.route,
                    query: &record.query,
                };
                serde_json::to_writer(out, &kept)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Redacts the secrets its session line would carry, as the recording redacts them (the
    /// live log shows none of those fields).
    pub fn redact(&mut self) {
        match self {
            TrafficEvent::Handshake {
                recorded: Some(record),
                ..
            } => redact::redact_query_values(&mut record.query),
            TrafficEvent::Frame {
                direction: super::record::Direction::In,
                packet,
                ..
            } => redact::redact_packet(packet),
            TrafficEvent::Webhook(hop) => redact::redact_event(&mut hop.call),
            TrafficEvent::Rest(hop) => redact::redact_rest(&mut hop.call),
            _ => {}
        }
    }
}

/// What the ring keeps of a webhook call beyond its timeline object.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookKept<'a> {
    ce_type: &'a str,
    user_id: Option<&'a str>,
    body: &'a str,
    response: Option<&'a RecordedResponse>,
    error: Option<&'a str>,
    started: Option<f64>,
    ce_id: &'a str,
    ce_time_ns: u64,
    answer_headers: Option<&'a [(String, String)]>,
}

/// What the ring keeps of a REST call beyond its timeline object.
#[derive(serde::Serialize)]
struct RestKept<'a> {
    path: &'a str,
    query: &'a BTreeMap<String, Vec<String>>,
    body: &'a str,
}

/// What the ring keeps of a handshake beyond its timeline object: its line's hub and query.
#[derive(serde::Serialize)]
struct HandshakeKept<'a> {
    hub: &'a str,
    query: &'a BTreeMap<String, String>,
}
