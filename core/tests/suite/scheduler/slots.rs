//! Per-account concurrency slots: counted per account on this instance with the decision's max
//! concurrency on every turn, and freed slots wake waiters one by one.

use crate::support::scheduler::{Sim, a, expect_account, ws, ws_request};
use wsv2_core::scheduler::SchedulerEvent;

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
        "a third unfinished response exceeds the max"
    );
    sim.note("a reload raises concurrency; the running session keeps its decision's max");
    sim.upsert(ws(1, 0, 5));
    assert!(!sim.acquire(1, max));
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
    sim.release(2);
    assert!(!sim.acquire(1, 1), "a slot freed on a2 does not help a1");
    assert!(sim.acquire(2, 1));
}

#[test]
fn scheduler_freed_slot_wakes_one_waiter_per_release() {
    let mut sim = Sim::new(&[ws(1, 0, 2)]);
    assert!(sim.acquire(1, 2));
    assert!(sim.acquire(1, 2));
    sim.note("no waiters: a release wakes nobody");
    assert!(sim.release(1).is_empty());
    assert!(sim.acquire(1, 2));
    sim.note("three sessions wait for a slot");
    for _ in 0..3 {
        assert!(!sim.acquire(1, 2));
        sim.waiter_added(1);
    }
    assert_eq!(sim.sched.poll_event(), None);
    assert_eq!(sim.release(1), vec![SchedulerEvent::SlotFreed(a(1))]);
    assert_eq!(sim.release(1), vec![SchedulerEvent::SlotFreed(a(1))]);
    sim.note("two woken waiters take the slots; the third keeps waiting, then times out");
    for _ in 0..2 {
        assert!(sim.acquire(1, 2));
        sim.waiter_removed(1);
    }
    sim.waiter_removed(1);
    assert!(
        sim.release(1).is_empty(),
        "the waiter left: nothing to wake"
    );
    sim.snapshot("scheduler_freed_slot_wakes_one_waiter_per_release");
}

#[test]
fn scheduler_wakes_never_exceed_waiters() {
    let mut sim = Sim::new(&[ws(1, 0, 4)]);
    for _ in 0..4 {
        assert!(sim.acquire(1, 4));
    }
    sim.waiter_added(1);
    // Queued wakes are capped by the waiters; once polled, a wake is the shell's to deliver
    // (a woken waiter that loses the race to another create is woken again by a later release).
    for _ in 0..4 {
        sim.sched.release_slot(a(1));
    }
    assert_eq!(sim.drain(), vec![SchedulerEvent::SlotFreed(a(1))]);
    assert!(sim.acquire(1, 4));
    assert_eq!(sim.release(1), vec![SchedulerEvent::SlotFreed(a(1))]);
    sim.waiter_removed(1);
    sim.note("two releases queue two wakes for two waiters; polled later, both arrive");
    sim.waiter_added(1);
    sim.waiter_added(1);
    assert!(sim.acquire(1, 4));
    assert!(sim.acquire(1, 4));
    sim.sched.release_slot(a(1));
    sim.sched.release_slot(a(1));
    sim.sched.release_slot(a(1));
    assert_eq!(
        sim.sched.poll_event(),
        Some(SchedulerEvent::SlotFreed(a(1)))
    );
    assert_eq!(
        sim.sched.poll_event(),
        Some(SchedulerEvent::SlotFreed(a(1)))
    );
    assert_eq!(sim.sched.poll_event(), None);
    sim.waiter_removed(1);
    sim.waiter_removed(1);
    sim.note("a waiter that leaves before its wake is polled cancels it");
    sim.waiter_added(1);
    assert!(sim.acquire(1, 4));
    sim.sched.release_slot(a(1));
    sim.sched.waiter_removed(a(1));
    sim.sched.waiter_removed(a(1));
    assert_eq!(sim.sched.poll_event(), None);
}
