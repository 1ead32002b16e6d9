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
//! The rule itself is plain data in `config::fault` (re-exported here); this module owns the
//! rules in force and the decision ([`Faults::pick`]). It is a hook: `serve` plugs [`Faults`]
//! into the service as its `crate::hooks::FaultInjector`, so `socketio::faults` picks
//! and applies the actions without naming this module, and report each one
//! through [`Faults::mark`] as a [`TrafficEvent::Fault`] line and a `fault` session
//! recording line; `admin` lists and edits the rules through the same hook.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub use crate::config::fault::{Action, FaultRule};
use crate::hooks::{AddFaultError, FaultInjector};
use crate::traffic::{Traffic, TrafficEvent};

/// Rules in force at once; `POST /_emu/faults` beyond it is refused.
pub const MAX_RULES: usize = 64;
/// Mixed into `--seed` for the fault generator, so faults draw from their own stream.
const SEED_SALT: u64 = 0x6661_756c_7473;

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

/// The rules in force, the generator their probabilities draw from, and where injected
/// faults are reported.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    rng: Mutex<StdRng>,
    traffic: Traffic,
}

impl Faults {
    /// `rules` in force; probabilities seeded by `seed` when given; faults reported to
    /// `traffic`.
    pub fn new(rules: Vec<FaultRule>, seed: Option<u64>, traffic: Traffic) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s ^ SEED_SALT),
            None => StdRng::seed_from_u64(rand::random()),
        };
        Faults {
            rules: Mutex::new(rules.into_iter().take(MAX_RULES).collect()),
            rng: Mutex::new(rng),
            traffic,
        }
    }

    /// The rules in force, in order.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds a rule; `Err` when [`MAX_RULES`] are in force.
    pub fn add(&self, rule: FaultRule) -> Result<(), AddFaultError> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        if rules.len() >= MAX_RULES {
            return Err(AddFaultError::Full(MAX_RULES));
        }
        rules.push(rule);
        Ok(())
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        std::mem::take(&mut *self.rules.lock().unwrap_or_else(|e| e.into_inner())).len()
    }

    /// Removes the first rule whose canonical text is `text`; false when none is.
    pub fn remove(&self, text: &str) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        match rules.iter().position(|r| r.to_string() == text) {
            Some(index) => {
                rules.remove(index);
                true
            }
            None => false,
        }
    }

    /// The first rule that matches `hub`/`event`, whose action `applies`, and whose probability
    /// draw hits. A draw is made only for rules with `p < 1`.
    pub fn pick(
        &self,
        hub: &str,
        event: &str,
        applies: &dyn Fn(&Action) -> bool,
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

impl Faults {
    /// Reports one injected fault: a `fault` line in the live log and in the recording.
    pub fn mark(&self, rule: &FaultRule, hub: &str, event: &str, detail: String) {
        let action = rule.action.text();
        self.traffic.emit(TrafficEvent::Fault {
            rule: rule.to_string(),
            hub: hub.to_owned(),
            event: event.to_owned(),
            action,
            detail,
        });
    }
}

impl FaultInjector for Faults {
    fn pick(&self, hub: &str, event: &str, applies: &dyn Fn(&Action) -> bool) -> Option<FaultRule> {
        Faults::pick(self, hub, event, applies)
    }

    fn mark(&self, rule: &FaultRule, hub: &str, event: &str, detail: String) {
        Faults::mark(self, rule, hub, event, detail);
    }

    fn list(&self) -> Vec<FaultRule> {
        Faults::list(self)
    }

    fn add(&self, rule: FaultRule) -> Result<(), AddFaultError> {
        Faults::add(self, rule)
    }

    fn clear(&self) -> usize {
        Faults::clear(self)
    }

    fn remove(&self, text: &str) -> bool {
        Faults::remove(self, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                .map(|_| faults.pick("h", "e", &|_| true).is_some())
                .collect()
        };
        let a = draws(&Faults::new(vec![rule.clone()], Some(1), Traffic::silent()));
        let b = draws(&Faults::new(vec![rule], Some(1), Traffic::silent()));
        assert_eq!(a, b);
        assert!(a.contains(&true) && a.contains(&false));
        let faults = Faults::new(Vec::new(), None, Traffic::silent());
        faults.add("hub=x,twice".parse().unwrap()).unwrap();
        assert!(faults.pick("y", "connected", &|_| true).is_none());
        assert!(faults.pick("X", "connected", &|_| true).is_some());
        assert!(
            faults
                .pick("x", "connected", &|a| *a != Action::Twice)
                .is_none()
        );
        assert_eq!(faults.clear(), 1);
        assert!(faults.list().is_empty());
    }
}
