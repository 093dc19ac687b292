//! The summary table (one row per target, the headline figure of each workload) and the bars of
//! issue 9 for the wsv2 targets, met or not.

use std::fmt::Write as _;

use crate::input::{LoadReport, Results};
use crate::report::{
    absolute_or_added, added_event, added_start, callgrind_per_event, reuse, upstream_of,
};
use crate::stats::{Spread, per_round};
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
    issue_targets(out, r);
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
    phase.map_or("–".into(), |p| {
        median(
            per_round(p, target, |x| x.proc.map_or(f64::NAN, |u| u.us_per_event())),
            num,
        )
    })
}

/// RSS KiB per idle session of an idle-sessions phase
fn rss_cell(phase: Option<&LoadReport>, target: &str) -> String {
    phase
        .and_then(|p| p.summary(target))
        .and_then(|s| s.proc)
        .map_or("–".into(), |u| num(u.rss_per_session_kib))
}

/// The bars of issue 9 for the wsv2 targets, met or not.
fn issue_targets(out: &mut String, r: &Results) {
    let gateways: Vec<&String> = r
        .meta
        .targets
        .iter()
        .filter(|t| *t != "direct" && *t != "nginx")
        .collect();
    if gateways.is_empty() {
        return;
    }
    let mut t = Table::new(&["target", "bar (issue 9)", "measured", "met"]).left_aligned();
    let med = |s: Option<Spread>| s.map(|s| s.median);
    for g in gateways {
        let mut check =
            |bar: &str, value: Option<f64>, limit: Option<f64>, lower_is_better: bool| {
                let (measured, met) = match (value, limit) {
                    (Some(v), Some(l)) => (
                        num(v),
                        if (lower_is_better && v <= l) || (!lower_is_better && v >= l) {
                            "yes"
                        } else {
                            "**no**"
                        },
                    ),
                    (Some(v), None) => (num(v), "–"),
                    _ => ("–".to_owned(), "–"),
                };
                t.row(vec![g.clone(), bar.to_owned(), measured, met.to_owned()]);
            };
        let lat20 = r.phase("lat20").map(|p| &p.report);
        let lat1 = r.phase("lat1").map(|p| &p.report);
        for (label, rep) in [("20 sessions", lat20), ("1 session", lat1)] {
            let Some(rep) = rep else { continue };
            check(
                &format!("added µs/event p50 ≤ 30 ({label})"),
                med(added_event(rep, g, 0)),
                Some(30.0),
                true,
            );
            check(
                &format!("added µs/event p99 ≤ 200 ({label})"),
                med(added_event(rep, g, 2)),
                Some(200.0),
                true,
            );
            let nginx = med(added_event(rep, "nginx", 0));
            check(
                &format!("added µs/event p50 ≤ nginx's ({label})"),
                med(added_event(rep, g, 0)),
                nginx,
                true,
            );
        }
        if let Some(p) = r.phase("turn_new") {
            check(
                "added turn start µs p99 ≤ 500 (warm pool)",
                med(added_start(&p.report, g, 2)),
                Some(500.0),
                true,
            );
        }
        if let Some(p) = r.phase("throughput") {
            let rate = |t: &str| med(per_round(&p.report, t, |x| x.events_per_sec));
            check(
                "saturation events/s ≥ nginx's",
                rate(g),
                rate("nginx"),
                false,
            );
        }
        if let Some(p) = r.phase("mem") {
            let rss = p
                .report
                .summary(g)
                .and_then(|s| s.proc)
                .map(|u| u.rss_per_session_kib);
            check("RSS KiB per idle session ≤ 64", rss, Some(64.0), true);
        }
        if let Some(p) = r.phase("turn_new") {
            let reuse = upstream_of(p, g).and_then(reuse).map(|x| x * 100.0);
            check(
                "pool reuse % ≥ 95 (Codex-like headers)",
                reuse,
                Some(95.0),
                false,
            );
        }
    }
    let _ = writeln!(
        out,
        "### Issue 9 bars\n\nHeap allocations per relayed event: section *Heap allocations per \
         relayed event* below.\n\n{}",
        t.render()
    );
}
