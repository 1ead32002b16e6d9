//! The effective settings shown to a person: labelled lines for the startup banner and the
//! reload notice, and one JSON object for `--format json`, access keys masked in both. The
//! traffic renderers (`traffic::banner`) lay them out; this module only says what they are.

use super::{HubConfig, ServeConfig};
use crate::duration;

/// Shows a key as its first and last four characters.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 10 {
        "****".into()
    } else {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

fn describe_hub(hub: &HubConfig) -> String {
    let handlers: Vec<String> = hub
        .handlers
        .iter()
        .map(|h| {
            let system: Vec<&str> = h.system_events.iter().map(|e| e.name()).collect();
            format!(
                "{} (user events: {}; system: {})",
                h.url,
                match h.user_events.to_text() {
                    t if t.is_empty() => "none".to_string(),
                    t => t,
                },
                if system.is_empty() {
                    "none".to_string()
                } else {
                    system.join(",")
                }
            )
        })
        .collect();
    format!(
        "{}{} → {}",
        hub.name,
        if hub.anonymous { " [anonymous]" } else { "" },
        if handlers.is_empty() {
            "no handler".to_string()
        } else {
            handlers.join(" then ")
        }
    )
}

/// The effective settings as labelled lines, secrets masked.
pub fn lines(config: &ServeConfig) -> Vec<(&'static str, String)> {
    let keys: Vec<String> = config.access_keys.iter().map(|k| mask(k)).collect();
    let mut lines = vec![("keys", keys.join(", "))];
    for hub in &config.hubs {
        lines.push(("hub", describe_hub(hub)));
    }
    let other = if config.strict_hubs {
        "refused (--strict-hubs)".to_string()
    } else {
        describe_hub(&config.default_hub).replacen('*', "any other hub", 1)
    };
    lines.push(("hub", other));
    lines.push((
        "webhooks",
        format!(
            "timeout {}, retries {}, preflight {}",
            duration::format(config.webhook_timeout),
            config
                .webhook_retry_delays
                .iter()
                .map(|d| duration::format(*d))
                .collect::<Vec<_>>()
                .join(","),
            if config.preflight { "on" } else { "off" }
        ),
    ));
    let e = &config.engine;
    lines.push((
        "engine",
        format!(
            "ping {}/{}, connect timeout {}, upgrade timeout {}, maxPayload {}",
            duration::format(e.ping_interval),
            duration::format(e.ping_timeout),
            duration::format(e.connect_timeout),
            duration::format(e.upgrade_timeout),
            e.max_payload
        ),
    ));
    lines.push((
        "rest",
        if config.rest_anonymous {
            "Bearer token optional (--rest-anonymous)".into()
        } else {
            "Bearer token required".into()
        },
    ));
    lines
}

/// The effective settings as one JSON object (secrets masked).
pub fn json(config: &ServeConfig) -> serde_json::Value {
    let hub = |h: &HubConfig| {
        serde_json::json!({
            "name": h.name,
            "anonymous": h.anonymous,
            "handlers": h.handlers.iter().map(|x| serde_json::json!({
                "url": x.url,
                "userEvents": x.user_events.to_text(),
                "systemEvents": x.system_events.iter().map(|e| e.name()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    };
    serde_json::json!({
        "accessKeys": config.access_keys.iter().map(|k| mask(k)).collect::<Vec<_>>(),
        "hubs": config.hubs.iter().map(hub).collect::<Vec<_>>(),
        "defaultHub": hub(&config.default_hub),
        "strictHubs": config.strict_hubs,
        "webhookTimeoutMs": config.webhook_timeout.as_millis() as u64,
        "preflight": config.preflight,
        "restAnonymous": config.rest_anonymous,
        "maxPayload": config.engine.max_payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_show_only_their_ends() {
        assert_eq!(mask("short"), "****");
        assert_eq!(mask("0123456789"), "****");
        assert_eq!(mask("0123456789abcdef"), "0123…cdef");
        assert_eq!(mask("ééééxxxxxxxxéééé"), "éééé…éééé");
    }

    #[test]
    fn lines_name_every_hub_and_mask_every_key() {
        let config = ServeConfig {
            access_keys: vec!["0123456789abcdef".into(), "secondary-key-here".into()],
            hubs: vec![HubConfig::new("chat", true, "http://h/{event}")],
            strict_hubs: true,
            ..ServeConfig::default()
        };
        let lines = lines(&config);
        assert_eq!(lines[0], ("keys", "0123…cdef, seco…here".to_string()));
        assert_eq!(
            lines[1],
            (
                "hub",
                "chat [anonymous] → http://h/{event} (user events: *; system: connect,connected,disconnected)"
                    .to_string()
            )
        );
        assert_eq!(lines[2], ("hub", "refused (--strict-hubs)".to_string()));
        let labels: Vec<&str> = lines.iter().map(|(l, _)| *l).collect();
        assert_eq!(labels, ["keys", "hub", "hub", "webhooks", "engine", "rest"]);
        assert!(!format!("{lines:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn json_masks_keys_and_names_the_default_hub() {
        let value = json(&ServeConfig::default());
        assert_eq!(value["defaultHub"]["name"], "*");
        assert_eq!(value["accessKeys"].as_array().map(Vec::len), Some(1));
        let dev = crate::auth::DEV_ACCESS_KEY;
        assert!(!value.to_string().contains(dev));
    }
}
