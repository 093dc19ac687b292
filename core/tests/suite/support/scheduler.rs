//! Shared helpers for the scheduler tests: virtual time and a readable trace, one line per
//! input and per output.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use wsv2_core::config::SchedulerConfig;
use wsv2_core::resolver::Transport;
use wsv2_core::scheduler::{
    AccountSpec, Decision, FailureKind, Health, Reject, RetryDecision, ScheduleRequest, Scheduler,
    SchedulerEvent, SlotWaiter,
};
use wsv2_core::{AccountId, SessionId, TurnId};

use super::trace::Trace;

/// Account `n`
pub fn a(n: u64) -> AccountId {
    AccountId(n)
}

/// A WS account with the given priority and concurrency
pub fn ws(n: u64, priority: i32, max_concurrency: u32) -> AccountSpec {
    AccountSpec {
        id: a(n),
        priority,
        max_concurrency,
        transport: Transport::WsV2,
    }
}

/// An HTTP-only account with the given priority and concurrency
pub fn http(n: u64, priority: i32, max_concurrency: u32) -> AccountSpec {
    AccountSpec {
        id: a(n),
        priority,
        max_concurrency,
        transport: Transport::Http,
    }
}

/// A scheduler driven in virtual time, recording a trace
pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub sched: Scheduler,
    pub trace: Trace,
    /// Holders `acquire` numbered so far
    pub holders: u64,
}

impl Sim {
    pub fn new(accounts: &[AccountSpec]) -> Self {
        Self::with_config(SchedulerConfig::default(), accounts)
    }

    pub fn with_config(config: SchedulerConfig, accounts: &[AccountSpec]) -> Self {
        let t0 = Instant::now();
        let mut sim = Self {
            t0,
            now: t0,
            sched: Scheduler::new(config),
            trace: Trace::new(t0),
            holders: 0,
        };
        for spec in accounts {
            sim.upsert(*spec);
        }
        sim
    }

    /// Virtual time as `+Nms`
    pub fn stamp(&self, at: Instant) -> String {
        format!("+{}ms", at.saturating_duration_since(self.t0).as_millis())
    }

    fn input(&mut self, what: String) {
        self.trace.input(self.now, what);
    }

    fn output(&mut self, what: String) {
        self.trace.output(self.now, what);
    }

    /// Moves virtual time forward
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Moves virtual time to `t0 + at`
    pub fn at(&mut self, at: Duration) {
        assert!(self.t0 + at >= self.now, "virtual time never goes back");
        self.now = self.t0 + at;
    }

    pub fn upsert(&mut self, spec: AccountSpec) {
        self.input(format!(
            "upsert {} priority={} max={} {}",
            spec.id, spec.priority, spec.max_concurrency, spec.transport
        ));
        self.sched.upsert_account(spec);
    }

    pub fn schedule(&mut self, request: &ScheduleRequest<'_>) -> Decision {
        let decision = self.sched.schedule(self.now, request);
        let exclude: Vec<String> = request.exclude.iter().map(ToString::to_string).collect();
        let input = format!(
            "schedule {} bound={} local={} session={} exclude=[{}]",
            request.transport,
            request
                .bound_account
                .map_or("-".to_owned(), |id| id.to_string()),
            request.connection_local,
            request
                .session_account
                .map_or("-".to_owned(), |id| id.to_string()),
            exclude.join(","),
        );
        self.input(input);
        let output = self.describe(decision);
        self.output(output);
        decision
    }

    /// A decision with instants shown in virtual time
    pub fn describe(&self, decision: Decision) -> String {
        match decision {
            Decision::Reject(Reject::RateLimited { account, until }) => format!(
                "reject 429 rate_limited {account} until={} retry_after={}s",
                self.stamp(until),
                Reject::RateLimited { account, until }
                    .retry_after_secs(self.now)
                    .unwrap_or(0)
            ),
            Decision::Reject(Reject::NoAccount { retry_at: Some(at) }) => {
                format!("reject 503 no_account retry_at={}", self.stamp(at))
            }
            Decision::Reject(Reject::AccountDisabled { account }) => {
                format!("reject 503 account_disabled {account}")
            }
            other => other.to_string(),
        }
    }

    pub fn rate_limited(&mut self, account: u64, reset_after: Option<Duration>) {
        self.input(format!(
            "rate_limited {} reset_after={reset_after:?}",
            a(account)
        ));
        self.sched
            .handle_rate_limited(self.now, a(account), reset_after);
        self.health_line(account);
        self.after_input();
    }

    pub fn server_error(&mut self, account: u64) {
        self.input(format!("server_error {}", a(account)));
        self.sched.handle_server_error(self.now, a(account));
        self.health_line(account);
        self.after_input();
    }

    pub fn auth_failure(&mut self, account: u64) {
        self.input(format!("auth_failure {}", a(account)));
        self.sched.handle_auth_failure(a(account));
        self.health_line(account);
        self.after_input();
    }

    /// Feeds a failure to the scheduler's health rules
    pub fn failure(&mut self, account: u64, failure: FailureKind) {
        self.input(format!("failure {} {failure:?}", a(account)));
        self.sched.handle_failure(self.now, a(account), failure);
        self.health_line(account);
        self.after_input();
    }

    pub fn success(&mut self, account: u64) {
        self.input(format!("success {}", a(account)));
        self.sched.handle_success(self.now, a(account));
        self.health_line(account);
        self.after_input();
    }

    /// Create t1 of a new holder (`s1`, `s2`, … in call order) of client key 0 asks for a slot
    /// of `account`: true if granted at once, else it waits
    pub fn acquire(&mut self, account: u64, max: u32) -> bool {
        self.holders += 1;
        self.acquire_as(account, max, self.holders, 0)
    }

    /// Create t1 of holder `s{holder}` of client key `key` asks for a slot of `account`: true
    /// if granted at once, else it waits (the grants it caused are traced)
    pub fn acquire_as(&mut self, account: u64, max: u32, holder: u64, key: u64) -> bool {
        let waiter = SlotWaiter {
            holder: SessionId(holder),
            turn: TurnId(1),
            max_concurrency: max,
            tenant: key,
        };
        self.input(format!(
            "acquire_slot {} s{holder} key={key} max={max}",
            a(account)
        ));
        let ok = self.sched.acquire_slot(a(account), waiter);
        self.output(if ok { "granted" } else { "queued" }.to_owned());
        self.drain();
        ok
    }

    /// Holder `s{holder}` stops waiting for slots
    pub fn cancel(&mut self, holder: u64) {
        self.input(format!("cancel_slot_waits s{holder}"));
        self.sched.cancel_slot_waits(SessionId(holder), None);
    }

    /// Releases a slot and returns the events it caused (also traced)
    pub fn release(&mut self, account: u64) -> Vec<SchedulerEvent> {
        self.input(format!("release_slot {}", a(account)));
        self.sched.release_slot(a(account));
        self.drain()
    }

    /// Fires the scheduler's timer if due at `now`, tracing it and the events it yields
    pub fn tick(&mut self) -> Vec<SchedulerEvent> {
        let timeout = self.sched.poll_timeout();
        self.input(format!(
            "timeout (poll_timeout={})",
            timeout.map_or("-".to_owned(), |t| self.stamp(t))
        ));
        self.sched.handle_timeout(self.now);
        self.drain()
    }

    /// Drains events into the trace and returns them
    pub fn drain(&mut self) -> Vec<SchedulerEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.sched.poll_event() {
            self.output(format!("event {event}"));
            events.push(event);
        }
        events
    }

    /// Traces an account's health after a health input
    pub fn health_line(&mut self, account: u64) {
        let text = match self.sched.account(a(account), self.now).map(|v| v.health) {
            None => "unknown".to_owned(),
            Some(Health::Usable) => "usable".to_owned(),
            Some(Health::Disabled) => "disabled".to_owned(),
            Some(Health::Cooling { until }) => format!("cooling until {}", self.stamp(until)),
        };
        self.output(format!("{} {text}", a(account)));
    }

    fn after_input(&mut self) {
        self.drain();
    }

    /// Traces a retry decision
    pub fn note_retry(&mut self, input: &str, decision: RetryDecision) {
        let output = match decision {
            RetryDecision::RetryAt { at, switch_account } => format!(
                "retry at {} switch_account={switch_account}",
                self.stamp(at)
            ),
            RetryDecision::GiveUp(reason) => format!("give up {}", reason.as_str()),
        };
        self.input(input.to_owned());
        self.output(output);
    }

    pub fn note(&mut self, text: &str) {
        self.trace.note(text);
    }

    pub fn snapshot(&self, name: &str) {
        super::assert_trace(name, &self.trace);
    }
}

/// A fresh (unbound) request for a WebSocket session
pub fn ws_request() -> ScheduleRequest<'static> {
    ScheduleRequest::fresh(Transport::WsV2)
}

/// Asserts a decision schedules `account` and returns its max concurrency
#[track_caller]
pub fn expect_account(decision: Decision, account: u64) -> u32 {
    match decision {
        Decision::Schedule(choice) if choice.account == a(account) => choice.max_concurrency,
        other => panic!("expected {}, got {other}", a(account)),
    }
}
