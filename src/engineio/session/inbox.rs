//! A session's input queue: bounded (a sender waits for room, `try_send` is refused when full),
//! one receiver (the session), closed by the receiver (then every send gives its value back
//! and [`Sender::closed`] resolves). The same contract as a tokio bounded channel, at a
//! fraction of its idle size: a tokio channel allocates a block of 32 slots and a
//! cache-padded head up front, about 1 KiB that every idle session would hold for its whole
//! life; this queue holds a few words until something is queued, and gives the memory of a
//! burst back once it is taken.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore, TryAcquireError};

/// Slots kept when the queue empties after a burst.
const IDLE_CAPACITY: usize = 4;

struct Shared<T> {
    items: Mutex<VecDeque<T>>,
    /// One permit per free slot; closed when the receiver closes.
    room: Semaphore,
    /// Holds a permit when something was queued since the receiver last looked.
    queued: Notify,
    /// Wakes [`Sender::closed`] when the receiver closes.
    gone: Notify,
}

impl<T> Shared<T> {
    fn items(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, item: T) {
        self.items().push_back(item);
        self.queued.notify_one();
    }
}

/// A sending end; clones share the queue.
pub(crate) struct Sender<T>(Arc<Shared<T>>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

/// The receiving end; dropping it closes the queue.
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

/// The queue was closed: the value comes back.
#[derive(Debug)]
pub(crate) struct SendError<T>(pub T);

/// Why `try_send` gave the value back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    Full(T),
    Closed(T),
}

impl<T> TrySendError<T> {
    pub(crate) fn into_inner(self) -> T {
        match self {
            TrySendError::Full(item) | TrySendError::Closed(item) => item,
        }
    }
}

/// A queue of at most `capacity` waiting values.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        items: Mutex::new(VecDeque::new()),
        room: Semaphore::new(capacity.max(1)),
        queued: Notify::new(),
        gone: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Waits for room and queues `item`; gives it back if the queue is closed.
    pub(crate) async fn send(&self, item: T) -> Result<(), SendError<T>> {
        match self.0.room.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.0.push(item);
                Ok(())
            }
            Err(_) => Err(SendError(item)),
        }
    }

    /// Queues `item` if there is room now.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        match self.0.room.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.0.push(item);
                Ok(())
            }
            Err(TryAcquireError::NoPermits) => Err(TrySendError::Full(item)),
            Err(TryAcquireError::Closed) => Err(TrySendError::Closed(item)),
        }
    }

    /// Resolves once the receiver has closed the queue.
    pub(crate) async fn closed(&self) {
        loop {
            // Created before the check: a close in between still wakes it.
            let gone = self.0.gone.notified();
            if self.0.room.is_closed() {
                return;
            }
            gone.await;
        }
    }
}

impl<T> Receiver<T> {
    /// The next value; `None` only once the queue is closed and empty.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.try_recv() {
                return Some(item);
            }
            if self.0.room.is_closed() {
                return None;
            }
            self.0.queued.notified().await;
        }
    }

    /// The next value if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let mut items = self.0.items();
        let item = items.pop_front()?;
        if items.is_empty() && items.capacity() > IDLE_CAPACITY {
            // A burst is over: give its memory back.
            items.shrink_to(IDLE_CAPACITY);
        }
        drop(items);
        if !self.0.room.is_closed() {
            self.0.room.add_permits(1);
        }
        Some(item)
    }

    /// Closes the queue: senders get their values back from now on; what is queued stays for
    /// [`Self::try_recv`].
    pub(crate) fn close(&mut self) {
        self.0.room.close();
        self.0.gone.notify_waiters();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_order_and_closed_by_the_receiver() {
        let (tx, mut rx) = channel::<u32>(2);
        tx.send(1).await.unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        // Taking one makes room for one.
        tx.try_send(3).unwrap();
        assert!(matches!(tx.try_send(4), Err(TrySendError::Full(4))));
        // A sender waiting for room gets its value back when the receiver closes.
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(5).await.map_err(|e| e.0) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let closed = tokio::spawn({
            let tx = tx.clone();
            async move { tx.closed().await }
        });
        rx.close();
        assert_eq!(waiting.await.unwrap(), Err(5));
        closed.await.unwrap();
        assert!(matches!(tx.try_send(6), Err(TrySendError::Closed(6))));
        // What was queued before the close is still taken, in order.
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn the_receiver_wakes_for_a_value_and_a_burst_gives_its_memory_back() {
        let (tx, mut rx) = channel::<u32>(256);
        let reader = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx)
        });
        tokio::task::yield_now().await;
        tx.send(7).await.unwrap();
        let (first, mut rx) = reader.await.unwrap();
        assert_eq!(first, Some(7));
        for i in 0..200 {
            tx.send(i).await.unwrap();
        }
        assert!(rx.0.items().capacity() >= 200);
        for i in 0..200 {
            assert_eq!(rx.try_recv(), Some(i));
        }
        assert!(rx.0.items().capacity() <= IDLE_CAPACITY);
        // Dropping the receiver closes the queue.
        drop(rx);
        tx.closed().await;
        assert!(tx.send(1).await.is_err());
    }
}
