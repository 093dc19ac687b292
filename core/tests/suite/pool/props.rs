//! Property tests of the pool in virtual time: random acquires, releases, dial results,
//! deaths and time jumps, checked after every step against the pool's promises.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use wsv2_core::conn::{CompatKey, ConnRecord, Release};
use wsv2_core::pool::{HolderKind, PoolRegistry, PoolRequest};
use wsv2_core::{AccountId, Config, ConnId, ResponseId, SessionId, StreamId};

const A: AccountId = AccountId(1);

#[derive(Clone, Debug)]
enum Op {
    AcquireSession {
        key: u8,
    },
    AcquireHttp {
        key: u8,
        preferred: bool,
    },
    Release {
        pick: usize,
        reusable: bool,
        hold: bool,
        lanes: u8,
    },
    DialOk {
        pick: usize,
    },
    DialFailed {
        pick: usize,
    },
    LeasedClosed {
        pick: usize,
    },
    IdleFrame {
        pick: usize,
    },
    IdleClosed {
        pick: usize,
    },
    IdlePong {
        pick: usize,
    },
    Cancel {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3).prop_map(|key| Op::AcquireSession { key }),
        3 => (0u8..3, any::<bool>()).prop_map(|(key, preferred)| Op::AcquireHttp { key, preferred }),
        4 => (any::<usize>(), prop::bool::weighted(0.8), any::<bool>(), prop_oneof![8 => Just(0u8), 1 => Just(17u8)])
            .prop_map(|(pick, reusable, hold, lanes)| Op::Release { pick, reusable, hold, lanes }),
        4 => any::<usize>().prop_map(|pick| Op::DialOk { pick }),
        1 => any::<usize>().prop_map(|pick| Op::DialFailed { pick }),
        1 => any::<usize>().prop_map(|pick| Op::LeasedClosed { pick }),
        1 => any::<usize>().prop_map(|pick| Op::IdleFrame { pick }),
        1 => any::<usize>().prop_map(|pick| Op::IdleClosed { pick }),
        1 => any::<usize>().prop_map(|pick| Op::IdlePong { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        3 => prop_oneof![0u64..500, 500u64..5_000, 5_000u64..40_000].prop_map(|ms| Op::Advance { ms }),
    ]
}

fn key(k: u8) -> CompatKey {
    match k {
        0 => CompatKey::plain(A),
        1 => CompatKey::new(A, ["responses_websockets=2026-02-06"], []),
        _ => CompatKey::new(A, ["responses_websockets=2026-02-06"], ["x"]),
    }
}

struct Waiting {
    /// When it must have been answered (`None`: it waits on its own dial)
    deadline: Option<Instant>,
    is_session: bool,
}

struct Model {
    pools: PoolRegistry,
    config: Config,
    max_conns: usize,
    now: Instant,
    next_holder: u64,
    leased: BTreeMap<ConnId, (SessionId, ConnRecord)>,
    dialing: Vec<ConnId>,
    dead: BTreeSet<ConnId>,
    waiting: BTreeMap<SessionId, Waiting>,
    chains: Vec<ResponseId>,
}

impl Model {
    fn new(config: Config, concurrency: usize) -> Self {
        let now = Instant::now();
        let mut model = Self {
            pools: PoolRegistry::new(&config, 0x5eed, now),
            max_conns: concurrency.min(config.pool.max_conns_per_account),
            config,
            now,
            next_holder: 1,
            leased: BTreeMap::new(),
            dialing: Vec::new(),
            dead: BTreeSet::new(),
            waiting: BTreeMap::new(),
            chains: Vec::new(),
        };
        model.pools.add_account(now, A, concurrency);
        model.drain();
        model
    }

    fn idle(&self) -> Vec<ConnId> {
        self.pools.pool(A).unwrap().idle_conns().collect()
    }

    fn drain(&mut self) {
        self.drain_commands();
        // A session that took over a warm dial in flight waits on it like on its own dial.
        let pool = self.pools.pool(A).unwrap();
        for (holder, w) in &mut self.waiting {
            if w.is_session && pool.waiting_on_dial(*holder).is_some() {
                w.deadline = None;
            }
        }
    }

    fn drain_commands(&mut self) {
        while let Some(command) = self.pools.poll_request() {
            match command {
                PoolRequest::Dial {
                    conn, for_holder, ..
                } => {
                    assert!(!self.dialing.contains(&conn), "{conn} dialed twice");
                    self.dialing.push(conn);
                    if let Some(w) = for_holder.and_then(|h| self.waiting.get_mut(&h))
                        && w.is_session
                    {
                        // a session waits on its own dial (bounded by the shell's dial timeout)
                        w.deadline = None;
                    }
                }
                PoolRequest::Granted(lease) => {
                    let conn = lease.record.id;
                    let w = self.waiting.remove(&lease.holder);
                    assert!(w.is_some(), "{} granted without waiting", lease.holder);
                    assert!(
                        !w.as_ref().is_some_and(|w| w.is_session)
                            || self.now + self.config.pool.session_min_remaining_life
                                <= lease.record.opened_at + self.config.upstream.max_age,
                        "{conn} granted to a session with less than session_min_remaining_life left"
                    );
                    assert!(
                        !self.leased.contains_key(&conn),
                        "{conn} granted while leased"
                    );
                    assert!(!self.dead.contains(&conn), "{conn} granted after it closed");
                    assert!(
                        self.now < lease.record.opened_at + self.config.upstream.max_age,
                        "{conn} granted past max_age"
                    );
                    self.leased.insert(conn, (lease.holder, lease.record));
                }
                PoolRequest::Refused { holder, .. } => {
                    let w = self.waiting.remove(&holder);
                    assert!(w.is_some(), "{holder} refused without waiting");
                }
                PoolRequest::Close(conn, _) => {
                    assert!(
                        !self.leased.contains_key(&conn),
                        "a leased conn is closed by its holder"
                    );
                    self.dead.insert(conn);
                }
                PoolRequest::Ping(conn) => {
                    assert!(
                        self.idle().contains(&conn),
                        "only idle conns are pinged by the pool"
                    );
                }
            }
        }
        self.check();
    }

    fn check(&self) {
        let stats = self.pools.stats(A).unwrap();
        assert!(
            stats.open + stats.dialing <= self.max_conns,
            "capacity: {stats:?}"
        );
        assert_eq!(stats.leased, self.leased.len(), "leased count");
        assert_eq!(stats.dialing, self.dialing.len(), "dialing count");
        for (holder, w) in &self.waiting {
            if let Some(deadline) = w.deadline {
                assert!(deadline > self.now, "{holder} not answered by its deadline");
            }
        }
        for conn in self.idle() {
            assert!(!self.dead.contains(&conn), "{conn} idle after it closed");
        }
    }

    fn holder(&mut self) -> SessionId {
        self.next_holder += 1;
        SessionId(self.next_holder)
    }

    fn advance(&mut self, ms: u64) {
        let target = self.now + Duration::from_millis(ms);
        while let Some(due) = self.pools.poll_timeout().filter(|t| *t <= target) {
            // every waiter due before this instant was answered at its deadline
            self.now = due.max(self.now);
            self.pools.handle_timeout(self.now);
            assert!(
                self.pools.poll_timeout().is_none_or(|t| t > self.now),
                "poll_timeout must move past a fired deadline"
            );
            self.drain();
        }
        self.now = target;
        self.check();
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::AcquireSession { key: k } => {
                let holder = self.holder();
                let deadline = Some(now + self.config.pool.session_acquire_wait);
                self.waiting.insert(
                    holder,
                    Waiting {
                        deadline,
                        is_session: true,
                    },
                );
                self.pools
                    .acquire(now, holder, HolderKind::Session, &key(k), None, None);
            }
            Op::AcquireHttp { key: k, preferred } => {
                let holder = self.holder();
                let deadline = Some(now + self.config.pool.acquire_timeout);
                self.waiting.insert(
                    holder,
                    Waiting {
                        deadline,
                        is_session: false,
                    },
                );
                let chain = if preferred {
                    self.chains.last().cloned()
                } else {
                    None
                };
                self.pools
                    .acquire(now, holder, HolderKind::Http, &key(k), chain.as_ref(), None);
            }
            Op::Release {
                pick,
                reusable,
                hold,
                lanes,
            } => {
                let Some(&conn) = self.leased.keys().nth(pick % self.leased.len().max(1)) else {
                    return;
                };
                let (_, mut record) = self.leased.remove(&conn).unwrap();
                record.last_read = now;
                for i in 0..lanes {
                    record
                        .named_lanes
                        .push(StreamId::from_str_copy(&format!("l{i}")).unwrap());
                }
                let release = Release { record, reusable };
                if !reusable
                    || lanes > 16
                    || now >= release.record.opened_at + self.config.upstream.max_age
                {
                    self.dead.insert(conn);
                }
                if hold {
                    let chain =
                        ResponseId::from_str_copy(&format!("resp_{}", self.next_holder)).unwrap();
                    let mut release = release;
                    release.record.cache(None, chain.clone(), false);
                    self.chains.push(chain.clone());
                    self.pools.handle_release(now, release, Some(chain));
                } else {
                    self.pools.handle_release(now, release, None);
                }
            }
            Op::DialOk { pick } | Op::DialFailed { pick } if !self.dialing.is_empty() => {
                let conn = self.dialing.remove(pick % self.dialing.len());
                if matches!(op, Op::DialOk { .. }) {
                    self.pools.handle_dial_ok(now, A, conn);
                } else {
                    self.dead.insert(conn);
                    self.pools.handle_dial_failed(now, A, conn);
                }
            }
            Op::LeasedClosed { pick } => {
                let Some(&conn) = self.leased.keys().nth(pick % self.leased.len().max(1)) else {
                    return;
                };
                self.leased.remove(&conn);
                self.dead.insert(conn);
                self.pools.handle_conn_closed(now, A, conn);
            }
            Op::IdleFrame { pick } | Op::IdleClosed { pick } | Op::IdlePong { pick } => {
                let idle = self.idle();
                let Some(&conn) = idle.get(pick % idle.len().max(1)) else {
                    return;
                };
                match op {
                    Op::IdleFrame { .. } => {
                        self.dead.insert(conn);
                        self.pools.handle_idle_frame(now, A, conn);
                    }
                    Op::IdleClosed { .. } => {
                        self.dead.insert(conn);
                        self.pools.handle_idle_closed(now, A, conn);
                    }
                    _ => self.pools.handle_idle_pong(now, A, conn),
                }
            }
            Op::Cancel { pick } => {
                let Some(&holder) = self.waiting.keys().nth(pick % self.waiting.len().max(1))
                else {
                    return;
                };
                self.waiting.remove(&holder);
                self.pools.cancel(now, A, holder);
            }
            Op::Advance { ms } => return self.advance(ms),
            Op::DialOk { .. } | Op::DialFailed { .. } => return,
        }
        self.drain();
    }

    /// Answers every dial and lets every deadline pass: nobody may be left waiting
    fn settle(&mut self) {
        for _round in 0..10 {
            while let Some(conn) = self.dialing.first().copied() {
                self.dialing.remove(0);
                self.pools.handle_dial_ok(self.now, A, conn);
                self.drain();
            }
            self.advance(60_000);
            if self.dialing.is_empty() {
                break;
            }
        }
        assert!(
            self.waiting.is_empty(),
            "unanswered: {:?}",
            self.waiting.keys().collect::<Vec<_>>()
        );
    }
}

fn pool_config(queue_limit: usize, min_idle: usize) -> Config {
    let mut config = Config::default();
    config.upstream.max_age = Duration::from_secs(90);
    config.pool.session_min_remaining_life = Duration::from_secs(30);
    config.pool.queue_limit_per_conn = queue_limit;
    config.pool.min_idle_per_account = min_idle;
    config.pool.max_idle_per_account = 2;
    config.pool.max_chain_holds_per_account = 2;
    config
}

proptest! {
    #![proptest_config(crate::support::proptest_config())]

    /// No lease held twice, open + dialing ≤ max, every waiter answered by its deadline,
    /// closed/dirty/too-old conns never leased, counts consistent
    #[test]
    fn pool_props_random_sequences_keep_promises(
        concurrency in 0usize..5,
        queue_limit in 1usize..4,
        min_idle in 0usize..2,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut model = Model::new(pool_config(queue_limit, min_idle), concurrency);
        for op in ops {
            model.apply(op);
        }
        model.settle();
    }
}
