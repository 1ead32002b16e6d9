//! A fault rule as plain data: what `--fault`, `[[fault]]` and `POST /_emu/faults` say, parsed
//! and printed in one compact syntax (e.g. `event=chat*,status=500,p=0.5`). Deciding when a rule
//! fires and applying it is the behaviour of the `fault` module, which sits above.

use std::time::Duration;

/// The longest `delay=` accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(600);
/// What a rule does to a matching event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Wait this long before calling the handler.
    Delay(Duration),
    /// Answer with this status on the handler's behalf; the handler is not called.
    Status(u16),
    /// Call the handler but discard its answer, as if it had not answered in time.
    Timeout,
    /// Do not send the event; a blocking event then behaves as a timeout.
    Drop,
    /// Deliver `connected` / `disconnected` twice: the same request (same `ce-id`) again.
    Twice,
    /// Close the socket's Engine.IO transport right after its `connected` (reason
    /// `transport error`).
    DisconnectTransport,
}

impl Action {
    /// The action as written in a rule.
    pub fn text(&self) -> String {
        match self {
            Action::Delay(d) => format!("delay={}", crate::duration::format(*d)),
            Action::Status(code) => format!("status={code}"),
            Action::Timeout => "timeout".into(),
            Action::Drop => "drop".into(),
            Action::Twice => "twice".into(),
            Action::DisconnectTransport => "disconnect-transport".into(),
        }
    }
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Event-name glob.
    pub event: String,
    /// Only this hub, when set.
    pub hub: Option<String>,
    /// Probability per matching event, 0..=1.
    pub p: f64,
    pub action: Action,
}

impl std::fmt::Display for FaultRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event={}", self.event)?;
        if let Some(hub) = &self.hub {
            write!(f, ",hub={hub}")?;
        }
        write!(f, ",{}", self.action.text())?;
        if self.p < 1.0 {
            write!(f, ",p={}", self.p)?;
        }
        Ok(())
    }
}

/// The syntax every rule error ends with.
const SYNTAX: &str = "a fault rule is comma-separated: [event=<glob>,][hub=<name>,][p=<0..1>,] and \
                      one of delay=<duration>, status=<code>, timeout, drop, twice, \
                      disconnect-transport";

/// Why a text is not a fault rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultRuleError {
    #[error("`{0}` has more than one action; {SYNTAX}")]
    TwoActions(String),
    #[error("`{0}` names no action; {SYNTAX}")]
    NoAction(String),
    #[error("`{0}` is not understood; {SYNTAX}")]
    NotUnderstood(String),
    #[error("`p={0}` is not a probability between 0 and 1")]
    Probability(String),
    #[error(transparent)]
    Duration(#[from] crate::duration::DurationError),
    #[error("`delay={0}` is longer than the maximum {max}", max = crate::duration::format(MAX_DELAY))]
    DelayTooLong(String),
    #[error("`status={0}` is not an HTTP status (100–599)")]
    Status(String),
}

impl std::str::FromStr for FaultRule {
    type Err = FaultRuleError;

    fn from_str(text: &str) -> Result<FaultRule, FaultRuleError> {
        let mut rule = FaultRule {
            event: "*".into(),
            hub: None,
            p: 1.0,
            action: Action::Drop,
        };
        let mut action = None;
        let mut set = |a: Action| -> Result<(), FaultRuleError> {
            if action.replace(a).is_some() {
                return Err(FaultRuleError::TwoActions(text.into()));
            }
            Ok(())
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            match (key, value) {
                ("event", Some(v)) if !v.is_empty() => rule.event = v.to_owned(),
                ("hub", Some(v)) if !v.is_empty() => rule.hub = Some(v.to_owned()),
                ("p", Some(v)) => {
                    rule.p = v
                        .parse::<f64>()
                        .ok()
                        .filter(|p| (0.0..=1.0).contains(p))
                        .ok_or_else(|| FaultRuleError::Probability(v.into()))?
                }
                ("delay", Some(v)) => {
                    let d = crate::duration::parse(v)?;
                    if d > MAX_DELAY {
                        return Err(FaultRuleError::DelayTooLong(v.into()));
                    }
                    set(Action::Delay(d))?
                }
                ("status", Some(v)) => set(Action::Status(
                    v.parse::<u16>()
                        .ok()
                        .filter(|c| (100..=599).contains(c))
                        .ok_or_else(|| FaultRuleError::Status(v.into()))?,
                ))?,
                ("timeout", None) => set(Action::Timeout)?,
                ("drop", None) => set(Action::Drop)?,
                ("twice", None) => set(Action::Twice)?,
                ("disconnect-transport", None) => set(Action::DisconnectTransport)?,
                _ => return Err(FaultRuleError::NotUnderstood(part.into())),
            }
        }
        rule.action = action.ok_or_else(|| FaultRuleError::NoAction(text.into()))?;
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_print() {
        let r: FaultRule = "event=chat*,status=500,p=0.5".parse().unwrap();
        assert_eq!(r.event, "chat*");
        assert_eq!(r.action, Action::Status(500));
        assert_eq!(r.p, 0.5);
        assert_eq!(r.to_string(), "event=chat*,status=500,p=0.5");
        let r: FaultRule = "hub=Chat, delay=250ms".parse().unwrap();
        assert_eq!(r.action, Action::Delay(Duration::from_millis(250)));
        assert_eq!(r.event, "*");
        assert_eq!(r.hub.as_deref(), Some("Chat"));
        assert_eq!(
            "disconnect-transport".parse::<FaultRule>().unwrap().action,
            Action::DisconnectTransport
        );
        for bad in [
            "",
            "event=x",
            "drop,twice",
            "p=2,drop",
            "status=42",
            "delay=forever",
            "explode",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn error_messages() {
        let err = |s: &str| s.parse::<FaultRule>().unwrap_err().to_string();
        let syntax = "a fault rule is comma-separated: [event=<glob>,][hub=<name>,][p=<0..1>,] \
                      and one of delay=<duration>, status=<code>, timeout, drop, twice, \
                      disconnect-transport";
        assert_eq!(
            err("drop,twice"),
            format!("`drop,twice` has more than one action; {syntax}")
        );
        assert_eq!(
            err("event=x"),
            format!("`event=x` names no action; {syntax}")
        );
        assert_eq!(
            err("explode"),
            format!("`explode` is not understood; {syntax}")
        );
        assert_eq!(
            err("p=2,drop"),
            "`p=2` is not a probability between 0 and 1"
        );
        assert_eq!(
            err("delay=11m"),
            "`delay=11m` is longer than the maximum 10m"
        );
        assert_eq!(
            err("delay=1d"),
            "unknown duration unit `d` in `1d`; use ms, s, m or h"
        );
        assert_eq!(
            err("status=42"),
            "`status=42` is not an HTTP status (100–599)"
        );
    }
}
