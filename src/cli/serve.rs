//! `sio-emu serve`: flags → [`ServeConfig`], bind, print the banner (or the NDJSON `ready`
//! line), run until Ctrl-C / SIGTERM, then shut down the documented way: every socket gets its
//! `disconnected`, pending deliveries get a grace period, exit 0.

use crate::upstream::ledger::Undelivered;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use colored::Colorize;
use tokio_util::sync::CancellationToken;

use super::{CliError, ColorChoice};
use crate::auth::{self, DEV_ACCESS_KEY, TokenClaims, connection_string};
use crate::builtin::{BuiltinError, Builtins};
use crate::config::file::{self, FileConfig};
use crate::config::{
    DEFAULT_PORT, DEFAULT_WEBHOOK, EngineConfig, HubConfig, ServeConfig, valid_hub_name,
};
use crate::duration;
use crate::fault::Faults;
use crate::hooks::Hooks;
use crate::lint::Live;
use crate::server::{self, CLIENT_PREFIX, Server};
use crate::service::Service;
use crate::traffic::record::{self, RecordLine, Recorder};
use crate::traffic::ring::Ring;
use crate::traffic::{Format, Traffic, TrafficEvent};

/// `--format pretty|json` for the live log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

/// How often `--config` is checked for changes.
const RELOAD_POLL: Duration = Duration::from_millis(500);

/// Flags of `sio-emu serve`. Flags and their environment variables win over `--config`, which
/// wins over the defaults shown.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// TOML configuration file (hubs, handlers, keys, limits); re-read when it changes.
    /// `sio-emu init` writes a commented starter.
    #[arg(long, value_name = "FILE", env = "SIO_EMU_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address; `localhost` binds 127.0.0.1 and ::1 [default: localhost].
    #[arg(long)]
    pub host: Option<String>,
    /// Listen port; 0 picks a free one [default: 8080].
    #[arg(long)]
    pub port: Option<u16>,
    /// Key that signs and verifies every token and webhook signature [default: the development key].
    #[arg(long, env = "SIO_EMU_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// A secondary access key: tokens signed with it are accepted and `ce-signature` carries both.
    #[arg(long, env = "SIO_EMU_SECONDARY_KEY", hide_env_values = true)]
    pub secondary_key: Option<String>,
    /// Declare a hub (repeatable); undeclared hubs are accepted unless --strict-hubs.
    #[arg(long = "hub", value_name = "NAME")]
    pub hubs: Vec<String>,
    /// Refuse clients of hubs that were not declared.
    #[arg(long)]
    pub strict_hubs: bool,
    /// Event handler URL template (`{hub}` and `{event}` are substituted) for hubs without
    /// handlers of their own, or `builtin:echo` / `builtin:chat` for a built-in handler
    /// [default: http://localhost:7071/runtime/webhooks/socketio].
    #[arg(long, value_name = "URL-TEMPLATE")]
    pub webhook: Option<String>,
    /// Accept clients without an access token (on every hub).
    #[arg(long)]
    pub anonymous: bool,
    /// Accept REST calls without a Bearer token (for quick experiments).
    #[arg(long)]
    pub rest_anonymous: bool,
    /// Add the Socket.IO CONNECT `auth` payload to the connect event body under `auth`.
    #[arg(long)]
    pub forward_auth: bool,
    /// Append every client frame, webhook exchange and REST call to this session file
    /// (one JSON object per line; see REPLAY in the README).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Live log rendering: coloured lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    pub format: LogFormat,
    /// Only errors and the startup banner.
    #[arg(long)]
    pub quiet: bool,
    /// Colour: auto (terminal, no NO_COLOR, TERM not dumb), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Engine.IO ping interval (e.g. 25s; bare numbers are ms) [default: 25s].
    #[arg(long, value_parser = parse_duration)]
    pub ping_interval: Option<Duration>,
    /// Engine.IO ping timeout [default: 20s].
    #[arg(long, value_parser = parse_duration)]
    pub ping_timeout: Option<Duration>,
    /// Time a connection has to send its first Socket.IO CONNECT [default: 45s].
    #[arg(long, value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Time a polling → WebSocket upgrade may take [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub upgrade_timeout: Option<Duration>,
    /// Engine.IO maxPayload in bytes [default: 1000000].
    #[arg(long)]
    pub max_payload: Option<usize>,
    /// Per webhook request timeout [default: 30s].
    #[arg(long, value_parser = parse_duration)]
    pub webhook_timeout: Option<Duration>,
    /// Delays before retrying connected/disconnected deliveries, comma separated [default: 1s,2s,4s,8s,15s,30s].
    #[arg(long, value_parser = parse_duration, value_delimiter = ',')]
    pub webhook_retry: Option<Vec<Duration>>,
    /// Skip the abuse-protection OPTIONS preflight.
    #[arg(long)]
    pub no_preflight: bool,
    /// How long shutdown waits for pending disconnected deliveries.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub shutdown_grace: Duration,
    /// Deterministic run: connection and socket ids, ce-id/ce-time and the recording's times come
    /// from a generator seeded with N and a logical clock, so the same sequential scenario
    /// records the same session file every time.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Contract lint: report blocking webhook answers (connect, user events) slower than this.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DUR")]
    pub lint_slow: Duration,
    /// Inject a fault (repeatable), e.g. `event=chat*,status=500,p=0.5`: [event=<glob>,]
    /// [hub=<name>,][p=<0..1>,] and one of delay=<dur>, status=<code>, timeout, drop, twice,
    /// disconnect-transport. Probabilities draw from --seed when given.
    #[allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)] // clap help text, not Markdown
    #[arg(long = "fault", value_name = "RULE", value_parser = parse_fault)]
    pub faults: Vec<crate::fault::FaultRule>,
    /// Bytes of recent traffic the inspector (`/_emu/`) keeps for its timeline and for
    /// "download as session file"; the oldest entries leave first. 0 keeps nothing.
    #[arg(long, value_name = "BYTES", default_value_t = crate::traffic::ring::RING_BYTES)]
    pub inspector_buffer: usize,
}

fn parse_fault(text: &str) -> Result<crate::fault::FaultRule, String> {
    text.parse()
}

impl ServeArgs {
    /// The configuration from flags, environment and `--config` (read now).
    pub fn to_config(&self) -> Result<ServeConfig, CliError> {
        let file = match &self.config {
            Some(path) => Some(file::load(path).map_err(|e| {
                CliError::usage(format!("invalid configuration {}: {e}", path.display()))
                    .hint("fix the file, or write a fresh commented one with `sio-emu init`")
            })?),
            None => None,
        };
        self.resolve(file.unwrap_or_default())
    }

    /// Merges flags (and their environment variables) over the file over the defaults.
    pub fn resolve(&self, mut file: FileConfig) -> Result<ServeConfig, CliError> {
        let defaults = ServeConfig::default();
        self.check_hub_names()?;
        let webhook = self.webhook_url(file.webhook.take())?;
        let engine = self.engine_config(&file, &defaults.engine)?;
        let access_keys = self.access_keys(file.access_key.take(), file.secondary_key.take())?;
        let anonymous = self.anonymous || file.anonymous.unwrap_or(false);
        let hubs = self.merged_hubs(std::mem::take(&mut file.hubs), anonymous, &webhook);
        Ok(ServeConfig {
            host: self.host.clone().or(file.host).unwrap_or(defaults.host),
            port: self.port.or(file.port).unwrap_or(DEFAULT_PORT),
            access_keys,
            hubs,
            default_hub: HubConfig::new("*", anonymous, &webhook),
            strict_hubs: self.strict_hubs || file.strict_hubs.unwrap_or(false),
            webhook_timeout: self
                .webhook_timeout
                .or(file.webhook_timeout)
                .unwrap_or(defaults.webhook_timeout),
            webhook_retry_delays: self
                .webhook_retry
                .clone()
                .or(file.webhook_retry)
                .unwrap_or(defaults.webhook_retry_delays),
            preflight: !self.no_preflight && file.preflight.unwrap_or(true),
            forward_auth: self.forward_auth,
            rest_anonymous: self.rest_anonymous || file.rest_anonymous.unwrap_or(false),
            engine,
            shutdown_grace: self.shutdown_grace,
            seed: self.seed,
            lint_slow: self.lint_slow,
            faults: file.faults.iter().chain(&self.faults).cloned().collect(),
        })
    }

    /// `--hub` names follow the service's rules.
    fn check_hub_names(&self) -> Result<(), CliError> {
        match self.hubs.iter().find(|hub| !valid_hub_name(hub)) {
            Some(hub) => Err(CliError::usage(format!(
                "invalid hub name `{hub}`: it must start with a letter and contain only letters, digits and _`,.[] (at most 128)"
            ))),
            None => Ok(()),
        }
    }

    /// The default handler: `--webhook`, the file's, or the Functions default; http:// or builtin.
    fn webhook_url(&self, file: Option<String>) -> Result<String, CliError> {
        let webhook = self
            .webhook
            .clone()
            .or(file)
            .unwrap_or_else(|| DEFAULT_WEBHOOK.into());
        if !webhook.starts_with("http://") && !webhook.starts_with("builtin:") {
            return Err(CliError::usage(format!(
                "invalid --webhook `{webhook}`: only http:// URLs are supported"
            ))
            .hint("point it at your local handler, e.g. http://localhost:7071/runtime/webhooks/socketio"));
        }
        Ok(webhook)
    }

    /// Engine.IO timings and the payload limit (at least one byte).
    fn engine_config(
        &self,
        file: &FileConfig,
        defaults: &EngineConfig,
    ) -> Result<EngineConfig, CliError> {
        let max_payload = self
            .max_payload
            .or(file.max_payload)
            .unwrap_or(defaults.max_payload);
        if max_payload == 0 {
            return Err(CliError::usage("--max-payload must be at least 1 byte"));
        }
        Ok(EngineConfig {
            ping_interval: self
                .ping_interval
                .or(file.ping_interval)
                .unwrap_or(defaults.ping_interval),
            ping_timeout: self
                .ping_timeout
                .or(file.ping_timeout)
                .unwrap_or(defaults.ping_timeout),
            connect_timeout: self
                .connect_timeout
                .or(file.connect_timeout)
                .unwrap_or(defaults.connect_timeout),
            upgrade_timeout: self
                .upgrade_timeout
                .or(file.upgrade_timeout)
                .unwrap_or(defaults.upgrade_timeout),
            max_payload,
            ..EngineConfig::default()
        })
    }

    /// The primary key (never empty) and, when set and not empty, the secondary.
    fn access_keys(
        &self,
        file_primary: Option<String>,
        file_secondary: Option<String>,
    ) -> Result<Vec<String>, CliError> {
        let primary = self
            .access_key
            .clone()
            .or(file_primary)
            .unwrap_or_else(|| DEV_ACCESS_KEY.into());
        if primary.is_empty() {
            return Err(CliError::usage("the access key must not be empty"));
        }
        let mut access_keys = vec![primary];
        access_keys.extend(
            self.secondary_key
                .clone()
                .or(file_secondary)
                .filter(|k| !k.is_empty()),
        );
        Ok(access_keys)
    }

    /// The file's hubs (`--anonymous` applied, the default handler where they name none), then
    /// the `--hub` names the file does not declare.
    fn merged_hubs(
        &self,
        mut hubs: Vec<HubConfig>,
        anonymous: bool,
        webhook: &str,
    ) -> Vec<HubConfig> {
        for hub in &mut hubs {
            hub.anonymous |= self.anonymous;
            if hub.handlers.is_empty() {
                hub.handlers = HubConfig::new(&hub.name, false, webhook).handlers;
            }
        }
        for name in &self.hubs {
            if !hubs.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
                hubs.push(HubConfig::new(name, anonymous, webhook));
            }
        }
        hubs
    }
}

/// `sio-emu serve`: the service's flags (shared with `exec`) and the one that only makes sense
/// for `serve`, whose stdin is its own.
#[derive(Args, Debug, Clone)]
pub struct ServeCommand {
    #[command(flatten)]
    pub args: ServeArgs,
    /// Shut down (as on SIGTERM) when stdin reaches end of file. A program that starts `serve`
    /// with stdin on a pipe takes the service with it when it exits, however it exits (the npm
    /// and Python packages' `start()` do this)
    #[arg(long)]
    pub stop_on_stdin_close: bool,
}

/// Runs `serve` to completion.
pub fn run(command: ServeCommand) -> Result<u8, CliError> {
    let ServeCommand {
        args,
        stop_on_stdin_close,
    } = command;
    args.color.apply();
    let config = args.to_config()?;
    let traffic = args.traffic()?;
    runtime()?.block_on(async move {
        let signals = StopSignals::listen();
        let running = Running::start(config, traffic).await?;
        watch_config(running.service.clone(), running.builtins.clone(), args);
        tokio::select! {
            _ = signals.recv() => {}
            _ = stdin_closed(), if stop_on_stdin_close => {}
        }
        running.shutdown().await;
        Ok(0)
    })
}

/// The runtime every long-running command uses: one thread. A socket's event crosses a frame
/// read, its lane, the webhook connection and back; on one thread none of those hand-offs wakes
/// another thread, which costs more CPU per event than the work itself. The live log and the
/// recording write from threads of their own, so output still never stalls serving.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the async runtime: {e}")))
}

impl ServeArgs {
    /// The live-log sink on stdout, with the recording when `--record` is given.
    pub fn traffic(&self) -> Result<Traffic, CliError> {
        let format = match self.format {
            LogFormat::Pretty => Format::Pretty,
            LogFormat::Json => Format::Json,
        };
        let recorder = match &self.record {
            Some(path) => {
                let recorder = Recorder::open(path).map_err(|e| {
                    CliError::usage(format!("cannot open the recording {}: {e}", path.display()))
                })?;
                // `--seed`: times in the recording come from a logical clock.
                Some(if self.seed.is_some() {
                    recorder.logical()
                } else {
                    recorder
                })
            }
            None => None,
        };
        let ring = (self.inspector_buffer > 0).then(|| Ring::new(self.inspector_buffer));
        Traffic::live(
            format,
            self.quiet,
            Box::new(std::io::stdout()),
            recorder,
            ring,
        )
        .map_err(|e| CliError::usage(format!("cannot start the live log: {e}")))
    }
}

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
fn undelivered_summary(lost: &Undelivered) -> Option<TrafficEvent> {
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

/// Resolves when stdin reaches end of file or can no longer be read. The read blocks a thread
/// of its own, not the runtime's blocking pool, so a shutdown by signal never waits for it.
async fn stdin_closed() {
    let (closed, wait) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = wait.await;
}

/// Ctrl-C and SIGTERM, listened for from the moment this is created. `serve` creates it before
/// it announces itself, so a SIGTERM sent right after the banner or `ready` line is a graceful
/// stop, never the default action (death without the `disconnected` webhooks).
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Starts listening (inside the runtime).
    pub fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Resolves on the first Ctrl-C or SIGTERM.
    pub async fn recv(self) {
        #[cfg(unix)]
        {
            async fn next(listener: Option<tokio::signal::unix::Signal>) {
                match listener {
                    Some(mut listener) => {
                        listener.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(self.interrupt) => {}
                _ = next(self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Shows a key as its first and last four characters.
fn mask(key: &str) -> String {
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
fn describe_config(config: &ServeConfig) -> Vec<(&'static str, String)> {
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
fn config_json(config: &ServeConfig) -> serde_json::Value {
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

/// Prints the effective settings (at start and after a reload).
fn print_config(traffic: &Traffic, config: &ServeConfig, heading: &str) {
    if traffic.format() == Format::Json {
        let mut line = serde_json::json!({ "type": "config", "message": heading });
        line["config"] = config_json(config);
        traffic.write_line(&line.to_string());
        return;
    }
    let mut lines = vec![format!("  {}", heading.bold())];
    for (label, text) in describe_config(config) {
        lines.push(format!("  {}{}", format!("{label:<12}").bold(), text));
    }
    traffic.write_line(&lines.join("\n"));
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

/// Re-reads `--config` when it changes; a valid change applies to new events, an invalid one
/// is refused with the line it points at and the running settings stay.
pub fn watch_config(service: Arc<Service>, builtins: Arc<Builtins>, args: ServeArgs) {
    let Some(path) = args.config.clone() else {
        return;
    };
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut last = stamp(&path);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = service.shutdown().cancelled() => return,
                _ = tokio::time::sleep(RELOAD_POLL) => {}
            }
            let now = stamp(&path);
            if now == last || now.is_none() {
                continue;
            }
            last = now;
            let traffic = service.traffic();
            let resolved = file::load(&path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|f| args.resolve(f).map_err(|e| e.message));
            let resolved = match resolved {
                Ok(mut config) => builtins
                    .apply(&mut config)
                    .await
                    .map(|()| config)
                    .map_err(|e| e.message),
                Err(message) => Err(message),
            };
            match resolved {
                Ok(config) => {
                    let old = service.config();
                    let mut restart = Vec::new();
                    if old.host != config.host || old.port != config.port {
                        restart.push("listen address");
                    }
                    if old.engine.ping_interval != config.engine.ping_interval
                        || old.engine.ping_timeout != config.engine.ping_timeout
                        || old.engine.connect_timeout != config.engine.connect_timeout
                        || old.engine.upgrade_timeout != config.engine.upgrade_timeout
                        || old.engine.max_payload != config.engine.max_payload
                    {
                        restart.push("engine settings");
                    }
                    let mut config = config;
                    // What needs a restart keeps its running value.
                    config.host.clone_from(&old.host);
                    config.port = old.port;
                    config.engine = old.engine.clone();
                    print_config(
                        traffic,
                        &config,
                        &format!("configuration reloaded from {}", path.display()),
                    );
                    if !restart.is_empty() {
                        traffic.emit(TrafficEvent::Warning {
                            message: format!(
                                "{} changed in {}; they apply after a restart",
                                restart.join(" and "),
                                path.display()
                            ),
                            hint: None,
                        });
                    }
                    service.reload(config);
                }
                Err(message) => traffic.emit(TrafficEvent::Error {
                    message: format!("the configuration change was refused: {message}"),
                    hint: Some(
                        "the running settings stay in force; fix the file and save it again".into(),
                    ),
                }),
            }
        }
    });
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
    let traffic = service.traffic();
    if traffic.format() == Format::Json {
        let ready = serde_json::json!({
            "type": "ready",
            "endpoint": endpoint,
            "connectionString": connection_string,
            "port": port,
            "hubs": config.hub_names(),
            "webhook": config.default_hub.handlers.first().map(|h| h.url.clone()),
            "anonymous": config.default_hub.anonymous,
            "clientPath": format!("{CLIENT_PREFIX}{hub}"),
            "inspector": format!("{endpoint}{}", crate::admin::PREFIX),
            "token": token,
            "version": env!("CARGO_PKG_VERSION"),
        });
        traffic.write_line(&ready.to_string());
        print_config(traffic, &config, "effective configuration");
    } else {
        let lines = banner(
            &config,
            endpoint,
            &connection_string,
            hub,
            &token,
            listeners,
        );
        traffic.write_line(&lines.join("\n"));
    }
}

/// The pretty startup banner's lines.
fn banner(
    config: &ServeConfig,
    endpoint: &str,
    connection_string: &str,
    hub: &str,
    token: &str,
    listeners: &[tokio::net::TcpListener],
) -> Vec<String> {
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.ip().to_string())
        .collect();
    let label = |s: &str| format!("  {:<12}", s).bold().to_string();
    let auth_line = if config.default_hub.anonymous {
        "anonymous clients allowed; tokens, when given, are verified"
    } else {
        "clients need ?access_token= (mint one with `sio-emu token`), or start with --anonymous"
    };
    let mut lines = vec![
        format!(
            "{} {} — Azure Web PubSub for Socket.IO (Serverless) emulator",
            "sio-emu".bold(),
            env!("CARGO_PKG_VERSION")
        ),
        format!(
            "{}{}  ({})",
            label("listening"),
            endpoint.green(),
            addrs.join(", ")
        ),
        format!("{}{}", label("connection"), connection_string),
        format!(
            "{}{}{}",
            label("inspector"),
            endpoint.green(),
            crate::admin::PREFIX.green()
        ),
    ];
    for (name, text) in describe_config(config) {
        lines.push(format!("{}{}", label(name), text));
    }
    lines.extend([
        format!("{}{}", label("auth"), auth_line),
        label("client"),
        format!(
            "    const socket = io(\"{endpoint}/\", {{ path: \"{CLIENT_PREFIX}{hub}\", query: {{ access_token: \"{token}\" }} }});"
        ),
        format!(
            "  {}",
            "(the token is valid for 1 hour; Ctrl-C stops and sends every disconnected event)"
                .dimmed()
        ),
    ]);
    lines
}
