//! `wsv2-loadgen`: N concurrent Responses sessions × M chained turns against one or more targets,
//! alternating targets round by round, reporting latency percentiles, throughput, errors and
//! stream integrity (loss / duplication / reordering by `sequence_number`).
//!
//! ```text
//! wsv2-loadgen --target direct=ws://127.0.0.1:9001/v1/responses \
//!              --target gateway=http://127.0.0.1:8080/v1 --api-key sk-... \
//!              --sessions 20 --turns 10 --deltas 200 --rounds 3 --json out.json
//! wsv2-loadgen --spawn-mock --mock-delta-interval 1ms --deltas 200
//! wsv2-loadgen --target gw=ws://127.0.0.1:8080/v1 --watch-pid gw=4242 --hold-idle \
//!              --sessions 1000 --session-concurrency 64 --turns 1 --warmup 0 --json idle.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wsv2_tests::loadgen::{self, BenchOptions, LoadConfig, LoadTarget, Mode};

/// Command line of `wsv2-loadgen`.
#[derive(Debug, Parser)]
#[command(
    name = "wsv2-loadgen",
    about = "Load generator for Responses API WebSocket/SSE targets"
)]
struct Args {
    /// A target as NAME=URL (ws://HOST/v1/responses or http://HOST/v1); repeat for several.
    #[arg(long = "target", value_name = "NAME=URL")]
    targets: Vec<String>,
    /// Start an in-process mock upstream and add it as target `direct`.
    #[arg(long)]
    spawn_mock: bool,
    /// Bearer key sent by every session (also the spawned mock's key).
    #[arg(long, env = "WSV2_API_KEY", default_value = "sk-mock")]
    api_key: String,
    /// Transport: ws (one socket per session) or sse (POST /v1/responses per turn).
    #[arg(long, value_enum, default_value = "ws")]
    mode: ModeArg,
    /// Sessions per target per round, all at once (unless --session-concurrency caps them).
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// At most this many sessions of a target active at once; the others wait their turn, so
    /// e.g. 200 sessions with concurrency 10 are 200 new sessions arriving on a warm pool.
    #[arg(long)]
    session_concurrency: Option<usize>,
    /// Measured turns per session.
    #[arg(long, default_value_t = 10)]
    turns: usize,
    /// Warm-up turns per session, excluded from the statistics.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Rounds; each round runs every target once, in rotating order.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Extra rounds run first and left out of the summaries (warms pools and caches).
    #[arg(long, default_value_t = 0)]
    warmup_rounds: usize,
    /// Sample CPU time (utime+stime) and VmRSS of PID around each round of target NAME, as
    /// NAME=PID; repeat for several processes of one target (e.g. nginx master and worker).
    #[arg(long = "watch-pid", value_name = "NAME=PID")]
    watch_pids: Vec<String>,
    /// Keep every WebSocket open after its turns; once all sessions of a target are idle, sample
    /// the watched processes' RSS (reported per idle session), then drop them all.
    #[arg(long)]
    hold_idle: bool,
    /// Bind client sockets to this many source addresses 127.0.0.1, 127.0.0.2, … in turn (0:
    /// the OS picks), for tens of thousands of sockets without running out of ports.
    #[arg(long, default_value_t = 0)]
    source_addrs: u32,
    /// Think time between a session's turns, e.g. 0ms, 50ms, 1s.
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    think_time: Duration,
    /// Deltas per response, sent as metadata.mock_deltas (default: the upstream's own).
    #[arg(long)]
    deltas: Option<u32>,
    /// Per-event timeout after which a turn counts as failed.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    event_timeout: Duration,
    /// Pause before each delta in the spawned mock (e.g. 1ms).
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    mock_delta_interval: Duration,
    /// Bytes of text per delta in the spawned mock.
    #[arg(long, default_value_t = 8)]
    mock_delta_bytes: usize,
    /// Write the machine-readable report (per target per round, plus summaries) here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit 0 even when turns failed or streams lost/duplicated/reordered events.
    #[arg(long)]
    allow_errors: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Ws,
    Sse,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        other => return Err(format!("invalid duration unit {other:?}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsv2-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, wsv2_tests::Failure> {
    let mut targets = Vec::new();
    let mut mock = None;
    if args.spawn_mock {
        let cfg = wsv2_mock::MockConfig {
            api_key: args.api_key.clone(),
            delta_interval: args.mock_delta_interval,
            delta_bytes: args.mock_delta_bytes,
            ..wsv2_mock::MockConfig::default()
        };
        let handle = wsv2_mock::start(cfg).await?;
        targets.push(LoadTarget::from_url("direct", &handle.ws_url())?);
        mock = Some(handle);
    }
    for spec in &args.targets {
        targets.push(LoadTarget::parse(spec)?);
    }
    let config = LoadConfig {
        targets,
        api_key: args.api_key,
        mode: match args.mode {
            ModeArg::Ws => Mode::Ws,
            ModeArg::Sse => Mode::Sse,
        },
        sessions: args.sessions,
        turns: args.turns,
        warmup_turns: args.warmup,
        rounds: args.rounds,
        think_time: args.think_time,
        deltas: args.deltas,
        event_timeout: args.event_timeout,
    };
    let mut options = BenchOptions {
        warmup_rounds: args.warmup_rounds,
        session_concurrency: args.session_concurrency,
        hold_idle: args.hold_idle,
        source_addrs: args.source_addrs,
        watch: Vec::new(),
        command: std::env::args().collect(),
    };
    for spec in &args.watch_pids {
        options.watch_pid(spec)?;
    }
    let report = loadgen::run_with(&config, &options).await?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json)?;
    }
    if let Some(handle) = mock {
        handle.shutdown().await;
    }
    let violations = report.has_integrity_violations();
    let errors = report.errors();
    if (violations || errors > 0) && !args.allow_errors {
        eprintln!("wsv2-loadgen: {errors} failed turn(s), integrity violations: {violations}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
