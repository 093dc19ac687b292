//! The soak: a mixed load for a chosen duration with a short mock fault every few seconds, while
//! the gateway's RSS, open fds, threads and pool gauges are sampled; then the trend after
//! warm-up (least-squares slope) and the gauges once the load stops. A gateway built with the
//! `alloc-count` feature also reports its live heap (`wsv2_process_heap_live_bytes`): bytes the
//! program holds, sampled beside the RSS, so a rising RSS reads as state (the live heap rises
//! with it) or as allocator retention (it does not).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::faults::After;
use super::load::{self, LoadPlan, LoadResult};
use super::probe::{self, MockAdmin};
use crate::Failure;

/// Faults the soak cycles through, each switched on for `fault_for`.
pub const SOAK_FAULTS: [&str; 4] = ["drop_mid_stream", "error_500", "error_429", "slow"];

/// The soak's plan.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    /// The load (its `duration` is the soak's).
    pub load: LoadPlan,
    /// The gateway's pid (RSS, fds, threads).
    pub pid: u32,
    /// The gateway's HOST:PORT for `/metrics`.
    pub metrics: String,
    /// The mock's admin endpoint (faults); none: no faults.
    pub admin: Option<MockAdmin>,
    /// Sample period.
    pub sample_every: Duration,
    /// A fault goes in this often…
    pub fault_every: Duration,
    /// …for this long.
    pub fault_for: Duration,
    /// Samples before this are warm-up (left out of the slopes).
    pub warmup: Duration,
}

/// One sample.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// Seconds since the start.
    pub t_s: f64,
    /// Gateway RSS, KiB.
    pub rss_kib: u64,
    /// Of which anonymous (heap, stacks), KiB.
    pub rss_anon_kib: u64,
    /// Of which file-backed (the executable's pages as far as they have run), KiB.
    pub rss_file_kib: u64,
    /// Gateway open fds.
    pub fds: u64,
    /// Gateway threads.
    pub threads: u64,
    /// Upstream conns open.
    pub open: i64,
    /// Upstream conns idle.
    pub idle: i64,
    /// Upstream conns leased.
    pub leased: i64,
    /// Client sessions open.
    pub sessions_open: i64,
    /// Gateway heap bytes allocated and not freed, KiB (`alloc-count` builds only).
    pub heap_live_kib: Option<u64>,
    /// Heap the system allocator obtained from the kernel, KiB (`alloc-count` builds, glibc).
    pub allocator_mapped_kib: Option<u64>,
    /// Of which freed and kept by the allocator, KiB (`alloc-count` builds, glibc).
    pub allocator_free_kib: Option<u64>,
}

/// The soak's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SoakResult {
    /// Seconds of load.
    pub duration_s: f64,
    /// Warm-up left out of the slopes, s.
    pub warmup_s: f64,
    /// The load.
    pub load: LoadResult,
    /// Every sample (during and after the load).
    pub samples: Vec<Sample>,
    /// RSS slope after warm-up, KiB per minute.
    pub rss_slope_kib_per_min: f64,
    /// Anonymous-RSS slope after warm-up, KiB per minute.
    pub rss_anon_slope_kib_per_min: f64,
    /// File-backed-RSS slope after warm-up, KiB per minute.
    pub rss_file_slope_kib_per_min: f64,
    /// Open-fd slope after warm-up, per minute.
    pub fds_slope_per_min: f64,
    /// Live-heap slope after warm-up, KiB per minute (`alloc-count` builds only).
    pub heap_live_slope_kib_per_min: Option<f64>,
    /// Faults injected.
    pub faults_injected: u64,
    /// Gauges after the load.
    pub after: After,
    /// The gateway's RSS once the load stopped and the gauges settled, KiB.
    pub rss_after_kib: Option<u64>,
    /// Its live heap then, KiB (`alloc-count` builds only).
    pub heap_live_after_kib: Option<u64>,
}

/// Least-squares slope of `points` (x, y); 0 with fewer than two points.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

async fn sample(plan: &SoakPlan, epoch: Instant) -> Sample {
    let proc_now = probe::proc_reading(plan.pid).unwrap_or_default();
    let text = probe::metrics(&plan.metrics).await.unwrap_or_default();
    let gauges = probe::parse_gauges(&text);
    let kib = |name: &str| probe::metric_value(&text, name).map(|bytes| bytes as u64 / 1024);
    Sample {
        t_s: epoch.elapsed().as_secs_f64(),
        rss_kib: proc_now.rss_kib,
        rss_anon_kib: proc_now.rss_anon_kib,
        rss_file_kib: proc_now.rss_file_kib,
        fds: proc_now.fds,
        threads: proc_now.threads,
        open: gauges.open,
        idle: gauges.idle,
        leased: gauges.leased,
        sessions_open: gauges.sessions_open,
        heap_live_kib: kib("wsv2_process_heap_live_bytes"),
        allocator_mapped_kib: kib("wsv2_process_heap_allocator_mapped_bytes"),
        allocator_free_kib: kib("wsv2_process_heap_allocator_free_bytes"),
    }
}

/// Runs the soak.
pub async fn run(plan: &SoakPlan) -> Result<SoakResult, Failure> {
    let duration = plan
        .load
        .duration
        .ok_or_else(|| Failure::new("a soak needs a duration"))?;
    let epoch = Instant::now();
    let load_plan = plan.load.clone();
    let mut load = tokio::spawn(async move { load::run(&load_plan, epoch).await });
    let mut samples = vec![sample(plan, epoch).await];
    let mut ticker = tokio::time::interval(plan.sample_every);
    let mut next_fault = epoch + plan.fault_every;
    let mut fault_off: Option<Instant> = None;
    let mut faults_injected = 0u64;
    let load = loop {
        tokio::select! {
            done = &mut load => break done.map_err(|e| Failure::new(format!("load task failed: {e}")))?,
            _ = ticker.tick() => {
                samples.push(sample(plan, epoch).await);
                let now = Instant::now();
                if let Some(admin) = &plan.admin {
                    if fault_off.is_some_and(|off| now >= off) {
                        let _ = admin.post("/fault?name=none").await;
                        fault_off = None;
                    }
                    if now >= next_fault && now < epoch + duration {
                        let name = SOAK_FAULTS[faults_injected as usize % SOAK_FAULTS.len()];
                        let path = format!("/fault?name={name}&slow_ms=1000");
                        if admin.post(&path).await.is_ok() {
                            faults_injected += 1;
                        }
                        fault_off = Some(now + plan.fault_for);
                        next_fault = now + plan.fault_every;
                    }
                }
            }
        }
    };
    if let Some(admin) = &plan.admin {
        let _ = admin.post("/fault?name=none").await;
    }
    let (gauges, took) = probe::settle(&plan.metrics, Duration::from_secs(20)).await;
    let last = sample(plan, epoch).await;
    samples.push(last);
    let rss_after_kib = probe::proc_reading(plan.pid).map(|r| r.rss_kib);
    let warm = plan.warmup.as_secs_f64();
    let end = duration.as_secs_f64();
    let steady = |f: fn(&Sample) -> Option<f64>| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter(|s| s.t_s >= warm && s.t_s <= end)
            .filter_map(|s| Some((s.t_s / 60.0, f(s)?)))
            .collect()
    };
    let heap = steady(|s| s.heap_live_kib.map(|k| k as f64));
    Ok(SoakResult {
        duration_s: end,
        warmup_s: warm,
        load,
        rss_slope_kib_per_min: slope(&steady(|s| Some(s.rss_kib as f64))),
        rss_anon_slope_kib_per_min: slope(&steady(|s| Some(s.rss_anon_kib as f64))),
        rss_file_slope_kib_per_min: slope(&steady(|s| Some(s.rss_file_kib as f64))),
        fds_slope_per_min: slope(&steady(|s| Some(s.fds as f64))),
        heap_live_slope_kib_per_min: (!heap.is_empty()).then(|| slope(&heap)),
        samples,
        faults_injected,
        after: After {
            gauges,
            settled_ms: took.map(|d| d.as_millis() as u64),
        },
        rss_after_kib,
        heap_live_after_kib: last.heap_live_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_a_line_is_its_gradient_and_noise_averages_out() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|x| (f64::from(x), 3.0 * f64::from(x) + 7.0))
            .collect();
        assert!((slope(&line) - 3.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|x| (f64::from(x), if x % 2 == 0 { 10.0 } else { 12.0 }))
            .collect();
        assert!(slope(&flat).abs() < 0.1);
        assert_eq!(slope(&[(1.0, 1.0)]), 0.0);
    }
}
