//! The session recorder behind `serve --record <FILE>`: one JSON object per line, appended by a
//! writer thread of its own ([`super::spool`]) that never drops a line: when the file cannot
//! keep up, recording callers wait. Lines are whole `write`s, so a `kill -9` leaves a file that
//! is valid up to its last complete line, and a run appended to a file cut mid-line starts on a
//! fresh line. The first line of each run is a [`RecordLine::Header`] naming the format and
//! version; then handshakes, client frames, webhook exchanges and REST calls follow in the
//! order they happened. Secrets are redacted as lines are serialised ([`super::redact`]).
//!
//! Under `serve --seed` the recorder runs on a logical clock instead of the wall clock: every
//! reading of it is the next whole millisecond (1, 2, 3, …), taken under the same lock that
//! queues the line, so the same sequential scenario records byte-identical files.
//!
//! `sio-emu replay` reads these files back (see docs/REPLAY.md for the format).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::redact;
pub use super::redact::{redacted_frame, redacted_query};
use super::rest_call::RestCall;
use super::spool::{RECORD_QUEUE_BYTES, Spool, SpoolStats};

/// The `format` value of every session file.
pub const FORMAT: &str = "sio-emu-session";
/// The current format version; readers refuse newer major versions.
pub const VERSION: u32 = 1;
/// What replaces a secret in a recording.
pub const REDACTED: &str = "<redacted>";
/// The header's `startedAt` under the logical clock of `serve --seed`.
pub const LOGICAL_START: &str = "2024-01-01T00:00:00.000Z";

/// Direction of a client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the client to the service.
    In,
    /// From the service to the client.
    Out,
}

/// A webhook response as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub latency_ms: f64,
}

/// The webhook event a `webhook` line describes: what was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedEvent {
    pub hub: String,
    pub event: String,
    pub ce_type: String,
    pub namespace: String,
    pub socket_id: String,
    pub connection_id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    pub body: String,
}

/// One line of a session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RecordLine {
    /// First line of a recording run.
    #[serde(rename_all = "camelCase")]
    Header {
        format: String,
        version: u32,
        sio_emu_version: String,
        hubs: Vec<String>,
        endpoint: String,
        started_at: String,
    },
    /// An Engine.IO handshake (secret query values, `access_token` among them, redacted).
    #[serde(rename_all = "camelCase")]
    Handshake {
        t: f64,
        hub: String,
        #[serde(default)]
        connection_id: Option<String>,
        transport: String,
        #[serde(default)]
        user_id: Option<String>,
        #[serde(default)]
        query: BTreeMap<String, String>,
        #[serde(default)]
        refused: Option<String>,
    },
    /// One Engine.IO packet between a client and the service.
    #[serde(rename_all = "camelCase")]
    Frame {
        t: f64,
        hub: String,
        connection_id: String,
        direction: Direction,
        packet: String,
    },
    /// One webhook exchange: the request and what came back.
    #[serde(rename_all = "camelCase")]
    Webhook {
        t: f64,
        #[serde(flatten)]
        call: RecordedEvent,
        #[serde(default)]
        response: Option<RecordedResponse>,
        #[serde(default)]
        error: Option<String>,
    },
    /// One REST call the handler made.
    #[serde(rename_all = "camelCase")]
    Rest {
        t: f64,
        #[serde(flatten)]
        call: RestCall,
        /// The 1-based number of the webhook line this call was made for; written by
        /// `replay --update`, absent in what `serve` records.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<usize>,
    },
    /// An Engine.IO connection ended.
    #[serde(rename_all = "camelCase")]
    Closed {
        t: f64,
        hub: String,
        connection_id: String,
        reason: String,
    },
    /// A contract-lint finding (optional; readers that do not check contracts skip it).
    #[serde(rename_all = "camelCase")]
    Lint {
        t: f64,
        rule: String,
        section: String,
        message: String,
    },
    /// A fault injected by a `--fault` rule (readers that replay events skip it).
    #[serde(rename_all = "camelCase")]
    Fault {
        t: f64,
        rule: String,
        event: String,
        action: String,
    },
    /// A line of a `type` this version does not know (written by a newer one): readers skip it
    /// with a warning. Never written.
    #[serde(other)]
    Unknown,
}

/// Appends lines to a session file through a [`Spool`] and its writer thread.
#[derive(Debug)]
pub struct Recorder {
    /// The clock, behind the lock that also queues lines, so lines are queued in the order of
    /// their times. Holds the last logical tick handed out when the clock is logical.
    clock: Mutex<u64>,
    logical: bool,
    start: Instant,
    spool: Spool,
    /// Where the lines go, as the messages about it name it.
    target: String,
    /// A flush gave up on a file that stopped taking lines: dropping waits no more.
    abandoned: AtomicBool,
}

/// How long shutdown waits for the recording's file to take the lines still queued.
pub const RECORD_FLUSH_WAIT: Duration = Duration::from_secs(3);

impl Recorder {
    /// Opens (creating or appending to) `path`. A file whose last byte is not a newline (a run
    /// cut mid-line) gets one first, so the new run starts on a line of its own.
    pub fn open(path: &Path) -> std::io::Result<Recorder> {
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // Special files (a FIFO, /dev/stdout) cannot be read back: nothing to repair there.
        if ends_mid_line(path).unwrap_or(false) {
            file.write_all(b"\n")?;
        }
        let mut recorder = Self::to_writer(Box::new(file), RECORD_QUEUE_BYTES)?;
        recorder.target = path.display().to_string();
        Ok(recorder)
    }

    /// A recorder appending to any writer through a queue of `capacity` bytes.
    pub fn to_writer(out: Box<dyn Write + Send>, capacity: usize) -> std::io::Result<Recorder> {
        Ok(Recorder {
            clock: Mutex::new(0),
            logical: false,
            start: Instant::now(),
            spool: Spool::start(out, capacity)?,
            target: "the recording".into(),
            abandoned: AtomicBool::new(false),
        })
    }

    /// Switches to the logical clock (`serve --seed`): each reading is the next millisecond.
    pub fn logical(mut self) -> Recorder {
        self.logical = true;
        self
    }

    /// Whether the clock is logical.
    pub fn is_logical(&self) -> bool {
        self.logical
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tick(&self, ticks: &mut u64) -> f64 {
        if self.logical {
            *ticks += 1;
            *ticks as f64
        } else {
            super::millis(self.start.elapsed())
        }
    }

    /// Milliseconds since the recorder opened, or the next logical tick.
    pub fn now_ms(&self) -> f64 {
        let mut ticks = self.lock();
        self.tick(&mut ticks)
    }

    /// Reads the clock, builds the line, redacts it and queues it under one lock, so lines
    /// reach the file in the order of their times. Never waits: the caller's session waits for
    /// [`Recorder::room`] when [`Recorder::full`] says so. Returns the clock's reading when a
    /// line was queued.
    pub fn record(&self, build: impl FnOnce(f64) -> Option<RecordLine>) -> Option<f64> {
        let mut ticks = self.lock();
        let t = self.tick(&mut ticks);
        let mut line = build(t)?;
        redact::redact_line(&mut line);
        // Serialising these types cannot fail (string keys, finite numbers from the clock).
        let mut bytes = serde_json::to_vec(&line).ok()?;
        bytes.push(b'\n');
        self.spool.push(bytes);
        Some(t)
    }

    /// Whether the queue holds its bound: the session that just recorded waits for room.
    pub fn full(&self) -> bool {
        self.spool.full()
    }

    /// Resolves once the queue is below its bound.
    pub async fn room(&self) {
        self.spool.room().await
    }

    /// The queue's figures (`GET /_emu/status`).
    pub fn stats(&self) -> SpoolStats {
        self.spool.stats()
    }

    /// Waits until every recorded line is in the file, for at most [`RECORD_FLUSH_WAIT`].
    /// Returns whether they all are; when not, later flushes (and dropping) wait no more.
    pub fn flush(&self) -> bool {
        if self.abandoned.load(Ordering::Relaxed) {
            return false;
        }
        let done = self.spool.flush(RECORD_FLUSH_WAIT);
        if !done {
            self.abandoned.store(true, Ordering::Relaxed);
        }
        done
    }

    /// After a flush: how many lines never reached the file and where it stops, or `None`
    /// when every line is there.
    pub fn missing(&self) -> Option<String> {
        let stats = self.spool.stats();
        let lost = stats.failed_lines + stats.waiting_lines;
        (lost > 0).then(|| {
            format!(
                "{} line(s) could not be written to {}: it stops after line {} of this run \
                 ({} bytes)",
                super::log::thousands(lost),
                self.target,
                stats.written_lines,
                stats.written_bytes
            )
        })
    }

    /// The first error writing the file, once.
    pub fn take_error(&self) -> Option<String> {
        self.spool.take_error()
    }
}

impl Drop for Recorder {
    /// Whatever was recorded reaches the file, even on a path that skipped the shutdown
    /// (for a bounded time, and not again after a flush gave up).
    fn drop(&mut self) {
        self.flush();
    }
}

/// Whether `path` is non-empty and its last byte is not a newline.
fn ends_mid_line(path: &Path) -> std::io::Result<bool> {
    let mut file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lines_round_trip_and_secrets_are_redacted() {
        let q = redacted_query("EIO=4&access_token=secret&t=1");
        assert_eq!(q["access_token"], REDACTED);
        assert_eq!(q["EIO"], "4");
        let line = RecordLine::Frame {
            t: 1.5,
            hub: "chat".into(),
            connection_id: "c".into(),
            direction: Direction::In,
            packet: "42[\"a\"]".into(),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.starts_with("{\"type\":\"frame\""), "{text}");
        assert_eq!(serde_json::from_str::<RecordLine>(&text).unwrap(), line);
    }

    /// The `rest` lines of the recorded fixtures read into these types and write back byte for
    /// byte: the wire format does not depend on how the types are shaped.
    #[test]
    fn fixture_lines_write_back_unchanged() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let mut rest_lines = 0;
        for name in ["chat-rooms.jsonl", "refused-and-kick.jsonl"] {
            let text = std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap();
            for line in text.lines() {
                let read: RecordLine = serde_json::from_str(line).unwrap();
                if matches!(read, RecordLine::Rest { .. }) {
                    rest_lines += 1;
                    assert_eq!(serde_json::to_string(&read).unwrap(), line);
                }
            }
        }
        assert!(rest_lines > 0, "the fixtures hold rest lines");
    }

    #[test]
    fn a_rest_line_keeps_its_event_field_last() {
        let line = r#"{"type":"rest","t":2.0,"method":"DELETE","operation":"CloseConnection","hub":"h","path":"/api/hubs/h/connections/c","query":{},"body":"","status":204,"event":3}"#;
        let read: RecordLine = serde_json::from_str(line).unwrap();
        let RecordLine::Rest { call, event, .. } = &read else {
            panic!("{read:?}");
        };
        assert_eq!(call.method, http::Method::DELETE);
        assert_eq!(*event, Some(3));
        assert_eq!(serde_json::to_string(&read).unwrap(), line);
    }

    #[test]
    fn connect_auth_values_are_redacted() {
        assert_eq!(
            redacted_frame("40/chat,{\"token\":\"s3cret\",\"n\":1}"),
            "40/chat,{\"n\":\"<redacted>\",\"token\":\"<redacted>\"}"
        );
        assert_eq!(redacted_frame("40/chat,"), "40/chat,");
        assert_eq!(redacted_frame("42[\"a\",{\"b\":1}]"), "42[\"a\",{\"b\":1}]");
    }

    fn closed(t: f64, reason: &str) -> RecordLine {
        RecordLine::Closed {
            t,
            hub: "h".into(),
            connection_id: "c".into(),
            reason: reason.into(),
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("sio-emu-rec-{}-{name}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn every_line_is_in_the_file_after_a_flush() {
        let path = temp("flush");
        let recorder = Recorder::open(&path).unwrap();
        for i in 0..3 {
            recorder.record(|t| Some(closed(t, &i.to_string())));
            recorder.flush();
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count(), i + 1);
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_file_cut_mid_line_gets_a_fresh_line_before_the_next_run() {
        let path = temp("cut");
        std::fs::write(&path, "{\"type\":\"header\"}\n{\"type\":\"clo").unwrap();
        let recorder = Recorder::open(&path).unwrap().logical();
        recorder.record(|t| Some(closed(t, "next")));
        drop(recorder);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "{\"type\":\"clo");
        assert!(
            lines[2].starts_with("{\"type\":\"closed\",\"t\":1.0"),
            "{text}"
        );
        // A file that ends with a newline gets none.
        let recorder = Recorder::open(&path).unwrap();
        drop(recorder);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let _ = std::fs::remove_file(&path);
    }

    /// Collects what the writer thread writes, slowly, so the queue fills and callers wait.
    #[derive(Clone, Default)]
    struct Slow(Arc<Mutex<Vec<u8>>>);

    impl Write for Slow {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            std::thread::yield_now();
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn concurrent_lines_are_all_written_in_clock_order() {
        const THREADS: usize = 8;
        const LINES: usize = 500;
        let out = Slow::default();
        // A queue of a few lines: callers keep waiting for the writer.
        let recorder = Arc::new(
            Recorder::to_writer(Box::new(out.clone()), 256)
                .unwrap()
                .logical(),
        );
        let workers: Vec<_> = (0..THREADS)
            .map(|w| {
                let recorder = recorder.clone();
                std::thread::spawn(move || {
                    for i in 0..LINES {
                        recorder.record(|t| Some(closed(t, &format!("{w}:{i}"))));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        recorder.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; THREADS];
        let mut count = 0;
        for (n, line) in text.lines().enumerate() {
            let RecordLine::Closed { t, reason, .. } = serde_json::from_str(line).unwrap() else {
                panic!("{line}");
            };
            assert_eq!(t, (n + 1) as f64, "times follow the line order");
            let (w, i) = reason.split_once(':').unwrap();
            let (w, i): (usize, usize) = (w.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[w], "each thread's lines keep their order");
            next[w] += 1;
            count += 1;
        }
        assert_eq!(count, THREADS * LINES, "nothing lost");
    }
}
