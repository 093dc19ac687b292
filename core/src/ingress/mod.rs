//! The client listener's decisions: who may hold a client socket, which client keys are
//! admitted and how many sockets each may hold ([`ClientKeys`]), what a request's headers mean
//! ([`read_headers`]: the pool-key and session headers), which upgrades are valid WebSocket
//! handshakes, what to do when `accept` fails, and how often a line a client can trigger may
//! be logged.
//!
//! The driver (`wsv2-shell`'s listener) performs them: it accepts, asks [`ClientSockets`] what
//! to do with each connection and [`ClientKeys`] what to do with each request, closes what it
//! is told to close, and answers with the [`GatewayError`](crate::errors::GatewayError)s these
//! functions return. Nothing here reads a clock or touches a socket.

mod admission;
mod handshake;
mod line_budget;
mod sockets;

pub use admission::{
    Admitted, COMPAT_HEADERS, ClientKeyId, ClientKeySpec, ClientKeys, Door, KeyRefusal,
    RequestHeaders, SESSION_HEADERS, bearer, is_session_header, read_headers,
};
pub use handshake::{HandshakeRefusal, UpgradeRequest, WEBSOCKET_VERSION, check_upgrade};
pub use line_budget::LineBudget;
pub use sockets::{
    AcceptError, AcceptNext, Admit, ClientConnId, ClientSockets, SocketBudget, SocketLimits,
    derive_max_client_sockets,
};
