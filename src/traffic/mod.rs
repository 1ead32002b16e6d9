//! What happened, separate from how it is shown: every layer reports each hop once, as one
//! [`TrafficEvent`] value, through a cloneable [`Traffic`] handle ([`Traffic::emit`]); each sink
//! renders what it needs of it ([`hop`]): the renderers in [`pretty`] (coloured lines) and
//! [`json`] (NDJSON) the live log on stdout, the recorder its session line, the inspector's
//! [`ring`] its encoded record.
//!
//! Nothing else in the library prints. Emitting is cheap when the log is quiet: callers check
//! [`Traffic::verbose`] before building per-message events.
//!
//! Output never blocks serving (docs/protocol.md §14 decision 22). The live log of `serve` is a view: lines go
//! through the bounded [`log::LogBuffer`] to a writer thread and are dropped (and counted) when
//! stdout is not being read. The recording is data: [`record::Recorder`] queues every line for
//! its own writer thread and makes callers wait rather than lose one. [`Traffic::finish`] drains
//! both at shutdown.

pub mod banner;
pub mod call_details;
mod drain;
pub mod escape;
pub mod hop;
pub mod json;
pub mod log;
pub mod pretty;
pub mod record;
pub mod redact;
pub mod rest_call;
pub mod ring;
pub mod spool;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// One hop of live traffic.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TrafficEvent<'a> {
    /// An Engine.IO handshake, accepted or refused (docs/protocol.md §3, §14 decision 5).
    #[serde(rename_all = "camelCase")]
    Handshake {
        hub: String,
        connection_id: Option<String>,
        transport: &'static str,
        user_id: Option<String>,
        /// `None` when accepted; the reason it was refused otherwise.
        refused: Option<String>,
        /// Decoded (unverified) claims of a refused token, to explain the refusal.
        #[serde(skip_serializing_if = "Option::is_none")]
        claims: Option<serde_json::Value>,
        /// What its session line adds; `None` for a handshake that is not recorded.
        #[serde(skip)]
        recorded: Option<Box<hop::HandshakeRecord>>,
    },
    /// A long-polling session moved to WebSocket.
    #[serde(rename_all = "camelCase")]
    Upgrade { hub: String, connection_id: String },
    /// A Socket.IO namespace CONNECT and its outcome.
    #[serde(rename_all = "camelCase")]
    NamespaceConnect {
        hub: String,
        connection_id: String,
        namespace: String,
        socket_id: String,
        refused: Option<String>,
    },
    /// One webhook call and what came back, borrowed from the exchange that made it.
    Webhook(&'a hop::WebhookHop<'a>),
    /// A webhook response forwarded to the client (normally an ack).
    #[serde(rename_all = "camelCase")]
    AckForwarded {
        hub: &'a str,
        connection_id: &'a str,
        namespace: &'a str,
        packet: Preview<'a>,
    },
    /// A socket left its namespace; its `disconnected` event follows.
    #[serde(rename_all = "camelCase")]
    SocketDisconnected {
        hub: String,
        connection_id: String,
        namespace: String,
        socket_id: String,
        reason: String,
    },
    /// An Engine.IO connection ended.
    #[serde(rename_all = "camelCase")]
    ConnectionClosed {
        hub: String,
        connection_id: String,
        reason: String,
    },
    /// One REST call (its request and answer are a [`rest_call::RestCall`] in the recording).
    Rest(Box<hop::RestHop>),
    /// Something a peer did that the service tolerates but the developer should know.
    #[serde(rename_all = "camelCase")]
    Warning {
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// An error in the service itself (still running).
    #[serde(rename_all = "camelCase")]
    Error {
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// Shutdown started.
    #[serde(rename_all = "camelCase")]
    ShuttingDown { connections: usize },
    /// A contract-lint finding: the handler did something the cloud or its clients do not
    /// accept (see [`crate::lint`]).
    #[serde(rename_all = "camelCase")]
    Lint {
        rule: String,
        section: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// Lint findings per rule id, at shutdown.
    #[serde(rename_all = "camelCase")]
    LintSummary {
        total: u64,
        rules: std::collections::BTreeMap<String, u64>,
    },
    /// A fault injected by a `--fault` rule (see [`crate::fault`]).
    #[serde(rename_all = "camelCase")]
    Fault {
        rule: String,
        hub: String,
        event: String,
        action: String,
        detail: String,
    },
    /// One call to the emulator's own `/_emu/` admin surface.
    #[serde(rename_all = "camelCase")]
    Admin {
        method: String,
        path: String,
        status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// `inspector` for the inspector page's own calls (its actions).
        #[serde(skip_serializing_if = "Option::is_none")]
        origin: Option<&'static str>,
    },
    /// One Engine.IO packet between a client and the service: recorded and on the inspector's
    /// timeline, not in the live log.
    #[serde(rename_all = "camelCase")]
    Frame {
        hub: &'a str,
        connection_id: &'a str,
        direction: record::Direction,
        /// Borrowed from the connection; owned once redacted (a client CONNECT's `auth`).
        packet: std::borrow::Cow<'a, str>,
    },
    /// An Engine.IO connection ended, as the session file says it (the live log says it with
    /// [`TrafficEvent::ConnectionClosed`]): only recorded.
    #[serde(rename_all = "camelCase")]
    Closed {
        hub: String,
        connection_id: String,
        reason: String,
    },
}

impl TrafficEvent<'_> {
    /// Shown even with `--quiet`.
    pub fn is_error(&self) -> bool {
        match self {
            TrafficEvent::Error { .. } => true,
            TrafficEvent::Webhook(hop) => !hop.ok(),
            _ => false,
        }
    }
}

/// Live-log rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pretty,
    Json,
}

/// How long shutdown waits for stdout to take the rest of the live log.
pub const LOG_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Where rendered lines go.
enum Output {
    /// Written on the caller's thread: in-memory writers (tests) and sinks that never block.
    Direct(Mutex<Box<dyn Write + Send>>),
    /// Queued for the live log's writer thread; dropped and counted when stdout is stuck.
    Buffered(log::LogBuffer),
}

struct Inner {
    format: Format,
    quiet: bool,
    out: Output,
    recorder: Option<record::Recorder>,
    /// The inspector's ring of recent traffic (`GET /_emu/events`, `/_emu/export`).
    ring: Option<ring::Ring>,
    /// Set by [`Traffic::finish`], so dropping the last handle does not wait again.
    finished: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Output::Buffered(log) = &self.out
            && !self.finished.load(Ordering::Relaxed)
        {
            log.flush(LOG_FLUSH_WAIT);
        }
    }
}

/// The handle every layer emits through. Cheap to clone.
#[derive(Clone)]
pub struct Traffic {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traffic")
            .field("format", &self.inner.format)
            .field("quiet", &self.inner.quiet)
            .finish()
    }
}

impl Traffic {
    /// A sink writing to `out` on the caller's thread: for writers that never block (tests).
    pub fn new(format: Format, quiet: bool, out: Box<dyn Write + Send>) -> Self {
        Self::with_output(format, quiet, Output::Direct(Mutex::new(out)), None, None)
    }

    /// The live log of `serve`: lines go to `out` (stdout) through a bounded buffer and a
    /// writer thread, so a reader that stops reading costs lines, never serving; with the
    /// recording when `--record` is given.
    pub fn live(
        format: Format,
        quiet: bool,
        out: Box<dyn Write + Send>,
        recorder: Option<record::Recorder>,
        ring: Option<ring::Ring>,
    ) -> std::io::Result<Self> {
        let buffer = log::LogBuffer::start(format, out)?;
        Ok(Self::with_output(
            format,
            quiet,
            Output::Buffered(buffer),
            recorder,
            ring,
        ))
    }

    fn with_output(
        format: Format,
        quiet: bool,
        out: Output,
        recorder: Option<record::Recorder>,
        ring: Option<ring::Ring>,
    ) -> Self {
        Traffic {
            inner: Arc::new(Inner {
                format,
                quiet,
                out,
                recorder,
                ring,
                finished: AtomicBool::new(false),
            }),
        }
    }

    /// The inspector's ring, when it keeps traffic.
    pub fn ring(&self) -> Option<&ring::Ring> {
        self.inner.ring.as_ref()
    }

    /// Whether the recording's queue holds its bound: the session that just recorded a line
    /// should wait for [`Traffic::recording_room`] before it takes more from its client.
    pub fn recording_full(&self) -> bool {
        self.inner.recorder.as_ref().is_some_and(|r| r.full())
    }

    /// Resolves once the recording's queue is below its bound (at once without a recording).
    pub async fn recording_room(&self) {
        // One atomic load on the per-event path while the file keeps up.
        if let Some(recorder) = self.inner.recorder.as_ref().filter(|r| r.full()) {
            recorder.room().await;
        }
    }

    /// The recording queue's figures, when recording.
    pub fn recording_stats(&self) -> Option<spool::SpoolStats> {
        self.inner.recorder.as_ref().map(|r| r.stats())
    }

    /// Whether session lines are wanted (a recording, or the inspector's ring); callers skip
    /// building them otherwise.
    pub fn recording(&self) -> bool {
        self.inner.recorder.is_some() || self.inner.ring.is_some()
    }

    /// Appends a line that is no hop (the run's `header`) to the recording, if any; `build`
    /// receives the time in ms since start. The ring keeps no such line (an export writes its
    /// own header).
    pub fn record(&self, build: impl FnOnce(f64) -> record::RecordLine) {
        if let Some(recorder) = &self.inner.recorder {
            recorder.record(|t| Some(build(t)));
            self.report_record_error(recorder);
        }
    }

    /// Logs the first error writing the recording, once.
    fn report_record_error(&self, recorder: &record::Recorder) {
        if let Some(e) = recorder.take_error() {
            self.emit(TrafficEvent::Error {
                message: format!("could not append to the recording: {e}"),
                hint: Some(
                    "check the disk and the --record path; the recording misses the lines that \
                     failed (counted at shutdown)"
                        .into(),
                ),
            });
        }
    }

    /// The recording's clock now (ms since start, or the next logical tick under `--seed`);
    /// `None` when nothing is recorded. Webhook calls take it when they start.
    pub fn clock_ms(&self) -> Option<f64> {
        self.inner.recorder.as_ref().map(|r| r.now_ms())
    }

    /// Whether the recording runs on the logical clock of `serve --seed`, so that its times
    /// and latencies must not come from the wall clock.
    pub fn deterministic(&self) -> bool {
        self.inner.recorder.as_ref().is_some_and(|r| r.is_logical())
    }

    /// A sink that shows nothing.
    pub fn silent() -> Self {
        Self::new(Format::Pretty, true, Box::new(std::io::sink()))
    }

    /// Whether per-hop events are wanted (shown, or kept by the inspector's ring); callers
    /// skip building them otherwise.
    pub fn verbose(&self) -> bool {
        !self.inner.quiet || self.inner.ring.is_some()
    }

    /// The rendering in use.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    /// Reports one hop. Never waits for stdout: a line that does not fit the live log's
    /// buffer is dropped and counted (and not even rendered while the buffer stays full).
    /// The inspector's ring keeps every hop, shown or not.
    pub fn emit(&self, event: TrafficEvent<'_>) {
        self.hop(event);
    }

    /// Reports one hop to every sink, each rendering what it needs of it: its session line to
    /// the recording (waiting while the recording's queue is full, docs/protocol.md §14
    /// decision 22: sessions wait, not lines), its line to the live log, and the whole hop,
    /// redacted, to the inspector's ring. Returns its `seq` in the ring, if one keeps it.
    pub fn hop(&self, mut event: TrafficEvent<'_>) -> Option<u64> {
        let recorded = event.recorded();
        if recorded || self.inner.ring.is_some() {
            event.redact();
        }
        let mut t = None;
        if let Some(recorder) = self.inner.recorder.as_ref().filter(|_| recorded) {
            t = recorder.record(|now| event.line(now));
            self.report_record_error(recorder);
        }
        if event.in_live_log() {
            self.show(&event);
        }
        let ring = self.inner.ring.as_ref()?;
        let t = t.unwrap_or_else(|| ring.now_ms());
        Some(ring.push(&event, t, recorded))
    }

    /// The live-log part of [`Traffic::hop`].
    fn show(&self, event: &TrafficEvent<'_>) {
        if self.inner.quiet && !event.is_error() {
            return;
        }
        if let Output::Buffered(log) = &self.inner.out
            && log.saturated()
        {
            log.drop_line();
            return;
        }
        self.push(self.render(event));
    }

    fn render(&self, event: &TrafficEvent<'_>) -> String {
        match self.inner.format {
            Format::Pretty => pretty::render(event),
            Format::Json => json::render(event),
        }
    }

    /// Writes one already rendered line (the banner, the ready line).
    pub fn write_line(&self, line: &str) {
        self.push(line.to_owned());
    }

    fn push(&self, line: String) {
        match &self.inner.out {
            Output::Direct(out) => {
                let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                // A closed stdout must not take the service down; the line is simply lost.
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Output::Buffered(log) => {
                log.push(line);
            }
        }
    }

    /// Live-log lines dropped so far because stdout was not being read.
    pub fn dropped_lines(&self) -> u64 {
        match &self.inner.out {
            Output::Buffered(log) => log.dropped(),
            Output::Direct(_) => 0,
        }
    }

    /// The end of the shutdown: every recorded line written (its write errors reported), the
    /// count of dropped log lines reported when there were any, and the live log flushed for
    /// at most [`LOG_FLUSH_WAIT`], so a stuck stdout cannot hold up the exit.
    pub fn finish(&self) {
        if let Some(recorder) = &self.inner.recorder {
            let flushed = recorder.flush();
            self.report_record_error(recorder);
            if let Some(message) = recorder.missing() {
                self.emit(TrafficEvent::Error {
                    message,
                    hint: (!flushed).then(|| {
                        format!(
                            "the file took no more lines for {}s (a pipe whose reader stopped, \
                             a stalled disk); the lines still queued were abandoned at exit",
                            record::RECORD_FLUSH_WAIT.as_secs()
                        )
                    }),
                });
            }
        }
        let Output::Buffered(log) = &self.inner.out else {
            return;
        };
        self.inner.finished.store(true, Ordering::Relaxed);
        let dropped = log.dropped();
        if dropped > 0 {
            // Part of the shutdown summary: shown even with --quiet, past the buffer's bound.
            log.push_unbounded(self.render(&dropped_summary(dropped)));
        }
        if !log.flush(LOG_FLUSH_WAIT) {
            log::tell_stderr(format!(
                "sio-emu: stdout was not being read: {} dropped, and the end of the log \
                 could not be written",
                log::log_lines(log.dropped())
            ));
        }
    }
}

/// The shutdown summary's line about dropped log lines.
fn dropped_summary(dropped: u64) -> TrafficEvent<'static> {
    TrafficEvent::Warning {
        message: format!(
            "{} dropped in all: stdout was not being read",
            log::log_lines(dropped)
        ),
        hint: Some("read the output (or redirect it to a file), or use --quiet".into()),
    }
}

/// Milliseconds with a fraction, for latency fields.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

/// The first `max` characters of a body as one log-safe line, written without copying it:
/// invalid UTF-8 becomes `�`, control characters are escaped (`\n`, `\u{1b}`), and `…` marks
/// a cut.
#[derive(Debug, Clone, Copy)]
pub struct BodyPreview<'a> {
    body: &'a [u8],
    max: usize,
}

impl<'a> BodyPreview<'a> {
    pub fn new(body: &'a [u8], max: usize) -> Self {
        BodyPreview { body, max }
    }
}

impl std::fmt::Display for BodyPreview<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        if escape::printable_ascii(self.body) {
            return plain_preview(f, self.body, self.max);
        }
        let mut left = self.max;
        for chunk in self.body.utf8_chunks() {
            let text = chunk.valid();
            // Runs of plain characters are written whole.
            let mut run = 0;
            for (at, c) in text.char_indices() {
                if left == 0 {
                    f.write_str(&text[run..at])?;
                    return f.write_char('…');
                }
                left -= 1;
                if c.is_control() {
                    f.write_str(&text[run..at])?;
                    write!(f, "{}", c.escape_default())?;
                    run = at + c.len_utf8();
                }
            }
            f.write_str(&text[run..])?;
            if !chunk.invalid().is_empty() {
                if left == 0 {
                    return f.write_char('…');
                }
                left -= 1;
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        Ok(())
    }
}

/// A preview of printable ASCII (one byte a character, nothing to escape): its first `max`
/// bytes, and `…` when there were more.
fn plain_preview(f: &mut std::fmt::Formatter<'_>, text: &[u8], max: usize) -> std::fmt::Result {
    // Printable ASCII is UTF-8 at every byte boundary.
    let cut = std::str::from_utf8(&text[..text.len().min(max)]).unwrap_or_default();
    f.write_str(cut)?;
    if text.len() > max {
        f.write_str("…")?;
    }
    Ok(())
}

/// Cuts `text` to at most `max` characters on one line, marking the cut.
pub fn preview(text: &str, max: usize) -> String {
    Preview::new(text, max).to_string()
}

/// [`preview`] written where it goes, without a copy: a log line's view of a packet.
#[derive(Debug, Clone, Copy)]
pub struct Preview<'a> {
    text: &'a str,
    max: usize,
}

impl<'a> Preview<'a> {
    pub fn new(text: &'a str, max: usize) -> Self {
        Preview { text, max }
    }
}

impl std::fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        let text = self.text;
        if escape::printable_ascii(text.as_bytes()) {
            return plain_preview(f, text.as_bytes(), self.max);
        }
        // Runs of plain characters are written whole.
        let mut run = 0;
        for (i, (at, c)) in text.char_indices().enumerate() {
            if i == self.max {
                f.write_str(&text[run..at])?;
                return f.write_char('…');
            }
            let escaped = match c {
                '\n' => "\\n",
                '\r' => "\\r",
                '\x1e' => "\\x1e",
                c if c.is_control() => "?",
                _ => continue,
            };
            f.write_str(&text[run..at])?;
            f.write_str(escaped)?;
            run = at + c.len_utf8();
        }
        f.write_str(&text[run..])
    }
}

/// Written as a string, straight from the text it views.
impl Serialize for Preview<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_cuts_and_escapes() {
        assert_eq!(preview("abc", 10), "abc");
        assert_eq!(preview("abc", 3), "abc");
        assert_eq!(preview("abcdef", 3), "abc…");
        assert_eq!(preview("a\nb", 10), "a\\nb");
        assert_eq!(preview("é€abc", 3), "é€a…");
        assert_eq!(preview("", 3), "");
        let body = |b: &[u8], max| BodyPreview::new(b, max).to_string();
        assert_eq!(body(b"abc", 3), "abc");
        assert_eq!(body(b"abcd", 3), "abc…");
        assert_eq!(body(b"a\x01bc", 3), "a\\u{1}b…");
        assert_eq!(body(b"ab\xffc", 10), "ab\u{fffd}c");
    }

    #[test]
    fn quiet_shows_only_errors() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let t = Traffic::new(Format::Json, true, Box::new(W(buf.clone())));
        t.emit(TrafficEvent::ShuttingDown { connections: 0 });
        t.emit(TrafficEvent::Error {
            message: "boom".into(),
            hint: None,
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("\"type\":\"error\""));
    }
}
