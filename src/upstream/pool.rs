//! The webhook connections kept alive between calls: per `host:port`, at most
//! [`POOL_MAX_IDLE_PER_HOST`] idle connections, each closed after [`POOL_IDLE_TIMEOUT`] unused
//! (by a small reaper task that runs only while some are idle). A call takes the most recently
//! used one (or connects), and gives it back once its answer was read in full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::time::Instant;

use super::client::{POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_HOST};
use super::http1::Conn;

/// The shared pool; cloning shares it.
#[derive(Debug, Clone, Default)]
pub(super) struct Pool {
    inner: Arc<Mutex<Idle>>,
    open: Arc<AtomicUsize>,
}

/// Counts one open connection for as long as it lives (see [`Pool::open`]).
#[derive(Debug)]
pub(super) struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Idle {
    by_addr: HashMap<Box<str>, Vec<(Conn, Instant)>>,
    /// A reaper task is running.
    reaping: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Idle> {
        // A panicking holder leaves at worst a connection too many: keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Webhook connections open now, idle or busy: what hyper's client kept as one task each,
    /// so the allocator trim (`server::trim`) still sees them come and go.
    pub(super) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A new connection to `addr`, counted in [`Pool::open`] while it lives.
    pub(super) async fn connect(&self, addr: &str) -> std::io::Result<Conn> {
        let conn = Conn::connect(addr).await?;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(conn.counted(OpenGuard(self.open.clone())))
    }

    /// The most recently used idle connection to `addr` that is not too old.
    pub(super) fn take(&self, addr: &str) -> Option<Conn> {
        let mut idle = self.lock();
        let conns = idle.by_addr.get_mut(addr)?;
        let now = Instant::now();
        while let Some((conn, since)) = conns.pop() {
            if now.duration_since(since) < POOL_IDLE_TIMEOUT {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next call to `addr`, unless enough are idle already.
    pub(super) fn put(&self, addr: &str, conn: Conn) {
        let mut idle = self.lock();
        let conns = match idle.by_addr.get_mut(addr) {
            Some(conns) => conns,
            None => idle.by_addr.entry(addr.into()).or_default(),
        };
        if conns.len() >= POOL_MAX_IDLE_PER_HOST {
            return;
        }
        conns.push((conn, Instant::now()));
        if !idle.reaping {
            idle.reaping = true;
            tokio::spawn(reap(Arc::downgrade(&self.inner)));
        }
    }

    /// Drops every idle connection to `addr` (one of them turned out closed by the webhook,
    /// most likely restarted: the others went with it).
    pub(super) fn forget(&self, addr: &str) {
        self.lock().by_addr.remove(addr);
    }

    /// Idle connections kept, all hosts together.
    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        self.lock().by_addr.values().map(Vec::len).sum()
    }
}

/// Closes connections idle for [`POOL_IDLE_TIMEOUT`]; ends when none are left (or the pool is
/// gone).
async fn reap(pool: Weak<Mutex<Idle>>) {
    loop {
        tokio::time::sleep(POOL_IDLE_TIMEOUT / 2).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let mut idle = pool.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for conns in idle.by_addr.values_mut() {
            conns.retain(|(_, since)| now.duration_since(*since) < POOL_IDLE_TIMEOUT);
        }
        idle.by_addr.retain(|_, conns| !conns.is_empty());
        if idle.by_addr.is_empty() {
            idle.reaping = false;
            return;
        }
    }
}
