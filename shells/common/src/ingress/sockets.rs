//! The listener's side of the core's [`ClientSockets`]: one table per gateway, touched when a
//! connection is accepted, authenticated or closed (never per request or per event).
//!
//! Each served connection's socket carries a [`ClientSlot`]
//! ([`Prefixed::holding`](crate::io::Prefixed::holding)), so the slot is given back exactly when
//! the socket is dropped — by hyper, or by the session task the socket was upgraded to. An unauthenticated connection's task also holds the receiving end of its
//! eviction signal; the core picks whom to evict, this table fires the signal.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{Notify, oneshot};
use wsv2_core::errors::GatewayError;
use wsv2_core::ingress::{AcceptError, AcceptNext, Admit, ClientConnId, ClientSockets};

/// The core's machine and the eviction signals of the unauthenticated connections
#[derive(Debug)]
pub(crate) struct SocketTable {
    inner: Mutex<Inner>,
    /// A socket on its way out closed (the accept loop may be waiting for one)
    closed: Notify,
}

#[derive(Debug)]
struct Inner {
    machine: ClientSockets,
    /// One per unauthenticated connection (at most `max_unauthenticated`)
    evict: HashMap<ClientConnId, oneshot::Sender<()>>,
}

/// What the accept loop does with a connection
pub(crate) enum Accepted {
    /// Serve it; `evicted` fires if a newer connection takes its place before it authenticates
    Serve {
        slot: ClientSlot,
        evicted: Eviction,
        /// The older connection closed to make room for this one
        displaced: Option<ClientConnId>,
    },
    /// Write the answer and close; the guard gives the refusal's place back when dropped
    Refuse(GatewayError, RefusalGuard),
}

impl SocketTable {
    pub(crate) fn new(machine: ClientSockets) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                machine,
                evict: HashMap::new(),
            }),
            closed: Notify::new(),
        })
    }

    /// Returns once the listener may accept (at once, unless too many sockets are on their way
    /// out)
    pub(crate) async fn ready_to_accept(&self) {
        loop {
            let closed = self.closed.notified();
            if self.lock().machine.may_accept() {
                return;
            }
            closed.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides about a connection just accepted (and fires the eviction it calls for)
    pub(crate) fn accept(self: &Arc<Self>) -> Accepted {
        let mut inner = self.lock();
        match inner.machine.handle_accepted() {
            Admit::Serve { conn, evict } => {
                let (tx, rx) = oneshot::channel();
                inner.evict.insert(conn, tx);
                let signal = evict.and_then(|old| inner.evict.remove(&old));
                drop(inner);
                if let Some(signal) = signal {
                    let _ = signal.send(());
                }
                Accepted::Serve {
                    slot: ClientSlot(ClientConn {
                        table: self.clone(),
                        conn,
                    }),
                    evicted: Eviction(rx),
                    displaced: evict,
                }
            }
            Admit::Refuse(answer) => Accepted::Refuse(answer, RefusalGuard(self.clone())),
        }
    }

    /// When to accept again after `accept` failed
    pub(crate) fn accept_failed(&self, now: Instant, error: AcceptError) -> AcceptNext {
        self.lock().machine.handle_accept_error(now, error)
    }

    fn closed(&self, conn: ClientConnId) {
        {
            let mut inner = self.lock();
            inner.evict.remove(&conn);
            inner.machine.handle_closed(conn);
        }
        self.closed.notify_waiters();
    }
}

/// Fires when the connection must give its place to a newer one
pub(crate) struct Eviction(oneshot::Receiver<()>);

impl Eviction {
    /// Resolves when evicted; never once the connection authenticated
    pub(crate) async fn fired(self) {
        if self.0.await.is_err() {
            // Authenticated (or the table is gone): never evicted any more.
            std::future::pending::<()>().await;
        }
    }
}

/// A served connection's place, given back when dropped
#[derive(Debug)]
pub(crate) struct ClientSlot(ClientConn);

impl ClientSlot {
    /// What a request handler needs to mark its connection authenticated
    pub(crate) fn handle(&self) -> ClientConn {
        self.0.clone()
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.table.closed(self.0.conn);
    }
}

/// A served connection, as its requests see it (a request extension)
#[derive(Clone, Debug)]
pub(crate) struct ClientConn {
    table: Arc<SocketTable>,
    conn: ClientConnId,
}

impl ClientConn {
    /// The connection presented a valid client key: it no longer gives way to newcomers
    pub(crate) fn authenticated(&self) {
        let mut inner = self.table.lock();
        inner.evict.remove(&self.conn);
        inner.machine.handle_authenticated(self.conn);
    }
}

/// A refused connection's place among the sockets on their way out, given back when dropped
pub(crate) struct RefusalGuard(Arc<SocketTable>);

impl Drop for RefusalGuard {
    fn drop(&mut self) {
        self.0.lock().machine.handle_refusal_done();
        self.0.closed.notify_waiters();
    }
}

/// How the accept loop treats an `accept` error
pub(crate) fn classify(error: &io::Error) -> AcceptError {
    use rustix::io::Errno;
    match Errno::from_io_error(error) {
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => {
            AcceptError::OutOfResources
        }
        Some(Errno::CONNABORTED | Errno::CONNRESET | Errno::PROTO | Errno::PERM) => {
            AcceptError::ConnectionGone
        }
        _ => AcceptError::Other,
    }
}
