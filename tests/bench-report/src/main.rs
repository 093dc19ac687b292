//! `wsv2-bench-report`: turns the raw results of `tests/bench/run.sh` (a directory of JSON files
//! and the divan output) into `BENCHMARKS.md` and a latency CDF plot (PNG). It only reads what the
//! run wrote, so the report can be regenerated from committed results at any time.
//!
//! ```text
//! wsv2-bench-report --results tests/bench/results --md BENCHMARKS.md \
//!                   --png tests/bench/results/latency-cdf.png
//! ```

mod goals;
mod input;
mod plot;
mod report;
mod stats;
mod summary;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use crate::input::{PHASES, Results};
use crate::plot::{Line, Panel};

/// Command line of `wsv2-bench-report`.
#[derive(Debug, Parser)]
#[command(
    name = "wsv2-bench-report",
    about = "Generates BENCHMARKS.md and the latency CDF plot from tests/bench/run.sh results"
)]
struct Args {
    /// The directory run.sh wrote (meta.json, one loadgen report per phase, …).
    #[arg(long)]
    results: PathBuf,
    /// Where to write the Markdown report.
    #[arg(long)]
    md: PathBuf,
    /// Where to write the latency CDF plot (PNG).
    #[arg(long)]
    png: PathBuf,
    /// A TrueType font for the plot's text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsv2-bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let results = Results::read(&args.results)?;
    if results.phases.is_empty() {
        return Err(format!(
            "no phase results ({}) in {}",
            PHASES.join(", "),
            args.results.display()
        ));
    }
    plot::draw(&args.png, &args.font, &panels(&results))?;
    let md = report::render(&results, &relative_link(&args.md, &args.png));
    std::fs::write(&args.md, md).map_err(|e| format!("{}: {e}", args.md.display()))?;
    println!("wrote {} and {}", args.md.display(), args.png.display());
    Ok(())
}

/// Per-event latency (20 sessions, 1 session) and turn start on a warm pool, every target.
fn panels(results: &Results) -> Vec<Panel> {
    let mut panels = Vec::new();
    let mut add = |phase: &str, title: &str, turn_start: bool| {
        let Some(p) = results.phase(phase) else {
            return;
        };
        let lines = results
            .meta
            .targets
            .iter()
            .filter_map(|t| {
                let s = p.report.summary(t)?;
                let buckets = if turn_start {
                    s.turn_start_buckets.clone()
                } else {
                    s.event_latency_buckets.clone()
                };
                Some(Line {
                    name: t.clone(),
                    buckets: buckets.unwrap_or_default(),
                })
            })
            .collect();
        panels.push(Panel {
            title: title.to_owned(),
            lines,
        });
    };
    add("lat20", "per event, 20 sessions at 1 ms", false);
    add("lat1", "per event, 1 session at 1 ms", false);
    add("turn_new", "turn start, new sessions, warm pool", true);
    panels
}

/// The PNG's path as seen from the Markdown file's directory (both given relative to one base).
fn relative_link(md: &Path, png: &Path) -> String {
    let dir = md.parent().unwrap_or(Path::new(""));
    png.strip_prefix(dir)
        .unwrap_or(png)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_is_linked_relative_to_the_report() {
        let link = |md: &str, png: &str| relative_link(Path::new(md), Path::new(png));
        assert_eq!(
            link("BENCHMARKS.md", "tests/bench/results/cdf.png"),
            "tests/bench/results/cdf.png"
        );
        assert_eq!(link("/tmp/x/BENCHMARKS.md", "/tmp/x/cdf.png"), "cdf.png");
    }
}
