//! A tiny seeded generator for jitter: deterministic in tests, no dependency, no clock.

/// splitmix64: small, fast, good enough for back-off jitter (not for secrets)
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator that always yields the same sequence for the same seed
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform factor in `[low, 1.0]`, e.g. `0.75..=1.0` for "full minus a quarter" jitter
    pub fn factor(&mut self, low: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        low + (1.0 - low) * unit
    }

    /// Exponential back-off for `attempt` (0-based) between `initial` and `max`, scaled by a
    /// jitter factor in `[0.5, 1.0]`
    pub fn backoff(
        &mut self,
        attempt: u32,
        initial: std::time::Duration,
        max: std::time::Duration,
    ) -> std::time::Duration {
        let base = initial.saturating_mul(1u32 << attempt.min(20)).min(max);
        base.mul_f64(self.factor(0.5))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn backoff_grows_then_caps_and_stays_in_range() {
        let mut j = Jitter::new(7);
        let (lo, hi) = (Duration::from_millis(120), Duration::from_secs(2));
        for attempt in 0..10 {
            let d = j.backoff(attempt, lo, hi);
            let base = lo.saturating_mul(1 << attempt).min(hi);
            assert!(d <= base && d >= base / 2, "attempt {attempt}: {d:?}");
        }
        assert_eq!(Jitter::new(1).next_u64(), Jitter::new(1).next_u64());
    }
}
