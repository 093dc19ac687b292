//! wsv2-tests: the conformance scenarios, the WebSocket test client they share with the load
//! generator, and the load generator itself.
//!
//! Everything here talks to a target by URL only, so the same code runs against the mock upstream
//! (`wsv2-mock`) and against any gateway in front of it. [`gateway_process`] runs a gateway binary
//! given by path, so every shell's package runs the same binary tests.
//!
//! The shells' in-process integration suite is the `shells` test of this crate
//! (`tests/harness/tests/shells`), one scenario written once and instantiated per shell.

pub mod client;
pub mod conformance;
pub mod failure;
pub mod gateway_process;
pub mod gateway_ulimit;
pub mod loadgen;
pub mod log_leaks;
pub mod protocol;
pub mod real_clients;
pub mod reliability;
pub mod secrets;
pub mod shipped_example;
pub mod sse;

pub use failure::Failure;
