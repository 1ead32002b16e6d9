//! `sio-emu replay`: flags → [`Options`], load and validate every session file before anything is
//! sent, run the replay on a tokio runtime, and render what the runner reports: the pretty or
//! NDJSON report on stdout, warnings and the progress bar on stderr (the bar only on a terminal),
//! the JUnit file when asked. Exit codes follow the CLI contract: 0 every event matched (or
//! `--update` rewrote the expectations), 1 a mismatch (or, with `--strict`, a contract-lint
//! finding), 2 unreadable or invalid session, target
//! unreachable, port in use, bad flags.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CliError, ColorChoice};
use crate::auth::DEV_ACCESS_KEY;
use crate::config::DEFAULT_PORT;
use crate::replay::compare::{Rule, Rules};
use crate::replay::runner::{self, EventResult, Observer, Options, Speed};
use crate::replay::session::Session;
use crate::replay::{ReplayError, report};
use crate::traffic::escape::terminal_lines;

const AFTER_HELP: &str = "\
Before replaying, start the handler with its Web PubSub connection string pointing at the REST \
sink: Endpoint=http://localhost:<rest-port>;AccessKey=<access-key>;Version=1.0; (with \
--rest-port 0 the chosen port is printed first).

Ignore rules (--ignore, repeatable; names accept * wildcards):
  event:<name>       replay events with this name but do not compare them
  rest:<Operation>   do not compare REST calls of this operation (e.g. rest:SendToAll)
  query:<param>      do not compare this REST query parameter (api-version never is)
  body:<json-path>   do not compare this value in JSON bodies and packet payloads
                     ($.ts, $[1].sentAt, $['a b'], $[*].id, $..id; a packet's root is its payload)
ISO-8601 times and JWTs inside bodies and query values are always ignored.

Examples:
  sio-emu replay fixtures/chat-rooms.jsonl --target http://localhost:3000/eventhandler/{event}
  sio-emu replay fixtures/*.jsonl --target http://localhost:7071/runtime/webhooks/socketio --junit replay.xml
  sio-emu replay session.jsonl --target http://localhost:3000/{event} --ignore body:$..sentAt --update";

/// `--format pretty|json` for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One line per event, a readable diff under each mismatch.
    #[default]
    Pretty,
    /// One JSON object per line: start, each event, warnings, summary.
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, crate::duration::DurationError> {
    crate::duration::parse(s)
}

fn parse_speed(s: &str) -> Result<Speed, crate::replay::runner::SpeedError> {
    s.parse()
}

fn parse_rule(s: &str) -> Result<Rule, crate::replay::compare::RuleError> {
    s.parse()
}

/// Flags of `sio-emu replay`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ReplayArgs {
    /// Session files recorded with `sio-emu serve --record` (replayed in the order given).
    #[arg(required = true, value_name = "SESSION")]
    pub sessions: Vec<PathBuf>,
    /// The handler under test: URL template, `{hub}` and `{event}` are substituted.
    #[arg(long, value_name = "URL-TEMPLATE")]
    pub target: String,
    /// Key that signs the replayed events (the handler's connection string must carry it)
    /// [default: the development key].
    #[arg(long, env = "SIO_EMU_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// Where replay listens for the handler's REST calls; 0 picks a free port (printed first).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub rest_port: u16,
    /// Listen address of the REST sink; `localhost` binds 127.0.0.1 and ::1.
    #[arg(long, default_value = "localhost")]
    pub rest_host: String,
    /// Pacing between events: max (no waiting), realtime (the recorded gaps), or a factor
    /// (2 = twice as fast, 0.5 = half speed).
    #[arg(long, value_parser = parse_speed, default_value = "max")]
    pub speed: Speed,
    /// How long after an answer the handler's REST calls still belong to that event.
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    pub settle: Duration,
    /// Per webhook request timeout.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Skip the abuse-protection OPTIONS preflight.
    #[arg(long)]
    pub no_preflight: bool,
    /// Do not compare what a rule names (repeatable): event:<name>, rest:<Operation>,
    /// query:<param>, body:<json-path>; see below.
    #[allow(rustdoc::invalid_html_tags)] // clap help text, not Markdown
    #[arg(long = "ignore", value_name = "RULE", value_parser = parse_rule)]
    pub ignore: Vec<Rule>,
    /// Rewrite the sessions' expectations (responses and REST calls) with what the handler does
    /// now, after a deliberate change; the files are replaced atomically.
    #[arg(long)]
    pub update: bool,
    /// Also run the contract lint (as `serve` does) over the target's answers and its REST
    /// calls; any finding fails the replay (exit 1) even when every event matched.
    #[arg(long)]
    pub strict: bool,
    /// Also write a JUnit XML report (one test case per recorded event) to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Report rendering: readable lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = ReportFormat::Pretty)]
    pub format: ReportFormat,
    /// Colour: auto (terminal, no NO_COLOR, TERM not dumb), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// The one place a [`ReplayError`] becomes the CLI's error line, hint and exit code.
impl From<ReplayError> for CliError {
    fn from(e: ReplayError) -> CliError {
        let hint = e.hint();
        let what = match &e {
            ReplayError::Unreachable { .. } | ReplayError::Preflight { .. } => "replay aborted: ",
            _ => "",
        };
        let error = CliError::usage(format!("{what}{e}"));
        match hint {
            Some(h) => error.hint(h),
            None => error,
        }
    }
}

/// Renders the runner's progress.
struct Printer {
    format: ReportFormat,
    bar: ProgressBar,
    target: String,
    sessions_text: String,
}

impl Printer {
    /// Writes one report line to stdout, around the progress bar.
    fn out(&self, text: &str) {
        self.bar.suspend(|| {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) must not abort the replay.
            let _ = writeln!(stdout, "{text}");
            let _ = stdout.flush();
        });
    }

    fn warn(&self, message: &str) {
        match self.format {
            ReportFormat::Pretty => self
                .bar
                .suspend(|| eprintln!("sio-emu: warning: {}", terminal_lines(message))),
            ReportFormat::Json => {
                self.out(&serde_json::json!({ "type": "warning", "message": message }).to_string())
            }
        }
    }
}

impl Observer for Printer {
    fn started(&mut self, sink_endpoint: &str, events: usize) {
        self.bar.set_length(events as u64);
        match self.format {
            ReportFormat::Pretty => self.out(&report::pretty_start_text(
                &self.sessions_text,
                events,
                &self.target,
                sink_endpoint,
            )),
            ReportFormat::Json => {
                self.out(&report::json_start(&self.target, events, sink_endpoint))
            }
        }
    }

    fn session(&mut self, session: &Session) {
        if self.format == ReportFormat::Pretty {
            self.out(&report::pretty_session(session));
        }
    }

    fn event(&mut self, session: &Session, result: &EventResult) {
        self.bar.inc(1);
        match self.format {
            ReportFormat::Pretty => self.out(&report::pretty_event(session, result)),
            ReportFormat::Json => self.out(&report::json_event(session, result)),
        }
    }

    fn warning(&mut self, message: &str) {
        self.warn(message);
    }
}

/// Runs `replay` to completion.
pub fn run(args: ReplayArgs) -> Result<u8, CliError> {
    args.color.apply();
    let access_key = args
        .access_key
        .clone()
        .unwrap_or_else(|| DEV_ACCESS_KEY.into());
    if access_key.is_empty() {
        return Err(CliError::usage("--access-key must not be empty"));
    }
    let mut sessions = Vec::with_capacity(args.sessions.len());
    for path in &args.sessions {
        sessions.push(Session::load(path, args.settle)?);
    }
    let options = Options {
        target: args.target.clone(),
        access_key,
        rest_host: args.rest_host.clone(),
        rest_port: args.rest_port,
        speed: args.speed,
        settle: args.settle,
        timeout: args.timeout,
        preflight: !args.no_preflight,
        rules: Rules {
            rules: args.ignore.clone(),
        },
        update: args.update,
        strict: args.strict,
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} replaying {pos}/{len} events {wide_bar} {elapsed}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut printer = Printer {
        format: args.format,
        bar,
        target: args.target.clone(),
        sessions_text: args
            .sessions
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    for warning in sessions.iter().flat_map(|s| s.warnings.iter()) {
        printer.warn(warning);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(runner::run(&sessions, &options, &mut printer));
    printer.bar.finish_and_clear();
    let outcome = result?;
    match args.format {
        ReportFormat::Pretty => printer.out(&report::pretty_summary(&sessions, &outcome)),
        ReportFormat::Json => printer.out(&report::json_summary(&sessions, &outcome)),
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&sessions, &outcome)).map_err(|source| {
            CliError::from(ReplayError::Write {
                what: "the JUnit report",
                path: path.clone(),
                source,
            })
        })?;
    }
    let failing = outcome
        .sessions
        .iter()
        .any(|s| s.updated.is_none() && s.mismatches() > 0);
    Ok(u8::from(failing || (args.strict && outcome.findings() > 0)))
}
