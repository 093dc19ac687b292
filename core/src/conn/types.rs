//! The conn machine's boundary types: what it asks the shell to write, what it read, why it
//! closed.

use std::time::Instant;

use bytes::Bytes;

use super::lanes::Owner;
use crate::event::ServerEvent;

/// Something the shell must write on this conn
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamTransmit {
    /// A text frame, to be written before `deadline`; the shell reports an abandoned write
    /// with [`UpstreamConn::handle_write_abandoned`](super::UpstreamConn::handle_write_abandoned)
    Text {
        /// The frame
        frame: Bytes,
        /// Write deadline (`upstream.write_timeout` from when it was queued)
        deadline: Instant,
    },
    /// A WebSocket ping
    Ping,
    /// A close frame (code 1000); the shell then waits for the socket to end
    Close,
}

/// What a conn read from one upstream text frame
#[derive(Debug)]
pub struct Routed<'a> {
    /// The classified event
    pub event: ServerEvent<'a>,
    /// Who owns it
    pub owner: Owner,
}

/// Why a conn was closed by its own machine
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// No pong within `pong_timeout`
    PongTimeout,
    /// A response stalled for `read_timeout`; the conn retired and closed after its other
    /// lanes finished
    ReadTimeout,
    /// A write was abandoned: the framing is broken
    AbandonedWrite,
    /// The socket ended (read error, close frame, EOF)
    SocketEnded,
    /// Retired and drained, or closed by its holder
    Retired,
    /// A drain after the client left did not finish within `drain_timeout`
    DrainTimeout,
    /// Its holder's client read nothing for `session.blocked_client_timeout`: its responses
    /// were cut so their concurrency slots come back at once
    ClientBlocked,
}
