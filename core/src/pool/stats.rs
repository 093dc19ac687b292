//! Counts a pool exposes for metrics and the demo.

use std::ops::AddAssign;

use super::request::CloseReason;

/// A snapshot of one pool (or the sum over the registry)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Conns open (idle + leased)
    pub open: usize,
    /// Conns idle in the pool
    pub idle: usize,
    /// Idle conns held for a `store:false` chain
    pub held: usize,
    /// Dials in flight
    pub dialing: usize,
    /// Conns leased to holders
    pub leased: usize,
    /// Holders waiting for a conn (queued or waiting on their dial)
    pub waiters: usize,
    /// Leases of a conn that was leased before
    pub reuses: u64,
    /// Dials started
    pub dials: u64,
    /// Dials failed
    pub dial_failures: u64,
    /// Probe dials started for an account cooling after failed dials
    pub probes: u64,
    /// Acquires that took over a warm dial in flight instead of dialing their own
    pub dial_takeovers: u64,
    /// Holders refused because the dial they waited for outlasted their `dial_wait`
    pub dial_waits_expired: u64,
    /// HTTP turns that found their preferred conn idle
    pub preferred_hits: u64,
    /// Conns closed by the pool
    pub closes: u64,
    /// Acquires refused
    pub refusals: u64,
    /// Acquires that joined a wait queue (a busy conn's or the pool's)
    pub queued: u64,
    /// Acquires refused because every queue they could join was full
    pub queue_full: u64,
    /// Queued acquires whose wait ran out (`acquire_timeout` or `session_acquire_wait`)
    pub acquire_timeouts: u64,
    /// Closes by reason, indexed by [`CloseReason::index`]
    pub closes_by_reason: [u64; CloseReason::COUNT],
}

impl PoolStats {
    /// Closes for `reason`
    pub fn closes_for(&self, reason: CloseReason) -> u64 {
        self.closes_by_reason[reason.index()]
    }
}

impl AddAssign for PoolStats {
    fn add_assign(&mut self, other: Self) {
        self.open += other.open;
        self.idle += other.idle;
        self.held += other.held;
        self.dialing += other.dialing;
        self.leased += other.leased;
        self.waiters += other.waiters;
        self.reuses += other.reuses;
        self.dials += other.dials;
        self.dial_failures += other.dial_failures;
        self.probes += other.probes;
        self.dial_takeovers += other.dial_takeovers;
        self.dial_waits_expired += other.dial_waits_expired;
        self.preferred_hits += other.preferred_hits;
        self.closes += other.closes;
        self.refusals += other.refusals;
        self.queued += other.queued;
        self.queue_full += other.queue_full;
        self.acquire_timeouts += other.acquire_timeouts;
        for (sum, n) in self.closes_by_reason.iter_mut().zip(other.closes_by_reason) {
            *sum += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_index_their_own_counter_and_sums_add_per_reason() {
        for (i, reason) in CloseReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
        }
        let mut a = PoolStats::default();
        a.closes_by_reason[CloseReason::PongTimeout.index()] = 2;
        a.queued = 1;
        let mut b = PoolStats::default();
        b.closes_by_reason[CloseReason::PongTimeout.index()] = 3;
        b.closes_by_reason[CloseReason::MaxAge.index()] = 1;
        b.queue_full = 4;
        b.acquire_timeouts = 5;
        a += b;
        assert_eq!(a.closes_for(CloseReason::PongTimeout), 5);
        assert_eq!(a.closes_for(CloseReason::MaxAge), 1);
        assert_eq!(a.closes_for(CloseReason::IdleSurplus), 0);
        assert_eq!((a.queued, a.queue_full, a.acquire_timeouts), (1, 4, 5));
    }
}
