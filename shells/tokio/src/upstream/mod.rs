//! Upstream conns: dialing and the per-conn reader and writer.

mod conn;
mod dial;

pub(crate) use conn::{ConnIo, Owner, UpstreamInput, UpstreamMsg, spawn_conn};
pub(crate) use dial::{DialRequest, dial, install_crypto_provider};
