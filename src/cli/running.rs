//! A started service, shared by `serve` and `exec`: [`Running::start`] binds the listeners,
//! starts the `builtin:` handlers, writes the recording's header, plugs the contract lint and
//! the fault rules into the service, announces it (the banner or the `ready` line, laid out by
//! `traffic::banner`) and serves in the background; [`Running::shutdown`] is the documented
//! graceful stop.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::auth::{self, TokenClaims, connection_string};
use crate::builtin::{BuiltinError, Builtins};
use crate::config::{ServeConfig, describe};
use crate::duration;
use crate::fault::Faults;
use crate::hooks::Hooks;
use crate::lint::Live;
use crate::server::{self, CLIENT_PREFIX, Server};
use crate::service::Service;
use crate::traffic::banner::{self, Banner};
use crate::traffic::record::{self, RecordLine};
use crate::traffic::{Format, Traffic, TrafficEvent};
use crate::upstream::ledger::Undelivered;

/// A started service: listening, announced, serving in the background.
pub struct Running {
    pub service: Arc<Service>,
    pub server: Arc<Server>,
    pub port: u16,
    /// The `builtin:` handlers in use; they stop when this is dropped.
    pub builtins: Arc<Builtins>,
    /// The contract lint plugged into the service; its summary is printed at shutdown.
    lint: Arc<Live>,
    serving: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds the listeners, prints the banner (or the `ready` line) and starts serving.
    pub async fn start(mut config: ServeConfig, traffic: Traffic) -> Result<Running, CliError> {
        let (listeners, port) = server::bind(&config.host, config.port)
            .await
            .map_err(|e| {
                let error = CliError::usage(format!(
                    "cannot listen on {}:{}: {e}",
                    config.host, config.port
                ));
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    error.hint("another process uses this port; pick another with --port, or --port 0 for a free one")
                } else {
                    error
                }
            })?;
        let endpoint = server::public_endpoint(&config.host, port);
        // `builtin:` handlers listen before the service exists, so its first call finds them.
        let builtins = Arc::new(Builtins::new(&endpoint, &config.access_keys));
        builtins.apply(&mut config).await?;
        traffic.record(|_| RecordLine::Header {
            format: record::FORMAT.into(),
            version: record::VERSION,
            sio_emu_version: env!("CARGO_PKG_VERSION").into(),
            hubs: config.hub_names(),
            endpoint: endpoint.clone(),
            started_at: if config.seed.is_some() {
                record::LOGICAL_START.into()
            } else {
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
            },
        });
        let shutdown = CancellationToken::new();
        let (hooks, lint) = hooks(&config, &traffic);
        let service =
            Arc::new(Service::new(Arc::new(config), endpoint, traffic, shutdown).with_hooks(hooks));
        announce(&service, port, &listeners);
        warn_exposure(&service, &listeners);
        let server = Server::new(service.clone());
        let serving = tokio::spawn(server.clone().serve(listeners));
        Ok(Running {
            service,
            server,
            port,
            builtins,
            lint,
            serving,
        })
    }

    /// Graceful shutdown: every socket gets its `disconnected`, pending deliveries get the
    /// grace period, the recording is complete when this returns.
    pub async fn shutdown(self) {
        let service = &self.service;
        let grace = service.config().shutdown_grace;
        service.traffic().emit(TrafficEvent::ShuttingDown {
            connections: self.server.engine.session_count(),
        });
        service.shutdown().cancel();
        service.tracker().close();
        if tokio::time::timeout(grace, service.tracker().wait())
            .await
            .is_err()
        {
            service.traffic().emit(TrafficEvent::Error {
                message: format!(
                    "{} webhook deliveries were still pending after {}; they were abandoned",
                    service.tracker().len(),
                    duration::format(grace)
                ),
                hint: Some("raise --shutdown-grace, or check why the webhook is slow".into()),
            });
        }
        if let Some(summary) = undelivered_summary(&service.upstream().ledger().undelivered()) {
            service.traffic().emit(summary);
        }
        // Every `disconnected` answer has been linted by now.
        service.traffic().emit(self.lint.summary());
        self.serving.abort();
        // The recording complete, the dropped-log-lines count (if any), the log flushed.
        service.traffic().finish();
    }
}

/// The service's hooks: the contract lint (also returned, for its shutdown summary) observing
/// webhook exchanges and REST calls, and the fault rules of `config`.
fn hooks(config: &ServeConfig, traffic: &Traffic) -> (Hooks, Arc<Live>) {
    let lint = Arc::new(Live::new(config.lint_slow, traffic.clone()));
    let faults = Faults::new(config.faults.clone(), config.seed, traffic.clone());
    let hooks = Hooks {
        webhooks: lint.clone(),
        rest: lint.clone(),
        faults: Arc::new(faults),
    };
    (hooks, lint)
}

/// The shutdown summary's list of `connected` / `disconnected` events the webhook never
/// accepted (docs/protocol.md §14 decision 23), or `None` when every one was delivered.
fn undelivered_summary(lost: &Undelivered) -> Option<TrafficEvent<'static>> {
    if lost.is_empty() {
        return None;
    }
    let mut message = String::new();
    if !lost.owed.is_empty() {
        message.push_str(&format!(
            "{} event(s) were still waiting for the webhook at shutdown: {}",
            lost.owed.len(),
            lost.owed.join(", ")
        ));
    }
    if lost.given_up_total > 0 {
        if !message.is_empty() {
            message.push_str("; ");
        }
        let unnamed = lost.given_up_total - lost.given_up.len() as u64;
        message.push_str(&format!(
            "{} event(s) were dropped after their last retry: {}{}",
            lost.given_up_total,
            lost.given_up.join(", "),
            if unnamed > 0 {
                format!(" and {unnamed} more")
            } else {
                String::new()
            }
        ));
    }
    Some(TrafficEvent::Error {
        message,
        hint: Some(
            "the webhook was down or failing; these events did not reach your handler".into(),
        ),
    })
}

/// Prints the effective settings (at start in JSON mode, and after a reload).
pub fn print_config(traffic: &Traffic, config: &ServeConfig, heading: &str) {
    traffic.write_line(&match traffic.format() {
        Format::Json => banner::settings_json(heading, describe::json(config)),
        Format::Pretty => banner::settings_pretty(heading, &describe::lines(config)),
    });
}

/// A built-in handler that cannot start is a usage error (exit 2), its hint kept.
impl From<BuiltinError> for CliError {
    fn from(e: BuiltinError) -> Self {
        let error = CliError::usage(e.message);
        match e.hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }
}

/// Right after the banner (or the `ready` line): the warning for a listen address other
/// machines can reach (docs/protocol.md §14 decision 24), shown even with `--quiet`.
fn warn_exposure(service: &Service, listeners: &[tokio::net::TcpListener]) {
    let addrs: Vec<std::net::SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let Some((message, hint)) = server::exposure::warning(&service.config(), &addrs) else {
        return;
    };
    let event = TrafficEvent::Warning {
        message,
        hint: Some(hint),
    };
    let traffic = service.traffic();
    traffic.write_line(&match traffic.format() {
        Format::Json => crate::traffic::json::render(&event),
        Format::Pretty => crate::traffic::pretty::render(&event),
    });
}

/// The startup banner, or the `ready` line in JSON mode.
fn announce(service: &Service, port: u16, listeners: &[tokio::net::TcpListener]) {
    let config = service.config();
    let endpoint = service.endpoint();
    let connection_string = connection_string::format(endpoint, &config.access_keys[0]);
    let hub = config
        .hubs
        .first()
        .map(|h| h.name.as_str())
        .unwrap_or("hub");
    let token = auth::mint(
        &config.access_keys[0],
        &TokenClaims {
            aud: auth::client_audience(endpoint, hub),
            lifetime_secs: 3600,
            now: auth::now_unix(),
            ..TokenClaims::default()
        },
    );
    let addrs = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.ip().to_string())
        .collect();
    let banner = Banner {
        endpoint,
        port,
        addrs,
        connection_string: &connection_string,
        inspector_path: crate::admin::PREFIX,
        client_path: format!("{CLIENT_PREFIX}{hub}"),
        token: &token,
        anonymous: config.default_hub.anonymous,
        hubs: config.hub_names(),
        webhook: config.default_hub.handlers.first().map(|h| h.url.clone()),
        settings: describe::lines(&config),
    };
    let traffic = service.traffic();
    if traffic.format() == Format::Json {
        traffic.write_line(&banner.ready());
        print_config(traffic, &config, "effective configuration");
    } else {
        traffic.write_line(&banner.pretty());
    }
}
