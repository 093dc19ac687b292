//! The upstream connection machine and its lanes.

mod lanes;
mod machine;
mod record;
mod state;
mod types;

pub use lanes::{Ended, OpenResponse, Outcome, Owner};
pub use machine::UpstreamConn;
pub use record::{CachedResponse, CompatKey, ConnRecord, Release};
pub use state::ConnState;
pub use types::{CloseReason, Routed, UpstreamTransmit};
