//! `sio-emu serve`: flags → [`ServeConfig`], bind, print the banner (or the NDJSON `ready`
//! line), run until Ctrl-C / SIGTERM, then shut down the documented way: every socket gets its
//! `disconnected`, pending deliveries get a grace period, exit 0.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use colored::Colorize;
use tokio_util::sync::CancellationToken;

use super::{CliError, ColorChoice};
use crate::auth::{self, DEV_ACCESS_KEY, TokenClaims, connection_string};
use crate::config::{DEFAULT_PORT, DEFAULT_WEBHOOK, EngineConfig, ServeConfig, valid_hub_name};
use crate::duration;
use crate::server::{self, CLIENT_PREFIX, Server};
use crate::service::Service;
use crate::traffic::record::{self, RecordLine, Recorder};
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

/// Flags of `sio-emu serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Listen address; `localhost` binds 127.0.0.1 and ::1.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Listen port; 0 picks a free one.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Key that signs and verifies every token and webhook signature [default: the development key].
    #[arg(long, env = "SIO_EMU_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// A secondary access key: tokens signed with it are accepted and `ce-signature` carries both.
    #[arg(long, env = "SIO_EMU_SECONDARY_KEY", hide_env_values = true)]
    pub secondary_key: Option<String>,
    /// Declare a hub (repeatable); undeclared hubs are accepted unless --strict-hubs.
    #[arg(long = "hub", value_name = "NAME")]
    pub hubs: Vec<String>,
    /// Refuse clients of hubs that were not declared with --hub.
    #[arg(long)]
    pub strict_hubs: bool,
    /// Event handler URL template; `{hub}` and `{event}` are substituted.
    #[arg(long, value_name = "URL-TEMPLATE", default_value = DEFAULT_WEBHOOK)]
    pub webhook: String,
    /// Accept clients without an access token.
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
    pub record: Option<std::path::PathBuf>,
    /// Live log rendering: coloured lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    pub format: LogFormat,
    /// Only errors and the startup banner.
    #[arg(long)]
    pub quiet: bool,
    /// Colour: auto (terminal, no NO_COLOR, TERM not dumb), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Engine.IO ping interval (e.g. 25s; bare numbers are ms).
    #[arg(long, value_parser = parse_duration, default_value = "25s")]
    pub ping_interval: Duration,
    /// Engine.IO ping timeout.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub ping_timeout: Duration,
    /// Time a connection has to send its first Socket.IO CONNECT.
    #[arg(long, value_parser = parse_duration, default_value = "45s")]
    pub connect_timeout: Duration,
    /// Time a polling → WebSocket upgrade may take.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub upgrade_timeout: Duration,
    /// Engine.IO maxPayload in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_payload: usize,
    /// Per webhook request timeout.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub webhook_timeout: Duration,
    /// Delays before retrying connected/disconnected deliveries, comma separated.
    #[arg(long, value_parser = parse_duration, value_delimiter = ',', default_value = "1s,3s,5s")]
    pub webhook_retry: Vec<Duration>,
    /// Skip the abuse-protection OPTIONS preflight.
    #[arg(long)]
    pub no_preflight: bool,
    /// How long shutdown waits for pending disconnected deliveries.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub shutdown_grace: Duration,
}

impl ServeArgs {
    /// The validated configuration.
    pub fn to_config(&self) -> Result<ServeConfig, CliError> {
        for hub in &self.hubs {
            if !valid_hub_name(hub) {
                return Err(CliError::usage(format!(
                    "invalid hub name `{hub}`: it must start with a letter and contain only letters, digits and _`,.[] (at most 128)"
                )));
            }
        }
        if !self.webhook.starts_with("http://") {
            return Err(CliError::usage(format!(
                "invalid --webhook `{}`: only http:// URLs are supported",
                self.webhook
            ))
            .hint("point it at your local handler, e.g. http://localhost:7071/runtime/webhooks/socketio"));
        }
        if self.max_payload == 0 {
            return Err(CliError::usage("--max-payload must be at least 1 byte"));
        }
        let mut access_keys = vec![
            self.access_key
                .clone()
                .unwrap_or_else(|| DEV_ACCESS_KEY.into()),
        ];
        if access_keys[0].is_empty() {
            return Err(CliError::usage("--access-key must not be empty"));
        }
        access_keys.extend(self.secondary_key.clone().filter(|k| !k.is_empty()));
        Ok(ServeConfig {
            host: self.host.clone(),
            port: self.port,
            access_keys,
            hubs: self.hubs.clone(),
            strict_hubs: self.strict_hubs,
            anonymous: self.anonymous,
            webhook: self.webhook.clone(),
            webhook_timeout: self.webhook_timeout,
            webhook_retry_delays: self.webhook_retry.clone(),
            preflight: !self.no_preflight,
            forward_auth: self.forward_auth,
            rest_anonymous: self.rest_anonymous,
            engine: EngineConfig {
                ping_interval: self.ping_interval,
                ping_timeout: self.ping_timeout,
                connect_timeout: self.connect_timeout,
                upgrade_timeout: self.upgrade_timeout,
                max_payload: self.max_payload,
                ..EngineConfig::default()
            },
            shutdown_grace: self.shutdown_grace,
        })
    }
}

/// Runs `serve` to completion.
pub fn run(args: ServeArgs) -> Result<u8, CliError> {
    args.color.apply();
    let config = args.to_config()?;
    let traffic = args.traffic()?;
    runtime()?.block_on(serve(config, traffic))
}

/// The multi-threaded runtime every long-running command uses.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
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
            Some(path) => Some(Recorder::open(path).map_err(|e| {
                CliError::usage(format!("cannot open the recording {}: {e}", path.display()))
            })?),
            None => None,
        };
        Ok(Traffic::with_recorder(
            format,
            self.quiet,
            Box::new(std::io::stdout()),
            recorder,
        ))
    }
}

/// Binds, announces readiness, serves until a signal, shuts down.
pub async fn serve(config: ServeConfig, traffic: Traffic) -> Result<u8, CliError> {
    let running = Running::start(config, traffic).await?;
    wait_for_signal().await;
    running.shutdown().await;
    Ok(0)
}

/// A started service: listening, announced, serving in the background.
pub struct Running {
    pub service: Arc<Service>,
    pub server: Arc<Server>,
    pub port: u16,
    serving: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds the listeners, prints the banner (or the `ready` line) and starts serving.
    pub async fn start(config: ServeConfig, traffic: Traffic) -> Result<Running, CliError> {
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
        traffic.record(|_| RecordLine::Header {
            format: record::FORMAT.into(),
            version: record::VERSION,
            sio_emu_version: env!("CARGO_PKG_VERSION").into(),
            hubs: config.hubs.clone(),
            endpoint: endpoint.clone(),
            started_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        });
        let shutdown = CancellationToken::new();
        let service = Arc::new(Service::new(Arc::new(config), endpoint, traffic, shutdown));
        announce(&service, port, &listeners);
        let server = Server::new(service.clone());
        let serving = tokio::spawn(server.clone().serve(listeners));
        Ok(Running {
            service,
            server,
            port,
            serving,
        })
    }

    /// Graceful shutdown: every socket gets its `disconnected`, pending deliveries get the
    /// grace period, the recording is complete when this returns.
    pub async fn shutdown(self) {
        let service = &self.service;
        let grace = service.config.shutdown_grace;
        service.traffic.emit(TrafficEvent::ShuttingDown {
            connections: self.server.engine.session_count(),
        });
        service.shutdown.cancel();
        service.tracker.close();
        if tokio::time::timeout(grace, service.tracker.wait())
            .await
            .is_err()
        {
            service.traffic.emit(TrafficEvent::Error {
                message: format!(
                    "{} webhook deliveries were still pending after {}; they were abandoned",
                    service.tracker.len(),
                    duration::format(grace)
                ),
                hint: Some("raise --shutdown-grace, or check why the webhook is slow".into()),
            });
        }
        self.serving.abort();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The startup banner, or the `ready` line in JSON mode.
fn announce(service: &Service, port: u16, listeners: &[tokio::net::TcpListener]) {
    let config = &service.config;
    let endpoint = &service.endpoint;
    let connection_string = connection_string::format(endpoint, &config.access_keys[0]);
    let hub = config.hubs.first().map(String::as_str).unwrap_or("hub");
    let token = auth::mint(
        &config.access_keys[0],
        &TokenClaims {
            aud: auth::client_audience(endpoint, hub),
            lifetime_secs: 3600,
            now: auth::now_unix(),
            ..TokenClaims::default()
        },
    );
    let traffic = &service.traffic;
    if traffic.format() == Format::Json {
        let ready = serde_json::json!({
            "type": "ready",
            "endpoint": endpoint,
            "connectionString": connection_string,
            "port": port,
            "hubs": config.hubs,
            "webhook": config.webhook,
            "anonymous": config.anonymous,
            "clientPath": format!("{CLIENT_PREFIX}{hub}"),
            "token": token,
            "version": env!("CARGO_PKG_VERSION"),
        });
        traffic.write_line(&ready.to_string());
        return;
    }
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.ip().to_string())
        .collect();
    let label = |s: &str| format!("  {:<12}", s).bold().to_string();
    let hubs = if config.hubs.is_empty() {
        "any hub name (declare with --hub)".to_string()
    } else if config.strict_hubs {
        format!("{} (strict)", config.hubs.join(", "))
    } else {
        config.hubs.join(", ")
    };
    let auth_line = if config.anonymous {
        "anonymous clients allowed; tokens, when given, are verified"
    } else {
        "clients need ?access_token= (mint one with `sio-emu token`), or start with --anonymous"
    };
    let lines = [
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
        format!("{}{}", label("hubs"), hubs),
        format!(
            "{}{}  (timeout {}, preflight {})",
            label("webhook"),
            config.webhook,
            duration::format(config.webhook_timeout),
            if config.preflight { "on" } else { "off" }
        ),
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
    ];
    traffic.write_line(&lines.join("\n"));
}
