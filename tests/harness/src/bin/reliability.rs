//! `wsv2-reliability`: the load side of the reliability suite (issue 14). Each subcommand runs one
//! workload against a gateway in front of `wsv2-mock-upstream` and writes its raw JSON;
//! `report` turns a folder of them into `RELIABILITY.md`. `tests/reliability/run.sh` drives it.
//!
//! ```text
//! wsv2-reliability load  --target http://127.0.0.1:8080/v1 --key K --sessions 2000 --turns 20 \
//!                        --mix ws:4,lanes3:2,stored:1,http:1 --json w1.json
//! wsv2-reliability storm --target ... --sessions 1000 --ready-file F --mock-admin 127.0.0.1:9 --json w2.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use wsv2_tests::Failure;
use wsv2_tests::loadgen::LoadTarget;
use wsv2_tests::reliability::faults::{self, FaultPlan};
use wsv2_tests::reliability::load::{self, LoadPlan, parse_mix};
use wsv2_tests::reliability::probe::{self, MockAdmin};
use wsv2_tests::reliability::relay::{self, RelayPlan};
use wsv2_tests::reliability::session::{ClientFault, ClientFaultSwitch};
use wsv2_tests::reliability::soak::{self, SoakPlan};
use wsv2_tests::reliability::storm::{self, StormPlan};

/// The reliability suite's workloads.
#[derive(Debug, Parser)]
#[command(name = "wsv2-reliability")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Workload 1: many sessions × turns of mixed kinds, every event checked.
    Load(LoadArgs),
    /// Workload 2: sessions opening at once on a cold pool, then reconnecting after a restart.
    Storm(StormArgs),
    /// Workload 3: one fault row (load, inject, clear, leak check).
    Fault(FaultArgs),
    /// Workload 4: mixed load with periodic faults, sampling the gateway.
    Soak(SoakArgs),
    /// Workload 3's TCP relay with fault switches (TLS, proxy and Redis rows): serves until
    /// killed.
    Relay(RelayArgs),
    /// RELIABILITY.md from a folder of results (meta.json, workload JSON, extra-*.md).
    Report {
        /// The folder the workloads wrote to.
        #[arg(long)]
        dir: PathBuf,
        /// Where the report goes.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where and who.
#[derive(Debug, Args)]
struct TargetArgs {
    /// The gateway: ws://HOST/v1/responses or http://HOST/v1.
    #[arg(long)]
    target: String,
    /// Client key.
    #[arg(long)]
    key: String,
    /// `metadata.mock_deltas` per response.
    #[arg(long, default_value_t = 8)]
    deltas: u32,
    /// Per-event deadline after which a response counts as hung.
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "30s")]
    event_timeout: Duration,
    /// Write the raw result here.
    #[arg(long)]
    json: PathBuf,
    /// A label stored with the result (e.g. the shell's name).
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Sessions at once.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Turns per session (per lane).
    #[arg(long, default_value_t = 20)]
    turns: usize,
    /// Session kinds and weights: ws (default lane, store:false chain), lanesN (N named lanes),
    /// stored (store:true chain), http (POST + SSE, store:true chain).
    #[arg(long, default_value = "ws:4,lanes3:2,stored:1,http:1")]
    mix: String,
    /// The gateway's HOST:PORT for /metrics: after the load, wait for leases, dials, holds,
    /// waiters and sessions to return to zero.
    #[arg(long)]
    metrics: Option<String>,
}

#[derive(Debug, Args)]
struct StormArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Sessions, all at once.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// How long a client keeps trying to connect, and waits for the restart's close.
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "60s")]
    connect_deadline: Duration,
    /// Written after the cold phase, while every socket is held: the cue to restart the gateway.
    /// Without it, only the cold phase runs.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// The mock's admin HOST:PORT (dials in flight).
    #[arg(long)]
    mock_admin: Option<String>,
}

/// The load of workloads 3 and 4.
#[derive(Debug, Args)]
struct TimedLoadArgs {
    /// Sessions at once.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Session kinds and weights (see `load --help`).
    #[arg(long, default_value = "ws:4,lanes3:2,stored:1,http:1")]
    mix: String,
    /// How long the load runs.
    #[arg(long, value_parser = wsv2_mock::parse_duration)]
    duration: Duration,
    /// The gateway's HOST:PORT for /metrics.
    #[arg(long)]
    metrics: String,
}

#[derive(Debug, Args)]
struct FaultArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    load: TimedLoadArgs,
    /// The row's name (see the report's fault list).
    #[arg(long)]
    fault: String,
    /// When the fault goes in.
    #[arg(long, value_parser = wsv2_mock::parse_duration)]
    inject_at: Duration,
    /// `bash -c` command that injects it (empty: present from the start).
    #[arg(long, default_value = "")]
    inject: String,
    /// When it is cleared.
    #[arg(long, value_parser = wsv2_mock::parse_duration)]
    clear_at: Duration,
    /// `bash -c` command that clears it.
    #[arg(long, default_value = "")]
    clear: String,
    /// The documented bound on one response under this fault.
    #[arg(long, value_parser = wsv2_mock::parse_duration)]
    deadline: Duration,
    /// The fault is there all along (never cleared): no recovery to measure.
    #[arg(long)]
    permanent: bool,
    /// Clean service needed before the load stops to count as recovered.
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "2s")]
    quiet: Duration,
    /// Clients misbehave between the injection and the clear: `vanish` (every third session
    /// drops its socket or POST body at the first delta) or `stop_reading` (every ninth asks for
    /// responses of --stall-deltas deltas and stops reading each for --stall).
    #[arg(long)]
    client_fault: Option<String>,
    /// How long a `stop_reading` client does not read.
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "5s")]
    stall: Duration,
    /// `metadata.mock_deltas` of the responses a `stop_reading` client stops reading.
    #[arg(long, default_value_t = 4096)]
    stall_deltas: u32,
}

#[derive(Debug, Args)]
struct RelayArgs {
    /// Where it listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Where it forwards (HOST:PORT); a CONNECT proxy without it dials the requested authority.
    #[arg(long)]
    to: Option<String>,
    /// Speak HTTP CONNECT to clients first (an outbound proxy).
    #[arg(long)]
    connect_proxy: bool,
    /// The admin endpoint (`POST /mode?name=pass|closed|silent|fail`, `GET /state`).
    #[arg(long, default_value = "127.0.0.1:0")]
    admin: std::net::SocketAddr,
}

#[derive(Debug, Args)]
struct SoakArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    load: TimedLoadArgs,
    /// The gateway's pid.
    #[arg(long)]
    pid: u32,
    /// The mock's admin HOST:PORT (periodic faults).
    #[arg(long)]
    mock_admin: Option<String>,
    /// Sample period.
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "2s")]
    sample_every: Duration,
    /// A fault goes in this often…
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "20s")]
    fault_every: Duration,
    /// …for this long.
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "2s")]
    fault_for: Duration,
    /// Left out of the slopes.
    #[arg(long, value_parser = wsv2_mock::parse_duration, default_value = "60s")]
    warmup: Duration,
}

fn timed_load(target: &TargetArgs, load: &TimedLoadArgs) -> Result<LoadPlan, Failure> {
    let url = LoadTarget::from_url("gateway", &target.target)?;
    Ok(LoadPlan {
        ws_url: url.ws_url,
        http_base: url.http_base,
        key: target.key.clone(),
        sessions: load.sessions,
        turns: 0,
        duration: Some(load.duration),
        mix: parse_mix(&load.mix)?,
        deltas: target.deltas,
        event_timeout: target.event_timeout,
        first_session: 0,
        client_fault: None,
    })
}

async fn run_fault(args: FaultArgs) -> Result<(), Failure> {
    let mut load = timed_load(&args.target, &args.load)?;
    load.client_fault = match args.client_fault.as_deref() {
        None => None,
        Some("vanish") => Some(ClientFault::Vanish),
        Some("stop_reading") => Some(ClientFault::StopReading {
            stall: args.stall,
            deltas: args.stall_deltas,
        }),
        Some(other) => return Err(Failure::new(format!("unknown --client-fault {other:?}"))),
    }
    .map(|fault| Arc::new(ClientFaultSwitch::new(fault)));
    let plan = FaultPlan {
        fault: args.fault.clone(),
        load,
        inject_at: args.inject_at,
        inject: args.inject.clone(),
        clear_at: args.clear_at,
        clear: args.clear.clone(),
        deadline: args.deadline,
        quiet: args.quiet,
        metrics: Some(args.load.metrics.clone()),
        permanent: args.permanent,
    };
    let result = faults::run(&plan).await?;
    let config = serde_json::json!({"fault": args.fault, "sessions": args.load.sessions,
        "mix": args.load.mix, "duration_ms": args.load.duration.as_millis() as u64});
    save(&args.target, "fault", config, result)
}

async fn run_soak(args: SoakArgs) -> Result<(), Failure> {
    let plan = SoakPlan {
        load: timed_load(&args.target, &args.load)?,
        pid: args.pid,
        metrics: args.load.metrics.clone(),
        admin: args.mock_admin.clone().map(MockAdmin),
        sample_every: args.sample_every,
        fault_every: args.fault_every,
        fault_for: args.fault_for,
        warmup: args.warmup,
    };
    let result = soak::run(&plan).await?;
    let config = serde_json::json!({"sessions": args.load.sessions, "mix": args.load.mix,
        "duration_ms": args.load.duration.as_millis() as u64,
        "fault_every_ms": args.fault_every.as_millis() as u64});
    save(&args.target, "soak", config, result)
}

#[derive(Debug, Serialize)]
struct Saved<'a, T: Serialize> {
    workload: &'a str,
    label: &'a str,
    config: serde_json::Value,
    result: T,
}

fn save<T: Serialize>(
    args: &TargetArgs,
    workload: &str,
    config: serde_json::Value,
    result: T,
) -> Result<(), Failure> {
    let saved = Saved {
        workload,
        label: &args.label,
        config,
        result,
    };
    let text =
        serde_json::to_string_pretty(&saved).map_err(|e| Failure::new(format!("JSON: {e}")))?;
    std::fs::write(&args.json, text)
        .map_err(|e| Failure::new(format!("write {}: {e}", args.json.display())))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Load(args) => run_load(args).await,
        Command::Storm(args) => run_storm(args).await,
        Command::Fault(args) => run_fault(args).await,
        Command::Soak(args) => run_soak(args).await,
        Command::Relay(args) => {
            relay::run(RelayPlan {
                listen: args.listen,
                to: args.to,
                connect_proxy: args.connect_proxy,
                admin: args.admin,
            })
            .await
        }
        Command::Report { dir, out } => {
            // SVGs stay beside the raw results; the report links them from where it is written.
            let beside = out.parent().is_some_and(|p| p == dir.as_path());
            let prefix = if beside {
                String::new()
            } else {
                format!("{}/", dir.display())
            };
            wsv2_tests::reliability::report::render(&dir, &prefix).and_then(|md| {
                std::fs::write(&out, md)
                    .map_err(|e| Failure::new(format!("write {}: {e}", out.display())))
            })
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsv2-reliability: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_load(args: LoadArgs) -> Result<(), Failure> {
    let target = LoadTarget::from_url("gateway", &args.target.target)?;
    let plan = LoadPlan {
        ws_url: target.ws_url,
        http_base: target.http_base,
        key: args.target.key.clone(),
        sessions: args.sessions,
        turns: args.turns,
        duration: None,
        mix: parse_mix(&args.mix)?,
        deltas: args.target.deltas,
        event_timeout: args.target.event_timeout,
        first_session: 0,
        client_fault: None,
    };
    let result = load::run(&plan, Instant::now()).await;
    let settled = match &args.metrics {
        Some(addr) => Some(probe::settle(addr, Duration::from_secs(15)).await),
        None => None,
    };
    let config = serde_json::json!({"sessions": args.sessions, "turns": args.turns,
        "mix": args.mix, "deltas": args.target.deltas});
    let after = settled.map(|(gauges, took)| {
        serde_json::json!({"gauges": gauges, "settled_ms": took.map(|d| d.as_millis() as u64)})
    });
    save(
        &args.target,
        "integrity",
        config,
        serde_json::json!({"load": result, "after": after}),
    )
}

async fn run_storm(args: StormArgs) -> Result<(), Failure> {
    let target = LoadTarget::from_url("gateway", &args.target.target)?;
    let plan = StormPlan {
        ws_url: target.ws_url,
        key: args.target.key.clone(),
        sessions: args.sessions,
        deltas: args.target.deltas,
        event_timeout: args.target.event_timeout,
        connect_deadline: args.connect_deadline,
        ready_file: args.ready_file.clone(),
        admin: args.mock_admin.clone().map(MockAdmin),
    };
    let result = storm::run(&plan).await;
    let config = serde_json::json!({"sessions": args.sessions, "deltas": args.target.deltas});
    save(&args.target, "storm", config, result)
}
