//! The upstream connection machine and its lanes.

mod record;

pub use record::{CachedResponse, CompatKey, ConnRecord, Release};
