//! The [`Store`] machine: local bindings, store commands, op deadlines and the breaker.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::binding::Binding;
use super::breaker::Breaker;
use super::entry::{Check, LocalBinding, LocalEntry};
use super::key::StoreKey;
use super::local::LocalMap;
use super::op::{GetState, Op, Purpose};
use super::request::{
    BindingRef, Lookup, OpId, RequestKind, StoreEvent, StoreFailure, StoreRequest, StoreStats,
};
use crate::config::StoreConfig;
use crate::{AccountId, ConnId, Lane, ResponseId};

/// Where the next turn of a response can run: the conn and lane whose cache holds it
///
/// Purely local (never written to the store): a conn id means nothing to another process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseConn {
    /// The upstream conn the response ran on
    pub conn: ConnId,
    /// Its lane
    pub lane: Lane,
    /// Its `store` flag (false: only this conn's cache can continue it)
    pub store: bool,
}

/// Sticky bindings of one gateway process, sans-IO
///
/// Inputs: the lookup/bind/unbind calls of routing decisions, [`handle_reply`](Self::handle_reply)
/// for each command's result and [`handle_timeout`](Self::handle_timeout). After any input,
/// drain [`poll_request`](Self::poll_request) (run each command, in order, on the store) and
/// [`poll_event`](Self::poll_event), then re-arm the timer with
/// [`poll_timeout`](Self::poll_timeout). See the [module doc](super) for the rules.
#[derive(Debug)]
pub struct Store {
    config: StoreConfig,
    /// `upstream.max_age`: the longest a conn, and so a `store:false` chain, can live
    conn_max_age: Duration,
    breaker: Breaker,
    /// Bindings written, deleted or read through this gateway
    bindings: LocalMap<StoreKey, LocalEntry>,
    response_conns: LocalMap<StoreKey, ResponseConn>,
    ops: HashMap<OpId, Op>,
    deadlines: BTreeSet<(Instant, OpId)>,
    /// The one get in flight per key whose reply may still answer lookups (waiting or answered
    /// early by the breaker); superseded gets are not here
    pending_gets: HashMap<StoreKey, OpId>,
    commands: VecDeque<StoreRequest>,
    events: VecDeque<StoreEvent>,
    next_op: u64,
    stats: StoreStats,
}

impl Store {
    /// A store machine with empty local maps and a closed breaker; `conn_max_age` is
    /// `upstream.max_age` (the lifetime of a `store:false` response's binding)
    pub fn new(config: StoreConfig, conn_max_age: Duration) -> Self {
        let breaker = Breaker::new(config.breaker_failure_limit, config.breaker_probe_interval);
        let capacity = config.local_cache_entries;
        Self {
            config,
            conn_max_age,
            breaker,
            bindings: LocalMap::new(capacity),
            response_conns: LocalMap::new(capacity),
            ops: HashMap::new(),
            deadlines: BTreeSet::new(),
            pending_gets: HashMap::new(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            next_op: 0,
            stats: StoreStats::default(),
        }
    }

    /// The record of response `id` (`previous_response_id`): its account and the group that
    /// created it, whatever group asks (judge it with
    /// [`judge_continuation`](super::judge_continuation))
    pub fn lookup_response(&mut self, now: Instant, id: &ResponseId) -> Lookup {
        let key = StoreKey::response(id.as_bytes());
        self.lookup(now, key, self.config.response_binding_ttl, false)
    }

    /// The account session key `session` (`session-id` header or `prompt_cache_key`) is bound to
    /// in `group` (`None`: the default group)
    pub fn lookup_session(&mut self, now: Instant, group: Option<&str>, session: &str) -> Lookup {
        let key = StoreKey::session(self.group(group), session.as_bytes());
        self.lookup(now, key, self.config.session_binding_ttl, true)
    }

    /// Binds response `id` to `account`, recording `group` as its creator: after a terminal
    /// with a response id, or a `generate:false` prewarm. A `store:true` response's binding
    /// lives `response_binding_ttl` (as long as upstream keeps the response), a `store:false`
    /// one at most `upstream.max_age` (its chain dies with its conn); neither is refreshed.
    pub fn bind_response(
        &mut self,
        now: Instant,
        group: Option<&str>,
        id: &ResponseId,
        account: AccountId,
        store: bool,
    ) {
        let group = self.group(group).to_owned();
        let key = StoreKey::response(id.as_bytes());
        let binding = BindingRef::Response(id.clone());
        let ttl = self.response_ttl(store);
        self.bind(now, key, ttl, group, account, binding);
    }

    /// Binds session key `session` to `account` (a rebind replaces the old account)
    pub fn bind_session(
        &mut self,
        now: Instant,
        group: Option<&str>,
        session: &str,
        account: AccountId,
    ) {
        let group = self.group(group).to_owned();
        let key = StoreKey::session(&group, session.as_bytes());
        if self.holds_unchanged(now, &key, Binding::new(account, &group)) {
            // The store holds it already (the hit refreshed its TTL): rewriting it would
            // reset the trust clock on every hit and overwrite another gateway's rebind.
            self.stats.unchanged_binds += 1;
            return;
        }
        let binding = BindingRef::Session(key.clone());
        self.bind(
            now,
            key,
            self.config.session_binding_ttl,
            group,
            account,
            binding,
        );
    }

    /// Deletes the binding of response `id` (e.g. its account failed hard)
    pub fn unbind_response(&mut self, now: Instant, id: &ResponseId) {
        let key = StoreKey::response(id.as_bytes());
        self.unbind(now, key, self.config.response_binding_ttl);
    }

    /// Deletes the binding of session key `session`
    pub fn unbind_session(&mut self, now: Instant, group: Option<&str>, session: &str) {
        let key = StoreKey::session(self.group(group), session.as_bytes());
        self.unbind(now, key, self.config.session_binding_ttl);
    }

    /// Remembers where response `id` ran, for the next turn's preferred conn (local only; kept
    /// as long as its binding)
    pub fn record_response_conn(&mut self, now: Instant, id: &ResponseId, at: ResponseConn) {
        let key = StoreKey::response(id.as_bytes());
        let ttl = self.response_ttl(at.store);
        self.response_conns.insert(key, at, now + ttl);
    }

    /// Where response `id` ran, if this process still remembers it
    pub fn response_conn(&mut self, now: Instant, id: &ResponseId) -> Option<ResponseConn> {
        let key = StoreKey::response(id.as_bytes());
        self.response_conns.get(&key, now).cloned()
    }

    /// Forgets where response `id` ran (its conn closed or its lane moved on)
    pub fn forget_response_conn(&mut self, id: &ResponseId) {
        let key = StoreKey::response(id.as_bytes());
        self.response_conns.remove(&key);
    }

    /// Takes the result of command `op`; a reply after the op's deadline is ignored
    pub fn handle_reply(
        &mut self,
        now: Instant,
        op: OpId,
        result: Result<Option<String>, StoreFailure>,
    ) {
        let Some(record) = self.ops.remove(&op) else {
            self.stats.late_replies += 1;
            return;
        };
        self.deadlines.remove(&(record.deadline, op));
        self.settle(now, op, record, result);
    }

    /// Fails every op past its deadline (a get becomes a miss) and sends a due probe
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, op)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(record) = self.ops.remove(&op) else {
                continue;
            };
            self.stats.timeouts += 1;
            self.settle(now, op, record, Err(StoreFailure::TimedOut));
        }
        if self.breaker.probe_due(now) && self.ops.len() < self.config.max_pending_ops {
            self.breaker.start_probe();
            self.stats.probes += 1;
            self.issue(
                now,
                RequestKind::Get {
                    key: StoreKey::probe(),
                },
                Purpose::Probe,
            );
        }
    }

    /// Applies the outcome of op `op` (a reply, or its deadline passing) to the local maps,
    /// the counters and the breaker
    fn settle(
        &mut self,
        now: Instant,
        op: OpId,
        record: Op,
        result: Result<Option<String>, StoreFailure>,
    ) {
        let is_probe = matches!(record.purpose, Purpose::Probe);
        // A success first, so the refresh after a hit may go out; a failure last, so that an
        // opening breaker answers the lookups still waiting after this one.
        if result.is_ok() {
            self.breaker_success();
        }
        match record.purpose {
            Purpose::Get {
                key,
                ttl,
                refresh,
                state,
            } => {
                let binding = match &result {
                    Ok(Some(value)) => self.parse_binding(value),
                    Ok(None) | Err(_) => None,
                };
                match (&result, binding) {
                    (Ok(_), Some(_)) => self.stats.remote_hits += 1,
                    (Ok(_), None) => self.stats.remote_misses += 1,
                    (Err(_), _) => self.stats.get_failures += 1,
                }
                if state != GetState::Superseded {
                    self.pending_gets.remove(&key);
                    if state == GetState::Waiting {
                        self.events.push_back(StoreEvent::Resolved {
                            op,
                            result: binding,
                        });
                    }
                    if let Some(binding) = binding {
                        let copy =
                            LocalEntry::copy(binding, record.sent, self.config.local_copy_max_age);
                        self.bindings.insert(key.clone(), copy, now + ttl);
                        if refresh {
                            self.refresh_remote(now, key, ttl);
                        }
                    }
                }
            }
            Purpose::Set {
                key,
                group,
                account,
                binding,
            } => {
                self.write_answered(&key, op, record.sent, result.is_ok());
                if result.is_err() {
                    self.set_failed(group, account, binding);
                }
            }
            Purpose::Delete { key } => {
                self.write_answered(&key, op, record.sent, result.is_ok());
                self.stats.delete_failures += u64::from(result.is_err());
            }
            Purpose::Refresh => self.stats.refresh_failures += u64::from(result.is_err()),
            Purpose::Probe => {}
        }
        if result.is_err() {
            self.breaker_failure(now, is_probe);
        }
    }

    /// The next command to run on the store, in emission order
    #[must_use]
    pub fn poll_request(&mut self) -> Option<StoreRequest> {
        self.commands.pop_front()
    }

    /// The next event: answered lookups, failed writes, breaker changes
    #[must_use]
    pub fn poll_event(&mut self) -> Option<StoreEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let op = self.deadlines.first().map(|(at, _)| *at);
        op.into_iter().chain(self.breaker.poll_timeout()).min()
    }

    /// Counters since creation
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            breaker_opened: self.breaker.opened_total(),
            ..self.stats
        }
    }

    /// The breaker (for its state gauge)
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Commands sent and not yet answered or timed out
    pub fn pending_ops(&self) -> usize {
        self.ops.len()
    }

    /// The effective group name of a client key's `group`
    pub fn group<'a>(&'a self, group: Option<&'a str>) -> &'a str {
        group
            .filter(|g| !g.is_empty())
            .unwrap_or(&self.config.default_group)
    }

    /// A `refresh` lookup moves the binding's expiry, locally and in the store, on every hit;
    /// a local entry older than `local_copy_max_age` is dropped and the store read again
    fn lookup(&mut self, now: Instant, key: StoreKey, ttl: Duration, refresh: bool) -> Lookup {
        match self.bindings.get(&key, now).copied() {
            Some(entry) if entry.stale(now) => {
                self.stats.rechecks += 1;
                self.bindings.remove(&key);
            }
            Some(LocalEntry {
                binding: LocalBinding::Bound(binding),
                check,
            }) => {
                self.stats.local_hits += 1;
                if refresh {
                    if check != Check::Pinned {
                        self.bindings.set_expiry(&key, now + ttl);
                    }
                    self.refresh_remote(now, key, ttl);
                }
                return Lookup::Hit(binding);
            }
            Some(LocalEntry {
                binding: LocalBinding::Deleted,
                ..
            }) => {
                self.stats.local_tombstone_misses += 1;
                return Lookup::Miss;
            }
            None => {}
        }
        if !self.breaker.allows_requests() {
            self.stats.breaker_misses += 1;
            return Lookup::Miss;
        }
        if let Some(&op) = self.pending_gets.get(&key) {
            self.stats.joined_gets += 1;
            // A get the breaker answered early may be waited on again once it has closed.
            self.set_get_state(op, GetState::Waiting);
            return Lookup::Pending(op);
        }
        if self.ops.len() >= self.config.max_pending_ops {
            self.stats.shed += 1;
            return Lookup::Miss;
        }
        self.stats.gets += 1;
        let purpose = Purpose::Get {
            key: key.clone(),
            ttl,
            refresh,
            state: GetState::Waiting,
        };
        let op = self.issue(now, RequestKind::Get { key: key.clone() }, purpose);
        self.pending_gets.insert(key, op);
        Lookup::Pending(op)
    }

    fn bind(
        &mut self,
        now: Instant,
        key: StoreKey,
        ttl: Duration,
        group: String,
        account: AccountId,
        binding: BindingRef,
    ) {
        let written = Binding::new(account, &group);
        self.supersede_pending_get(&key, Some(written));
        let check = if self.may_write() {
            self.stats.sets += 1;
            let value = Binding::encode(account, &group);
            let purpose = Purpose::Set {
                key: key.clone(),
                group,
                account,
                binding,
            };
            let kind = RequestKind::Set {
                key: key.clone(),
                value,
                ttl,
            };
            Check::Writing(self.issue(now, kind, purpose))
        } else {
            Check::Pinned
        };
        let entry = LocalEntry {
            binding: LocalBinding::Bound(written),
            check,
        };
        self.bindings.insert(key, entry, now + ttl);
    }

    fn unbind(&mut self, now: Instant, key: StoreKey, ttl: Duration) {
        self.supersede_pending_get(&key, None);
        // The tombstone answers Miss at once; pinned, it outlives any copy the store could still
        // hold (a failed delete leaves the store's key to expire within `ttl`).
        let check = if self.may_write() {
            self.stats.deletes += 1;
            let purpose = Purpose::Delete { key: key.clone() };
            Check::Writing(self.issue(now, RequestKind::Delete { key: key.clone() }, purpose))
        } else {
            Check::Pinned
        };
        let entry = LocalEntry {
            binding: LocalBinding::Deleted,
            check,
        };
        self.bindings.insert(key, entry, now + ttl);
    }

    /// Whether `key`'s local entry is `binding`, trusted now and taken (or being written) by
    /// the store
    fn holds_unchanged(&mut self, now: Instant, key: &StoreKey, binding: Binding) -> bool {
        self.bindings.get(key, now).is_some_and(|e| {
            e.binding == LocalBinding::Bound(binding) && !e.stale(now) && e.check != Check::Pinned
        })
    }

    /// The store answered write `op` of `key` (sent at `sent`): see [`LocalEntry::write_answered`]
    fn write_answered(&mut self, key: &StoreKey, op: OpId, sent: Instant, ok: bool) {
        let max_age = self.config.local_copy_max_age;
        if let Some(entry) = self.bindings.peek_mut(key) {
            entry.write_answered(op, ok, sent, max_age);
        }
    }

    /// A local write answers the waiting get of its key with the written value; the get's
    /// reply, older than the write, is then never copied
    fn supersede_pending_get(&mut self, key: &StoreKey, result: Option<Binding>) {
        let Some(op) = self.pending_gets.remove(key) else {
            return;
        };
        if self.set_get_state(op, GetState::Superseded) == Some(GetState::Waiting) {
            self.events.push_back(StoreEvent::Resolved { op, result });
        }
    }

    /// Moves get `op` to `state`, returning its previous state
    fn set_get_state(&mut self, op: OpId, state: GetState) -> Option<GetState> {
        match self.ops.get_mut(&op) {
            Some(Op {
                purpose: Purpose::Get { state: current, .. },
                ..
            }) => Some(std::mem::replace(current, state)),
            _ => None,
        }
    }

    fn refresh_remote(&mut self, now: Instant, key: StoreKey, ttl: Duration) {
        if self.may_write() {
            self.stats.refreshes += 1;
            self.issue(now, RequestKind::Expire { key, ttl }, Purpose::Refresh);
        }
    }

    /// Whether a write may be sent now; counts the ones that may not
    fn may_write(&mut self) -> bool {
        if !self.breaker.allows_requests() {
            self.stats.writes_skipped += 1;
            false
        } else if self.ops.len() >= self.config.max_pending_ops {
            self.stats.shed += 1;
            false
        } else {
            true
        }
    }

    fn issue(&mut self, now: Instant, kind: RequestKind, purpose: Purpose) -> OpId {
        self.next_op += 1;
        let op = OpId(self.next_op);
        let deadline = now + self.config.store_op_timeout;
        self.ops.insert(
            op,
            Op {
                sent: now,
                deadline,
                purpose,
            },
        );
        self.deadlines.insert((deadline, op));
        self.commands.push_back(StoreRequest { op, kind });
        op
    }

    fn parse_binding(&mut self, value: &str) -> Option<Binding> {
        let parsed = Binding::decode(value);
        self.stats.bad_values += u64::from(parsed.is_none());
        parsed
    }

    /// How long a response's binding lives: as long as what it protects
    fn response_ttl(&self, store: bool) -> Duration {
        if store {
            self.config.response_binding_ttl
        } else {
            self.config.response_binding_ttl.min(self.conn_max_age)
        }
    }

    fn set_failed(&mut self, group: String, account: AccountId, binding: BindingRef) {
        self.stats.set_failures += 1;
        self.events.push_back(StoreEvent::SetFailed {
            group,
            account,
            binding,
        });
    }

    fn breaker_success(&mut self) {
        if !self.breaker.allows_requests() {
            self.events.push_back(StoreEvent::BreakerClosed);
        }
        self.breaker.record_success();
    }

    /// Counts a failure toward opening the breaker; once it is open only the probe's failure
    /// counts (late failures of earlier commands must not restart the probe clock)
    fn breaker_failure(&mut self, now: Instant, is_probe: bool) {
        if !self.breaker.allows_requests() && !is_probe {
            return;
        }
        if self.breaker.record_failure(now) {
            self.events.push_back(StoreEvent::BreakerOpened);
            // Decisions never wait on an open breaker: answer every waiting lookup now.
            let mut waiting: Vec<OpId> = self.pending_gets.values().copied().collect();
            waiting.sort_unstable();
            for op in waiting {
                if self.set_get_state(op, GetState::AnsweredEarly) == Some(GetState::Waiting) {
                    self.events
                        .push_back(StoreEvent::Resolved { op, result: None });
                }
            }
        }
    }
}
