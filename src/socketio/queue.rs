//! The queue between a connection and one socket's lane ([`super::lane`]): unbounded in count
//! (the connection bounds it in bytes, docs/protocol.md §14 decision 21), single consumer, and
//! closed when the sending side is dropped. Unlike a tokio channel it allocates nothing until a
//! step is queued and keeps only a few pointers while idle, so an idle socket costs little
//! memory: a tokio channel allocates a block of 32 slots up front.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The sender is gone: the receiver ends once the queue is empty.
    closed: bool,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Holds a permit when something was queued (or the sender left) since the last wait.
    ready: Notify,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connection's end. Dropping it closes the queue.
#[derive(Debug)]
pub struct Sender<T>(Arc<Shared<T>>);

/// The lane's end.
#[derive(Debug)]
pub struct Receiver<T>(Arc<Shared<T>>);

/// A new, empty queue.
pub fn queue<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            closed: false,
        }),
        ready: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queues `item`; the lane takes it in order. Gives it back when the lane has ended.
    pub fn send(&self, item: T) -> Result<(), T> {
        if Arc::strong_count(&self.0) < 2 {
            return Err(item);
        }
        self.0.lock().items.push_back(item);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_one();
    }
}

impl<T> Receiver<T> {
    /// The next item, or `None` once the sender is gone and everything was taken.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.0.lock();
                if let Some(item) = state.items.pop_front() {
                    if state.items.is_empty() && state.items.capacity() > IDLE_CAPACITY {
                        // A burst is over: give its memory back.
                        state.items.shrink_to(IDLE_CAPACITY);
                    }
                    return Some(item);
                }
                if state.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit when nobody waits, so nothing queued between the
            // check above and this wait is missed.
            self.0.ready.notified().await;
        }
    }
}

/// Slots an emptied queue keeps: one, so a socket sending one event at a time reuses it.
const IDLE_CAPACITY: usize = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_in_order_then_none_after_the_sender_left() {
        let (tx, mut rx) = queue();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_later_item() {
        let (tx, mut rx) = queue();
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.send(7).unwrap();
        assert_eq!(waiter.await.unwrap(), Some(7));
    }

    #[tokio::test]
    async fn sending_to_a_finished_lane_gives_the_item_back() {
        let (tx, rx) = queue::<u8>();
        drop(rx);
        assert_eq!(tx.send(3), Err(3));
    }
}
