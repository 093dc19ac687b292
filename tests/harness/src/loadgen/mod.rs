//! The load generator: N concurrent sessions × M chained turns per target, alternating targets
//! round by round, measuring turn-start and per-event latency and checking every stream's
//! `sequence_number`s (see the `wsv2-loadgen` binary for the command line).

pub mod bench;
pub mod config;
pub mod event_head;
pub mod histogram;
pub mod report;
pub mod run;
pub mod session;
pub mod stats;
pub mod stream_check;

pub use bench::BenchOptions;
pub use config::{LoadConfig, LoadTarget, Mode};
pub use report::{Report, RoundResult};
pub use run::{run, run_with};
