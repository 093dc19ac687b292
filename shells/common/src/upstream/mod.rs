//! Upstream conns: dialing (TCP, proxy tunnel, TLS, upgrade) and the per-conn reader and writer.

mod conn;
mod dial;
mod proxy_io;
mod tls;

pub(crate) use conn::{ConnIo, Owner, UpstreamInput, UpstreamMsg, adopt_leased, spawn_conn};
pub(crate) use dial::{DialRequest, DialRoute, dial, install_crypto_provider};
pub(crate) use tls::UpstreamTls;
