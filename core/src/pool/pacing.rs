//! When a pool may dial: back-off after failures, warm-idle cooldown and suppression.
//!
//! ```text
//!            dial fails                         dial fails (n-th in a row)
//!   Ready ─────────────▶ BackingOff ──────────────────────┐
//!     ▲                   │  backoff_initial·2ⁿ⁻¹ ± jitter │ (≤ backoff_max)
//!     │  dial succeeds    │ back-off ends: one probe dial  │
//!     └───────────────────┴◀───────────────────────────────┘
//! ```
//! Independently, warm-idle dials are spaced by `warm_cooldown` and suppressed for
//! `warm_failure_window` once `warm_failure_limit` dials failed within that window; a successful
//! dial lifts the suppression.

use std::time::{Duration, Instant};

use crate::config::PoolConfig;
use crate::rng::Jitter;

/// Dial pacing of one pool
#[derive(Debug)]
pub(super) struct DialPacing {
    jitter: Jitter,
    backoff_initial: Duration,
    backoff_max: Duration,
    warm_cooldown: Duration,
    failure_limit: u32,
    failure_window: Duration,
    /// Failures since the last success (drives the back-off exponent)
    consecutive_failures: u32,
    backoff_until: Option<Instant>,
    /// Failures within the current window (drives warm suppression)
    window_failures: u32,
    window_start: Option<Instant>,
    suppressed_until: Option<Instant>,
    cooldown_until: Option<Instant>,
}

impl DialPacing {
    /// Ready to dial, with a jitter generator seeded by `seed`
    pub(super) fn new(config: &PoolConfig, seed: u64) -> Self {
        Self {
            jitter: Jitter::new(seed),
            backoff_initial: config.dial_backoff_initial,
            backoff_max: config.dial_backoff_max,
            warm_cooldown: config.warm_cooldown,
            failure_limit: config.warm_failure_limit,
            failure_window: config.warm_failure_window,
            consecutive_failures: 0,
            backoff_until: None,
            window_failures: 0,
            window_start: None,
            suppressed_until: None,
            cooldown_until: None,
        }
    }

    /// Whether the back-off allows a dial at `now`
    pub(super) fn backoff_allows(&self, now: Instant) -> bool {
        self.backoff_until.is_none_or(|until| now >= until)
    }

    /// Whether the last dial failed (the next one is a lone probe)
    pub(super) fn probing(&self) -> bool {
        self.consecutive_failures > 0
    }

    /// Whether a warm-idle dial is allowed at `now` (cooldown and suppression; the caller checks
    /// capacity and back-off)
    pub(super) fn warm_allows(&self, now: Instant) -> bool {
        self.cooldown_until.is_none_or(|until| now >= until)
            && self.suppressed_until.is_none_or(|until| now >= until)
    }

    /// A warm-idle dial starts now
    pub(super) fn on_warm_dial(&mut self, now: Instant) {
        self.cooldown_until = Some(now + self.warm_cooldown);
    }

    /// A dial succeeded: back-off and suppression end
    pub(super) fn on_dial_ok(&mut self) {
        self.consecutive_failures = 0;
        self.backoff_until = None;
        self.window_failures = 0;
        self.window_start = None;
        self.suppressed_until = None;
    }

    /// A dial failed: back off, and count it towards warm suppression
    pub(super) fn on_dial_failed(&mut self, now: Instant) {
        let delay = self.jitter.backoff(
            self.consecutive_failures,
            self.backoff_initial,
            self.backoff_max,
        );
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.backoff_until = Some(now + delay);
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < self.failure_window => {
                self.window_failures += 1;
            }
            _ => {
                self.window_start = Some(now);
                self.window_failures = 1;
            }
        }
        if self.window_failures >= self.failure_limit {
            self.suppressed_until = Some(now + self.failure_window);
        }
    }

    /// Forgets deadlines that have passed; true if any did (dials may be possible again)
    pub(super) fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for deadline in [&mut self.backoff_until, &mut self.cooldown_until] {
            if deadline.is_some_and(|until| until <= now) {
                *deadline = None;
                changed = true;
            }
        }
        if self.suppressed_until.is_some_and(|until| until <= now) {
            self.suppressed_until = None;
            self.window_failures = 0;
            self.window_start = None;
            changed = true;
        }
        changed
    }

    /// The earliest pending deadline
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [
            self.backoff_until,
            self.cooldown_until,
            self.suppressed_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The back-off deadline, if backing off
    #[cfg(test)]
    pub(super) fn backoff_until(&self) -> Option<Instant> {
        self.backoff_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_and_suppress_warm_dials() {
        let config = PoolConfig::default();
        let mut pacing = DialPacing::new(&config, 1);
        let t0 = Instant::now();
        assert!(pacing.backoff_allows(t0) && pacing.warm_allows(t0));
        pacing.on_dial_failed(t0);
        let first = pacing.backoff_until().unwrap() - t0;
        assert!(first >= Duration::from_millis(60) && first <= Duration::from_millis(120));
        assert!(!pacing.backoff_allows(t0 + first / 2));
        assert!(pacing.warm_allows(t0), "one failure does not suppress");
        let t1 = t0 + Duration::from_secs(1);
        pacing.on_dial_failed(t1);
        let second = pacing.backoff_until().unwrap() - t1;
        assert!(second >= Duration::from_millis(120) && second <= Duration::from_millis(240));
        assert!(!pacing.warm_allows(t1), "two failures within 30 s suppress");
        assert!(pacing.warm_allows(t1 + Duration::from_secs(30)));
        assert!(pacing.expire(t1 + Duration::from_secs(30)));
        pacing.on_dial_ok();
        assert!(!pacing.probing() && pacing.backoff_allows(t1));
    }
}
