//! The inspector's memory of recent traffic: a ring of [`Entry`] values bounded in bytes
//! ([`RING_BYTES`] by default, `serve --inspector-buffer`), each with an increasing `seq`, and the
//! live subscribers of `GET /_emu/events`.
//!
//! An entry holds what was already rendered for it: the timeline object (the `--format json`
//! object plus `seq`), the session-file line (redacted like `--record`) when it belongs in an
//! export, and an optional typed attachment the layer that made it reads back for the entry's
//! details (the webhook call's `ce-id` and answer headers). The oldest entries leave when the
//! bound is reached, so memory stays bounded however long the emulator runs.
//!
//! Each subscriber has a queue of its own, bounded in bytes ([`SUBSCRIBER_BYTES`]): a page that
//! cannot keep up loses entries (counted, and told with the next one it gets), never slows the
//! service (docs/protocol.md §14 decision 22). Pushing costs one short lock and, per subscriber,
//! one more.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;

/// Default bound of the ring, in bytes of rendered text (plus [`ENTRY_OVERHEAD`] per entry).
pub const RING_BYTES: usize = 8 << 20;
/// Bound of one subscriber's queue of entries not yet sent, in bytes.
pub const SUBSCRIBER_BYTES: usize = 4 << 20;
/// What each entry is charged beyond its text: the entry itself and its attachment.
pub const ENTRY_OVERHEAD: usize = 160;

/// Typed details kept with an entry by the layer that made it.
pub type Attachment = Box<dyn Any + Send + Sync>;

/// One remembered hop.
pub struct Entry {
    pub seq: u64,
    /// When it happened.
    pub at: SystemTime,
    /// Shown on the timeline: it has a view, or its view is derived from its record (frames).
    pub timeline: bool,
    /// Its record belongs in an export (not so for the inspector's own resends).
    pub exported: bool,
    /// The timeline object (JSON, with `seq`), if the hop is shown on the timeline.
    pub view: Option<Box<str>>,
    /// The session-file line (JSON, redacted), if the hop belongs in an export.
    pub record: Option<Box<str>>,
    pub attachment: Option<Attachment>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("seq", &self.seq)
            .field("view", &self.view)
            .field("record", &self.record)
            .finish()
    }
}

impl Entry {
    fn size(&self) -> usize {
        ENTRY_OVERHEAD
            + self.view.as_ref().map_or(0, |v| v.len())
            + self.record.as_ref().map_or(0, |r| r.len())
    }
}

/// What a new entry carries; the ring gives it its `seq`.
pub struct NewEntry {
    /// The timeline object without its closing brace: the ring appends `,"seq":N}`.
    pub open_view: Option<String>,
    pub record: Option<String>,
    /// See [`Entry::timeline`]; entries with a view are always shown.
    pub timeline: bool,
    pub exported: bool,
    pub attachment: Option<Attachment>,
}

impl Default for NewEntry {
    fn default() -> Self {
        NewEntry {
            open_view: None,
            record: None,
            timeline: false,
            exported: true,
            attachment: None,
        }
    }
}

/// Why [`Ring::get`] found no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// There never was one with that `seq`.
    Never,
    /// It left the ring (its bytes were needed for newer entries).
    Gone,
}

/// Figures for `GET /_emu/status`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RingStats {
    pub entries: usize,
    pub bytes: usize,
    pub capacity_bytes: usize,
    pub evicted: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub subscribers: usize,
}

#[derive(Default)]
struct State {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    last_seq: u64,
    evicted: u64,
    subscribers: Vec<Arc<Subscriber>>,
}

/// The ring and its subscribers. Shared through [`super::Traffic`].
pub struct Ring {
    state: Mutex<State>,
    capacity: usize,
    start: Instant,
    started_at: SystemTime,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Ring {
    /// An empty ring keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Ring {
        Ring {
            state: Mutex::new(State::default()),
            capacity,
            start: Instant::now(),
            started_at: SystemTime::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the ring started: the `t` of exported lines when no `--record`
    /// clock is running.
    pub fn now_ms(&self) -> f64 {
        super::millis(self.start.elapsed())
    }

    /// When the ring started (the export's `startedAt`).
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Appends one entry, evicting the oldest past the bound, and hands it to every
    /// subscriber. Returns its `seq`.
    pub fn push(&self, new: NewEntry) -> u64 {
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        let view = new.open_view.map(|mut v| {
            let _ = write!(v, ",\"seq\":{seq}}}");
            v.into_boxed_str()
        });
        let entry = Arc::new(Entry {
            seq,
            at: SystemTime::now(),
            timeline: new.timeline || view.is_some(),
            exported: new.exported,
            view,
            record: new.record.map(String::into_boxed_str),
            attachment: new.attachment,
        });
        state.bytes += entry.size();
        while state.bytes > self.capacity {
            let Some(old) = state.entries.pop_front() else {
                break;
            };
            state.bytes -= old.size();
            state.evicted += 1;
        }
        if entry.timeline {
            state
                .subscribers
                .retain(|s| !s.closed.load(Ordering::Relaxed));
            for subscriber in &state.subscribers {
                subscriber.offer(&entry);
            }
        }
        if entry.size() <= self.capacity {
            state.entries.push_back(entry);
        }
        seq
    }

    /// The entry `seq`, if it is still in the ring.
    pub fn get(&self, seq: u64) -> Result<Arc<Entry>, Missing> {
        let state = self.lock();
        if seq == 0 || seq > state.last_seq {
            return Err(Missing::Never);
        }
        let index = state.entries.partition_point(|e| e.seq < seq);
        match state.entries.get(index) {
            Some(e) if e.seq == seq => Ok(e.clone()),
            _ => Err(Missing::Gone),
        }
    }

    /// Every entry still in the ring, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.lock().entries.iter().cloned().collect()
    }

    /// A new subscriber that gets every entry with a view after `after` still in the ring,
    /// then each new one.
    pub fn subscribe(&self, after: u64) -> Arc<Subscriber> {
        let mut state = self.lock();
        let subscriber = Arc::new(Subscriber::default());
        for entry in state.entries.iter().filter(|e| e.seq > after && e.timeline) {
            subscriber.offer(entry);
        }
        state.subscribers.push(subscriber.clone());
        subscriber
    }

    /// The figures of `GET /_emu/status`.
    pub fn stats(&self) -> RingStats {
        let mut state = self.lock();
        state
            .subscribers
            .retain(|s| !s.closed.load(Ordering::Relaxed));
        RingStats {
            entries: state.entries.len(),
            bytes: state.bytes,
            capacity_bytes: self.capacity,
            evicted: state.evicted,
            first_seq: state.entries.front().map_or(0, |e| e.seq),
            last_seq: state.last_seq,
            subscribers: state.subscribers.len(),
        }
    }
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    /// Dropped since the subscriber last took its queue.
    dropped: u64,
}

/// One reader of the live stream: a queue bounded in bytes, and a wake-up.
#[derive(Default)]
pub struct Subscriber {
    queue: Mutex<Queue>,
    notify: Notify,
    closed: AtomicBool,
}

/// What a subscriber takes at once: the entries, and how many were dropped before them.
#[derive(Debug, Default)]
pub struct Batch {
    pub dropped: u64,
    pub entries: Vec<Arc<Entry>>,
}

impl Subscriber {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn offer(&self, entry: &Arc<Entry>) {
        let size = entry.size();
        let mut queue = self.lock();
        if queue.bytes + size > SUBSCRIBER_BYTES {
            queue.dropped += 1;
        } else {
            queue.bytes += size;
            queue.entries.push_back(entry.clone());
        }
        drop(queue);
        self.notify.notify_one();
    }

    /// Waits until something is queued, then takes all of it.
    pub async fn next(&self) -> Batch {
        loop {
            let notified = self.notify.notified();
            {
                let mut queue = self.lock();
                if !queue.entries.is_empty() || queue.dropped > 0 {
                    queue.bytes = 0;
                    return Batch {
                        dropped: std::mem::take(&mut queue.dropped),
                        entries: queue.entries.drain(..).collect(),
                    };
                }
            }
            notified.await;
        }
    }

    /// Stops deliveries to this subscriber (its stream ended).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(text: &str) -> NewEntry {
        NewEntry {
            open_view: Some(format!("{{\"type\":\"{text}\"")),
            ..NewEntry::default()
        }
    }

    #[test]
    fn seq_is_appended_to_the_view() {
        let ring = Ring::new(1 << 20);
        assert_eq!(ring.push(view("a")), 1);
        let e = ring.get(1).unwrap();
        assert_eq!(e.view.as_deref(), Some("{\"type\":\"a\",\"seq\":1}"));
        assert_eq!(ring.get(2).unwrap_err(), Missing::Never);
    }

    #[test]
    fn the_oldest_entries_leave_at_the_bound() {
        let ring = Ring::new(10 * (ENTRY_OVERHEAD + 30));
        for _ in 0..100 {
            ring.push(view("x"));
        }
        let stats = ring.stats();
        assert!(stats.bytes <= stats.capacity_bytes);
        assert!(stats.entries < 15, "{stats:?}");
        assert_eq!(stats.evicted as usize + stats.entries, 100);
        assert_eq!(ring.get(1).unwrap_err(), Missing::Gone, "evicted");
        assert!(ring.get(100).is_ok());
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_backlog_then_new_entries() {
        let ring = Ring::new(1 << 20);
        ring.push(view("a"));
        ring.push(view("b"));
        let sub = ring.subscribe(1);
        ring.push(view("c"));
        let batch = sub.next().await;
        let seqs: Vec<u64> = batch.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![2, 3]);
        assert_eq!(batch.dropped, 0);
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_entries_counted() {
        let ring = Ring::new(64 << 20);
        let sub = ring.subscribe(0);
        let big = "y".repeat(64 * 1024);
        for _ in 0..100 {
            ring.push(view(&big));
        }
        let batch = sub.next().await;
        assert!(batch.dropped > 0);
        assert_eq!(batch.dropped as usize + batch.entries.len(), 100);
        ring.push(view("z"));
        let next = sub.next().await;
        assert_eq!(next.dropped, 0);
        assert_eq!(next.entries.len(), 1);
    }
}
