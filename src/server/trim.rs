//! Hands memory back to the system after many sessions ended. The C allocator keeps freed
//! memory for reuse: after a disconnect storm (thousands of sessions closing, each sending its
//! `disconnected`) the freed blocks lie between the few that live on, so the top of the heap
//! cannot shrink and the process keeps its peak size. `malloc_trim(0)` gives every free page
//! back (to the kernel; the addresses stay reserved). Measured on 10,000 idle WebSocket clients
//! closing at once, with the inspector off: 126 MiB kept before, 50 MiB after one trim.
//!
//! It runs at a quiet moment after much has changed: once a second the runtime's count of live
//! tasks (sessions, lanes and their webhook calls, HTTP connections) plus open webhook
//! connections is read, and when it stayed
//! unchanged for a whole second after moving by at least [`TRIM_STEP`] in all since the last
//! trim (thousands of clients left, or arrived and settled: their handshakes' and first
//! webhook calls' memory is free again too), the heap is trimmed. A server whose count keeps
//! moving is not trimmed (its freed memory is reused by the next connections anyway); an idle
//! one wakes once a second to read a counter.

use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How far the live-task count must have moved since the last trim for the next one.
pub const TRIM_STEP: usize = 128;
/// How often the count is read; a count unchanged over one period is a quiet moment.
const PERIOD: Duration = Duration::from_secs(1);

/// The decision, apart from the clock and the allocator.
#[derive(Debug, Default)]
pub struct TrimWatch {
    /// The last reading.
    last: Option<usize>,
    /// How far the count moved, up and down, since the last trim.
    moved: usize,
}

impl TrimWatch {
    /// Takes one reading of the live-task count; true when the heap should be trimmed now.
    pub fn observe(&mut self, tasks: usize) -> bool {
        let previous = self.last.replace(tasks);
        let step = previous.map_or(0, |p| p.abs_diff(tasks));
        self.moved = self.moved.saturating_add(step);
        if previous.is_some() && step == 0 && self.moved >= TRIM_STEP {
            self.moved = 0;
            return true;
        }
        false
    }
}

/// Watches the current runtime until `stop` fires, trimming the heap after large drops.
/// `connections` counts what lives outside tasks but comes and goes with them (the webhook
/// client's open connections, driven on their callers' tasks); it is read with the task count.
pub async fn watch(stop: CancellationToken, connections: impl Fn() -> usize) {
    let metrics = Handle::current().metrics();
    let mut watch = TrimWatch::default();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if watch.observe(metrics.num_alive_tasks() + connections()) {
            release_free_memory();
        }
    }
}

/// Returns the allocator's free pages to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: `malloc_trim` takes a plain integer and only walks the allocator's own free
    // lists under its locks; it is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators give memory back on their own (or not at all): nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_the_count_settles_after_a_large_move() {
        let mut w = TrimWatch::default();
        // Thousands arrive: trimmed once when they have settled.
        for n in [10, 5_000, 10_000] {
            assert!(!w.observe(n), "{n}");
        }
        assert!(w.observe(10_000));
        assert!(!w.observe(10_000));
        // They leave: not while the count still falls, once when it stops.
        for n in [6_000, 2_000, 12] {
            assert!(!w.observe(n), "{n}");
        }
        assert!(w.observe(12));
        assert!(!w.observe(12));
        assert!(!w.observe(12));
    }

    #[test]
    fn small_moves_and_busy_servers_are_left_alone() {
        let (base, half, quarter) = (1_000, TRIM_STEP / 2, TRIM_STEP / 4);
        let mut w = TrimWatch::default();
        // Quiet moments, but less than TRIM_STEP of movement in all.
        for n in [
            base,
            base,
            base - half,
            base - half,
            base - quarter,
            base - quarter,
        ] {
            assert!(!w.observe(n), "{n}");
        }
        // Small moves add up: the next quiet moment trims.
        assert!(!w.observe(base));
        assert!(w.observe(base));
        // A count that never holds still is never trimmed.
        let mut w = TrimWatch::default();
        for n in [3_000, 2_000, 2_400, 1_000, 1_500, 3_000, 2_999] {
            assert!(!w.observe(n), "{n}");
        }
        assert!(w.observe(2_999));
    }
}
