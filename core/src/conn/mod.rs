//! The upstream connection machine and its lanes.

mod lanes;
mod machine;
mod record;
mod types;

pub use lanes::{Ended, OpenResponse, Outcome, Owner};
pub use machine::{ConnState, UpstreamConn};
pub use record::{CachedResponse, CompatKey, ConnRecord, Release};
pub use types::{CloseReason, Routed, UpstreamTransmit};
