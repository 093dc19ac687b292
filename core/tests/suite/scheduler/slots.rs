//! Per-account concurrency slots: counted per account on this instance with the decision's max
//! concurrency on every turn; creates that find none free wait in the scheduler's queue, and
//! each freed slot goes to the next of them: round-robin by client key, oldest first.

use crate::support::scheduler::{Sim, a, expect_account, ws, ws_request};
use wsv2_core::scheduler::{SchedulerEvent, SlotWaiter};
use wsv2_core::{SessionId, TurnId};

/// The grant of create t1 of holder `s{holder}` of client key `key` on `account`
fn granted(account: u64, holder: u64, key: u64, max: u32) -> SchedulerEvent {
    SchedulerEvent::SlotGranted {
        account: a(account),
        waiter: SlotWaiter {
            holder: SessionId(holder),
            turn: TurnId(1),
            max_concurrency: max,
            tenant: key,
        },
    }
}

#[test]
fn scheduler_slots_use_the_decisions_max_concurrency_on_every_turn() {
    let mut sim = Sim::new(&[ws(1, 0, 2)]);
    let max = expect_account(sim.schedule(&ws_request()), 1);
    assert_eq!(max, 2);
    sim.note("turn 1 and turn 2 of two sessions fill the account");
    assert!(sim.acquire(1, max));
    assert!(sim.acquire(1, max));
    assert!(
        !sim.acquire(1, max),
        "a third unfinished response exceeds the max: it waits"
    );
    sim.cancel(3);
    sim.note("a reload raises concurrency; the running session keeps its decision's max");
    sim.upsert(ws(1, 0, 5));
    assert!(!sim.acquire(1, max));
    sim.cancel(4);
    sim.note("a new session's decision carries the new max");
    let new_max = expect_account(sim.schedule(&ws_request()), 1);
    assert_eq!(new_max, 5);
    assert!(sim.acquire(1, new_max));
    assert_eq!(sim.sched.account(a(1), sim.now).unwrap().unfinished, 3);
    sim.release(1);
    sim.release(1);
    assert!(
        sim.acquire(1, max),
        "a later turn gets a slot once one is free"
    );
    sim.snapshot("scheduler_slots_use_the_decisions_max_concurrency_on_every_turn");
}

#[test]
fn scheduler_slots_are_counted_per_account() {
    let mut sim = Sim::new(&[ws(1, 0, 1), ws(2, 0, 1)]);
    assert!(sim.acquire(1, 1));
    assert!(sim.acquire(2, 1));
    assert!(!sim.acquire(1, 1));
    assert!(
        sim.release(2).is_empty(),
        "a slot freed on a2 does not go to a1's waiter"
    );
    assert!(sim.acquire(2, 1));
}

#[test]
fn scheduler_freed_slot_wakes_one_waiter_per_release() {
    let mut sim = Sim::new(&[ws(1, 0, 2)]);
    assert!(sim.acquire(1, 2));
    assert!(sim.acquire(1, 2));
    sim.note("no waiters: a release grants nobody");
    assert!(sim.release(1).is_empty());
    assert!(sim.acquire(1, 2));
    sim.note("three creates wait for a slot");
    for _ in 0..3 {
        assert!(!sim.acquire(1, 2));
    }
    assert_eq!(sim.sched.poll_event(), None);
    assert_eq!(sim.release(1), [granted(1, 4, 0, 2)]);
    assert_eq!(sim.release(1), [granted(1, 5, 0, 2)]);
    sim.note("the third keeps waiting, then times out");
    sim.cancel(6);
    assert!(
        sim.release(1).is_empty(),
        "the waiter left: nothing to grant"
    );
    assert_eq!(sim.sched.account(a(1), sim.now).unwrap().unfinished, 1);
    sim.snapshot("scheduler_freed_slot_wakes_one_waiter_per_release");
}

#[test]
fn scheduler_freed_slots_go_round_robin_by_client_key() {
    let mut sim = Sim::new(&[ws(1, 0, 1)]);
    assert!(sim.acquire_as(1, 1, 1, 1));
    sim.note("key 1 queues five creates, then key 2 two");
    for holder in 11..=15 {
        assert!(!sim.acquire_as(1, 1, holder, 1));
    }
    for holder in 21..=22 {
        assert!(!sim.acquire_as(1, 1, holder, 2));
    }
    assert_eq!(sim.sched.account(a(1), sim.now).unwrap().waiters, 7);
    let mut order = Vec::new();
    for _ in 0..7 {
        for event in sim.release(1) {
            let SchedulerEvent::SlotGranted { waiter, .. } = event else {
                panic!("a grant, not {event}")
            };
            order.push((waiter.tenant, waiter.holder.0));
        }
    }
    assert_eq!(
        order,
        [
            (1, 11),
            (2, 21),
            (1, 12),
            (2, 22),
            (1, 13),
            (1, 14),
            (1, 15)
        ],
        "round-robin by key, oldest first within a key"
    );
    sim.snapshot("scheduler_freed_slots_go_round_robin_by_client_key");
}

#[test]
fn scheduler_a_create_never_takes_a_slot_before_the_waiters() {
    let mut sim = Sim::new(&[ws(1, 0, 2)]);
    assert!(sim.acquire(1, 2));
    sim.note("a create whose own max is reached waits ...");
    assert!(!sim.acquire(1, 1));
    sim.note("... and one that a slot is free for waits behind it");
    assert!(!sim.acquire(1, 2));
    sim.note("the release serves the head, then the next release the next waiter");
    assert_eq!(sim.release(1), [granted(1, 2, 0, 1)]);
    assert_eq!(sim.release(1), [granted(1, 3, 0, 2)]);
    sim.note("a create of a holder that leaves before its grant gets nothing");
    assert!(sim.acquire(1, 2));
    assert!(!sim.acquire(1, 2));
    sim.cancel(5);
    assert!(sim.release(1).is_empty());
    sim.note("an account removed by a reload has no slots left to count: granted at once");
    assert!(sim.sched.remove_account(a(1)));
    assert!(sim.acquire(1, 1));
    assert!(sim.acquire(1, 1));
    sim.snapshot("scheduler_a_create_never_takes_a_slot_before_the_waiters");
}
