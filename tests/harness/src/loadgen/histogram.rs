//! A fixed-size log-bucket histogram (HDR style): constant memory, ≤ 1/64 relative error.
//!
//! Values below 128 are counted exactly; above, each power of two is split into 64 equal
//! sub-buckets, so a reported percentile is at most 1.6 % above the true sample.

use serde::Serialize;

/// Sub-buckets per power of two (2^6).
const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Covers every `u64`: exact region (2·SUB values) + one row of SUB buckets per higher exponent.
const BUCKETS: usize = 2 * SUB + (64 - SUB_BITS as usize - 1) * SUB;

/// A histogram of `u64` samples (nanoseconds in this crate).
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max", &self.max)
            .finish()
    }
}

fn index_of(value: u64) -> usize {
    if value < (2 * SUB) as u64 {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros(); // ≥ SUB_BITS + 1
    let shift = exp - SUB_BITS;
    let sub = ((value >> shift) as usize) - SUB; // 0..SUB
    2 * SUB + (exp - SUB_BITS - 1) as usize * SUB + sub
}

/// The largest value that lands in bucket `index` (so percentiles never under-report).
fn upper_of(index: usize) -> u64 {
    if index < 2 * SUB {
        return index as u64;
    }
    let row = (index - 2 * SUB) / SUB;
    let sub = ((index - 2 * SUB) % SUB) as u64;
    let shift = row as u32 + 1;
    let low = (SUB as u64 + sub) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    /// Counts one sample.
    pub fn record(&mut self, value: u64) {
        self.counts[index_of(value)] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The arithmetic mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` in `[0, 1]`: the smallest bucket bound covering `⌈q·count⌉`
    /// samples, capped at the true maximum (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_of(i).min(self.max).max(self.min);
            }
        }
        self.max
    }

    /// The non-empty buckets as (largest value of the bucket in µs, samples), ascending: enough
    /// to draw the distribution (CDF) at the histogram's resolution.
    pub fn buckets_us(&self) -> Vec<(f64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(|(i, &c)| (upper_of(i).min(self.max) as f64 / 1000.0, c))
            .collect()
    }

    /// p50/p90/p99/p99.9/max in microseconds (samples are nanoseconds).
    pub fn summary_us(&self) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            count: self.count,
            mean: self.mean() / 1000.0,
            p50: us(self.quantile(0.50)),
            p90: us(self.quantile(0.90)),
            p99: us(self.quantile(0.99)),
            p999: us(self.quantile(0.999)),
            max: us(self.max),
        }
    }
}

/// A percentile summary, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_contiguous_and_cover_u64() {
        for i in 1..BUCKETS {
            assert_eq!(upper_of(i - 1) + 1, lower_of(i), "gap before bucket {i}");
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
        assert_eq!(upper_of(BUCKETS - 1), u64::MAX);
        for v in [
            0,
            1,
            127,
            128,
            129,
            1000,
            123_456_789,
            1 << 40,
            u64::MAX / 3,
        ] {
            let i = index_of(v);
            assert!(
                lower_of(i) <= v && v <= upper_of(i),
                "{v} outside bucket {i}"
            );
        }
    }

    fn lower_of(index: usize) -> u64 {
        if index == 0 {
            0
        } else {
            upper_of(index - 1) + 1
        }
    }

    #[test]
    fn quantiles_are_within_relative_error_of_the_exact_ones() {
        let mut h = Histogram::default();
        let samples: Vec<u64> = (1..=100_000u64).map(|i| i * 37).collect();
        for &s in &samples {
            h.record(s);
        }
        for (q, exact) in [
            (0.5, 50_000u64 * 37),
            (0.9, 90_000 * 37),
            (0.99, 99_000 * 37),
            (0.999, 99_900 * 37),
        ] {
            let got = h.quantile(q);
            assert!(got >= exact, "q{q}: {got} below exact {exact}");
            assert!(
                (got - exact) as f64 <= exact as f64 / 64.0,
                "q{q}: {got} too far from {exact}"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000 * 37);
        assert_eq!(h.max(), 100_000 * 37);
        assert_eq!(h.count(), 100_000);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in 0..5000u64 {
            let x = v * v % 77_777;
            if v % 2 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        a.merge(&b);
        for q in [0.1, 0.5, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
        assert_eq!(a.count(), all.count());
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn buckets_hold_every_sample_in_ascending_order() {
        let mut h = Histogram::default();
        for v in [5_000u64, 5_000, 70_000, 1_000_000] {
            h.record(v);
        }
        let b = h.buckets_us();
        assert_eq!(b.iter().map(|&(_, c)| c).sum::<u64>(), 4);
        assert_eq!(b[0].1, 2);
        assert!((5.0..=5.0 * 65.0 / 64.0).contains(&b[0].0), "{}", b[0].0);
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(b.last().unwrap().0, 1000.0);
    }
}
