//! What a driver hands a [`Session`](crate::session::Session) and an
//! [`HttpTurn`](crate::http::HttpTurn) alike: the control plane's answers and the reports of the
//! upstream conns they hold. One trait for both, so a driver performs their upstream side with
//! one piece of code and decides nothing.

use std::time::Instant;

use bytes::Bytes;

use crate::conn::UpstreamConn;
use crate::errors::Refusal;
use crate::event::Utf8;
use crate::pool::{Lease, RefuseReason};
use crate::{ConnId, TurnId};

/// What the shell reads from a held upstream conn's socket
#[derive(Debug)]
pub enum UpstreamInput {
    /// A frame: a text frame the shell's WebSocket library validated on read
    /// ([`Utf8::Validated`]: not checked again), or a binary one ([`Utf8::Unchecked`]: the
    /// protocol is text only, so it is garbage the core must see and validate)
    Frame(Bytes, Utf8),
    /// A pong
    Pong,
    /// The socket ended (close, EOF, read or write error)
    Closed,
    /// A message over `upstream.max_message_size` arrived; the socket is unusable
    TooBig,
    /// Writes were abandoned (deadline or the holder's cancellation); a write that had begun
    /// (part of a frame may be on the wire) also drops the socket
    WriteAbandoned,
}

/// An answer of the control plane every holder takes alike (an admission's shape is each
/// holder's own); a holder's input carries it as its `Answer` variant
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// No account, or a chain that cannot continue: the create is answered
    Refused(Refusal),
    /// A conn
    Lease(Lease),
    /// No conn: why (a failed or slow dial may fail over)
    LeaseRefused(RefuseReason),
    /// A concurrency slot for this create
    SlotGranted(TurnId),
}

/// A machine that holds upstream conns: a session or an HTTP turn
pub trait Holder {
    /// The control plane's answers to it
    type Input: HolderInput;

    /// Handles an answer from the control plane
    fn handle_control(&mut self, now: Instant, input: Self::Input);

    /// Handles a report of its upstream conn `conn`. A frame takes the per-event path:
    /// classification without a full parse, the frame relayed as the same buffer unless its
    /// model must be restored.
    fn handle_upstream(&mut self, now: Instant, conn: ConnId, input: UpstreamInput);
}

/// An answer of the control plane to a holder, as the driver routes it: a lease brings its
/// conn's I/O along, and one the holder can no longer take goes back to the pool
pub trait HolderInput {
    /// The lease it is
    fn lease(&self) -> Option<&Lease>;
    /// The lease it is, taken out
    fn into_lease(self) -> Option<Lease>;
}

/// Implements [`HolderInput`] for a holder's input enum: its `Answer(Answer::Lease(_))` is the
/// lease
macro_rules! holder_input {
    ($input:ty) => {
        impl $crate::turn::HolderInput for $input {
            fn lease(&self) -> Option<&$crate::pool::Lease> {
                match self {
                    Self::Answer($crate::turn::Answer::Lease(lease)) => Some(lease),
                    _ => None,
                }
            }

            fn into_lease(self) -> Option<$crate::pool::Lease> {
                match self {
                    Self::Answer($crate::turn::Answer::Lease(lease)) => Some(lease),
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use holder_input;

/// Hands `conn` a report of its socket; a frame is its holder's to route
pub(crate) fn socket_report(conn: &mut UpstreamConn, now: Instant, input: UpstreamInput) {
    match input {
        UpstreamInput::Pong => conn.handle_pong(now),
        // Its stream cannot be followed past a message the shell refused to read.
        UpstreamInput::Closed | UpstreamInput::TooBig => conn.handle_closed(now),
        UpstreamInput::WriteAbandoned => conn.handle_write_abandoned(),
        UpstreamInput::Frame(..) => unreachable!("a frame is routed by its holder"),
    }
}
