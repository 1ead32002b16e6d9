//! `sio-emu token`: mint an access token signed with the access key (a client token for a hub, or
//! a REST token for one request URL), and `sio-emu token verify`, which checks a token the way
//! `serve` would and prints every check.
//!
//! This module only turns flags into [`crate::auth`] calls and renders the results; the token
//! logic (claims, checks, messages) lives in `auth`. Exit codes follow the CLI contract: 0 minted
//! or valid, 1 `verify` rejected the token (a token that is not even a JWT included), 2 bad flags.

use std::io::{IsTerminal, Read};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches, Subcommand, ValueEnum};
use colored::Colorize;
use serde_json::{Map, Value};

use super::{CliError, ColorChoice, emit};
use crate::auth::{
    self, Check, Endpoint, EndpointError, Expected, Outcome, Report, TokenClaims, connection_string,
};

/// The endpoint used when neither `--endpoint` nor a connection string names one.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:8080";

const AFTER_HELP: &str = "\
Key and endpoint: --access-key and --endpoint win over the matching part of --connection-string, \
and a flag given on the command line wins over an environment variable (SIO_EMU_ACCESS_KEY, \
WebPubSubConnectionString). With none of them, the development key and http://localhost:8080 are \
used, matching a default `sio-emu serve`.

Formats: `jwt` prints the bare token. `json` prints the negotiate result a Socket.IO client is \
configured with: {\"endpoint\":\"http://localhost:8080/\",\"path\":\"/clients/socketio/hubs/<hub>\",\
\"token\":\"<jwt>\"} (with --rest: {\"token\",\"url\"}). `url` prints the Engine.IO long-polling \
handshake URL <endpoint>/clients/socketio/hubs/<hub>/?EIO=4&transport=polling&access_token=<jwt>, \
which curl or a browser can open against a running `serve`.

Examples:
  sio-emu token --hub chat --user alice
  sio-emu token --hub chat --format json
  sio-emu token --rest '/api/hubs/chat/:send?api-version=2024-01-01'
  sio-emu token --issued-at 2024-01-01T00:00:00Z        # an expired token, to test rejection
  sio-emu token verify \"$TOKEN\" --hub chat";

/// Mint a token (the default) or `verify` one.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: Option<TokenCommand>,
    #[command(flatten)]
    pub mint: MintArgs,
}

/// `token` subcommands.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Check a token the way `serve` would: print its decoded header and claims and one line per
    /// check (alg, signature, exp, nbf, aud); exit 0 if valid, 1 if not.
    Verify(VerifyArgs),
}

/// Flags of `sio-emu token` (minting).
#[derive(Args, Debug)]
pub struct MintArgs {
    /// Hub the token is for: a letter, then up to 127 letters, digits or _ ` , . [ ]
    #[arg(long, value_name = "NAME", default_value = "hub")]
    pub hub: String,

    /// User id, written to the `sub` claim (the connection's userId)
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,

    /// Add a `role` claim value (repeatable; one role is a string, several an array)
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,

    /// Add a `webpubsub.group` claim value: a group the client joins on connect (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,

    /// Lifetime: `exp` = issue time + this (500ms, 30s, 5m, 1h; a bare number is milliseconds;
    /// rounded up to whole seconds)
    #[arg(long, value_name = "DUR", default_value = "1h")]
    pub expires_in: String,

    /// Issue time written to `iat` and `nbf` instead of now: seconds since 1970 or an RFC 3339
    /// time (2024-01-01T00:00:00Z). A past time makes an expired token, a future one a token that
    /// is not valid yet (`serve` allows 5 minutes of clock skew either way)
    #[arg(long, value_name = "TIME")]
    pub issued_at: Option<String>,

    /// Mint a REST token whose `aud` is this request URL instead of a client token; a path
    /// starting with `/` is appended to the endpoint
    #[arg(long, value_name = "URL", conflicts_with_all = ["hub", "roles", "groups"])]
    pub rest: Option<String>,

    /// Output: the bare JWT, the negotiate JSON, or the handshake URL (see below)
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = TokenFormat::Jwt)]
    pub format: TokenFormat,

    #[command(flatten)]
    pub key: KeyArgs,
}

/// Flags of `sio-emu token verify`.
#[derive(Args, Debug)]
#[command(after_help = "Key and endpoint are chosen as for `sio-emu token` (see its --help).")]
pub struct VerifyArgs {
    /// The token: the bare JWT (a leading `Bearer ` is ignored), or `-` to read it from stdin
    #[arg(value_name = "JWT")]
    pub token: String,

    /// Hub the token must be for (its `aud` must be <endpoint>/clients/socketio/hubs/<hub>)
    #[allow(rustdoc::invalid_html_tags)] // clap help text, not Markdown
    #[arg(long, value_name = "NAME", default_value = "hub")]
    pub hub: String,

    /// Check a REST token for this request URL instead of a client token (a path starting with
    /// `/` is appended to the endpoint)
    #[arg(long, value_name = "URL", conflicts_with = "hub")]
    pub rest: Option<String>,

    #[command(flatten)]
    pub key: KeyArgs,

    /// Colour the report: auto (only on a terminal, not with NO_COLOR or TERM=dumb), always, never
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// `--format` of `sio-emu token`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TokenFormat {
    /// The bare JWT and a newline
    #[default]
    Jwt,
    /// {"endpoint","path","token"}, the negotiate shape
    Json,
    /// The Engine.IO long-polling handshake URL carrying the token
    Url,
}

/// The key and endpoint flags shared by minting and `verify`.
#[derive(Args, Clone)]
struct KeyFlags {
    /// Service endpoint named in the client audience [default: http://localhost:8080, or the
    /// connection string's]
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,

    /// Access key that signs (or checks) the token [default: the development key]
    #[arg(long, value_name = "KEY")]
    #[arg(env = "SIO_EMU_ACCESS_KEY", hide_env_values = true)]
    access_key: Option<String>,

    /// Connection string giving the key and the endpoint
    /// (Endpoint=http://localhost:8080;AccessKey=<key>;Version=1.0;, Port= honoured)
    #[arg(long, value_name = "CS")]
    #[arg(env = "WebPubSubConnectionString", hide_env_values = true)]
    connection_string: Option<String>,
}

/// `KeyFlags` plus where each secret came from, so that a flag typed on the command line can
/// win over an environment variable (clap alone cannot tell them apart after parsing).
#[derive(Clone)]
pub struct KeyArgs {
    flags: KeyFlags,
    access_key_from_env: bool,
    connection_string_from_env: bool,
}

impl std::fmt::Debug for KeyArgs {
    // Never print the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("KeyArgs")
            .field("endpoint", &self.flags.endpoint)
            .field("access_key", &redacted(&self.flags.access_key))
            .field(
                "connection_string",
                &redacted(&self.flags.connection_string),
            )
            .field("access_key_from_env", &self.access_key_from_env)
            .field(
                "connection_string_from_env",
                &self.connection_string_from_env,
            )
            .finish()
    }
}

impl FromArgMatches for KeyArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let from_env = |id: &str| matches.value_source(id) == Some(ValueSource::EnvVariable);
        Ok(KeyArgs {
            flags: KeyFlags::from_arg_matches(matches)?,
            access_key_from_env: from_env("access_key"),
            connection_string_from_env: from_env("connection_string"),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for KeyArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        KeyFlags::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        KeyFlags::augment_args_for_update(cmd)
    }
}

/// The key and endpoint after applying the precedence rules.
struct Resolved {
    endpoint: String,
    key: String,
    /// Where the key came from, for the `verify` report (never the key itself).
    key_source: &'static str,
}

/// A value and whether it came from the environment (`true`) or the command line.
type Sourced<T> = Option<(T, bool)>;

impl KeyArgs {
    fn resolve(&self) -> Result<Resolved, CliError> {
        let access_key = self.access_key()?;
        let cs_text = self.connection_string_text()?;
        let endpoint_flag = match &self.flags.endpoint {
            Some(e) => Some(
                connection_string::normalize_endpoint(e)
                    .map_err(|e| CliError::usage(format!("--endpoint: {e}")))?,
            ),
            None => None,
        };
        // A connection string from the environment that nothing below would use is ignored, so
        // a stale variable cannot break an otherwise complete command line.
        let cs_needed = match cs_text {
            Some((_, false)) => true,
            Some((_, true)) => endpoint_flag.is_none() || access_key.is_none(),
            None => false,
        };
        let cs = match cs_text {
            Some((text, from_env)) if cs_needed => {
                Some((parse_connection_string(text, from_env)?, from_env))
            }
            _ => None,
        };
        let (key, key_source) = pick_key(access_key, cs.as_ref());
        let endpoint = endpoint_flag
            .or_else(|| cs.map(|(cs, _)| cs.endpoint))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        Ok(Resolved {
            endpoint,
            key,
            key_source,
        })
    }

    /// `--access-key` / `SIO_EMU_ACCESS_KEY`: an empty environment variable counts as unset;
    /// an empty flag is a mistake.
    fn access_key(&self) -> Result<Sourced<&str>, CliError> {
        match &self.flags.access_key {
            Some(k) if k.is_empty() && !self.access_key_from_env => {
                Err(CliError::usage("--access-key is empty")
                    .hint("omit it to use the development key"))
            }
            Some(k) if !k.is_empty() => Ok(Some((k.as_str(), self.access_key_from_env))),
            _ => Ok(None),
        }
    }

    /// `--connection-string` / `WebPubSubConnectionString`, with the same rule for empty values.
    fn connection_string_text(&self) -> Result<Sourced<&str>, CliError> {
        match &self.flags.connection_string {
            Some(s) if s.trim().is_empty() && !self.connection_string_from_env => {
                Err(CliError::usage("--connection-string is empty"))
            }
            Some(s) if !s.trim().is_empty() => {
                Ok(Some((s.as_str(), self.connection_string_from_env)))
            }
            _ => Ok(None),
        }
    }
}

fn parse_connection_string(
    text: &str,
    from_env: bool,
) -> Result<connection_string::ConnectionString, CliError> {
    let source = if from_env {
        "WebPubSubConnectionString"
    } else {
        "--connection-string"
    };
    connection_string::parse(text).map_err(|e| CliError::usage(format!("{source}: {e}")))
}

/// The key and where it came from: command-line flags first, then environment variables; at
/// each level the specific `--access-key` beats the connection string's AccessKey.
fn pick_key(
    access_key: Sourced<&str>,
    cs: Option<&(connection_string::ConnectionString, bool)>,
) -> (String, &'static str) {
    const CS_FLAG: &str = "the key from --connection-string";
    const CS_ENV: &str = "the key from WebPubSubConnectionString";
    const KEY_FLAG: &str = "the key from --access-key";
    const KEY_ENV: &str = "the key from SIO_EMU_ACCESS_KEY";
    let key = |env: bool, source| {
        access_key
            .filter(|(_, e)| *e == env)
            .map(|(k, _)| (k.to_string(), source))
    };
    let cs_key = |env: bool, source| {
        cs.filter(|(_, e)| *e == env)
            .map(|(cs, _)| (cs.access_key.clone(), source))
    };
    [
        key(false, KEY_FLAG),
        cs_key(false, CS_FLAG),
        key(true, KEY_ENV),
        cs_key(true, CS_ENV),
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or_else(|| (auth::DEV_ACCESS_KEY.to_string(), "the development key"))
}

/// Runs `sio-emu token` (mint) or `sio-emu token verify`.
pub fn run(args: TokenArgs) -> Result<u8, CliError> {
    match args.command {
        Some(TokenCommand::Verify(verify_args)) => verify(verify_args),
        None => mint(args.mint),
    }
}

fn mint(args: MintArgs) -> Result<u8, CliError> {
    let resolved = args.key.resolve()?;
    let lifetime = crate::duration::parse(&args.expires_in)
        .map_err(|e| CliError::usage(format!("--expires-in: {e}")))?;
    let lifetime_secs = u64::try_from(lifetime.as_millis().div_ceil(1000)).unwrap_or(u64::MAX);
    let now = match &args.issued_at {
        Some(text) => parse_time(text)?,
        None => auth::now_unix(),
    };
    if args.user.as_deref() == Some("") {
        return Err(
            CliError::usage("--user is empty").hint("omit --user for a token without `sub`")
        );
    }
    if args.roles.iter().chain(&args.groups).any(String::is_empty) {
        return Err(CliError::usage(
            "--role and --group values must not be empty",
        ));
    }

    let target = match &args.rest {
        Some(url) => {
            if args.format == TokenFormat::Url {
                return Err(CliError::usage(
                    "--format url makes a client connection URL and does not apply to --rest",
                )
                .hint("use --format jwt and send it as `Authorization: Bearer <jwt>`"));
            }
            Target::Rest(rest_url(url, &resolved.endpoint)?)
        }
        None => Target::Client(check_hub(&args.hub)?),
    };
    let aud = match &target {
        Target::Client(hub) => auth::client_audience(&resolved.endpoint, hub),
        Target::Rest(url) => url.clone(),
    };
    let token = auth::mint(
        &resolved.key,
        &TokenClaims {
            aud,
            sub: args.user,
            roles: args.roles,
            groups: args.groups,
            lifetime_secs,
            now,
        },
    );

    let endpoint = &resolved.endpoint;
    let out = match (args.format, &target) {
        (TokenFormat::Jwt, _) => token,
        (TokenFormat::Json, Target::Client(hub)) => serde_json::json!({
            "endpoint": format!("{endpoint}/"),
            "path": format!("/clients/socketio/hubs/{hub}"),
            "token": token,
        })
        .to_string(),
        (TokenFormat::Json, Target::Rest(url)) => {
            serde_json::json!({ "token": token, "url": url }).to_string()
        }
        (TokenFormat::Url, Target::Client(hub)) => format!(
            "{endpoint}/clients/socketio/hubs/{hub}/?EIO=4&transport=polling&access_token={token}"
        ),
        (TokenFormat::Url, Target::Rest(_)) => unreachable!("rejected above"),
    };
    emit(&format!("{out}\n"))?;
    Ok(0)
}

enum Target {
    Client(String),
    Rest(String),
}

fn verify(args: VerifyArgs) -> Result<u8, CliError> {
    args.color.apply();
    let resolved = args.key.resolve()?;
    let raw = if args.token == "-" {
        if std::io::stdin().is_terminal() {
            return Err(
                CliError::usage("`-` reads the token from stdin, but stdin is a terminal")
                    .hint("pipe the token in, e.g. `echo \"$TOKEN\" | sio-emu token verify -`"),
            );
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::usage(format!("reading the token from stdin: {e}")))?;
        text
    } else {
        args.token.clone()
    };
    let token = raw.trim();
    let token = match token.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    };

    let (expected_text, rest) = match &args.rest {
        Some(url) => (rest_url(url, &resolved.endpoint)?, true),
        None => (
            auth::client_audience(&resolved.endpoint, &check_hub(&args.hub)?),
            false,
        ),
    };
    let expected = if rest {
        Expected::Rest {
            request_url: &expected_text,
        }
    } else {
        Expected::Client {
            audience: &expected_text,
        }
    };
    let report = auth::verify_report(
        token,
        std::slice::from_ref(&resolved.key),
        expected,
        auth::now_unix(),
    );
    emit(&render_report(
        &report,
        &expected_text,
        rest,
        resolved.key_source,
    ))?;
    Ok(if report.is_valid() { 0 } else { 1 })
}

/// The human report of `token verify`.
fn render_report(report: &Report, expected: &str, rest: bool, key_source: &str) -> String {
    let mut out = String::new();
    let json = |m: &Map<String, Value>| {
        serde_json::to_string_pretty(m).unwrap_or_else(|_| "{}".to_string())
    };
    for (label, part) in [("header", &report.header), ("claims", &report.claims)] {
        match part {
            Some(map) => out.push_str(&format!("{}\n{}\n", label.bold(), json(map))),
            None if report.header.is_some() || report.claims.is_some() => {
                out.push_str(&format!(
                    "{} {}\n",
                    label.bold(),
                    "(not decodable)".dimmed()
                ));
            }
            None => {}
        }
    }
    let what = if rest { "request URL" } else { "aud" };
    out.push_str(&format!(
        "{}\n",
        format!("checking against {what} {expected}, with {key_source}").dimmed()
    ));
    for c in &report.checks {
        let name = c.check.name();
        let line = match &c.outcome {
            Outcome::Passed(detail) => format!("{name} {}: {detail}", "ok".green()),
            Outcome::Failed(detail) => format!("{name} {}: {detail}", "FAILED".red().bold()),
            Outcome::Skipped(detail) => format!("{name} {}: {detail}", "skipped".yellow()),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let who = if rest { "the REST API" } else { "`serve`" };
    match report.first_failure() {
        None => out.push_str(&format!(
            "{}\n",
            format!("valid: {who} would accept this token")
                .green()
                .bold()
        )),
        Some((check, _)) => {
            out.push_str(&format!(
                "{}\n",
                format!("invalid: rejected by the `{check}` check; {who} would answer 401")
                    .red()
                    .bold()
            ));
            if let Some(hint) = failure_hint(check, rest) {
                out.push_str(&format!("hint: {hint}\n"));
            }
        }
    }
    out
}

fn failure_hint(check: Check, rest: bool) -> Option<&'static str> {
    match check {
        Check::Signature => {
            Some("pass the key it was signed with via --access-key or --connection-string")
        }
        Check::Aud if rest => Some("--rest names the request URL the token must be for"),
        Check::Aud => Some("--hub and --endpoint (or --connection-string) choose the audience"),
        Check::Exp | Check::Nbf => Some("mint a fresh token, e.g. `sio-emu token`"),
        Check::Missing | Check::Malformed => {
            Some("pass the JWT itself (three base64url segments), or `-` to read it from stdin")
        }
        Check::Alg => None,
    }
}

/// Validates a hub name against the docs/protocol.md §3 rule.
fn check_hub(hub: &str) -> Result<String, CliError> {
    if crate::config::valid_hub_name(hub) {
        Ok(hub.to_string())
    } else {
        Err(CliError::usage(format!("--hub `{hub}` is not a valid hub name")).hint(
            "a hub name starts with a letter and has at most 128 letters, digits or _ ` , . [ ]",
        ))
    }
}

/// The REST request URL: absolute http(s), or a path appended to `endpoint`.
fn rest_url(url: &str, endpoint: &str) -> Result<String, CliError> {
    let url = url.trim();
    if url.starts_with('/') {
        return Ok(format!("{endpoint}{url}"));
    }
    let bad = |why: String| {
        CliError::usage(format!("--rest `{url}`: {why}")).hint(
            "give the full request URL, e.g. \
             http://localhost:8080/api/hubs/hub/:send?api-version=2024-01-01, or a path starting \
             with /",
        )
    };
    match Endpoint::of_url(url) {
        Ok(_) => Ok(url.to_string()),
        Err(EndpointError::NotAUrl { .. }) => Err(bad("not an absolute URL".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// `--issued-at`: seconds since 1970, or an RFC 3339 time.
fn parse_time(text: &str) -> Result<u64, CliError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| CliError::usage(format!("--issued-at `{text}` is too large")));
    }
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| {
            CliError::usage(format!(
                "--issued-at `{text}` is neither seconds since 1970 nor an RFC 3339 time"
            ))
            .hint("e.g. --issued-at 1700000000 or --issued-at 2024-01-01T00:00:00Z")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_urls() {
        assert_eq!(
            rest_url("/api/hubs/h/:send?api-version=1", "http://localhost:8080").unwrap(),
            "http://localhost:8080/api/hubs/h/:send?api-version=1"
        );
        assert_eq!(
            rest_url("https://x/api?a=b", "http://e").unwrap(),
            "https://x/api?a=b"
        );
        assert!(rest_url("api/hubs", "http://e").is_err());
        assert!(rest_url("ftp://x/api", "http://e").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
    }
}
