//! Rounds × targets: each round runs every target once (order rotated per round, so drift and
//! warm caches do not favour one target), each run being N concurrent sessions.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;

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
    if config.targets.is_empty() {
        return Err(Failure::new("no target given"));
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut counter = 0u64;
    let mut rounds = Vec::new();
    for round in 0..config.rounds {
        let n = config.targets.len();
        for k in 0..n {
            let target = &config.targets[(k + round) % n];
            let result = run_target(config, target, round, seed, &mut counter).await?;
            rounds.push(result);
        }
    }
    Ok(Report::new(config.clone(), rounds))
}

async fn run_target(
    config: &LoadConfig,
    target: &LoadTarget,
    round: usize,
    seed: u64,
    counter: &mut u64,
) -> Result<RoundResult, Failure> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..config.sessions {
        *counter += 1;
        let plan = SessionPlan {
            target: target.clone(),
            creds: session_credentials(&config.api_key, &session_uuid(seed, *counter)),
            config: config.clone(),
        };
        tasks.spawn(run_session(plan));
    }
    let mut merged = SessionStats::default();
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.map_err(|e| Failure::new(format!("session task failed: {e}")))?;
        merged.merge(&stats);
    }
    Ok(RoundResult::new(
        target.name.clone(),
        round,
        merged,
        started.elapsed(),
    ))
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
