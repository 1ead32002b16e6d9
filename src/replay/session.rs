//! Session files as `replay` reads them: the lines `serve --record` wrote
//! ([`crate::traffic::record::RecordLine`]), validated with line numbers, turned into the ordered
//! list of webhook [`Event`]s to send, each with the REST calls the handler made while handling it,
//! plus the [`World`] (hubs, connections, users, groups) the REST sink answers for. This module
//! also rewrites a file for `replay --update`, atomically.
//!
//! Rules decided here (documented in docs/REPLAY.md):
//! - A file holds one or more recording runs, each opened by a `header` line; `t` restarts at 0 in
//!   every run. Events are replayed run by run, in the order their webhook calls *started* (`t`),
//!   which is not the order of the lines (a line is written when its exchange ends).
//! - A truncated last line (no newline, not JSON: a recording cut by `kill -9`) is skipped with a
//!   warning, and so is a line that is not JSON right before a `header` (the cut end of a run
//!   that a later run was appended to). Any other unreadable line is an error naming its line
//!   number. Lines of an unknown
//!   `type` are skipped with a warning, so later format additions do not break older readers.
//! - A `rest` line belongs to the webhook line its optional `event` field names (the 1-based count
//!   of webhook lines in the file; `replay --update` writes it). Without it, the call belongs to
//!   the event being handled at its `t`: a blocking event (`connect`, user events) before a
//!   `connected` / `disconnected` one, the earliest started first (an event *caused* by a REST call,
//!   such as the `disconnected` after a `41`, starts after the call); failing that, the event that
//!   ended last within the settle window before `t`. Calls outside every window are not compared.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::ReplayError;
use crate::service::group;
use crate::traffic::record::{self, RecordLine, RecordedResponse};
use crate::upstream::{EventKind, WebhookEvent};

/// The `type` values this reader understands.
const KNOWN_TYPES: [&str; 8] = [
    "header",
    "handshake",
    "frame",
    "webhook",
    "rest",
    "closed",
    "lint",
    "fault",
];
/// The `ce-type` prefix of user events.
const USER_CE_TYPE_PREFIX: &str = "azure.webpubsub.user.";
/// Line numbers listed in one warning about unattributed REST calls.
const MAX_LINES_IN_WARNING: usize = 8;

/// What the handler answered when the session was recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// An HTTP answer (any status).
    Response(RecordedResponse),
    /// No answer: the recorded failure (unreachable, timeout, …).
    Error(String),
}

/// One REST call as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// Line number in the file (1-based).
    pub line: usize,
    pub t: f64,
    pub method: String,
    pub operation: String,
    pub hub: String,
    pub path: String,
    pub query: BTreeMap<String, Vec<String>>,
    pub body: String,
    pub status: u16,
}

/// One webhook event to replay, with what it is expected to produce.
#[derive(Debug, Clone)]
pub struct Event {
    /// Line number of its `webhook` line (1-based).
    pub line: usize,
    /// 1-based count of webhook lines up to this one, in file order: what a `rest` line's `event`
    /// field refers to.
    pub ordinal: usize,
    /// Which recording run (header) it belongs to, from 0.
    pub run: usize,
    /// When the call started, ms since its run's start.
    pub t: f64,
    pub hub: String,
    pub event: String,
    pub ce_type: String,
    pub namespace: String,
    pub socket_id: String,
    pub connection_id: String,
    pub user_id: Option<String>,
    pub body: String,
    pub expected: Expectation,
    /// The REST calls the handler made for it, in recorded order.
    pub rest: Vec<RecordedCall>,
}

impl Event {
    /// The webhook event kind: user events by `ce-type`, system events by name.
    pub fn kind(&self) -> EventKind {
        if self.ce_type.starts_with(USER_CE_TYPE_PREFIX) {
            return EventKind::User(self.event.clone());
        }
        match self.event.as_str() {
            "connect" => EventKind::Connect,
            "connected" => EventKind::Connected,
            _ => EventKind::Disconnected,
        }
    }

    /// The event to send, as the upstream client takes it.
    pub fn to_webhook(&self) -> WebhookEvent {
        WebhookEvent {
            hub: self.hub.clone(),
            kind: self.kind(),
            connection_id: self.connection_id.clone(),
            namespace: self.namespace.clone(),
            socket_id: self.socket_id.clone(),
            user_id: self.user_id.clone(),
            body: Bytes::from(self.body.clone()),
        }
    }

    /// When the recorded call ended (its start when it got no answer).
    fn end(&self) -> f64 {
        match &self.expected {
            Expectation::Response(r) => self.t + r.latency_ms.max(0.0),
            Expectation::Error(_) => self.t,
        }
    }

    fn is_blocking(&self) -> bool {
        self.kind().is_blocking()
    }
}

/// What the recording knows about one hub, for the REST sink's answers.
#[derive(Debug, Clone, Default)]
pub struct HubWorld {
    pub connections: HashSet<String>,
    pub users: HashSet<String>,
    pub groups: HashSet<String>,
}

/// Hubs (by lower-case name, as routing is case-insensitive) and what each held.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub hubs: HashMap<String, HubWorld>,
}

impl World {
    /// The hub's entry, created if missing.
    pub fn hub_mut(&mut self, hub: &str) -> &mut HubWorld {
        self.hubs.entry(hub.to_ascii_lowercase()).or_default()
    }

    /// The hub's entry, if the recording knows it.
    pub fn hub(&self, hub: &str) -> Option<&HubWorld> {
        self.hubs.get(&hub.to_ascii_lowercase())
    }

    fn learn_call(&mut self, call: &RecordedCall) {
        let hub = self.hub_mut(&call.hub);
        let path = call.path.split('/').collect::<Vec<_>>();
        // `/api/hubs/<hub>/groups/<group>/…`: the group was in use.
        if let Some(i) = path.iter().position(|s| *s == "groups")
            && let Some(name) = path.get(i + 1)
            && let Ok(name) = percent_encoding::percent_decode_str(name).decode_utf8()
            && !name.is_empty()
        {
            hub.groups.insert(name.into_owned());
        }
        if let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&call.body)
            && let Some(Value::Array(groups)) = body.get("groups")
        {
            hub.groups
                .extend(groups.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }
}

/// How a source line is treated when the file is rewritten.
#[derive(Debug, Clone)]
enum LineKind {
    Webhook {
        ordinal: usize,
    },
    /// A REST line and the ordinal of the event it belongs to, if any.
    Rest {
        owner: Option<usize>,
    },
    /// Kept as is.
    Other,
    /// The truncated last line: dropped on rewrite.
    Truncated,
}

#[derive(Debug, Clone)]
struct SourceLine {
    text: String,
    kind: LineKind,
}

/// A validated session file.
#[derive(Debug, Clone)]
pub struct Session {
    pub path: PathBuf,
    /// Events in replay order (run, then start time, then line).
    pub events: Vec<Event>,
    /// What the REST sink answers for.
    pub world: World,
    /// Things the reader tolerated (a truncated last line, unknown line types, calls it could not
    /// attribute to any event).
    pub warnings: Vec<String>,
    /// The `sioEmuVersion` of the first header.
    pub recorded_by: String,
    lines: Vec<SourceLine>,
}

/// A REST call to write for an event on `--update`.
#[derive(Debug, Clone)]
pub struct UpdatedCall {
    /// ms after the event was sent.
    pub offset_ms: f64,
    pub method: String,
    pub operation: String,
    pub hub: String,
    pub path: String,
    pub query: BTreeMap<String, Vec<String>>,
    pub body: String,
    pub status: u16,
}

/// New expectations for one event on `--update`.
#[derive(Debug, Clone)]
pub struct Update {
    /// The event's [`Event::ordinal`].
    pub ordinal: usize,
    pub expected: Expectation,
    pub calls: Vec<UpdatedCall>,
}

impl Session {
    /// Reads and validates `path`; `settle` is the window after an event's answer during which
    /// its REST calls may still arrive (used to attribute recorded calls without `event`).
    pub fn load(path: &Path, settle: Duration) -> Result<Session, ReplayError> {
        let text = std::fs::read(path).map_err(|source| ReplayError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            invalid(path, line, "the line is not UTF-8 text")
        })?;
        parse(path, &text, settle)
    }

    /// Writes the file back with `updates` replacing the expectations of those events (their
    /// `response` / `error` and their REST lines), through a temporary file renamed over the
    /// original.
    pub fn rewrite(&self, updates: &[Update]) -> Result<(), ReplayError> {
        let by_ordinal: HashMap<usize, &Update> = updates.iter().map(|u| (u.ordinal, u)).collect();
        let events: HashMap<usize, &Event> = self.events.iter().map(|e| (e.ordinal, e)).collect();
        let mut out = String::new();
        for line in &self.lines {
            match &line.kind {
                LineKind::Webhook { ordinal } => {
                    match (by_ordinal.get(ordinal), events.get(ordinal)) {
                        (Some(update), Some(event)) => {
                            out.push_str(&webhook_line(event, &update.expected));
                            out.push('\n');
                            for call in &update.calls {
                                out.push_str(&rest_line(event, call));
                                out.push('\n');
                            }
                        }
                        _ => {
                            out.push_str(&line.text);
                            out.push('\n');
                        }
                    }
                }
                LineKind::Rest { owner: Some(o) } if by_ordinal.contains_key(o) => {}
                LineKind::Truncated => {}
                LineKind::Rest { .. } | LineKind::Other => {
                    out.push_str(&line.text);
                    out.push('\n');
                }
            }
        }
        write_atomically(&self.path, out.as_bytes()).map_err(|source| ReplayError::Write {
            what: "the updated session",
            path: self.path.clone(),
            source,
        })
    }
}

/// The serialized `webhook` line of `event` with new expectations.
fn webhook_line(event: &Event, expected: &Expectation) -> String {
    let (response, error) = match expected {
        Expectation::Response(r) => (Some(r.clone()), None),
        Expectation::Error(e) => (None, Some(e.clone())),
    };
    let line = RecordLine::Webhook {
        t: round_ms(event.t),
        hub: event.hub.clone(),
        event: event.event.clone(),
        ce_type: event.ce_type.clone(),
        namespace: event.namespace.clone(),
        socket_id: event.socket_id.clone(),
        connection_id: event.connection_id.clone(),
        user_id: event.user_id.clone(),
        body: event.body.clone(),
        response,
        error,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The serialized `rest` line of a call made for `event`, pinned to it with `event`.
fn rest_line(event: &Event, call: &UpdatedCall) -> String {
    let line = RecordLine::Rest {
        t: round_ms(event.t + call.offset_ms),
        method: call.method.clone(),
        operation: call.operation.clone(),
        hub: call.hub.clone(),
        path: call.path.clone(),
        query: call.query.clone(),
        body: call.body.clone(),
        status: call.status,
    };
    let mut text = serde_json::to_string(&line).unwrap_or_default();
    // An object always ends with `}`: append the optional field in place, keeping `type` first.
    if text.ends_with('}') {
        text.pop();
        let _ = write!(text, ",\"event\":{}}}", event.ordinal);
    }
    text
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn invalid(path: &Path, line: usize, message: impl Into<String>) -> ReplayError {
    ReplayError::InvalidSession {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

/// A serde message without its "at line 1 column N" suffix, with the column kept.
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &text[..i], e.column()),
        None => text,
    }
}

/// Whether `line` is a `header` line, which starts a recording run.
fn opens_a_run(line: Option<&&str>) -> bool {
    line.and_then(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("header"))
}

/// Parses a whole file (see the module docs for the rules).
pub fn parse(path: &Path, text: &str, settle: Duration) -> Result<Session, ReplayError> {
    let ends_with_newline = text.ends_with('\n');
    let raw_lines: Vec<&str> = text.lines().collect();
    let last_index = raw_lines.len().saturating_sub(1);
    let mut lines = Vec::with_capacity(raw_lines.len());
    let mut warnings = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut calls: Vec<(
        RecordedCall,
        usize,         /*run*/
        Option<usize>, /*event*/
    )> = Vec::new();
    let mut world = World::default();
    let mut run: Option<usize> = None;
    let mut recorded_by = String::new();
    let mut ordinal = 0;

    for (index, raw) in raw_lines.iter().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            lines.push(SourceLine {
                text: (*raw).to_owned(),
                kind: LineKind::Other,
            });
            continue;
        }
        let value: Value = match serde_json::from_str(trimmed) {
            Ok(v) => v,
            Err(_) if index == last_index && !ends_with_newline => {
                warnings.push(format!(
                    "{}:{number}: the last line is incomplete (the recording was cut off, e.g. \
                     by kill -9); it was skipped",
                    path.display()
                ));
                lines.push(SourceLine {
                    text: (*raw).to_owned(),
                    kind: LineKind::Truncated,
                });
                continue;
            }
            Err(_) if opens_a_run(raw_lines.get(index + 1)) => {
                warnings.push(format!(
                    "{}:{number}: the last line of a recording run is incomplete (the run was \
                     cut off, e.g. by kill -9, and a later run appended); it was skipped",
                    path.display()
                ));
                lines.push(SourceLine {
                    text: (*raw).to_owned(),
                    kind: LineKind::Truncated,
                });
                continue;
            }
            Err(e) => {
                return Err(invalid(
                    path,
                    number,
                    format!("not a JSON object: {}", serde_message(&e)),
                ));
            }
        };
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            return Err(invalid(
                path,
                number,
                "the line has no string `type` field; every line of a session is a JSON object \
                 like {\"type\":\"webhook\",…}",
            ));
        };
        if !KNOWN_TYPES.contains(&kind) {
            warnings.push(format!(
                "{}:{number}: unknown line type `{kind}` (written by a newer sio-emu?); skipped",
                path.display()
            ));
            lines.push(SourceLine {
                text: (*raw).to_owned(),
                kind: LineKind::Other,
            });
            continue;
        }
        if run.is_none() && kind != "header" {
            return Err(invalid(
                path,
                number,
                format!(
                    "the first line must be a `header` line, found `{kind}`; is this a session \
                     recorded with `sio-emu serve --record`?"
                ),
            ));
        }
        let line: RecordLine = serde_json::from_value(value.clone()).map_err(|e| {
            invalid(
                path,
                number,
                format!("invalid `{kind}` line: {}", serde_message(&e)),
            )
        })?;
        let mut source_kind = LineKind::Other;
        match line {
            RecordLine::Header {
                format,
                version,
                sio_emu_version,
                ..
            } => {
                if format != record::FORMAT {
                    return Err(invalid(
                        path,
                        number,
                        format!(
                            "the header's format is `{format}`, expected `{}`",
                            record::FORMAT
                        ),
                    ));
                }
                if version > record::VERSION {
                    return Err(ReplayError::TooNew {
                        path: path.to_owned(),
                        line: number,
                        found: version,
                        supported: record::VERSION,
                        recorded_by: sio_emu_version,
                    });
                }
                if recorded_by.is_empty() {
                    recorded_by = sio_emu_version;
                }
                run = Some(run.map_or(0, |r| r + 1));
            }
            RecordLine::Handshake {
                hub,
                connection_id,
                user_id,
                refused,
                ..
            } => {
                if refused.is_none() {
                    let hub = world.hub_mut(&hub);
                    hub.connections.extend(connection_id);
                    hub.users.extend(user_id.filter(|u| !u.is_empty()));
                }
            }
            RecordLine::Webhook {
                t,
                hub,
                event,
                ce_type,
                namespace,
                socket_id,
                connection_id,
                user_id,
                body,
                response,
                error,
            } => {
                let expected = match (response, error) {
                    (Some(r), _) => Expectation::Response(r),
                    (None, Some(e)) => Expectation::Error(e),
                    (None, None) => {
                        return Err(invalid(
                            path,
                            number,
                            "the webhook line has neither `response` nor `error`, so there is \
                             nothing to compare with",
                        ));
                    }
                };
                if hub.is_empty() || event.is_empty() || connection_id.is_empty() {
                    return Err(invalid(
                        path,
                        number,
                        "the webhook line needs non-empty `hub`, `event` and `connectionId`",
                    ));
                }
                let system = ["connect", "connected", "disconnected"];
                if !ce_type.starts_with(USER_CE_TYPE_PREFIX) && !system.contains(&event.as_str()) {
                    return Err(invalid(
                        path,
                        number,
                        format!(
                            "unknown system event `{event}` (ceType `{ce_type}`); system events \
                             are connect, connected and disconnected, user events have a ceType \
                             starting with `{USER_CE_TYPE_PREFIX}`"
                        ),
                    ));
                }
                ordinal += 1;
                source_kind = LineKind::Webhook { ordinal };
                let known = world.hub_mut(&hub);
                known.connections.insert(connection_id.clone());
                if let Some(u) = user_id.as_ref().filter(|u| !u.is_empty()) {
                    known.users.insert(u.clone());
                }
                let accepted = event == "connected"
                    || (event == "connect"
                        && matches!(&expected, Expectation::Response(r) if (200..300).contains(&r.status)));
                if accepted {
                    known.groups.insert(group::namespace_group(&namespace));
                    known
                        .groups
                        .insert(group::room_group(&namespace, &socket_id));
                }
                events.push(Event {
                    line: number,
                    ordinal,
                    run: run.unwrap_or(0),
                    t,
                    hub,
                    event,
                    ce_type,
                    namespace,
                    socket_id,
                    connection_id,
                    user_id,
                    body,
                    expected,
                    rest: Vec::new(),
                });
            }
            RecordLine::Rest {
                t,
                method,
                operation,
                hub,
                path: call_path,
                query,
                body,
                status,
            } => {
                let owner = match value.get("event") {
                    None | Some(Value::Null) => None,
                    Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                        Some(n) if n >= 1 => Some(n),
                        _ => {
                            return Err(invalid(
                                path,
                                number,
                                "`event` must be the 1-based number of a webhook line",
                            ));
                        }
                    },
                };
                let call = RecordedCall {
                    line: number,
                    t,
                    method,
                    operation,
                    hub,
                    path: call_path,
                    query,
                    body,
                    status,
                };
                world.learn_call(&call);
                calls.push((call, run.unwrap_or(0), owner));
                source_kind = LineKind::Rest { owner };
            }
            RecordLine::Frame { .. }
            | RecordLine::Closed { .. }
            | RecordLine::Lint { .. }
            | RecordLine::Fault { .. } => {}
        }
        lines.push(SourceLine {
            text: (*raw).to_owned(),
            kind: source_kind,
        });
    }
    if run.is_none() {
        return Err(invalid(
            path,
            1,
            "the file is empty: a session starts with a `header` line written by `sio-emu serve \
             --record`",
        ));
    }

    let settle_ms = settle.as_secs_f64() * 1000.0;
    let mut stray = Vec::new();
    for (call, call_run, owner) in calls {
        let target = match owner {
            Some(ordinal) => match events.iter().position(|e| e.ordinal == ordinal) {
                Some(i) => Some(i),
                None => {
                    return Err(invalid(
                        path,
                        call.line,
                        format!(
                            "`event` is {ordinal}, but the file has only {} webhook line(s)",
                            events.len()
                        ),
                    ));
                }
            },
            None => attribute(&events, call_run, call.t, settle_ms),
        };
        match target {
            Some(i) => events[i].rest.push(call.clone()),
            None => stray.push(call.line),
        }
        if let (Some(i), None) = (target, owner) {
            let ordinal = events[i].ordinal;
            if let Some(line) = lines.get_mut(call.line - 1) {
                line.kind = LineKind::Rest {
                    owner: Some(ordinal),
                };
            }
        }
    }
    if !stray.is_empty() {
        let mut shown: Vec<String> = stray
            .iter()
            .take(MAX_LINES_IN_WARNING)
            .map(usize::to_string)
            .collect();
        if stray.len() > MAX_LINES_IN_WARNING {
            shown.push("…".into());
        }
        warnings.push(format!(
            "{}: {} REST call(s) were recorded outside every webhook event's handling window \
             (line {}); they are not compared",
            path.display(),
            stray.len(),
            shown.join(", ")
        ));
    }
    events.sort_by(|a, b| {
        a.run
            .cmp(&b.run)
            .then(a.t.total_cmp(&b.t))
            .then(a.line.cmp(&b.line))
    });
    Ok(Session {
        path: path.to_owned(),
        events,
        world,
        warnings,
        recorded_by,
        lines,
    })
}

/// The index of the event a call at `t` (in run `run`) belongs to; see the module docs.
fn attribute(events: &[Event], run: usize, t: f64, settle_ms: f64) -> Option<usize> {
    let in_run = || events.iter().enumerate().filter(|(_, e)| e.run == run);
    let in_flight = |blocking: bool| {
        in_run()
            .filter(|(_, e)| e.is_blocking() == blocking && e.t <= t && t <= e.end())
            .min_by(|(_, a), (_, b)| a.t.total_cmp(&b.t))
            .map(|(i, _)| i)
    };
    in_flight(true).or_else(|| in_flight(false)).or_else(|| {
        in_run()
            .filter(|(_, e)| e.end() <= t && t <= e.end() + settle_ms)
            .max_by(|(_, a), (_, b)| a.end().total_cmp(&b.end()))
            .map(|(i, _)| i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"{"type":"header","format":"sio-emu-session","version":1,"sioEmuVersion":"0.1.0","hubs":[],"endpoint":"http://localhost:8080","startedAt":"2026-01-01T00:00:00.000Z"}"#;

    fn webhook(t: f64, event: &str, latency: f64) -> String {
        let ce_type = if ["connect", "connected", "disconnected"].contains(&event) {
            format!("azure.webpubsub.sys.{event}")
        } else {
            "azure.webpubsub.user.message".into()
        };
        format!(
            r#"{{"type":"webhook","t":{t},"hub":"chat","event":"{event}","ceType":"{ce_type}","namespace":"/","socketId":"s1","connectionId":"c1","userId":"alice","body":"{{}}","response":{{"status":200,"body":"","latencyMs":{latency}}}}}"#
        )
    }

    fn rest(t: f64, extra: &str) -> String {
        format!(
            r#"{{"type":"rest","t":{t},"method":"POST","operation":"SendToAll","hub":"chat","path":"/api/hubs/chat/:send","query":{{}},"body":"42[\"x\"]","status":202{extra}}}"#
        )
    }

    fn load(text: &str) -> Result<Session, ReplayError> {
        parse(Path::new("s.jsonl"), text, Duration::from_millis(100))
    }

    #[test]
    fn events_are_ordered_by_start_and_calls_attributed() {
        // `say` started first but ended last, so its line comes last.
        let text = [
            HEADER.to_owned(),
            rest(12.0, ""),
            webhook(11.0, "disconnected", 5.0),
            webhook(10.0, "say", 20.0),
            rest(40.0, ""),
            rest(500.0, ""),
        ]
        .join("\n")
            + "\n";
        let s = load(&text).unwrap();
        let names: Vec<&str> = s.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["say", "disconnected"]);
        // 12 is inside both; the blocking `say` wins. 40 is in `say`'s settle window.
        assert_eq!(s.events[0].rest.len(), 2);
        assert!(s.events[1].rest.is_empty());
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("line 6"), "{:?}", s.warnings);
    }

    #[test]
    fn explicit_event_field_wins() {
        let text = [
            HEADER.to_owned(),
            webhook(10.0, "say", 20.0),
            webhook(100.0, "connected", 1.0),
            rest(12.0, r#","event":2"#),
        ]
        .join("\n");
        let s = load(&text).unwrap();
        assert!(s.events[0].rest.is_empty());
        assert_eq!(s.events[1].rest.len(), 1);
    }

    #[test]
    fn truncated_last_line_is_a_warning_other_garbage_an_error() {
        let cut = format!(
            "{HEADER}\n{}\n{{\"type\":\"webh",
            webhook(1.0, "connect", 1.0)
        );
        let s = load(&cut).unwrap();
        assert_eq!(s.events.len(), 1);
        assert!(s.warnings[0].contains(":3:"), "{:?}", s.warnings);

        let appended = format!(
            "{HEADER}\n{}\n{{\"type\":\"webh\n{HEADER}\n{}\n",
            webhook(1.0, "connect", 1.0),
            webhook(1.0, "connect", 1.0)
        );
        let s = load(&appended).unwrap();
        assert_eq!(s.events.len(), 2);
        assert!(
            s.warnings[0].contains(":3:") && s.warnings[0].contains("run"),
            "{:?}",
            s.warnings
        );

        let bad = format!("{HEADER}\nnot json\n{}\n", webhook(1.0, "connect", 1.0));
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.contains("s.jsonl:2:"), "{e}");

        let missing = format!("{HEADER}\n{{\"type\":\"webhook\",\"t\":1}}\n");
        let e = load(&missing).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("missing field"), "{e}");

        let no_header = format!("{}\n", webhook(1.0, "connect", 1.0));
        let e = load(&no_header).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("header"), "{e}");

        assert!(load("").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn newer_versions_are_refused() {
        let text = HEADER.replace("\"version\":1", "\"version\":2");
        assert!(matches!(
            load(&text),
            Err(ReplayError::TooNew { found: 2, .. })
        ));
    }

    #[test]
    fn unknown_line_types_are_skipped() {
        let text = format!("{HEADER}\n{{\"type\":\"future\",\"x\":1}}\n");
        let s = load(&text).unwrap();
        assert!(s.warnings[0].contains("future"));
    }

    #[test]
    fn world_knows_connections_users_and_groups() {
        let text = [
            HEADER.to_owned(),
            webhook(1.0, "connected", 1.0),
            rest(1.5, ""),
        ]
        .join("\n");
        let s = load(&text).unwrap();
        let hub = s.world.hub("CHAT").unwrap();
        assert!(hub.connections.contains("c1"));
        assert!(hub.users.contains("alice"));
        assert!(hub.groups.contains("0~Lw~"));
        assert!(hub.groups.contains("0~Lw~czE"));
    }

    #[test]
    fn rewrite_replaces_expectations_and_pins_calls() {
        let dir = std::env::temp_dir().join(format!("sio-emu-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.jsonl");
        let text = [
            HEADER.to_owned(),
            webhook(10.0, "say", 20.0),
            rest(12.0, ""),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let s = Session::load(&path, Duration::from_millis(100)).unwrap();
        s.rewrite(&[Update {
            ordinal: 1,
            expected: Expectation::Response(RecordedResponse {
                status: 200,
                content_type: Some("text/plain".into()),
                body: "43[1]".into(),
                latency_ms: 3.0,
            }),
            calls: vec![UpdatedCall {
                offset_ms: 1.0,
                method: "POST".into(),
                operation: "SendToAll".into(),
                hub: "chat".into(),
                path: "/api/hubs/chat/:send".into(),
                query: BTreeMap::new(),
                body: "42[\"y\"]".into(),
                status: 202,
            }],
        }])
        .unwrap();
        let again = Session::load(&path, Duration::from_millis(100)).unwrap();
        assert_eq!(again.events.len(), 1);
        let Expectation::Response(r) = &again.events[0].expected else {
            panic!()
        };
        assert_eq!(r.body, "43[1]");
        assert_eq!(again.events[0].rest.len(), 1);
        assert_eq!(again.events[0].rest[0].body, "42[\"y\"]");
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains(r#""status":202,"event":1}"#), "{written}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_text_after_a_header_is_read_or_refused_without_panic(text in any::<String>()) {
                let _ = load(&format!("{HEADER}\n{text}"));
                let _ = load(&text);
            }

            #[test]
            fn any_cut_of_a_valid_session_is_valid_up_to_the_cut(cut in 0usize..2000) {
                let text = [
                    HEADER.to_owned(),
                    webhook(1.0, "connect", 2.0),
                    rest(2.0, ""),
                    webhook(5.0, "say", 3.0),
                ]
                .join("\n") + "\n";
                let cut = cut.min(text.len());
                let header_end = HEADER.len() + 1;
                let s = load(&text[..cut]);
                if cut >= header_end {
                    let s = s.expect("a cut session loads");
                    // Only whole webhook lines become events; a last line cut exactly at its
                    // newline is still a whole line.
                    let lines = text[..cut].lines().count();
                    prop_assert!(s.events.len() <= lines.saturating_sub(1));
                } else if cut < HEADER.len() {
                    prop_assert!(s.is_err() || cut == 0);
                }
            }
        }
    }
}
