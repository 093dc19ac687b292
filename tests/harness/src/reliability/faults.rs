//! One row of the fault matrix: load running, a fault injected mid-run by a shell command, then
//! cleared by another; afterwards the gateway's pool and session gauges must return to zero.
//!
//! ```text
//!   0 ── load ──▶ inject_at: `inject` ──▶ clear_at: `clear` ──▶ duration: load stops ──▶ settle
//! ```
//!
//! Recovery is measured from the clear to the start of the last response that did not complete:
//! every response started after that one completed. Full service counts as returned when the
//! last failure started at least `quiet` before the load stopped.

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
    /// The load (its `duration` is the whole row).
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
    commands.push(shell(&plan.inject).await);
    tokio::time::sleep_until((epoch + plan.clear_at).into()).await;
    let cleared = epoch.elapsed();
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
    let (recovery_ms, recovered) = match load.total.failure_window {
        _ if plan.permanent => (None, true),
        None => (Some(0), true),
        Some((_, last)) if last <= clear_ms => (Some(0), true),
        Some((_, last)) => {
            let recovered = last + plan.quiet.as_millis() as u64 <= end_ms;
            (recovered.then_some(last - clear_ms), recovered)
        }
    };
    Ok(FaultResult {
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
