//! The upstream connection machine and its lanes.

mod lanes;
mod machine;
mod record;

pub use lanes::{Ended, OpenResponse, Outcome, Owner};
pub use machine::{CloseReason, ConnState, Routed, UpstreamConn, UpstreamTransmit, lane_of_raw};
pub use record::{CachedResponse, CompatKey, ConnRecord, Release};
