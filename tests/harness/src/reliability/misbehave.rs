//! Clients of the load that misbehave on purpose while a fault row's window is open (workload 3,
//! `clients_vanish` and `clients_stop_reading`): a share of the sessions vanish mid-stream or
//! stop reading. Their responses are their own doing: [`super::session`] counts them as
//! abandoned (until the session completes a response again) and keeps their times apart, so the
//! other clients are measured alone.
//!
//! ```text
//!   off ──inject_at: set(true)──▶ on (every Nth session misbehaves) ──clear_at: set(false)──▶ off
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One session in this many vanishes while a [`ClientFaultSwitch`] is on (every kind of the
/// default mix gets some: kinds are dealt in turn over 8 sessions, and 3 and 9 are prime to 8).
const VANISH_SHARE: u64 = 3;
/// One session in this many stops reading (each asks for big responses: fewer of them).
const STOP_READING_SHARE: u64 = 9;

/// How a fault row's clients misbehave (workload 3, `clients_vanish`, `clients_stop_reading`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFault {
    /// Drop the socket (WebSocket) or the response body (POST) at the first delta, without a
    /// close frame, then reconnect.
    Vanish,
    /// Ask for a response of `deltas` deltas (more than the socket buffers and the gateway's
    /// client write buffer hold), stop reading at its first event for `stall`, then read again.
    StopReading {
        /// How long the client does not read.
        stall: Duration,
        /// `metadata.mock_deltas` of the responses it stops reading.
        deltas: u32,
    },
}

/// A [`ClientFault`] switched on and off by the fault row's schedule, shared by its sessions.
#[derive(Debug)]
pub struct ClientFaultSwitch {
    fault: ClientFault,
    on: AtomicBool,
}

impl ClientFaultSwitch {
    /// Off until [`ClientFaultSwitch::set`].
    pub fn new(fault: ClientFault) -> Self {
        Self {
            fault,
            on: AtomicBool::new(false),
        }
    }

    /// The misbehaviour it switches.
    pub fn fault(&self) -> ClientFault {
        self.fault
    }

    /// Switches the misbehaviour on or off (responses already going keep their part).
    pub fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    /// The fault session `session` acts out now, if any.
    pub(crate) fn of(&self, session: u64) -> Option<ClientFault> {
        (self.member(session) && self.on.load(Ordering::SeqCst)).then_some(self.fault)
    }

    /// Whether session `session` is one of those that misbehave while the switch is on.
    pub(crate) fn member(&self, session: u64) -> bool {
        let share = match self.fault {
            ClientFault::Vanish => VANISH_SHARE,
            ClientFault::StopReading { .. } => STOP_READING_SHARE,
        };
        session.is_multiple_of(share)
    }
}
