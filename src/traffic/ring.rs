//! The inspector's memory of recent traffic: a ring of [`Entry`] values bounded in bytes
//! ([`RING_BYTES`] by default, `serve --inspector-buffer`), each with an increasing `seq`, and the
//! live subscribers of `GET /_emu/events`.
//!
//! An entry keeps the values as they were reported, not rendered: the traffic event (shown on
//! the timeline as its `--format json` object plus `seq`), the session line (already redacted
//! like `--record`) when it belongs in an export, and an optional typed attachment the layer
//! that made it reads back for the entry's details (the webhook call's `ce-id` and answer
//! headers). Rendering happens on the reader's side ([`Entry::view`]), so serving pays one
//! allocation and one short lock per hop. Each entry is charged what it keeps, every text field
//! whoever controls it ([`entry_cost`]); the oldest entries leave when the bound is reached, so
//! memory stays bounded however long the emulator runs.
//!
//! Each subscriber has a queue of its own, bounded in bytes by the same measure (the ring's
//! bound, at most [`SUBSCRIBER_BYTES`]): a page that cannot keep up loses entries (counted, and
//! told with the next one it gets), never slows the service (docs/protocol.md §14 decision 22).
//! Pushing costs one short lock and, per subscriber, one more.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;

use super::TrafficEvent;
use super::record::RecordLine;

/// Default bound of the ring, in estimated bytes of its entries.
pub const RING_BYTES: usize = 4 << 20;
/// The largest bound of one subscriber's queue of entries not yet sent, in bytes (a smaller
/// ring bounds it to its own size).
pub const SUBSCRIBER_BYTES: usize = 4 << 20;
/// What each entry is charged beyond its text fields: the entry itself (event, line, fixed
/// fields, its reference count, the allocator's share of it).
pub const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + 64;
/// The allocator's share of one heap string beyond its bytes, charged per text field.
const STRING_OVERHEAD: usize = 32;

/// One remembered hop.
pub struct Entry {
    pub seq: u64,
    /// When it happened.
    pub at: SystemTime,
    /// Its session line's clock reading (the recording's, or the ring's own).
    pub t: f64,
    /// Its session line belongs in an export (not so for the inspector's own resends).
    pub exported: bool,
    /// The hop, redacted as the recording redacts it.
    pub event: TrafficEvent,
    weight: usize,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("seq", &self.seq)
            .field("event", &self.event)
            .finish()
    }
}

impl Entry {
    /// Shown on the timeline.
    pub fn on_timeline(&self) -> bool {
        self.event.on_timeline()
    }

    /// The session line an export writes for it, if it belongs in one.
    pub fn line(&self) -> Option<RecordLine> {
        self.exported.then(|| self.event.line(self.t)).flatten()
    }

    /// What a reader of the timeline is charged for the entry while it waits: the larger of
    /// what it keeps and what it renders to (an estimate from its fields as JSON strings; a
    /// client frame shows its packet twice, as sent and decoded). Control characters render
    /// as six bytes each, so a namespace of them costs a reader six times its length.
    pub fn reader_cost(&self) -> usize {
        const OBJECT: usize = 256;
        let shown = match &self.event {
            TrafficEvent::Frame { .. } => 2 * event_measure(&self.event, &SHOWN),
            event => event_measure(event, &SHOWN),
        };
        self.weight.max(OBJECT + shown)
    }

    /// The timeline object: the event's `--format json` object with `seq` (a client frame's
    /// `socketio` is filled in by whoever decodes it).
    pub fn view(&self) -> Option<serde_json::Value> {
        if !self.on_timeline() {
            return None;
        }
        let mut value = super::json::object(&self.event, self.at);
        value.as_object_mut()?.insert("seq".into(), self.seq.into());
        Some(value)
    }
}

/// What a new entry carries; the ring gives it its `seq` and time.
pub struct NewEntry {
    /// The hop, already redacted.
    pub event: TrafficEvent,
    /// Its session line's clock reading.
    pub t: f64,
    pub exported: bool,
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
    /// subscriber when it is on the timeline. Returns its `seq`.
    pub fn push(&self, new: NewEntry) -> u64 {
        let weight = entry_cost(&new);
        let at = SystemTime::now();
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        let entry = Arc::new(Entry {
            seq,
            at,
            t: new.t,
            exported: new.exported,
            event: new.event,
            weight,
        });
        state.bytes += weight;
        while state.bytes > self.capacity {
            let Some(old) = state.entries.pop_front() else {
                break;
            };
            state.bytes -= old.weight;
            state.evicted += 1;
        }
        if entry.on_timeline() && !state.subscribers.is_empty() {
            state
                .subscribers
                .retain(|s| !s.closed.load(Ordering::Relaxed));
            let size = entry.reader_cost();
            for subscriber in &state.subscribers {
                subscriber.offer(&entry, size);
            }
        }
        if weight <= self.capacity {
            state.entries.push_back(entry);
        } else {
            state.bytes -= weight;
            state.evicted += 1;
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

    /// The oldest entry still in the ring after `seq`, if any: a reader walks the ring one
    /// entry at a time, holding one entry, never a copy of the whole.
    pub fn next_after(&self, seq: u64) -> Option<Arc<Entry>> {
        let state = self.lock();
        let index = state.entries.partition_point(|e| e.seq <= seq);
        state.entries.get(index).cloned()
    }

    /// The `seq` of the newest entry so far.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Every entry still in the ring, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.lock().entries.iter().cloned().collect()
    }

    /// A new subscriber that gets every entry with a view after `after` still in the ring,
    /// then each new one.
    pub fn subscribe(&self, after: u64) -> Arc<Subscriber> {
        let mut state = self.lock();
        let subscriber = Arc::new(Subscriber::new(self.capacity.min(SUBSCRIBER_BYTES)));
        for entry in state
            .entries
            .iter()
            .filter(|e| e.seq > after && e.on_timeline())
        {
            subscriber.offer(entry, entry.reader_cost());
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
    /// Each entry with what it is charged ([`Entry::reader_cost`]).
    entries: VecDeque<(Arc<Entry>, usize)>,
    bytes: usize,
    /// Dropped since the subscriber last took its queue.
    dropped: u64,
}

/// One reader of the live stream: a queue bounded in bytes (by [`Entry::reader_cost`], at most
/// the ring's own bound), and a wake-up.
pub struct Subscriber {
    queue: Mutex<Queue>,
    notify: Notify,
    closed: AtomicBool,
    capacity: usize,
}

/// What a subscriber takes at once: the entries, and how many were dropped before them.
#[derive(Debug, Default)]
pub struct Batch {
    pub dropped: u64,
    pub entries: Vec<Arc<Entry>>,
}

impl Subscriber {
    fn new(capacity: usize) -> Subscriber {
        Subscriber {
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn offer(&self, entry: &Arc<Entry>, size: usize) {
        let mut queue = self.lock();
        if queue.bytes + size > self.capacity {
            queue.dropped += 1;
        } else {
            queue.bytes += size;
            queue.entries.push_back((entry.clone(), size));
        }
        drop(queue);
        self.notify.notify_one();
    }

    /// Waits until something is queued, then takes entries worth at most `bytes` (at least
    /// one): what is taken no longer counts against the queue, so the caller bounds it.
    pub async fn next(&self, bytes: usize) -> Batch {
        loop {
            let notified = self.notify.notified();
            {
                let mut queue = self.lock();
                if !queue.entries.is_empty() || queue.dropped > 0 {
                    let mut batch = Batch {
                        dropped: std::mem::take(&mut queue.dropped),
                        entries: Vec::new(),
                    };
                    let mut taken = 0;
                    while let Some(&(_, size)) = queue.entries.front() {
                        if taken > 0 && taken + size > bytes {
                            break;
                        }
                        taken += size;
                        batch
                            .entries
                            .extend(queue.entries.pop_front().map(|(e, _)| e));
                    }
                    queue.bytes -= taken;
                    return batch;
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

/// How a text field is measured: by what it keeps ([`KEPT`]) or by what it renders to as JSON
/// on the timeline ([`SHOWN`]).
struct Measure(fn(&str) -> usize);

/// A field's bytes and the allocator's share of it.
const KEPT: Measure = Measure(|text| text.len() + STRING_OVERHEAD);
/// A field rendered as a JSON string: control characters become six-byte escapes, quotes and
/// backslashes two; a few bytes for its quotes and its key.
const SHOWN: Measure = Measure(|text| {
    let escaped: usize = text
        .bytes()
        .map(|b| match b {
            0..=0x1f => 5,
            b'"' | b'\\' => 1,
            _ => 0,
        })
        .sum();
    text.len() + escaped + 16
});

impl Measure {
    fn len(&self, text: &str) -> usize {
        (self.0)(text)
    }

    fn opt(&self, text: &Option<String>) -> usize {
        text.as_deref().map_or(0, |t| self.len(t))
    }

    fn map<'a>(&self, pairs: impl Iterator<Item = (&'a String, usize)>) -> usize {
        pairs.map(|(k, v)| self.len(k) + v + STRING_OVERHEAD).sum()
    }
}

/// The cost of one entry: everything its hop keeps (every text field, with the allocator's
/// share of each) plus the entry itself. The ring's bound, each reader's queue and each export
/// count entries by this one measure.
pub fn entry_cost(new: &NewEntry) -> usize {
    ENTRY_OVERHEAD + event_weight(&new.event)
}

/// The bytes a hop keeps: every text field, whoever controls it.
pub fn event_weight(event: &TrafficEvent) -> usize {
    event_measure(event, &KEPT)
}

fn event_measure(event: &TrafficEvent, m: &Measure) -> usize {
    use TrafficEvent as E;
    match event {
        E::Handshake {
            hub,
            connection_id,
            user_id,
            refused,
            claims,
            recorded,
            ..
        } => {
            m.len(hub)
                + m.opt(connection_id)
                + m.opt(user_id)
                + m.opt(refused)
                + claims.as_ref().map_or(0, |c| 2 * c.to_string().len())
                + recorded.as_ref().map_or(0, |r| {
                    m.len(&r.route) + m.map(r.query.iter().map(|(k, v)| (k, m.len(v))))
                })
        }
        E::Upgrade { hub, connection_id } => m.len(hub) + m.len(connection_id),
        E::ConnectionClosed {
            hub,
            connection_id,
            reason,
        }
        | E::Closed {
            hub,
            connection_id,
            reason,
        } => m.len(hub) + m.len(connection_id) + m.len(reason),
        E::NamespaceConnect {
            hub,
            connection_id,
            namespace,
            socket_id,
            refused,
        } => {
            m.len(hub) + m.len(connection_id) + m.len(namespace) + m.len(socket_id) + m.opt(refused)
        }
        E::Webhook(hop) => webhook_measure(hop, m),
        E::AckForwarded {
            hub,
            connection_id,
            namespace,
            packet,
        } => m.len(hub) + m.len(connection_id) + m.len(namespace) + m.len(packet),
        E::SocketDisconnected {
            hub,
            connection_id,
            namespace,
            socket_id,
            reason,
        } => {
            m.len(hub) + m.len(connection_id) + m.len(namespace) + m.len(socket_id) + m.len(reason)
        }
        E::Rest(hop) => {
            let call = &hop.call;
            m.len(&call.hub)
                + m.len(&call.path)
                + m.len(&call.body)
                + m.len(&hop.target)
                + m.opt(&hop.message)
                + m.map(call.query.iter().map(|(k, vs)| {
                    (
                        k,
                        vs.iter().map(|v| m.len(v)).sum::<usize>() + STRING_OVERHEAD,
                    )
                }))
        }
        E::Warning { message, hint } | E::Error { message, hint } => m.len(message) + m.opt(hint),
        E::Lint {
            rule,
            section,
            message,
            hint,
        } => m.len(rule) + m.len(section) + m.len(message) + m.opt(hint),
        E::LintSummary { rules, .. } => m.map(rules.keys().map(|k| (k, 16))),
        E::Fault {
            rule,
            hub,
            event,
            action,
            detail,
        } => m.len(rule) + m.len(hub) + m.len(event) + m.len(action) + m.len(detail),
        E::Admin {
            method,
            path,
            message,
            ..
        } => m.len(method) + m.len(path) + m.opt(message),
        E::Frame {
            hub,
            connection_id,
            packet,
            ..
        } => m.len(hub) + m.len(connection_id) + m.len(packet),
        E::ShuttingDown { .. } => 0,
    }
}

fn webhook_measure(hop: &super::hop::WebhookHop, m: &Measure) -> usize {
    let call = &hop.call;
    m.len(&call.hub)
        + m.len(&call.event)
        + m.len(&call.ce_type)
        + m.len(&call.namespace)
        + m.len(&call.socket_id)
        + m.len(&call.connection_id)
        + m.opt(&call.user_id)
        + m.len(&call.body)
        + hop
            .response
            .as_ref()
            .map_or(0, |r| m.len(&r.body) + m.opt(&r.content_type))
        + m.opt(&hop.error)
        + m.len(&hop.url)
        + m.len(&hop.detail)
        + m.opt(&hop.hint)
        + hop.details.text_len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(text: &str) -> NewEntry {
        NewEntry {
            event: TrafficEvent::Warning {
                message: text.to_owned(),
                hint: None,
            },
            t: 0.0,
            exported: false,
        }
    }

    #[test]
    fn the_view_is_the_json_object_with_seq_and_time() {
        let ring = Ring::new(1 << 20);
        assert_eq!(ring.push(view("a")), 1);
        let v = ring.get(1).unwrap().view().unwrap();
        assert_eq!(v["type"], "warning");
        assert_eq!(v["message"], "a");
        assert_eq!(v["seq"], 1);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(ring.get(2).unwrap_err(), Missing::Never);
    }

    #[test]
    fn the_oldest_entries_leave_at_the_bound() {
        let ring = Ring::new(10 * (ENTRY_OVERHEAD + 1));
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
        let batch = sub.next(usize::MAX).await;
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
        let batch = sub.next(usize::MAX).await;
        assert!(batch.dropped > 0);
        assert_eq!(batch.dropped as usize + batch.entries.len(), 100);
        ring.push(view("z"));
        let next = sub.next(usize::MAX).await;
        assert_eq!(next.dropped, 0);
        assert_eq!(next.entries.len(), 1);
    }

    #[test]
    fn a_reader_walks_the_ring_one_entry_at_a_time() {
        let ring = Ring::new(10 * (ENTRY_OVERHEAD + 64));
        for _ in 0..30 {
            ring.push(view("x"));
        }
        let first = ring.stats().first_seq;
        assert!(first > 1, "some left");
        assert_eq!(ring.next_after(0).unwrap().seq, first);
        assert_eq!(ring.next_after(first).unwrap().seq, first + 1);
        assert!(ring.next_after(30).is_none());
        assert_eq!(ring.last_seq(), 30);
    }

    #[tokio::test]
    async fn every_field_counts_and_a_reader_takes_a_bounded_batch() {
        let long = "u".repeat(45_000);
        let hop = |user: &str| TrafficEvent::Lint {
            rule: "r".into(),
            section: "s".into(),
            message: user.into(),
            hint: None,
        };
        assert!(event_weight(&hop(&long)) >= event_weight(&hop("")) + 45_000);
        let ring = Ring::new(1 << 20);
        ring.push(view(&"y".repeat(1000)));
        let one = ring.get(1).unwrap().reader_cost();
        let sub = ring.subscribe(1);
        for _ in 0..10 {
            ring.push(view(&"y".repeat(1000)));
        }
        let batch = sub.next(2 * one + one / 2).await;
        assert_eq!(batch.entries.len(), 2, "two entries' worth");
        let rest = sub.next(usize::MAX).await;
        assert_eq!(rest.entries.len(), 8, "the rest stayed queued");
    }

    #[test]
    fn a_reader_is_charged_what_an_entry_renders_to() {
        let ring = Ring::new(1 << 20);
        let frame = |packet: String| NewEntry {
            event: TrafficEvent::Frame {
                hub: "h".into(),
                connection_id: "c".into(),
                direction: super::super::record::Direction::In,
                packet,
            },
            t: 0.0,
            exported: true,
        };
        ring.push(frame(format!("40/{},", "a".repeat(10_000))));
        ring.push(frame(format!("40/{},", "\u{1}".repeat(10_000))));
        let plain = ring.get(1).unwrap();
        let controls = ring.get(2).unwrap();
        assert_eq!(plain.weight, controls.weight, "they keep the same bytes");
        assert!(plain.reader_cost() < 2 * 10_000 + 1000);
        // Positive control: rendered, the control characters really are that long.
        let shown = controls.view().unwrap().to_string().len();
        assert!(shown > 6 * 10_000, "{shown}");
        assert!(
            controls.reader_cost() >= shown,
            "{}",
            controls.reader_cost()
        );
    }
}
