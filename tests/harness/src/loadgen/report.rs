//! Results per target per round, the per-target summary, the human table and the JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::config::LoadConfig;
use super::histogram::Percentiles;
use super::stats::SessionStats;
use super::stream_check::Integrity;

/// One target in one round (or, in [`Report::summaries`], one target over all rounds).
#[derive(Debug, Clone, Serialize)]
pub struct RoundResult {
    /// Target name.
    pub target: String,
    /// Round index (`None` in a summary).
    pub round: Option<usize>,
    /// Wall time of the round for this target, ms.
    pub wall_ms: f64,
    /// Measured turns that completed.
    pub turns_ok: u64,
    /// Failed turns (warm-up included).
    pub errors: u64,
    /// Events received in measured turns.
    pub events: u64,
    /// Measured events per second of measured window.
    pub events_per_sec: f64,
    /// Turn-start latency, µs.
    pub turn_start_us: Percentiles,
    /// Per-event latency (mock send stamp → receive), µs.
    pub event_latency_us: Percentiles,
    /// Loss / duplication / reordering counts.
    pub integrity: Integrity,
    /// A few error descriptions.
    pub error_samples: Vec<String>,
    #[serde(skip)]
    stats: SessionStats,
}

impl RoundResult {
    /// Builds a result from merged session stats.
    pub fn new(target: String, round: usize, stats: SessionStats, wall: Duration) -> Self {
        let mut r = Self::from_stats(target, stats, wall.as_secs_f64() * 1000.0);
        r.round = Some(round);
        r
    }

    fn from_stats(target: String, stats: SessionStats, wall_ms: f64) -> Self {
        let window = stats.window_secs();
        Self {
            target,
            round: None,
            wall_ms,
            turns_ok: stats.turns_ok,
            errors: stats.errors,
            events: stats.events,
            events_per_sec: if window > 0.0 {
                stats.events as f64 / window
            } else {
                0.0
            },
            turn_start_us: stats.turn_start.summary_us(),
            event_latency_us: stats.event_latency.summary_us(),
            integrity: stats.integrity,
            error_samples: stats.error_samples.clone(),
            stats,
        }
    }

    /// The merged raw stats.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The plan.
    pub config: LoadConfig,
    /// Every target × round, in run order.
    pub rounds: Vec<RoundResult>,
    /// Per target, merged over rounds (events/s averaged over rounds).
    pub summaries: Vec<RoundResult>,
}

impl Report {
    /// Builds the per-target summaries.
    pub fn new(config: LoadConfig, rounds: Vec<RoundResult>) -> Self {
        let summaries = config
            .targets
            .iter()
            .map(|t| {
                let mine: Vec<&RoundResult> =
                    rounds.iter().filter(|r| r.target == t.name).collect();
                let mut stats = SessionStats::default();
                let mut wall = 0.0;
                for r in &mine {
                    stats.merge(&r.stats);
                    wall += r.wall_ms;
                }
                let mut summary = RoundResult::from_stats(t.name.clone(), stats, wall);
                let rates: Vec<f64> = mine.iter().map(|r| r.events_per_sec).collect();
                summary.events_per_sec = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
                summary
            })
            .collect();
        Self {
            config,
            rounds,
            summaries,
        }
    }

    /// True when some stream lost, duplicated or reordered events.
    pub fn has_integrity_violations(&self) -> bool {
        self.summaries.iter().any(|s| !s.integrity.is_clean())
    }

    /// Total failed turns.
    pub fn errors(&self) -> u64 {
        self.summaries.iter().map(|s| s.errors).sum()
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "wsv2-loadgen: {:?} mode, {} sessions × {} turns (+{} warm-up), {} round(s), deltas {}",
            c.mode,
            c.sessions,
            c.turns,
            c.warmup_turns,
            c.rounds,
            c.deltas
                .map_or("upstream default".to_owned(), |d| d.to_string())
        );
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>9} {:>10} {:>6} {:>13} | {:>36} | {:>35}",
            "target",
            "turns",
            "events",
            "events/s",
            "errors",
            "lost/dup/reord",
            "turn start µs p50/p90/p99/p999/max",
            "event µs p50/p90/p99/p999/max"
        );
        for s in &self.summaries {
            let t = &s.turn_start_us;
            let e = &s.event_latency_us;
            let _ = writeln!(
                out,
                "{:<10} {:>6} {:>9} {:>10.0} {:>6} {:>13} | {:>36} | {:>35}",
                s.target,
                s.turns_ok,
                s.events,
                s.events_per_sec,
                s.errors,
                format!(
                    "{}/{}/{}",
                    s.integrity.lost, s.integrity.duplicated, s.integrity.reordered
                ),
                format!(
                    "{:.0}/{:.0}/{:.0}/{:.0}/{:.0}",
                    t.p50, t.p90, t.p99, t.p999, t.max
                ),
                format!(
                    "{:.0}/{:.0}/{:.0}/{:.0}/{:.0}",
                    e.p50, e.p90, e.p99, e.p999, e.max
                ),
            );
        }
        if let Some((base, rest)) = self.summaries.split_first() {
            for s in rest {
                let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
                let _ = writeln!(
                    out,
                    "{} vs {}: event p50 ×{:.2}, p99 ×{:.2}; turn start p50 ×{:.2}; events/s ×{:.2}",
                    s.target,
                    base.target,
                    ratio(s.event_latency_us.p50, base.event_latency_us.p50),
                    ratio(s.event_latency_us.p99, base.event_latency_us.p99),
                    ratio(s.turn_start_us.p50, base.turn_start_us.p50),
                    ratio(s.events_per_sec, base.events_per_sec),
                );
            }
        }
        for s in &self.summaries {
            for e in &s.error_samples {
                let _ = writeln!(out, "{}: error sample: {e}", s.target);
            }
        }
        out
    }
}
