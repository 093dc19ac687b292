//! The targets of issue 17 (*Relay at a byte relay's cost*), met or not: each gateway's figure
//! beside its bound, nginx's figure where the bound is relative to it, and how far the other
//! shells are from the first (smol from tokio), all from the raw results of the same run.
//!
//! "Goal" here is one of the issue's targets, to keep the word *target* for what was measured
//! (direct, nginx, tokio, smol), as in the rest of the report.

use std::fmt::Write as _;

use crate::input::{LoadReport, Results};
use crate::report::{added_event, callgrind_per_event, cpu_per_event, idle_rss_kib};
use crate::table::{Table, count, num, three_decimals};

/// Events a heap-allocation count must span to show its goal met.
const MIN_ALLOC_EVENTS: u64 = 100_000;
/// Idle sessions the mem10k goal asks for.
const BIG_IDLE_SESSIONS: u64 = 10_000;
/// How far another shell's figure may be from the first gateway's, as a fraction of it.
const SHELL_TOLERANCE: f64 = 0.10;

/// What a figure must stay within; every figure of issue 17 is better lower.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// At most this many times nginx's figure of the same run.
    TimesNginx(f64),
    /// At most this value.
    AtMost(f64),
}

/// Where a figure comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// CPU µs per event over a phase's measured rounds.
    Cpu(&'static str),
    /// Callgrind instructions per relayed event of a variant (`paced`, `unpaced`).
    Instructions(&'static str),
    /// Added µs per event at a quantile (index into p50/p90/p99/p999) of a phase.
    Added(&'static str, usize),
    /// RSS KiB per idle session of an idle-sessions phase.
    IdleRss(&'static str),
    /// Errors opening the idle sessions of a phase, with the sessions reached.
    IdleErrors(&'static str),
    /// Heap allocations per relayed event of an `allocs.json` variant.
    Allocations(&'static str),
}

/// One goal of the issue: the row's label, its bound, its figure's source and number format.
struct Goal {
    label: &'static str,
    bound: Bound,
    source: Source,
    fmt: fn(f64) -> String,
}

/// The goals in the issue's order.
const GOALS: [Goal; 11] = [
    Goal {
        label: "CPU µs/event at saturation",
        bound: Bound::TimesNginx(1.5),
        source: Source::Cpu("throughput"),
        fmt: num,
    },
    Goal {
        label: "CPU µs/event, 20 sessions paced",
        bound: Bound::TimesNginx(1.2),
        source: Source::Cpu("lat20"),
        fmt: num,
    },
    Goal {
        label: "instructions/event, paced (callgrind)",
        bound: Bound::AtMost(4000.0),
        source: Source::Instructions("paced"),
        fmt: count,
    },
    Goal {
        label: "instructions/event, unpaced (callgrind)",
        bound: Bound::AtMost(1000.0),
        source: Source::Instructions("unpaced"),
        fmt: count,
    },
    Goal {
        label: "added µs/event p50, 1 session",
        bound: Bound::TimesNginx(1.0),
        source: Source::Added("lat1", 0),
        fmt: num,
    },
    Goal {
        label: "added µs/event p50, 20 sessions",
        bound: Bound::TimesNginx(1.0),
        source: Source::Added("lat20", 0),
        fmt: num,
    },
    Goal {
        label: "added µs/event p99, 20 sessions",
        bound: Bound::TimesNginx(2.0),
        source: Source::Added("lat20", 2),
        fmt: num,
    },
    Goal {
        label: "RSS KiB per idle session",
        bound: Bound::AtMost(24.0),
        source: Source::IdleRss("mem"),
        fmt: num,
    },
    Goal {
        label: "errors opening 10,000 idle sessions, 64 at a time",
        bound: Bound::AtMost(0.0),
        source: Source::IdleErrors("mem10k"),
        fmt: count,
    },
    Goal {
        label: "heap allocations/event, paced (whole process)",
        bound: Bound::AtMost(0.0),
        source: Source::Allocations("paced"),
        fmt: three_decimals,
    },
    Goal {
        label: "heap allocations/event, unpaced (whole process)",
        bound: Bound::AtMost(0.0),
        source: Source::Allocations("unpaced"),
        fmt: three_decimals,
    },
];

/// One target's figure for one goal.
struct Figure {
    value: f64,
    /// What the cell shows after the value: the events or sessions it was counted over.
    detail: Option<String>,
    /// Why the measurement is too small to show the goal met (fewer events or sessions than
    /// the goal asks).
    shortfall: Option<String>,
}

impl Figure {
    fn plain(value: f64) -> Self {
        Self {
            value,
            detail: None,
            shortfall: None,
        }
    }
}

/// Whether the phase (or tool) a source reads ran at all.
fn ran(r: &Results, source: Source) -> bool {
    match source {
        Source::Cpu(phase)
        | Source::Added(phase, _)
        | Source::IdleRss(phase)
        | Source::IdleErrors(phase) => r.phase(phase).is_some(),
        Source::Instructions(_) => r.callgrind.is_some(),
        Source::Allocations(_) => r.allocs.is_some(),
    }
}

/// A target's figure for a source, when the run measured it.
fn figure(r: &Results, source: Source, target: &str) -> Option<Figure> {
    let phase = |name: &str| r.phase(name).map(|p| &p.report);
    match source {
        Source::Cpu(name) => cpu_per_event(phase(name)?, target).map(|s| Figure::plain(s.median)),
        Source::Instructions(variant) => callgrind_per_event(r, target, variant).map(Figure::plain),
        Source::Added(name, q) => {
            added_event(phase(name)?, target, q).map(|s| Figure::plain(s.median))
        }
        Source::IdleRss(name) => idle_rss_kib(phase(name)?, target).map(Figure::plain),
        Source::IdleErrors(name) => idle_errors(phase(name)?, target),
        Source::Allocations(variant) => allocations(r, target, variant),
    }
}

/// Errors opening an idle-sessions phase's sessions, with how many went idle after their turn.
fn idle_errors(rep: &LoadReport, target: &str) -> Option<Figure> {
    let s = rep.summary(target)?;
    let opened = s.turns_ok + s.errors;
    Some(Figure {
        value: s.errors as f64,
        detail: Some(format!("{} reached", count(s.turns_ok as f64))),
        shortfall: (opened < BIG_IDLE_SESSIONS).then(|| {
            format!(
                "{} of {} sessions opened",
                count(opened as f64),
                count(BIG_IDLE_SESSIONS as f64)
            )
        }),
    })
}

/// Every heap allocation of the process over the long workload per event it relayed.
fn allocations(r: &Results, target: &str, variant: &str) -> Option<Figure> {
    let a = r
        .allocs
        .as_ref()?
        .targets
        .iter()
        .find(|a| a.target == target && a.variant == variant)?;
    let events = a.long.events;
    Some(Figure {
        // Judged as reported, to 3 decimals: 0.000 is the goal.
        value: (a.whole_per_event()? * 1000.0).round() / 1000.0,
        detail: Some(format!("{} events", count(events as f64))),
        shortfall: (events < MIN_ALLOC_EVENTS).then(|| {
            format!(
                "{} of {} events counted",
                count(events as f64),
                count(MIN_ALLOC_EVENTS as f64)
            )
        }),
    })
}

/// The bound's value: nginx's figure times the factor, or the fixed value.
fn limit(bound: Bound, nginx: Option<&Figure>) -> Option<f64> {
    match bound {
        Bound::TimesNginx(k) => nginx.map(|f| k * f.value),
        Bound::AtMost(v) => Some(v),
    }
}

/// `≤ 1.5 × nginx's = 1.38`, `≤ nginx's` (no nginx in the run), `≤ 4,000`.
fn bound_cell(goal: &Goal, limit: Option<f64>) -> String {
    match goal.bound {
        Bound::TimesNginx(k) => {
            let times = if k == 1.0 {
                String::new()
            } else {
                format!("{k} × ")
            };
            let value = limit.map_or(String::new(), |l| format!(" = {}", (goal.fmt)(l)));
            format!("≤ {times}nginx's{value}")
        }
        Bound::AtMost(v) => format!("≤ {}", (goal.fmt)(v)),
    }
}

/// The figure with what it was counted over; `not run` when its phase did not run.
fn figure_cell(goal: &Goal, ran: bool, f: Option<&Figure>) -> String {
    if !ran {
        return "not run".into();
    }
    let Some(f) = f else { return "–".into() };
    let value = (goal.fmt)(f.value);
    match &f.detail {
        Some(detail) => format!("{value} ({detail})"),
        None => value,
    }
}

fn yes_no(met: bool) -> String {
    if met { "yes" } else { "**no**" }.into()
}

/// `yes`, `**no**`, `**no** (why the measurement cannot show it)`, or `–` (nothing to judge).
fn met_cell(f: Option<&Figure>, limit: Option<f64>) -> String {
    let Some(f) = f else { return "–".into() };
    match (&f.shortfall, limit) {
        (Some(why), _) => format!("**no** ({why})"),
        (None, Some(l)) => yes_no(f.value <= l),
        (None, None) => "–".into(),
    }
}

/// Another shell's figure relative to the first gateway's, and whether it is within the
/// tolerance (either way: the shells share the driver, so a gap is a shell's cost).
fn shell_gap_cells(first: Option<&Figure>, other: Option<&Figure>) -> [String; 2] {
    let (Some(a), Some(b)) = (first, other) else {
        return ["–".into(), "–".into()];
    };
    if a.value == b.value {
        return ["+0.0 %".into(), yes_no(true)];
    }
    if a.value == 0.0 {
        return ["from 0".into(), yes_no(false)];
    }
    let gap = (b.value - a.value) / a.value.abs();
    [
        format!("{:+.1} %", gap * 100.0),
        yes_no(gap.abs() <= SHELL_TOLERANCE),
    ]
}

/// The TLS upstream goal: its rows are the TLS table's, above.
fn tls_line(r: &Results) -> String {
    let ran: Vec<&str> = ["lat20_tls", "mem_tls"]
        .into_iter()
        .filter(|p| r.phase(p).is_some())
        .collect();
    if ran.is_empty() {
        "TLS upstream rows: **not run** (no `lat20_tls`, `mem_tls` results).".into()
    } else {
        format!(
            "TLS upstream rows (the relays' mocks behind TLS; {}): *TLS upstream (`wss://`)* above.",
            ran.join(", ")
        )
    }
}

/// The goals of issue 17 for every gateway of the run, met or not.
pub(crate) fn issue_targets(out: &mut String, r: &Results) {
    let gateways: Vec<&str> = r
        .meta
        .targets
        .iter()
        .map(String::as_str)
        .filter(|t| *t != "direct" && *t != "nginx")
        .collect();
    let Some((first, others)) = gateways.split_first() else {
        return;
    };
    let mut header: Vec<String> = vec!["figure".into(), "bound".into(), "nginx".into()];
    header.extend(gateways.iter().map(|g| (*g).to_owned()));
    header.extend(gateways.iter().map(|g| format!("met: {g}")));
    for other in others {
        header.push(format!("{other} vs {first}"));
        header.push(format!("within {:.0} %", SHELL_TOLERANCE * 100.0));
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header).left_aligned();
    for goal in &GOALS {
        let ran = ran(r, goal.source);
        let nginx = figure(r, goal.source, "nginx");
        let limit = limit(goal.bound, nginx.as_ref());
        let figures: Vec<Option<Figure>> =
            gateways.iter().map(|g| figure(r, goal.source, g)).collect();
        let mut row = vec![
            goal.label.to_owned(),
            bound_cell(goal, limit),
            figure_cell(goal, ran, nginx.as_ref()),
        ];
        row.extend(figures.iter().map(|f| figure_cell(goal, ran, f.as_ref())));
        row.extend(figures.iter().map(|f| met_cell(f.as_ref(), limit)));
        for other in &figures[1..] {
            row.extend(shell_gap_cells(figures[0].as_ref(), other.as_ref()));
        }
        t.row(row);
    }
    let _ = writeln!(
        out,
        "### Issue 17 targets\n\nIssue 17 (*Relay at a byte relay's cost*), from this run's raw \
         results: each gateway's figure against its bound; a bound relative to nginx uses \
         nginx's figure of the same phase (column *nginx*). CPU: median of the rounds' on-CPU \
         µs per event (saturation: the throughput phase; paced: lat20); instructions: callgrind \
         (section *CPU per event*); added latency: median of the round-paired added \
         percentiles (lat1, lat20); RSS: the mem phase; 10,000 idle sessions: the mem10k phase \
         (`--sessions-10k`), *reached*: sessions idle after their turn; heap allocations: every \
         allocation of the process over the long workload of section *Heap allocations per \
         relayed event*, per event relayed, judged to 3 decimals and only over ≥ {} events. \
         *{} vs {first}*: the figure relative to {first}'s, within ±{:.0} % to meet the goal.\n\n\
         {}\n\n{}",
        count(MIN_ALLOC_EVENTS as f64),
        others.join(", "),
        SHELL_TOLERANCE * 100.0,
        tls_line(r),
        t.render()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Allocs, AllocsCount, AllocsTarget, Meta, Phase, ProcUsage, Round, Setup};

    fn cpu_round(target: &str, us_per_event: f64) -> Round {
        Round {
            target: target.into(),
            proc: Some(ProcUsage {
                sched_us_per_event: us_per_event,
                ..ProcUsage::default()
            }),
            ..Round::default()
        }
    }

    fn allocs(target: &str, variant: &str, events: u64, allocations: u64) -> AllocsTarget {
        AllocsTarget {
            target: target.into(),
            variant: variant.into(),
            short: AllocsCount::default(),
            long: AllocsCount {
                events,
                allocations,
            },
        }
    }

    /// nginx, tokio and smol at saturation; allocations counted for tokio and smol.
    fn results() -> Results {
        let mut r = Results {
            meta: Meta {
                targets: ["direct", "nginx", "tokio", "smol"]
                    .map(String::from)
                    .into(),
                ..Meta::default()
            },
            allocs: Some(Allocs {
                targets: vec![
                    allocs("tokio", "paced", 120_000, 0),
                    allocs("smol", "paced", 120_000, 12_000),
                    allocs("tokio", "unpaced", 50_000, 0),
                ],
                ..Allocs::default()
            }),
            ..Results::default()
        };
        let report = LoadReport {
            rounds: vec![
                cpu_round("nginx", 1.0),
                cpu_round("tokio", 1.4),
                cpu_round("smol", 1.6),
            ],
            ..LoadReport::default()
        };
        r.phases.insert(
            "throughput".into(),
            Phase {
                report,
                setup: Setup::default(),
            },
        );
        r
    }

    fn rendered_row(md: &str, label: &str) -> String {
        md.lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no row {label} in\n{md}"))
            .to_owned()
    }

    #[test]
    fn met_and_unmet_goals_render_with_figure_and_bound() {
        let mut md = String::new();
        issue_targets(&mut md, &results());
        assert!(md.contains(
            "| figure | bound | nginx | tokio | smol | met: tokio | met: smol | smol vs tokio | \
             within 10 % |"
        ));
        // tokio within 1.5 × nginx's, smol over it and 14 % off tokio.
        assert_eq!(
            rendered_row(&md, "CPU µs/event at saturation"),
            "| CPU µs/event at saturation | ≤ 1.5 × nginx's = 1.50 | 1.00 | 1.40 | 1.60 | yes | \
             **no** | +14.3 % | **no** |"
        );
        assert_eq!(
            rendered_row(&md, "heap allocations/event, paced (whole process)"),
            "| heap allocations/event, paced (whole process) | ≤ 0.000 | – | \
             0.000 (120,000 events) | 0.100 (120,000 events) | yes | **no** | from 0 | **no** |"
        );
        // Zero allocations over too few events do not show the goal met.
        assert_eq!(
            rendered_row(&md, "heap allocations/event, unpaced (whole process)"),
            "| heap allocations/event, unpaced (whole process) | ≤ 0.000 | – | \
             0.000 (50,000 events) | – | **no** (50,000 of 100,000 events counted) | – | – | – |"
        );
        assert_eq!(
            rendered_row(&md, "errors opening 10,000 idle sessions, 64 at a time"),
            "| errors opening 10,000 idle sessions, 64 at a time | ≤ 0 | not run | not run | \
             not run | – | – | – | – |"
        );
        assert!(md.contains("TLS upstream rows: **not run**"));
    }

    #[test]
    fn idle_sessions_short_of_ten_thousand_do_not_meet_the_goal() {
        let done = |target: &str, turns_ok: u64, errors: u64| Round {
            target: target.into(),
            turns_ok,
            errors,
            ..Round::default()
        };
        let rep = LoadReport {
            summaries: vec![done("tokio", 10_000, 0), done("smol", 9_060, 940)],
            ..LoadReport::default()
        };
        let goal = &GOALS[8];
        let tokio = idle_errors(&rep, "tokio");
        let smol = idle_errors(&rep, "smol");
        assert_eq!(
            figure_cell(goal, true, tokio.as_ref()),
            "0 (10,000 reached)"
        );
        assert_eq!(met_cell(tokio.as_ref(), Some(0.0)), "yes");
        assert_eq!(met_cell(smol.as_ref(), Some(0.0)), "**no**");
        let short = LoadReport {
            summaries: vec![done("tokio", 9_488, 0)],
            ..LoadReport::default()
        };
        assert_eq!(
            met_cell(idle_errors(&short, "tokio").as_ref(), Some(0.0)),
            "**no** (9,488 of 10,000 sessions opened)"
        );
    }
}
