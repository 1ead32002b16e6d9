//! Settings resolution: the command line's [`Overrides`] (flags and their environment
//! variables) win over the `--config` file's [`FileConfig`], which wins over the defaults of
//! [`ServeConfig`]. The CLI turns its flags into [`Overrides`] and calls [`resolve`] at start and
//! again on every change of the file, so a reload resolves exactly like a start.

use std::time::Duration;

use super::fault::FaultRule;
use super::file::FileConfig;
use super::{DEFAULT_PORT, DEFAULT_WEBHOOK, EngineConfig, HubConfig, ServeConfig, valid_hub_name};
use crate::auth::DEV_ACCESS_KEY;

/// What the command line sets; `None` (or `false`, or empty) where it is silent.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub access_key: Option<String>,
    pub secondary_key: Option<String>,
    /// `--hub` names.
    pub hubs: Vec<String>,
    pub strict_hubs: bool,
    pub webhook: Option<String>,
    pub anonymous: bool,
    pub rest_anonymous: bool,
    pub forward_auth: bool,
    pub ping_interval: Option<Duration>,
    pub ping_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub upgrade_timeout: Option<Duration>,
    pub max_payload: Option<usize>,
    pub webhook_timeout: Option<Duration>,
    pub webhook_retry: Option<Vec<Duration>>,
    pub no_preflight: bool,
    /// Only the command line sets these three; they always have a value.
    pub shutdown_grace: Duration,
    pub seed: Option<u64>,
    pub lint_slow: Duration,
    /// `--fault` rules; they come after the file's `[[fault]]` rules.
    pub faults: Vec<FaultRule>,
}

/// Settings that cannot be used, with what to do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ResolveError {
    pub message: String,
    pub hint: Option<String>,
}

impl ResolveError {
    fn new(message: impl Into<String>) -> Self {
        ResolveError {
            message: message.into(),
            hint: None,
        }
    }
}

/// Merges `flags` over `file` over the defaults.
pub fn resolve(flags: &Overrides, mut file: FileConfig) -> Result<ServeConfig, ResolveError> {
    let defaults = ServeConfig::default();
    check_hub_names(&flags.hubs)?;
    let webhook = webhook_url(flags, file.webhook.take())?;
    let engine = engine_config(flags, &file, &defaults.engine)?;
    let access_keys = access_keys(flags, file.access_key.take(), file.secondary_key.take())?;
    let anonymous = flags.anonymous || file.anonymous.unwrap_or(false);
    let hubs = merged_hubs(flags, std::mem::take(&mut file.hubs), anonymous, &webhook);
    Ok(ServeConfig {
        host: flags.host.clone().or(file.host).unwrap_or(defaults.host),
        port: flags.port.or(file.port).unwrap_or(DEFAULT_PORT),
        access_keys,
        hubs,
        default_hub: HubConfig::new("*", anonymous, &webhook),
        strict_hubs: flags.strict_hubs || file.strict_hubs.unwrap_or(false),
        webhook_timeout: flags
            .webhook_timeout
            .or(file.webhook_timeout)
            .unwrap_or(defaults.webhook_timeout),
        webhook_retry_delays: flags
            .webhook_retry
            .clone()
            .or(file.webhook_retry)
            .unwrap_or(defaults.webhook_retry_delays),
        preflight: !flags.no_preflight && file.preflight.unwrap_or(true),
        forward_auth: flags.forward_auth,
        rest_anonymous: flags.rest_anonymous || file.rest_anonymous.unwrap_or(false),
        engine,
        shutdown_grace: flags.shutdown_grace,
        seed: flags.seed,
        lint_slow: flags.lint_slow,
        faults: file.faults.iter().chain(&flags.faults).cloned().collect(),
    })
}

/// `--hub` names follow the service's rules.
fn check_hub_names(hubs: &[String]) -> Result<(), ResolveError> {
    match hubs.iter().find(|hub| !valid_hub_name(hub)) {
        Some(hub) => Err(ResolveError::new(format!(
            "invalid hub name `{hub}`: {} (at most 128)",
            super::HUB_NAME_RULE
        ))),
        None => Ok(()),
    }
}

/// The default handler: `--webhook`, the file's, or the Functions default; http:// or builtin.
fn webhook_url(flags: &Overrides, file: Option<String>) -> Result<String, ResolveError> {
    let webhook = flags
        .webhook
        .clone()
        .or(file)
        .unwrap_or_else(|| DEFAULT_WEBHOOK.into());
    if !webhook.starts_with("http://") && !webhook.starts_with("builtin:") {
        return Err(ResolveError {
            message: format!("invalid --webhook `{webhook}`: only http:// URLs are supported"),
            hint: Some(
                "point it at your local handler, e.g. http://localhost:7071/runtime/webhooks/socketio"
                    .into(),
            ),
        });
    }
    Ok(webhook)
}

/// Engine.IO timings and the payload limit (at least one byte).
fn engine_config(
    flags: &Overrides,
    file: &FileConfig,
    defaults: &EngineConfig,
) -> Result<EngineConfig, ResolveError> {
    let max_payload = flags
        .max_payload
        .or(file.max_payload)
        .unwrap_or(defaults.max_payload);
    if max_payload == 0 {
        return Err(ResolveError::new("--max-payload must be at least 1 byte"));
    }
    Ok(EngineConfig {
        ping_interval: flags
            .ping_interval
            .or(file.ping_interval)
            .unwrap_or(defaults.ping_interval),
        ping_timeout: flags
            .ping_timeout
            .or(file.ping_timeout)
            .unwrap_or(defaults.ping_timeout),
        connect_timeout: flags
            .connect_timeout
            .or(file.connect_timeout)
            .unwrap_or(defaults.connect_timeout),
        upgrade_timeout: flags
            .upgrade_timeout
            .or(file.upgrade_timeout)
            .unwrap_or(defaults.upgrade_timeout),
        max_payload,
        ..EngineConfig::default()
    })
}

/// The primary key (never empty) and, when set and not empty, the secondary.
fn access_keys(
    flags: &Overrides,
    file_primary: Option<String>,
    file_secondary: Option<String>,
) -> Result<Vec<String>, ResolveError> {
    let primary = flags
        .access_key
        .clone()
        .or(file_primary)
        .unwrap_or_else(|| DEV_ACCESS_KEY.into());
    if primary.is_empty() {
        return Err(ResolveError::new("the access key must not be empty"));
    }
    let mut access_keys = vec![primary];
    access_keys.extend(
        flags
            .secondary_key
            .clone()
            .or(file_secondary)
            .filter(|k| !k.is_empty()),
    );
    Ok(access_keys)
}

/// The file's hubs (`--anonymous` applied, the default handler where they name none), then
/// the `--hub` names the file does not declare.
fn merged_hubs(
    flags: &Overrides,
    mut hubs: Vec<HubConfig>,
    anonymous: bool,
    webhook: &str,
) -> Vec<HubConfig> {
    for hub in &mut hubs {
        hub.anonymous |= flags.anonymous;
        if hub.handlers.is_empty() {
            hub.handlers = HubConfig::new(&hub.name, false, webhook).handlers;
        }
    }
    for name in &flags.hubs {
        if !hubs.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
            hubs.push(HubConfig::new(name, anonymous, webhook));
        }
    }
    hubs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn silence_everywhere_gives_the_defaults() {
        let config = resolve(&Overrides::default(), FileConfig::default()).unwrap();
        let defaults = ServeConfig::default();
        assert_eq!(config.host, defaults.host);
        assert_eq!(config.port, DEFAULT_PORT);
        assert_eq!(config.access_keys, vec![DEV_ACCESS_KEY.to_string()]);
        assert_eq!(
            config.default_hub,
            HubConfig::new("*", false, DEFAULT_WEBHOOK)
        );
        assert_eq!(config.webhook_retry_delays, defaults.webhook_retry_delays);
        assert!(config.preflight && !config.strict_hubs && config.hubs.is_empty());
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_defaults() {
        let file = FileConfig {
            host: Some("0.0.0.0".into()),
            port: Some(9000),
            webhook_timeout: Some(secs(3)),
            ping_interval: Some(secs(7)),
            max_payload: Some(10),
            access_key: Some("file-key".into()),
            secondary_key: Some("file-second".into()),
            ..FileConfig::default()
        };
        let flags = Overrides {
            port: Some(0),
            ping_interval: Some(secs(1)),
            access_key: Some("flag-key".into()),
            no_preflight: true,
            ..Overrides::default()
        };
        let config = resolve(&flags, file).unwrap();
        assert_eq!((config.host.as_str(), config.port), ("0.0.0.0", 0));
        assert_eq!(config.webhook_timeout, secs(3));
        assert_eq!(config.engine.ping_interval, secs(1));
        assert_eq!(config.engine.max_payload, 10);
        assert_eq!(config.access_keys, ["flag-key", "file-second"]);
        assert!(!config.preflight);
    }

    #[test]
    fn hubs_merge_file_first_with_the_default_handler_and_anonymous_flag() {
        let mut silent = HubConfig::new("Chat", false, "http://x/");
        silent.handlers.clear();
        let file = FileConfig {
            hubs: vec![silent, HubConfig::new("Own", false, "http://own/")],
            webhook: Some("http://file/{event}".into()),
            ..FileConfig::default()
        };
        let flags = Overrides {
            hubs: vec!["chat".into(), "Extra".into()],
            anonymous: true,
            ..Overrides::default()
        };
        let config = resolve(&flags, file).unwrap();
        assert_eq!(
            config.hubs,
            [
                HubConfig::new("Chat", true, "http://file/{event}"),
                HubConfig::new("Own", true, "http://own/"),
                HubConfig::new("Extra", true, "http://file/{event}"),
            ]
        );
        assert!(config.default_hub.anonymous);
    }

    #[test]
    fn faults_keep_file_rules_first() {
        let rule = |text: &str| text.parse::<FaultRule>().unwrap();
        let file = FileConfig {
            faults: vec![rule("status=500")],
            ..FileConfig::default()
        };
        let flags = Overrides {
            faults: vec![rule("drop")],
            ..Overrides::default()
        };
        let config = resolve(&flags, file).unwrap();
        assert_eq!(config.faults, [rule("status=500"), rule("drop")]);
    }

    #[test]
    fn unusable_settings_are_refused_with_their_reason() {
        let refused = |flags: Overrides| resolve(&flags, FileConfig::default()).unwrap_err();
        let bad_hub = refused(Overrides {
            hubs: vec!["1hub".into()],
            ..Overrides::default()
        });
        assert!(bad_hub.message.starts_with("invalid hub name `1hub`"));
        let https = refused(Overrides {
            webhook: Some("https://x/".into()),
            ..Overrides::default()
        });
        assert!(https.message.contains("only http:// URLs") && https.hint.is_some());
        let empty_key = refused(Overrides {
            access_key: Some(String::new()),
            ..Overrides::default()
        });
        assert_eq!(empty_key.message, "the access key must not be empty");
        let no_payload = refused(Overrides {
            max_payload: Some(0),
            ..Overrides::default()
        });
        assert_eq!(no_payload.message, "--max-payload must be at least 1 byte");
        let builtin = resolve(
            &Overrides {
                webhook: Some("builtin:echo".into()),
                ..Overrides::default()
            },
            FileConfig::default(),
        );
        assert!(builtin.is_ok());
    }

    #[test]
    fn an_empty_secondary_key_is_no_key() {
        let flags = Overrides {
            secondary_key: Some(String::new()),
            ..Overrides::default()
        };
        let config = resolve(&flags, FileConfig::default()).unwrap();
        assert_eq!(config.access_keys.len(), 1);
    }
}
