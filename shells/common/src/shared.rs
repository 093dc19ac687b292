//! The driver's boundary types, in one leaf module (as quinn-proto's `shared.rs`): what the
//! control task is told ([`ControlMsg`]) and answers ([`Delivery`]),
//! how an account is reached ([`AccountDial`]), the headers a session adds to its dials
//! ([`DialHeaders`]), a store answer ([`StoreReply`]) and a client socket's place against its
//! key's cap ([`SocketPermit`]).
//!
//! The tasks that send and receive these (control, session, HTTP, store, listener) import this
//! module and not each other; it imports none of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio::sync::{mpsc, oneshot};
use wsv2_core::AccountId;
use wsv2_core::ConnId;
use wsv2_core::SessionId;
use wsv2_core::control::{DialFailure, UpgradeRefusal};
use wsv2_core::http::HttpInput;
use wsv2_core::ingress::{Admitted, ClientKeyId, ClientKeys};
use wsv2_core::pool::{Lease, PoolStats};
use wsv2_core::session::{SessionEvent, SessionRequest};
use wsv2_core::store::{OpId, StoreFailure};

use crate::lifecycle::ShutdownSignal;
use crate::upstream::{ConnIo, ConnReport, DialRoute, UpstreamMsg};
use wsv2_core::session::SessionInput;
use wsv2_core::turn::SessionInfo;

/// Sender side of the control task's inbox
pub(crate) type ControlTx = mpsc::Sender<ControlMsg>;

/// Sends the control task the request `request` builds around a reply channel and awaits the
/// answer; `None` when the control task is gone (shutting down)
pub(crate) async fn ask<T>(
    control: &ControlTx,
    request: impl FnOnce(oneshot::Sender<T>) -> ControlMsg,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    control.send(request(reply)).await.ok()?;
    answer.await.ok()
}

/// Everything the control task is told
pub(crate) enum ControlMsg {
    /// May a client upgrade now? (answered before the 101)
    Upgrade {
        reply: oneshot::Sender<Result<(), UpgradeRefusal>>,
    },
    /// Is the gateway ready (`/readyz`)?
    Ready {
        reply: oneshot::Sender<Result<(), UpgradeRefusal>>,
    },
    /// A session task started
    Open {
        id: SessionId,
        info: SessionInfo,
        headers: Arc<DialHeaders>,
        inbox: mpsc::Sender<Box<Delivery<SessionInput>>>,
    },
    /// A session's request (everything but `AbandonWrites` and `CloseClient`)
    Request {
        id: SessionId,
        request: SessionRequest,
    },
    /// A session's ended response (it feeds cooldowns and health)
    Event { event: SessionEvent },
    /// A session task ended
    Close { id: SessionId },
    /// A lease a session or HTTP task found unread in its inbox when it ended (the core sends it
    /// back to the pool: `Control::handle_unread_lease`)
    UnreadLease { lease: Lease },
    /// A report of a conn the control task owns (idle in its pool)
    Idle { msg: UpstreamMsg },
    /// A conn's reader ended: its handle can go and its capacity is free
    ConnGone { account: AccountId, conn: ConnId },
    /// A dial finished
    DialDone {
        account: AccountId,
        conn: ConnId,
        result: Result<ConnIo, DialFailure>,
    },
    /// Pool totals, for the demo and tests
    Stats { reply: oneshot::Sender<PoolStats> },
    /// Every account's readiness, for the admin listener's `/readyz`
    Readiness {
        reply: oneshot::Sender<wsv2_core::control::Readiness>,
    },
    /// An HTTP request's task started (before its first request)
    HttpOpen {
        id: SessionId,
        headers: Arc<DialHeaders>,
        inbox: mpsc::Sender<Box<Delivery<HttpInput>>>,
    },
    /// An HTTP turn's request (`Close` also forgets its inbox)
    Http {
        id: SessionId,
        request: wsv2_core::http::HttpTurnRequest,
    },
    /// An HTTP turn's event (ended responses, retries, forwards feed account health)
    HttpEvent { event: wsv2_core::http::HttpEvent },
    /// A store command that ran off the control task answered
    StoreReply(StoreReply),
    /// The control plane's state for `/metrics`
    Scrape {
        reply: oneshot::Sender<crate::metrics_export::ControlSnapshot>,
    },
    /// A reloaded account list (`Control::apply_accounts`), how to reach each account and, when
    /// the configuration changed them, the accounts' names (for logs and metric labels)
    Reload {
        accounts: Vec<wsv2_core::control::AccountSpec>,
        dials: HashMap<AccountId, AccountDial>,
        names: Option<Arc<HashMap<AccountId, String>>>,
    },
    /// Answered once no upstream conn is open (shutdown waits on it after closing the pool)
    WhenNoConns { reply: oneshot::Sender<()> },
}

impl From<ConnReport> for ControlMsg {
    fn from(report: ConnReport) -> Self {
        match report {
            ConnReport::Idle(msg) => Self::Idle { msg },
            ConnReport::Gone { account, conn } => Self::ConnGone { account, conn },
        }
    }
}

/// One answer of the control task for a session task or an HTTP task; a lease brings the
/// conn's I/O handle along. Sent boxed: a channel's slots are allocated 32 at a time, and an
/// idle session should not hold 32 of these
pub(crate) struct Delivery<I> {
    /// The answer
    pub(crate) input: I,
    /// The leased conn's reader/writer handle (`None` if the conn already ended)
    pub(crate) conn: Option<ConnIo>,
}

/// Headers a session contributes to upstream handshakes: `session-id`, `thread-id`, … , sent
/// only on a dial made for this session. (The pool-key headers, `OpenAI-Beta` and
/// `x-codex-beta-features`, come from the dial's [`CompatKey`], so warm dials carry them too.)
#[derive(Debug, Default)]
pub(crate) struct DialHeaders {
    /// The headers, as the client sent them
    pub(crate) per_session: Vec<(HeaderName, HeaderValue)>,
}

/// How to reach one account
#[derive(Debug)]
pub(crate) struct AccountDial {
    /// `ws://` / `wss://` URL
    pub(crate) url: String,
    /// Its credential
    pub(crate) token: Arc<str>,
    /// Its proxy and the TLS client
    pub(crate) route: Arc<DialRoute>,
}

/// One answered store command
#[derive(Debug)]
pub(crate) struct StoreReply {
    /// The command's op
    pub(crate) op: OpId,
    /// Its result
    pub(crate) result: Result<Option<String>, StoreFailure>,
}

/// One open socket counted against its key's cap, and its shutdown signal (the socket counts
/// as open for graceful shutdown until both are dropped); released on drop
#[derive(Debug)]
pub(crate) struct SocketPermit {
    keys: Arc<Mutex<ClientKeys>>,
    key: ClientKeyId,
    shutdown: Option<ShutdownSignal>,
}

impl SocketPermit {
    /// A permit for the socket `admitted` counted in `keys`; `shutdown` is its shutdown signal
    /// (`None` for an HTTP request: it is not signalled, it ends with its response)
    pub(crate) fn new(
        keys: Arc<Mutex<ClientKeys>>,
        admitted: &Admitted,
        shutdown: Option<ShutdownSignal>,
    ) -> Self {
        Self {
            keys,
            key: admitted.key,
            shutdown,
        }
    }

    /// The socket's shutdown signal, for the session task to select on (once)
    pub(crate) fn take_shutdown(&mut self) -> ShutdownSignal {
        self.shutdown.take().unwrap_or_else(ShutdownSignal::never)
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        lock_keys(&self.keys).handle_closed(self.key);
    }
}

/// The key table, whoever panicked while holding it (its counts stay consistent: every
/// change is one call)
pub(crate) fn lock_keys(keys: &Mutex<ClientKeys>) -> MutexGuard<'_, ClientKeys> {
    keys.lock().unwrap_or_else(|e| e.into_inner())
}
