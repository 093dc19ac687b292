//! What a pool asks its shell or its holders to do.

use std::fmt;

use crate::conn::{CompatKey, ConnRecord};
use crate::{ConnId, SessionId};

/// One output of a pool, taken with `poll_request()`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolRequest {
    /// Open a new upstream conn; answer with `handle_dial_ok` or `handle_dial_failed`
    Dial {
        /// The id the conn will carry
        conn: ConnId,
        /// Its handshake-compatibility key (account + beta values)
        compat: CompatKey,
        /// The holder the dial is made for: its per-session headers go on this handshake only.
        /// `None` for a warm-idle dial (no per-session headers)
        for_holder: Option<SessionId>,
    },
    /// Send a ping on this idle conn; answer with `handle_idle_pong`
    Ping(ConnId),
    /// Close this conn; the pool has already forgotten it (its capacity is free)
    Close(ConnId, CloseReason),
    /// A holder gets a conn
    Granted(Lease),
    /// A holder gets no conn
    Refused {
        /// Who asked
        holder: SessionId,
        /// Why not
        reason: RefuseReason,
    },
}

/// A conn handed to a holder: the record travels with it until the release
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Who holds the conn now
    pub holder: SessionId,
    /// The conn's history (id, key, age, lanes, lane cache)
    pub record: ConnRecord,
    /// Dialed for this holder (never leased before)
    pub fresh: bool,
    /// The conn whose lane cache holds the chain's previous response (HTTP fast path)
    pub preferred_hit: bool,
}

/// Why an acquire got no conn
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// A WebSocket session waited `session_acquire_wait` in vain (its create gets a 503 `error`)
    SessionWaitTimeout,
    /// Every queue this acquire could join is full
    QueueFull,
    /// An HTTP turn waited `acquire_timeout` in vain
    AcquireTimeout,
    /// The account's concurrency is 0
    NoCapacity,
    /// The dial made for this holder failed (the scheduler may retry or fail over)
    DialFailed,
    /// The dial this holder waits for (its own, or a warm one it took over) did not finish
    /// within the `dial_wait` it was given, or a session got no conn within it: try another
    /// account (a dial goes on, warm)
    DialWait,
    /// The registry has no pool for the key's account
    UnknownAccount,
    /// The account was removed while the holder waited
    AccountRemoved,
}

/// Why the pool closes a conn (metrics and traces)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Released as not reusable (dirty, broken, unfinished)
    NotReusable,
    /// Released after using more than `lane_reuse_limit` named lanes
    LaneLimit,
    /// Older than `upstream.max_age`
    MaxAge,
    /// A text frame arrived while idle (tail packet)
    Dirty,
    /// No pong within `upstream.pong_timeout` of an idle ping
    PongTimeout,
    /// Idle longer than `idle_timeout`
    IdleTimeout,
    /// More than `max_idle_per_account` idle conns
    IdleSurplus,
    /// An idle conn with another key made room for a dial at full capacity
    Incompatible,
    /// Its account was removed
    AccountRemoved,
    /// An idle conn with too little life left for a session (`pool.session_min_remaining_life`)
    /// made room for the session's dial at full capacity
    SessionAge,
}

impl CloseReason {
    /// Every reason, in [`index`](Self::index) order
    pub const ALL: [Self; 10] = [
        Self::NotReusable,
        Self::LaneLimit,
        Self::MaxAge,
        Self::Dirty,
        Self::PongTimeout,
        Self::IdleTimeout,
        Self::IdleSurplus,
        Self::Incompatible,
        Self::AccountRemoved,
        Self::SessionAge,
    ];

    /// How many reasons there are
    pub const COUNT: usize = Self::ALL.len();

    /// Its position in [`ALL`](Self::ALL) (the per-reason counters' index)
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for PoolRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dial {
                conn,
                compat,
                for_holder,
            } => {
                write!(f, "Dial {conn} {}", compat.account())?;
                for beta in compat
                    .openai_beta()
                    .iter()
                    .chain(compat.codex_beta_features())
                {
                    write!(f, " +{beta}")?;
                }
                match for_holder {
                    Some(holder) => write!(f, " for {holder}"),
                    None => write!(f, " warm"),
                }
            }
            Self::Ping(conn) => write!(f, "Ping {conn}"),
            Self::Close(conn, reason) => write!(f, "Close {conn} {reason:?}"),
            Self::Granted(lease) => {
                write!(f, "Granted {} {}", lease.record.id, lease.holder)?;
                if lease.fresh {
                    write!(f, " fresh")?;
                }
                if lease.preferred_hit {
                    write!(f, " preferred-hit")?;
                }
                Ok(())
            }
            Self::Refused { holder, reason } => write!(f, "Refused {holder} {reason:?}"),
        }
    }
}
