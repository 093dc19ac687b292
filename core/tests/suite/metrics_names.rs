//! Metric definitions and the fixed-bucket histogram.

use std::collections::HashSet;
use std::time::Duration;

use wsv2_core::metrics::{
    ALL, BUCKET_BOUNDS_SECONDS, LocalHistogram, MetricKind, SharedHistogram, close_reason_label,
};
use wsv2_core::pool::CloseReason;

#[test]
fn metric_names_are_unique_prometheus_names_and_labels_are_safe() {
    let mut seen = HashSet::new();
    for m in ALL {
        assert!(seen.insert(m.name), "duplicate {}", m.name);
        assert!(m.name.starts_with("wsv2_"));
        assert!(
            m.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
        if m.kind == MetricKind::Counter {
            assert!(m.name.ends_with("_total"), "{} is a counter", m.name);
        }
        if m.kind == MetricKind::Histogram {
            assert!(m.name.ends_with("_seconds"), "{} is in seconds", m.name);
        }
        for label in m.labels {
            assert!(!["key", "api_key", "prompt", "token", "authorization"].contains(label));
        }
    }
    assert!(ALL.len() >= 19, "every metric of issue 7 is defined");
    let issue_reasons: Vec<_> = [
        CloseReason::NotReusable,
        CloseReason::Dirty,
        CloseReason::PongTimeout,
        CloseReason::MaxAge,
        CloseReason::IdleTimeout,
        CloseReason::IdleSurplus,
    ]
    .into_iter()
    .map(close_reason_label)
    .collect();
    assert_eq!(
        issue_reasons,
        ["dirty", "tail", "ping", "age", "idle", "max_idle"]
    );
}

#[test]
fn local_histogram_buckets_by_upper_bound_and_merges_once() {
    let mut local = LocalHistogram::default();
    // 1 µs lands in the first bucket, 3 µs in le=4µs, 2 s in le≈2.1s, 1 h in +Inf.
    for d in [
        Duration::from_nanos(500),
        Duration::from_micros(1),
        Duration::from_micros(3),
        Duration::from_secs(2),
        Duration::from_secs(3600),
    ] {
        local.record(d);
    }
    assert_eq!(local.count(), 5);
    let shared = SharedHistogram::default();
    local.merge_into(&shared);
    assert_eq!(local.count(), 0, "merging starts the local histogram over");
    assert_eq!(local.sum(), Duration::ZERO);
    let snap = shared.snapshot();
    assert_eq!(snap.count, 5);
    let at = |le: f64| {
        snap.buckets
            .iter()
            .find(|(b, _)| (*b - le).abs() < le * 1e-9)
            .map(|(_, n)| *n)
            .unwrap()
    };
    assert_eq!(at(1e-6), 2);
    assert_eq!(at(2e-6), 2);
    assert_eq!(at(4e-6), 3);
    assert_eq!(at(BUCKET_BOUNDS_SECONDS[20]), 3, "~1.05 s < 2 s");
    assert_eq!(at(BUCKET_BOUNDS_SECONDS[21]), 4, "2 s ≤ ~2.1 s");
    assert_eq!(snap.buckets.last().unwrap().1, 4, "1 h only in +Inf");
    assert!((snap.sum_seconds - 3602.0000045).abs() < 1e-6);
}
