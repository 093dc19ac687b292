//! Counts a pool exposes for metrics and the demo.

use std::ops::AddAssign;

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
    /// HTTP turns that found their preferred conn idle
    pub preferred_hits: u64,
    /// Conns closed by the pool
    pub closes: u64,
    /// Acquires refused
    pub refusals: u64,
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
        self.preferred_hits += other.preferred_hits;
        self.closes += other.closes;
        self.refusals += other.refusals;
    }
}
