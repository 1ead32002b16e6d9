//! The ledger of non-blocking events (`connected`, `disconnected`) that are owed to the webhook
//! but not yet delivered (docs/protocol.md §14 decision 23). An event is entered when it becomes due — while it may
//! still wait behind an earlier event of its socket — and leaves when the webhook accepts it.
//! One that exhausts its retries is moved to a bounded list of given-up events. At shutdown the
//! ledger names every event that did not reach the handler, so nothing is lost silently.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many given-up events are kept by name (all are counted).
pub const MAX_GIVEN_UP_NAMED: usize = 100;

#[derive(Debug, Default)]
struct Book {
    next: u64,
    /// Events owed now, by entry number (so they list in the order they became due).
    owed: BTreeMap<u64, String>,
    given_up: VecDeque<String>,
    given_up_total: u64,
}

/// The shared ledger; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    book: Arc<Mutex<Book>>,
}

/// One owed event. Dropping it settles the entry (delivered, or deliberately not sent).
#[derive(Debug)]
pub struct Owed {
    book: Arc<Mutex<Book>>,
    entry: u64,
}

/// What the ledger holds at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// Events still owed (waiting, in flight or between retries).
    pub owed: Vec<String>,
    /// Events dropped after their last retry (at most [`MAX_GIVEN_UP_NAMED`] named).
    pub given_up: Vec<String>,
    pub given_up_total: u64,
}

impl Undelivered {
    /// Nothing was lost.
    pub fn is_empty(&self) -> bool {
        self.owed.is_empty() && self.given_up_total == 0
    }
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters an event that is now owed; `what` names it for the shutdown summary.
    pub fn owe(&self, what: String) -> Owed {
        let mut book = self.lock();
        let entry = book.next;
        book.next += 1;
        book.owed.insert(entry, what);
        Owed {
            book: self.book.clone(),
            entry,
        }
    }

    /// Everything not delivered so far.
    pub fn undelivered(&self) -> Undelivered {
        let book = self.lock();
        Undelivered {
            owed: book.owed.values().cloned().collect(),
            given_up: book.given_up.iter().cloned().collect(),
            given_up_total: book.given_up_total,
        }
    }
}

impl Owed {
    /// The event was dropped after its last retry: it moves to the given-up list.
    pub fn give_up(self) {
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(what) = book.owed.remove(&self.entry) {
            book.given_up_total += 1;
            if book.given_up.len() == MAX_GIVEN_UP_NAMED {
                book.given_up.pop_front();
            }
            book.given_up.push_back(what);
        }
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        let mut book = self.book.lock().unwrap_or_else(|e| e.into_inner());
        book.owed.remove(&self.entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_until_settled_and_given_up_counted() {
        let ledger = Ledger::default();
        let a = ledger.owe("a".into());
        let b = ledger.owe("b".into());
        let c = ledger.owe("c".into());
        assert_eq!(ledger.undelivered().owed, ["a", "b", "c"]);
        drop(b);
        c.give_up();
        let now = ledger.undelivered();
        assert_eq!(now.owed, ["a"]);
        assert_eq!(now.given_up, ["c"]);
        assert_eq!(now.given_up_total, 1);
        drop(a);
        assert!(!ledger.undelivered().is_empty());
        assert!(ledger.undelivered().owed.is_empty());
    }

    #[test]
    fn given_up_names_are_bounded() {
        let ledger = Ledger::default();
        for i in 0..MAX_GIVEN_UP_NAMED + 5 {
            ledger.owe(i.to_string()).give_up();
        }
        let now = ledger.undelivered();
        assert_eq!(now.given_up.len(), MAX_GIVEN_UP_NAMED);
        assert_eq!(now.given_up_total, (MAX_GIVEN_UP_NAMED + 5) as u64);
        assert_eq!(now.given_up[0], "5");
    }
}
