//! The `serve --config <FILE>` TOML file: parsing, validation with line numbers, and the
//! commented starter that `sio-emu init` writes. The file's values sit between the flags and
//! environment (which win) and the built-in defaults; [`FileConfig`] holds only what the file
//! says, and the CLI does the merge.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{EventPattern, HUB_NAME_RULE, HandlerConfig, HubConfig, SystemEvent, valid_hub_name};
use crate::duration;

/// What a configuration file sets; `None` where it is silent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub access_key: Option<String>,
    pub secondary_key: Option<String>,
    pub anonymous: Option<bool>,
    pub strict_hubs: Option<bool>,
    pub rest_anonymous: Option<bool>,
    pub webhook: Option<String>,
    pub webhook_timeout: Option<Duration>,
    pub webhook_retry: Option<Vec<Duration>>,
    pub preflight: Option<bool>,
    pub ping_interval: Option<Duration>,
    pub ping_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub upgrade_timeout: Option<Duration>,
    pub max_payload: Option<usize>,
    pub hubs: Vec<HubConfig>,
    /// `[[fault]]` tables, in order.
    pub faults: Vec<super::fault::FaultRule>,
}

/// A file that cannot be used, with the line it points at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct FileError {
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    access_key: Option<String>,
    secondary_key: Option<String>,
    anonymous: Option<bool>,
    strict_hubs: Option<bool>,
    rest_anonymous: Option<bool>,
    listen: Option<RawListen>,
    webhook: Option<RawWebhook>,
    engine: Option<RawEngine>,
    #[serde(default)]
    hub: Vec<RawHub>,
    #[serde(default)]
    fault: Vec<RawFault>,
}

/// `[[fault]]`: the keys of a `--fault` rule, the action as its own string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFault {
    event: Option<String>,
    hub: Option<String>,
    p: Option<f64>,
    action: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawListen {
    host: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWebhook {
    url: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retry: Option<Vec<Spanned<String>>>,
    preflight: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEngine {
    ping_interval: Option<Spanned<String>>,
    ping_timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    upgrade_timeout: Option<Spanned<String>>,
    max_payload: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHub {
    name: Spanned<String>,
    anonymous: Option<bool>,
    #[serde(default)]
    handler: Vec<RawHandler>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHandler {
    url: Spanned<String>,
    user_events: Option<String>,
    system_events: Option<Vec<Spanned<String>>>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn at<T>(text: &str, spanned: &Spanned<T>, message: String) -> FileError {
    FileError {
        line: Some(line_of(text, spanned.span().start)),
        message,
    }
}

fn dur(
    text: &str,
    value: &Option<Spanned<String>>,
    key: &str,
) -> Result<Option<Duration>, FileError> {
    value
        .as_ref()
        .map(|v| duration::parse(v.get_ref()).map_err(|e| at(text, v, format!("{key}: {e}"))))
        .transpose()
}

fn url(text: &str, value: &Spanned<String>, key: &str) -> Result<String, FileError> {
    let url = value.get_ref();
    if url.starts_with("http://") || url.starts_with("builtin:") {
        Ok(url.clone())
    } else {
        Err(at(
            text,
            value,
            format!("{key} `{url}`: use an http:// URL template (or builtin:echo / builtin:chat)"),
        ))
    }
}

/// Parses and validates configuration text.
pub fn parse(text: &str) -> Result<FileConfig, FileError> {
    let raw: Raw = toml::from_str(text).map_err(|e| FileError {
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().trim().to_owned(),
    })?;
    let listen = raw.listen.unwrap_or_default();
    let webhook = raw.webhook.unwrap_or_default();
    let engine = raw.engine.unwrap_or_default();
    let hubs = hubs(text, &raw.hub, raw.anonymous.unwrap_or(false))?;
    let retry = retry(text, &webhook.retry)?;
    let max_payload = max_payload(text, &engine.max_payload)?;
    let faults = faults(text, &raw.fault)?;
    Ok(FileConfig {
        faults,
        host: listen.host,
        port: listen.port,
        access_key: raw.access_key,
        secondary_key: raw.secondary_key,
        anonymous: raw.anonymous,
        strict_hubs: raw.strict_hubs,
        rest_anonymous: raw.rest_anonymous,
        webhook: webhook
            .url
            .as_ref()
            .map(|u| url(text, u, "webhook url"))
            .transpose()?,
        webhook_timeout: dur(text, &webhook.timeout, "webhook timeout")?,
        webhook_retry: retry,
        preflight: webhook.preflight,
        ping_interval: dur(text, &engine.ping_interval, "ping-interval")?,
        ping_timeout: dur(text, &engine.ping_timeout, "ping-timeout")?,
        connect_timeout: dur(text, &engine.connect_timeout, "connect-timeout")?,
        upgrade_timeout: dur(text, &engine.upgrade_timeout, "upgrade-timeout")?,
        max_payload,
        hubs,
    })
}

/// `[[hub]]` tables: valid, distinct names (case-insensitively) and their handlers;
/// `anonymous` is the top-level default for hubs that do not say.
fn hubs(text: &str, raw: &[RawHub], anonymous: bool) -> Result<Vec<HubConfig>, FileError> {
    let mut hubs: Vec<HubConfig> = Vec::new();
    for hub in raw {
        let name = hub.name.get_ref();
        if !valid_hub_name(name) {
            return Err(at(
                text,
                &hub.name,
                format!("hub name `{name}`: {HUB_NAME_RULE} (at most 128)"),
            ));
        }
        if hubs.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
            return Err(at(
                text,
                &hub.name,
                format!("hub `{name}` is declared twice"),
            ));
        }
        hubs.push(HubConfig {
            name: name.clone(),
            anonymous: hub.anonymous.unwrap_or(anonymous),
            handlers: hub
                .handler
                .iter()
                .map(|h| handler(text, h))
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(hubs)
}

/// One `[[hub.handler]]` table; without `system-events` it gets them all.
fn handler(text: &str, raw: &RawHandler) -> Result<HandlerConfig, FileError> {
    let mut system_events = Vec::new();
    for event in raw.system_events.iter().flatten() {
        let parsed = SystemEvent::parse(event.get_ref()).ok_or_else(|| {
            at(
                text,
                event,
                format!(
                    "unknown system event `{}`: use connect, connected or disconnected",
                    event.get_ref()
                ),
            )
        })?;
        system_events.push(parsed);
    }
    Ok(HandlerConfig {
        url: url(text, &raw.url, "handler url")?,
        user_events: EventPattern::parse(raw.user_events.as_deref().unwrap_or("*")),
        system_events: if raw.system_events.is_some() {
            system_events
        } else {
            SystemEvent::ALL.to_vec()
        },
    })
}

/// `[webhook] retry`: a list of durations.
fn retry(
    text: &str,
    value: &Option<Vec<Spanned<String>>>,
) -> Result<Option<Vec<Duration>>, FileError> {
    value
        .as_ref()
        .map(|list| {
            list.iter()
                .map(|v| {
                    duration::parse(v.get_ref())
                        .map_err(|e| at(text, v, format!("webhook retry: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
}

/// `[engine] max-payload`: at least one byte.
fn max_payload(text: &str, value: &Option<Spanned<u64>>) -> Result<Option<usize>, FileError> {
    match value {
        Some(v) if *v.get_ref() == 0 => {
            Err(at(text, v, "max-payload must be at least 1 byte".into()))
        }
        Some(v) => Ok(Some(usize::try_from(*v.get_ref()).unwrap_or(usize::MAX))),
        None => Ok(None),
    }
}

/// `[[fault]]` tables, each spelled as its `--fault` rule and parsed as one.
fn faults(text: &str, raw: &[RawFault]) -> Result<Vec<super::fault::FaultRule>, FileError> {
    let mut faults = Vec::new();
    for fault in raw {
        let mut rule = format!("event={}", fault.event.as_deref().unwrap_or("*"));
        if let Some(hub) = &fault.hub {
            rule.push_str(&format!(",hub={hub}"));
        }
        if let Some(p) = fault.p {
            rule.push_str(&format!(",p={p}"));
        }
        rule.push_str(&format!(",{}", fault.action.get_ref()));
        faults.push(
            rule.parse()
                .map_err(|e| at(text, &fault.action, format!("fault: {e}")))?,
        );
    }
    Ok(faults)
}

/// Reads and parses a configuration file.
pub fn load(path: &Path) -> Result<FileConfig, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        line: None,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    parse(&text)
}

/// The commented starter file `sio-emu init` writes.
pub const STARTER: &str = r#"# sio-emu configuration. Flags and environment variables win over this file;
# the file wins over the built-in defaults. `serve --config` re-reads it when it changes:
# hubs, handlers, keys and webhook settings apply to new events at once; listen and
# engine settings need a restart.

# Access keys: tokens and REST calls signed with either are accepted; ce-signature carries
# both (primary first). Defaults to the documented development key.
# access-key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
# secondary-key = ""

# Accept clients without an access token on hubs that do not say otherwise.
anonymous = false
# Refuse clients and REST calls for hubs not declared below.
strict-hubs = false
# Accept REST calls without a Bearer token.
rest-anonymous = false

[listen]
host = "localhost"   # localhost = 127.0.0.1 and ::1
port = 8080

[webhook]
# The handler of hubs that declare none ({hub} and {event} are substituted).
url = "http://localhost:7071/runtime/webhooks/socketio"
timeout = "30s"
retry = ["1s", "3s", "5s"]   # connected / disconnected retries on 408, 5xx, network errors
preflight = true            # abuse-protection OPTIONS before the first event

[engine]
ping-interval = "25s"
ping-timeout = "20s"
connect-timeout = "45s"
upgrade-timeout = "10s"
max-payload = 1000000

# Hubs, each with its anonymous policy and an ordered list of event handlers, shaped like
# the cloud's hub settings: the first handler that wants an event gets it; an event no
# handler wants is not sent.
[[hub]]
name = "chat"
anonymous = false

[[hub.handler]]
url = "http://localhost:7071/runtime/webhooks/socketio"
user-events = "*"                                   # "*", "a,b,c" or one name
system-events = ["connect", "connected", "disconnected"]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_parses() {
        let c = parse(STARTER).unwrap();
        assert_eq!(c.port, Some(8080));
        assert_eq!(c.hubs.len(), 1);
        assert_eq!(c.hubs[0].handlers[0].user_events, EventPattern::All);
        assert_eq!(c.webhook_retry.as_ref().map(Vec::len), Some(3));
        assert_eq!(c.max_payload, Some(1_000_000));
    }

    #[test]
    fn handlers_and_patterns() {
        let c = parse(
            r#"
anonymous = true
[[hub]]
name = "a"
[[hub.handler]]
url = "http://x/{event}"
user-events = "chat, typing"
system-events = ["connect"]
[[hub.handler]]
url = "http://y/{event}"
[[hub]]
name = "b"
anonymous = false
"#,
        )
        .unwrap();
        assert!(c.hubs[0].anonymous);
        assert!(!c.hubs[1].anonymous);
        let h = &c.hubs[0].handlers;
        assert_eq!(h[0].system_events, vec![SystemEvent::Connect]);
        assert!(h[0].user_events.matches("typing") && !h[0].user_events.matches("x"));
        assert_eq!(h[1].system_events.len(), 3);
        assert!(c.hubs[1].handlers.is_empty());
    }

    #[test]
    fn errors_point_at_the_line() {
        let cases = [
            ("port = 1", 1, "unknown field"),
            ("[listen]\nport = \"x\"", 2, "invalid type"),
            (
                "[engine]\n\nping-interval = \"10 parsecs\"",
                3,
                "ping-interval",
            ),
            ("[[hub]]\nname = \"1bad\"", 2, "hub name"),
            (
                "[[hub]]\nname = \"a\"\n[[hub.handler]]\nurl = \"https://x\"",
                4,
                "http://",
            ),
            (
                "[[hub]]\nname = \"a\"\n[[hub.handler]]\nurl = \"http://x\"\nsystem-events = [\"message\"]",
                5,
                "unknown system event",
            ),
            ("[[hub]]\nname = \"a\"\n[[hub]]\nname = \"A\"", 4, "twice"),
            ("[engine]\nmax-payload = 0", 2, "at least"),
            ("x = [", 1, ""),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }
}
