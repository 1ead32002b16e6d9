//! What the live log's queue ([`super::log`]) and the recording's ([`super::spool`]) share:
//! a queue state behind a lock, drained by one writer thread, the two signals between the
//! callers and that thread, and the bounded wait until the writer has caught up. What is
//! queued, the bound and what happens past it stay with each queue: the live log drops and
//! counts, the recording makes its callers wait.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Queue state `S` shared by its callers and its one writer thread.
#[derive(Debug, Default)]
pub struct Drain<S> {
    state: Mutex<S>,
    /// Signalled when something is queued.
    queued: Condvar,
    /// Signalled when the writer has written something and freed its space.
    written: Condvar,
}

impl<S> Drain<S> {
    /// The state (a panic elsewhere while it was held does not make it unusable).
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caller side: wakes the writer after queueing.
    pub fn wake_writer(&self) {
        self.queued.notify_one();
    }

    /// Writer side: releases `state` until a caller wakes the writer, and takes it back.
    pub fn wait_queued<'a>(&self, state: MutexGuard<'a, S>) -> MutexGuard<'a, S> {
        self.queued.wait(state).unwrap_or_else(|e| e.into_inner())
    }

    /// Writer side: wakes every [`Drain::flush`] after writing.
    pub fn notify_written(&self) {
        self.written.notify_all();
    }

    /// Waits at most `wait` until `pending` is false of the state; whether it became so.
    pub fn flush(
        &self,
        mut state: MutexGuard<'_, S>,
        wait: Duration,
        pending: impl Fn(&S) -> bool,
    ) -> bool {
        let deadline = Instant::now() + wait;
        while pending(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .written
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}
