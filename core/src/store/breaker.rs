//! A circuit breaker for a remote dependency (the state store), reusable by the shells.
//!
//! It opens after `failure_limit` consecutive failures or timeouts; while it is open, callers
//! send nothing except one probe every `probe_interval`; the first success closes it.

use std::time::{Duration, Instant};

/// Where the breaker is in its cycle
///
/// ```text
///                 success (resets the count)
///                  +-----+
///                  |     v
///              +------------+  failure_limit consecutive   +----------------------+
///  new() ----> |   Closed   | ---------------------------> | Open { probe_at }    |
///              | { failures}|     failures / timeouts      | (send nothing)       |
///              +------------+                              +----------------------+
///                  ^      ^                                  |   ^            |
///                  |      |          any success             |   | probe      | now >= probe_at:
///                  |      +----------------------------------+   | failed or  | start_probe()
///                  |                                             | timed out  v
///                  |           probe (or any) success        +----------------------+
///                  +---------------------------------------- |       Probing        |
///                                                             | (one probe in flight)|
///                                                             +----------------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; `failures` consecutive failures so far
    Closed {
        /// Consecutive failures or timeouts since the last success
        failures: u32,
    },
    /// Requests are not sent; a probe may go out at `probe_at`
    Open {
        /// When the next probe may be sent
        probe_at: Instant,
    },
    /// The probe is in flight; requests are still not sent
    Probing,
}

/// The breaker itself: a state plus its two settings
#[derive(Clone, Debug)]
pub struct Breaker {
    state: BreakerState,
    failure_limit: u32,
    probe_interval: Duration,
    opened_total: u64,
}

impl Breaker {
    /// A closed breaker that opens after `failure_limit` (at least 1) consecutive failures
    pub fn new(failure_limit: u32, probe_interval: Duration) -> Self {
        Self {
            state: BreakerState::Closed { failures: 0 },
            failure_limit: failure_limit.max(1),
            probe_interval,
            opened_total: 0,
        }
    }

    /// Records a success: resets the count, or closes an open or probing breaker
    pub fn record_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// Records a failure or timeout at `now`; returns true if this one opened the breaker
    pub fn record_failure(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed { failures } if failures + 1 >= self.failure_limit => {
                self.open(now);
                true
            }
            BreakerState::Closed { failures } => {
                self.state = BreakerState::Closed {
                    failures: failures + 1,
                };
                false
            }
            // A failed probe waits a full interval for the next one.
            BreakerState::Probing => {
                self.state = BreakerState::Open {
                    probe_at: now + self.probe_interval,
                };
                false
            }
            // Late failures of requests sent before opening change nothing.
            BreakerState::Open { .. } => false,
        }
    }

    /// Whether a probe may be sent at `now`
    pub fn probe_due(&self, now: Instant) -> bool {
        matches!(self.state, BreakerState::Open { probe_at } if probe_at <= now)
    }

    /// Marks the probe as sent; call only when [`probe_due`](Self::probe_due) said so
    pub fn start_probe(&mut self) {
        if matches!(self.state, BreakerState::Open { .. }) {
            self.state = BreakerState::Probing;
        }
    }

    /// Whether ordinary requests may be sent (the breaker is closed)
    pub fn allows_requests(&self) -> bool {
        matches!(self.state, BreakerState::Closed { .. })
    }

    /// The current state
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// How often the breaker has opened
    pub fn opened_total(&self) -> u64 {
        self.opened_total
    }

    /// When the breaker next needs `now`: the probe time while open
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open { probe_at } => Some(probe_at),
            _ => None,
        }
    }

    fn open(&mut self, now: Instant) {
        self.opened_total += 1;
        self.state = BreakerState::Open {
            probe_at: now + self.probe_interval,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_limit_probes_after_interval_closes_on_success() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(5));
        assert!(!b.record_failure(t0));
        b.record_success();
        assert!(!b.record_failure(t0));
        assert!(!b.record_failure(t0));
        assert!(b.allows_requests());
        assert!(b.record_failure(t0));
        assert!(!b.allows_requests());
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert!(!b.probe_due(t0 + Duration::from_millis(4999)));
        assert!(b.probe_due(t0 + Duration::from_secs(5)));
        b.start_probe();
        assert_eq!(b.state(), BreakerState::Probing);
        b.record_failure(t0 + Duration::from_secs(6));
        assert_eq!(
            b.state(),
            BreakerState::Open {
                probe_at: t0 + Duration::from_secs(11)
            }
        );
        b.start_probe();
        b.record_success();
        assert!(b.allows_requests());
        assert_eq!(b.opened_total(), 1);
    }
}
