//! Fault injection for `serve`: rules (`--fault`, `[[fault]]` in the config file, or
//! `POST /_emu/faults` at runtime) that make webhook calls slow, fail, time out, vanish or
//! repeat, and drop a client's transport, so a handler's error paths can be exercised on
//! purpose. A rule is one compact string, e.g. `event=chat*,status=500,p=0.5`:
//!
//! * `event=<GLOB>` — the webhook event name (`connect`, `connected`, `disconnected` or a user
//!   event name; `*` matches any run of characters); default `*`;
//! * `hub=<NAME>` — only this hub (case-insensitive); default every hub;
//! * `p=<0..1>` — probability per matching event; default 1; drawn from a generator seeded by
//!   `--seed` (its own stream, so ids stay what they would be without faults), else random;
//! * exactly one action: `delay=<DUR>`, `status=<CODE>`, `timeout`, `drop`, `twice`,
//!   `disconnect-transport`.
//!
//! This module owns parsing and the decision ([`Faults::pick`]); `socketio::webhook` and
//! `socketio::connection` apply the actions and report each one as a [`TrafficEvent::Fault`]
//! line and a [`RecordLine::Fault`] recording line ([`mark`]); `admin` lists and edits the
//! rules.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::traffic::record::RecordLine;
use crate::upstream::{UpstreamSettings, WebhookError, WebhookEvent, WebhookResponse};

/// Rules in force at once; `POST /_emu/faults` beyond it is refused.
pub const MAX_RULES: usize = 64;
/// The longest `delay=` accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(600);
/// Mixed into `--seed` for the fault generator, so faults draw from their own stream.
const SEED_SALT: u64 = 0x6661_756c_7473;

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
    /// Deliver `connected` / `disconnected` twice.
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

impl std::str::FromStr for FaultRule {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultRule, String> {
        let syntax = "a fault rule is comma-separated: [event=<glob>,][hub=<name>,][p=<0..1>,] and \
                      one of delay=<duration>, status=<code>, timeout, drop, twice, \
                      disconnect-transport";
        let mut rule = FaultRule {
            event: "*".into(),
            hub: None,
            p: 1.0,
            action: Action::Drop,
        };
        let mut action = None;
        let mut set = |a: Action| -> Result<(), String> {
            if action.replace(a).is_some() {
                return Err(format!("`{text}` has more than one action; {syntax}"));
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
                        .ok_or_else(|| format!("`p={v}` is not a probability between 0 and 1"))?
                }
                ("delay", Some(v)) => {
                    let d = crate::duration::parse(v)?;
                    if d > MAX_DELAY {
                        return Err(format!(
                            "`delay={v}` is longer than the maximum {}",
                            crate::duration::format(MAX_DELAY)
                        ));
                    }
                    set(Action::Delay(d))?
                }
                ("status", Some(v)) => set(Action::Status(
                    v.parse::<u16>()
                        .ok()
                        .filter(|c| (100..=599).contains(c))
                        .ok_or_else(|| format!("`status={v}` is not an HTTP status (100–599)"))?,
                ))?,
                ("timeout", None) => set(Action::Timeout)?,
                ("drop", None) => set(Action::Drop)?,
                ("twice", None) => set(Action::Twice)?,
                ("disconnect-transport", None) => set(Action::DisconnectTransport)?,
                _ => return Err(format!("`{part}` is not understood; {syntax}")),
            }
        }
        rule.action = action.ok_or_else(|| format!("`{text}` names no action; {syntax}"))?;
        Ok(rule)
    }
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    crate::glob::matches(pattern, text)
}

impl FaultRule {
    fn matches(&self, hub: &str, event: &str) -> bool {
        self.hub
            .as_ref()
            .is_none_or(|h| h.eq_ignore_ascii_case(hub))
            && glob(&self.event, event)
    }
}

/// The rules in force and the generator their probabilities draw from.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    rng: Mutex<StdRng>,
}

impl Faults {
    /// `rules` in force; probabilities seeded by `seed` when given.
    pub fn new(rules: Vec<FaultRule>, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s ^ SEED_SALT),
            None => StdRng::seed_from_u64(rand::random()),
        };
        Faults {
            rules: Mutex::new(rules.into_iter().take(MAX_RULES).collect()),
            rng: Mutex::new(rng),
        }
    }

    /// The rules in force, in order.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds a rule; `Err` when [`MAX_RULES`] are in force.
    pub fn add(&self, rule: FaultRule) -> Result<(), String> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        if rules.len() >= MAX_RULES {
            return Err(format!(
                "{MAX_RULES} fault rules are in force already; DELETE /_emu/faults first"
            ));
        }
        rules.push(rule);
        Ok(())
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        std::mem::take(&mut *self.rules.lock().unwrap_or_else(|e| e.into_inner())).len()
    }

    /// The first rule that matches `hub`/`event`, whose action `applies`, and whose probability
    /// draw hits. A draw is made only for rules with `p < 1`.
    pub fn pick(
        &self,
        hub: &str,
        event: &str,
        applies: impl Fn(&Action) -> bool,
    ) -> Option<FaultRule> {
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        for rule in rules.iter() {
            if !applies(&rule.action) || !rule.matches(hub, event) {
                continue;
            }
            let hit = rule.p >= 1.0
                || (rule.p > 0.0
                    && self
                        .rng
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .random::<f64>()
                        < rule.p);
            if hit {
                return Some(rule.clone());
            }
        }
        None
    }
}

/// Reports one injected fault: a `fault` line in the live log and in the recording.
pub fn mark(service: &Service, rule: &FaultRule, hub: &str, event: &str, detail: String) {
    let action = rule.action.text();
    service.traffic.record(|t| RecordLine::Fault {
        t,
        rule: rule.to_string(),
        event: event.to_owned(),
        action: action.clone(),
    });
    service.traffic.emit(TrafficEvent::Fault {
        rule: rule.to_string(),
        hub: hub.to_owned(),
        event: event.to_owned(),
        action,
        detail,
    });
}

/// The error a `timeout` or `drop` fault stands in for.
pub fn timed_out(settings: &UpstreamSettings) -> WebhookError {
    WebhookError::Timeout {
        url: settings.url_template.clone(),
        after: settings.timeout,
    }
}

/// Applies `rule` just before a webhook call: marks it, waits for `delay`, and returns the
/// stand-in answer when the handler is not to be called (`status`, `drop`). `timeout` and
/// `twice` are applied by the caller after the call.
pub async fn before(
    service: &Service,
    rule: &FaultRule,
    event: &WebhookEvent,
    settings: &UpstreamSettings,
) -> Option<Result<WebhookResponse, WebhookError>> {
    let detail = match rule.action {
        Action::Delay(d) => format!("waiting {} before the call", crate::duration::format(d)),
        Action::Status(code) => format!("answered {code} on the handler's behalf; not sent"),
        Action::Timeout => "the handler's answer is discarded as if it timed out".into(),
        Action::Drop => "not sent".into(),
        Action::Twice => "delivered twice".into(),
        Action::DisconnectTransport => "transport dropped".into(),
    };
    mark(service, rule, &event.hub, event.kind.event_name(), detail);
    match rule.action {
        Action::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Action::Status(status) => Some(Ok(WebhookResponse {
            url: settings.url_template.clone(),
            status,
            reason: http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .to_owned(),
            content_type: None,
            body: bytes::Bytes::new(),
            latency: Duration::ZERO,
            attempts: 1,
        })),
        Action::Drop => Some(Err(timed_out(settings))),
        Action::Timeout | Action::Twice | Action::DisconnectTransport => None,
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
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("chat*", "chat"));
        assert!(glob("chat*", "chatter"));
        assert!(!glob("chat*", "say"));
        assert!(glob("*ed", "connected"));
        assert!(glob("c*t*d", "connected"));
        assert!(!glob("connect", "connected"));
    }

    #[test]
    fn seeded_draws_repeat() {
        let rule: FaultRule = "drop,p=0.5".parse().unwrap();
        let draws = |faults: &Faults| -> Vec<bool> {
            (0..32)
                .map(|_| faults.pick("h", "e", |_| true).is_some())
                .collect()
        };
        let a = draws(&Faults::new(vec![rule.clone()], Some(1)));
        let b = draws(&Faults::new(vec![rule], Some(1)));
        assert_eq!(a, b);
        assert!(a.contains(&true) && a.contains(&false));
        let faults = Faults::new(Vec::new(), None);
        faults.add("hub=x,twice".parse().unwrap()).unwrap();
        assert!(faults.pick("y", "connected", |_| true).is_none());
        assert!(faults.pick("X", "connected", |_| true).is_some());
        assert!(
            faults
                .pick("x", "connected", |a| *a != Action::Twice)
                .is_none()
        );
        assert_eq!(faults.clear(), 1);
        assert!(faults.list().is_empty());
    }
}
