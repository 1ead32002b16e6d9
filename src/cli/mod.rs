//! Command-line front end: clap definitions for every subcommand, and the one place where an
//! outcome becomes an exit code and an error becomes the `sio-emu: <what>: <cause>` line.
//!
//! Each subcommand module turns its flags into library settings and calls the library; nothing
//! below this module prints to the terminal except through the traffic renderers.

pub mod client;
pub mod docs;
pub mod exec;
pub mod init;
pub mod replay;
pub mod running;
pub mod serve;
pub mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::traffic::escape::terminal_lines;

/// A local emulator of Azure Web PubSub for Socket.IO (Serverless mode).
#[derive(Parser, Debug)]
#[command(name = "sio-emu", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the emulated service: Socket.IO clients, webhook calls and the REST API.
    Serve(serve::ServeCommand),
    /// Mint an access token (or `token verify` one).
    Token(token::TokenArgs),
    /// Run a command against a service that lives as long as it (connection details in its
    /// environment; exits with its status).
    Exec(exec::ExecArgs),
    /// Write a commented starter configuration file for `serve --config`.
    Init(init::InitArgs),
    /// Replay recorded sessions against an event handler and compare its answers.
    Replay(replay::ReplayArgs),
    /// Be a Socket.IO client of a hub: emit an event and print its ack, listen, or run a script
    /// of commands (exits 1 when refused, timed out or disconnected by the server).
    Client(client::ClientArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout.
    Completions(docs::CompletionsArgs),
    /// Print the manual pages (roff) of sio-emu and every subcommand to stdout.
    Man(docs::ManArgs),
}

/// `--color auto|always|never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Applies the choice to the `colored` crate; `auto` is off when stdout is not a terminal,
    /// when `NO_COLOR` is set or when `TERM=dumb`.
    pub fn apply(self) {
        use std::io::IsTerminal;
        let on = match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none()
                    && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
            }
        };
        colored::control::set_override(on);
    }
}

/// A failure that ends a command: printed once as `sio-emu: <message>` plus an optional hint.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl CliError {
    /// Usage error, unreadable input or infrastructure failure (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: None,
            code: 2,
        }
    }

    /// Adds the hint line printed under the error.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::usage(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Condenses clap's multi-line error into the contract's one line plus a hint line.
fn one_line_usage_error(rendered: &str) -> (String, String) {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut message = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    // "the following required arguments were not provided:" names them on the next lines.
    if message.ends_with(':') {
        let named: Vec<&str> = lines.take_while(|l| !l.starts_with("Usage: ")).collect();
        if !named.is_empty() {
            message = format!("{} {}", message, named.join(", "));
        }
    }
    let tip = rendered
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "))
        .map(str::to_owned);
    let usage = rendered
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("Usage: "))
        .map(|u| format!("usage: {u}; see --help"));
    let hint = tip.or(usage).unwrap_or_else(|| "see sio-emu --help".into());
    (message, hint)
}

/// Parses the command line, runs one command and maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let (message, hint) = one_line_usage_error(&e.render().to_string());
            eprintln!("sio-emu: {}", terminal_lines(&message));
            eprintln!("hint: {}", terminal_lines(&hint));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Token(args) => token::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Init(args) => init::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Client(args) => client::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A message may quote a peer's text (a recording's line, a webhook's answer).
            eprintln!("sio-emu: {}", terminal_lines(&e.message));
            if let Some(hint) = e.hint {
                eprintln!("hint: {}", terminal_lines(&hint));
            }
            ExitCode::from(e.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fit_one_line() {
        let rendered = "error: unexpected argument '--nope' found\n\n  tip: to pass '--nope' as a value, use '-- --nope'\n\nUsage: sio-emu serve [OPTIONS]\n\nFor more information, try '--help'.\n";
        let (message, hint) = one_line_usage_error(rendered);
        assert_eq!(message, "unexpected argument '--nope' found");
        assert!(hint.contains("-- --nope"));
        let (_, hint) = one_line_usage_error("error: x\n\nUsage: sio-emu token\n");
        assert_eq!(hint, "usage: sio-emu token; see --help");
        let rendered = "error: the following required arguments were not provided:\n  <COMMAND>...\n\nUsage: sio-emu exec -- <COMMAND>...\n\nFor more information, try '--help'.\n";
        let (message, _) = one_line_usage_error(rendered);
        assert_eq!(
            message,
            "the following required arguments were not provided: <COMMAND>..."
        );
    }
}
