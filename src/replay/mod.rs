//! `sio-emu replay`: sends the webhook events of recorded sessions (`serve --record`) to a running
//! event handler, in recorded order, and checks that it still answers the same way and makes the
//! same REST calls. Meant for CI: a handler change that breaks a recorded conversation fails the
//! build with a readable diff.
//!
//! [`session`] reads and validates session files (and rewrites them for `--update`); [`runner`]
//! drives each event through [`crate::upstream::Upstream`] (the same signed CloudEvents requests as
//! `serve`) while the [`sink`] plays the Web PubSub REST data plane for the handler's calls;
//! [`compare`] decides what counts as "the same"; [`report`] renders the results. The CLI
//! (`crate::cli::replay`) turns flags into [`runner::Options`] and [`ReplayError`] into exit code 2;
//! mismatches are not errors but results (exit 1).

pub mod compare;
pub mod report;
pub mod runner;
pub mod session;
pub mod sink;

use std::path::PathBuf;

/// Why a replay could not run (every variant is exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read session {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid session {}:{line}: {message}", .path.display())]
    InvalidSession {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "session {}:{line} was recorded by sio-emu {recorded_by} in session format version \
         {found}; this sio-emu reads versions up to {supported}", .path.display()
    )]
    TooNew {
        path: PathBuf,
        line: usize,
        found: u32,
        supported: u32,
        recorded_by: String,
    },
    #[error("invalid --target `{template}`: {detail}")]
    InvalidTarget { template: String, detail: String },
    #[error("cannot listen for the handler's REST calls on port {port}: {source}")]
    RestPort { port: u16, source: std::io::Error },
    #[error("the target {url} could not be reached: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("the target {url} failed the abuse-protection check: {detail}")]
    Preflight { url: String, detail: String },
    #[error("cannot write {what} {}: {source}", .path.display())]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ReplayError {
    /// The next step for the person running the replay, when there is one to suggest.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReplayError::Read { .. } => Some("check the path of the session file".into()),
            ReplayError::InvalidSession { .. } => Some(
                "session files are written by `sio-emu serve --record <FILE>`, one JSON object \
                 per line; see docs/REPLAY.md for the format"
                    .into(),
            ),
            ReplayError::TooNew { .. } => {
                Some("upgrade sio-emu to the version that recorded the session".into())
            }
            ReplayError::InvalidTarget { .. } => Some(
                "pass --target with the handler's http:// URL template, e.g. \
                 http://localhost:7071/runtime/webhooks/socketio; {hub} and {event} are \
                 substituted"
                    .into(),
            ),
            ReplayError::RestPort { source, .. }
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                Some(
                    "another process (a running `sio-emu serve`?) uses this port; stop it or pick \
                     another with --rest-port and point the handler's connection string there"
                        .into(),
                )
            }
            ReplayError::RestPort { .. } => None,
            ReplayError::Unreachable { .. } => Some(
                "start the event handler first (and check --target); nothing was replayed".into(),
            ),
            ReplayError::Preflight { .. } => Some(
                "the handler must answer the OPTIONS request with 2xx and WebHook-Allowed-Origin \
                 `*` or `localhost`; to skip the check, pass --no-preflight"
                    .into(),
            ),
            ReplayError::Write { .. } => {
                Some("check that the directory exists and is writable".into())
            }
        }
    }
}
