//! A virtual-time driver for pool tests: one readable trace line per input and per output.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wsv2_core::conn::{CompatKey, ConnRecord, Release};
use wsv2_core::pool::{
    CloseReason, HolderKind, PoolRegistry, PoolRequest, PoolStats, RefuseReason,
};
use wsv2_core::{AccountId, Config, ConnId, ResponseId, SessionId, StreamId};

use super::trace::{Clocked, Trace, advance_to};

/// The account every single-account test uses
pub const A: AccountId = AccountId(1);

/// A config with the defaults except no warm idle (rules other than warm idle read cleaner)
pub fn quiet_config() -> Config {
    let mut config = Config::default();
    config.pool.min_idle_per_account = 0;
    config
}

/// `s{n}`
pub fn s(n: u64) -> SessionId {
    SessionId(n)
}

/// `c{n}`
pub fn c(n: u64) -> ConnId {
    ConnId(n)
}

/// A response id
pub fn resp(id: &str) -> ResponseId {
    ResponseId::from_str_copy(id).unwrap()
}

/// The plain key of account A
pub fn plain() -> CompatKey {
    CompatKey::plain(A)
}

/// The key of account A with these `OpenAI-Beta` values
pub fn beta(values: &str) -> CompatKey {
    CompatKey::new(A, [values], [])
}

/// Drives a registry in virtual time and records a trace
pub struct Sim {
    pub pools: PoolRegistry,
    pub t0: Instant,
    pub now: Instant,
    pub trace: Trace,
    /// Current leases by holder
    pub leases: BTreeMap<SessionId, ConnRecord>,
    /// Every output, in order
    pub outputs: Vec<(u64, PoolRequest)>,
    /// Dials not answered yet
    pub pending: Vec<ConnId>,
}

impl Sim {
    /// Account A with `concurrency`, built at t = 0
    pub fn new(config: Config, concurrency: usize) -> Self {
        let t0 = Instant::now();
        let mut sim = Self {
            pools: PoolRegistry::new(&config, 0x5eed, t0),
            t0,
            now: t0,
            trace: Trace::new(t0),
            leases: BTreeMap::new(),
            outputs: Vec::new(),
            pending: Vec::new(),
        };
        sim.input(
            &format!("add_account {A} concurrency={concurrency}"),
            |p, now| p.add_account(now, A, concurrency),
        );
        sim
    }

    /// Milliseconds since t = 0
    pub fn ms(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    /// Applies one input at the current time and records it with its outputs
    pub fn input(&mut self, label: &str, f: impl FnOnce(&mut PoolRegistry, Instant)) {
        self.trace.input(self.now, label);
        f(&mut self.pools, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(command) = self.pools.poll_request() {
            self.trace.output(self.now, &command);
            match &command {
                PoolRequest::Granted(lease) => {
                    self.leases.insert(lease.holder, lease.record.clone());
                }
                PoolRequest::Dial { conn, .. } => self.pending.push(*conn),
                _ => {}
            }
            self.outputs.push((self.ms(), command));
        }
    }

    /// Moves time to `ms`, firing every timeout on the way (a timeout is traced only if it
    /// produced outputs)
    pub fn at(&mut self, ms: u64) {
        advance_to(self, self.t0 + Duration::from_millis(ms));
    }

    /// A free-form note in the trace (what the next lines show)
    pub fn note(&mut self, text: &str) {
        self.trace.note(text);
    }

    pub fn acquire_session(&mut self, holder: SessionId, compat: &CompatKey) {
        self.input(
            &format!("acquire_for_session {holder} {}", key_label(compat)),
            |p, now| p.acquire(now, holder, HolderKind::Session, compat, None, None),
        );
    }

    pub fn acquire_http(
        &mut self,
        holder: SessionId,
        compat: &CompatKey,
        preferred: Option<&ResponseId>,
    ) {
        let pref = preferred
            .map(|r| format!(" preferred={r}"))
            .unwrap_or_default();
        self.input(
            &format!("acquire_for_http {holder} {}{pref}", key_label(compat)),
            |p, now| p.acquire(now, holder, HolderKind::Http, compat, preferred, None),
        );
    }

    /// The holder's lease record (panics if it holds none)
    pub fn lease(&self, holder: SessionId) -> &ConnRecord {
        self.leases
            .get(&holder)
            .unwrap_or_else(|| panic!("{holder} holds no lease"))
    }

    pub fn release(&mut self, holder: SessionId, reusable: bool) {
        let record = self.leases.remove(&holder).expect("holder has a lease");
        let label = format!("release {} by {holder} reusable={reusable}", record.id);
        self.input(&label, |p, now| {
            p.handle_release(now, Release { record, reusable }, None)
        });
    }

    /// Releases after recording `response` in the lane cache of the default lane
    pub fn release_caching(&mut self, holder: SessionId, response: &str) {
        let mut record = self.leases.remove(&holder).expect("holder has a lease");
        record.cache(None, resp(response), false);
        let label = format!("release {} by {holder} caching {response}", record.id);
        self.input(&label, |p, now| {
            p.handle_release(
                now,
                Release {
                    record,
                    reusable: true,
                },
                None,
            )
        });
    }

    /// Releases after a `store:false` turn whose response is `chain`, holding the conn for it
    pub fn release_hold(&mut self, holder: SessionId, chain: &str) {
        let mut record = self.leases.remove(&holder).expect("holder has a lease");
        record.cache(None, resp(chain), false);
        let label = format!("release_with_hold {} by {holder} chain={chain}", record.id);
        self.input(&label, |p, now| {
            p.handle_release(
                now,
                Release {
                    record,
                    reusable: true,
                },
                Some(resp(chain)),
            )
        });
    }

    /// Releases after using `lanes` distinct named lanes on the conn
    pub fn release_with_lanes(&mut self, holder: SessionId, lanes: usize) {
        let mut record = self.leases.remove(&holder).expect("holder has a lease");
        record.named_lanes = (0..lanes)
            .map(|i| StreamId::from_str_copy(&format!("lane{i}")).unwrap())
            .collect();
        let label = format!("release {} by {holder} named_lanes={lanes}", record.id);
        self.input(&label, |p, now| {
            p.handle_release(
                now,
                Release {
                    record,
                    reusable: true,
                },
                None,
            )
        });
    }

    pub fn dial_ok(&mut self, conn: ConnId) {
        self.pending.retain(|c| *c != conn);
        self.input(&format!("dial_ok {conn}"), |p, now| {
            p.handle_dial_ok(now, A, conn)
        });
    }

    pub fn dial_failed(&mut self, conn: ConnId) {
        self.pending.retain(|c| *c != conn);
        self.input(&format!("dial_failed {conn}"), |p, now| {
            p.handle_dial_failed(now, A, conn)
        });
    }

    pub fn conn_closed(&mut self, conn: ConnId) {
        self.leases.retain(|_, r| r.id != conn);
        self.input(&format!("conn_closed {conn}"), |p, now| {
            p.handle_conn_closed(now, A, conn)
        });
    }

    pub fn idle_pong(&mut self, conn: ConnId) {
        self.input(&format!("idle_pong {conn}"), |p, now| {
            p.handle_idle_pong(now, A, conn)
        });
    }

    pub fn idle_frame(&mut self, conn: ConnId) {
        self.input(&format!("idle_frame {conn}"), |p, now| {
            p.handle_idle_frame(now, A, conn)
        });
    }

    pub fn idle_closed(&mut self, conn: ConnId) {
        self.input(&format!("idle_closed {conn}"), |p, now| {
            p.handle_idle_closed(now, A, conn)
        });
    }

    /// Opens `n` idle conns c1..cn (acquire, dial, release; released in id order)
    pub fn open_idle(&mut self, first_holder: u64, n: u64, compat: &CompatKey) {
        for i in 0..n {
            self.acquire_session(s(first_holder + i), compat);
        }
        for conn in self.pending_dials() {
            self.dial_ok(conn);
        }
        for i in 0..n {
            self.release(s(first_holder + i), true);
        }
    }

    /// Dials asked for and not yet answered, oldest first
    pub fn pending_dials(&self) -> Vec<ConnId> {
        self.pending.clone()
    }

    pub fn stats(&self) -> PoolStats {
        self.pools.stats(A).unwrap()
    }

    /// Outputs produced at `ms`
    pub fn outputs_at(&self, ms: u64) -> Vec<&PoolRequest> {
        self.outputs
            .iter()
            .filter(|(t, _)| *t == ms)
            .map(|(_, c)| c)
            .collect()
    }

    /// When `holder` was refused, and why
    pub fn refusal(&self, holder: SessionId) -> Option<(u64, RefuseReason)> {
        self.outputs.iter().find_map(|(t, c)| match c {
            PoolRequest::Refused { holder: h, reason } if *h == holder => Some((*t, *reason)),
            _ => None,
        })
    }

    /// Every close, with its reason
    pub fn closes(&self) -> Vec<(ConnId, CloseReason)> {
        self.outputs
            .iter()
            .filter_map(|(_, c)| match c {
                PoolRequest::Close(conn, reason) => Some((*conn, *reason)),
                _ => None,
            })
            .collect()
    }

    /// Idle conns, most recently released first
    pub fn idle(&self) -> Vec<ConnId> {
        self.pools.pool(A).unwrap().idle_conns().collect()
    }
}

impl Clocked for Sim {
    fn now_mut(&mut self) -> &mut Instant {
        &mut self.now
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pools.poll_timeout()
    }

    /// A timeout is traced only if it produced outputs (the registry's ticks are frequent)
    fn fire(&mut self) {
        self.pools.handle_timeout(self.now);
        if self.pools.poll_timeout().is_some_and(|t| t <= self.now) {
            panic!("poll_timeout did not move after handle_timeout");
        }
        let before = self.trace.mark();
        self.trace.input(self.now, "timeout");
        let written = self.trace.len();
        self.drain();
        if self.trace.len() == written {
            self.trace.rewind(before);
        }
    }
}

fn key_label(compat: &CompatKey) -> String {
    let betas: Vec<&str> = compat
        .openai_beta()
        .iter()
        .chain(compat.codex_beta_features())
        .map(String::as_str)
        .collect();
    if betas.is_empty() {
        "plain".to_owned()
    } else {
        format!("beta=[{}]", betas.join(","))
    }
}
