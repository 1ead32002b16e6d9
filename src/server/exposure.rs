//! What listening beyond loopback exposes (docs/protocol.md §14 decision 24). `serve` listens on `localhost` by
//! default; when asked to bind a wildcard (`0.0.0.0`, `::`) or another machine-visible address,
//! the startup output warns once, naming what other machines can now reach: the public
//! development access key (when in use: anyone can mint client and REST tokens with it),
//! anonymous hubs, a REST API without tokens or one whose tokens anyone can mint, and that the
//! `/_emu/` admin surface stays loopback-only.

use std::net::SocketAddr;

use crate::admin::gate::loopback_ip;
use crate::auth::DEV_ACCESS_KEY;
use crate::config::ServeConfig;

/// The warning for listening on `addrs` with `config`, with its hint; `None` when every
/// address is loopback.
pub fn warning(config: &ServeConfig, addrs: &[SocketAddr]) -> Option<(String, String)> {
    let exposed: Vec<String> = addrs
        .iter()
        .filter(|a| !loopback_ip(a.ip()))
        .map(|a| {
            if a.ip().is_unspecified() {
                format!("{} (every network interface)", a.ip())
            } else {
                a.ip().to_string()
            }
        })
        .collect();
    if exposed.is_empty() {
        return None;
    }
    let dev_key = config.access_keys.iter().any(|k| k == DEV_ACCESS_KEY);
    let mut parts = Vec::new();
    if dev_key {
        parts.push(
            "the public development access key is in use: anyone who can reach this port can \
             mint client and REST tokens with it"
                .to_owned(),
        );
    }
    if let Some(hubs) = anonymous_hubs(config) {
        parts.push(format!(
            "anonymous hubs ({hubs}) accept clients without a token"
        ));
    }
    parts.push(if config.rest_anonymous {
        "the REST API is reachable and accepts calls without a token (--rest-anonymous)".to_owned()
    } else if dev_key {
        "the REST API is reachable (it needs a Bearer token, which the development key lets \
         anyone mint)"
            .to_owned()
    } else {
        "the REST API is reachable (it needs a Bearer token signed with your access key)".to_owned()
    });
    parts.push("the /_emu/ admin surface stays loopback-only".to_owned());
    let message = format!(
        "listening on {}: other machines can reach this emulator. Exposed: {}",
        exposed.join(", "),
        parts.join("; ")
    );
    let hint = "listen on localhost (the default) unless other machines must connect; otherwise \
                set your own --access-key and leave out --anonymous and --rest-anonymous"
        .to_owned();
    Some((message, hint))
}

/// The anonymous hubs, as a phrase: declared ones by name, "every undeclared hub" when the
/// default policy is anonymous and undeclared hubs are allowed.
fn anonymous_hubs(config: &ServeConfig) -> Option<String> {
    let mut names: Vec<String> = config
        .hubs
        .iter()
        .filter(|h| h.anonymous)
        .map(|h| h.name.clone())
        .collect();
    if config.default_hub.anonymous && !config.strict_hubs {
        names.insert(0, "every undeclared hub".into());
    }
    (!names.is_empty()).then(|| names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HubConfig;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn loopback_is_quiet() {
        let config = ServeConfig::default();
        assert_eq!(warning(&config, &addrs(&["127.0.0.1:1", "[::1]:1"])), None);
    }

    #[test]
    fn wildcard_names_key_anonymous_and_rest() {
        let mut config = ServeConfig::default();
        config.default_hub.anonymous = true;
        let (message, hint) = warning(&config, &addrs(&["0.0.0.0:8080"])).unwrap();
        assert!(
            message.contains("0.0.0.0 (every network interface)"),
            "{message}"
        );
        assert!(message.contains("development access key"), "{message}");
        assert!(
            message.contains("anonymous hubs (every undeclared hub)"),
            "{message}"
        );
        assert!(message.contains("REST API is reachable"), "{message}");
        assert!(
            message.contains("/_emu/ admin surface stays loopback-only"),
            "{message}"
        );
        assert!(hint.contains("--access-key"), "{hint}");
    }

    #[test]
    fn own_key_and_declared_anonymous_hubs() {
        let mut config = ServeConfig {
            access_keys: vec!["a-key-of-my-own-that-is-long-enough-000000".into()],
            strict_hubs: true,
            ..ServeConfig::default()
        };
        config.default_hub.anonymous = true;
        config.hubs.push(HubConfig::new("lobby", true, "http://x/"));
        config.hubs.push(HubConfig::new("chat", false, "http://x/"));
        let (message, _) = warning(&config, &addrs(&["192.168.1.5:80", "[::]:80"])).unwrap();
        assert!(
            message.contains("192.168.1.5, :: (every network interface)"),
            "{message}"
        );
        assert!(!message.contains("development access key"), "{message}");
        assert!(message.contains("anonymous hubs (lobby)"), "{message}");
        assert!(message.contains("signed with your access key"), "{message}");
    }
}
