//! Round statistics: the median of per-round values with its interquartile range, and "added"
//! values paired round by round (target − direct of the same round, so both saw the same
//! machine state).

use crate::input::{LoadReport, Round};

/// Median and interquartile range of a set of round values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    /// Median.
    pub(crate) median: f64,
    /// First quartile.
    pub(crate) q1: f64,
    /// Third quartile.
    pub(crate) q3: f64,
    /// Number of rounds.
    pub(crate) n: usize,
}

/// The `q` quantile of sorted values, linearly interpolated (R's type 7).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Spread {
    /// The spread of `values`; `None` when there are none (or some are not numbers).
    pub(crate) fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median: quantile(&sorted, 0.5),
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
            n: sorted.len(),
        })
    }
}

/// Per measured round of `target`, `f(target round) − f(direct round of the same index)`.
pub(crate) fn paired_added(
    report: &LoadReport,
    target: &str,
    f: impl Fn(&Round) -> f64,
) -> Option<Spread> {
    let base = report.measured("direct");
    let mine = report.measured(target);
    let diffs: Vec<f64> = mine
        .iter()
        .zip(base.iter())
        .map(|(t, d)| f(t) - f(d))
        .collect();
    Spread::of(&diffs)
}

/// The spread of `f` over the measured rounds of `target`.
pub(crate) fn per_round(
    report: &LoadReport,
    target: &str,
    f: impl Fn(&Round) -> f64,
) -> Option<Spread> {
    let values: Vec<f64> = report.measured(target).iter().map(|r| f(r)).collect();
    Spread::of(&values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quartiles_interpolate() {
        let s = Spread::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.median, s.q1, s.q3, s.n), (3.0, 2.0, 4.0, 5));
        let s = Spread::of(&[1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.q1, s.q3), (1.5, 1.25, 1.75));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[1.0, f64::NAN]), None);
    }

    fn round(target: &str, warmup: bool, p50: f64) -> Round {
        let mut r = Round {
            target: target.into(),
            warmup,
            ..Round::default()
        };
        r.event_latency_us.p50 = p50;
        r
    }

    #[test]
    fn added_values_pair_measured_rounds_and_skip_warm_up() {
        let report = LoadReport {
            rounds: vec![
                round("direct", true, 1000.0),
                round("gw", true, 9000.0),
                round("direct", false, 100.0),
                round("gw", false, 130.0),
                round("gw", false, 150.0),
                round("direct", false, 110.0),
                round("direct", false, 90.0),
                round("gw", false, 110.0),
            ],
            ..LoadReport::default()
        };
        let s = paired_added(&report, "gw", |r| r.event_latency_us.p50).unwrap();
        // Pairs: 130−100, 150−110, 110−90.
        assert_eq!((s.median, s.n), (30.0, 3));
        assert_eq!(
            per_round(&report, "gw", |r| r.event_latency_us.p50)
                .unwrap()
                .median,
            130.0
        );
        assert_eq!(paired_added(&report, "none", |r| r.events_per_sec), None);
    }
}
