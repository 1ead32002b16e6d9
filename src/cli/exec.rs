//! `sio-emu exec [serve options] -- <command> [args…]`: runs a command (a test suite, a dev
//! server) against an emulator that lives exactly as long as it.
//!
//! The service starts in-process through [`Running::start`], so it is listening and
//! announced (banner or `ready` line, then the live log on stdout unless `--quiet`) before the
//! command starts. The command inherits stdin, stdout and stderr, plus the connection details
//! in its environment ([`environment`]). SIGINT and SIGTERM received meanwhile are forwarded
//! to it (a terminal's Ctrl-C also reaches it directly, as with `npm run`); sio-emu keeps serving
//! until it exits, then shuts down the documented way (every `disconnected` sent, recording
//! flushed) and exits with the command's status: its exit code, or 128 + the signal number when
//! a signal killed it, as shells report it. A service that cannot start exits 2 before the
//! command runs; a command that cannot be started exits 127 (not found) or 126 (not
//! executable), like a shell.

use std::process::ExitStatus;

use clap::Args;

use super::CliError;
use super::running::Running;
use super::serve::{self, ServeArgs};
use crate::auth::{self, TokenClaims, connection_string};

/// Lifetime of the `SIO_EMU_TOKEN` client token, like the banner's.
const TOKEN_LIFETIME_SECS: u64 = 3600;

/// Flags of `sio-emu exec`: every `serve` flag, then `--` and the command.
#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The command to run once the service is ready, and its arguments (after `--`). It runs
    /// without a shell: use `sh -c '…'` for pipes and variables.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `exec` to completion; the outcome is the command's exit status.
pub fn run(args: ExecArgs) -> Result<u8, CliError> {
    args.serve.color.apply();
    let config = args.serve.to_config()?;
    let traffic = args.serve.traffic()?;
    serve::runtime()?.block_on(async move {
        let running = Running::start(config, traffic).await?;
        serve::watch_config(
            running.service.clone(),
            running.builtins.clone(),
            args.serve.clone(),
        );
        let outcome = supervise(&running, &args.command).await;
        running.shutdown().await;
        outcome
    })
}

/// The variables the command gets: `SIO_EMU_ENDPOINT` (`http://localhost:<port>`),
/// `SIO_EMU_PORT`, `SIO_EMU_CONNECTION_STRING` and the Azure Functions setting
/// `WebPubSubForSocketIOConnectionString` (both `Endpoint=…;AccessKey=…;Version=1.0;`),
/// `SIO_EMU_HUB` (the first declared hub, or `hub`), `SIO_EMU_TOKEN` (a 1-hour client token
/// for that hub, signed with the primary key) and `SIO_EMU_ACCESS_KEY` (that key, which
/// `sio-emu client` and `sio-emu token` read).
pub fn environment(running: &Running) -> Vec<(&'static str, String)> {
    let service = &running.service;
    let config = service.config();
    let endpoint = service.endpoint();
    let key = config.access_keys.first().map(String::as_str).unwrap_or("");
    let connection = connection_string::format(endpoint, key);
    let hub = config
        .hubs
        .first()
        .map(|h| h.name.clone())
        .unwrap_or_else(|| "hub".into());
    let token = auth::mint(
        key,
        &TokenClaims {
            aud: auth::client_audience(endpoint, &hub),
            lifetime_secs: TOKEN_LIFETIME_SECS,
            now: auth::now_unix(),
            ..TokenClaims::default()
        },
    );
    vec![
        ("SIO_EMU_ENDPOINT", endpoint.to_owned()),
        ("SIO_EMU_PORT", running.port.to_string()),
        ("SIO_EMU_CONNECTION_STRING", connection.clone()),
        ("WebPubSubForSocketIOConnectionString", connection),
        ("SIO_EMU_HUB", hub),
        ("SIO_EMU_TOKEN", token),
        ("SIO_EMU_ACCESS_KEY", key.to_owned()),
    ]
}

/// Starts the command, forwards signals to it until it exits, and returns its exit code.
async fn supervise(running: &Running, command: &[String]) -> Result<u8, CliError> {
    let Some((program, args)) = command.split_first() else {
        return Err(CliError::usage("no command given after `--`")
            .hint("usage: sio-emu exec [serve options] -- <command> [args…]"));
    };
    // Installed before the child exists, so no signal falls between the two.
    let mut signals = Signals::install()?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(environment(running))
        .spawn()
        .map_err(|e| spawn_error(program, &e))?;
    loop {
        tokio::select! {
            status = child.wait() => {
                return status.map(exit_code).map_err(|e| {
                    CliError::usage(format!("lost track of `{program}`: {e}"))
                });
            }
            signal = signals.recv() => signals.forward(&child, signal),
        }
    }
}

/// The shell's verdict on a command that could not be started.
fn spawn_error(program: &str, e: &std::io::Error) -> CliError {
    let (code, hint) = match e.kind() {
        std::io::ErrorKind::NotFound => (
            127,
            "check the name and PATH; the command runs without a shell, so wrap shell syntax in `sh -c '…'`",
        ),
        std::io::ErrorKind::PermissionDenied => (126, "the file is not executable"),
        _ => (126, "the command could not be started"),
    };
    CliError {
        message: format!("cannot run `{program}`: {e}"),
        hint: Some(hint.into()),
        code,
    }
}

/// The exit code that reports `status` the way a shell does: the code itself, or
/// 128 + the signal number for a command killed by a signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        // Unix codes are 0..=255; elsewhere keep the low byte, as a shell would see it.
        return (code & 0xff) as u8;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(u8::MAX);
        }
    }
    1
}

/// SIGINT and SIGTERM, caught for the lifetime of the command.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Signals, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let catch = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|e| CliError::usage(format!("cannot catch {name} to forward it: {e}")))
        };
        Ok(Signals {
            interrupt: catch(SignalKind::interrupt(), "SIGINT")?,
            terminate: catch(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    /// The next signal received.
    async fn recv(&mut self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal;
        tokio::select! {
            Some(()) = self.interrupt.recv() => Signal::SIGINT,
            Some(()) = self.terminate.recv() => Signal::SIGTERM,
            else => std::future::pending().await,
        }
    }

    /// Sends `signal` to the child, unless it has already been reaped (its pid may be reused).
    fn forward(&self, child: &tokio::process::Child, signal: nix::sys::signal::Signal) {
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            // ESRCH means it just exited; `wait` reports that next.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }
}

/// Ctrl-C only; the console delivers it to the command as well, so there is nothing to forward.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Result<Signals, CliError> {
        Ok(Signals)
    }

    async fn recv(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn forward(&self, _child: &tokio::process::Child, _signal: ()) {}
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(255 << 8)), 255);
        // Killed by SIGKILL (9) / SIGTERM (15).
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }

    #[test]
    fn spawn_errors_exit_like_a_shell() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(spawn_error("nope", &missing).code, 127);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(spawn_error("x", &denied).code, 126);
    }
}
