//! How a replayed answer is compared with the recorded one: pure functions, no I/O.
//!
//! Per event (docs/REPLAY.md, "Comparison rules"): the status class (2xx/4xx/5xx, or "no answer"),
//! the response body, and the REST calls the handler made, as an unordered multiset of
//! (operation, target, query, body). Bodies are compared by meaning, not bytes: an Engine.IO /
//! Socket.IO packet (`43/chat,7["ok"]`) by its types, namespace, ack id and JSON payload; a JSON
//! body structurally; anything else as text. Volatile values never count: any ISO-8601 time and
//! any JWT inside a body or query value is replaced by `<time>` / `<jwt>` on both sides, and
//! `api-version` is not compared. `--ignore` [`Rule`]s add to that. The session module supplies
//! the recorded side, the sink the replayed calls; the report module renders the [`Diff`]s.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::session::{Event, Expectation};
use crate::glob::matches as glob;
use crate::socketio::packet::{self as sio};
use crate::traffic::record::REDACTED;
use crate::traffic::redact;
use crate::traffic::rest_call::{OperationName, RestCall};

/// What replaces an ISO-8601 time inside a compared value.
pub const TIME: &str = "<time>";
/// What replaces a JWT inside a compared value.
pub const JWT: &str = "<jwt>";
/// What replaces a value removed by a `body:` rule inside an array.
pub const IGNORED: &str = "<ignored>";
/// Differences listed inside one body diff.
const MAX_DETAILS: usize = 6;
/// Query parameters never compared: the SDK version decides them.
const VOLATILE_QUERY: [&str; 1] = ["api-version"];

/// One `--ignore` rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `event:<name>`: events with this name (glob, `*` matches any run of characters) are sent
    /// but not compared.
    Event(String),
    /// `rest:<operation>`: REST calls of this operation (glob) are neither expected nor flagged.
    Rest(String),
    /// `query:<name>`: a REST query parameter not compared.
    Query(String),
    /// `body:<json-path>`: a value not compared inside JSON bodies and packet payloads.
    Body(JsonPath),
}

/// Why an `--ignore` rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(String);

/// The syntax, quoted in errors.
pub const RULE_SYNTAX: &str = "event:<name>, rest:<Operation>, query:<param> or body:<json-path> \
     (e.g. `event:typing`, `rest:SendToAll`, `query:filter`, `body:$.ts`, `body:$[1].sentAt`, \
     `body:$..id`); names accept `*` wildcards";

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Rule, RuleError> {
        let Some((kind, value)) = text.split_once(':') else {
            return Err(RuleError(format!("a rule is one of {RULE_SYNTAX}")));
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(RuleError(format!(
                "`{kind}:` needs a value; a rule is one of {RULE_SYNTAX}"
            )));
        }
        match kind.trim() {
            "event" => Ok(Rule::Event(value.to_owned())),
            "rest" => Ok(Rule::Rest(value.to_owned())),
            "query" => Ok(Rule::Query(value.to_owned())),
            "body" => JsonPath::parse(value)
                .map(Rule::Body)
                .map_err(|e| RuleError(e.to_string())),
            other => Err(RuleError(format!(
                "unknown rule kind `{other}`; a rule is one of {RULE_SYNTAX}"
            ))),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Event(v) => write!(f, "event:{v}"),
            Rule::Rest(v) => write!(f, "rest:{v}"),
            Rule::Query(v) => write!(f, "query:{v}"),
            Rule::Body(p) => write!(f, "body:{}", p.text),
        }
    }
}

/// Every `--ignore` rule in force.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

impl Rules {
    /// Whether events named `name` are left uncompared.
    pub fn ignores_event(&self, name: &str) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, Rule::Event(p) if glob(p, name)))
    }

    /// Whether calls of `operation` are left uncompared.
    pub fn ignores_operation(&self, operation: OperationName) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, Rule::Rest(p) if glob(p, operation.as_str())))
    }

    fn ignores_query(&self, name: &str) -> bool {
        VOLATILE_QUERY.iter().any(|v| v.eq_ignore_ascii_case(name))
            || self
                .rules
                .iter()
                .any(|r| matches!(r, Rule::Query(p) if glob(p, name)))
    }

    fn strip(&self, value: &mut Value) {
        for rule in &self.rules {
            if let Rule::Body(path) = rule {
                path.strip(value);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON paths
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    Any,
    /// `..key` / `..*`: the inner segment at any depth.
    Descend(Box<Seg>),
}

/// A small JSONPath subset: `$`, `.key`, `['key']`, `[n]`, `.*` / `[*]`, and `..key` (any depth).
/// The root of a packet body is its payload array (`$[0]` is an event's name).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    segs: Vec<Seg>,
}

impl JsonPath {
    /// Parses `text`; the error says what was expected where.
    pub fn parse(text: &str) -> Result<JsonPath, JsonPathError> {
        let chars: Vec<char> = text.chars().collect();
        let segs = parse_segs(&chars).map_err(|(at, what)| JsonPathError {
            text: text.to_owned(),
            at: at + 1,
            what,
        })?;
        Ok(JsonPath {
            text: text.to_owned(),
            segs,
        })
    }

    /// Removes what the path selects from `value`: object members are removed, array elements
    /// and the root replaced by [`IGNORED`] (so positions still line up).
    pub fn strip(&self, value: &mut Value) {
        strip(value, &self.segs);
    }
}

/// A JSON path that does not parse: the path, the 1-based character where it went wrong and
/// what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid JSON path `{text}` at character {at}: {what} (paths look like `$.ts`, \
     `$[1].sentAt`, `$['a b']`, `$[*].id` or `$..id`)"
)]
pub struct JsonPathError {
    text: String,
    at: usize,
    what: &'static str,
}

/// Where a path went wrong (a character index) and what was expected there.
type PathError = (usize, &'static str);

/// The segments of a path: `$`, then `.key`, `..key`, `[…]` in any number.
fn parse_segs(chars: &[char]) -> Result<Vec<Seg>, PathError> {
    if chars.first() != Some(&'$') {
        return Err((0, "a path starts with `$`"));
    }
    let mut segs = Vec::new();
    let mut i = 1;
    while i < chars.len() {
        let (seg, next) = match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                let (inner, end) = name_seg(chars, i + 2, "expected a key or `*` after `..`")?;
                (Seg::Descend(Box::new(inner)), end)
            }
            '.' => name_seg(chars, i + 1, "expected a key or `*` after `.`")?,
            '[' => bracket_seg(chars, i)?,
            _ => return Err((i, "expected `.`, `..` or `[`")),
        };
        segs.push(seg);
        i = next;
    }
    Ok(segs)
}

/// A key or `*` starting at `start`, up to the next `.` or `[`; and where it ends.
fn name_seg(
    chars: &[char],
    start: usize,
    missing: &'static str,
) -> Result<(Seg, usize), PathError> {
    let rest = chars.get(start..).unwrap_or_default();
    let end = start + rest.iter().take_while(|&&c| c != '.' && c != '[').count();
    if end == start {
        return Err((start, missing));
    }
    let name: String = chars[start..end].iter().collect();
    let seg = if name == "*" {
        Seg::Any
    } else {
        Seg::Key(name)
    };
    Ok((seg, end))
}

/// `[n]`, `[*]`, `['key']` or `["key"]` opening at `open`; and the index after its `]`.
fn bracket_seg(chars: &[char], open: usize) -> Result<(Seg, usize), PathError> {
    let Some(close) = chars[open..]
        .iter()
        .position(|&c| c == ']')
        .map(|p| p + open)
    else {
        return Err((open, "`[` without `]`"));
    };
    let inside: String = chars[open + 1..close].iter().collect();
    let inside = inside.trim();
    let seg = if inside == "*" {
        Seg::Any
    } else if let Ok(n) = inside.parse::<usize>() {
        Seg::Index(n)
    } else if inside.len() >= 2
        && ((inside.starts_with('\'') && inside.ends_with('\''))
            || (inside.starts_with('"') && inside.ends_with('"')))
    {
        Seg::Key(inside[1..inside.len() - 1].to_owned())
    } else {
        return Err((open + 1, "inside `[]` put an index, `*` or a quoted key"));
    };
    Ok((seg, close + 1))
}

fn strip(value: &mut Value, segs: &[Seg]) {
    let Some((seg, rest)) = segs.split_first() else {
        *value = Value::String(IGNORED.into());
        return;
    };
    match seg {
        Seg::Key(key) => {
            if let Value::Object(map) = value {
                if rest.is_empty() {
                    map.remove(key);
                } else if let Some(child) = map.get_mut(key) {
                    strip(child, rest);
                }
            }
        }
        Seg::Index(i) => {
            if let Value::Array(items) = value
                && let Some(child) = items.get_mut(*i)
            {
                strip(child, rest);
            }
        }
        Seg::Any => match value {
            Value::Object(map) if rest.is_empty() => map.clear(),
            Value::Object(map) => map.values_mut().for_each(|c| strip(c, rest)),
            Value::Array(items) => items.iter_mut().for_each(|c| strip(c, rest)),
            _ => {}
        },
        Seg::Descend(inner) => {
            let mut here = Vec::with_capacity(segs.len());
            here.push((**inner).clone());
            here.extend_from_slice(rest);
            strip(value, &here);
            match value {
                Value::Object(map) => map.values_mut().for_each(|c| strip(c, segs)),
                Value::Array(items) => items.iter_mut().for_each(|c| strip(c, segs)),
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Volatile values
// ---------------------------------------------------------------------------------------------

/// `text` with every ISO-8601 date-time replaced by [`TIME`] and every JWT by [`JWT`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let (mut last, mut i) = (0, 0);
    while i < bytes.len() {
        let found = if bytes[i].is_ascii_digit() && boundary(bytes, i, u8::is_ascii_alphanumeric) {
            iso_time_len(&bytes[i..]).map(|len| (len, TIME))
        } else if bytes[i] == b'e' && boundary(bytes, i, |b| is_b64url(*b)) {
            jwt_len(&bytes[i..]).map(|len| (len, JWT))
        } else {
            None
        };
        match found {
            // Matches start and end on ASCII bytes, so these are character boundaries.
            Some((len, marker)) => {
                let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buf.push_str(&text[last..i]);
                buf.push_str(marker);
                i += len;
                last = i;
            }
            None => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.push_str(&text[last..]);
            Cow::Owned(buf)
        }
    }
}

fn boundary(bytes: &[u8], i: usize, word: impl Fn(&u8) -> bool) -> bool {
    i == 0 || !word(&bytes[i - 1])
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Length of a `YYYY-MM-DD[T ]hh:mm[:ss[.fff]][Z|±hh[:]mm]` at the start of `b`.
fn iso_time_len(b: &[u8]) -> Option<usize> {
    let digits =
        |at: usize, n: usize| (at..at + n).all(|k| b.get(k).is_some_and(u8::is_ascii_digit));
    let is = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
    if !(digits(0, 4) && is(4, b"-") && digits(5, 2) && is(7, b"-") && digits(8, 2)) {
        return None;
    }
    if !(is(10, b"Tt ") && digits(11, 2) && is(13, b":") && digits(14, 2)) {
        return None;
    }
    let mut i = 16;
    if is(i, b":") && digits(i + 1, 2) {
        i += 3;
        if is(i, b".,") && digits(i + 1, 1) {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
    }
    if is(i, b"Zz") {
        i += 1;
    } else if is(i, b"+-") && digits(i + 1, 2) {
        if is(i + 3, b":") && digits(i + 4, 2) {
            i += 6;
        } else if digits(i + 3, 2) {
            i += 5;
        } else {
            i += 3;
        }
    }
    Some(i)
}

/// Length of a JWT (`eyJ…` header, payload and possibly empty signature) at the start of `b`.
fn jwt_len(b: &[u8]) -> Option<usize> {
    if !b.starts_with(b"eyJ") {
        return None;
    }
    let run = |from: usize| {
        let mut j = from;
        while b.get(j).is_some_and(|c| is_b64url(*c)) {
            j += 1;
        }
        j
    };
    let header_end = run(0);
    if b.get(header_end) != Some(&b'.') {
        return None;
    }
    let payload_end = run(header_end + 1);
    if payload_end < header_end + 3 || b.get(payload_end) != Some(&b'.') {
        return None;
    }
    Some(run(payload_end + 1))
}

fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => map.values_mut().for_each(scrub_value),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// A Socket.IO payload: JSON, or raw text when it does not parse.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    None,
    Json(Value),
    Raw(String),
}

/// A body reduced to what is compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    /// An Engine.IO message carrying a Socket.IO packet.
    Packet {
        kind: sio::PacketType,
        attachments: usize,
        nsp: String,
        id: Option<u64>,
        payload: Payload,
    },
    Json(Value),
    Text(String),
}

impl Body {
    /// Reads `text` as a packet, JSON or text, removes volatile values and what `rules` ignore.
    pub fn parse(text: &str, rules: &Rules) -> Body {
        if text.is_empty() {
            return Body::Empty;
        }
        if let Some(packet) = text.strip_prefix('4')
            && let Ok(header) = sio::parse_header(packet)
        {
            let payload = if header.payload.is_empty() {
                Payload::None
            } else {
                match serde_json::from_str::<Value>(header.payload) {
                    Ok(mut v) => {
                        scrub_value(&mut v);
                        rules.strip(&mut v);
                        Payload::Json(v)
                    }
                    Err(_) => Payload::Raw(scrub(header.payload).into_owned()),
                }
            };
            return Body::Packet {
                kind: header.kind,
                attachments: header.attachments,
                nsp: header.nsp.to_owned(),
                id: header.id,
                payload,
            };
        }
        let trimmed = text.trim_start();
        if trimmed.starts_with(['{', '[', '"'])
            && let Ok(mut v) = serde_json::from_str::<Value>(text)
        {
            scrub_value(&mut v);
            rules.strip(&mut v);
            return Body::Json(v);
        }
        Body::Text(scrub(text).into_owned())
    }

    /// The canonical text: packets re-encoded with sorted JSON keys, JSON compact and sorted.
    pub fn canonical(&self) -> String {
        match self {
            Body::Empty => String::new(),
            Body::Packet {
                kind,
                attachments,
                nsp,
                id,
                payload,
            } => {
                let mut out = format!("4{}", kind.digit());
                if kind.is_binary() {
                    out.push_str(&format!("{attachments}-"));
                }
                if nsp != "/" {
                    out.push_str(nsp);
                    out.push(',');
                }
                if let Some(id) = id {
                    out.push_str(&id.to_string());
                }
                match payload {
                    Payload::None => {}
                    Payload::Json(v) => out.push_str(&v.to_string()),
                    Payload::Raw(r) => out.push_str(r),
                }
                out
            }
            Body::Json(v) => v.to_string(),
            Body::Text(t) => t.clone(),
        }
    }

    /// What differs between an expected and an actual body, one sentence each (empty if equal).
    pub fn explain(expected: &Body, actual: &Body) -> Vec<String> {
        let mut out = Vec::new();
        match (expected, actual) {
            (a, b) if a == b => {}
            (
                Body::Packet {
                    kind: k1,
                    attachments: a1,
                    nsp: n1,
                    id: i1,
                    payload: p1,
                },
                Body::Packet {
                    kind: k2,
                    attachments: a2,
                    nsp: n2,
                    id: i2,
                    payload: p2,
                },
            ) => {
                if k1 != k2 {
                    out.push(format!("packet type: expected {k1}, got {k2}"));
                }
                if a1 != a2 {
                    out.push(format!("attachments: expected {a1}, got {a2}"));
                }
                if n1 != n2 {
                    out.push(format!("namespace: expected {n1}, got {n2}"));
                }
                if i1 != i2 {
                    let show = |id: &Option<u64>| id.map_or("none".to_owned(), |i| i.to_string());
                    out.push(format!("ack id: expected {}, got {}", show(i1), show(i2)));
                }
                match (p1, p2) {
                    (Payload::Json(a), Payload::Json(b)) => json_diff("payload $", a, b, &mut out),
                    (a, b) if a != b => out.push(format!(
                        "payload: expected {}, got {}",
                        payload_text(a),
                        payload_text(b)
                    )),
                    _ => {}
                }
            }
            (Body::Json(a), Body::Json(b)) => json_diff("$", a, b, &mut out),
            (a, b) => out.push(format!(
                "expected {}, got {}",
                a.describe_kind(),
                b.describe_kind()
            )),
        }
        out.truncate(MAX_DETAILS);
        out
    }

    fn describe_kind(&self) -> String {
        match self {
            Body::Empty => "an empty body".into(),
            Body::Packet { kind, .. } => format!("a Socket.IO {kind} packet"),
            Body::Json(_) => "a JSON body".into(),
            Body::Text(_) => "a text body".into(),
        }
    }
}

fn payload_text(p: &Payload) -> String {
    match p {
        Payload::None => "none".into(),
        Payload::Json(v) => v.to_string(),
        Payload::Raw(r) => format!("`{r}`"),
    }
}

/// Appends "at <path>: expected …, got …" for each difference (bounded by [`MAX_DETAILS`]).
fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_DETAILS || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let child = member_path(path, k);
                match y.get(k) {
                    Some(vb) => json_diff(&child, va, vb, out),
                    None => out.push(format!("{child}: expected {va}, missing")),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(format!("{}: unexpected {vb}", member_path(path, k)));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let child = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => json_diff(&child, va, vb, out),
                    (Some(va), None) => out.push(format!("{child}: expected {va}, missing")),
                    (None, Some(vb)) => out.push(format!("{child}: unexpected {vb}")),
                    (None, None) => {}
                }
            }
        }
        _ => out.push(format!("{path}: expected {a}, got {b}")),
    }
    out.truncate(MAX_DETAILS);
}

fn member_path(path: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_') {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// REST calls
// ---------------------------------------------------------------------------------------------

/// A REST call reduced to what is compared: operation, target, query and body.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    pub operation: OperationName,
    pub target: String,
    pub query: BTreeMap<String, Vec<String>>,
    pub body: Body,
}

impl CallView {
    /// The view of a call; the operation and target come from the REST routing table (the
    /// call's own operation names it when its path is not a route).
    pub fn new(call: &RestCall, rules: &Rules) -> CallView {
        let (operation, target) = match crate::rest::route(&call.method, &call.path) {
            Ok((_, op)) => (op.kind(), op.target()),
            Err(_) => (call.operation, format!("{} {}", call.method, call.path)),
        };
        let query = call
            .query
            .iter()
            .filter(|(k, _)| !rules.ignores_query(k))
            .map(|(k, vs)| {
                // A recording holds secret query values redacted: compare them that way.
                let secret = redact::is_secret_name(k);
                let mut vs: Vec<String> = vs
                    .iter()
                    .map(|v| {
                        if secret {
                            REDACTED.to_owned()
                        } else {
                            scrub(v).into_owned()
                        }
                    })
                    .collect();
                vs.sort();
                (k.clone(), vs)
            })
            .collect();
        CallView {
            operation,
            target,
            query,
            body: Body::parse(&call.body, rules),
        }
    }

    /// One line naming the call; equal lines mean equal calls.
    pub fn key(&self) -> String {
        let mut out = format!("{} [{}]", self.operation, self.target);
        if !self.query.is_empty() {
            let pairs: Vec<String> = self
                .query
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
                .collect();
            out.push_str(&format!(" ?{}", pairs.join("&")));
        }
        let body = self.body.canonical();
        if !body.is_empty() {
            out.push_str(" body ");
            out.push_str(&body);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Verdicts
// ---------------------------------------------------------------------------------------------

/// One way an event's replay differs from its recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Diff {
    /// An answer where none was recorded, or the reverse.
    Outcome { expected: String, actual: String },
    /// A different status class.
    Status { expected: u16, actual: u16 },
    /// A different body.
    Body {
        expected: String,
        actual: String,
        details: Vec<String>,
    },
    /// Recorded REST calls the handler did not make.
    RestMissing(Vec<String>),
    /// REST calls the handler made that were not recorded.
    RestUnexpected(Vec<String>),
}

impl Diff {
    /// A short name for machine-readable reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Diff::Outcome { .. } => "outcome",
            Diff::Status { .. } => "status",
            Diff::Body { .. } => "body",
            Diff::RestMissing(_) => "restMissing",
            Diff::RestUnexpected(_) => "restUnexpected",
        }
    }

    /// Readable lines, the first one saying what differs.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Diff::Outcome { expected, actual } => vec![
                "outcome differs".into(),
                format!("  expected: {expected}"),
                format!("  actual:   {actual}"),
            ],
            Diff::Status { expected, actual } => vec![format!(
                "status: expected {expected} ({}), got {actual} ({})",
                class(*expected),
                class(*actual)
            )],
            Diff::Body {
                expected,
                actual,
                details,
            } => {
                let mut lines = vec![
                    "body differs".into(),
                    format!("  expected: {}", shown(expected)),
                    format!("  actual:   {}", shown(actual)),
                ];
                lines.extend(details.iter().map(|d| format!("  - {d}")));
                lines
            }
            Diff::RestMissing(calls) => {
                let mut lines = vec![format!(
                    "{} recorded REST call(s) missing (the handler did not make them):",
                    calls.len()
                )];
                lines.extend(calls.iter().map(|c| format!("  - {c}")));
                lines
            }
            Diff::RestUnexpected(calls) => {
                let mut lines = vec![format!(
                    "{} unexpected REST call(s) (made now, not recorded):",
                    calls.len()
                )];
                lines.extend(calls.iter().map(|c| format!("  + {c}")));
                lines
            }
        }
    }
}

fn shown(body: &str) -> String {
    if body.is_empty() {
        "(empty)".into()
    } else {
        crate::traffic::preview(body, 300)
    }
}

/// `2xx`, `4xx`, …
pub fn class(status: u16) -> String {
    format!("{}xx", status / 100)
}

/// The comparison of one event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// An `event:` rule matched: sent, not compared.
    pub ignored: bool,
    pub diffs: Vec<Diff>,
}

impl Verdict {
    pub fn matched(&self) -> bool {
        self.ignored || self.diffs.is_empty()
    }
}

/// Compares what replaying `event` produced (`actual`, and the REST `calls` it made) with the
/// recording.
pub fn compare(event: &Event, actual: &Expectation, calls: &[CallView], rules: &Rules) -> Verdict {
    if rules.ignores_event(&event.call.event) {
        return Verdict {
            ignored: true,
            diffs: Vec::new(),
        };
    }
    let mut diffs = compare_outcome(&event.expected, actual, rules);
    diffs.extend(compare_calls(event, calls, rules));
    Verdict {
        ignored: false,
        diffs,
    }
}

/// The answer: same status class and (after the rules) the same body, or both no answer.
fn compare_outcome(expected: &Expectation, actual: &Expectation, rules: &Rules) -> Vec<Diff> {
    let mut diffs = Vec::new();
    match (expected, actual) {
        (Expectation::Response(e), Expectation::Response(a)) => {
            if e.status / 100 != a.status / 100 {
                diffs.push(Diff::Status {
                    expected: e.status,
                    actual: a.status,
                });
            }
            let (eb, ab) = (Body::parse(&e.body, rules), Body::parse(&a.body, rules));
            if eb != ab {
                diffs.push(Diff::Body {
                    expected: e.body.clone(),
                    actual: a.body.clone(),
                    details: Body::explain(&eb, &ab),
                });
            }
        }
        (Expectation::Error(_), Expectation::Error(_)) => {}
        (expected, actual) => diffs.push(Diff::Outcome {
            expected: describe(expected),
            actual: describe(actual),
        }),
    }
    diffs
}

/// The REST calls, as a multiset in any order: recorded ones not made, then extra ones made.
fn compare_calls(event: &Event, calls: &[CallView], rules: &Rules) -> Vec<Diff> {
    let expected_calls: Vec<String> = event
        .rest
        .iter()
        .map(|c| CallView::new(&c.call, rules))
        .filter(|c| !rules.ignores_operation(c.operation))
        .map(|c| c.key())
        .collect();
    let mut remaining: Vec<String> = calls
        .iter()
        .filter(|c| !rules.ignores_operation(c.operation))
        .map(CallView::key)
        .collect();
    let mut missing = Vec::new();
    for call in expected_calls {
        match remaining.iter().position(|c| *c == call) {
            Some(i) => {
                remaining.remove(i);
            }
            None => missing.push(call),
        }
    }
    let mut diffs = Vec::new();
    if !missing.is_empty() {
        diffs.push(Diff::RestMissing(missing));
    }
    if !remaining.is_empty() {
        diffs.push(Diff::RestUnexpected(remaining));
    }
    diffs
}

/// One phrase for an outcome: `200 text/plain `43[…]`` or `no answer (…)`.
pub fn describe(outcome: &Expectation) -> String {
    match outcome {
        Expectation::Response(r) if r.body.is_empty() => format!("{} (empty body)", r.status),
        Expectation::Response(r) => format!("{} {}", r.status, shown(&r.body)),
        Expectation::Error(e) => format!("no answer: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(list: &[&str]) -> Rules {
        Rules {
            rules: list.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn rule_syntax() {
        assert_eq!(
            "event:say".parse::<Rule>().unwrap(),
            Rule::Event("say".into())
        );
        assert!("body:ts".parse::<Rule>().is_err());
        assert!(
            "nope:x"
                .parse::<Rule>()
                .unwrap_err()
                .to_string()
                .contains("unknown rule kind")
        );
        assert!("event:".parse::<Rule>().is_err());
        assert!("event".parse::<Rule>().is_err());
        assert_eq!(
            "body:$..id".parse::<Rule>().unwrap().to_string(),
            "body:$..id"
        );
    }

    #[test]
    fn json_paths_strip() {
        let mut v = json!({"ts": 1, "a": [{"id": 1, "x": 2}, {"id": 2}], "b": {"c": {"id": 3}}});
        JsonPath::parse("$.ts").unwrap().strip(&mut v);
        JsonPath::parse("$..id").unwrap().strip(&mut v);
        assert_eq!(v, json!({"a": [{"x": 2}, {}], "b": {"c": {}}}));
        let mut v = json!(["joined", "room", 5]);
        JsonPath::parse("$[2]").unwrap().strip(&mut v);
        assert_eq!(v, json!(["joined", "room", IGNORED]));
        let mut v = json!({"a b": 1, "c": 2});
        JsonPath::parse("$['a b']").unwrap().strip(&mut v);
        assert_eq!(v, json!({"c": 2}));
        let mut v = json!([{"t": 1, "k": 1}, {"t": 2}]);
        JsonPath::parse("$[*].t").unwrap().strip(&mut v);
        assert_eq!(v, json!([{"k": 1}, {}]));
        let mut v = json!(1);
        JsonPath::parse("$").unwrap().strip(&mut v);
        assert_eq!(v, json!(IGNORED));
        for bad in ["ts", "$.", "$[", "$[x]", "$..", "$x"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_path_error_message_text() {
        assert_eq!(
            JsonPath::parse("$x").unwrap_err().to_string(),
            "invalid JSON path `$x` at character 2: expected `.`, `..` or `[` (paths look like \
             `$.ts`, `$[1].sentAt`, `$['a b']`, `$[*].id` or `$..id`)"
        );
    }

    #[test]
    fn volatile_values_are_scrubbed() {
        assert_eq!(scrub("at 2024-01-01T00:00:00Z ok"), "at <time> ok");
        assert_eq!(scrub("2024-01-01T00:00:00.123+02:00"), TIME);
        assert_eq!(scrub("2024-01-01 10:11"), TIME);
        assert_eq!(scrub("2024-01-01"), "2024-01-01");
        assert_eq!(scrub("x12024-01-01T00:00Z"), "x12024-01-01T00:00Z");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig-_x";
        assert_eq!(scrub(&format!("token {jwt}!")), "token <jwt>!");
        assert_eq!(scrub("eyJonly.one"), "eyJonly.one");
        assert_eq!(scrub("héllo 2024-01-01T00:00:00Z é"), "héllo <time> é");
        assert!(matches!(scrub("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn packets_compare_structurally() {
        let r = Rules::default();
        let a = Body::parse(r#"43/chat,7["ok",{"a":1,"b":2}]"#, &r);
        let b = Body::parse(r#"43/chat,7["ok",{"b":2,"a":1}]"#, &r);
        assert_eq!(a, b);
        let c = Body::parse(r#"43/chat,8["ok!",{"b":2,"a":1}]"#, &r);
        let details = Body::explain(&a, &c);
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(details[0].contains("ack id: expected 7, got 8"));
        assert!(details[1].contains("payload $[0]: expected \"ok\", got \"ok!\""));
        assert_eq!(Body::parse("", &r), Body::Empty);
        assert_eq!(
            Body::parse("not allowed", &r),
            Body::Text("not allowed".into())
        );
        let t1 = Body::parse(r#"43["at","2024-01-01T00:00:00Z"]"#, &r);
        let t2 = Body::parse(r#"43["at","2025-06-01T10:00:00.5Z"]"#, &r);
        assert_eq!(t1, t2);
        let ignoring = rules(&["body:$[1]"]);
        assert_eq!(
            Body::parse(r#"43[1,"x"]"#, &ignoring),
            Body::parse(r#"43[1,"y"]"#, &ignoring)
        );
        assert_eq!(
            Body::parse(r#"43/chat,7["ok"]"#, &r).canonical(),
            r#"43/chat,7["ok"]"#
        );
    }

    #[test]
    fn calls_are_routed_and_keyed() {
        let r = Rules::default();
        let mut query = BTreeMap::new();
        query.insert("api-version".to_owned(), vec!["2024-01-01".to_owned()]);
        query.insert("filter".to_owned(), vec!["x eq 'y'".to_owned()]);
        let call = |method: http::Method, path: &str, body: &str| RestCall {
            method,
            operation: OperationName::Unknown,
            hub: String::new(),
            path: path.into(),
            query: query.clone(),
            body: body.into(),
            status: 202,
        };
        let send = call(
            http::Method::POST,
            "/api/hubs/chat/groups/0~L2NoYXQ~bG9iYnk/:send",
            r#"42/chat,["message","alice","hi"]"#,
        );
        let view = CallView::new(&send, &r);
        assert_eq!(view.operation, OperationName::SendToGroup);
        assert_eq!(
            view.key(),
            r#"SendToGroup [group 0~L2NoYXQ~bG9iYnk (/chat room "lobby")] ?filter=x eq 'y' body 42/chat,["message","alice","hi"]"#
        );
        let mut unrouted = call(http::Method::PATCH, "/api/x", "");
        unrouted.query.clear();
        assert_eq!(CallView::new(&unrouted, &r).key(), "Unknown [PATCH /api/x]");
        let to_all = call(http::Method::POST, "/api/hubs/chat/:send", "42[\"a\"]");
        let no_filter = CallView::new(&to_all, &rules(&["query:filter"]));
        assert!(no_filter.query.is_empty());
        // A recording holds a secret query value redacted; the live call still matches it.
        let mut live = to_all.clone();
        live.query.insert("sig".into(), vec!["s1".into()]);
        let mut recorded = to_all.clone();
        recorded.query.insert("sig".into(), vec![REDACTED.into()]);
        assert_eq!(CallView::new(&live, &r), CallView::new(&recorded, &r));
        assert!(!CallView::new(&live, &r).key().contains("s1"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn readers_never_panic(text in any::<String>()) {
                let rules = Rules::default();
                let body = Body::parse(&text, &rules);
                let _ = Body::explain(&body, &Body::parse("43[1]", &rules));
                let _ = JsonPath::parse(&text);
                let _ = text.parse::<Rule>();
                let _ = glob(&text, "SendToGroup");
            }

            #[test]
            fn scrubbing_is_idempotent(text in "[0-9T:\\-Z .eyJa-z_]{0,40}") {
                let once = scrub(&text).into_owned();
                prop_assert_eq!(scrub(&once).into_owned(), once);
            }

            #[test]
            fn a_body_equals_itself_reordered(a in 0i64..100, b in "[a-z]{0,8}") {
                let rules = Rules::default();
                let x = Body::parse(&format!(r#"43/chat,5[{{"a":{a},"b":"{b}"}}]"#), &rules);
                let y = Body::parse(&format!(r#"43/chat,5[{{ "b" : "{b}", "a" : {a} }}]"#), &rules);
                prop_assert!(Body::explain(&x, &y).is_empty());
                prop_assert_eq!(x, y);
            }
        }
    }
}
