//! The table of hubs that exist. A hub exists while something needs it: it is declared (`--hub`
//! or the config file), a session or a handshake in progress holds it, or it keeps state that
//! must outlive its connections (user → group assignments made over REST). Any other hub is
//! idle: lookups and listings no longer see it, and it is dropped by the lookup that finds it,
//! by [`Registry::release`], or by the sweep that runs whenever the table has doubled since the
//! last one. So hub names chosen by clients (a refused handshake still names one) cannot pile up:
//! the table holds at most about twice the hubs in use, plus [`MIN_SWEEP`].
//!
//! "Something holds it" is the hub's `Arc` count. The table holds one reference; every other one
//! (a session's, a handshake's, a REST call's) was cloned out of the table under its lock, so a
//! count of one seen under that lock stays one until the lock is released.

use std::collections::HashMap;
use std::sync::Arc;

use super::hub::Hub;

/// The table is swept when it holds this many hubs, at the least.
pub const MIN_SWEEP: usize = 64;

/// Hubs by lower-cased name (docs/protocol.md §13 #19: hub names match case-insensitively).
#[derive(Debug)]
pub struct Registry {
    hubs: HashMap<String, Arc<Hub>>,
    /// The size at which the next insertion sweeps idle hubs out first.
    sweep_at: usize,
}

/// Whether a hub name is declared in the configuration in force.
pub type Declared<'a> = &'a dyn Fn(&str) -> bool;

/// Nothing but the table holds `hub` and it keeps no state.
fn idle(hub: &Arc<Hub>) -> bool {
    Arc::strong_count(hub) == 1 && hub.is_idle()
}

impl Registry {
    /// A table holding the declared hubs.
    pub fn new<'a>(declared: impl IntoIterator<Item = &'a str>) -> Self {
        let mut registry = Registry {
            hubs: HashMap::new(),
            sweep_at: MIN_SWEEP,
        };
        for name in declared {
            registry.declare(name);
        }
        registry
    }

    /// Makes sure a declared hub exists (at start and after a reload).
    pub fn declare(&mut self, name: &str) {
        self.hubs
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Hub::new(name)));
    }

    /// The hub called `name`, unless it is idle and undeclared (then it is dropped).
    pub fn get(&mut self, name: &str, declared: Declared<'_>) -> Option<Arc<Hub>> {
        let key = name.to_ascii_lowercase();
        let hub = self.hubs.get(&key)?;
        if idle(hub) && !declared(hub.name()) {
            self.hubs.remove(&key);
            return None;
        }
        Some(hub.clone())
    }

    /// The hub called `name`, created when missing (after sweeping when the table is full).
    pub fn get_or_insert(&mut self, name: &str, declared: Declared<'_>) -> Arc<Hub> {
        let key = name.to_ascii_lowercase();
        if let Some(hub) = self.hubs.get(&key) {
            return hub.clone();
        }
        if self.hubs.len() >= self.sweep_at {
            self.sweep(declared);
        }
        let hub = Arc::new(Hub::new(name));
        self.hubs.insert(key, hub.clone());
        hub
    }

    /// Drops `hub` when it is still the table's hub of that name, is undeclared, keeps no state
    /// and nobody but the table and the caller (who owns `hub`) holds it.
    pub fn release(&mut self, hub: &Arc<Hub>, declared: Declared<'_>) {
        let key = hub.name().to_ascii_lowercase();
        let Some(entry) = self.hubs.get(&key) else {
            return;
        };
        if Arc::ptr_eq(entry, hub)
            && Arc::strong_count(hub) == 2
            && hub.is_idle()
            && !declared(hub.name())
        {
            self.hubs.remove(&key);
        }
    }

    /// Every hub that is not idle (idle ones are dropped on the way).
    pub fn live(&mut self, declared: Declared<'_>) -> Vec<Arc<Hub>> {
        self.sweep(declared);
        self.hubs.values().cloned().collect()
    }

    /// Drops every idle undeclared hub; the next sweep comes when the table has doubled.
    fn sweep(&mut self, declared: Declared<'_>) {
        self.hubs
            .retain(|_, hub| !idle(hub) || declared(hub.name()));
        self.sweep_at = (self.hubs.len() * 2).max(MIN_SWEEP);
        if self.hubs.capacity() > 2 * self.sweep_at {
            self.hubs.shrink_to(self.sweep_at);
        }
    }

    /// How many hubs the table holds, idle ones included (for tests of the bound).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.hubs.len()
    }
}

#[cfg(test)]
mod tests;
