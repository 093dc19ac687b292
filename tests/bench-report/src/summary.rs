//! The summary table (one row per target, the headline figure of each workload), its TLS twin,
//! then the targets of issue 17 (`goals.rs`).

use std::fmt::Write as _;

use crate::input::{LoadReport, Results};
use crate::report::{
    absolute_or_added, callgrind_per_event, cpu_per_event, idle_rss_kib, reuse, upstream_of,
};
use crate::stats::per_round;
use crate::table::{Table, count, median, num, percent};

pub(crate) fn summary(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "## Summary\n\nAdded latency is the target's minus direct's (so direct's row shows its \
         absolute values in *italics*). Per event: 20 sessions at 1 ms pacing; turn start: new \
         sessions on a warm pool; events/s: saturation; CPU: the target's processes during the \
         saturation rounds; instructions: callgrind, events at 1 ms pacing; RSS: 1,000 idle sessions; pool reuse: new \
         sessions with Codex-like per-session headers.\n"
    );
    let mut t = Table::new(&[
        "target",
        "added µs/event p50",
        "p99",
        "added turn start µs p99",
        "events/s",
        "CPU µs/event",
        "instructions/event",
        "RSS KiB/idle session",
        "pool reuse",
    ]);
    let phase = |n: &str| r.phase(n).map(|p| &p.report);
    for target in &r.meta.targets {
        let lat = |q: usize| latency_cell(phase("lat20"), target, q);
        let start = phase("turn_new").map_or("–".into(), |p| {
            italic_if_direct(
                target,
                median(absolute_or_added(p, target, |x| x.turn_start_us.p99), num),
            )
        });
        let rate = phase("throughput").map_or("–".into(), |p| {
            median(per_round(p, target, |x| x.events_per_sec), count)
        });
        let cpu = cpu_cell(phase("throughput"), target);
        let instr = callgrind_per_event(r, target, "paced").map_or("–".into(), count);
        let rss = rss_cell(phase("mem"), target);
        let reuse_cell = r
            .phase("turn_new")
            .and_then(|p| upstream_of(p, target))
            .and_then(reuse)
            .map_or("–".into(), percent);
        t.row(vec![
            target.clone(),
            lat(0),
            lat(2),
            start,
            rate,
            cpu,
            instr,
            rss,
            reuse_cell,
        ]);
    }
    out.push_str(&t.render());
    tls_summary(out, r);
    crate::goals::issue_targets(out, r);
}

/// The headline figures again with the upstream behind TLS (`wss://`), when those phases ran
fn tls_summary(out: &mut String, r: &Results) {
    let lat = r.phase("lat20_tls").map(|p| &p.report);
    let mem = r.phase("mem_tls").map(|p| &p.report);
    if lat.is_none() && mem.is_none() {
        return;
    }
    let mut t = Table::new(&[
        "target",
        "added µs/event p50",
        "p99",
        "CPU µs/event (paced)",
        "RSS KiB/idle session",
    ]);
    for target in &r.meta.targets {
        t.row(vec![
            target.clone(),
            latency_cell(lat, target, 0),
            latency_cell(lat, target, 2),
            cpu_cell(lat, target),
            rss_cell(mem, target),
        ]);
    }
    let _ = writeln!(
        out,
        "\n### TLS upstream (`wss://`)\n\nThe same per-event workload (20 sessions at 1 ms) and \
         idle sessions with each relay's mock behind TLS.{}\n\n{}",
        crate::report::TLS_NOTE,
        t.render()
    );
}

/// Direct's absolute values stand in italics beside the others' added ones.
fn italic_if_direct(target: &str, cell: String) -> String {
    if target == "direct" {
        format!("*{cell}*")
    } else {
        cell
    }
}

/// Added (direct: absolute) µs per event at quantile `q` of a per-event latency phase
fn latency_cell(phase: Option<&LoadReport>, target: &str, q: usize) -> String {
    phase.map_or("–".into(), |p| {
        italic_if_direct(
            target,
            median(
                absolute_or_added(p, target, |x| x.event_latency_us.quantiles()[q]),
                num,
            ),
        )
    })
}

/// CPU µs per event of the target's processes over a phase's rounds
fn cpu_cell(phase: Option<&LoadReport>, target: &str) -> String {
    phase.map_or("–".into(), |p| median(cpu_per_event(p, target), num))
}

/// RSS KiB per idle session of an idle-sessions phase
fn rss_cell(phase: Option<&LoadReport>, target: &str) -> String {
    phase
        .and_then(|p| idle_rss_kib(p, target))
        .map_or("–".into(), num)
}
