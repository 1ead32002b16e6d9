//! `sio-emu serve`: flags → [`ServeConfig`] (resolved by `config::resolve`), start the service
//! ([`Running::start`] binds and prints the banner or the NDJSON `ready` line), run until
//! Ctrl-C / SIGTERM (or stdin's end with `--stop-on-stdin-close`), then shut down the documented
//! way: every socket gets its `disconnected`, pending deliveries get a grace period, exit 0.
//! While it runs, `--config` is re-read when it changes (`config::reload` decides what applies).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::running::{Running, print_config};
use super::{CliError, ColorChoice};
use crate::builtin::Builtins;
use crate::config::ServeConfig;
use crate::config::file;
use crate::config::reload::{Changed, what_changed};
use crate::config::resolve::{self, Overrides, ResolveError};
use crate::duration;
use crate::service::Service;
use crate::traffic::record::Recorder;
use crate::traffic::ring::Ring;
use crate::traffic::{Format, Traffic, TrafficEvent};

/// `--format pretty|json` for the live log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, duration::DurationError> {
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

fn parse_fault(
    text: &str,
) -> Result<crate::fault::FaultRule, crate::config::fault::FaultRuleError> {
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
        Ok(resolve::resolve(
            &self.overrides(),
            file.unwrap_or_default(),
        )?)
    }

    /// The settings flags (and their environment variables) give.
    fn overrides(&self) -> Overrides {
        Overrides {
            host: self.host.clone(),
            port: self.port,
            access_key: self.access_key.clone(),
            secondary_key: self.secondary_key.clone(),
            hubs: self.hubs.clone(),
            strict_hubs: self.strict_hubs,
            webhook: self.webhook.clone(),
            anonymous: self.anonymous,
            rest_anonymous: self.rest_anonymous,
            forward_auth: self.forward_auth,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            connect_timeout: self.connect_timeout,
            upgrade_timeout: self.upgrade_timeout,
            max_payload: self.max_payload,
            webhook_timeout: self.webhook_timeout,
            webhook_retry: self.webhook_retry.clone(),
            no_preflight: self.no_preflight,
            shutdown_grace: self.shutdown_grace,
            seed: self.seed,
            lint_slow: self.lint_slow,
            faults: self.faults.clone(),
        }
    }
}

/// Settings that cannot be used are a usage error (exit 2), their hint kept.
impl From<ResolveError> for CliError {
    fn from(e: ResolveError) -> Self {
        CliError {
            hint: e.hint,
            ..CliError::usage(e.message)
        }
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

/// Re-reads `--config` when it changes; a valid change applies to new events, an invalid one
/// is refused with the line it points at and the running settings stay.
pub fn watch_config(service: Arc<Service>, builtins: Arc<Builtins>, args: ServeArgs) {
    let Some(path) = args.config.clone() else {
        return;
    };
    let flags = args.overrides();
    let stamp = |p: &Path| {
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
            match reread(&path, &flags, &builtins).await {
                Ok(config) => apply(&service, &path, config),
                Err(message) => service.traffic().emit(TrafficEvent::Error {
                    message: format!("the configuration change was refused: {message}"),
                    hint: Some(
                        "the running settings stay in force; fix the file and save it again".into(),
                    ),
                }),
            }
        }
    });
}

/// The changed file resolved under the same flags, its `builtin:` handlers started.
async fn reread(
    path: &Path,
    flags: &Overrides,
    builtins: &Builtins,
) -> Result<ServeConfig, String> {
    let file = file::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config = resolve::resolve(flags, file).map_err(|e| e.message)?;
    builtins.apply(&mut config).await.map_err(|e| e.message)?;
    Ok(config)
}

/// Puts a valid change in force: what needs a restart keeps its running value and is named.
fn apply(service: &Service, path: &Path, config: ServeConfig) {
    let traffic = service.traffic();
    let Changed {
        config,
        needs_restart,
    } = what_changed(&service.config(), config);
    print_config(
        traffic,
        &config,
        &format!("configuration reloaded from {}", path.display()),
    );
    if !needs_restart.is_empty() {
        traffic.emit(TrafficEvent::Warning {
            message: format!(
                "{} changed in {}; they apply after a restart",
                needs_restart.join(" and "),
                path.display()
            ),
            hint: None,
        });
    }
    service.reload(config);
}
