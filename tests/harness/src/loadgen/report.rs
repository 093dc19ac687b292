//! Results per target per round, the per-target summary, the human table and the JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::bench::{BenchOptions, ProcUsage};
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
    /// A warm-up round: run, reported, left out of the summary.
    pub warmup: bool,
    /// Wall time of the round for this target, ms.
    pub wall_ms: f64,
    /// Measured turns that completed.
    pub turns_ok: u64,
    /// Failed turns (warm-up included).
    pub errors: u64,
    /// Events received in measured turns.
    pub events: u64,
    /// Events received in every turn, warm-up turns included.
    pub events_all: u64,
    /// Measured events per second of measured window.
    pub events_per_sec: f64,
    /// Turn-start latency, µs.
    pub turn_start_us: Percentiles,
    /// Per-event latency (mock send stamp → receive), µs.
    pub event_latency_us: Percentiles,
    /// WebSocket connect (TCP + upgrade) time, µs.
    pub connect_us: Percentiles,
    /// CPU and memory of the target's watched processes (absent when none were watched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proc: Option<ProcUsage>,
    /// Per-event latency distribution as (bucket bound µs, samples); summaries only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_latency_buckets: Option<Vec<(f64, u64)>>,
    /// Turn-start latency distribution as (bucket bound µs, samples); summaries only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_start_buckets: Option<Vec<(f64, u64)>>,
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
            warmup: false,
            wall_ms,
            turns_ok: stats.turns_ok,
            errors: stats.errors,
            events: stats.events,
            events_all: stats.events_all,
            events_per_sec: if window > 0.0 {
                stats.events as f64 / window
            } else {
                0.0
            },
            turn_start_us: stats.turn_start.summary_us(),
            event_latency_us: stats.event_latency.summary_us(),
            connect_us: stats.connect.summary_us(),
            proc: None,
            event_latency_buckets: None,
            turn_start_buckets: None,
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

/// One target's measured rounds merged: histograms merged, events/s averaged, CPU summed.
fn summarize(target: &str, mine: &[&RoundResult]) -> RoundResult {
    let mut stats = SessionStats::default();
    let mut wall = 0.0;
    for r in mine {
        stats.merge(&r.stats);
        wall += r.wall_ms;
    }
    let events_buckets = stats.event_latency.buckets_us();
    let start_buckets = stats.turn_start.buckets_us();
    let mut summary = RoundResult::from_stats(target.to_owned(), stats, wall);
    let rates: Vec<f64> = mine.iter().map(|r| r.events_per_sec).collect();
    summary.events_per_sec = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    summary.event_latency_buckets = Some(events_buckets);
    summary.turn_start_buckets = Some(start_buckets);
    let usages: Vec<&ProcUsage> = mine.iter().filter_map(|r| r.proc.as_ref()).collect();
    if let (Some(first), Some(last)) = (usages.first(), usages.last()) {
        let cpu: f64 = usages.iter().map(|u| u.cpu_secs).sum();
        let sched: f64 = usages.iter().map(|u| u.sched_secs).sum();
        let per = |x: f64, n: f64| if n > 0.0 { x / n } else { 0.0 };
        summary.proc = Some(ProcUsage {
            cpu_secs: cpu,
            cpu_us_per_event: per(cpu * 1e6, summary.events_all as f64),
            sched_secs: sched,
            sched_us_per_event: per(sched * 1e6, summary.events_all as f64),
            busy: per(if sched > 0.0 { sched } else { cpu }, wall / 1000.0),
            rss_before_kib: first.rss_before_kib,
            rss_after_kib: last.rss_after_kib,
            rss_per_session_kib: per(
                usages.iter().map(|u| u.rss_per_session_kib).sum(),
                usages.len() as f64,
            ),
        });
    }
    summary
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The plan.
    pub config: LoadConfig,
    /// The benchmark extras of the run.
    pub options: BenchOptions,
    /// Every target × round, in run order (warm-up rounds included, marked).
    pub rounds: Vec<RoundResult>,
    /// Per target, merged over the measured rounds (events/s averaged over rounds).
    pub summaries: Vec<RoundResult>,
}

impl Report {
    /// Builds the per-target summaries.
    pub fn new(config: LoadConfig, options: BenchOptions, rounds: Vec<RoundResult>) -> Self {
        let summaries = config
            .targets
            .iter()
            .map(|t| {
                let mine: Vec<&RoundResult> = rounds
                    .iter()
                    .filter(|r| r.target == t.name && !r.warmup)
                    .collect();
                summarize(&t.name, &mine)
            })
            .collect();
        Self {
            config,
            options,
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
            if let Some(u) = &s.proc {
                let _ = writeln!(
                    out,
                    "{}: watched processes: {:.2} CPU s, {:.2} µs/event ({:.2} by schedstat), busy {:.0} %, RSS {} → {} KiB{}",
                    s.target,
                    u.cpu_secs,
                    u.cpu_us_per_event,
                    u.sched_us_per_event,
                    u.busy * 100.0,
                    u.rss_before_kib,
                    u.rss_after_kib,
                    if self.options.hold_idle {
                        format!(" ({:.1} KiB per idle session)", u.rss_per_session_kib)
                    } else {
                        String::new()
                    }
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
