//! The recording's way to its file (docs/protocol.md §14 decision 22: the `--record` file is
//! data, it never drops a line). Serialised lines go into a [`Spool`], a queue bounded in bytes
//! ([`RECORD_QUEUE_BYTES`]) that its own writer thread appends to the file. Queueing never
//! blocks the thread that serves: when the queue is past its bound, the session that queued the
//! line waits for room ([`Spool::room`]) before it takes more from its client, so only the
//! sessions whose lines wait are held up, by at most the line each queued meanwhile. The writer
//! writes what is queued in pieces of at most [`PIECE`] bytes (atomic on a pipe), so it always
//! knows how many lines and bytes reached the file; a write error is kept (the first one) for
//! the caller to report once; [`Spool::flush`] waits, for a bounded time, until every queued
//! line is in the file.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::drain::Drain;

/// How many bytes of serialised lines may wait for the file (including the batch being
/// written) before the sessions that queue more wait.
pub const RECORD_QUEUE_BYTES: usize = 4 << 20;
/// The largest single write: `PIPE_BUF` on Linux, so a write to a pipe is whole or not at all,
/// and the bytes counted as written are exactly the bytes the reader can see.
pub const PIECE: usize = 4096;

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Vec<u8>>,
    /// Bytes queued plus bytes of the batch being written and not yet written.
    used: usize,
    /// Lines queued plus lines of the batch not yet (wholly) written.
    waiting: u64,
    /// Lines and bytes that reached the file.
    written_lines: u64,
    written_bytes: u64,
    /// The first write error, until it is taken.
    error: Option<String>,
    /// Lines that could not be written.
    failed: u64,
}

#[derive(Debug)]
struct Shared {
    drain: Drain<State>,
    /// Signalled when bytes have been written (space freed), for the sessions waiting for room.
    room: Notify,
    /// Whether a write error has been seen (reported once).
    failed_once: AtomicBool,
    /// Whether the queue holds its bound (kept with `used`, read without the lock).
    full: AtomicBool,
    capacity: usize,
}

impl Shared {
    /// Frees `bytes` of the queue's bound.
    fn release(&self, state: &mut State, bytes: usize) {
        state.used = state.used.saturating_sub(bytes);
        self.full
            .store(state.used >= self.capacity, Ordering::Relaxed);
    }
}

/// Figures of the recording's queue (`GET /_emu/status`) and where its file stops.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoolStats {
    pub queued_bytes: usize,
    pub capacity_bytes: usize,
    /// Lines queued and not yet wholly in the file.
    pub waiting_lines: u64,
    pub written_lines: u64,
    pub written_bytes: u64,
    pub failed_lines: u64,
}

/// The bounded queue in front of the recording's writer thread.
#[derive(Debug)]
pub struct Spool {
    shared: Arc<Shared>,
}

impl Spool {
    /// Starts the writer thread appending to `out`, with a bound of `capacity` bytes.
    pub fn start(out: Box<dyn Write + Send>, capacity: usize) -> std::io::Result<Spool> {
        let shared = Arc::new(Shared {
            drain: Drain::default(),
            room: Notify::new(),
            failed_once: AtomicBool::new(false),
            full: AtomicBool::new(false),
            capacity,
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("sio-emu-record".into())
            .spawn(move || write_loop(&writer, out))?;
        Ok(Spool { shared })
    }

    /// Queues one line (newline included). Never waits: a caller that finds the queue past
    /// its bound afterwards ([`Spool::full`]) waits for [`Spool::room`] before queueing more.
    pub fn push(&self, line: Vec<u8>) {
        let shared = &self.shared;
        let mut state = shared.drain.lock();
        state.used += line.len();
        shared
            .full
            .store(state.used >= shared.capacity, Ordering::Relaxed);
        state.waiting += 1;
        state.queue.push_back(line);
        drop(state);
        shared.drain.wake_writer();
    }

    /// Whether the queue holds its bound or more.
    pub fn full(&self) -> bool {
        self.shared.full.load(Ordering::Relaxed)
    }

    /// Resolves once the queue is below its bound.
    pub async fn room(&self) {
        loop {
            let freed = self.shared.room.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if !self.full() {
                return;
            }
            freed.await;
        }
    }

    /// Waits until every queued line has been written (or has failed to be), for at most
    /// `wait`. Returns whether the queue emptied.
    pub fn flush(&self, wait: Duration) -> bool {
        let shared = &self.shared;
        shared
            .drain
            .flush(shared.drain.lock(), wait, |state| state.used > 0)
    }

    /// The first write error, once; `None` afterwards and while all is well.
    pub fn take_error(&self) -> Option<String> {
        if !self.shared.failed_once.load(Ordering::Relaxed) {
            return None;
        }
        self.shared.drain.lock().error.take()
    }

    /// The queue's figures now.
    pub fn stats(&self) -> SpoolStats {
        let state = self.shared.drain.lock();
        SpoolStats {
            queued_bytes: state.used,
            capacity_bytes: self.shared.capacity,
            waiting_lines: state.waiting,
            written_lines: state.written_lines,
            written_bytes: state.written_bytes,
            failed_lines: state.failed,
        }
    }
}

/// The writer thread: takes everything queued, writes it piece by piece, counting what reached
/// the file and freeing its space as it goes, repeats. Runs until the process exits;
/// [`Spool::flush`] is how shutdown waits for it.
fn write_loop(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        {
            let mut state = shared.drain.lock();
            while state.queue.is_empty() {
                state = shared.drain.wait_queued(state);
            }
            for line in state.queue.drain(..) {
                bytes.extend_from_slice(&line);
            }
        }
        let result = write_counted(shared, &mut *out, &bytes).and_then(|()| out.flush());
        if let Err(e) = result
            && !shared.failed_once.swap(true, Ordering::Relaxed)
        {
            shared.drain.lock().error = Some(e.to_string());
        }
        shared.drain.notify_written();
        shared.room.notify_waiters();
        if bytes.capacity() > 2 * shared.capacity {
            bytes = Vec::new();
        }
    }
}

/// Writes `bytes` in pieces of at most [`PIECE`], counting each written piece's bytes and
/// whole lines, and freeing its space, as soon as it is written. On an error the lines not
/// yet wholly written are counted as failed and their space freed.
fn write_counted(shared: &Shared, out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        let end = (done + PIECE).min(bytes.len());
        match out.write(&bytes[done..end]) {
            Ok(0) => return fail(shared, bytes, done, std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                let lines = memchr_count(&bytes[done..done + n]);
                done += n;
                let mut state = shared.drain.lock();
                shared.release(&mut state, n);
                state.written_bytes += n as u64;
                state.written_lines += lines;
                state.waiting = state.waiting.saturating_sub(lines);
                drop(state);
                shared.drain.notify_written();
                shared.room.notify_waiters();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return fail(shared, bytes, done, e),
        }
    }
    Ok(())
}

/// Counts the rest of a batch (from `done`) as failed lines and frees its space.
fn fail(shared: &Shared, bytes: &[u8], done: usize, e: std::io::Error) -> std::io::Result<()> {
    let rest = &bytes[done..];
    let lines = memchr_count(rest).max(1);
    let mut state = shared.drain.lock();
    shared.release(&mut state, rest.len());
    state.failed += lines;
    state.waiting = state.waiting.saturating_sub(lines);
    Err(e)
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A file that refuses every write, as a full disk does.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("no space left on device"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_reported_once_and_failed_lines_are_counted() {
        let spool = Spool::start(Box::new(Full), 1024).unwrap();
        spool.push(b"one\n".to_vec());
        assert!(spool.flush(WAIT));
        assert_eq!(
            spool.take_error().as_deref(),
            Some("no space left on device")
        );
        spool.push(b"two\n".to_vec());
        spool.push(b"three\n".to_vec());
        assert!(spool.flush(WAIT));
        assert_eq!(spool.take_error(), None, "reported once");
        assert_eq!(spool.stats().failed_lines, 3);
    }

    const WAIT: Duration = Duration::from_secs(10);

    /// A file that takes `open` bytes, then blocks until the test ends, as a pipe whose reader
    /// stopped does.
    struct Stuck {
        open: usize,
        release: std::sync::mpsc::Receiver<()>,
    }

    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.open == 0 {
                let _ = self.release.recv();
                return Err(std::io::Error::other("closed"));
            }
            let n = b.len().min(self.open);
            self.open -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_stuck_file_never_blocks_the_caller_and_says_where_it_stops() {
        let (_release, rx) = std::sync::mpsc::channel();
        let spool = Spool::start(
            Box::new(Stuck {
                open: 10,
                release: rx,
            }),
            8,
        )
        .unwrap();
        for line in ["aaaa\n", "bbbb\n", "cccc\n", "dddd\n"] {
            spool.push(line.as_bytes().to_vec());
        }
        assert!(spool.full(), "past the bound, and queueing did not wait");
        assert!(
            !spool.flush(Duration::from_millis(50)),
            "the flush gives up"
        );
        let deadline = Instant::now() + WAIT;
        while spool.stats().written_bytes < 10 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let stats = spool.stats();
        assert_eq!((stats.written_lines, stats.written_bytes), (2, 10));
        assert_eq!(stats.waiting_lines, 2);
        // Positive control: room comes as soon as the queue is below its bound.
        let spool = Arc::new(spool);
        let waiter = tokio::spawn({
            let spool = spool.clone();
            async move { spool.room().await }
        });
        drop(_release);
        tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
        assert_eq!(spool.stats().failed_lines, 2);
    }
}
