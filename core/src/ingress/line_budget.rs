//! One line per interval for a log line a client can trigger, with a count of the rest.
//!
//! A client that can make the gateway log a line can make it log millions (a refused accept in
//! a loop wrote 400,000 lines a second). Each such line gets a [`LineBudget`]: the first one
//! goes out at once, the ones that follow within `interval` are only counted, and the next line
//! written carries that count, so the log still says how often it happened.

use std::time::{Duration, Instant};

/// The rate limit of one kind of log line
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineBudget {
    /// When the last line was written
    last: Option<Instant>,
    /// Lines dropped since then
    suppressed: u64,
}

impl LineBudget {
    /// A budget that lets the first line through
    pub const fn new() -> Self {
        Self {
            last: None,
            suppressed: 0,
        }
    }

    /// Whether a line may be written at `now`, at most one per `interval`: `Some(n)` says write
    /// it and report `n` lines dropped since the previous one; `None` says drop it (counted)
    #[must_use]
    pub fn admit(&mut self, now: Instant, interval: Duration) -> Option<u64> {
        if let Some(last) = self.last
            && now.saturating_duration_since(last) < interval
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_next_line_counts_the_dropped_ones() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut budget = LineBudget::new();
        assert_eq!(budget.admit(t0, second), Some(0));
        for ms in 1..=999 {
            assert_eq!(budget.admit(t0 + Duration::from_millis(ms), second), None);
        }
        assert_eq!(budget.admit(t0 + second, second), Some(999));
        assert_eq!(budget.admit(t0 + second, second), None);
        // A quiet spell: the next line goes out at once and reports the one dropped.
        assert_eq!(budget.admit(t0 + 10 * second, second), Some(1));
    }
}
