//! Who may hold a client socket, and what the accept loop does when `accept` fails.
//!
//! Two caps bound the client sockets the listener holds: `max_open` in all (derived from
//! `RLIMIT_NOFILE`, leaving room for upstream conns, so the process never reaches its descriptor
//! limit on client sockets) and `max_unauthenticated` of them before they present a valid key.
//! A connection over either cap takes the place of the **oldest** unauthenticated one, so
//! clients that connect and send nothing (or drip their header) cannot keep a real client out:
//! to hold a place they must outpace every newcomer. With nobody to evict (every socket belongs
//! to an authenticated client) the newcomer is refused with 503 and `Retry-After`.
//!
//! Sockets on their way out — evicted ones until their task drops them, refused ones while
//! their 503 is written — still hold a descriptor; at most `max_closing` of them exist at once
//! (a quarter of `ingress.reserved_fds`). While that many are on their way out the listener
//! accepts nothing ([`ClientSockets::may_accept`]): newcomers wait in the kernel's backlog for
//! the few milliseconds it takes, rather than being dropped unanswered.
//!
//! ```text
//!   (may_accept) accept ─┬─ under both caps ────────────────────────▶ Unauthenticated
//!                        ├─ over a cap: the oldest Unauthenticated ▶ Evicted,
//!                        │                                 the newcomer ▶ Unauthenticated
//!                        └─ over a cap, none to evict ──────────────▶ Refused (503, closed)
//!
//!   Unauthenticated ──valid key──▶ Authenticated
//!   Unauthenticated | Authenticated | Evicted ──socket dropped──▶ (gone)
//! ```

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::admission::whole_seconds_up;
use crate::config::IngressConfig;
use crate::errors::{ErrorCode, ErrorType, GatewayError};

crate::ids::numeric_id!(
    /// One accepted client connection (numbered in accept order)
    ClientConnId,
    "c"
);

/// The caps [`ClientSockets`] enforces
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketLimits {
    /// Client sockets served at once
    pub max_open: usize,
    /// Of those, not yet authenticated
    pub max_unauthenticated: usize,
    /// Evicted or refused sockets not yet closed
    pub max_closing: usize,
}

impl SocketLimits {
    /// The limits of `cfg` for a listener that may serve `max_open` sockets
    pub fn new(cfg: &IngressConfig, max_open: usize) -> Self {
        let max_open = max_open.max(1);
        Self {
            max_open,
            max_unauthenticated: cfg.max_unauthenticated_connections.clamp(1, max_open),
            max_closing: (cfg.reserved_fds / 4).max(1),
        }
    }
}

/// What to do with a connection just accepted
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Admit {
    /// Serve it as `conn` (unauthenticated until [`ClientSockets::handle_authenticated`]); if
    /// `evict` names a connection, close that one now
    Serve {
        /// The new connection
        conn: ClientConnId,
        /// The oldest unauthenticated connection, which gives its place up
        evict: Option<ClientConnId>,
    },
    /// Write this answer, close, then call [`ClientSockets::handle_refusal_done`]
    Refuse(GatewayError),
}

/// Why `accept` failed, as far as the accept loop cares
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptError {
    /// That one connection is gone already (reset or aborted before it was accepted)
    ConnectionGone,
    /// The process or the system is out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS,
    /// ENOMEM): accepting again at once would fail again at once
    OutOfResources,
    /// Anything else
    Other,
}

/// When the accept loop calls `accept` again
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum AcceptNext {
    /// At once
    Now,
    /// Not before this instant
    PauseUntil(Instant),
}

/// The client sockets of one listener
#[derive(Clone, Debug)]
pub struct ClientSockets {
    limits: SocketLimits,
    accept_error_backoff: Duration,
    busy_retry_after: Duration,
    next: u64,
    /// Oldest first (ids grow with accept order)
    unauthenticated: BTreeSet<ClientConnId>,
    authenticated: HashSet<ClientConnId>,
    evicted: HashSet<ClientConnId>,
    refusing: usize,
}

impl ClientSockets {
    /// No sockets yet
    pub fn new(cfg: &IngressConfig, limits: SocketLimits) -> Self {
        Self {
            limits,
            accept_error_backoff: cfg.accept_error_backoff,
            busy_retry_after: cfg.busy_retry_after,
            next: 0,
            unauthenticated: BTreeSet::new(),
            authenticated: HashSet::new(),
            evicted: HashSet::new(),
            refusing: 0,
        }
    }

    /// The caps in force
    pub fn limits(&self) -> SocketLimits {
        self.limits
    }

    /// Sockets served (authenticated or not), not counting those on their way out
    pub fn serving(&self) -> usize {
        self.unauthenticated.len() + self.authenticated.len()
    }

    /// Served sockets not yet authenticated
    pub fn unauthenticated(&self) -> usize {
        self.unauthenticated.len()
    }

    /// Evicted or refused sockets not yet closed
    pub fn closing(&self) -> usize {
        self.evicted.len() + self.refusing
    }

    /// Whether the listener may accept a connection now: not while `max_closing` sockets are
    /// on their way out (it waits for [`handle_closed`](Self::handle_closed) or
    /// [`handle_refusal_done`](Self::handle_refusal_done))
    pub fn may_accept(&self) -> bool {
        self.closing() < self.limits.max_closing
    }

    /// Decides about a connection just accepted (only while [`may_accept`](Self::may_accept))
    pub fn handle_accepted(&mut self) -> Admit {
        let over_a_cap = self.serving() >= self.limits.max_open
            || self.unauthenticated.len() >= self.limits.max_unauthenticated;
        let mut evict = None;
        if over_a_cap {
            let Some(oldest) = self.unauthenticated.pop_first() else {
                self.refusing += 1;
                return Admit::Refuse(self.busy());
            };
            self.evicted.insert(oldest);
            evict = Some(oldest);
        }
        let conn = ClientConnId(self.next);
        self.next += 1;
        self.unauthenticated.insert(conn);
        Admit::Serve { conn, evict }
    }

    /// `conn` presented a valid client key: it no longer gives way to newcomers. Answers
    /// whether it is still served (`false`: it was evicted already and is being closed).
    pub fn handle_authenticated(&mut self, conn: ClientConnId) -> bool {
        if self.unauthenticated.remove(&conn) {
            self.authenticated.insert(conn);
        }
        self.authenticated.contains(&conn)
    }

    /// `conn`'s socket was dropped (served, authenticated or evicted alike)
    pub fn handle_closed(&mut self, conn: ClientConnId) {
        let _ = self.unauthenticated.remove(&conn)
            || self.authenticated.remove(&conn)
            || self.evicted.remove(&conn);
    }

    /// A refused socket was closed
    pub fn handle_refusal_done(&mut self) {
        self.refusing = self.refusing.saturating_sub(1);
    }

    /// Decides when to accept again after `accept` failed
    pub fn handle_accept_error(&self, now: Instant, error: AcceptError) -> AcceptNext {
        match error {
            AcceptError::ConnectionGone => AcceptNext::Now,
            // Retrying at once would fail at once: the loop would spin (and log) at full speed.
            AcceptError::OutOfResources | AcceptError::Other => {
                AcceptNext::PauseUntil(now + self.accept_error_backoff)
            }
        }
    }

    /// The 503 of a refused connection
    fn busy(&self) -> GatewayError {
        GatewayError::new(
            503,
            ErrorType::Server,
            Some(ErrorCode::TooManyConnections),
            "the gateway holds as many client connections as it can; retry shortly",
        )
        .with_retry_after(Some(whole_seconds_up(self.busy_retry_after)))
    }
}

/// How many client sockets a listener may hold, and how that number came about
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketBudget {
    /// The cap
    pub max_client_sockets: usize,
    /// The soft `RLIMIT_NOFILE` it was derived from (`None`: set in the configuration, or no
    /// limit)
    pub nofile: Option<u64>,
    /// Descriptors left for upstream conns (0 when the cap was configured)
    pub upstream_headroom: usize,
}

/// `ingress.max_client_sockets`, or when it is 0, the cap derived from the process's soft
/// descriptor limit `nofile`: `nofile − ingress.reserved_fds`, less room for upstream conns —
/// `upstream_conns` (the accounts' total conn cap) but at most half, since each client socket
/// needs at most one upstream conn of its own
pub fn derive_max_client_sockets(
    cfg: &IngressConfig,
    nofile: Option<u64>,
    upstream_conns: usize,
) -> SocketBudget {
    let Some(limit) = nofile.filter(|_| cfg.max_client_sockets == 0) else {
        // Configured, or no descriptor limit to derive a cap from.
        let max_client_sockets = match cfg.max_client_sockets {
            0 => usize::MAX,
            configured => configured,
        };
        return SocketBudget {
            max_client_sockets,
            nofile: None,
            upstream_headroom: 0,
        };
    };
    let available = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(cfg.reserved_fds);
    let upstream_headroom = upstream_conns.min(available / 2);
    SocketBudget {
        max_client_sockets: (available - upstream_headroom).max(1),
        nofile: Some(limit),
        upstream_headroom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sockets(max_open: usize, max_unauthenticated: usize, reserved_fds: usize) -> ClientSockets {
        let cfg = IngressConfig {
            max_unauthenticated_connections: max_unauthenticated,
            reserved_fds,
            ..IngressConfig::default()
        };
        ClientSockets::new(&cfg, SocketLimits::new(&cfg, max_open))
    }

    fn serve(s: &mut ClientSockets) -> (ClientConnId, Option<ClientConnId>) {
        match s.handle_accepted() {
            Admit::Serve { conn, evict } => (conn, evict),
            other => panic!("expected Serve, got {other:?}"),
        }
    }

    #[test]
    fn newcomers_over_the_unauthenticated_cap_evict_the_oldest_first() {
        let mut s = sockets(100, 3, 32);
        let first: Vec<_> = (0..3).map(|_| serve(&mut s)).collect();
        assert!(first.iter().all(|(_, evict)| evict.is_none()));
        let (fourth, evicted) = serve(&mut s);
        assert_eq!(evicted, Some(first[0].0));
        // The second one authenticates in time: it leaves the cap and is never evicted.
        assert!(s.handle_authenticated(first[1].0));
        assert_eq!(serve(&mut s).1, None);
        assert_eq!(serve(&mut s).1, Some(first[2].0));
        assert_eq!(serve(&mut s).1, Some(fourth));
        // An evicted connection that presents a key late stays evicted.
        assert!(!s.handle_authenticated(first[0].0));
        assert_eq!(s.unauthenticated(), 3);
        assert_eq!(s.serving(), 4);
        assert_eq!(s.closing(), 3);
    }

    #[test]
    fn at_the_socket_cap_with_nobody_to_evict_a_newcomer_is_refused_503() {
        let mut s = sockets(2, 2, 32);
        for _ in 0..2 {
            let (conn, _) = serve(&mut s);
            assert!(s.handle_authenticated(conn));
        }
        let Admit::Refuse(answer) = s.handle_accepted() else {
            panic!("expected a refusal");
        };
        assert_eq!(answer.status, 503);
        assert_eq!(
            answer.code,
            Some(crate::errors::ErrorCode::TooManyConnections)
        );
        assert_eq!(answer.retry_after, Some(1));
        s.handle_refusal_done();
        assert_eq!(s.closing(), 0);
        // A socket closes: the next one is served.
        s.handle_closed(ClientConnId(0));
        assert_eq!(serve(&mut s).1, None);
    }

    #[test]
    fn accepting_waits_while_max_closing_sockets_are_on_their_way_out() {
        // reserved_fds 8: at most 2 evicted or refused sockets not yet closed.
        let mut s = sockets(1, 1, 8);
        serve(&mut s);
        assert!(s.may_accept());
        assert!(serve(&mut s).1.is_some());
        assert!(serve(&mut s).1.is_some());
        assert_eq!(s.closing(), 2);
        assert!(!s.may_accept());
        // One evicted socket closes: accepting (and evicting) goes on.
        s.handle_closed(ClientConnId(0));
        assert!(s.may_accept());
        assert_eq!(serve(&mut s).1, Some(ClientConnId(2)));
        assert!(!s.may_accept());
    }

    #[test]
    fn out_of_descriptors_pauses_accepting_a_gone_connection_does_not() {
        let s = sockets(10, 10, 32);
        let now = Instant::now();
        assert_eq!(
            s.handle_accept_error(now, AcceptError::OutOfResources),
            AcceptNext::PauseUntil(now + Duration::from_millis(50))
        );
        assert_eq!(
            s.handle_accept_error(now, AcceptError::ConnectionGone),
            AcceptNext::Now
        );
    }

    #[test]
    fn the_derived_cap_leaves_the_reserve_and_room_for_upstream_conns() {
        let cfg = IngressConfig::default();
        // ulimit -n 128, one account of concurrency 64: 96 left, 48 of them for upstream.
        let budget = derive_max_client_sockets(&cfg, Some(128), 64);
        assert_eq!(budget.max_client_sockets, 48);
        assert_eq!(budget.upstream_headroom, 48);
        // A large limit: the upstream conns take what they can use, no more.
        let budget = derive_max_client_sockets(&cfg, Some(65536), 64);
        assert_eq!(budget.max_client_sockets, 65536 - 32 - 64);
        // A configured cap wins; a limit below the reserve still serves one socket.
        let fixed = IngressConfig {
            max_client_sockets: 10,
            ..cfg.clone()
        };
        assert_eq!(
            derive_max_client_sockets(&fixed, Some(128), 64).max_client_sockets,
            10
        );
        assert_eq!(
            derive_max_client_sockets(&cfg, Some(16), 64).max_client_sockets,
            1
        );
    }
}
