//! The soak's section of `RELIABILITY.md` (workload 4): the load, the trends after warm-up, the
//! gauges after the load, and what the RSS is made of: file-backed pages (the executable as far
//! as it has run), the live heap (the program's state, `alloc-count` builds) and the rest of the
//! anonymous memory (what the allocator keeps, thread stacks).

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::report::{Rule, after_text, reasons, rule, u};
use super::soak::slope;
use super::svg::{Series, line_chart};

/// RSS growth after warm-up that the soak accepts, KiB per minute (15 MiB per hour).
pub const RSS_SLOPE_BOUND_KIB_PER_MIN: f64 = 256.0;
/// Open-descriptor growth after warm-up that the soak accepts, per minute.
pub const FD_SLOPE_BOUND_PER_MIN: f64 = 2.0;

const COLORS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];

/// One run's samples, read back from its JSON.
struct Samples(Vec<Value>);

impl Samples {
    /// `(seconds, value × scale)` of every sample that has `key`.
    fn series(&self, key: &str, scale: f64) -> Vec<(f64, f64)> {
        self.0
            .iter()
            .filter_map(|s| Some((s["t_s"].as_f64()?, s[key].as_f64()? * scale)))
            .collect()
    }

    /// Least-squares slope of `key` per minute over samples from `from` to `to` seconds.
    fn slope(&self, key: &str, from: f64, to: f64) -> Option<f64> {
        let points: Vec<(f64, f64)> = self
            .series(key, 1.0)
            .into_iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(t, v)| (t / 60.0, v))
            .collect();
        (points.len() >= 2).then(|| slope(&points))
    }

    /// `key` in the first and last sample of the load (at or before `end` s) and after it, MiB.
    fn start_end_after(&self, key: &str, end: f64) -> Option<(f64, f64, f64)> {
        let points = self.series(key, 1.0 / 1024.0);
        let start = points.first()?.1;
        let during = points.iter().rev().find(|(t, _)| *t <= end)?.1;
        let after = points.last()?.1;
        Some((start, during, after))
    }
}

fn mib3(v: Option<(f64, f64, f64)>) -> String {
    v.map_or("–".into(), |(a, b, c)| {
        format!("{a:.1} → {b:.1} → {c:.1}")
    })
}

fn kib_min(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.0}"))
}

/// Renders the soak's section: one row per shell, the memory table, what held the memory, the
/// rules and the charts (written next to the report).
pub(super) fn soak(
    md: &mut String,
    runs: &[&Value],
    rules: &mut Vec<Rule>,
    dir: &Path,
    svg_prefix: &str,
) {
    let _ = writeln!(md, "## 4. Soak\n");
    if runs.is_empty() {
        let _ = writeln!(md, "Not run.\n");
        return;
    }
    let mut memory_chart = Vec::new();
    let mut fds_chart = Vec::new();
    let mut memory_rows = String::new();
    let mut findings = String::new();
    let _ = writeln!(
        md,
        "| shell | duration s | responses | completed | RSS start → end → after MiB | RSS slope KiB/min (bound {RSS_SLOPE_BOUND_KIB_PER_MIN}) | fds slope /min (bound {FD_SLOPE_BOUND_PER_MIN}) | after the load | non-completions |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (i, run) in runs.iter().enumerate() {
        let shell = run["label"].as_str().unwrap_or("?");
        let r = &run["result"];
        let samples = Samples(r["samples"].as_array().cloned().unwrap_or_default());
        let color = |k: usize| COLORS[(2 * i + k) % COLORS.len()];
        memory_chart.push(Series {
            name: format!("{shell} RSS"),
            color: color(0),
            points: samples.series("rss_kib", 1.0 / 1024.0),
        });
        let live = samples.series("heap_live_kib", 1.0 / 1024.0);
        if !live.is_empty() {
            memory_chart.push(Series {
                name: format!("{shell} live heap"),
                color: color(1),
                points: live,
            });
        }
        fds_chart.push(Series {
            name: format!("{shell} open fds"),
            color: color(0),
            points: samples.series("fds", 1.0),
        });
        fds_chart.push(Series {
            name: format!("{shell} upstream conns open"),
            color: color(1),
            points: samples.series("open", 1.0),
        });
        let c = &r["load"]["total"]["counts"];
        let rss_slope = r["rss_slope_kib_per_min"].as_f64().unwrap_or(f64::NAN);
        let fd_slope = r["fds_slope_per_min"].as_f64().unwrap_or(f64::NAN);
        let (settled, after) = after_text(&r["after"]);
        let end = r["duration_s"].as_f64().unwrap_or(0.0);
        let warm = r["warmup_s"].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {shell} | {end} | {} | {} | {} | {rss_slope:.1} | {fd_slope:.2} | {after} | {} |",
            u(&c["responses"]),
            u(&c["completed"]),
            mib3(samples.start_end_after("rss_kib", end)),
            reasons(c)
        );
        let memory = Memory::of(&samples, warm, end);
        memory.row(&mut memory_rows, shell);
        memory.finding(&mut findings, shell);
        rule(
            rules,
            "4 soak",
            "no upward trend after warm-up (RSS and fds slopes within bounds)",
            shell,
            rss_slope <= RSS_SLOPE_BOUND_KIB_PER_MIN && fd_slope <= FD_SLOPE_BOUND_PER_MIN,
            format!("RSS {rss_slope:.1} KiB/min, fds {fd_slope:.2}/min"),
        );
        rule(
            rules,
            "4 soak",
            "counts return to zero when the load stops",
            shell,
            settled,
            after,
        );
    }
    let _ = writeln!(
        md,
        "\nWhat the RSS is made of (start → end of the load → after it, MiB; slopes after warm-up, \
         KiB/min). *File-backed*: pages of the executable and libraries as far as they have run \
         (large in a test-profile build). *Live heap*: bytes the gateway allocated and has not \
         freed, its state (gateways built with the `alloc-count` feature). *Allocator free*: \
         freed bytes glibc's malloc keeps in its arenas (the gateways allocate with jemalloc: \
         this is then only what C code frees).\n\n\
         | shell | file-backed | anonymous | live heap | allocator free | slopes: RSS / anonymous / file-backed / live heap |\n|---|---|---|---|---|---|\n{memory_rows}\n{findings}"
    );
    let charts = [
        (
            "soak-rss.svg",
            line_chart(
                "Gateway RSS and live heap over the soak",
                "seconds",
                "MiB",
                &memory_chart,
            ),
        ),
        (
            "soak-conns.svg",
            line_chart(
                "Open fds and upstream conns over the soak",
                "seconds",
                "count",
                &fds_chart,
            ),
        ),
    ];
    for (name, svg) in charts {
        if std::fs::write(dir.join(name), svg).is_ok() {
            let _ = writeln!(md, "\n![{name}]({svg_prefix}{name})");
        }
    }
    md.push('\n');
}

/// One run's memory figures.
struct Memory {
    file: Option<(f64, f64, f64)>,
    anon: Option<(f64, f64, f64)>,
    live: Option<(f64, f64, f64)>,
    free: Option<(f64, f64, f64)>,
    rss_slope: Option<f64>,
    anon_slope: Option<f64>,
    file_slope: Option<f64>,
    live_slope: Option<f64>,
    free_slope: Option<f64>,
}

impl Memory {
    fn of(samples: &Samples, warm: f64, end: f64) -> Self {
        Self {
            file: samples.start_end_after("rss_file_kib", end),
            anon: samples.start_end_after("rss_anon_kib", end),
            live: samples.start_end_after("heap_live_kib", end),
            free: samples.start_end_after("allocator_free_kib", end),
            rss_slope: samples.slope("rss_kib", warm, end),
            anon_slope: samples.slope("rss_anon_kib", warm, end),
            file_slope: samples.slope("rss_file_kib", warm, end),
            live_slope: samples.slope("heap_live_kib", warm, end),
            free_slope: samples.slope("allocator_free_kib", warm, end),
        }
    }

    fn row(&self, md: &mut String, shell: &str) {
        let _ = writeln!(
            md,
            "| {shell} | {} | {} | {} | {} | {} / {} / {} / {} |",
            mib3(self.file),
            mib3(self.anon),
            mib3(self.live),
            mib3(self.free),
            kib_min(self.rss_slope),
            kib_min(self.anon_slope),
            kib_min(self.file_slope),
            kib_min(self.live_slope),
        );
    }

    /// What held the memory, in words, from the figures.
    fn finding(&self, md: &mut String, shell: &str) {
        let (Some(anon_slope), Some((_, anon_end, anon_after))) = (self.anon_slope, self.anon)
        else {
            let _ = writeln!(
                md,
                "- **{shell}**: no anonymous/file-backed split in these samples.\n"
            );
            return;
        };
        let Some(live_slope) = self.live_slope else {
            let _ = writeln!(
                md,
                "- **{shell}**: anonymous memory {anon_slope:.0} KiB/min after warm-up; the live \
                 heap was not measured (build the gateway with the `alloc-count` feature to tell \
                 state from allocator retention).\n"
            );
            return;
        };
        let (_, live_end, live_after) = self.live.unwrap_or_default();
        let cause = if live_slope >= anon_slope / 2.0 && live_slope > 0.0 {
            "the live heap grew with it: the growth is state the gateway holds".to_owned()
        } else {
            // glibc's figure; ~0 when the gateway allocates with jemalloc (then C code's only).
            let free = self
                .free_slope
                .filter(|f| f.abs() >= 1.0)
                .map_or(String::new(), |f| {
                    format!(" (the bytes glibc holds freed grew {f:.0} KiB/min)")
                });
            format!(
                "the live heap did not grow with it: the growth is memory the allocator keeps{free}, \
                 freed memory between live blocks or not yet returned to the kernel, not state"
            )
        };
        let _ = writeln!(
            md,
            "- **{shell}**: after warm-up the anonymous RSS grew {anon_slope:.0} KiB/min and the \
             live heap {live_slope:.0} KiB/min: {cause}. At the end of the load the live heap \
             was {live_end:.1} of {anon_end:.1} MiB anonymous; after it {live_after:.1} of \
             {anon_after:.1} MiB (what stays is bounded state: response and session bindings up \
             to `store.local_cache_entries` each, idle upstream conns).\n"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A soak of 10 samples a minute apart whose anonymous RSS grows 1 MiB a minute and whose
    /// live heap grows `live_per_min` KiB a minute.
    fn run(label: &str, live_per_min: u64) -> Value {
        let samples: Vec<Value> = (0..=10u64)
            .map(|m| {
                json!({"t_s": (m * 60) as f64, "rss_kib": 20_000 + 1024 * m,
                       "rss_anon_kib": 4_000 + 1024 * m, "rss_file_kib": 16_000,
                       "heap_live_kib": 3_000 + live_per_min * m, "fds": 10, "open": 5})
            })
            .collect();
        json!({"workload": "soak", "label": label, "result": {
            "duration_s": 600.0, "warmup_s": 60.0, "samples": samples,
            "rss_slope_kib_per_min": 1024.0, "fds_slope_per_min": 0.0,
            "load": {"total": {"counts": {"responses": 5, "completed": 5}}},
            "after": {"gauges": {"leased": 0}, "settled_ms": 1}}})
    }

    #[test]
    fn a_flat_live_heap_under_a_rising_rss_reads_as_allocator_retention_and_a_rising_one_as_state()
    {
        let dir = std::env::temp_dir().join(format!("rel-soak-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (retention, state) = (run("tokio", 0), run("smol", 900));
        let mut md = String::new();
        let mut rules = Vec::new();
        soak(&mut md, &[&retention, &state], &mut rules, &dir, "");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            md.contains("| tokio | 15.6 → 15.6 → 15.6 | 3.9 → 13.9 → 13.9 | 2.9 → 2.9 → 2.9 |"),
            "{md}"
        );
        assert!(md.contains("- **tokio**: after warm-up the anonymous RSS grew 1024 KiB/min and the live heap 0 KiB/min: the live heap did not grow with it: the growth is memory the allocator keeps"), "{md}");
        assert!(md.contains("- **smol**: after warm-up the anonymous RSS grew 1024 KiB/min and the live heap 900 KiB/min: the live heap grew with it: the growth is state"), "{md}");
        assert_eq!(rules.len(), 4, "two rules per shell");
    }
}
