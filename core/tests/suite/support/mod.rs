//! What the suite's modules share: the drivers that step the core's machines in virtual time and
//! record a trace, and the one way a trace is compared with its snapshot ([`assert_trace!`]).
//!
//! | driver | machine(s) it steps | used by |
//! | --- | --- | --- |
//! | [`gateway::Gateway`] | one `Control` with HTTP turns and WebSocket sessions, routed as the shells do | `control`, `http`, `trace_reports` |
//! | [`session::Sim`] | one `Session` against a scripted world (admission, leases, slots) | `session` |
//! | [`pool::Sim`] | the `PoolRegistry` | `pool` |
//! | [`scheduler::Sim`] | the `Scheduler` | `scheduler` |
//! | [`store::Harness`] | the `Store` (with or without the in-memory backend) | `store` |
//! | [`proxy`] | an HTTP CONNECT or SOCKS5 handshake against a scripted proxy | `proxy` |
//!
//! Every driver writes its trace with the one [`trace::Trace`] writer, so all traces read alike:
//! `<-` an input, `->` an output, `# ` a note, `@ +Nms` when virtual time has moved. Every
//! driver drains all of a machine's outputs after each input; the session and pool drivers move
//! time with the one [`trace::advance_to`] loop, which fires each deadline (`poll_timeout`) in
//! order. (The scheduler's and the store's tests set the time and call `handle_timeout`
//! themselves; the gateway steps all its machines to the earliest deadline.)
#![allow(dead_code, unreachable_pub)]

/// Compares a trace with `snapshots/{name}.snap` at the top of the repository
///
/// Every snapshot is named explicitly and the module path is not prepended, so a test's module
/// can move without renaming its snapshot.
macro_rules! assert_trace {
    ($name:expr, $trace:expr) => {
        $crate::support::assert_trace(&$name, &$trace)
    };
}

pub mod gateway;
pub mod pool;
pub mod proxy;
pub mod scheduler;
pub mod session;
pub mod store;
pub mod trace;

/// The function behind [`assert_trace!`]
#[track_caller]
pub fn assert_trace(name: &str, trace: &str) {
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, trace);
    });
}

/// The suite's property-test settings: 256 cases from a fixed seed (every run tries the same
/// cases), no failure files
pub fn proptest_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
