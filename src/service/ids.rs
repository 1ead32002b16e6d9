//! Where the service's identifiers and event stamps come from: connection ids (the Engine.IO
//! sid), socket ids, and the `ce-id` / `ce-time` of each webhook call (docs/protocol.md §5.1, §14 decision 3).
//!
//! By default ids are random (20 URL-safe base64 characters from 15 random bytes, like
//! [`crate::engineio::random_id`]) and stamps come from the process-wide counter and the wall
//! clock. Under `serve --seed <N>` a seeded generator makes the ids and a per-service counter
//! makes the stamps (`ce-id` 1, 2, 3, …; `ce-time` a fixed epoch plus one second per event), so
//! the same requests in the same order produce the same ids. Concurrent clients can change that
//! order; determinism is promised for sequential scenarios only. The Socket.IO layer draws ids
//! here; the webhook client gets [`Ids::stamp_source`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::upstream::client::StampSource;
use crate::upstream::cloudevents::CeStamp;

/// `ce-time` of the first event under `--seed`: 2024-01-01T00:00:00Z.
const LOGICAL_EPOCH_SECS: u64 = 1_704_067_200;

/// The id and stamp source of one service.
#[derive(Debug)]
pub struct Ids {
    seeded: Option<Mutex<StdRng>>,
    events: AtomicU64,
}

impl Ids {
    /// Random ids, or seeded ones when `seed` is given.
    pub fn new(seed: Option<u64>) -> Arc<Ids> {
        Arc::new(Ids {
            seeded: seed.map(|s| Mutex::new(StdRng::seed_from_u64(s))),
            events: AtomicU64::new(0),
        })
    }

    /// Whether ids and stamps are deterministic.
    pub fn is_seeded(&self) -> bool {
        self.seeded.is_some()
    }

    /// A new connection or socket id: 20 URL-safe characters.
    pub fn next_id(&self) -> String {
        let Some(rng) = &self.seeded else {
            return crate::engineio::random_id();
        };
        let bytes: [u8; 15] = rng.lock().unwrap_or_else(|e| e.into_inner()).random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The next logical stamp: `ce-id` n and `ce-time` epoch + n seconds.
    pub fn stamp(&self) -> CeStamp {
        let n = self.events.fetch_add(1, Ordering::Relaxed) + 1;
        CeStamp::new(
            n.to_string(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(LOGICAL_EPOCH_SECS + n),
        )
    }

    /// The stamps for [`crate::upstream::Upstream::with_stamps`] when seeded; `None` keeps the
    /// client's default (process-wide counter, wall clock).
    pub fn stamp_source(self: &Arc<Self>) -> Option<StampSource> {
        let ids = self.clone();
        self.is_seeded()
            .then(|| -> StampSource { Arc::new(move || ids.stamp()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_repeat_and_random_ones_do_not() {
        let a = Ids::new(Some(7));
        let b = Ids::new(Some(7));
        let first: Vec<String> = (0..3).map(|_| a.next_id()).collect();
        let second: Vec<String> = (0..3).map(|_| b.next_id()).collect();
        assert_eq!(first, second);
        assert_ne!(first[0], first[1]);
        assert_eq!(first[0].len(), 20);
        assert!(
            first[0]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(Ids::new(Some(8)).next_id(), first[0]);
        let random = Ids::new(None);
        assert_ne!(random.next_id(), random.next_id());
        assert!(random.stamp_source().is_none());
    }

    #[test]
    fn logical_stamps() {
        let ids = Ids::new(Some(1));
        let source = ids.stamp_source().unwrap();
        let one = source();
        let two = source();
        assert_eq!((&*one.id, &*two.id), ("1", "2"));
        assert_eq!(
            crate::upstream::cloudevents::format_ce_time(one.time),
            "2024-01-01T00:00:01Z"
        );
    }
}
