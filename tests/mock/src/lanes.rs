//! Which queued `response.create` runs next on a connection.
//!
//! FIFO within a lane, lanes concurrent up to `max_in_flight`; when a slot frees, the lane whose
//! head request arrived first goes next, so `max_in_flight = 1` is the launch-era serial mode.
//!
//! ```text
//!   push ──▶ waiting ──pop_ready (lane idle, slot free)──▶ running ──finish──▶ (gone)
//! ```

use std::collections::{HashMap, VecDeque};

use crate::request::LaneKey;

/// The lane queues of one connection.
#[derive(Debug)]
pub(crate) struct LaneScheduler<J> {
    max_in_flight: usize,
    in_flight: usize,
    queued: usize,
    next_ticket: u64,
    lanes: HashMap<LaneKey, Lane<J>>,
}

#[derive(Debug)]
struct Lane<J> {
    running: bool,
    waiting: VecDeque<(u64, J)>,
}

impl<J> LaneScheduler<J> {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Self {
            max_in_flight: max_in_flight.max(1),
            in_flight: 0,
            queued: 0,
            next_ticket: 0,
            lanes: HashMap::new(),
        }
    }

    /// Queues a job at the tail of its lane.
    pub(crate) fn push(&mut self, lane: LaneKey, job: J) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queued += 1;
        self.lanes
            .entry(lane)
            .or_insert_with(|| Lane {
                running: false,
                waiting: VecDeque::new(),
            })
            .waiting
            .push_back((ticket, job));
    }

    /// The next job allowed to run, marking its lane running.
    pub(crate) fn pop_ready(&mut self) -> Option<(LaneKey, J)> {
        if self.in_flight >= self.max_in_flight {
            return None;
        }
        let lane = self
            .lanes
            .iter()
            .filter(|(_, lane)| !lane.running)
            .filter_map(|(key, lane)| lane.waiting.front().map(|(ticket, _)| (*ticket, key)))
            .min_by_key(|(ticket, _)| *ticket)
            .map(|(_, key)| key.clone())?;
        let entry = self.lanes.get_mut(&lane)?;
        let (_, job) = entry.waiting.pop_front()?;
        entry.running = true;
        self.in_flight += 1;
        self.queued -= 1;
        Some((lane, job))
    }

    /// The running job of `lane` ended.
    pub(crate) fn finish(&mut self, lane: &LaneKey) {
        if let Some(entry) = self.lanes.get_mut(lane)
            && entry.running
        {
            entry.running = false;
            self.in_flight -= 1;
            if entry.waiting.is_empty() {
                self.lanes.remove(lane);
            }
        }
    }

    /// Nothing running and nothing queued.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.queued == 0
    }

    /// Jobs waiting for a lane or a slot.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Drops every job, running or waiting: one entry per job, its lane, in lane order (the
    /// caller has stopped the running ones).
    pub(crate) fn cut_all(&mut self) -> Vec<LaneKey> {
        let mut cut: Vec<LaneKey> = Vec::with_capacity(self.in_flight + self.queued);
        for (key, lane) in self.lanes.drain() {
            let jobs = usize::from(lane.running) + lane.waiting.len();
            cut.extend(std::iter::repeat_n(key, jobs));
        }
        cut.sort();
        self.in_flight = 0;
        self.queued = 0;
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(name: &str) -> LaneKey {
        Some(name.to_owned())
    }

    #[test]
    fn same_lane_is_fifo_and_never_overlaps() {
        let mut s = LaneScheduler::new(16);
        s.push(lane("a"), 1);
        s.push(lane("a"), 2);
        assert_eq!(s.pop_ready(), Some((lane("a"), 1)));
        assert_eq!(
            s.pop_ready(),
            None,
            "second job of a running lane must wait"
        );
        s.finish(&lane("a"));
        assert_eq!(s.pop_ready(), Some((lane("a"), 2)));
    }

    #[test]
    fn lanes_run_concurrently_up_to_the_slot_limit() {
        let mut s = LaneScheduler::new(2);
        s.push(lane("a"), 1);
        s.push(None, 2);
        s.push(lane("c"), 3);
        assert_eq!(s.pop_ready(), Some((lane("a"), 1)));
        assert_eq!(s.pop_ready(), Some((None, 2)));
        assert_eq!(
            s.pop_ready(),
            None,
            "third lane must queue behind the slot limit"
        );
        assert_eq!(s.queued(), 1);
        s.finish(&None);
        assert_eq!(s.pop_ready(), Some((lane("c"), 3)));
        s.finish(&lane("a"));
        s.finish(&lane("c"));
        assert!(s.is_idle());
    }

    #[test]
    fn serial_mode_runs_everything_in_arrival_order() {
        let mut s = LaneScheduler::new(1);
        s.push(lane("b"), 1);
        s.push(lane("a"), 2);
        s.push(lane("b"), 3);
        let mut order = Vec::new();
        while let Some((l, job)) = s.pop_ready() {
            order.push(job);
            assert_eq!(s.pop_ready(), None);
            s.finish(&l);
        }
        assert_eq!(order, vec![1, 2, 3]);
    }
}
