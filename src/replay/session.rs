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

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::ReplayError;
use super::sink::CapturedCall;
use crate::service::group;
use crate::traffic::record::{self, RecordLine, RecordedEvent, RecordedResponse};
use crate::traffic::rest_call::RestCall;
use crate::upstream::{EventKind, USER_CE_TYPE_PREFIX, WebhookEvent};

/// The `ce-type` prefix of user events.
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

/// One REST call as recorded, with where and when.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// Line number in the file (1-based).
    pub line: usize,
    pub t: f64,
    pub call: RestCall,
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
    /// The event as recorded.
    pub call: RecordedEvent,
    pub expected: Expectation,
    /// The REST calls the handler made for it, in recorded order.
    pub rest: Vec<RecordedCall>,
}

impl Event {
    /// The webhook event kind: user events by `ce-type`, system events by name.
    pub fn kind(&self) -> EventKind {
        EventKind::from_recorded(&self.call.ce_type, &self.call.event)
    }

    /// The event to send, as the upstream client takes it.
    pub fn to_webhook(&self) -> WebhookEvent {
        WebhookEvent::recorded(&self.call)
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

    /// Who a webhook line shows existed: its connection and user, and once a socket is in, its
    /// namespace's and its own room's groups.
    fn learn_event(&mut self, event: &Event) {
        let known = self.hub_mut(&event.call.hub);
        known.connections.insert(event.call.connection_id.clone());
        if let Some(u) = event.call.user_id.as_ref().filter(|u| !u.is_empty()) {
            known.users.insert(u.clone());
        }
        let accepted = event.call.event == "connected"
            || (event.call.event == "connect"
                && matches!(&event.expected, Expectation::Response(r) if (200..300).contains(&r.status)));
        if accepted {
            known
                .groups
                .insert(group::namespace_group(&event.call.namespace));
            known.groups.insert(group::room_group(
                &event.call.namespace,
                &event.call.socket_id,
            ));
        }
    }

    /// The groups a recorded call shows were in use.
    fn learn_call(&mut self, call: &RestCall) {
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

/// New expectations for one event on `--update`.
#[derive(Debug, Clone)]
pub struct Update {
    /// The event's [`Event::ordinal`].
    pub ordinal: usize,
    pub expected: Expectation,
    /// The calls the handler made now, in arrival order.
    pub calls: Vec<CapturedCall>,
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
        call: event.call.clone(),
        response,
        error,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The serialized `rest` line of a call made for `event`, pinned to it with `event`.
fn rest_line(event: &Event, captured: &CapturedCall) -> String {
    let mut line = RecordLine::Rest {
        t: round_ms(event.t + crate::traffic::millis(captured.offset)),
        call: captured.call.clone(),
        event: Some(event.ordinal),
    };
    // Written like `serve --record` writes it: secret query values redacted.
    crate::traffic::redact::redact_line(&mut line);
    serde_json::to_string(&line).unwrap_or_default()
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

/// The `type` of a line, read on its own: only on the paths that report a line.
#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

fn type_of(line: &str) -> Option<String> {
    serde_json::from_str::<TypeOnly>(line.trim())
        .ok()
        .map(|t| t.kind)
}

/// A REST line read, waiting for the events to be known to find its owner.
struct PendingCall {
    call: RecordedCall,
    run: usize,
    /// The `event` field: the ordinal of the webhook line it belongs to.
    owner: Option<usize>,
}

/// The state of one pass over a file: each line is decoded once, into a
/// [`RecordLine`], and handed to the function of its kind.
struct Reader<'a> {
    path: &'a Path,
    raw: Vec<&'a str>,
    ends_with_newline: bool,
    lines: Vec<SourceLine>,
    warnings: Vec<String>,
    events: Vec<Event>,
    calls: Vec<PendingCall>,
    world: World,
    /// The current recording run (`None` before the first header).
    run: Option<usize>,
    recorded_by: String,
    /// Webhook lines so far.
    ordinal: usize,
}

/// Parses a whole file (see the module docs for the rules).
pub fn parse(path: &Path, text: &str, settle: Duration) -> Result<Session, ReplayError> {
    let mut reader = Reader {
        path,
        raw: text.lines().collect(),
        ends_with_newline: text.ends_with('\n'),
        lines: Vec::new(),
        warnings: Vec::new(),
        events: Vec::new(),
        calls: Vec::new(),
        world: World::default(),
        run: None,
        recorded_by: String::new(),
        ordinal: 0,
    };
    for index in 0..reader.raw.len() {
        let kind = reader.read(index)?;
        let text = reader.raw[index].to_owned();
        reader.lines.push(SourceLine { text, kind });
    }
    if reader.run.is_none() {
        return Err(invalid(
            path,
            1,
            "the file is empty: a session starts with a `header` line written by `sio-emu serve \
             --record`",
        ));
    }
    reader.finish(settle)
}

impl Reader<'_> {
    fn invalid(&self, number: usize, message: impl Into<String>) -> ReplayError {
        invalid(self.path, number, message)
    }

    /// Reads line `index` (0-based) and says how a rewrite treats it.
    fn read(&mut self, index: usize) -> Result<LineKind, ReplayError> {
        let number = index + 1;
        let text = self.raw[index].trim();
        if text.is_empty() {
            return Ok(LineKind::Other);
        }
        let line = match serde_json::from_str::<RecordLine>(text) {
            Ok(line) => line,
            Err(e) if e.is_data() => return Err(self.undecodable(number, text, &e)),
            Err(e) => return self.not_json(index, &e),
        };
        if self.run.is_none() && !matches!(line, RecordLine::Header { .. } | RecordLine::Unknown) {
            return Err(self.not_a_header(number, text));
        }
        match line {
            RecordLine::Header {
                format,
                version,
                sio_emu_version,
                ..
            } => self.header(number, format, version, sio_emu_version),
            RecordLine::Handshake {
                hub,
                connection_id,
                user_id,
                refused: None,
                ..
            } => {
                let hub = self.world.hub_mut(&hub);
                hub.connections.extend(connection_id);
                hub.users.extend(user_id.filter(|u| !u.is_empty()));
                Ok(LineKind::Other)
            }
            line @ RecordLine::Webhook { .. } => self.webhook(number, line),
            RecordLine::Rest { t, call, event } => self.rest(number, t, call, event),
            RecordLine::Unknown => Ok(self.unknown(number, text)),
            RecordLine::Handshake { .. }
            | RecordLine::Frame { .. }
            | RecordLine::Closed { .. }
            | RecordLine::Lint { .. }
            | RecordLine::Fault { .. } => Ok(LineKind::Other),
        }
    }

    /// The first line of a file is not a header.
    fn not_a_header(&self, number: usize, text: &str) -> ReplayError {
        let kind = type_of(text).unwrap_or_default();
        self.invalid(
            number,
            format!(
                "the first line must be a `header` line, found `{kind}`; is this a session \
                 recorded with `sio-emu serve --record`?"
            ),
        )
    }

    /// A line of a type this version does not know is skipped with a warning.
    fn unknown(&mut self, number: usize, text: &str) -> LineKind {
        let kind = type_of(text).unwrap_or_default();
        self.warnings.push(format!(
            "{}:{number}: unknown line type `{kind}` (written by a newer sio-emu?); skipped",
            self.path.display()
        ));
        LineKind::Other
    }

    /// A JSON object that is no valid line: a missing `type`, or a line of a known type with
    /// missing or mistyped fields.
    fn undecodable(&self, number: usize, text: &str, e: &serde_json::Error) -> ReplayError {
        match type_of(text) {
            Some(kind) => self.invalid(
                number,
                format!("invalid `{kind}` line: {}", serde_message(e)),
            ),
            None => self.invalid(
                number,
                "the line has no string `type` field; every line of a session is a JSON object \
                 like {\"type\":\"webhook\",…}",
            ),
        }
    }

    /// A line that is not JSON: the cut end of a run is skipped, anything else is an error.
    fn not_json(&mut self, index: usize, e: &serde_json::Error) -> Result<LineKind, ReplayError> {
        let number = index + 1;
        let last = index + 1 == self.raw.len() && !self.ends_with_newline;
        let before_a_run = self
            .raw
            .get(index + 1)
            .and_then(|next| type_of(next))
            .is_some_and(|kind| kind == "header");
        let what = match (last, before_a_run) {
            (true, _) => "the last line is incomplete (the recording was cut off, e.g. by kill -9)",
            (false, true) => {
                "the last line of a recording run is incomplete (the run was cut off, e.g. by \
                 kill -9, and a later run appended)"
            }
            (false, false) => {
                return Err(
                    self.invalid(number, format!("not a JSON object: {}", serde_message(e)))
                );
            }
        };
        self.warnings.push(format!(
            "{}:{number}: {what}; it was skipped",
            self.path.display()
        ));
        Ok(LineKind::Truncated)
    }

    /// A `header` line opens a run, once its format and version are ones this reader knows.
    fn header(
        &mut self,
        number: usize,
        format: String,
        version: u32,
        sio_emu_version: String,
    ) -> Result<LineKind, ReplayError> {
        if format != record::FORMAT {
            return Err(self.invalid(
                number,
                format!(
                    "the header's format is `{format}`, expected `{}`",
                    record::FORMAT
                ),
            ));
        }
        if version > record::VERSION {
            return Err(ReplayError::TooNew {
                path: self.path.to_owned(),
                line: number,
                found: version,
                supported: record::VERSION,
                recorded_by: sio_emu_version,
            });
        }
        if self.recorded_by.is_empty() {
            self.recorded_by = sio_emu_version;
        }
        self.run = Some(self.run.map_or(0, |r| r + 1));
        Ok(LineKind::Other)
    }

    /// A `webhook` line is an event to replay.
    fn webhook(&mut self, number: usize, line: RecordLine) -> Result<LineKind, ReplayError> {
        let RecordLine::Webhook {
            t,
            call,
            response,
            error,
        } = line
        else {
            return Ok(LineKind::Other);
        };
        let expected = expectation(response, error).ok_or_else(|| {
            self.invalid(
                number,
                "the webhook line has neither `response` nor `error`, so there is nothing to \
                 compare with",
            )
        })?;
        let event = Event {
            line: number,
            ordinal: 0,
            run: self.run.unwrap_or(0),
            t,
            call,
            expected,
            rest: Vec::new(),
        };
        self.add_event(event)
    }

    /// Checks an event and adds it; what it did tells the world who existed.
    fn add_event(&mut self, mut event: Event) -> Result<LineKind, ReplayError> {
        if event.call.hub.is_empty()
            || event.call.event.is_empty()
            || event.call.connection_id.is_empty()
        {
            return Err(self.invalid(
                event.line,
                "the webhook line needs non-empty `hub`, `event` and `connectionId`",
            ));
        }
        let system = ["connect", "connected", "disconnected"];
        if !event.call.ce_type.starts_with(USER_CE_TYPE_PREFIX)
            && !system.contains(&&*event.call.event)
        {
            return Err(self.invalid(
                event.line,
                format!(
                    "unknown system event `{}` (ceType `{}`); system events are connect, \
                     connected and disconnected, user events have a ceType starting with \
                     `{USER_CE_TYPE_PREFIX}`",
                    event.call.event, event.call.ce_type
                ),
            ));
        }
        self.ordinal += 1;
        event.ordinal = self.ordinal;
        self.world.learn_event(&event);
        self.events.push(event);
        Ok(LineKind::Webhook {
            ordinal: self.ordinal,
        })
    }

    /// A `rest` line waits for [`Reader::finish`] to find the event it belongs to.
    fn rest(
        &mut self,
        number: usize,
        t: f64,
        call: RestCall,
        owner: Option<usize>,
    ) -> Result<LineKind, ReplayError> {
        if owner == Some(0) {
            return Err(self.invalid(
                number,
                "`event` must be the 1-based number of a webhook line",
            ));
        }
        let call = RecordedCall {
            line: number,
            t,
            call,
        };
        self.world.learn_call(&call.call);
        self.calls.push(PendingCall {
            call,
            run: self.run.unwrap_or(0),
            owner,
        });
        Ok(LineKind::Rest { owner })
    }

    /// Gives every REST call to its event, warns about those that have none, and orders the
    /// events for replay.
    fn finish(mut self, settle: Duration) -> Result<Session, ReplayError> {
        let settle_ms = settle.as_secs_f64() * 1000.0;
        let mut stray = Vec::new();
        for pending in std::mem::take(&mut self.calls) {
            let line = pending.call.line;
            let target = match pending.owner {
                Some(ordinal) => Some(self.event_numbered(line, ordinal)?),
                None => attribute(&self.events, pending.run, pending.call.t, settle_ms),
            };
            let Some(i) = target else {
                stray.push(line);
                continue;
            };
            if pending.owner.is_none()
                && let Some(source) = self.lines.get_mut(line - 1)
            {
                source.kind = LineKind::Rest {
                    owner: Some(self.events[i].ordinal),
                };
            }
            self.events[i].rest.push(pending.call);
        }
        if !stray.is_empty() {
            self.warnings.push(stray_warning(self.path, &stray));
        }
        self.events.sort_by(|a, b| {
            a.run
                .cmp(&b.run)
                .then(a.t.total_cmp(&b.t))
                .then(a.line.cmp(&b.line))
        });
        Ok(Session {
            path: self.path.to_owned(),
            events: self.events,
            world: self.world,
            warnings: self.warnings,
            recorded_by: self.recorded_by,
            lines: self.lines,
        })
    }

    /// The index of the event whose webhook line is the `ordinal`-th, named by line `line`.
    fn event_numbered(&self, line: usize, ordinal: usize) -> Result<usize, ReplayError> {
        self.events
            .iter()
            .position(|e| e.ordinal == ordinal)
            .ok_or_else(|| {
                self.invalid(
                    line,
                    format!(
                        "`event` is {ordinal}, but the file has only {} webhook line(s)",
                        self.events.len()
                    ),
                )
            })
    }
}

/// The recorded outcome of a webhook line: its response, or else its error.
fn expectation(response: Option<RecordedResponse>, error: Option<String>) -> Option<Expectation> {
    match (response, error) {
        (Some(r), _) => Some(Expectation::Response(r)),
        (None, Some(e)) => Some(Expectation::Error(e)),
        (None, None) => None,
    }
}

/// The warning about REST calls no event's window holds, naming their first lines.
fn stray_warning(path: &Path, stray: &[usize]) -> String {
    let mut shown: Vec<String> = stray
        .iter()
        .take(MAX_LINES_IN_WARNING)
        .map(usize::to_string)
        .collect();
    if stray.len() > MAX_LINES_IN_WARNING {
        shown.push("…".into());
    }
    format!(
        "{}: {} REST call(s) were recorded outside every webhook event's handling window \
         (line {}); they are not compared",
        path.display(),
        stray.len(),
        shown.join(", ")
    )
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
        let names: Vec<&str> = s.events.iter().map(|e| e.call.event.as_str()).collect();
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
            calls: vec![CapturedCall {
                offset: Duration::from_millis(1),
                call: RestCall {
                    method: http::Method::POST,
                    operation: crate::traffic::rest_call::OperationName::SendToAll,
                    hub: "chat".into(),
                    path: "/api/hubs/chat/:send".into(),
                    query: Default::default(),
                    body: "42[\"y\"]".into(),
                    status: 202,
                },
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
        assert_eq!(again.events[0].rest[0].call.body, "42[\"y\"]");
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
