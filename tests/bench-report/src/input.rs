//! The raw results of `tests/bench/run.sh`, read back: the machine facts (`meta.json`), one
//! `wsv2-loadgen` report and one setup file per phase, and the callgrind counts. Only the fields
//! the report uses are declared; everything else in the files is ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// `meta.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Meta {
    /// `git rev-parse HEAD` of the run.
    pub(crate) commit: String,
    /// Uncommitted changes under the measured crates.
    pub(crate) dirty: bool,
    /// UTC start time.
    pub(crate) date: String,
    /// `full` or `smoke`.
    pub(crate) mode: String,
    /// CPU, cores, memory, kernel, OS.
    pub(crate) machine: BTreeMap<String, serde_json::Value>,
    /// Tool versions.
    pub(crate) versions: BTreeMap<String, String>,
    /// How processes were pinned.
    pub(crate) pinning: String,
    /// Measured rounds per phase.
    pub(crate) rounds: u32,
    /// `/proc/loadavg` at the start.
    pub(crate) loadavg_start: String,
    /// Binary directory (release or test profile).
    pub(crate) profile: String,
    /// Targets in run order, `direct` first.
    pub(crate) targets: Vec<String>,
    /// Targets skipped and why.
    pub(crate) notes: Vec<String>,
}

/// A percentile summary in µs (as `wsv2-loadgen` writes it).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Percentiles {
    /// Samples.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    pub(crate) p999: f64,
    /// Largest sample.
    pub(crate) max: f64,
}

impl ProcUsage {
    /// CPU µs per event: the scheduler's exact clock when measured, else utime + stime.
    pub(crate) fn us_per_event(&self) -> f64 {
        if self.sched_us_per_event > 0.0 {
            self.sched_us_per_event
        } else {
            self.cpu_us_per_event
        }
    }
}

impl Percentiles {
    /// The four reported quantiles, in table order.
    pub(crate) fn quantiles(&self) -> [f64; 4] {
        [self.p50, self.p90, self.p99, self.p999]
    }
}

/// CPU and memory of a target's processes over a round (or summed over rounds).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ProcUsage {
    /// CPU seconds.
    pub(crate) cpu_secs: f64,
    /// CPU µs per relayed event.
    pub(crate) cpu_us_per_event: f64,
    /// On-CPU µs per relayed event by the scheduler's clock (0 when not measured).
    pub(crate) sched_us_per_event: f64,
    /// CPU seconds per wall second.
    pub(crate) busy: f64,
    /// RSS before, KiB.
    pub(crate) rss_before_kib: u64,
    /// RSS after (all sessions idle in hold mode), KiB.
    pub(crate) rss_after_kib: u64,
    /// RSS growth per idle session, KiB.
    pub(crate) rss_per_session_kib: f64,
}

/// One target in one round, or a target's summary.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Round {
    /// Target name.
    pub(crate) target: String,
    /// A warm-up round (not measured).
    pub(crate) warmup: bool,
    /// Failed turns.
    pub(crate) errors: u64,
    /// Measured turns completed.
    pub(crate) turns_ok: u64,
    /// Events in measured turns.
    pub(crate) events: u64,
    /// Events in every turn.
    pub(crate) events_all: u64,
    /// Measured events per second.
    pub(crate) events_per_sec: f64,
    /// Turn start, µs.
    pub(crate) turn_start_us: Percentiles,
    /// Per-event latency, µs.
    pub(crate) event_latency_us: Percentiles,
    /// WebSocket connect, µs.
    pub(crate) connect_us: Percentiles,
    /// Watched processes.
    pub(crate) proc: Option<ProcUsage>,
    /// Per-event latency histogram (summaries only).
    pub(crate) event_latency_buckets: Option<Vec<(f64, u64)>>,
    /// Turn-start histogram (summaries only).
    pub(crate) turn_start_buckets: Option<Vec<(f64, u64)>>,
}

/// A `wsv2-loadgen --json` report.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoadReport {
    /// Every target × round in run order.
    pub(crate) rounds: Vec<Round>,
    /// Per target over the measured rounds.
    pub(crate) summaries: Vec<Round>,
    /// Extras, of which the command line is used.
    pub(crate) options: Options,
}

/// The part of the loadgen's options the report shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Options {
    /// The command line.
    pub(crate) command: Vec<String>,
}

impl LoadReport {
    /// The measured rounds of one target, in order.
    pub(crate) fn measured(&self, target: &str) -> Vec<&Round> {
        self.rounds
            .iter()
            .filter(|r| r.target == target && !r.warmup)
            .collect()
    }

    /// The summary of one target.
    pub(crate) fn summary(&self, target: &str) -> Option<&Round> {
        self.summaries.iter().find(|r| r.target == target)
    }
}

/// `PHASE.setup.json`: how the targets were started and what their mocks saw.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Setup {
    /// Flags of every mock of the phase.
    pub(crate) mock_flags: String,
    /// Target command lines.
    pub(crate) targets: Vec<SetupTarget>,
    /// Upstream counts from the mocks' records (recorded phases only).
    pub(crate) upstream: Vec<Upstream>,
}

/// One started target.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SetupTarget {
    /// Target name.
    pub(crate) name: String,
    /// Its command line.
    pub(crate) command: String,
}

/// What one target's mock saw.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Upstream {
    /// Target name.
    pub(crate) target: String,
    /// WebSocket upgrades.
    pub(crate) upstream_handshakes: u64,
    /// `response.create` frames (turns forwarded over WebSocket).
    pub(crate) upstream_creates: u64,
    /// Plain HTTP requests (POSTs).
    pub(crate) upstream_posts: u64,
}

/// `callgrind.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Callgrind {
    /// The workloads counted (paced, unpaced).
    pub(crate) variants: Vec<CallgrindVariant>,
    /// One entry per relaying target and variant.
    pub(crate) targets: Vec<CallgrindTarget>,
}

/// One counted workload.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CallgrindVariant {
    /// `paced` or `unpaced`.
    pub(crate) name: String,
    /// The mock's flags.
    pub(crate) mock_flags: String,
    /// The loadgen's flags.
    pub(crate) workload: String,
}

/// Instructions of one target over the workload.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CallgrindTarget {
    /// Target name.
    pub(crate) target: String,
    /// Which workload.
    pub(crate) variant: String,
    /// Instructions (Ir) between zeroing and dumping.
    pub(crate) instructions: u64,
    /// The loadgen report of the workload, beside this file.
    pub(crate) loadgen: String,
}

/// `allocs.json`: heap allocations of each gateway over a short and a long workload.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Allocs {
    /// Sessions of both workloads.
    pub(crate) sessions: u64,
    /// Turns per session of both workloads.
    pub(crate) turns: u64,
    /// Deltas per turn of the short workload.
    pub(crate) short_deltas: u64,
    /// Deltas per turn of the long workload.
    pub(crate) long_deltas: u64,
    /// One entry per gateway and variant (paced, unpaced).
    pub(crate) targets: Vec<AllocsTarget>,
}

/// One gateway's counts for one variant.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AllocsTarget {
    /// Target name.
    pub(crate) target: String,
    /// `paced` or `unpaced`.
    pub(crate) variant: String,
    /// The short workload.
    pub(crate) short: AllocsCount,
    /// The long workload.
    pub(crate) long: AllocsCount,
}

/// Events relayed and allocations made over one workload.
#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default)]
pub(crate) struct AllocsCount {
    /// Events relayed (framing events included).
    pub(crate) events: u64,
    /// Allocations of the whole gateway process meanwhile.
    pub(crate) allocations: u64,
}

impl AllocsTarget {
    /// Every allocation of the long workload per event it relayed.
    pub(crate) fn whole_per_event(&self) -> Option<f64> {
        (self.long.events > 0).then(|| self.long.allocations as f64 / self.long.events as f64)
    }

    /// What one more relayed event costs: per-session and per-turn allocations cancel out.
    pub(crate) fn per_extra_event(&self) -> Option<f64> {
        let events = self.long.events.checked_sub(self.short.events)?;
        (events > 0)
            .then(|| (self.long.allocations as f64 - self.short.allocations as f64) / events as f64)
    }
}

/// One phase: its report and setup.
#[derive(Debug)]
pub(crate) struct Phase {
    /// The loadgen report.
    pub(crate) report: LoadReport,
    /// The setup file (default when absent).
    pub(crate) setup: Setup,
}

/// Events relayed per (target, callgrind variant).
pub(crate) type EventsRelayed = BTreeMap<(String, String), u64>;

/// Everything in a results directory.
#[derive(Debug, Default)]
pub(crate) struct Results {
    /// Machine facts.
    pub(crate) meta: Meta,
    /// Phases by name.
    pub(crate) phases: BTreeMap<String, Phase>,
    /// Callgrind counts with each (target, variant)'s relayed events.
    pub(crate) callgrind: Option<(Callgrind, EventsRelayed)>,
    /// Raw `cargo bench -p wsv2-core` output.
    pub(crate) divan: Option<String>,
    /// Heap allocation counts (`allocs.json`).
    pub(crate) allocs: Option<Allocs>,
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// The phases the report knows, in report order.
pub(crate) const PHASES: [&str; 10] = [
    "lat20",
    "lat1",
    "throughput",
    "turn_warm",
    "turn_new",
    "sse",
    "mem",
    "mem10k",
    "lat20_tls",
    "mem_tls",
];

impl Results {
    /// Reads a results directory; absent phases are simply missing from the report.
    pub(crate) fn read(dir: &Path) -> Result<Self, String> {
        let meta = read_json(&dir.join("meta.json"))?;
        let mut phases = BTreeMap::new();
        for name in PHASES {
            let report_path = dir.join(format!("{name}.json"));
            if !report_path.exists() {
                continue;
            }
            let setup_path = dir.join(format!("{name}.setup.json"));
            let setup = if setup_path.exists() {
                read_json(&setup_path)?
            } else {
                Setup::default()
            };
            phases.insert(
                name.to_owned(),
                Phase {
                    report: read_json(&report_path)?,
                    setup,
                },
            );
        }
        let callgrind_path = dir.join("callgrind.json");
        let callgrind = if callgrind_path.exists() {
            let cg: Callgrind = read_json(&callgrind_path)?;
            let mut events = BTreeMap::new();
            for t in &cg.targets {
                let report: LoadReport = read_json(&dir.join(&t.loadgen))?;
                let n = report.summary(&t.target).map_or(0, |s| s.events_all);
                events.insert((t.target.clone(), t.variant.clone()), n);
            }
            Some((cg, events))
        } else {
            None
        };
        let divan = std::fs::read_to_string(dir.join("divan.txt")).ok();
        let allocs_path = dir.join("allocs.json");
        let allocs = if allocs_path.exists() {
            Some(read_json(&allocs_path)?)
        } else {
            None
        };
        Ok(Self {
            meta,
            phases,
            callgrind,
            divan,
            allocs,
        })
    }

    /// A phase's report, when it ran.
    pub(crate) fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.get(name)
    }
}
