//! How replay results are shown, separate from how they were obtained: the pretty report (one
//! line per event, ✓/✗, then a readable diff under each mismatch), the JSON report (one object
//! per event and a final summary, NDJSON like `serve --format json`), and the JUnit XML report for
//! CI (one test case per recorded event, the diff as the failure text).
//!
//! Pure functions from the runner's results to strings; the CLI decides where they go. Colours go
//! through `colored`, which the CLI switches on or off (`--color`).

use std::fmt::Write as _;

use colored::Colorize;
use serde::Serialize;
use serde_json::{Value, json};

use super::compare::{self, Diff};
use super::runner::{EventResult, Outcome, SessionResult, label};
use super::session::{Expectation, Session};

/// Characters of a socket id shown in the pretty report (sio-emu's ids have 20).
const SOCKET_CHARS: usize = 20;

/// The pretty report's first line: what is replayed where, and the sink's endpoint.
pub fn pretty_start_text(files: &str, events: usize, target: &str, sink: &str) -> String {
    format!(
        "{} {events} event(s) from {files} → {target}\n  REST sink {sink} (handler connection \
         string: Endpoint={sink};AccessKey=<access key>;Version=1.0;)",
        "replaying".bold(),
    )
}

/// The heading above a session's events.
pub fn pretty_session(session: &Session) -> String {
    let mut out = format!(
        "{} ({} event(s)",
        session.path.display().to_string().bold(),
        session.events.len()
    );
    if !session.recorded_by.is_empty() {
        let _ = write!(out, ", recorded by sio-emu {}", session.recorded_by);
    }
    out.push(')');
    out
}

/// One event: the ✓/✗ line, then the diff of a mismatch.
pub fn pretty_event(session: &Session, result: &EventResult) -> String {
    let event = &session.events[result.index];
    let status = match &result.actual {
        Expectation::Response(r) => r.status.to_string(),
        Expectation::Error(_) => "no answer".to_owned(),
    };
    let mut out = format!(
        "{} #{:<3} {:<14} {:<10} socket {:<width$} {}",
        mark(result),
        result.index + 1,
        event.call.event,
        event.call.namespace,
        crate::traffic::preview(&event.call.socket_id, SOCKET_CHARS),
        status,
        width = SOCKET_CHARS + 1,
    );
    if result.verdict.ignored {
        out.push_str(&"  (ignored)".dimmed().to_string());
    }
    if !result.calls.is_empty() {
        let _ = write!(
            out,
            "{}",
            format!("  {} REST call(s)", result.calls.len()).dimmed()
        );
    }
    if !result.verdict.matched() {
        pretty_mismatch(&mut out, session, event.line, result);
    }
    for finding in &result.findings {
        let _ = write!(
            out,
            "\n      {} [{} {}] {}",
            "lint".yellow().bold(),
            finding.rule,
            finding.section,
            finding.message
        );
    }
    out
}

/// `-` ignored, `✓` matched, `✗` mismatched.
fn mark(result: &EventResult) -> String {
    if result.verdict.ignored {
        "-".dimmed().to_string()
    } else if result.verdict.matched() {
        "✓".green().to_string()
    } else {
        "✗".red().bold().to_string()
    }
}

/// Where a mismatched event is in its file, then its diffs, the first line of each in yellow.
fn pretty_mismatch(out: &mut String, session: &Session, line: usize, result: &EventResult) {
    let file = session
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = write!(out, "  ({file}:{line})");
    for diff in &result.verdict.diffs {
        for (i, line) in diff.lines().iter().enumerate() {
            let line = if i == 0 {
                line.yellow().to_string()
            } else {
                line.clone()
            };
            let _ = write!(out, "\n      {line}");
        }
    }
}

/// The closing lines: per session and overall counts, `--update` notes, the next step.
pub fn pretty_summary(sessions: &[Session], outcome: &Outcome) -> String {
    let mut out = String::new();
    for (session, result) in sessions.iter().zip(&outcome.sessions) {
        pretty_session_counts(&mut out, session, result);
        out.push('\n');
    }
    pretty_verdict(&mut out, outcome);
    out
}

/// One session's counts: matched, mismatched, ignored, findings, `--update` result.
fn pretty_session_counts(out: &mut String, session: &Session, result: &SessionResult) {
    let total = result.results.len();
    let ignored = result.results.iter().filter(|r| r.verdict.ignored).count();
    let bad = result.mismatches();
    let _ = write!(
        out,
        "{}: {} of {total} event(s) matched",
        session.path.display(),
        total - bad - ignored
    );
    if bad > 0 {
        let _ = write!(out, ", {}", format!("{bad} mismatched").red().bold());
    }
    if ignored > 0 {
        let _ = write!(out, ", {ignored} ignored");
    }
    let findings = result.findings();
    if findings > 0 {
        let _ = write!(
            out,
            ", {}",
            format!("{findings} contract finding(s)").yellow().bold()
        );
    }
    match result.updated {
        Some(0) => out.push_str("; nothing to update"),
        Some(n) => {
            let _ = write!(
                out,
                "; {}",
                format!("{n} event(s) updated in the file").cyan()
            );
        }
        None => {}
    }
}

/// The last line: what failed and what to do next, or that all is well.
fn pretty_verdict(out: &mut String, outcome: &Outcome) {
    let failing: usize = outcome
        .sessions
        .iter()
        .filter(|s| s.updated.is_none())
        .map(|s| s.mismatches())
        .sum();
    if failing > 0 {
        let _ = write!(
            out,
            "{} — if the change is deliberate, rerun with --update to record the new answers",
            format!("{failing} event(s) mismatched").red().bold()
        );
        if let Some(hint) = refusal_hint(outcome) {
            let _ = write!(out, "\nhint: {hint}");
        }
    } else if outcome.findings() > 0 {
        let _ = write!(
            out,
            "{} — every event matched, but the handler broke the contract (see the lint lines)",
            format!("{} contract finding(s)", outcome.findings())
                .red()
                .bold()
        );
    } else if outcome
        .sessions
        .iter()
        .any(|s| s.updated.is_some_and(|n| n > 0))
    {
        let _ = write!(
            out,
            "{}",
            "session file(s) updated; replay again without --update to check them"
                .green()
                .bold()
        );
    } else {
        let _ = write!(out, "{}", "all events matched".green().bold());
    }
}

/// When the handler refused with 401/403 what it accepted while recording, the usual cause is
/// a key mismatch between the replay and the handler's connection string.
fn refusal_hint(outcome: &Outcome) -> Option<&'static str> {
    let refused = outcome
        .sessions
        .iter()
        .flat_map(|s| s.results.iter())
        .flat_map(|r| r.verdict.diffs.iter())
        .any(|d| {
            matches!(d, Diff::Status { expected, actual }
                if (200..300).contains(expected) && matches!(actual, 401 | 403))
        });
    refused.then_some(
        "the handler refused with 401/403 events it accepted when the session was recorded: does \
         its connection string carry the key replay signs with (--access-key, default: the \
         development key), and is its Endpoint http://localhost:<--rest-port>?",
    )
}

/// An outcome in the JSON report.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutcomeJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl<'a> OutcomeJson<'a> {
    fn of(outcome: &'a Expectation) -> Self {
        match outcome {
            Expectation::Response(r) => OutcomeJson {
                status: Some(r.status),
                content_type: r.content_type.as_deref(),
                body: Some(&r.body),
                latency_ms: Some(r.latency_ms),
                error: None,
            },
            Expectation::Error(e) => OutcomeJson {
                status: None,
                content_type: None,
                body: None,
                latency_ms: None,
                error: Some(e),
            },
        }
    }
}

/// A REST call in the JSON report.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallJson<'a> {
    method: &'a str,
    operation: &'a str,
    path: &'a str,
    query: &'a std::collections::BTreeMap<String, Vec<String>>,
    body: &'a str,
    status: u16,
    offset_ms: f64,
}

/// A difference in the JSON report: `kind`, the readable `lines`, and the values compared.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffJson<'a> {
    kind: &'static str,
    message: String,
    lines: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actual: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calls: Option<&'a [String]>,
}

impl<'a> DiffJson<'a> {
    fn of(diff: &'a Diff) -> Self {
        let lines = diff.lines();
        let mut out = DiffJson {
            kind: diff.kind(),
            message: lines.first().cloned().unwrap_or_default(),
            lines,
            expected: None,
            actual: None,
            details: None,
            calls: None,
        };
        match diff {
            Diff::Outcome { expected, actual } => {
                out.expected = Some(json!(expected));
                out.actual = Some(json!(actual));
            }
            Diff::Status { expected, actual } => {
                out.expected = Some(json!(expected));
                out.actual = Some(json!(actual));
            }
            Diff::Body {
                expected,
                actual,
                details,
            } => {
                out.expected = Some(json!(expected));
                out.actual = Some(json!(actual));
                out.details = Some(details);
            }
            Diff::RestMissing(calls) | Diff::RestUnexpected(calls) => out.calls = Some(calls),
        }
        out
    }
}

/// `{"type":"event",…}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventJson<'a> {
    r#type: &'static str,
    session: String,
    line: usize,
    index: usize,
    event: &'a str,
    hub: &'a str,
    namespace: &'a str,
    socket_id: &'a str,
    connection_id: &'a str,
    user_id: Option<&'a str>,
    /// `matched`, `mismatched` or `ignored`.
    verdict: &'static str,
    expected: OutcomeJson<'a>,
    actual: OutcomeJson<'a>,
    rest: Vec<CallJson<'a>>,
    diffs: Vec<DiffJson<'a>>,
    /// `--strict`: contract-lint findings during the event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    findings: Vec<FindingJson<'a>>,
    elapsed_ms: f64,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    rule: &'a str,
    section: &'a str,
    message: &'a str,
}

fn findings_json(findings: &[crate::lint::Finding]) -> Vec<FindingJson<'_>> {
    findings
        .iter()
        .map(|f| FindingJson {
            rule: f.rule,
            section: f.section,
            message: &f.message,
        })
        .collect()
}

/// One `{"type":"event",…}` line.
pub fn json_event(session: &Session, result: &EventResult) -> String {
    let event = &session.events[result.index];
    let verdict = if result.verdict.ignored {
        "ignored"
    } else if result.verdict.matched() {
        "matched"
    } else {
        "mismatched"
    };
    let line = EventJson {
        r#type: "event",
        session: session.path.display().to_string(),
        line: event.line,
        index: result.index + 1,
        event: &event.call.event,
        hub: &event.call.hub,
        namespace: &event.call.namespace,
        socket_id: &event.call.socket_id,
        connection_id: &event.call.connection_id,
        user_id: event.call.user_id.as_deref(),
        verdict,
        expected: OutcomeJson::of(&event.expected),
        actual: OutcomeJson::of(&result.actual),
        rest: result
            .calls
            .iter()
            .map(|c| CallJson {
                method: c.call.method.as_str(),
                operation: c.call.operation.as_str(),
                path: &c.call.path,
                query: &c.call.query,
                body: &c.call.body,
                status: c.call.status,
                offset_ms: crate::traffic::millis(c.offset),
            })
            .collect(),
        diffs: result.verdict.diffs.iter().map(DiffJson::of).collect(),
        findings: findings_json(&result.findings),
        elapsed_ms: crate::traffic::millis(result.elapsed),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// `{"type":"start",…}`: what is replayed where; `restPort` is the port the sink bound.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartJson<'a> {
    r#type: &'static str,
    target: &'a str,
    events: usize,
    rest_sink: &'a str,
    rest_port: Option<u16>,
}

/// One `{"type":"start",…}` line.
pub fn json_start(target: &str, events: usize, sink: &str) -> String {
    let line = StartJson {
        r#type: "start",
        target,
        events,
        rest_sink: sink,
        rest_port: sink.rsplit(':').next().and_then(|p| p.parse().ok()),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionJson<'a> {
    path: String,
    events: usize,
    mismatched: usize,
    /// Contract-lint findings (`--strict`).
    findings: usize,
    /// Events rewritten by `--update` (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<usize>,
    warnings: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryJson<'a> {
    r#type: &'static str,
    events: usize,
    matched: usize,
    mismatched: usize,
    ignored: usize,
    /// Contract-lint findings (`--strict`), all sessions.
    findings: usize,
    rest_sink: &'a str,
    sessions: Vec<SessionJson<'a>>,
    warnings: &'a [String],
}

/// The final `{"type":"summary",…}` line.
pub fn json_summary(sessions: &[Session], outcome: &Outcome) -> String {
    let all = || outcome.sessions.iter().flat_map(|s| s.results.iter());
    let total = all().count();
    let ignored = all().filter(|r| r.verdict.ignored).count();
    let mismatched = outcome.mismatches();
    let line = SummaryJson {
        r#type: "summary",
        events: total,
        matched: total - ignored - mismatched,
        mismatched,
        ignored,
        findings: outcome.findings(),
        rest_sink: &outcome.sink_endpoint,
        sessions: sessions
            .iter()
            .zip(&outcome.sessions)
            .map(|(s, r)| SessionJson {
                path: s.path.display().to_string(),
                events: r.results.len(),
                mismatched: r.mismatches(),
                findings: r.findings(),
                updated: r.updated,
                warnings: &s.warnings,
            })
            .collect(),
        warnings: &outcome.warnings,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The JUnit XML report: a `<testsuite>` per session, a `<testcase>` per recorded event.
pub fn junit(sessions: &[Session], outcome: &Outcome) -> String {
    let all = || outcome.sessions.iter().flat_map(|s| s.results.iter());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"sio-emu replay\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        all().count(),
        all().filter(|r| failed(r)).count(),
        all().filter(|r| r.verdict.ignored).count(),
        seconds(all()),
    );
    for (session, result) in sessions.iter().zip(&outcome.sessions) {
        junit_suite(&mut out, session, result);
    }
    out.push_str("</testsuites>\n");
    out
}

/// An event fails when it mismatched or (`--strict`) a lint finding occurred during it.
fn failed(r: &EventResult) -> bool {
    !r.verdict.matched() || !r.findings.is_empty()
}

fn seconds<'a>(results: impl Iterator<Item = &'a EventResult>) -> f64 {
    results.map(|r| r.elapsed.as_secs_f64()).sum::<f64>()
}

/// One session's `<testsuite>`.
fn junit_suite(out: &mut String, session: &Session, result: &SessionResult) {
    let name = session.path.display().to_string();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        xml(&name),
        result.results.len(),
        result.results.iter().filter(|r| failed(r)).count(),
        result.results.iter().filter(|r| r.verdict.ignored).count(),
        seconds(result.results.iter()),
    );
    let class = session
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.clone());
    for r in &result.results {
        junit_case(out, session, &class, r);
    }
    out.push_str("  </testsuite>\n");
}

/// One event's `<testcase>`: empty when it passed, else `<skipped>` or `<failure>`.
fn junit_case(out: &mut String, session: &Session, class: &str, r: &EventResult) {
    let event = &session.events[r.index];
    let case = format!(
        "#{} {} {} socket {} (line {})",
        r.index + 1,
        event.call.event,
        event.call.namespace,
        event.call.socket_id,
        event.line
    );
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
        xml(class),
        xml(&case),
        r.elapsed.as_secs_f64()
    );
    if r.verdict.ignored {
        let _ = writeln!(
            out,
            ">\n      <skipped message=\"ignored by an --ignore event: rule\"/>\n    </testcase>"
        );
    } else if r.verdict.matched() && r.findings.is_empty() {
        out.push_str("/>\n");
    } else if r.verdict.matched() {
        junit_lint_failure(out, session, r);
    } else {
        junit_mismatch(out, session, r);
    }
}

/// The `<failure type="lint">` of an event that matched but broke the contract.
fn junit_lint_failure(out: &mut String, session: &Session, r: &EventResult) {
    let message: Vec<String> = r
        .findings
        .iter()
        .map(|f| format!("{} {}", f.rule, f.section))
        .collect();
    let mut text = format!("{}\n", label(session, r.index));
    for f in &r.findings {
        let _ = writeln!(text, "[{} {}] {}", f.rule, f.section, f.message);
    }
    let _ = writeln!(
        out,
        ">\n      <failure type=\"lint\" message=\"{}\">{}</failure>\n    </testcase>",
        xml(&message.join("; ")),
        xml(&text)
    );
}

/// The `<failure type="mismatch">` of an event whose answer differed from the recording.
fn junit_mismatch(out: &mut String, session: &Session, r: &EventResult) {
    let event = &session.events[r.index];
    let message: Vec<String> = r
        .verdict
        .diffs
        .iter()
        .filter_map(|d| d.lines().into_iter().next())
        .collect();
    let mut text = format!(
        "{}\nexpected: {}\nactual:   {}\n",
        label(session, r.index),
        compare::describe(&event.expected),
        compare::describe(&r.actual)
    );
    for diff in &r.verdict.diffs {
        for line in diff.lines() {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let _ = writeln!(
        out,
        ">\n      <failure type=\"mismatch\" message=\"{}\">{}</failure>\n    </testcase>",
        xml(&message.join("; ")),
        xml(&text)
    );
}

/// Escapes text for XML content and attribute values; characters XML 1.0 cannot carry at all
/// (most control characters) become U+FFFD.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_control_characters() {
        assert_eq!(
            xml("<a href=\"x\">&'\u{1e}</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;\u{FFFD}&lt;/a&gt;"
        );
        assert_eq!(xml("line\nnext\ttab"), "line\nnext\ttab");
    }
}
