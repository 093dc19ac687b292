//! Property test with virtual time: random lookups, writes, replies, failures and time jumps.
//!
//! Checked after every step:
//! - every `Pending` lookup is answered (exactly once per wait) by its op's deadline;
//! - never more than one get in flight per key;
//! - while the breaker is open or probing, the only command is its probe (one at a time).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use wsv2_core::config::StoreConfig;
use wsv2_core::store::{
    BreakerState, Lookup, OpId, RequestKind, Store, StoreEvent, StoreFailure, StoreKey,
    StoreRequest,
};
use wsv2_core::{AccountId, ResponseId};

#[derive(Clone, Debug)]
enum Action {
    Lookup {
        session: bool,
        id: u8,
        group: u8,
    },
    Bind {
        session: bool,
        id: u8,
        group: u8,
        account: u8,
    },
    Unbind {
        session: bool,
        id: u8,
        group: u8,
    },
    ReplyOk {
        pick: usize,
        value: Option<u8>,
    },
    ReplyErr {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (any::<bool>(), 0..4u8, 0..2u8).prop_map(|(session, id, group)| Action::Lookup { session, id, group }),
        1 => (any::<bool>(), 0..4u8, 0..2u8, 1..4u8)
            .prop_map(|(session, id, group, account)| Action::Bind { session, id, group, account }),
        1 => (any::<bool>(), 0..4u8, 0..2u8).prop_map(|(session, id, group)| Action::Unbind { session, id, group }),
        3 => (any::<usize>(), proptest::option::of(0..4u8)).prop_map(|(pick, value)| Action::ReplyOk { pick, value }),
        3 => any::<usize>().prop_map(|pick| Action::ReplyErr { pick }),
        2 => (0..7_000u64).prop_map(|ms| Action::Advance { ms }),
    ]
}

struct Model {
    store: Store,
    now: Instant,
    /// Commands sent and not replied, with their deadline
    in_flight: Vec<(StoreRequest, Instant)>,
    /// Lookups waiting on an op: op -> (waiters, deadline)
    waiting: HashMap<OpId, (u32, Instant)>,
    op_timeout: Duration,
}

impl Model {
    fn new() -> Self {
        let config = StoreConfig::default();
        let op_timeout = config.store_op_timeout;
        Self {
            store: Store::new(config, Duration::from_secs(55 * 60)),
            now: Instant::now(),
            in_flight: Vec::new(),
            waiting: HashMap::new(),
            op_timeout,
        }
    }

    fn apply(&mut self, action: &Action) -> Result<(), TestCaseError> {
        let breaker_before = self.store.breaker().state();
        let group = |g: u8| if g == 0 { None } else { Some("team-b") };
        let rid = |id: u8| ResponseId::from_str_copy(&format!("resp_{id}")).expect("id");
        match *action {
            Action::Lookup {
                session,
                id,
                group: g,
            } => {
                let lookup = if session {
                    self.store
                        .lookup_session(self.now, group(g), &format!("s{id}"))
                } else {
                    self.store.lookup_response(self.now, &rid(id))
                };
                if let Lookup::Pending(op) = lookup {
                    let entry = self
                        .waiting
                        .entry(op)
                        .or_insert((0, self.now + self.op_timeout));
                    entry.0 += 1;
                }
            }
            Action::Bind {
                session,
                id,
                group: g,
                account,
            } => {
                let account = AccountId(u64::from(account));
                let account_number = account.0;
                if session {
                    self.store
                        .bind_session(self.now, group(g), &format!("s{id}"), account);
                } else {
                    let store = account_number % 2 == 1;
                    self.store
                        .bind_response(self.now, group(g), &rid(id), account, store);
                }
            }
            Action::Unbind {
                session,
                id,
                group: g,
            } => {
                if session {
                    self.store
                        .unbind_session(self.now, group(g), &format!("s{id}"));
                } else {
                    self.store.unbind_response(self.now, &rid(id));
                }
            }
            Action::ReplyOk { pick, value } => {
                if !self.in_flight.is_empty() {
                    let (command, _) = self.in_flight.remove(pick % self.in_flight.len());
                    let value = match command.kind {
                        // A binding, or (value 0) a value no binding has: a bad value is a miss.
                        RequestKind::Get { .. } => value.map(|v| match v {
                            0 => "0".to_owned(),
                            v => format!("{v}:default"),
                        }),
                        _ => None,
                    };
                    self.store.handle_reply(self.now, command.op, Ok(value));
                }
            }
            Action::ReplyErr { pick } => {
                if !self.in_flight.is_empty() {
                    let (command, _) = self.in_flight.remove(pick % self.in_flight.len());
                    self.store
                        .handle_reply(self.now, command.op, Err(StoreFailure::Unreachable));
                }
            }
            Action::Advance { ms } => {
                // The shell's timer loop: wake at each deadline on the way to the target.
                let target = self.now + Duration::from_millis(ms);
                while let Some(at) = self.store.poll_timeout().filter(|at| *at <= target) {
                    self.now = self.now.max(at);
                    self.store.handle_timeout(self.now);
                    self.drain(breaker_before)?;
                }
                self.now = target;
                self.store.handle_timeout(self.now);
            }
        }
        self.drain(breaker_before)
    }

    fn drain(&mut self, _breaker_before: BreakerState) -> Result<(), TestCaseError> {
        let breaker_after = self.store.breaker().state();
        while let Some(command) = self.store.poll_request() {
            let is_probe = command.kind.key() == &StoreKey::probe();
            let closed = |s: BreakerState| matches!(s, BreakerState::Closed { .. });
            if !closed(breaker_after) {
                prop_assert!(
                    is_probe,
                    "command {command:?} while the breaker is {breaker_after:?}"
                );
            }
            if is_probe {
                let probes = self
                    .in_flight
                    .iter()
                    .filter(|(c, d)| c.kind.key() == &StoreKey::probe() && *d > self.now)
                    .count();
                prop_assert_eq!(probes, 0, "one probe at a time");
            }
            if let RequestKind::Get { key } = &command.kind {
                let live = self
                    .in_flight
                    .iter()
                    .filter(|(c, deadline)| {
                        matches!(&c.kind, RequestKind::Get { key: k } if k == key)
                            && *deadline > self.now
                    })
                    .count();
                prop_assert_eq!(live, 0, "a second get in flight for {:?}", key);
            }
            self.in_flight.push((command, self.now + self.op_timeout));
        }
        while let Some(event) = self.store.poll_event() {
            if let StoreEvent::Resolved { op, .. } = event {
                let (waiters, deadline) = self.waiting.remove(&op).ok_or_else(|| {
                    TestCaseError::fail(format!("{op} resolved without a waiting lookup"))
                })?;
                prop_assert!(waiters > 0 && self.now <= deadline, "{op} answered late");
            }
        }
        // Every waiting lookup is answered by its deadline.
        for (op, (_, deadline)) in &self.waiting {
            prop_assert!(
                *deadline > self.now,
                "{op} still unanswered at its deadline"
            );
        }
        // Ops the machine has timed out are no longer in flight for the invariants above.
        let now = self.now;
        self.in_flight.retain(|(_, deadline)| *deadline > now);
        Ok(())
    }
}

proptest! {
    #![proptest_config(crate::support::proptest_config())]

    #[test]
    fn store_lookups_answered_by_deadline_one_get_per_key_breaker_sends_only_probes(
        actions in proptest::collection::vec(action(), 1..80)
    ) {
        let mut model = Model::new();
        for action in &actions {
            model.apply(action)?;
        }
        // Finally let every deadline pass: nothing may stay unanswered.
        model.apply(&Action::Advance { ms: 10_000 })?;
        prop_assert!(model.waiting.is_empty(), "unanswered: {:?}", model.waiting);
        prop_assert!(model.store.pending_ops() <= 1, "only a probe may be left");
    }
}
