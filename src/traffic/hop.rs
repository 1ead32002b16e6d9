//! One value per hop: the parts of a [`TrafficEvent`] that only some sinks render. A caller
//! builds one event and hands it to [`super::Traffic::emit`] once; the live log renders what it
//! shows ([`super::pretty`], [`super::json`]), the recorder the session line
//! ([`TrafficEvent::line`]), and the inspector's ring encodes the whole value, redacted
//! ([`TrafficEvent::redact`], [`WebhookHop::body_text`]), to render its timeline, details and
//! exports on the reader's side.
//!
//! A webhook hop borrows from the exchange that made it: the ring encodes it straight from
//! those borrows into its bytes, the live log renders its text from them, and only the
//! recorder, whose lines go to another thread, copies what its line holds. A sink that is off
//! costs nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

use super::record::{REDACTED, RecordLine, RecordedEvent, RecordedResponse};
use super::redact;
use super::rest_call::RestCall;
use super::{BodyPreview, TrafficEvent};

/// The origin of a hop the inspector caused (a resend): shown, kept by the ring, never recorded.
pub const INSPECTOR: &str = "inspector";

/// Characters of a response body shown in the log.
pub const LOG_BODY_CHARS: usize = 120;

/// One webhook exchange, borrowed from it: the event sent, what came back, and what the live
/// log and the inspector show of it.
#[derive(Debug, Clone)]
pub struct WebhookHop<'a> {
    pub hub: &'a str,
    pub event: &'a str,
    pub ce_type: &'a str,
    pub namespace: &'a str,
    pub socket_id: &'a str,
    pub connection_id: &'a str,
    pub user_id: Option<&'a str>,
    /// The request body as sent (kept as UTF-8, lossily, and redacted: [`WebhookHop::body_text`]).
    pub body: &'a [u8],
    /// The answer, its latency as measured.
    pub response: Option<Answer<'a>>,
    /// The failure, when there was no answer.
    pub error: Option<String>,
    pub url: &'a str,
    pub attempts: u32,
    /// The start of the response body, or the failure when there was no response.
    pub detail: Detail<'a>,
    pub hint: Option<String>,
    /// [`INSPECTOR`] for a call the inspector made (a resend).
    pub origin: Option<&'static str>,
    /// The recording's logical clock when the call began (`serve --seed`), else `None`.
    pub started: Option<f64>,
    /// The call's `ce-id` and `ce-time`, for the inspector's details (the request is rebuilt
    /// from the event and these, [`super::call_details`]).
    pub ce_id: &'a str,
    pub ce_time: SystemTime,
    /// The answer's headers, for the inspector's details (kept with secret values redacted).
    pub answer_headers: Option<&'a dyn HeaderLines>,
}

/// A webhook's answer, borrowed: what a session line records of it.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub status: u16,
    pub content_type: Option<Cow<'a, str>>,
    /// The body (kept as UTF-8, lossily).
    pub body: &'a [u8],
    pub latency_ms: f64,
}

impl Answer<'_> {
    /// The answer as a session line records it, its latency `latency_ms`.
    fn recorded(&self, latency_ms: f64) -> RecordedResponse {
        RecordedResponse {
            status: self.status,
            content_type: self.content_type.as_deref().map(str::to_owned),
            body: String::from_utf8_lossy(self.body).into_owned(),
            latency_ms,
        }
    }
}

/// Written as a session line's `response` ([`RecordedResponse`]'s fields).
impl Serialize for Answer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("RecordedResponse", 4)?;
        s.serialize_field("status", &self.status)?;
        if let Some(content_type) = &self.content_type {
            s.serialize_field("contentType", content_type)?;
        }
        s.serialize_field("body", &String::from_utf8_lossy(self.body))?;
        s.serialize_field("latencyMs", &self.latency_ms)?;
        s.end()
    }
}

/// What the log says of a call beside its status: the start of the answer's body, or why
/// there was none.
#[derive(Debug, Clone)]
pub enum Detail<'a> {
    /// The answer's body, shown as its first [`LOG_BODY_CHARS`] characters ([`BodyPreview`]).
    Answer(&'a [u8]),
    /// The failure.
    Failure(String),
}

impl Detail<'_> {
    pub fn is_empty(&self) -> bool {
        match self {
            Detail::Answer(body) => body.is_empty(),
            Detail::Failure(text) => text.is_empty(),
        }
    }
}

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Answer(body) => BodyPreview::new(body, LOG_BODY_CHARS).fmt(f),
            Detail::Failure(text) => f.write_str(text),
        }
    }
}

/// Written as a string, straight from the borrowed body.
impl Serialize for Detail<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'a> WebhookHop<'a> {
    /// Whether the handler answered 2xx.
    pub fn ok(&self) -> bool {
        self.response
            .as_ref()
            .is_some_and(|r| (200..300).contains(&r.status))
    }

    fn latency_ms(&self) -> f64 {
        self.response.as_ref().map_or(0.0, |r| r.latency_ms)
    }

    /// The request body as kept (the recording, the ring): UTF-8 (lossily), with a `connect`
    /// event's secrets redacted ([`redact::redacted_connect_body`]). Borrowed unless either
    /// changed it.
    pub fn body_text(&self) -> Cow<'a, str> {
        let text = String::from_utf8_lossy(self.body);
        if self.event == "connect"
            && let Some(redacted) = redact::redacted_connect_body(&text)
        {
            return Cow::Owned(redacted);
        }
        text
    }

    /// The event as a session line records it (redacted).
    pub fn recorded_event(&self) -> RecordedEvent {
        RecordedEvent {
            hub: self.hub.to_owned(),
            event: self.event.to_owned(),
            ce_type: self.ce_type.to_owned(),
            namespace: self.namespace.to_owned(),
            socket_id: self.socket_id.to_owned(),
            connection_id: self.connection_id.to_owned(),
            user_id: self.user_id.map(str::to_owned),
            body: self.body_text().into_owned(),
        }
    }

    /// The session line, `now` being the recording's clock as the line is written: its `t` is
    /// when the call started, so REST calls made while it ran fall after it.
    fn line(&self, now: f64) -> RecordLine {
        let (t, latency_ms) = call_times(self.started, now, self.latency_ms());
        RecordLine::Webhook {
            t,
            call: self.recorded_event(),
            response: self.response.as_ref().map(|r| r.recorded(latency_ms)),
            error: self.error.clone(),
        }
    }

    /// What the ring keeps of it beyond its timeline object (see [`WebhookKept`]).
    fn kept(&self) -> WebhookKept<'_> {
        WebhookKept {
            ce_type: self.ce_type,
            user_id: self.user_id,
            body: self.body_text(),
            response: self.response.as_ref(),
            error: self.error.as_deref(),
            started: self.started,
            ce_id: self.ce_id,
            ce_time_ns: self
                .ce_time
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            answer_headers: self.answer_headers.map(AnswerHeaders),
        }
    }
}

/// The live log's `webhook` object (`--format json`).
impl Serialize for WebhookHop<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Webhook", 13)?;
        s.serialize_field("hub", self.hub)?;
        s.serialize_field("event", self.event)?;
        s.serialize_field("namespace", self.namespace)?;
        s.serialize_field("socketId", self.socket_id)?;
        s.serialize_field("connectionId", self.connection_id)?;
        s.serialize_field("url", self.url)?;
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

/// An answer's header lines, read where they are kept (the layer that received the answer
/// implements it): each name in lower case, as a header map spells it, with its value, in the
/// order received.
pub trait HeaderLines {
    fn each_line(&self, f: &mut dyn FnMut(&str, &[u8]));
}

impl std::fmt::Debug for dyn HeaderLines + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        self.each_line(&mut |name, value| {
            list.entry(&(name, String::from_utf8_lossy(value)));
        });
        list.finish()
    }
}

/// An answer's headers as the ring keeps them: `[name, value]` pairs in the answer's order,
/// values as UTF-8 (lossily), secret ones redacted ([`redact::is_secret_name`]).
struct AnswerHeaders<'a>(&'a dyn HeaderLines);

impl Serialize for AnswerHeaders<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        let mut written = Ok(());
        self.0.each_line(&mut |name, value| {
            if written.is_ok() {
                let value = if redact::is_secret_name(name) {
                    Cow::Borrowed(REDACTED)
                } else {
                    String::from_utf8_lossy(value)
                };
                written = seq.serialize_element(&(name, value));
            }
        });
        written?;
        seq.end()
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

impl TrafficEvent<'_> {
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
                hub: (*hub).to_owned(),
                connection_id: (*connection_id).to_owned(),
                direction: *direction,
                packet: packet.clone().into_owned(),
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
            TrafficEvent::Webhook(hop) => serde_json::to_writer(out, &hop.kept())?,
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
    /// live log shows none of those fields). A webhook hop, borrowed, redacts its body as it
    /// is written ([`WebhookHop::body_text`]).
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
            } => {
                if let Cow::Owned(redacted) = redact::redacted_frame(packet) {
                    *packet = Cow::Owned(redacted);
                }
            }
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
    body: Cow<'a, str>,
    response: Option<&'a Answer<'a>>,
    error: Option<&'a str>,
    started: Option<f64>,
    ce_id: &'a str,
    ce_time_ns: u64,
    answer_headers: Option<AnswerHeaders<'a>>,
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
