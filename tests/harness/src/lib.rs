//! wsv2-tests: the conformance scenarios, the WebSocket test client they share with the load
//! generator, and the load generator itself.
//!
//! Everything here talks to a target by URL only, so the same code runs against the mock upstream
//! (`wsv2-mock`) and against any gateway in front of it.

pub mod client;
pub mod conformance;
pub mod failure;
pub mod loadgen;
pub mod protocol;
pub mod real_clients;
pub mod sse;

pub use failure::Failure;
