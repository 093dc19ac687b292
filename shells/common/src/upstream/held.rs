//! The conns a task holds (leased to a WebSocket session or an HTTP turn) and the queue their
//! readers report on: one piece for both kinds of holder, so leases are taken over, reports
//! routed and conns sent home the same way.

use tokio::sync::mpsc;
use wsv2_core::ConnId;
use wsv2_core::conn::UpstreamTransmit;

use super::conn::{ConnIo, ConnReport, UpstreamMsg};
use crate::runtime::Sending;

/// Reports waiting to be handled; a full queue stops the conns' readers (TCP backpressure
/// upstream)
const REPORT_QUEUE: usize = 64;

/// The I/O handles of the conns one task holds (the active one and any retiring)
pub(crate) struct HeldConns<M> {
    conns: Vec<ConnIo>,
    tx: mpsc::Sender<UpstreamMsg>,
    rx: mpsc::Receiver<UpstreamMsg>,
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
        self.conns.push(io);
        None
    }

    /// The next report of any conn that sent here (cancel-safe)
    pub(crate) async fn recv(&mut self) -> Option<UpstreamMsg> {
        self.rx.recv().await
    }

    /// A report already queued, without waiting
    pub(crate) fn try_recv(&mut self) -> Option<UpstreamMsg> {
        self.rx.try_recv().ok()
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
        self.conns.iter().find(|c| c.id() == conn)
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
    /// task has leased it to another holder already. Call after the release itself was sent to
    /// the control task, so an idle report never reaches it first.
    pub(crate) fn release(&mut self, conn: ConnId) {
        if let Some(pos) = self.conns.iter().position(|c| c.id() == conn) {
            let io = self.conns.swap_remove(pos);
            io.release_from(&self.tx);
            // It idles in its pool now.
            io.release_buffers();
        }
    }

    /// Lets the held conns' empty socket buffers go (their holder idles between turns)
    pub(crate) fn release_buffers(&self) {
        for io in &self.conns {
            io.release_buffers();
        }
    }

    /// At the task's end: conns still held go home (the core released them already)
    pub(crate) fn release_all(&mut self) {
        for io in self.conns.drain(..) {
            io.release_from(&self.tx);
        }
    }
}
