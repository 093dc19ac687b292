//! Property tests in virtual time: random accounts, cooldowns, failures and requests.
//! - a decision never picks an excluded, disabled, cooling or wrong-transport account;
//! - a bound create never lands on another account;
//! - a rejection (other than a bound one) only happens when no account is eligible;
//! - the least-loaded layer picks the minimum of its documented order;
//! - retry attempts never start after the budget's end, switches ≤ `max_account_switches`,
//!   bound responses never switch, and nothing is retried after the first event.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use wsv2_core::config::SchedulerConfig;
use wsv2_core::resolver::Transport;
use wsv2_core::rng::Jitter;
use wsv2_core::scheduler::{
    AccountSpec, AccountView, Decision, FailureKind, GiveUpReason, Health, Layer, Pinning, Reject,
    RetryDecision, RetryState, ScheduleRequest, Scheduler, SlotWaiter,
};
use wsv2_core::{AccountId, SessionId, TurnId};

/// Account ids 1..=8 exist in requests; only the first `n` are configured
const ID_SPACE: u64 = 8;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    RateLimited(u64, Option<u64>),
    ServerError(u64),
    AuthFailure(u64),
    Success(u64),
    Reload(u64),
    /// Create t1 of holder `.1` (client key: its parity) asks for a slot of account `.0`
    Acquire(u64, u64),
    Release(u64),
    /// The holder stops waiting
    Cancel(u64),
    Timeout,
    Schedule {
        bound: Option<u64>,
        local: bool,
        session: Option<u64>,
        exclude: u8,
        ws: bool,
    },
}

fn id() -> impl Strategy<Value = u64> {
    1..=ID_SPACE
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..40_000).prop_map(Op::Advance),
        2 => (id(), proptest::option::of(0u64..120)).prop_map(|(a, s)| Op::RateLimited(a, s)),
        3 => id().prop_map(Op::ServerError),
        1 => id().prop_map(Op::AuthFailure),
        1 => id().prop_map(Op::Success),
        1 => id().prop_map(Op::Reload),
        2 => (id(), 1u64..=6).prop_map(|(a, h)| Op::Acquire(a, h)),
        2 => id().prop_map(Op::Release),
        1 => (1u64..=6).prop_map(Op::Cancel),
        1 => Just(Op::Timeout),
        6 => (
            proptest::option::weighted(0.3, id()),
            any::<bool>(),
            proptest::option::of(id()),
            any::<u8>(),
            proptest::bool::weighted(0.7),
        )
            .prop_map(|(bound, local, session, exclude, ws)| Op::Schedule {
                bound,
                local,
                session,
                exclude,
                ws
            }),
    ]
}

fn account_spec() -> impl Strategy<Value = (i32, u32, bool)> {
    (0i32..3, 1u32..4, proptest::bool::weighted(0.75))
}

/// What the test knows independently of the scheduler
#[derive(Clone, Copy, Default)]
struct Model {
    disabled: bool,
    /// Lower bound on the cooldown end set by 429s (5xx cooldowns are checked via the view)
    rate_limited_until: Option<Instant>,
}

fn serves(view: &AccountView, transport: Transport) -> bool {
    transport == Transport::Http || view.spec.transport == transport
}

/// The documented order, written independently: free slot first; with one, higher priority,
/// then load, then waiters; full, load, then waiters, then higher priority; then the lower id
fn better(x: &AccountView, y: &AccountView) -> bool {
    let lx = u64::from(x.unfinished) * u64::from(y.spec.max_concurrency);
    let ly = u64::from(y.unfinished) * u64::from(x.spec.max_concurrency);
    let (fx, fy) = (
        x.unfinished >= x.spec.max_concurrency,
        y.unfinished >= y.spec.max_concurrency,
    );
    let (px, py) = (-i64::from(x.spec.priority), -i64::from(y.spec.priority));
    if fx != fy {
        return !fx;
    }
    if fx {
        (lx, x.waiters, px, x.spec.id) < (ly, y.waiters, py, y.spec.id)
    } else {
        (px, lx, x.waiters, x.spec.id) < (py, ly, y.waiters, y.spec.id)
    }
}

proptest! {
    #![proptest_config(crate::support::proptest_config())]

    #[test]
    fn scheduler_prop_decisions_respect_health_exclusions_and_bindings(
        accounts in proptest::collection::vec(account_spec(), 1..=6),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut sched = Scheduler::new(SchedulerConfig::default());
        let mut model = vec![Model::default(); ID_SPACE as usize + 1];
        for (i, (priority, max, ws)) in accounts.iter().enumerate() {
            sched.upsert_account(AccountSpec {
                id: AccountId(i as u64 + 1),
                priority: *priority,
                max_concurrency: *max,
                transport: if *ws { Transport::WsV2 } else { Transport::Http },
            });
        }
        let configured = |id: u64| id <= accounts.len() as u64;
        for op in ops {
            match op {
                Op::Advance(ms) => now += Duration::from_millis(ms),
                Op::RateLimited(id, secs) => {
                    let d = secs.map(Duration::from_secs);
                    sched.handle_rate_limited(now, AccountId(id), d);
                    let until = now + d.unwrap_or(Duration::from_secs(60));
                    let m = &mut model[id as usize];
                    m.rate_limited_until = Some(m.rate_limited_until.map_or(until, |t| t.max(until)));
                }
                Op::ServerError(id) => sched.handle_server_error(now, AccountId(id)),
                Op::AuthFailure(id) => {
                    sched.handle_auth_failure(AccountId(id));
                    model[id as usize].disabled = true;
                }
                Op::Success(id) => sched.handle_success(now, AccountId(id)),
                Op::Reload(id) => {
                    if let Some(view) = sched.account(AccountId(id), now) {
                        sched.upsert_account(view.spec);
                        model[id as usize].disabled = false;
                    }
                }
                Op::Acquire(id, holder) => {
                    let before = sched.account(AccountId(id), now);
                    let max = before.map_or(1, |v| v.spec.max_concurrency);
                    let waiter = SlotWaiter {
                        holder: SessionId(holder),
                        turn: TurnId(1),
                        max_concurrency: max,
                        tenant: holder % 2,
                    };
                    let ok = sched.acquire_slot(AccountId(id), waiter);
                    let free = |v: AccountView| v.waiters == 0 && v.unfinished < max;
                    prop_assert_eq!(ok, before.is_none_or(free), "granted at once unless it must wait");
                    if let Some(view) = sched.account(AccountId(id), now) {
                        prop_assert!(view.unfinished <= max);
                        prop_assert!(view.waiters == 0 || view.unfinished > 0, "waiting behind a free account");
                    }
                }
                Op::Release(id) => sched.release_slot(AccountId(id)),
                Op::Cancel(holder) => sched.cancel_slot_waits(SessionId(holder), None),
                Op::Timeout => {
                    if let Some(at) = sched.poll_timeout() {
                        now = now.max(at);
                    }
                    sched.handle_timeout(now);
                }
                Op::Schedule { bound, local, session, exclude, ws } => {
                    let exclude: Vec<AccountId> = (1..=ID_SPACE)
                        .filter(|i| exclude & (1 << (i - 1)) != 0)
                        .map(AccountId)
                        .collect();
                    let transport = if ws { Transport::WsV2 } else { Transport::Http };
                    let request = ScheduleRequest {
                        bound_account: bound.map(AccountId),
                        connection_local: local,
                        session_account: session.map(AccountId),
                        exclude: &exclude,
                        conn_use: &[],
                        transport,
                    };
                    let decision = sched.schedule(now, &request);
                    let eligible: Vec<AccountView> = sched
                        .account_ids()
                        .filter_map(|id| sched.account(id, now))
                        .filter(|v| v.health == Health::Usable)
                        .filter(|v| !exclude.contains(&v.spec.id) && serves(v, transport))
                        .collect();
                    match decision {
                        Decision::Schedule(choice) => {
                            let id = choice.account;
                            let m = model[id.0 as usize];
                            let view = sched.account(id, now).expect("chosen account is configured");
                            prop_assert!(!exclude.contains(&id), "excluded {id} chosen");
                            prop_assert!(!m.disabled, "disabled {id} chosen");
                            prop_assert!(m.rate_limited_until.is_none_or(|t| t <= now), "cooling {id} chosen");
                            // A last resort is cooling, only because it failed.
                            let last_resort = choice.layer == Layer::LastResort;
                            prop_assert!(view.health == Health::Usable || last_resort);
                            prop_assert!(serves(&view, transport));
                            prop_assert_eq!(choice.max_concurrency, view.spec.max_concurrency);
                            if let Some(b) = bound {
                                prop_assert_eq!(id, AccountId(b), "bound create moved");
                                prop_assert_eq!(choice.layer, Layer::PreviousResponse);
                            } else if choice.layer == Layer::LeastLoaded {
                                for other in &eligible {
                                    prop_assert!(!better(other, &view), "{} beats {id}", other.spec.id);
                                }
                            } else if last_resort {
                                prop_assert!(eligible.is_empty(), "last resort with {id} eligible");
                            } else {
                                prop_assert_eq!(choice.layer, Layer::Session);
                                prop_assert_eq!(Some(id.0), session);
                            }
                        }
                        Decision::Reject(reject) => {
                            if let Some(b) = bound {
                                let m = model[b as usize];
                                if !configured(b) || local {
                                    prop_assert_eq!(reject, Reject::PreviousResponseNotFound);
                                } else if m.disabled && matches!(reject, Reject::RateLimited { .. }) {
                                    prop_assert!(false, "disabled bound account answered 429");
                                }
                                if let Reject::RateLimited { until, .. } = reject {
                                    prop_assert!(until > now);
                                }
                            } else {
                                prop_assert!(eligible.is_empty(), "rejected {} with eligible accounts", reject.code());
                                if reject == Reject::UpgradeRequired {
                                    prop_assert_eq!(transport, Transport::WsV2);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn scheduler_prop_retries_stay_within_budget_and_switch_limit(
        pinning in prop_oneof![Just(Pinning::Free), Just(Pinning::Bound), Just(Pinning::ConnectionLocal)],
        failures in proptest::collection::vec(
            (0u8..6, proptest::bool::weighted(0.1), prop_oneof![3 => 0u64..50, 1 => 0u64..3_000]),
            1..40,
        ),
        seed in any::<u64>(),
    ) {
        let config = SchedulerConfig::default();
        let t0 = Instant::now();
        let budget_end = t0 + config.retry_total_budget;
        let mut jitter = Jitter::new(seed);
        let mut retry = RetryState::new(t0, AccountId(1), pinning, &config);
        let mut account = 1;
        let mut now = t0;
        for (kind, written, run_ms) in failures {
            // The attempt runs for a while, then fails.
            now += Duration::from_millis(run_ms);
            let failure = match kind {
                0 => FailureKind::RateLimited { reset_after: None },
                1 => FailureKind::ServerError,
                2 => FailureKind::AuthFailed,
                3 => FailureKind::UpstreamLost,
                4 => FailureKind::DialFailed,
                _ => FailureKind::Refused,
            };
            match retry.on_failure(now, failure, written, &mut jitter) {
                RetryDecision::RetryAt { at, switch_account } => {
                    prop_assert!(!written, "retried after the first event");
                    prop_assert!(at >= now && at <= budget_end, "attempt outside the budget");
                    prop_assert!(retry.switches() <= config.max_account_switches);
                    if pinning != Pinning::Free {
                        prop_assert!(!switch_account, "pinned response switched");
                    }
                    if switch_account {
                        account += 1;
                        prop_assert!(retry.tried_accounts().contains(&AccountId(account - 1)));
                    }
                    now = at;
                    retry.attempt_started(AccountId(account));
                }
                RetryDecision::GiveUp(reason) => {
                    if written {
                        prop_assert_eq!(reason, GiveUpReason::EventWritten);
                    }
                    if reason == GiveUpReason::SwitchLimit {
                        prop_assert_eq!(retry.switches(), config.max_account_switches);
                    }
                    break;
                }
            }
        }
        prop_assert!(retry.switches() <= config.max_account_switches);
        prop_assert_eq!(retry.tried_accounts().len() as u32, retry.switches());
    }
}
