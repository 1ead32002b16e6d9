//! The queue between a connection and one socket's lane ([`super::lane`]), and the lane's
//! parking place while it has nothing to do. Unbounded in count (the connection bounds it in
//! bytes, docs/protocol.md §14 decision 21), one worker at a time, and closed when the sending
//! side is dropped.
//!
//! An idle socket holds no task and no buffers: its worker (the lane's state) waits parked in
//! the queue, and the item that finds it parked starts it ([`Worker::start`], a task of its
//! own). The worker takes items in order and parks itself again once the queue is empty, so a
//! socket costs a task only while it has events in flight, and the queue's memory is given
//! back each time it empties.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// What works through a queue: started when an item arrives while it is parked.
pub trait Worker: Sized {
    type Item;
    /// Begins working through `queue` (typically spawns a task that calls [`Receiver::take`]
    /// until it is told to park).
    fn start(self, queue: Receiver<Self>);

    /// Slots the emptied queue keeps while this worker is parked: none by default, so an idle
    /// queue holds no memory; a worker that expects more items soon may keep one.
    fn idle_slots(&self) -> usize {
        0
    }
}

struct State<W: Worker> {
    items: VecDeque<W::Item>,
    /// The worker while nobody runs it.
    parked: Option<W>,
    /// The sender is gone: the worker ends once the queue is empty.
    closed: bool,
    /// The worker ended: later items are given back.
    ended: bool,
}

struct Shared<W: Worker>(Mutex<State<W>>);

impl<W: Worker> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connection's end. Dropping it closes the queue.
pub struct Sender<W: Worker>(Arc<Shared<W>>);

impl<W: Worker> std::fmt::Debug for Sender<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("queue::Sender")
    }
}

/// The running worker's end; only one exists at a time.
pub struct Receiver<W: Worker> {
    shared: Arc<Shared<W>>,
    /// The worker parked through this receiver (so it did not end).
    parked: bool,
}

/// What [`Receiver::take`] found.
pub enum Next<T> {
    Item(T),
    /// Nothing queued: the worker should [`Receiver::park`].
    Empty,
    /// Nothing queued and the sender is gone: the worker ends.
    Closed,
}

/// A new, empty queue with `worker` parked in it.
pub fn queue<W: Worker>(worker: W) -> Sender<W> {
    Sender(Arc::new(Shared(Mutex::new(State {
        items: VecDeque::new(),
        parked: Some(worker),
        closed: false,
        ended: false,
    }))))
}

impl<W: Worker> Sender<W> {
    /// Queues `item`, starting the worker if it is parked. Gives the item back when the worker
    /// has ended.
    pub fn send(&self, item: W::Item) -> Result<(), W::Item> {
        let start = {
            let mut state = self.0.lock();
            if state.ended {
                return Err(item);
            }
            state.items.push_back(item);
            state.parked.take()
        };
        if let Some(worker) = start {
            worker.start(Receiver {
                shared: self.0.clone(),
                parked: false,
            });
        }
        Ok(())
    }
}

impl<W: Worker> Drop for Sender<W> {
    fn drop(&mut self) {
        // A parked worker ends here (its own `Drop` runs); a running one ends once it has taken
        // what is queued.
        let parked = {
            let mut state = self.0.lock();
            state.closed = true;
            if state.parked.is_some() {
                state.ended = true;
            }
            state.parked.take()
        };
        drop(parked);
    }
}

impl<W: Worker> Receiver<W> {
    /// The next item in order, or why there is none.
    pub fn take(&mut self) -> Next<W::Item> {
        let mut state = self.shared.lock();
        match state.items.pop_front() {
            Some(item) => Next::Item(item),
            None if state.closed => Next::Closed,
            None => Next::Empty,
        }
    }

    /// Parks `worker` until the next item, giving back the queue's memory beyond its
    /// [`Worker::idle_slots`]. Gives the worker
    /// back when an item arrived (or the sender left) since [`Self::take`] found none: it goes
    /// on.
    pub fn park(mut self, worker: W) -> Result<(), (Self, W)> {
        {
            let mut state = self.shared.lock();
            if !state.items.is_empty() || state.closed {
                drop(state);
                return Err((self, worker));
            }
            state.items.shrink_to(worker.idle_slots());
            state.parked = Some(worker);
        }
        self.parked = true;
        Ok(())
    }
}

impl<W: Worker> Drop for Receiver<W> {
    fn drop(&mut self) {
        if self.parked {
            return;
        }
        // The worker ended (or its task was dropped): nothing will take what is queued.
        let items = {
            let mut state = self.shared.lock();
            state.ended = true;
            std::mem::take(&mut state.items)
        };
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Started = Arc<Mutex<Option<Receiver<Recorder>>>>;

    /// A worker that records what it takes, run by hand instead of in a task.
    struct Recorder {
        seen: Arc<Mutex<Vec<u8>>>,
        started: Started,
    }

    impl Worker for Recorder {
        type Item = u8;
        fn start(self, queue: Receiver<Self>) {
            *self.started.lock().unwrap() = Some(queue);
        }
    }

    fn recorder() -> (Recorder, Arc<Mutex<Vec<u8>>>, Started) {
        let (seen, started) = (Arc::default(), Arc::default());
        let worker = Recorder {
            seen: Arc::clone(&seen),
            started: Arc::clone(&started),
        };
        (worker, seen, started)
    }

    fn worker_of(seen: &Arc<Mutex<Vec<u8>>>, started: &Started) -> Recorder {
        Recorder {
            seen: seen.clone(),
            started: started.clone(),
        }
    }

    /// Takes items until the queue is empty; then parks (true) or ends (false).
    fn work(mut queue: Receiver<Recorder>, mut worker: Recorder) -> bool {
        loop {
            match queue.take() {
                Next::Item(item) => worker.seen.lock().unwrap().push(item),
                Next::Closed => return false,
                Next::Empty => match queue.park(worker) {
                    Ok(()) => return true,
                    Err((q, w)) => (queue, worker) = (q, w),
                },
            }
        }
    }

    fn take(started: &Started) -> Option<Receiver<Recorder>> {
        started.lock().unwrap().take()
    }

    #[test]
    fn an_item_starts_the_parked_worker_which_parks_again_when_the_queue_is_empty() {
        let (worker, seen, started) = recorder();
        let tx = queue(worker);
        assert!(take(&started).is_none(), "idle: nothing runs");
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let rx = take(&started).expect("the first item started it");
        assert!(take(&started).is_none(), "one worker at a time");
        assert!(
            work(rx, worker_of(&seen, &started)),
            "parks: the sender is there"
        );
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
        assert_eq!(tx.0.lock().items.capacity(), 0, "memory given back");
        tx.send(3).unwrap();
        let rx = take(&started).expect("started again");
        assert!(work(rx, worker_of(&seen, &started)));
        assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn a_worker_takes_what_is_queued_then_ends_once_the_sender_left() {
        let (worker, seen, started) = recorder();
        let tx = queue(worker);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let rx = take(&started).unwrap();
        drop(tx);
        assert!(!work(rx, worker_of(&seen, &started)), "closed: it ends");
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn items_for_a_worker_that_ended_come_back() {
        let (worker, _, started) = recorder();
        let tx = queue(worker);
        tx.send(1).unwrap();
        drop(take(&started));
        assert_eq!(tx.send(9), Err(9));
    }

    #[test]
    fn park_refuses_when_an_item_arrived_after_take_found_none() {
        let (worker, seen, started) = recorder();
        let tx = queue(worker);
        tx.send(1).unwrap();
        let mut rx = take(&started).unwrap();
        assert!(matches!(rx.take(), Next::Item(1)));
        assert!(matches!(rx.take(), Next::Empty));
        tx.send(2).unwrap();
        assert!(take(&started).is_none(), "not parked: nothing started");
        let Err((mut rx, _)) = rx.park(worker_of(&seen, &started)) else {
            panic!("parked over a queued item");
        };
        assert!(matches!(rx.take(), Next::Item(2)));
    }

    /// A worker that keeps one slot while parked, run at once where it is started.
    struct Keeper;

    impl Worker for Keeper {
        type Item = u8;
        fn start(self, mut queue: Receiver<Self>) {
            while let Next::Item(_) = queue.take() {}
            assert!(queue.park(self).is_ok());
        }
        fn idle_slots(&self) -> usize {
            1
        }
    }

    #[test]
    fn a_parked_worker_keeps_the_slots_it_asks_for() {
        let tx = queue(Keeper);
        for item in 0..8 {
            tx.send(item).unwrap();
        }
        assert_eq!(tx.0.lock().items.capacity(), 1, "one slot kept");
        assert!(tx.0.lock().parked.is_some());
    }

    #[test]
    fn dropping_the_sender_of_a_parked_worker_ends_it() {
        let (worker, _, _) = recorder();
        let tx = queue(worker);
        let shared = tx.0.clone();
        drop(tx);
        let state = shared.lock();
        assert!(state.ended && state.parked.is_none());
    }
}
