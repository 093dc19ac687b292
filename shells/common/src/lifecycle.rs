//! Graceful shutdown: one signal per client socket, fired once for all of them, a count of the
//! sockets still open so shutdown can wait for them, and a count of what the grace cut.
//!
//! ```text
//!   Running ──begin_shutdown()──▶ ShuttingDown ──every socket ended | grace + linger──▶ (pool closed, exit)
//!      │                              │
//!      │ upgrades served              │ upgrades and /readyz answered 503; each session got
//!      │                              │ handle_shutdown: in-flight responses finish up to
//!      │                              │ session.shutdown_grace, then close 1012
//! ```
//!
//! Each socket gets its own oneshot receiver, so a session task polls only state of its own on
//! its per-event path; the shared registry is touched when a socket opens or ends, and once at
//! shutdown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::{oneshot, watch};

/// The shutdown state shared by the listener, the health routes and every socket
#[derive(Debug)]
pub(crate) struct Lifecycle {
    shutting_down: AtomicBool,
    next: AtomicU64,
    /// One sender per open socket; drained at shutdown
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    /// Open sockets (their [`ShutdownSignal`]s)
    open: watch::Sender<usize>,
    /// Responses that `shutdown_grace` cut, and the sockets they were on (counted as each
    /// socket ends, before it stops counting as open)
    responses_cut: AtomicUsize,
    sockets_cut: AtomicUsize,
}

impl Lifecycle {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            shutting_down: AtomicBool::new(false),
            next: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
            open: watch::channel(0).0,
            responses_cut: AtomicUsize::new(0),
            sockets_cut: AtomicUsize::new(0),
        })
    }

    /// Whether shutdown has begun (upgrades and readiness are refused from then on)
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// The signal of one new socket; counted open until it is dropped
    pub(crate) fn subscribe(self: &Arc<Self>) -> ShutdownSignal {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.open.send_modify(|n| *n += 1);
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if self.is_shutting_down() {
                // Subscribed after the broadcast: fire at once.
                let _ = tx.send(());
            } else {
                waiting.insert(id, tx);
            }
        }
        ShutdownSignal {
            id,
            rx: Some(rx),
            lifecycle: Arc::downgrade(self),
            cut_responses: 0,
        }
    }

    /// Fires every socket's signal; later subscribers fire at once
    pub(crate) fn begin_shutdown(&self) {
        let senders: Vec<oneshot::Sender<()>> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            self.shutting_down.store(true, Ordering::Release);
            waiting.drain().map(|(_, tx)| tx).collect()
        };
        for tx in senders {
            let _ = tx.send(());
        }
    }

    /// Sockets still open
    pub(crate) fn open_sockets(&self) -> usize {
        *self.open.borrow()
    }

    /// `(responses, sockets)` that `shutdown_grace` cut, over the sockets ended so far
    pub(crate) fn cut(&self) -> (usize, usize) {
        (
            self.responses_cut.load(Ordering::Acquire),
            self.sockets_cut.load(Ordering::Acquire),
        )
    }

    /// Resolves once no socket is open
    pub(crate) async fn all_closed(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// One socket's shutdown signal; dropping it counts the socket closed
#[derive(Debug)]
pub(crate) struct ShutdownSignal {
    id: u64,
    rx: Option<oneshot::Receiver<()>>,
    lifecycle: Weak<Lifecycle>,
    /// Responses of this socket that the grace cut
    cut_responses: usize,
}

impl ShutdownSignal {
    /// A signal that never fires and counts nothing
    pub(crate) fn never() -> Self {
        Self {
            id: u64::MAX,
            rx: None,
            lifecycle: Weak::new(),
            cut_responses: 0,
        }
    }

    /// One of this socket's responses was cut at `shutdown_grace` (counted when it ends)
    pub(crate) fn count_cut_response(&mut self) {
        self.cut_responses += 1;
    }

    /// Resolves once, when shutdown begins; pending forever after that (and if the gateway can
    /// no longer shut down). Cancel-safe, so a session task can select on it every turn.
    pub(crate) async fn requested(&mut self) {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        let fired = rx.await.is_ok();
        self.rx = None;
        if !fired {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for ShutdownSignal {
    fn drop(&mut self) {
        if let Some(lifecycle) = self.lifecycle.upgrade() {
            if self.cut_responses > 0 {
                lifecycle
                    .responses_cut
                    .fetch_add(self.cut_responses, Ordering::AcqRel);
                lifecycle.sockets_cut.fetch_add(1, Ordering::AcqRel);
            }
            lifecycle
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
            lifecycle.open.send_modify(|n| *n -= 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn every_signal_fires_once_and_all_closed_waits_for_the_last_drop() {
        let lifecycle = Lifecycle::new();
        let mut a = lifecycle.subscribe();
        let mut b = lifecycle.subscribe();
        assert_eq!(lifecycle.open_sockets(), 2);
        // Nothing fires before shutdown.
        let early = tokio::time::timeout(Duration::from_millis(10), a.requested()).await;
        assert!(early.is_err());
        lifecycle.begin_shutdown();
        assert!(lifecycle.is_shutting_down());
        a.requested().await;
        b.requested().await;
        // Fired once: the next wait pends.
        let again = tokio::time::timeout(Duration::from_millis(10), a.requested()).await;
        assert!(again.is_err());
        // A socket that subscribes after the broadcast is told at once.
        let mut late = lifecycle.subscribe();
        late.requested().await;
        drop((a, late));
        let waiting = tokio::time::timeout(Duration::from_millis(10), lifecycle.all_closed()).await;
        assert!(waiting.is_err(), "b is still open");
        drop(b);
        lifecycle.all_closed().await;
        assert_eq!(lifecycle.open_sockets(), 0);
    }
}
