//! Rounds × targets: each round runs every target once (order rotated per round, so drift and
//! warm caches do not favour one target), each run being N concurrent sessions.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::bench::{BenchOptions, ProcSample, ProcUsage};

use super::config::{LoadConfig, LoadTarget};
use super::report::{Report, RoundResult};
use super::session::{SessionPlan, run_session, session_credentials};
use super::stats::SessionStats;
use crate::Failure;

/// A UUID-shaped unique id (v4 layout) from a seed and a counter (splitmix64).
pub fn session_uuid(seed: u64, n: u64) -> String {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (a, b) = (
        mix(seed ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d)),
        mix(seed.rotate_left(17) ^ n),
    );
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Runs the whole plan and returns every round's result.
pub async fn run(config: &LoadConfig) -> Result<Report, Failure> {
    run_with(config, &BenchOptions::default()).await
}

/// Runs the plan with benchmark extras: `options.warmup_rounds` unmeasured rounds first, then
/// `config.rounds` measured ones, sampling the watched processes around each.
pub async fn run_with(config: &LoadConfig, options: &BenchOptions) -> Result<Report, Failure> {
    if config.targets.is_empty() {
        return Err(Failure::new("no target given"));
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut ids = SessionIds { seed, counter: 0 };
    let mut rounds = Vec::new();
    for round in 0..options.warmup_rounds + config.rounds {
        let n = config.targets.len();
        for k in 0..n {
            let target = &config.targets[(k + round) % n];
            let mut result = run_target(config, options, target, round, &mut ids).await?;
            result.warmup = round < options.warmup_rounds;
            rounds.push(result);
        }
    }
    Ok(Report::new(config.clone(), options.clone(), rounds))
}

/// Unique session ids over the whole run.
struct SessionIds {
    seed: u64,
    counter: u64,
}

async fn run_target(
    config: &LoadConfig,
    options: &BenchOptions,
    target: &LoadTarget,
    round: usize,
    ids: &mut SessionIds,
) -> Result<RoundResult, Failure> {
    let pids = options.pids_of(&target.name);
    let before = ProcSample::read(pids);
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(
        options
            .session_concurrency
            .unwrap_or(config.sessions)
            .max(1),
    ));
    let mut tasks = JoinSet::new();
    for _ in 0..config.sessions {
        ids.counter += 1;
        let plan = SessionPlan {
            target: target.clone(),
            creds: session_credentials(&config.api_key, &session_uuid(ids.seed, ids.counter)),
            config: config.clone(),
            source: options.source_of(ids.counter),
            hold: options.hold_idle,
        };
        let permits = permits.clone();
        tasks.spawn(async move {
            // The permit is held while the session is active; a held idle socket does not count.
            let _permit = permits.acquire_owned().await;
            run_session(plan).await
        });
    }
    let mut merged = SessionStats::default();
    let mut held = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.map_err(|e| Failure::new(format!("session task failed: {e}")))?;
        merged.merge(&outcome.stats);
        held.extend(outcome.held);
    }
    let wall = started.elapsed();
    let after = ProcSample::read(pids);
    let idle = options.hold_idle.then_some(held.len());
    // Leave without close handshakes: the measurement is over and closing is not measured.
    drop(held);
    let mut result = RoundResult::new(target.name.clone(), round, merged, wall);
    if let (Some(before), Some(after)) = (before, after) {
        let events = result.stats().events_all;
        result.proc = Some(ProcUsage::between(
            before,
            after,
            events,
            wall.as_secs_f64(),
            idle,
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_unique_and_uuid_shaped() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|n| session_uuid(42, n)).collect();
        assert_eq!(ids.len(), 10_000);
        let id = session_uuid(7, 1);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(id.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
    }
}
