//! Coloured one-line rendering of [`TrafficEvent`]s for people watching `serve` beside
//! `func start`: a timestamp, a fixed-width kind, then the facts, green for success, red for
//! refusals and failures, yellow for warnings. Colour is controlled globally by `--color`.

use std::fmt::{self, Display, Write as _};

use colored::{ColoredString, Colorize};

use super::escape::{Term, terminal};
use super::hop::{RestHop, WebhookHop};
use super::{TrafficEvent, preview};

const PREVIEW: usize = 80;

/// `12:34:56.789`, the time of day of now.
fn stamp() -> String {
    let mut now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    // `2026-01-01T12:34:56.789Z` → `12:34:56.789`
    if now.len() >= 23 {
        now.truncate(23);
        now.drain(..11);
    }
    now
}

/// `text` in a style when colour is on; written as it is, with no copy, when it is off (the
/// usual case of a log sent to a file or a pipe).
struct Painted<T> {
    text: T,
    style: fn(&str) -> ColoredString,
}

fn painted<T: Display>(text: T, style: fn(&str) -> ColoredString) -> Painted<T> {
    Painted { text, style }
}

impl<T: Display> Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if colored::control::SHOULD_COLORIZE.should_colorize() {
            (self.style)(&self.text.to_string()).fmt(f)
        } else {
            self.text.fmt(f)
        }
    }
}

/// A label padded to the kind column's width.
struct Label<'a>(&'a str);

impl Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<10}", self.0)
    }
}

fn dim(s: &str) -> ColoredString {
    s.dimmed()
}

fn kind(label: &str, ok: bool) -> Painted<Label<'_>> {
    if ok {
        painted(Label(label), |s| s.cyan().bold())
    } else {
        painted(Label(label), |s| s.red().bold())
    }
}

/// An HTTP status, green below 400, red otherwise.
fn http_status(status: u16) -> ColoredString {
    if status < 400 {
        status.to_string().green()
    } else {
        status.to_string().red()
    }
}

fn ns_sock(namespace: &str, socket_id: &str) -> String {
    format!("{}#{}", Term(namespace), painted(Term(socket_id), dim))
}

/// A fixed-width label in bold yellow (warnings and contract findings).
fn notice(label: &str) -> ColoredString {
    format!("{label:<10}").yellow().bold()
}

/// Appends an indented `hint:` line when there is a hint.
fn with_hint(mut line: String, hint: &Option<String>) -> String {
    if let Some(h) = hint {
        line.push_str(&format!("\n    {} {}", "hint:".yellow(), Term(h)));
    }
    line
}

/// ` <message>` dimmed, or nothing.
fn dimmed_message(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(" {}", terminal(m).dimmed()))
        .unwrap_or_default()
}

/// Renders one event as a single line (colour codes included when enabled).
pub fn render(event: &TrafficEvent) -> String {
    let mut line = String::with_capacity(192);
    // `fmt::Write` into a `String` cannot fail.
    let _ = write!(line, "{} ", painted(stamp(), dim));
    // The two lines of every acknowledged event are written straight into the line.
    let _ = match event {
        TrafficEvent::Webhook(hop) => webhook(&mut line, hop),
        TrafficEvent::AckForwarded {
            hub,
            connection_id,
            namespace,
            packet,
        } => write!(
            line,
            "{} hub={} conn={} {} ← {}",
            kind("ack", true),
            Term(hub),
            Term(connection_id),
            Term(namespace),
            Term(&preview(&packet.to_string(), PREVIEW))
        ),
        _ => {
            line.push_str(&body(event));
            Ok(())
        }
    };
    line
}

/// The line after the timestamp: one small renderer per event kind.
fn body(event: &TrafficEvent) -> String {
    match event {
        TrafficEvent::Handshake { .. } => handshake(event),
        TrafficEvent::Upgrade { hub, connection_id } => format!(
            "{} hub={} conn={} polling → websocket",
            kind("upgrade", true),
            Term(hub),
            Term(connection_id)
        ),
        TrafficEvent::NamespaceConnect { .. } => namespace_connect(event),
        // Written by `render` into its line.
        TrafficEvent::Webhook(_) | TrafficEvent::AckForwarded { .. } => String::new(),
        TrafficEvent::SocketDisconnected { .. } => socket_disconnected(event),
        TrafficEvent::ConnectionClosed { .. } => connection_closed(event),
        // Kept, never shown (see `TrafficEvent::in_live_log`).
        TrafficEvent::Frame { .. } | TrafficEvent::Closed { .. } => String::new(),
        TrafficEvent::Rest(hop) => rest(hop),
        TrafficEvent::Warning { message, hint } => {
            with_hint(format!("{} {}", notice("warning"), Term(message)), hint)
        }
        TrafficEvent::Error { message, hint } => {
            with_hint(format!("{} {}", kind("error", false), Term(message)), hint)
        }
        TrafficEvent::ShuttingDown { connections } => format!(
            "{} closing {connections} connection(s); sending their disconnected events",
            kind("shutdown", true)
        ),
        TrafficEvent::Lint { .. } => lint(event),
        TrafficEvent::LintSummary { total, rules } => lint_summary(*total, rules),
        TrafficEvent::Fault { .. } => fault(event),
        TrafficEvent::Admin { .. } => admin(event),
    }
}

// Each renderer below is reached from `body` with its own kind; given another kind it renders
// nothing rather than panicking.

fn handshake(event: &TrafficEvent) -> String {
    let TrafficEvent::Handshake {
        hub,
        connection_id,
        transport,
        user_id,
        refused,
        claims,
        ..
    } = event
    else {
        return String::new();
    };
    let Some(why) = refused else {
        return format!(
            "{} hub={} conn={} {transport} user={} {}",
            kind("handshake", true),
            Term(hub),
            Term(connection_id.as_deref().unwrap_or("-")),
            Term(user_id.as_deref().unwrap_or("anonymous")),
            "accepted".green()
        );
    };
    let claims = claims
        .as_ref()
        .map(|c| format!(" claims={}", Term(&preview(&c.to_string(), 120))))
        .unwrap_or_default();
    format!(
        "{} hub={} {transport} {} {}{}",
        kind("handshake", false),
        Term(hub),
        "refused:".red(),
        Term(why),
        claims.dimmed()
    )
}

fn namespace_connect(event: &TrafficEvent) -> String {
    let TrafficEvent::NamespaceConnect {
        hub,
        connection_id,
        namespace,
        socket_id,
        refused,
    } = event
    else {
        return String::new();
    };
    match refused {
        None => format!(
            "{} hub={} conn={} {} {}",
            kind("connect", true),
            Term(hub),
            Term(connection_id),
            ns_sock(namespace, socket_id),
            "accepted".green()
        ),
        Some(why) => format!(
            "{} hub={} conn={} {} {} {}",
            kind("connect", false),
            Term(hub),
            Term(connection_id),
            ns_sock(namespace, socket_id),
            "refused:".red(),
            Term(why)
        ),
    }
}

fn webhook(line: &mut String, hop: &WebhookHop<'_>) -> fmt::Result {
    let (ok, status) = (hop.ok(), hop.response.as_ref().map(|r| r.status));
    let latency_ms = hop.response.as_ref().map_or(0.0, |r| r.latency_ms);
    write!(
        line,
        "{} {} hub={} {}#{} → {} {latency_ms:.1}ms",
        kind("webhook", ok),
        Term(hop.event),
        Term(hop.hub),
        Term(hop.namespace),
        painted(Term(hop.socket_id), dim),
        webhook_status(status, ok),
    )?;
    if hop.attempts > 1 {
        write!(line, " after {} attempts", hop.attempts)?;
    }
    if !hop.detail.is_empty() {
        let detail = preview(&hop.detail.to_string(), PREVIEW);
        write!(line, " {}", painted(Term(&detail), dim))?;
    }
    if !ok {
        write!(line, " {}", painted(Term(hop.url), dim))?;
    }
    if let Some(h) = &hop.hint {
        write!(line, "\n    {} {}", "hint:".yellow(), Term(h))?;
    }
    Ok(())
}

/// The webhook's status: green when the call counted as a success, red otherwise.
fn webhook_status(status: Option<u16>, ok: bool) -> Painted<StatusText> {
    match status {
        Some(s) if ok => painted(StatusText(Some(s)), |s| s.green()),
        Some(s) => painted(StatusText(Some(s)), |s| s.red()),
        None => painted(StatusText(None), |s| s.red()),
    }
}

/// An HTTP status, or `no response`.
struct StatusText(Option<u16>);

impl Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(status) => write!(f, "{status}"),
            None => f.write_str("no response"),
        }
    }
}

fn socket_disconnected(event: &TrafficEvent) -> String {
    let TrafficEvent::SocketDisconnected {
        hub,
        connection_id,
        namespace,
        socket_id,
        reason,
    } = event
    else {
        return String::new();
    };
    let reason = if reason.is_empty() {
        "\"\" (client)".to_string()
    } else {
        format!("\"{}\"", Term(reason))
    };
    format!(
        "{} hub={} conn={} {} reason={}",
        kind("leave", true),
        Term(hub),
        Term(connection_id),
        ns_sock(namespace, socket_id),
        reason
    )
}

fn connection_closed(event: &TrafficEvent) -> String {
    let TrafficEvent::ConnectionClosed {
        hub,
        connection_id,
        reason,
    } = event
    else {
        return String::new();
    };
    let reason = if reason.is_empty() {
        "by client"
    } else {
        reason
    };
    format!(
        "{} hub={} conn={} {}",
        kind("close", true),
        Term(hub),
        Term(connection_id),
        Term(reason)
    )
}

fn rest(hop: &RestHop) -> String {
    let RestHop {
        call,
        target,
        matched,
        latency_ms,
        message,
    } = hop;
    let (method, operation, status) = (&call.method, call.operation, call.status);
    let matched = matched.map(|m| format!(" matched={m}")).unwrap_or_default();
    format!(
        "{} {method} {operation} hub={} {}{matched} → {} {latency_ms:.1}ms{}",
        kind("rest", status < 400),
        Term(&call.hub),
        Term(target),
        http_status(status),
        dimmed_message(message)
    )
}

fn lint(event: &TrafficEvent) -> String {
    let TrafficEvent::Lint {
        rule,
        section,
        message,
        hint,
    } = event
    else {
        return String::new();
    };
    let line = format!(
        "{} [{} {}] {}",
        notice("lint"),
        Term(rule),
        Term(section),
        Term(message)
    );
    with_hint(line, hint)
}

fn lint_summary(total: u64, rules: &std::collections::BTreeMap<String, u64>) -> String {
    if total == 0 {
        return format!("{} no contract findings", kind("lint", true));
    }
    let counts: Vec<String> = rules
        .iter()
        .map(|(r, n)| format!("{} ×{n}", Term(r)))
        .collect();
    format!(
        "{} {total} contract finding(s): {}",
        notice("lint"),
        counts.join(", ")
    )
}

fn fault(event: &TrafficEvent) -> String {
    let TrafficEvent::Fault {
        rule,
        hub,
        event,
        action,
        detail,
    } = event
    else {
        return String::new();
    };
    format!(
        "{} {} on `{}` (hub {}): {} {}",
        format!("{:<10}", "fault").magenta().bold(),
        Term(action),
        Term(event),
        Term(hub),
        Term(detail),
        format!("[{}]", Term(rule)).dimmed()
    )
}

fn admin(event: &TrafficEvent) -> String {
    let TrafficEvent::Admin {
        method,
        path,
        status,
        message,
        ..
    } = event
    else {
        return String::new();
    };
    format!(
        "{} {} {} → {}{}",
        kind("admin", *status < 400),
        Term(method),
        Term(path),
        http_status(*status),
        dimmed_message(message)
    )
}
