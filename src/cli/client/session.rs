//! One connected `sio-emu client` run: the `--emit`, `--listen`, script and interactive loops
//! over a [`crate::client::Client`] and the queue of what it receives, printing each received
//! event as one JSON line ([`json_line`]) as it comes.

use std::collections::VecDeque;
use std::io::Read as _;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::script::{self, Command};
use crate::cli::{CliError, emit};
use crate::client::{Client, Received};
use crate::traffic::escape::{Term, terminal_lines};

/// Received events kept for a later `wait` (oldest dropped first).
const MAX_PENDING: usize = 1024;
/// Longest script or interactive line, in bytes.
const MAX_LINE: usize = 1024 * 1024;

/// One JSON value as one output line, with DEL, C1 controls and bidi overrides escaped too
/// (serde_json escapes only C0), so the line is safe on a terminal and still JSON.
pub fn json_line(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

/// A failure that ends a run with exit 1 (its reason is escaped where errors are printed).
fn failure(message: String) -> CliError {
    CliError {
        message,
        hint: None,
        code: 1,
    }
}

/// Why a line of stdin could not be taken; it ends the input.
#[derive(Debug, thiserror::Error)]
pub(super) enum LineError {
    #[error("reading stdin: {0}")]
    Read(std::io::Error),
    #[error("a line is longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("a line is not UTF-8")]
    NotUtf8,
}

/// Lines of stdin, read on a thread of their own (bounded in length; `None` at the end).
pub(super) fn stdin_lines() -> mpsc::Receiver<Result<String, LineError>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let read = (&mut stdin)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line);
            let item = match read {
                Ok(0) => return,
                Err(e) => Err(LineError::Read(e)),
                Ok(_) if line.len() > MAX_LINE => Err(LineError::TooLong),
                Ok(_) => String::from_utf8(line).map_err(|_| LineError::NotUtf8),
            };
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// A connected client and what it has received.
pub(super) struct Session {
    client: Client,
    received: mpsc::Receiver<Received>,
    /// Events received and not yet matched by a `wait`.
    pending: VecDeque<(String, Vec<Value>)>,
    timeout: Duration,
    /// Set once the socket is gone (its reason).
    gone: Option<String>,
    /// Whether received events are printed (not while `--emit` alone waits for its ack).
    print_events: bool,
}

/// Why a step stopped.
enum Stop {
    /// The server ended the socket.
    Disconnected(String),
    TimedOut,
}

impl Session {
    pub(super) fn new(
        client: Client,
        received: mpsc::Receiver<Received>,
        timeout: Duration,
        print_events: bool,
    ) -> Session {
        Session {
            client,
            received,
            pending: VecDeque::new(),
            timeout,
            gone: None,
            print_events,
        }
    }

    /// Prints one received item; `Err` with the reason once the socket is gone.
    fn on_received(&mut self, item: Option<Received>) -> Result<(), Stop> {
        match item {
            Some(Received::Event { event, args }) => {
                if self.print_events {
                    let _ = emit(&json_line(
                        &Received::Event {
                            event: event.clone(),
                            args: args.clone(),
                        }
                        .to_json(),
                    ));
                }
                if self.pending.len() == MAX_PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back((event, args));
                Ok(())
            }
            Some(Received::Disconnected { reason }) => {
                self.gone = Some(reason.clone());
                Err(Stop::Disconnected(reason))
            }
            None => {
                let reason = self
                    .gone
                    .clone()
                    .unwrap_or_else(|| "transport close".into());
                Err(Stop::Disconnected(reason))
            }
        }
    }

    /// Runs `step` to completion within `limit`, printing what arrives meanwhile.
    async fn until<T>(
        &mut self,
        limit: Duration,
        step: impl std::future::Future<Output = T>,
    ) -> Result<T, Stop> {
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(step, deadline);
        loop {
            tokio::select! {
                biased;
                item = self.received.recv() => self.on_received(item)?,
                out = &mut step => return Ok(out),
                () = &mut deadline => return Err(Stop::TimedOut),
            }
        }
    }

    /// Sends one event; with `ack`, waits for it and prints its arguments.
    async fn emit_ack(&mut self, event: &str, args: Vec<Value>, ack: bool) -> Result<(), String> {
        let Some(rx) = self.client.emit(event, args, ack) else {
            return Ok(());
        };
        match self.until(self.timeout, rx).await {
            Ok(Ok(args)) => {
                let _ = emit(&json_line(&Value::Array(args)));
                Ok(())
            }
            Ok(Err(_)) => Err(format!("emit {event}: disconnected before the ack")),
            Err(Stop::Disconnected(reason)) => Err(format!(
                "emit {event}: disconnected by the server before the ack: {reason}"
            )),
            Err(Stop::TimedOut) => Err(format!(
                "emit {event}: no ack within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }

    /// `--emit`.
    pub(super) async fn emit_once(
        &mut self,
        event: &str,
        args: Vec<Value>,
        ack: bool,
    ) -> Result<(), CliError> {
        self.emit_ack(event, args, ack).await.map_err(failure)
    }

    /// Waits for the first pending or next event named `event`.
    async fn wait(&mut self, event: &str, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(at) = self.pending.iter().position(|(e, _)| e == event) {
                self.pending.drain(..=at);
                return Ok(());
            }
            let item = tokio::select! {
                item = self.received.recv() => item,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(format!(
                        "wait {event}: not received within {}",
                        humantime::format_duration(limit)
                    ));
                }
            };
            if let Err(Stop::Disconnected(reason)) = self.on_received(item) {
                return Err(format!(
                    "wait {event}: disconnected by the server: {reason}"
                ));
            }
        }
    }

    /// `--listen`: until `count` events, Ctrl-C, or the server ends the socket.
    pub(super) async fn listen(mut self, count: Option<u64>) -> Result<u8, CliError> {
        let mut seen = 0u64;
        loop {
            if count.is_some_and(|n| seen >= n) {
                self.close().await;
                return Ok(0);
            }
            tokio::select! {
                item = self.received.recv() => match self.on_received(item) {
                    Ok(()) => seen += 1,
                    Err(Stop::Disconnected(reason)) => {
                        return Err(failure(format!("disconnected by the server: {reason}")));
                    }
                    Err(Stop::TimedOut) => {}
                },
                _ = tokio::signal::ctrl_c() => {
                    self.close().await;
                    return Ok(0);
                }
            }
        }
    }

    /// A script from stdin: each line in turn; the first failure ends the run.
    pub(super) async fn script(
        mut self,
        mut lines: mpsc::Receiver<Result<String, LineError>>,
    ) -> Result<u8, CliError> {
        let mut number = 0usize;
        while let Some(line) = lines.recv().await {
            number += 1;
            let line = line.map_err(|e| CliError::usage(format!("line {number}: {e}")))?;
            let command = match script::parse(&line) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    return Err(CliError::usage(format!("line {number}: {e}"))
                        .hint("the commands are listed in sio-emu client --help"));
                }
            };
            if matches!(command, Command::Quit) {
                break;
            }
            if let Err(e) = self.run_command(command, true).await {
                return Err(failure(format!("line {number}: {e}")));
            }
        }
        self.close().await;
        Ok(0)
    }

    /// Lines typed at a terminal: errors are shown and the session goes on; acks print as
    /// they come.
    pub(super) async fn interactive(
        mut self,
        mut lines: mpsc::Receiver<Result<String, LineError>>,
    ) -> Result<u8, CliError> {
        eprintln!(
            "connected to {} (connectionId {}, socket {}); commands:\n{}",
            self.client.transport,
            Term(&self.client.connection_id),
            Term(&self.client.socket_id),
            script::COMMANDS
        );
        let (ack_tx, mut acks) = mpsc::unbounded_channel::<String>();
        loop {
            tokio::select! {
                item = self.received.recv() => {
                    if let Err(Stop::Disconnected(reason)) = self.on_received(item) {
                        return Err(failure(format!("disconnected by the server: {reason}")));
                    }
                }
                Some(line) = acks.recv() => { let _ = emit(&line); }
                line = lines.recv() => {
                    let Some(line) = line else { break };
                    let command = match line.map(|l| script::parse(&l)) {
                        Ok(Ok(Some(c))) => c,
                        Ok(Ok(None)) => continue,
                        Ok(Err(e)) => { eprintln!("error: {e}"); continue; }
                        Err(e) => { eprintln!("error: {e}"); continue; }
                    };
                    match command {
                        Command::Quit => break,
                        Command::Emit { event, args, ack: true } => {
                            if let Some(rx) = self.client.emit(&event, args, true) {
                                let tx = ack_tx.clone();
                                tokio::spawn(async move {
                                    if let Ok(args) = rx.await {
                                        let _ = tx.send(json_line(&Value::Array(args)));
                                    }
                                });
                            }
                        }
                        other => {
                            if let Err(e) = self.run_command(other, false).await {
                                eprintln!("error: {}", terminal_lines(&e));
                            }
                        }
                    }
                }
            }
        }
        self.close().await;
        Ok(0)
    }

    /// Runs one command (not `quit`).
    async fn run_command(&mut self, command: Command, wait_for_ack: bool) -> Result<(), String> {
        if self.gone.is_some() {
            return match command {
                Command::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    Ok(())
                }
                Command::Disconnect | Command::Quit => Ok(()),
                _ => Err("not connected (the socket was disconnected)".into()),
            };
        }
        match command {
            Command::Emit { event, args, ack } => {
                self.emit_ack(&event, args, ack && wait_for_ack).await
            }
            Command::Wait { event, timeout } => {
                self.wait(&event, timeout.unwrap_or(self.timeout)).await
            }
            Command::Sleep(d) => match self.until(d, std::future::pending::<()>()).await {
                Err(Stop::Disconnected(reason)) => {
                    Err(format!("sleep: disconnected by the server: {reason}"))
                }
                _ => Ok(()),
            },
            Command::Disconnect => {
                self.close().await;
                Ok(())
            }
            Command::Quit => Ok(()),
        }
    }

    /// Disconnects and waits (bounded) until the session has sent its last packets.
    pub(super) async fn close(&mut self) {
        if self.gone.is_some() {
            return;
        }
        self.client.disconnect();
        let _ = tokio::time::timeout(self.timeout, async {
            while let Some(item) = self.received.recv().await {
                if let Received::Disconnected { reason } = item {
                    return reason;
                }
            }
            "transport close".to_owned()
        })
        .await
        .map(|reason| self.gone = Some(reason));
        self.gone
            .get_or_insert_with(|| "io client disconnect".into());
    }
}
