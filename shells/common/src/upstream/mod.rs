//! Upstream conns: dialing (TCP, proxy tunnel, TLS, upgrade) and the per-conn reader and writer.

mod conn;
mod dial;
mod held;
mod proxy_io;
mod read_half;
mod tls;

pub(crate) use conn::{ConnIo, ConnReport, UpstreamInput, UpstreamMsg, spawn_conn};
pub(crate) use dial::{
    DialRequest, DialRoute, Step, dial, enter, install_crypto_provider, open_stream,
};
pub(crate) use held::HeldConns;
pub(crate) use tls::UpstreamTls;
