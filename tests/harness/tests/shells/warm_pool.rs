//! New sessions arriving on a warm pool, many at a time: every turn completes and every stream
//! is clean. This is the load that lost first turns on reused conns on smol (a session's late
//! release took the conn from the session it had just been leased to); the deterministic test of
//! that race is in `wsv2-shell` (`upstream::conn::tests`), this one keeps the whole hand-off
//! honest at volume on each shell.

use std::time::Duration;

use wsv2_tests::loadgen::{self, BenchOptions, LoadConfig, LoadTarget, Mode};

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup};

shell_tests! {
    sixteen_thousand_turns_of_sessions_arriving_on_a_warm_pool_all_complete(
        flavor = "multi_thread",
        worker_threads = 2
    ),
}

/// Sessions per round, and how many of them run at once: a session starts as soon as another
/// ends, so its first turn takes the conn the other just released
const SESSIONS: usize = 200;
const AT_ONCE: usize = 40;
/// Turns per session (one warm-up turn, also checked) and rounds: 200 × 10 × 8 = 16,000 turns
const TURNS: usize = 9;
const ROUNDS: usize = 8;

async fn sixteen_thousand_turns_of_sessions_arriving_on_a_warm_pool_all_complete(shell: Shell) {
    let setup = Setup::new(shell, |c| {
        // Fewer conns than sessions at once: most sessions wait for a conn, and each release
        // is leased at once to a waiting session, whose turn 1 runs on the reused conn. A
        // session keeps its conn for its life, so a wait can span a whole session: long enough
        // on a busy machine that it must not end in a refusal.
        c.core.pool.max_conns_per_account = AT_ONCE / 2;
        c.core.pool.session_acquire_wait = Duration::from_secs(120);
    })
    .await;
    let config = LoadConfig {
        targets: vec![LoadTarget::from_url("gateway", &setup.gateway.ws_url()).unwrap()],
        api_key: CLIENT_KEY.into(),
        mode: Mode::Ws,
        sessions: SESSIONS,
        turns: TURNS,
        warmup_turns: 1,
        rounds: ROUNDS,
        think_time: Duration::ZERO,
        deltas: Some(2),
        // A lost response shows as a turn that waits this long, then counts as an error.
        event_timeout: Duration::from_secs(10),
    };
    let options = BenchOptions {
        session_concurrency: Some(AT_ONCE),
        ..BenchOptions::default()
    };
    let report = loadgen::run_with(&config, &options)
        .await
        .expect("load run");
    let mut turns = 0;
    for round in &report.rounds {
        let stats = round.stats();
        assert_eq!(
            stats.errors, 0,
            "round {:?}: {:?}",
            round.round, stats.error_samples
        );
        assert!(stats.integrity.is_clean(), "{:?}", stats.integrity);
        turns += stats.turns_ok;
    }
    assert_eq!(
        turns,
        (SESSIONS * TURNS * ROUNDS) as u64,
        "every measured turn completed"
    );
}
