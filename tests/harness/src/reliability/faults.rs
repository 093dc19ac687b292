//! One row of the fault matrix: load running, a fault injected mid-run by a shell command, then
//! cleared by another; afterwards the gateway's pool and session gauges must return to zero.
//!
//! ```text
//!   0 ── load ──▶ inject_at: `inject` ──▶ clear_at: `clear` ──▶ duration: load stops ──▶ settle
//! ```
//!
//! Recovery is measured per second of response starts: from the clear to the first second after
//! which every second's failure rate stays at the level before the fault (at most twice the
//! baseline rate, or 1 %), up to the last full second. Full service counts as returned when that
//! level was held for at least `quiet` before the load stopped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::load::{self, LoadPlan, LoadResult};
use super::probe::{self, PoolGauges};
use crate::Failure;

/// The plan of one fault row.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Its name in the matrix.
    pub fault: String,
    /// The load (its `duration` is the whole row); its client fault, if any, is switched on at
    /// `inject_at` and off at `clear_at`.
    pub load: LoadPlan,
    /// When the fault goes in.
    pub inject_at: Duration,
    /// `bash -c` command that injects it (empty: the fault is there from the start).
    pub inject: String,
    /// When it is cleared.
    pub clear_at: Duration,
    /// `bash -c` command that clears it.
    pub clear: String,
    /// The documented bound on one response under this fault.
    pub deadline: Duration,
    /// Clean service needed before the load stops for "recovered".
    pub quiet: Duration,
    /// The gateway's HOST:PORT for `/metrics`.
    pub metrics: Option<String>,
    /// The fault is there all along (never cleared): no recovery to measure.
    pub permanent: bool,
}

/// The row's figures.
#[derive(Debug, Clone, Serialize)]
pub struct FaultResult {
    /// The load.
    pub load: LoadResult,
    /// The documented bound on one response, ms.
    pub deadline_ms: u64,
    /// When the fault went in and was cleared, ms since the start.
    pub inject_at_ms: u64,
    /// See `inject_at_ms`.
    pub clear_at_ms: u64,
    /// From the clear to the start of the last failed response (0 when none failed after it).
    pub recovery_ms: Option<u64>,
    /// Share of responses that did not complete before the fault went in (errors by design on
    /// a loaded machine): the level "full service" is measured against.
    pub baseline_failure_rate: f64,
    /// Full service returned before the load stopped (always, for a permanent fault).
    pub recovered: bool,
    /// The fault was there all along.
    pub permanent: bool,
    /// The commands' exit statuses (a failed injection makes the row meaningless).
    pub commands: Vec<String>,
    /// Gauges after the load.
    pub after: Option<After>,
}

/// The gateway's gauges once the load stopped.
#[derive(Debug, Clone, Serialize)]
pub struct After {
    /// Last reading.
    pub gauges: Option<PoolGauges>,
    /// How long they took to settle (absent: they did not).
    pub settled_ms: Option<u64>,
}

async fn shell(command: &str) -> String {
    if command.is_empty() {
        return "none".into();
    }
    match tokio::process::Command::new("bash")
        .arg("-c")
        .arg(command)
        .status()
        .await
    {
        Ok(status) if status.success() => "ok".into(),
        Ok(status) => format!("exit {status}"),
        Err(e) => format!("not run: {e}"),
    }
}

/// Runs the row.
pub async fn run(plan: &FaultPlan) -> Result<FaultResult, Failure> {
    let duration = plan
        .load
        .duration
        .ok_or_else(|| Failure::new("a fault row needs a load duration"))?;
    let epoch = Instant::now();
    let load_plan = plan.load.clone();
    let load = tokio::spawn(async move { load::run(&load_plan, epoch).await });
    let mut commands = Vec::new();
    // Timed injection of the fault schedule: these sleeps are the schedule, not synchronisation.
    tokio::time::sleep_until((epoch + plan.inject_at).into()).await;
    if let Some(switch) = &plan.load.client_fault {
        switch.set(true);
    }
    commands.push(shell(&plan.inject).await);
    tokio::time::sleep_until((epoch + plan.clear_at).into()).await;
    let cleared = epoch.elapsed();
    if let Some(switch) = &plan.load.client_fault {
        switch.set(false);
    }
    commands.push(shell(&plan.clear).await);
    let load = load
        .await
        .map_err(|e| Failure::new(format!("load task failed: {e}")))?;
    let after = match &plan.metrics {
        Some(addr) => {
            let (gauges, took) = probe::settle(addr, Duration::from_secs(20)).await;
            Some(After {
                gauges,
                settled_ms: took.map(|d| d.as_millis() as u64),
            })
        }
        None => None,
    };
    let clear_ms = cleared.as_millis() as u64;
    let end_ms = duration.as_millis() as u64;
    let baseline = baseline_rate(&load.total.timeline, plan.inject_at);
    let (recovery_ms, recovered) = if plan.permanent {
        (None, true)
    } else {
        recovery(&load.total.timeline, baseline, clear_ms, end_ms, plan.quiet)
    };
    Ok(FaultResult {
        baseline_failure_rate: baseline,
        load,
        deadline_ms: plan.deadline.as_millis() as u64,
        inject_at_ms: plan.inject_at.as_millis() as u64,
        clear_at_ms: clear_ms,
        recovery_ms,
        recovered,
        permanent: plan.permanent,
        commands,
        after,
    })
}

/// Seconds with fewer responses than this are too thin to judge.
const MIN_PER_SECOND: u64 = 5;

/// The failure rate of the responses started in whole seconds 1.. before `inject_at` (the
/// first second is warm-up).
fn baseline_rate(timeline: &BTreeMap<u64, (u64, u64)>, inject_at: Duration) -> f64 {
    let (started, failed) = timeline
        // A fault injected within the first second has no baseline seconds (an empty range).
        .range(1..inject_at.as_secs().max(1))
        .fold((0, 0), |acc, (_, (n, f))| (acc.0 + n, acc.1 + f));
    if started == 0 {
        0.0
    } else {
        failed as f64 / started as f64
    }
}

/// (recovery ms after the clear, recovered) — see the module docs.
fn recovery(
    timeline: &BTreeMap<u64, (u64, u64)>,
    baseline: f64,
    clear_ms: u64,
    end_ms: u64,
    quiet: Duration,
) -> (Option<u64>, bool) {
    let limit = (2.0 * baseline).max(0.01);
    let last_full = end_ms / 1000; // seconds before this one are complete
    let first = clear_ms / 1000;
    let mut healthy_from = None;
    for second in first..last_full {
        let (n, f) = timeline.get(&second).copied().unwrap_or((0, 0));
        let healthy = n >= MIN_PER_SECOND && (f as f64) <= limit * n as f64;
        match (healthy, healthy_from) {
            (true, None) => healthy_from = Some(second),
            (false, _) => healthy_from = None,
            _ => {}
        }
    }
    match healthy_from {
        Some(second) => {
            let from_ms = (second * 1000).max(clear_ms);
            let held = last_full * 1000 - second * 1000;
            (Some(from_ms - clear_ms), held >= quiet.as_millis() as u64)
        }
        None => (None, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(rows: &[(u64, u64, u64)]) -> BTreeMap<u64, (u64, u64)> {
        rows.iter().map(|&(s, n, f)| (s, (n, f))).collect()
    }

    #[test]
    fn recovery_is_the_first_second_that_stays_at_the_baseline() {
        let t = timeline(&[
            (0, 50, 5),
            (1, 100, 1),
            (2, 100, 0),
            (3, 100, 60),
            (4, 100, 80),
            (5, 100, 30),
            (6, 100, 1),
            (7, 100, 0),
            (8, 100, 1),
            (9, 10, 0),
        ]);
        let baseline = baseline_rate(&t, Duration::from_secs(3));
        assert!((baseline - 0.005).abs() < 1e-9);
        // Cleared at 4.5 s; second 5 still fails, 6.. stay within 1 % (limit 1 %).
        let (ms, ok) = recovery(&t, baseline, 4500, 10_000, Duration::from_secs(2));
        assert_eq!((ms, ok), (Some(1500), true));
        // A load that stops too soon after the recovery has not shown it for `quiet`.
        let (_, ok) = recovery(&t, baseline, 4500, 8_000, Duration::from_secs(3));
        assert!(!ok);
        // Failing to the end: not recovered.
        let bad = timeline(&[(0, 10, 0), (1, 10, 0), (2, 10, 5), (3, 10, 5), (4, 10, 5)]);
        assert_eq!(
            recovery(&bad, 0.0, 2000, 5000, Duration::from_secs(1)),
            (None, false)
        );
    }
}
