//! The conns a task holds (leased to a WebSocket session or an HTTP turn), the read halves their
//! readers lent it (`read_half.rs`), and the queue their readers report on: one piece for both
//! kinds of holder, so leases are taken over, frames read, reports routed and conns sent home the
//! same way.

use std::task::{Context, Poll};

use tokio::sync::mpsc;
use wsv2_core::ConnId;
use wsv2_core::conn::UpstreamTransmit;

use super::conn::{ConnIo, ConnReport, ToHolder, UpstreamInput, UpstreamMsg};
use super::read_half::{Read, UpstreamStream};
use crate::runtime::Sending;

/// Reports waiting to be handled; a full queue stops the conns' readers (TCP backpressure
/// upstream)
const REPORT_QUEUE: usize = 64;

/// One held conn: its I/O handle and, once taken from its slot, its socket's read half
struct Held {
    io: ConnIo,
    read: Option<UpstreamStream>,
}

impl Held {
    /// Gives the read half (if it was taken) back to the conn's slot and wakes its reader: the
    /// holder let go of the conn
    fn give_back(&mut self) {
        self.io.read_half().give_back(self.read.take());
    }
}

/// The I/O handles of the conns one task holds (the active one and any retiring)
pub(crate) struct HeldConns<M> {
    conns: Vec<Held>,
    tx: mpsc::Sender<ToHolder>,
    rx: mpsc::Receiver<ToHolder>,
    /// The control task's inbox (conns sent home report there)
    control: mpsc::Sender<M>,
}

impl<M: From<ConnReport>> HeldConns<M> {
    /// None held yet
    pub(crate) fn new(control: mpsc::Sender<M>) -> Self {
        let (tx, rx) = mpsc::channel(REPORT_QUEUE);
        Self {
            conns: Vec::new(),
            tx,
            rx,
            control,
        }
    }

    /// Takes over the I/O of a conn leased to this task: its reports come here from now on.
    /// Returns `leased` when the conn's socket ended before the lease was delivered (no I/O came
    /// with it): the task must report that conn as closed.
    pub(crate) fn adopt(&mut self, io: Option<ConnIo>, leased: ConnId) -> Option<ConnId> {
        let Some(io) = io else {
            return Some(leased);
        };
        io.lease_to(self.tx.clone());
        self.conns.push(Held { io, read: None });
        None
    }

    /// The next report of any conn held: what its reader queued, then frames read from the
    /// read halves lent here (cancel-safe)
    pub(crate) async fn recv(&mut self) -> Option<UpstreamMsg> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// A report ready now, without waiting (a read half that has none registers the task to be
    /// woken when it has)
    pub(crate) async fn try_recv(&mut self) -> Option<UpstreamMsg> {
        std::future::poll_fn(|cx| match self.poll_recv(cx) {
            Poll::Ready(msg) => Poll::Ready(msg),
            Poll::Pending => Poll::Ready(None),
        })
        .await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<UpstreamMsg>> {
        // The reader's reports first: those queued before it lent the read half precede every
        // frame read from it.
        while let Poll::Ready(Some(report)) = self.rx.poll_recv(cx) {
            match report {
                ToHolder::Report(msg) => {
                    if matches!(msg.input, UpstreamInput::Closed | UpstreamInput::TooBig)
                        && let Some(held) = self.held_mut(msg.conn)
                    {
                        // The reader ended the conn (its writer failed or it timed out
                        // closing): nothing more is read from it.
                        held.read = None;
                    }
                    return Poll::Ready(Some(msg));
                }
                ToHolder::Lent(conn) => {
                    // Not held any more: the read half stays in the slot, for the reader, which
                    // this holder's release woke.
                    if let Some(held) = self.held_mut(conn) {
                        held.read = held.read.take().or_else(|| held.io.read_half().take());
                    }
                }
            }
        }
        for held in &mut self.conns {
            while let Some(stream) = &mut held.read {
                let Poll::Ready(msg) = stream.as_mut().poll_next(cx) else {
                    break;
                };
                let input = match Read::of(msg) {
                    Read::Input(input) => input,
                    Read::Nothing => continue,
                    end @ (Read::TooBig | Read::End) => {
                        let too_big = matches!(end, Read::TooBig);
                        // The reader ends the conn (and reports it closed, after EOF).
                        held.read = None;
                        held.io.read_half().ended(too_big);
                        if !too_big {
                            break;
                        }
                        UpstreamInput::TooBig
                    }
                };
                let (conn, account) = (held.io.id(), held.io.account());
                return Poll::Ready(Some(UpstreamMsg {
                    conn,
                    account,
                    input,
                }));
            }
        }
        Poll::Pending
    }

    /// `Ok(msg)` if its conn is still held; a report of a conn released meanwhile belongs to
    /// its pool and goes to the control task (`Err`: awaited, it has)
    pub(crate) fn keep_held(&self, msg: UpstreamMsg) -> Result<UpstreamMsg, Sending>
    where
        M: Send + 'static,
    {
        if self.held(msg.conn).is_some() {
            return Ok(msg);
        }
        Err(Sending::new(&self.control, M::from(ConnReport::Idle(msg))))
    }

    fn held(&self, conn: ConnId) -> Option<&ConnIo> {
        self.conns.iter().map(|h| &h.io).find(|io| io.id() == conn)
    }

    fn held_mut(&mut self, conn: ConnId) -> Option<&mut Held> {
        self.conns.iter_mut().find(|h| h.io.id() == conn)
    }

    /// Queues a write on a held conn without waiting; `false` when the conn is not held or its
    /// queue is full (upstream stopped reading): the core counts that write as abandoned
    pub(crate) fn write(&self, conn: ConnId, msg: UpstreamTransmit) -> bool {
        self.held(conn).is_some_and(|io| io.write(msg).is_ok())
    }

    /// Abandons the write in flight and the queued ones on a held conn
    pub(crate) fn abandon_writes(&self, conn: ConnId) {
        if let Some(io) = self.held(conn) {
            io.abandon_writes();
        }
    }

    /// Routes a released conn's reports to the control task from now on, unless the control
    /// task has leased it to another holder already, and gives its read half back. Call after
    /// the release itself was sent to the control task, so an idle report never reaches it
    /// first.
    pub(crate) fn release(&mut self, conn: ConnId) {
        if let Some(pos) = self.conns.iter().position(|h| h.io.id() == conn) {
            let mut held = self.conns.swap_remove(pos);
            // The owner changes first: the reader, given the read half, must not lend it here
            // again.
            held.io.release_from(&self.tx);
            held.give_back();
            // It idles in its pool now.
            held.io.release_buffers();
        }
    }

    /// Lets the held conns' empty socket buffers go (their holder idles between turns)
    pub(crate) fn release_buffers(&self) {
        for held in &self.conns {
            held.io.release_buffers();
        }
    }

    /// At the task's end: conns still held go home (the core released them already)
    pub(crate) fn release_all(&mut self) {
        for mut held in self.conns.drain(..) {
            held.io.release_from(&self.tx);
            held.give_back();
        }
    }
}

impl<M> Drop for HeldConns<M> {
    /// Read halves still here go back to their conns' slots (the task ended without releasing
    /// them: cut at shutdown)
    fn drop(&mut self) {
        // Closed first: a reader given its read half back cannot lend it here again.
        self.rx.close();
        for held in &mut self.conns {
            held.give_back();
        }
    }
}
