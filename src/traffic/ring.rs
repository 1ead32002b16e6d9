//! The inspector's memory of recent traffic: one buffer of [`RING_BYTES`] bytes by default
//! (`serve --inspector-buffer`), allocated once, holding the latest hops as self-describing
//! records one after the other, wrapping around its end, each with an increasing `seq`.
//!
//! Serving pays one short lock, the encoding of the hop into a reused scratch buffer and one
//! copy into the ring: a fixed
//! header ([`RECORD_HEADER`] bytes: length, kind, flags, `seq`, time, the session clock), the
//! hop's timeline object as its `--format json` object without `time`, and, for the hops whose
//! session line or details hold more than that object, the rest as a second JSON object
//! ([`super::hop`]). No allocation per hop: an entry costs exactly its encoded length, every
//! text field counted in full whoever controls it, and the oldest records leave when a new one
//! needs their bytes, so the bound is the buffer's size however long the emulator runs.
//! Everything is already redacted when it is encoded ([`super::redact`]).
//!
//! Readers decode on their side ([`Kept`]): the timeline object, the session line of an export,
//! a webhook call's details. Each reader of the live stream reads the buffer at its own
//! [`Cursor`], a batch of a bounded number of bytes at a time: a page that cannot keep up
//! holds nothing in the service beyond its cursor, and loses the entries that the buffer
//! overwrote before it got to them (counted, and told with the next batch it gets; it goes on
//! from the newer half of the ring, whose records stay a while for their details); it never
//! slows the service (docs/protocol.md §14 decision 22).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::TrafficEvent;
use super::call_details::CallDetails;
use super::record::{RecordLine, RecordedEvent, RecordedResponse};
use super::rest_call::RestCall;

/// Default bound of the ring, in bytes.
pub const RING_BYTES: usize = 4 << 20;
/// Bytes of a record's fixed header: its length (4), kind (1), flags (1), padding (2), `seq`
/// (8), time in ms since the epoch (8), session clock (8), length of the timeline object (4),
/// padding (4).
pub const RECORD_HEADER: usize = 40;

/// A record's `kind` byte: what readers look for without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Other = 0,
    Webhook = 1,
    Rest = 2,
    Frame = 3,
    Lint = 4,
}

impl Kind {
    fn of(event: &TrafficEvent) -> Kind {
        match event {
            TrafficEvent::Webhook(_) => Kind::Webhook,
            TrafficEvent::Rest(_) => Kind::Rest,
            TrafficEvent::Frame { .. } => Kind::Frame,
            TrafficEvent::Lint { .. } => Kind::Lint,
            _ => Kind::Other,
        }
    }

    fn from_byte(b: u8) -> Kind {
        match b {
            1 => Kind::Webhook,
            2 => Kind::Rest,
            3 => Kind::Frame,
            4 => Kind::Lint,
            _ => Kind::Other,
        }
    }
}

const EXPORTED: u8 = 1;
const ON_TIMELINE: u8 = 2;

/// One remembered hop, decoded on the reader's side.
#[derive(Debug, Clone)]
pub struct Kept {
    pub seq: u64,
    /// When it happened.
    pub at: SystemTime,
    /// Its session line's clock reading (the recording's, or the ring's own).
    pub t: f64,
    pub kind: Kind,
    /// Its session line belongs in an export (not so for the inspector's own resends).
    pub exported: bool,
    /// Shown on the timeline.
    pub on_timeline: bool,
    /// The record's encoded bytes past its header: the timeline object, then the rest.
    bytes: Vec<u8>,
    view_len: usize,
}

impl Kept {
    /// The bytes the record takes in the ring.
    #[cfg(test)]
    fn cost(&self) -> usize {
        RECORD_HEADER + self.bytes.len()
    }

    fn object(&self) -> Option<Map<String, Value>> {
        serde_json::from_slice(&self.bytes[..self.view_len]).ok()
    }

    /// The timeline object: the hop's `--format json` object with `time` and `seq` (a client
    /// frame's `socketio` is filled in by whoever decodes it). `None` for hops that are not
    /// on the timeline.
    pub fn view(&self) -> Option<Value> {
        if !self.on_timeline {
            return None;
        }
        let mut object = self.object()?;
        let time = humantime::format_rfc3339_millis(self.at).to_string();
        object.insert("time".into(), time.into());
        object.insert("seq".into(), self.seq.into());
        Some(Value::Object(object))
    }

    /// The timeline object and what the session line and details add, as one object, with the
    /// line's `t` (and a webhook answer's latency) on the session clock.
    fn merged(&self) -> Option<Map<String, Value>> {
        let mut object = self.object()?;
        if self.bytes.len() > self.view_len {
            let rest: Map<String, Value> =
                serde_json::from_slice(&self.bytes[self.view_len..]).ok()?;
            object.extend(rest);
        }
        let started = object.get("started").and_then(Value::as_f64);
        let response = object.get_mut("response").and_then(Value::as_object_mut);
        let measured = response
            .as_ref()
            .and_then(|r| r.get("latencyMs"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let (t, latency) = match self.kind {
            Kind::Webhook => super::hop::call_times(started, self.t, measured),
            _ => (self.t, measured),
        };
        if let Some(response) = response {
            response.insert("latencyMs".into(), latency.into());
        }
        object.insert("t".into(), t.into());
        Some(object)
    }

    /// The session line an export writes for it, if it belongs in one (redacted like
    /// `--record`).
    pub fn line(&self) -> Option<RecordLine> {
        if !self.exported {
            return None;
        }
        serde_json::from_value(Value::Object(self.merged()?)).ok()
    }

    /// A webhook call's event, answer and details.
    pub fn webhook(&self) -> Option<KeptCall> {
        if self.kind != Kind::Webhook {
            return None;
        }
        let object = self.merged()?;
        let ce_id = object.get("ceId")?.as_str()?.to_owned();
        let ce_time =
            SystemTime::UNIX_EPOCH + Duration::from_nanos(object.get("ceTimeNs")?.as_u64()?);
        let answer_headers = object
            .get("answerHeaders")
            .and_then(|h| serde_json::from_value(h.clone()).ok());
        let RecordLine::Webhook {
            call,
            response,
            error,
            ..
        } = serde_json::from_value(Value::Object(object)).ok()?
        else {
            return None;
        };
        Some(KeptCall {
            call,
            response,
            error,
            details: CallDetails {
                ce_id,
                ce_time,
                answer_headers,
            },
        })
    }

    /// A REST call as the handler sent it, and how many connections it matched.
    pub fn rest(&self) -> Option<(RestCall, Option<usize>)> {
        if self.kind != Kind::Rest {
            return None;
        }
        let object = self.merged()?;
        let matched = object
            .get("matched")
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        let RecordLine::Rest { call, .. } = serde_json::from_value(Value::Object(object)).ok()?
        else {
            return None;
        };
        Some((call, matched))
    }
}

/// A webhook call as the ring kept it.
#[derive(Debug, Clone)]
pub struct KeptCall {
    pub call: RecordedEvent,
    pub response: Option<RecordedResponse>,
    pub error: Option<String>,
    pub details: CallDetails,
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

/// Where a reader is: the `seq` of the next record it reads and where that record starts
/// (or will start). Valid while that record is still in the ring.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    seq: u64,
    pos: usize,
}

/// What a reader takes at once: the entries, and how many left the ring before it got them.
#[derive(Debug, Default)]
pub struct Batch {
    pub dropped: u64,
    pub entries: Vec<Kept>,
}

/// The wake-up of one reader of the live stream.
#[derive(Default)]
struct Wake {
    notify: Notify,
    closed: AtomicBool,
}

struct State {
    buf: Box<[u8]>,
    /// Where the oldest record starts.
    head: usize,
    /// Bytes of the records kept, from `head` on (wrapping).
    used: usize,
    entries: usize,
    /// The `seq` of the oldest record (`last_seq + 1` when there is none).
    first_seq: u64,
    last_seq: u64,
    evicted: u64,
    readers: Vec<Arc<Wake>>,
    /// Where each record is encoded first.
    scratch: Vec<u8>,
}

impl State {
    fn capacity(&self) -> usize {
        self.buf.len()
    }

    fn tail(&self) -> usize {
        wrap(self.head + self.used, self.capacity())
    }

    /// Copies `bytes` into the buffer at `at`, wrapping at its end.
    fn copy_in(&mut self, at: usize, bytes: &[u8]) {
        let first = bytes.len().min(self.capacity() - at);
        self.buf[at..at + first].copy_from_slice(&bytes[..first]);
        self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
    }

    /// Copies `out.len()` bytes out of the buffer from `at`, wrapping at its end.
    fn copy_out(&self, at: usize, out: &mut [u8]) {
        let first = out.len().min(self.capacity() - at);
        out[..first].copy_from_slice(&self.buf[at..at + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.buf[..rest]);
    }

    fn header(&self, at: usize) -> [u8; RECORD_HEADER] {
        let mut header = [0u8; RECORD_HEADER];
        self.copy_out(at, &mut header);
        header
    }

    fn record_len(&self, at: usize) -> usize {
        let mut len = [0u8; 4];
        self.copy_out(at, &mut len);
        u32::from_le_bytes(len) as usize
    }

    fn evict_oldest(&mut self) {
        let len = self.record_len(self.head);
        self.head = wrap(self.head + len, self.capacity());
        self.used -= len;
        self.entries -= 1;
        self.first_seq += 1;
        self.evicted += 1;
    }

    /// The position of record `seq` (which must be in the ring), walking from the oldest.
    fn position(&self, seq: u64) -> usize {
        let mut at = self.head;
        for _ in self.first_seq..seq {
            at = wrap(at + self.record_len(at), self.capacity());
        }
        at
    }

    /// The record at `at`; of its bytes past the header, only the timeline object when
    /// `view_only` (what the live stream renders).
    fn read(&self, at: usize, view_only: bool) -> Kept {
        let header = self.header(at);
        let word = |range: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[range]);
            u64::from_le_bytes(b)
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let view_len = u32::from_le_bytes([header[32], header[33], header[34], header[35]]);
        let view_len = view_len as usize;
        let kept = if view_only {
            view_len
        } else {
            len - RECORD_HEADER
        };
        let mut bytes = vec![0u8; kept];
        self.copy_out(wrap(at + RECORD_HEADER, self.capacity()), &mut bytes);
        Kept {
            seq: word(8..16),
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(word(16..24)),
            t: f64::from_bits(word(24..32)),
            kind: Kind::from_byte(header[4]),
            exported: header[5] & EXPORTED != 0,
            on_timeline: header[5] & ON_TIMELINE != 0,
            bytes,
            view_len,
        }
    }
}

fn wrap(at: usize, capacity: usize) -> usize {
    if at >= capacity { at - capacity } else { at }
}

/// Where a record is encoded before it is copied into the ring in one piece: a buffer of the
/// state's, reused, that refuses to grow past the ring's size.
struct Scratch<'a> {
    buf: &'a mut Vec<u8>,
    limit: usize,
}

impl Write for Scratch<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + bytes.len() > self.limit {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write(bytes).map(|_| ())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the scratch buffer keeps between records (a larger record grows it for its own time).
const SCRATCH_BYTES: usize = 16 << 10;

/// The ring and the wake-ups of its readers. Shared through [`super::Traffic`].
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
    /// An empty ring of `capacity` bytes (allocated now, once).
    pub fn new(capacity: usize) -> Ring {
        Ring {
            state: Mutex::new(State {
                buf: vec![0u8; capacity].into_boxed_slice(),
                head: 0,
                used: 0,
                entries: 0,
                first_seq: 1,
                last_seq: 0,
                evicted: 0,
                readers: Vec::new(),
                scratch: Vec::with_capacity(SCRATCH_BYTES.min(capacity)),
            }),
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

    /// Encodes one hop (already redacted) into the ring, evicting the oldest records past the
    /// bound, and wakes the readers of the timeline when it is on it. `t` is its session
    /// line's clock reading; `exported` whether the line belongs in an export. Returns its
    /// `seq`. A hop whose encoding is larger than the whole ring is counted as evicted.
    pub fn push(&self, event: &TrafficEvent, t: f64, exported: bool) -> u64 {
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let on_timeline = event.on_timeline();
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        if state.capacity() == 0 {
            state.evicted += 1;
            state.first_seq = seq + 1;
            return seq;
        }
        let mut scratch = std::mem::take(&mut state.scratch);
        scratch.clear();
        let encoded = encode(
            &mut Scratch {
                buf: &mut scratch,
                limit: state.capacity(),
            },
            event,
        );
        match encoded {
            Ok(view_len) => {
                let len = scratch.len();
                let header = &mut scratch[..RECORD_HEADER];
                header[0..4].copy_from_slice(&(len as u32).to_le_bytes());
                header[4] = Kind::of(event) as u8;
                header[5] =
                    if exported { EXPORTED } else { 0 } | if on_timeline { ON_TIMELINE } else { 0 };
                header[8..16].copy_from_slice(&seq.to_le_bytes());
                header[16..24].copy_from_slice(&at.to_le_bytes());
                header[24..32].copy_from_slice(&t.to_bits().to_le_bytes());
                header[32..36].copy_from_slice(&(view_len as u32).to_le_bytes());
                while state.capacity() - state.used < len {
                    state.evict_oldest();
                }
                let tail = state.tail();
                state.copy_in(tail, &scratch);
                state.used += len;
                state.entries += 1;
                if state.entries == 1 {
                    state.first_seq = seq;
                }
            }
            Err(_) => {
                // Larger than the ring: it takes the place of everything, and is not kept.
                while state.entries > 0 {
                    state.evict_oldest();
                }
                state.evicted += 1;
                state.first_seq = seq + 1;
            }
        }
        if scratch.capacity() > SCRATCH_BYTES {
            scratch = Vec::with_capacity(SCRATCH_BYTES);
        }
        state.scratch = scratch;
        if on_timeline && !state.readers.is_empty() {
            state.readers.retain(|r| !r.closed.load(Ordering::Relaxed));
            for reader in &state.readers {
                reader.notify.notify_one();
            }
        }
        seq
    }

    /// The entry `seq`, if it is still in the ring.
    pub fn get(&self, seq: u64) -> Result<Kept, Missing> {
        let state = self.lock();
        if seq == 0 || seq > state.last_seq {
            return Err(Missing::Never);
        }
        if seq < state.first_seq {
            return Err(Missing::Gone);
        }
        Ok(state.read(state.position(seq), false))
    }

    /// A cursor at the first entry after `seq` (or where the next one will be).
    pub fn cursor_after(&self, seq: u64) -> Cursor {
        let state = self.lock();
        let next = (seq + 1).max(state.first_seq);
        if next > state.last_seq {
            return Cursor {
                seq: state.last_seq + 1,
                pos: state.tail(),
            };
        }
        Cursor {
            seq: next,
            pos: state.position(next),
        }
    }

    /// Entries from `cursor` on, worth at most `bytes` of the ring (at least one), moving the
    /// cursor past them; when `timeline`, only those on the timeline and only their timeline
    /// objects (enough for [`Kept::view`]). What left the ring
    /// before the cursor got to it is counted in `dropped`.
    pub fn read(&self, cursor: &mut Cursor, bytes: usize, timeline: bool) -> Batch {
        let state = self.lock();
        let mut batch = Batch::default();
        if cursor.seq < state.first_seq {
            let behind = cursor.seq;
            // Fallen behind: go on from the newer half of the ring, so that what the reader
            // gets next stays there a while (for its details), rather than from the oldest
            // records, the next to be overwritten.
            *cursor = Cursor {
                seq: state.first_seq,
                pos: state.head,
            };
            let mut ahead = state.used;
            while ahead > state.capacity() / 2 && cursor.seq < state.last_seq {
                let len = state.record_len(cursor.pos);
                ahead -= len;
                cursor.pos = wrap(cursor.pos + len, state.capacity());
                cursor.seq += 1;
            }
            batch.dropped = cursor.seq - behind;
        }
        let mut taken = 0;
        while cursor.seq <= state.last_seq && (taken == 0 || taken < bytes) {
            let len = state.record_len(cursor.pos);
            let wanted = !timeline || state.header(cursor.pos)[5] & ON_TIMELINE != 0;
            if wanted {
                if taken > 0 && taken + len > bytes {
                    break;
                }
                batch.entries.push(state.read(cursor.pos, timeline));
                taken += len;
            }
            cursor.pos = wrap(cursor.pos + len, state.capacity());
            cursor.seq += 1;
        }
        batch
    }

    /// The next entry after `cursor` (moving it past), if any: a reader walks the ring one
    /// entry at a time, holding one entry, never a copy of the whole.
    pub fn next(&self, cursor: &mut Cursor) -> Option<Kept> {
        self.read(cursor, 1, false).entries.pop()
    }

    /// The `seq` of the newest entry so far.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// A new reader of the timeline that gets every entry on it after `after` still in the
    /// ring, then each new one.
    pub fn subscribe(&self, after: u64) -> Subscriber {
        let cursor = self.cursor_after(after);
        let wake = Arc::new(Wake::default());
        // What is already there is there to read.
        wake.notify.notify_one();
        self.lock().readers.push(wake.clone());
        Subscriber {
            cursor: Mutex::new(cursor),
            wake,
        }
    }

    /// The figures of `GET /_emu/status`.
    pub fn stats(&self) -> RingStats {
        let mut state = self.lock();
        state.readers.retain(|r| !r.closed.load(Ordering::Relaxed));
        RingStats {
            entries: state.entries,
            bytes: state.used,
            capacity_bytes: self.capacity,
            evicted: state.evicted,
            first_seq: if state.entries == 0 {
                0
            } else {
                state.first_seq
            },
            last_seq: state.last_seq,
            subscribers: state.readers.len(),
        }
    }
}

/// Encodes the hop after the header: its timeline object, then (when it has one) the object of
/// what its session line and details add. Returns the timeline object's length.
fn encode(out: &mut Scratch<'_>, event: &TrafficEvent) -> std::io::Result<usize> {
    out.write_all(&[0u8; RECORD_HEADER])?;
    serde_json::to_writer(&mut *out, event)?;
    let view_len = out.buf.len() - RECORD_HEADER;
    event.write_kept(&mut *out)?;
    Ok(view_len)
}

/// One reader of the live stream: its cursor in the ring and its wake-up.
pub struct Subscriber {
    cursor: Mutex<Cursor>,
    wake: Arc<Wake>,
}

impl Subscriber {
    /// Waits until something is there, then takes entries worth at most `bytes` of the ring
    /// (at least one), with the count of those it lost.
    pub async fn next(&self, ring: &Ring, bytes: usize) -> Batch {
        loop {
            let notified = self.wake.notify.notified();
            let batch = {
                let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
                ring.read(&mut cursor, bytes, true)
            };
            if !batch.entries.is_empty() || batch.dropped > 0 {
                return batch;
            }
            notified.await;
        }
    }

    /// Stops deliveries to this subscriber (its stream ended).
    pub fn close(&self) {
        self.wake.closed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::hop::{
        Answer, Detail, HandshakeRecord, HeaderLines, INSPECTOR, RestHop, WebhookHop,
    };
    use super::super::record::{Direction, REDACTED};
    use super::super::rest_call::OperationName;
    use super::*;

    fn warning(text: &str) -> TrafficEvent<'static> {
        TrafficEvent::Warning {
            message: text.to_owned(),
            hint: None,
        }
    }

    /// An answer's header lines as a test writes them.
    struct Lines(&'static [(&'static str, &'static str)]);

    impl HeaderLines for Lines {
        fn each_line(&self, f: &mut dyn FnMut(&str, &[u8])) {
            for (name, value) in self.0 {
                f(name, value.as_bytes());
            }
        }
    }

    /// A webhook hop borrowing from data that lives as long as the test.
    fn webhook_hop(origin: Option<&'static str>) -> &'static WebhookHop<'static> {
        let headers: &'static Lines = &Lines(&[
            ("content-type", "text/plain"),
            ("set-cookie", "s1"),
            ("x-session-token", "s2"),
        ]);
        Box::leak(Box::new(WebhookHop {
            hub: "chat",
            event: "message",
            ce_type: "azure.webpubsub.user.message",
            namespace: "/",
            socket_id: "s1",
            connection_id: "c1",
            user_id: Some("ann"),
            body: "42[\"message\",\"é\\u0001\"]".as_bytes(),
            response: Some(Answer {
                status: 200,
                content_type: Some("text/plain".into()),
                body: b"43[\"ok\"]",
                latency_ms: 1.5,
            }),
            error: None,
            url: "http://127.0.0.1:1/api/events",
            attempts: 1,
            detail: Detail::Answer(b"43[\"ok\"]"),
            hint: Some("a hint".into()),
            origin,
            started: None,
            ce_id: "7",
            ce_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            answer_headers: Some(headers),
        }))
    }

    fn webhook(origin: Option<&'static str>) -> TrafficEvent<'static> {
        TrafficEvent::Webhook(webhook_hop(origin))
    }

    fn rest() -> TrafficEvent<'static> {
        let mut query = BTreeMap::new();
        query.insert("api-version".to_owned(), vec!["2024-01-01".to_owned()]);
        TrafficEvent::Rest(Box::new(RestHop {
            call: RestCall {
                method: http::Method::POST,
                operation: OperationName::SendToAll,
                hub: "chat".into(),
                path: "/api/hubs/chat/:send".into(),
                query,
                body: "{\"a\":1}".into(),
                status: 202,
            },
            target: "/api/hubs/chat/:send".into(),
            matched: Some(3),
            latency_ms: 0.25,
            message: None,
        }))
    }

    /// One of every hop kind that has a session line, and some that have none.
    fn every_kind() -> Vec<TrafficEvent<'static>> {
        vec![
            webhook(None),
            rest(),
            TrafficEvent::Handshake {
                hub: "chat".into(),
                connection_id: Some("c1".into()),
                transport: "websocket",
                user_id: None,
                refused: None,
                claims: None,
                recorded: Some(Box::new(HandshakeRecord {
                    route: "Chat".into(),
                    query: [("EIO".to_owned(), "4".to_owned())].into(),
                })),
            },
            TrafficEvent::Frame {
                hub: "chat",
                connection_id: "c1",
                direction: Direction::In,
                packet: "42[\"a\"]".into(),
            },
            TrafficEvent::Closed {
                hub: "chat".into(),
                connection_id: "c1".into(),
                reason: "transport close".into(),
            },
            TrafficEvent::Lint {
                rule: "ack-shape".into(),
                section: "§5".into(),
                message: "m".into(),
                hint: Some("h".into()),
            },
            TrafficEvent::Fault {
                rule: "r".into(),
                hub: "chat".into(),
                event: "message".into(),
                action: "drop".into(),
                detail: "d".into(),
            },
            warning("w"),
            TrafficEvent::ShuttingDown { connections: 2 },
        ]
    }

    #[test]
    fn every_hop_kind_round_trips() {
        let ring = Ring::new(1 << 20);
        for (i, event) in every_kind().into_iter().enumerate() {
            let t = 10.0 + i as f64;
            let seq = ring.push(&event, t, event.recorded());
            let kept = ring.get(seq).unwrap();
            assert_eq!(kept.seq, seq);
            assert_eq!(kept.line(), event.line(t), "{event:?}");
            let mut view = super::super::json::object(&event, kept.at);
            match kept.view() {
                Some(shown) => {
                    view["seq"] = seq.into();
                    assert_eq!(shown, view);
                }
                None => assert!(!event.on_timeline(), "{event:?}"),
            }
        }
        let webhook_seq = ring.push(&webhook(None), 1.0, true);
        let call = ring.get(webhook_seq).unwrap().webhook().unwrap();
        let hop = webhook_hop(None);
        let Some(RecordLine::Webhook {
            call: sent,
            response,
            ..
        }) = TrafficEvent::Webhook(hop).line(1.0)
        else {
            unreachable!()
        };
        assert_eq!(call.call, sent);
        assert_eq!(call.response, response);
        assert_eq!(call.details.ce_id, "7");
        assert_eq!(call.details.ce_time, hop.ce_time);
        // The answer's headers in its order, secret values redacted.
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            call.details.answer_headers,
            Some(pairs(&[
                ("content-type", "text/plain"),
                ("set-cookie", REDACTED),
                ("x-session-token", REDACTED)
            ]))
        );
        let rest_seq = ring.push(&rest(), 1.0, true);
        let (call, matched) = ring.get(rest_seq).unwrap().rest().unwrap();
        assert_eq!(call.body, "{\"a\":1}");
        assert_eq!(matched, Some(3));
    }

    #[test]
    fn the_inspectors_own_calls_are_kept_but_not_exported() {
        let ring = Ring::new(1 << 20);
        let event = webhook(Some(INSPECTOR));
        let seq = ring.push(&event, 1.0, event.recorded());
        let kept = ring.get(seq).unwrap();
        assert!(kept.line().is_none());
        assert_eq!(kept.view().unwrap()["origin"], "inspector");
        assert!(kept.webhook().is_some());
    }

    #[test]
    fn the_bound_holds_exactly_and_the_oldest_leave() {
        let capacity = 10_000;
        let ring = Ring::new(capacity);
        for i in 0..1000 {
            ring.push(&warning(&"x".repeat(i % 97)), 0.0, false);
            let stats = ring.stats();
            assert!(stats.bytes <= capacity, "{stats:?}");
            // What the ring says it holds is exactly the sum of its records.
            let mut cursor = ring.cursor_after(0);
            let mut sum = 0;
            let mut count = 0;
            while let Some(kept) = ring.next(&mut cursor) {
                sum += kept.cost();
                count += 1;
            }
            assert_eq!(sum, stats.bytes);
            assert_eq!(count, stats.entries);
            assert_eq!(stats.evicted as usize + stats.entries, i + 1);
        }
        let stats = ring.stats();
        assert!(
            capacity - stats.bytes < RECORD_HEADER + 200,
            "full: {stats:?}"
        );
        assert_eq!(ring.get(1).unwrap_err(), Missing::Gone);
        assert_eq!(ring.get(1001).unwrap_err(), Missing::Never);
        assert_eq!(ring.get(1000).unwrap().seq, 1000);
    }

    #[test]
    fn a_hostile_megabyte_is_counted_in_full() {
        let huge = "\u{1}".repeat(1 << 20);
        let ring = Ring::new(8 << 20);
        ring.push(&warning("before"), 0.0, false);
        let seq = ring.push(&warning(&huge), 0.0, false);
        let kept = ring.get(seq).unwrap();
        // Every control character is kept as its six-byte JSON escape: charged as such.
        assert!(kept.cost() > 6 << 20, "{}", kept.cost());
        assert_eq!(
            ring.stats().bytes,
            ring.get(1).unwrap().cost() + kept.cost()
        );
        assert_eq!(kept.view().unwrap()["message"], huge.as_str());
        // Larger than a whole ring: not kept, counted, and the ring stays usable.
        let small = Ring::new(1 << 20);
        small.push(&warning("before"), 0.0, false);
        let seq = small.push(&warning(&huge), 0.0, false);
        assert_eq!(small.get(seq).unwrap_err(), Missing::Gone);
        let stats = small.stats();
        assert_eq!((stats.entries, stats.bytes, stats.evicted), (0, 0, 2));
        let after = small.push(&warning("after"), 0.0, false);
        assert_eq!(
            small.get(after).unwrap().view().unwrap()["message"],
            "after"
        );
    }

    #[test]
    fn records_that_wrap_around_the_end_read_back_whole() {
        let ring = Ring::new(1000);
        for i in 0..200 {
            let text = format!("{i}:{}", "w".repeat(i % 50));
            let seq = ring.push(&warning(&text), 0.0, false);
            assert_eq!(ring.get(seq).unwrap().view().unwrap()["message"], text);
        }
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_backlog_then_new_entries() {
        let ring = Ring::new(1 << 20);
        ring.push(&warning("a"), 0.0, false);
        ring.push(&warning("b"), 0.0, false);
        let sub = ring.subscribe(1);
        ring.push(&warning("c"), 0.0, false);
        let batch = sub.next(&ring, usize::MAX).await;
        let seqs: Vec<u64> = batch.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![2, 3]);
        assert_eq!(batch.dropped, 0);
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_entries_counted() {
        let ring = Ring::new(1 << 20);
        let sub = ring.subscribe(0);
        let big = "y".repeat(64 * 1024);
        for _ in 0..100 {
            ring.push(&warning(&big), 0.0, false);
        }
        let batch = sub.next(&ring, usize::MAX).await;
        assert!(batch.dropped > 0);
        assert_eq!(batch.dropped as usize + batch.entries.len(), 100);
        // It goes on from the newer half of the ring, not from the next records to leave.
        assert!(
            batch.entries.len() <= (1 << 20) / 2 / (64 * 1024),
            "{}",
            batch.entries.len()
        );
        assert_eq!(batch.entries.last().map(|e| e.seq), Some(100));
        ring.push(&warning("z"), 0.0, false);
        let next = sub.next(&ring, usize::MAX).await;
        assert_eq!(next.dropped, 0);
        assert_eq!(next.entries.len(), 1);
    }

    #[tokio::test]
    async fn a_reader_takes_a_bounded_batch() {
        let ring = Ring::new(1 << 20);
        let seq = ring.push(&warning(&"y".repeat(1000)), 0.0, false);
        let one = ring.get(seq).unwrap().cost();
        let sub = ring.subscribe(seq);
        for _ in 0..10 {
            ring.push(&warning(&"y".repeat(1000)), 0.0, false);
        }
        let batch = sub.next(&ring, 2 * one + one / 2).await;
        assert_eq!(batch.entries.len(), 2, "two entries' worth");
        let rest = sub.next(&ring, usize::MAX).await;
        assert_eq!(rest.entries.len(), 8, "the rest stayed in the ring");
    }

    #[test]
    fn a_reader_walks_the_ring_one_entry_at_a_time() {
        let ring = Ring::new(2000);
        for _ in 0..30 {
            ring.push(&warning("x"), 0.0, false);
        }
        let first = ring.stats().first_seq;
        assert!(first > 1, "some left");
        let mut cursor = ring.cursor_after(0);
        assert_eq!(ring.next(&mut cursor).unwrap().seq, first);
        assert_eq!(ring.next(&mut cursor).unwrap().seq, first + 1);
        assert!(ring.next(&mut ring.cursor_after(30)).is_none());
        assert_eq!(ring.last_seq(), 30);
    }
}
