//! Coloured one-line rendering of [`TrafficEvent`]s for people watching `serve` beside
//! `func start`: a timestamp, a fixed-width kind, then the facts, green for success, red for
//! refusals and failures, yellow for warnings. Colour is controlled globally by `--color`.

use colored::{ColoredString, Colorize};

use super::{TrafficEvent, preview};

const PREVIEW: usize = 80;

fn stamp() -> String {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    // `2026-01-01T12:34:56.789Z` → `12:34:56.789`
    now.get(11..23).unwrap_or(&now).to_string()
}

fn kind(label: &str, ok: bool) -> ColoredString {
    let padded = format!("{label:<10}");
    if ok {
        padded.cyan().bold()
    } else {
        padded.red().bold()
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
    format!("{}#{}", namespace, socket_id.dimmed())
}

/// Renders one event as a single line (colour codes included when enabled).
pub fn render(event: &TrafficEvent) -> String {
    let body = match event {
        TrafficEvent::Handshake {
            hub,
            connection_id,
            transport,
            user_id,
            refused,
            claims,
        } => {
            let who = user_id.as_deref().unwrap_or("anonymous");
            match refused {
                None => format!(
                    "{} hub={hub} conn={} {transport} user={who} {}",
                    kind("handshake", true),
                    connection_id.as_deref().unwrap_or("-"),
                    "accepted".green()
                ),
                Some(why) => {
                    let claims = claims
                        .as_ref()
                        .map(|c| format!(" claims={}", preview(&c.to_string(), 120)))
                        .unwrap_or_default();
                    format!(
                        "{} hub={hub} {transport} {} {why}{}",
                        kind("handshake", false),
                        "refused:".red(),
                        claims.dimmed()
                    )
                }
            }
        }
        TrafficEvent::Upgrade { hub, connection_id } => format!(
            "{} hub={hub} conn={connection_id} polling → websocket",
            kind("upgrade", true)
        ),
        TrafficEvent::NamespaceConnect {
            hub,
            connection_id,
            namespace,
            socket_id,
            refused,
        } => match refused {
            None => format!(
                "{} hub={hub} conn={connection_id} {} {}",
                kind("connect", true),
                ns_sock(namespace, socket_id),
                "accepted".green()
            ),
            Some(why) => format!(
                "{} hub={hub} conn={connection_id} {} {} {why}",
                kind("connect", false),
                ns_sock(namespace, socket_id),
                "refused:".red()
            ),
        },
        TrafficEvent::Webhook {
            hub,
            event,
            namespace,
            socket_id,
            status,
            latency_ms,
            attempts,
            detail,
            ok,
            hint,
            url,
            ..
        } => {
            let status_text = match status {
                Some(s) if *ok => s.to_string().green(),
                Some(s) => s.to_string().red(),
                None => "no response".red(),
            };
            let tries = if *attempts > 1 {
                format!(" after {attempts} attempts")
            } else {
                String::new()
            };
            let mut line = format!(
                "{} {event} hub={hub} {} → {status_text} {latency_ms:.1}ms{tries}",
                kind("webhook", *ok),
                ns_sock(namespace, socket_id),
            );
            if !detail.is_empty() {
                line.push_str(&format!(" {}", preview(detail, PREVIEW).dimmed()));
            }
            if !ok {
                line.push_str(&format!(" {}", url.dimmed()));
            }
            if let Some(h) = hint {
                line.push_str(&format!("\n    {} {h}", "hint:".yellow()));
            }
            line
        }
        TrafficEvent::AckForwarded {
            hub,
            connection_id,
            namespace,
            packet,
        } => format!(
            "{} hub={hub} conn={connection_id} {namespace} ← {}",
            kind("ack", true),
            preview(packet, PREVIEW)
        ),
        TrafficEvent::SocketDisconnected {
            hub,
            connection_id,
            namespace,
            socket_id,
            reason,
        } => format!(
            "{} hub={hub} conn={connection_id} {} reason={}",
            kind("leave", true),
            ns_sock(namespace, socket_id),
            if reason.is_empty() {
                "\"\" (client)".to_string()
            } else {
                format!("{reason:?}")
            }
        ),
        TrafficEvent::ConnectionClosed {
            hub,
            connection_id,
            reason,
        } => format!(
            "{} hub={hub} conn={connection_id} {}",
            kind("close", true),
            if reason.is_empty() {
                "by client"
            } else {
                reason
            }
        ),
        TrafficEvent::Rest {
            method,
            operation,
            hub,
            target,
            matched,
            status,
            latency_ms,
            message,
        } => {
            let ok = *status < 400;
            let status_text = http_status(*status);
            let matched = matched.map(|m| format!(" matched={m}")).unwrap_or_default();
            let msg = message
                .as_deref()
                .map(|m| format!(" {}", m.dimmed()))
                .unwrap_or_default();
            format!(
                "{} {method} {operation} hub={hub} {target}{matched} → {status_text} {latency_ms:.1}ms{msg}",
                kind("rest", ok)
            )
        }
        TrafficEvent::Warning { message, hint } => {
            let mut line = format!("{} {message}", format!("{:<10}", "warning").yellow().bold());
            if let Some(h) = hint {
                line.push_str(&format!("\n    {} {h}", "hint:".yellow()));
            }
            line
        }
        TrafficEvent::Error { message, hint } => {
            let mut line = format!("{} {message}", kind("error", false));
            if let Some(h) = hint {
                line.push_str(&format!("\n    {} {h}", "hint:".yellow()));
            }
            line
        }
        TrafficEvent::ShuttingDown { connections } => format!(
            "{} closing {connections} connection(s); sending their disconnected events",
            kind("shutdown", true)
        ),
        TrafficEvent::Lint {
            rule,
            section,
            message,
            hint,
        } => {
            let mut line = format!(
                "{} [{rule} {section}] {message}",
                format!("{:<10}", "lint").yellow().bold()
            );
            if let Some(h) = hint {
                line.push_str(&format!("\n    {} {h}", "hint:".yellow()));
            }
            line
        }
        TrafficEvent::LintSummary { total, rules } => {
            if *total == 0 {
                format!("{} no contract findings", kind("lint", true))
            } else {
                let counts: Vec<String> = rules.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
                format!(
                    "{} {total} contract finding(s): {}",
                    format!("{:<10}", "lint").yellow().bold(),
                    counts.join(", ")
                )
            }
        }
        TrafficEvent::Fault {
            rule,
            hub,
            event,
            action,
            detail,
        } => format!(
            "{} {action} on `{event}` (hub {hub}): {detail} {}",
            format!("{:<10}", "fault").magenta().bold(),
            format!("[{rule}]").dimmed()
        ),
        TrafficEvent::Admin {
            method,
            path,
            status,
            message,
        } => {
            let ok = *status < 400;
            let status_text = http_status(*status);
            let msg = message
                .as_deref()
                .map(|m| format!(" {}", m.dimmed()))
                .unwrap_or_default();
            format!("{} {method} {path} → {status_text}{msg}", kind("admin", ok))
        }
    };
    format!("{} {body}", stamp().dimmed())
}
