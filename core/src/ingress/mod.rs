//! The client listener's decisions: who may hold a client socket, which upgrades are valid
//! WebSocket handshakes, what to do when `accept` fails, and how often a line a client can
//! trigger may be logged.
//!
//! The driver (`wsv2-shell`'s listener) performs them: it accepts, asks [`ClientSockets`] what
//! to do with each connection, closes what it is told to close, and answers with the
//! [`GatewayError`](crate::errors::GatewayError)s these functions return. Nothing here reads a clock
//! or touches a socket.

mod handshake;
mod line_budget;
mod sockets;

pub use handshake::{HandshakeRefusal, UpgradeRequest, WEBSOCKET_VERSION, check_upgrade};
pub use line_budget::LineBudget;
pub use sockets::{
    AcceptError, AcceptNext, Admit, ClientConnId, ClientSockets, SocketBudget, SocketLimits,
    derive_max_client_sockets,
};
