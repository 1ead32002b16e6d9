//! The reload decision: what a changed `--config` file changes in a running service. Hubs,
//! handlers, keys and webhook settings apply to new events at once; the listen address and the
//! Engine.IO settings are fixed when the service starts, so a change to them keeps its running
//! value and is reported as needing a restart. Pure: the CLI reads the file, resolves it, asks
//! [`what_changed`] and applies [`Changed::config`].

use super::{EngineConfig, ServeConfig};

/// The outcome of comparing the running settings with the newly resolved ones.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The settings to run with: the new ones, with what needs a restart kept at its running
    /// value.
    pub config: ServeConfig,
    /// What changed but applies only after a restart, in the order a reader meets them
    /// (`"listen address"`, `"engine settings"`); empty when everything applies now.
    pub needs_restart: Vec<&'static str>,
}

/// Compares `old` (running) with `new` (just resolved) and decides what applies now.
pub fn what_changed(old: &ServeConfig, mut new: ServeConfig) -> Changed {
    let mut needs_restart = Vec::new();
    if old.host != new.host || old.port != new.port {
        needs_restart.push("listen address");
    }
    if engine_differs(&old.engine, &new.engine) {
        needs_restart.push("engine settings");
    }
    new.host.clone_from(&old.host);
    new.port = old.port;
    new.engine = old.engine.clone();
    Changed {
        config: new,
        needs_restart,
    }
}

/// Whether any Engine.IO setting a user can set differs.
fn engine_differs(old: &EngineConfig, new: &EngineConfig) -> bool {
    old.ping_interval != new.ping_interval
        || old.ping_timeout != new.ping_timeout
        || old.connect_timeout != new.connect_timeout
        || old.upgrade_timeout != new.upgrade_timeout
        || old.max_payload != new.max_payload
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::HubConfig;

    #[test]
    fn the_same_settings_change_nothing() {
        let old = ServeConfig::default();
        let changed = what_changed(&old, old.clone());
        assert!(changed.needs_restart.is_empty());
        assert_eq!(changed.config.hubs, old.hubs);
    }

    #[test]
    fn hubs_keys_and_webhooks_apply_now() {
        let old = ServeConfig::default();
        let new = ServeConfig {
            hubs: vec![HubConfig::new("chat", true, "http://h/")],
            access_keys: vec!["other".into()],
            webhook_timeout: Duration::from_secs(1),
            strict_hubs: true,
            ..ServeConfig::default()
        };
        let changed = what_changed(&old, new.clone());
        assert!(changed.needs_restart.is_empty());
        assert_eq!(changed.config.hubs, new.hubs);
        assert_eq!(changed.config.access_keys, new.access_keys);
        assert_eq!(changed.config.webhook_timeout, new.webhook_timeout);
        assert!(changed.config.strict_hubs);
    }

    #[test]
    fn the_listen_address_keeps_its_running_value() {
        let old = ServeConfig::default();
        for new in [
            ServeConfig {
                port: 9999,
                ..ServeConfig::default()
            },
            ServeConfig {
                host: "0.0.0.0".into(),
                ..ServeConfig::default()
            },
        ] {
            let changed = what_changed(&old, new);
            assert_eq!(changed.needs_restart, ["listen address"]);
            assert_eq!(
                (changed.config.host, changed.config.port),
                (old.host.clone(), old.port)
            );
        }
    }

    #[test]
    fn each_engine_setting_keeps_its_running_value() {
        let old = ServeConfig::default();
        let edits: [fn(&mut EngineConfig); 5] = [
            |e| e.ping_interval = Duration::from_secs(1),
            |e| e.ping_timeout = Duration::from_secs(1),
            |e| e.connect_timeout = Duration::from_secs(1),
            |e| e.upgrade_timeout = Duration::from_secs(1),
            |e| e.max_payload = 1,
        ];
        for edit in edits {
            let mut new = ServeConfig::default();
            edit(&mut new.engine);
            let changed = what_changed(&old, new);
            assert_eq!(changed.needs_restart, ["engine settings"]);
            assert!(!engine_differs(&changed.config.engine, &old.engine));
        }
    }

    #[test]
    fn both_are_named_in_reading_order() {
        let old = ServeConfig::default();
        let mut new = ServeConfig {
            port: 1,
            ..ServeConfig::default()
        };
        new.engine.max_payload = 2;
        let changed = what_changed(&old, new);
        assert_eq!(changed.needs_restart, ["listen address", "engine settings"]);
        assert_eq!(changed.config.port, old.port);
        assert_eq!(changed.config.engine.max_payload, old.engine.max_payload);
    }
}
