//! The live log's way to stdout (docs/protocol.md §14 decision 22: output never blocks serving). Callers render
//! their line and hand it to a [`LogBuffer`], a queue bounded in bytes ([`LOG_BUFFER_BYTES`])
//! that one plain writer thread drains to stdout; only that thread ever blocks on a pipe nobody
//! reads. When the queue is full the line is dropped and counted, and where lines went missing
//! the writer prints one warning, `1,234 log lines dropped: stdout is not being read`, in the
//! active format, then continues; order is otherwise kept.
//!
//! Lines are rendered on the caller's side: the timestamp is when the event happened (not when
//! a slow stdout got to it), the byte bound is exact, and the writer needs nothing but bytes.
//! While the queue is known to be full ([`LogBuffer::saturated`]) callers skip rendering, so a
//! stalled stdout costs each event an atomic load and a counter increment under a short lock.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use super::drain::Drain;
use super::{Format, TrafficEvent, json, pretty};

/// How many bytes of rendered lines may wait for stdout (including the batch being written).
pub const LOG_BUFFER_BYTES: usize = 1 << 20;
/// What a dropped-lines notice is charged against the bound.
const NOTICE_BYTES: usize = 128;

/// One queued item: a rendered line, or the place where `n` lines were dropped.
#[derive(Debug)]
enum Entry {
    Line(String),
    Dropped(u64),
}

impl Entry {
    fn size(&self) -> usize {
        match self {
            Entry::Line(line) => line.len() + 1,
            Entry::Dropped(_) => NOTICE_BYTES,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Entry>,
    /// Bytes queued plus bytes of the batch being written.
    used: usize,
    /// Dropped since the last notice was queued.
    pending_dropped: u64,
    /// The writer is waiting for lines: only then does queueing one need to wake it.
    writer_idle: bool,
}

#[derive(Debug)]
struct Shared {
    drain: Drain<State>,
    /// Set when a line was dropped, cleared when the writer frees space.
    saturated: AtomicBool,
    dropped_total: AtomicU64,
    capacity: usize,
}

/// The bounded queue in front of the live log's writer thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    shared: Arc<Shared>,
}

impl LogBuffer {
    /// Starts the writer thread draining into `out`, with the default bound.
    pub fn start(format: Format, out: Box<dyn Write + Send>) -> std::io::Result<LogBuffer> {
        Self::with_capacity(format, out, LOG_BUFFER_BYTES)
    }

    /// Starts the writer thread with a bound of `capacity` bytes.
    pub fn with_capacity(
        format: Format,
        out: Box<dyn Write + Send>,
        capacity: usize,
    ) -> std::io::Result<LogBuffer> {
        let shared = Arc::new(Shared {
            drain: Drain::default(),
            saturated: AtomicBool::new(false),
            dropped_total: AtomicU64::new(0),
            capacity,
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("sio-emu-log".into())
            .spawn(move || write_loop(&writer, format, out))?;
        Ok(LogBuffer { shared })
    }

    /// Whether the queue was full at the last attempt and the writer has not freed space since:
    /// the next line would be dropped, so there is no point rendering it.
    pub fn saturated(&self) -> bool {
        self.shared.saturated.load(Ordering::Relaxed)
    }

    /// Counts one line as dropped without queueing it.
    pub fn drop_line(&self) {
        self.shared.dropped_total.fetch_add(1, Ordering::Relaxed);
        self.shared.drain.lock().pending_dropped += 1;
    }

    /// Queues one line (without its newline); never waits. Returns `false` when the queue was
    /// full and the line was dropped (and counted). A line larger than the whole bound is
    /// accepted only into an empty queue, so it is not lost to the bound alone.
    pub fn push(&self, line: String) -> bool {
        let shared = &self.shared;
        let mut state = shared.drain.lock();
        if state.used > 0 && state.used + line.len() + 1 > shared.capacity {
            state.pending_dropped += 1;
            // Set under the lock the writer clears it under, so it cannot outlive the full queue.
            shared.saturated.store(true, Ordering::Relaxed);
            drop(state);
            shared.dropped_total.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.enqueue(state, line);
        true
    }

    /// Queues one line past the bound (the shutdown summary, which must not be dropped).
    pub fn push_unbounded(&self, line: String) {
        let state = self.shared.drain.lock();
        self.enqueue(state, line);
    }

    fn enqueue(&self, mut state: MutexGuard<'_, State>, line: String) {
        queue_notice(&mut state);
        state.used += line.len() + 1;
        state.queue.push_back(Entry::Line(line));
        // A busy writer takes this line with its next batch; waking it costs a system call.
        let wake = std::mem::take(&mut state.writer_idle);
        drop(state);
        if wake {
            self.shared.drain.wake_writer();
        }
    }

    /// Lines dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped_total.load(Ordering::Relaxed)
    }

    /// Waits at most `wait` until everything queued (a pending dropped-lines notice included)
    /// has been written; `false` if stdout did not take it in time.
    pub fn flush(&self, wait: Duration) -> bool {
        let shared = &self.shared;
        let mut state = shared.drain.lock();
        if state.pending_dropped > 0 {
            queue_notice(&mut state);
            state.writer_idle = false;
            shared.drain.wake_writer();
        }
        shared.drain.flush(state, wait, |state| state.used > 0)
    }
}

/// Queues the notice for lines dropped since the last one, if any, where they went missing.
fn queue_notice(state: &mut State) {
    if state.pending_dropped > 0 {
        let entry = Entry::Dropped(std::mem::take(&mut state.pending_dropped));
        state.used += entry.size();
        state.queue.push_back(entry);
    }
}

/// How long the writer lets lines gather after it wakes, so a busy server's lines go out in a
/// few large writes instead of one wake-up and one write each.
const GATHER: Duration = Duration::from_millis(2);

/// The writer thread: takes everything queued, writes it, frees its space, repeats. Runs until
/// the process exits (it is never joined: a stuck stdout must not hold up the exit).
fn write_loop(shared: &Shared, format: Format, mut out: Box<dyn Write + Send>) {
    let mut text = String::new();
    loop {
        {
            let mut state = shared.drain.lock();
            if state.queue.is_empty() {
                while state.queue.is_empty() {
                    state.writer_idle = true;
                    state = shared.drain.wait_queued(state);
                }
                drop(state);
                std::thread::sleep(GATHER);
            }
        }
        let batch: Vec<Entry> = shared.drain.lock().queue.drain(..).collect();
        let bytes: usize = batch.iter().map(Entry::size).sum();
        text.clear();
        for entry in batch {
            match entry {
                Entry::Line(line) => text.push_str(&line),
                Entry::Dropped(n) => text.push_str(&dropped_notice(format, n)),
            }
            text.push('\n');
        }
        // A closed stdout must not take the service down: the lines are simply lost.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        if text.capacity() > 4 * LOG_BUFFER_BYTES {
            text = String::new();
        }
        let mut state = shared.drain.lock();
        state.used = state.used.saturating_sub(bytes);
        shared.saturated.store(false, Ordering::Relaxed);
        drop(state);
        shared.drain.notify_written();
    }
}

/// The warning printed where `n` lines were dropped, in the active format.
pub fn dropped_notice(format: Format, n: u64) -> String {
    let event = TrafficEvent::Warning {
        message: format!("{} dropped: stdout is not being read", log_lines(n)),
        hint: None,
    };
    match format {
        Format::Pretty => pretty::render(&event),
        Format::Json => json::render(&event),
    }
}

/// `1 log line`, `1,234 log lines`.
pub fn log_lines(n: u64) -> String {
    format!("{} log line{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Writes `line` to stderr from a helper thread, waiting for it at most a second: a last word
/// for someone whose stdout is stuck, which must not hold up the exit if stderr is stuck too.
pub fn tell_stderr(line: String) {
    let (done, wait) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("sio-emu-stderr".into())
        .spawn(move || {
            let _ = writeln!(std::io::stderr(), "{line}");
            let _ = done.send(());
        });
    if spawned.is_ok() {
        let _ = wait.recv_timeout(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    /// What a [`Gate`] holds: whether it is open, and what it was given.
    #[derive(Default)]
    struct Taken {
        open: bool,
        bytes: Vec<u8>,
    }

    /// A stdout that takes nothing until it is opened, then keeps everything.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<Taken>, Condvar)>);

    impl Gate {
        fn open(&self) {
            self.0.0.lock().unwrap().open = true;
            self.0.1.notify_all();
        }
        fn text(&self) -> String {
            String::from_utf8(self.0.0.lock().unwrap().bytes.clone()).unwrap()
        }
    }

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut taken = self.0.0.lock().unwrap();
            while !taken.open {
                taken = self.0.1.wait(taken).unwrap();
            }
            taken.bytes.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A 9-byte line (10 with its newline).
    fn line(i: usize) -> String {
        format!("line {i:04}")
    }

    #[test]
    fn a_full_buffer_drops_and_counts_then_says_so_where_lines_went_missing() {
        let gate = Gate::default();
        let log = LogBuffer::with_capacity(Format::Json, Box::new(gate.clone()), 100).unwrap();
        // Stdout takes nothing: ten lines fill the bound, the next five are dropped.
        for i in 0..10 {
            assert!(log.push(line(i)), "line {i} fits");
        }
        for i in 10..15 {
            assert!(!log.push(line(i)), "line {i} is dropped");
        }
        assert!(log.saturated());
        log.drop_line(); // what `emit` does while saturated, without rendering
        assert_eq!(log.dropped(), 6);
        assert!(!log.flush(Duration::ZERO), "nothing can be written yet");
        gate.open();
        while log.saturated() {
            std::thread::yield_now(); // until the writer has freed space
        }
        assert!(log.push("after".into()));
        assert!(log.flush(Duration::from_secs(10)));
        let text = gate.text();
        let lines: Vec<&str> = text.lines().collect();
        let expected: Vec<String> = (0..10).map(line).collect();
        assert_eq!(lines[..10], expected[..], "{text}");
        let notice: serde_json::Value = serde_json::from_str(lines[10]).unwrap();
        assert_eq!(notice["type"], "warning");
        assert_eq!(
            notice["message"],
            "6 log lines dropped: stdout is not being read"
        );
        assert_eq!(lines[11..], ["after"], "{text}");
    }

    #[test]
    fn a_flush_reports_drops_nothing_came_after() {
        let gate = Gate::default();
        let log = LogBuffer::with_capacity(Format::Pretty, Box::new(gate.clone()), 20).unwrap();
        assert!(log.push(line(0)));
        assert!(log.push(line(1)));
        assert!(!log.push(line(2)));
        gate.open();
        assert!(log.flush(Duration::from_secs(10)));
        let text = gate.text();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.contains("1 log line dropped: stdout is not being read"),
            "{text}"
        );
        assert_eq!(log.dropped(), 1);
    }

    #[test]
    fn an_oversized_line_still_goes_through_an_empty_buffer() {
        let gate = Gate::default();
        gate.open();
        let log = LogBuffer::with_capacity(Format::Json, Box::new(gate.clone()), 8).unwrap();
        assert!(log.push("a line longer than the bound".into()));
        assert!(log.flush(Duration::from_secs(10)));
        assert_eq!(gate.text(), "a line longer than the bound\n");
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
