//! The command language of `sio-emu client` scripts and its interactive mode: one command a
//! line, blank lines and `#` comments skipped.
//!
//! ```text
//! emit EVENT [ARG_JSON…]        send EVENT asking for an ack, print the ack's arguments
//! emit-noack EVENT [ARG_JSON…]  send EVENT without an ack id
//! wait EVENT [TIMEOUT]          wait for EVENT to be received (default: --timeout)
//! sleep DURATION                pause (500ms, 2s, 1m)
//! disconnect                    leave the namespace and close the session
//! quit                          end (disconnecting first)
//! ```
//!
//! EVENT is a word, or a JSON string for names with spaces. The arguments are JSON values
//! separated by white space (`emit say "hi" {"to": "bob"} 3`).

use std::time::Duration;

use serde_json::Value;

use crate::duration::DurationError;

/// The help text for `--help` and the interactive banner.
pub const COMMANDS: &str = "  emit EVENT [ARG_JSON…]        send EVENT asking for an ack; prints the ack's arguments as one JSON array line
  emit-noack EVENT [ARG_JSON…]  send EVENT without asking for an ack
  wait EVENT [TIMEOUT]          wait until EVENT is received (default timeout: --timeout)
  sleep DURATION                pause (500ms, 2s, 1m; a bare number is milliseconds)
  disconnect                    leave the namespace and close the session
  quit                          end, disconnecting first
  (blank lines and lines starting with # are skipped)";

/// One command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Emit {
        event: String,
        args: Vec<Value>,
        ack: bool,
    },
    Wait {
        event: String,
        timeout: Option<Duration>,
    },
    Sleep(Duration),
    Disconnect,
    Quit,
}

/// Why a line is not a command.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "unknown command `{0}`; the commands are emit, emit-noack, wait, sleep, disconnect, quit"
    )]
    UnknownCommand(String),
    #[error("`{0}` takes no arguments")]
    NoArguments(&'static str),
    #[error("`{0}` needs an event name")]
    NoEventName(&'static str),
    #[error("`{verb}`: the quoted event name is not a JSON string: {source}")]
    BadEventName {
        verb: &'static str,
        source: serde_json::Error,
    },
    #[error("an argument is not JSON ({0}); quote strings: \"hi\"")]
    BadArgument(serde_json::Error),
    #[error("{verb}: {source}")]
    BadDuration {
        verb: &'static str,
        source: DurationError,
    },
}

/// Parses one line: `Ok(None)` for a blank line or a comment.
pub fn parse(line: &str) -> Result<Option<Command>, ScriptError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (verb, rest) = line
        .split_once(char::is_whitespace)
        .map(|(v, r)| (v, r.trim_start()))
        .unwrap_or((line, ""));
    let command = match verb {
        "emit" | "emit-noack" => {
            let verb = if verb == "emit" { "emit" } else { "emit-noack" };
            let (event, rest) = event_name(rest, verb)?;
            Command::Emit {
                event,
                args: json_values(rest)?,
                ack: verb == "emit",
            }
        }
        "wait" => {
            let (event, rest) = event_name(rest, "wait")?;
            let timeout = match rest.trim() {
                "" => None,
                t => Some(duration(t, "wait")?),
            };
            Command::Wait { event, timeout }
        }
        "sleep" => Command::Sleep(duration(rest, "sleep")?),
        "disconnect" if !rest.is_empty() => return Err(ScriptError::NoArguments("disconnect")),
        "quit" if !rest.is_empty() => return Err(ScriptError::NoArguments("quit")),
        "disconnect" => Command::Disconnect,
        "quit" | "exit" => Command::Quit,
        other => return Err(ScriptError::UnknownCommand(other.to_owned())),
    };
    Ok(Some(command))
}

/// The duration argument of `verb`.
fn duration(text: &str, verb: &'static str) -> Result<Duration, ScriptError> {
    crate::duration::parse(text).map_err(|source| ScriptError::BadDuration { verb, source })
}

/// The event name at the start of `text` (a word or a JSON string) and what follows it.
fn event_name<'a>(text: &'a str, verb: &'static str) -> Result<(String, &'a str), ScriptError> {
    if text.is_empty() {
        return Err(ScriptError::NoEventName(verb));
    }
    if text.starts_with('"') {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<String>();
        let name = stream
            .next()
            .ok_or(ScriptError::NoEventName(verb))?
            .map_err(|source| ScriptError::BadEventName { verb, source })?;
        return Ok((name, &text[stream.byte_offset()..]));
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Ok((text[..end].to_owned(), &text[end..]))
}

/// White-space separated JSON values.
fn json_values(text: &str) -> Result<Vec<Value>, ScriptError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| v.map_err(ScriptError::BadArgument))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("  # note").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse(r#"emit say "hi" {"to": "bob"} 3"#).unwrap(),
            Some(Command::Emit {
                event: "say".into(),
                args: vec![json!("hi"), json!({"to": "bob"}), json!(3)],
                ack: true
            })
        );
        assert_eq!(
            parse(r#"emit-noack "two words""#).unwrap(),
            Some(Command::Emit {
                event: "two words".into(),
                args: vec![],
                ack: false
            })
        );
        assert_eq!(
            parse("wait message 2s").unwrap(),
            Some(Command::Wait {
                event: "message".into(),
                timeout: Some(Duration::from_secs(2))
            })
        );
        assert_eq!(
            parse("sleep 50ms").unwrap(),
            Some(Command::Sleep(Duration::from_millis(50)))
        );
        assert_eq!(parse("disconnect").unwrap(), Some(Command::Disconnect));
        assert_eq!(parse("quit").unwrap(), Some(Command::Quit));
    }

    #[test]
    fn rejects_bad_lines() {
        let message = |line: &str| parse(line).unwrap_err().to_string();
        assert!(message("shout x").contains("unknown command"));
        assert!(message("emit").contains("event name"));
        assert!(message("emit say hi").contains("not JSON"));
        assert!(parse("sleep soon").is_err());
        assert!(parse("quit now").is_err());
    }
}
