//! `sio-emu client`: be a Socket.IO client of a hub (or of any Socket.IO server) from the
//! command line: emit one event and print its ack, listen and print what arrives, run a
//! script of commands from stdin, or type them at a terminal ([`script`] is the language).
//!
//! The client itself is [`crate::client`]; this module turns flags into its options (minting
//! the token with [`crate::auth::mint`], as `sio-emu token` does); `session` runs the modes.
//! Received events are one JSON line each, `{"event":…,"args":[…]}`; acks are one JSON array
//! line. Everything a peer sent is escaped before it reaches a terminal (`session::json_line`;
//! stderr through [`crate::traffic::escape`]). Exit codes: 0 done, 1 refused, timed out or
//! disconnected by the server (the reason on stderr), 2 usage or a server that cannot be
//! reached.

pub mod script;
mod session;

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::Value;
use tokio::sync::mpsc;

use super::CliError;
use crate::auth::{self, TokenClaims};
use crate::client::{self, Client, ConnectError, Options, Received, Target, TransportChoice};
use session::{Session, stdin_lines};

/// Lifetime of a minted token.
const TOKEN_LIFETIME_SECS: u64 = 3600;

/// `--help`'s text after the flags: the modes, the command language, tokens and exit codes.
fn after_help() -> String {
    format!(
        "\
Modes: with --emit, send one event (and with --ack print its ack's arguments as one JSON array \
line); with --listen, print one JSON line {{\"event\":…,\"args\":[…]}} per event received, until \
Ctrl-C or --count; otherwise run commands from stdin, one a line (a script when stdin is a file \
or a pipe, typed when it is a terminal). Received events print as they come.

Commands:
{}

In a script, `emit` waits for its ack (up to --timeout) before the next line; a missing ack, a \
failed `wait` or a refused connect ends the run with exit 1 and names the line. Typed at a \
terminal, `emit` prints the ack when it comes and errors do not end the session.

Token: minted for --hub with --access-key (default: $SIO_EMU_ACCESS_KEY, else the development \
key `serve` uses), --user and --group; or given with --token; --no-token for anonymous hubs and \
plain Socket.IO servers. It is sent as the `access_token` query parameter.

Exit codes: 0 done, 1 refused, timed out or disconnected by the server (the reason on stderr), \
2 usage or a server that cannot be reached.

Examples:
  sio-emu client --hub chat --namespace /chat --user alice --emit say '\"hi\"' --ack
  sio-emu client --hub chat --listen --count 1
  sio-emu client --hub chat < script.txt
  sio-emu client --url http://localhost:3000 --path /socket.io --no-token --listen",
        script::COMMANDS
    )
}

/// `--transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// WebSocket only
    Websocket,
    /// Long-polling only
    Polling,
}

/// Flags of `sio-emu client`.
#[derive(Args, Debug)]
#[command(after_help = after_help())]
pub struct ClientArgs {
    /// Service URL (http://host:port)
    #[arg(
        long,
        value_name = "URL",
        env = "SIO_EMU_ENDPOINT",
        default_value = super::token::DEFAULT_ENDPOINT
    )]
    pub url: String,

    /// Hub to connect to (names the client path and the token's audience)
    #[arg(long, value_name = "NAME", env = "SIO_EMU_HUB", default_value = "hub")]
    pub hub: String,

    /// Namespace to join
    #[arg(long, value_name = "NSP", default_value = "/")]
    pub namespace: String,

    /// Engine.IO path instead of /clients/socketio/hubs/<hub> (e.g. /socket.io for a plain
    /// Socket.IO server)
    #[allow(rustdoc::invalid_html_tags)] // clap help text, not Markdown
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Access key that signs the minted token [default: the development key]
    #[arg(long, value_name = "KEY")]
    #[arg(env = "SIO_EMU_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,

    /// User id of the minted token (`sub`)
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,

    /// A group the minted token joins on connect (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,

    /// Use this token instead of minting one
    #[arg(long, value_name = "JWT", conflicts_with_all = ["user", "groups", "no_token"])]
    pub token: Option<String>,

    /// Send no token (anonymous hubs, plain Socket.IO servers)
    #[arg(long, conflicts_with_all = ["user", "groups"])]
    pub no_token: bool,

    /// The CONNECT payload (`auth`), a JSON object
    #[arg(long, value_name = "JSON")]
    pub auth: Option<String>,

    /// Extra handshake query parameter (repeatable)
    #[arg(long = "query", value_name = "K=V")]
    pub query: Vec<String>,

    /// Transport [default: long-polling, then an upgrade to WebSocket, like socket.io-client]
    #[arg(long, value_name = "T", value_enum)]
    pub transport: Option<TransportArg>,

    /// Send one event with these JSON arguments
    #[arg(
        long,
        value_name = "EVENT",
        num_args = 1..,
        allow_negative_numbers = true,
        value_names = ["EVENT", "ARG_JSON"]
    )]
    pub emit: Option<Vec<String>>,

    /// With --emit: wait for the ack and print its arguments as one JSON array line
    #[arg(long, requires = "emit")]
    pub ack: bool,

    /// Bound on connecting, on an ack and on `wait`
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub timeout: String,

    /// Print one JSON line per event received, until Ctrl-C (after --emit, if given)
    #[arg(long)]
    pub listen: bool,

    /// With --listen: stop after this many events
    #[arg(long, value_name = "N", requires = "listen")]
    pub count: Option<u64>,
}

/// What the flags ask for.
struct Plan {
    options: Options,
    timeout: Duration,
    emit: Option<(String, Vec<Value>)>,
}

impl ClientArgs {
    fn plan(&self) -> Result<Plan, CliError> {
        let timeout = crate::duration::parse(&self.timeout)
            .map_err(|e| CliError::usage(format!("--timeout: {e}")))?;
        let base = crate::auth::connection_string::normalize_endpoint(&self.url)
            .map_err(|e| CliError::usage(format!("--url: {e}")))?;
        if !base.starts_with("http://") {
            return Err(
                CliError::usage(format!("--url `{base}`: only http:// is supported"))
                    .hint("sio-emu client speaks plain HTTP and WebSocket, like `serve`"),
            );
        }
        if !crate::config::valid_hub_name(&self.hub) {
            return Err(CliError::usage(format!("--hub `{}` is not a valid hub name", self.hub))
                .hint("a hub name starts with a letter and has at most 128 letters, digits or _ ` , . [ ]"));
        }
        if !self.namespace.starts_with('/') {
            return Err(CliError::usage(format!(
                "--namespace `{}` must start with /",
                self.namespace
            )));
        }
        let auth = match &self.auth {
            None => None,
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => Some(v),
                _ => {
                    return Err(CliError::usage("--auth must be a JSON object")
                        .hint(r#"e.g. --auth '{"name":"alice"}'"#));
                }
            },
        };
        let mut query = Vec::new();
        for pair in &self.query {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CliError::usage(format!("--query `{pair}` is not k=v")));
            };
            query.push((k.to_owned(), v.to_owned()));
        }
        if let Some(token) = self.token()? {
            query.push(("access_token".into(), token));
        }
        let emit = match &self.emit {
            None => None,
            Some(words) => {
                let (event, args) = words.split_first().expect("clap requires one value");
                let args = args
                    .iter()
                    .map(|a| {
                        serde_json::from_str(a).map_err(|e| {
                            CliError::usage(format!("--emit argument `{a}` is not JSON: {e}"))
                                .hint(r#"quote strings for the shell and JSON: --emit say '"hi"'"#)
                        })
                    })
                    .collect::<Result<Vec<Value>, _>>()?;
                Some((event.clone(), args))
            }
        };
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| format!("/clients/socketio/hubs/{}", self.hub));
        Ok(Plan {
            options: Options {
                target: Target { base, path, query },
                transport: match self.transport {
                    None => TransportChoice::Upgrade,
                    Some(TransportArg::Websocket) => TransportChoice::WebSocket,
                    Some(TransportArg::Polling) => TransportChoice::Polling,
                },
                namespace: self.namespace.clone(),
                auth,
            },
            timeout,
            emit,
        })
    }

    /// The token to send, if any: `--token`, none, or one minted for the hub.
    fn token(&self) -> Result<Option<String>, CliError> {
        if self.no_token {
            return Ok(None);
        }
        if let Some(token) = &self.token {
            return Ok(Some(token.trim().to_owned()));
        }
        if self.user.as_deref() == Some("") || self.groups.iter().any(String::is_empty) {
            return Err(CliError::usage(
                "--user and --group values must not be empty",
            ));
        }
        let key = match self.access_key.as_deref() {
            Some(k) if !k.is_empty() => k,
            _ => auth::DEV_ACCESS_KEY,
        };
        Ok(Some(auth::mint(
            key,
            &TokenClaims {
                aud: auth::client_audience(&self.url, &self.hub),
                sub: self.user.clone(),
                groups: self.groups.clone(),
                lifetime_secs: TOKEN_LIFETIME_SECS,
                now: auth::now_unix(),
                ..TokenClaims::default()
            },
        )))
    }
}

/// Runs `sio-emu client`.
pub fn run(args: ClientArgs) -> Result<u8, CliError> {
    let plan = args.plan()?;
    let interactive = args.emit.is_none() && !args.listen && std::io::stdin().is_terminal();
    super::serve::runtime()?.block_on(async move {
        let (client, received) = connect(&plan).await?;
        let print_events = plan.emit.is_none() || args.listen;
        let mut session = Session::new(client, received, plan.timeout, print_events);
        if let Some((event, emit_args)) = &plan.emit {
            session
                .emit_once(event, emit_args.clone(), args.ack)
                .await?;
            if !args.listen {
                session.close().await;
                return Ok(0);
            }
        }
        if args.listen {
            return session.listen(args.count).await;
        }
        let lines = stdin_lines();
        if interactive {
            session.interactive(lines).await
        } else {
            session.script(lines).await
        }
    })
}

/// Connects within the timeout, turning each failure into its message.
async fn connect(plan: &Plan) -> Result<(Client, mpsc::Receiver<Received>), CliError> {
    let url = format!("{}{}", plan.options.target.base, plan.options.target.path);
    let failed = |message: String| CliError {
        message,
        hint: None,
        code: 1,
    };
    match tokio::time::timeout(plan.timeout, client::connect(plan.options.clone())).await {
        Ok(Ok(pair)) => Ok(pair),
        Err(_) => Err(failed(format!(
            "connecting to {url}: no answer within {}",
            humantime::format_duration(plan.timeout)
        ))),
        Ok(Err(e)) => Err(connect_error(&url, &plan.options.namespace, e)),
    }
}

/// A failed connect as its message and hint: exit 1 when the server answered and refused, 2
/// when it could not be reached (an infrastructure failure, as the command-line contract says).
fn connect_error(url: &str, namespace: &str, e: ConnectError) -> CliError {
    let code = match &e {
        ConnectError::Engine(client::EngineError::Io(_)) => 2,
        _ => 1,
    };
    let (message, hint) = match &e {
        ConnectError::Engine(client::EngineError::Refused { status: 401, .. }) => (
            format!("connecting to {url}: {e}"),
            Some(
                "the token was refused: pass --access-key with the key `serve` uses, --token, or --no-token for an anonymous hub",
            ),
        ),
        ConnectError::Engine(client::EngineError::Io(_)) => (
            format!("cannot reach {url}: {e}"),
            Some("is the server running? --url (or $SIO_EMU_ENDPOINT) names it"),
        ),
        ConnectError::Refused(_) => (
            format!("namespace {namespace}: {e}"),
            Some("the handler refused the connect (its answer to the `connect` event)"),
        ),
        _ => (format!("connecting to {url}: {e}"), None),
    };
    CliError {
        message,
        hint: hint.map(str::to_owned),
        code,
    }
}
