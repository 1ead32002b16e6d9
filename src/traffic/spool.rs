//! The recording's way to its file (docs/protocol.md §14 decision 22: the `--record` file is data, it never drops a
//! line). Serialised lines go into a [`Spool`], a queue bounded in bytes
//! ([`RECORD_QUEUE_BYTES`]) that its own writer thread appends to the file. When the queue is
//! full, [`Spool::push`] waits for the writer: sessions slow down, lines are never lost. The
//! writer writes everything queued in one `write` and takes the next batch, so a slow disk
//! costs fewer system calls, not lines. A write error is kept (the first one) for the caller to
//! report once; [`Spool::flush`] waits until every queued line is in the file.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How many bytes of serialised lines may wait for the file (including the batch being
/// written) before recording callers wait.
pub const RECORD_QUEUE_BYTES: usize = 4 << 20;

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Vec<u8>>,
    /// Bytes queued plus bytes of the batch being written.
    used: usize,
    /// The first write error, until it is taken.
    error: Option<String>,
    /// Lines that could not be written.
    failed: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when a line is queued.
    queued: Condvar,
    /// Signalled when a batch has been written (space freed).
    written: Condvar,
    /// Whether a write error has been seen (reported once).
    failed_once: AtomicBool,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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
            state: Mutex::new(State::default()),
            queued: Condvar::new(),
            written: Condvar::new(),
            failed_once: AtomicBool::new(false),
            capacity,
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("sio-emu-record".into())
            .spawn(move || write_loop(&writer, out))?;
        Ok(Spool { shared })
    }

    /// Queues one line (newline included), waiting while the queue is full. A line larger than
    /// the whole bound waits for an empty queue.
    pub fn push(&self, line: Vec<u8>) {
        let shared = &self.shared;
        let mut state = shared.lock();
        while state.used > 0 && state.used + line.len() > shared.capacity {
            state = shared
                .written
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.used += line.len();
        state.queue.push_back(line);
        drop(state);
        shared.queued.notify_one();
    }

    /// Waits until every queued line has been written (or has failed to be).
    pub fn flush(&self) {
        let shared = &self.shared;
        let mut state = shared.lock();
        while state.used > 0 {
            state = shared
                .written
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The first write error, once; `None` afterwards and while all is well.
    pub fn take_error(&self) -> Option<String> {
        if !self.shared.failed_once.load(Ordering::Relaxed) {
            return None;
        }
        self.shared.lock().error.take()
    }

    /// Lines that could not be written so far.
    pub fn failed_lines(&self) -> u64 {
        self.shared.lock().failed
    }
}

/// The writer thread: takes everything queued, writes it in one go, frees its space, repeats.
/// Runs until the process exits; [`Spool::flush`] is how shutdown waits for it.
fn write_loop(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut bytes = Vec::new();
    loop {
        let lines: Vec<Vec<u8>> = {
            let mut state = shared.lock();
            while state.queue.is_empty() {
                state = shared.queued.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.queue.drain(..).collect()
        };
        bytes.clear();
        for line in &lines {
            bytes.extend_from_slice(line);
        }
        let result = out.write_all(&bytes).and_then(|()| out.flush());
        let mut state = shared.lock();
        state.used = state.used.saturating_sub(bytes.len());
        if let Err(e) = result {
            state.failed += lines.len() as u64;
            if !shared.failed_once.swap(true, Ordering::Relaxed) {
                state.error = Some(e.to_string());
            }
        }
        drop(state);
        shared.written.notify_all();
        if bytes.capacity() > 2 * shared.capacity {
            bytes = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        spool.flush();
        assert_eq!(
            spool.take_error().as_deref(),
            Some("no space left on device")
        );
        spool.push(b"two\n".to_vec());
        spool.push(b"three\n".to_vec());
        spool.flush();
        assert_eq!(spool.take_error(), None, "reported once");
        assert_eq!(spool.failed_lines(), 3);
    }
}
