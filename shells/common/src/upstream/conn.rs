//! One upstream conn's I/O: a resident reader for its whole life and an independent writer.
//!
//! The socket's read half goes where the conn is held. While the conn idles in its pool the
//! reader task reads it and reports to the control task, so pings are answered and tail packets
//! seen at all times. While it is leased the reader lends the read half to the holder's task,
//! which reads its frames itself ([`super::HeldConns`]): a relayed event crosses no task. The
//! holder is one `watch` value the reader checks before each delivery (an atomic load while it
//! is unchanged, so no lock is taken per frame). A holder that lets go changes it only while it
//! is still the holder (its release can run after the control task has already leased the conn
//! to the next holder, and must not take the conn away from it), then gives the read half back
//! (`read_half.rs`); the reader lends it on to the next holder or reads it for the pool.
//!
//! ```text
//!   Reading ── leased: the read half goes to the conn's slot, the holder is told ──► Lent
//!      ▲                                                                               │
//!      └──── the holder let go: the read half is back in the slot (lent on if leased) ─┘
//!   Reading | Lent ── EOF, read error, failed write, close timeout ──► Gone
//! ```
//!
//! The writer takes a bounded queue, feeds every ready frame and flushes once, and gives up a
//! write at its deadline or when the holder abandons writes.

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tracing::debug;
use wsv2_core::conn::UpstreamTransmit;
pub(crate) use wsv2_core::turn::UpstreamInput;
use wsv2_core::{AccountId, ConnId};

use super::dial::UpstreamWs;
use super::read_half::{Read, ReadHalfSlot, Returned, UpstreamStream};
use crate::relay_config::ReleaseBuffers;
use crate::runtime::{Clock, Rt, spawn, spawn_abortable};

/// Writes queued per conn before a new one counts as abandoned (the conn is then closed)
const WRITE_QUEUE: usize = 64;
/// Frames fed in one batch before a flush
const WRITE_BATCH: usize = 32;

/// One report of one conn
#[derive(Debug)]
pub(crate) struct UpstreamMsg {
    /// The conn
    pub(crate) conn: ConnId,
    /// Its account
    pub(crate) account: AccountId,
    /// What happened
    pub(crate) input: UpstreamInput,
}

/// What a conn tells the control task, its holder while it idles in the pool. The control
/// task's inbox takes these as its own messages (`From<ConnReport>`), so a conn reports in
/// order with everything else the control task is told without knowing its message type.
#[derive(Debug)]
pub(crate) enum ConnReport {
    /// A report of a conn idle in its pool (or released while the report was on its way)
    Idle(UpstreamMsg),
    /// The conn's reader ended: its handle can go and its capacity is free
    Gone {
        /// Its account
        account: AccountId,
        /// The conn
        conn: ConnId,
    },
}

/// What a conn's reader sends the task holding the conn, in order
pub(crate) enum ToHolder {
    /// A report of the reader's own (read before the read half was lent, or the writer's)
    Report(UpstreamMsg),
    /// The conn's read half is in its slot ([`ConnIo::read_half`]): the holder takes it,
    /// reads it from now on and gives it back when it lets go
    Lent(ConnId),
}

/// Who receives a conn's reports
#[derive(Clone, Debug)]
enum Owner {
    /// The control task (the conn is idle in its pool)
    Control,
    /// A holder's task (the conn is leased)
    Holder(mpsc::Sender<ToHolder>),
}

#[derive(Debug)]
struct WriteCmd {
    op: WriteOp,
    /// The abandon generation this write was queued in
    epoch: u64,
}

/// What the writer is asked to do, in queue order
#[derive(Debug)]
enum WriteOp {
    /// Write this
    Transmit(UpstreamTransmit),
    /// The conn idles: free the socket's empty read and write buffers (after the writes queued
    /// before, so the write buffer is empty by then)
    ReleaseBuffers,
}

/// A writer's report to its reader
#[derive(Debug)]
enum WriterEvent {
    Abandoned { started: bool },
    CloseSent,
    Failed,
}

/// Handle to one conn's reader and writer; cheap to clone, moved with the lease
#[derive(Clone, Debug)]
pub(crate) struct ConnIo {
    id: ConnId,
    account: AccountId,
    /// Where the socket's read half waits between the reader and the conn's holders
    read_half: std::sync::Arc<ReadHalfSlot>,
    /// Boxed: a channel allocates its slots 32 at a time, and a conn writes rarely (creates,
    /// pings), so every idle conn would keep 32 unboxed commands' room
    writes: mpsc::Sender<Box<WriteCmd>>,
    owner: std::sync::Arc<watch::Sender<Owner>>,
    abandon: std::sync::Arc<watch::Sender<u64>>,
}

/// Why a write could not be queued
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct QueueFull;

impl ConnIo {
    /// The conn
    pub(crate) fn id(&self) -> ConnId {
        self.id
    }

    /// Its account
    pub(crate) fn account(&self) -> AccountId {
        self.account
    }

    /// Where the reader lends the socket's read half to the conn's holder
    pub(crate) fn read_half(&self) -> &ReadHalfSlot {
        &self.read_half
    }

    /// Queues a write; never waits (a full queue means upstream stopped reading)
    pub(crate) fn write(&self, msg: UpstreamTransmit) -> Result<(), QueueFull> {
        self.queue(WriteOp::Transmit(msg))
    }

    /// Lets the socket's read and write buffers go while the conn idles (no response under
    /// way): an idle conn then holds no buffer, and the next frame either way allocates one.
    /// Never waits; with the write queue full the buffers are in use anyway.
    pub(crate) fn release_buffers(&self) {
        let _ = self.queue(WriteOp::ReleaseBuffers);
    }

    fn queue(&self, op: WriteOp) -> Result<(), QueueFull> {
        let epoch = *self.abandon.borrow();
        self.writes
            .try_send(Box::new(WriteCmd { op, epoch }))
            .map_err(|_| QueueFull)
    }

    /// Abandons the write in flight and every queued one; the holder gets
    /// [`UpstreamInput::WriteAbandoned`] if there was any
    pub(crate) fn abandon_writes(&self) {
        self.abandon.send_modify(|epoch| *epoch += 1);
    }

    /// Routes the conn's reports to `holder` from now on (the conn was leased to it)
    pub(crate) fn lease_to(&self, holder: mpsc::Sender<ToHolder>) {
        self.owner.send_replace(Owner::Holder(holder));
    }

    /// Routes the conn's reports to the control task from now on, unless another holder has
    /// adopted the conn since `holder` took it (its release reached the control task, which
    /// leased the conn again before this call): then the conn is no longer `holder`'s to give.
    pub(crate) fn release_from(&self, holder: &mpsc::Sender<ToHolder>) {
        self.owner.send_if_modified(|owner| match owner {
            Owner::Holder(tx) if tx.same_channel(holder) => {
                *owner = Owner::Control;
                true
            }
            _ => false,
        });
    }
}

/// Starts the reader and writer of a freshly dialed conn, owned by the control task
pub(crate) fn spawn_conn<M: From<ConnReport> + Send + 'static>(
    rt: &Rt,
    id: ConnId,
    account: AccountId,
    ws: UpstreamWs,
    control: mpsc::Sender<M>,
    close_wait: Duration,
) -> ConnIo {
    let (sink, stream) = ws.split();
    spawn_conn_over(rt, id, account, sink, Box::pin(stream), control, close_wait)
}

/// Starts a conn's reader and writer over any message sink and stream (the split socket in
/// production, channels in tests)
pub(crate) fn spawn_conn_over<S, M>(
    rt: &Rt,
    id: ConnId,
    account: AccountId,
    sink: S,
    stream: UpstreamStream,
    control: mpsc::Sender<M>,
    close_wait: Duration,
) -> ConnIo
where
    S: Sink<Message, Error = WsError> + ReleaseBuffers + Unpin + Send + 'static,
    M: From<ConnReport> + Send + 'static,
{
    let (writes_tx, writes_rx) = mpsc::channel(WRITE_QUEUE);
    let (owner_tx, owner_rx) = watch::channel(Owner::Control);
    let (events_tx, events_rx) = mpsc::channel(4);
    let (abandon_tx, abandon_rx) = watch::channel(0u64);
    let writer_clock = Clock::new(rt);
    let writer = spawn_abortable(
        rt,
        run_writer(id, sink, writes_rx, abandon_rx, events_tx, writer_clock),
    );
    let read_half = std::sync::Arc::new(ReadHalfSlot::default());
    let reader = Reader {
        id,
        account,
        read_half: read_half.clone(),
        owner: Owner::Control,
        owner_rx,
        control,
        closed_reported: false,
    };
    let clock = Clock::new(rt);
    spawn(rt, reader.run(stream, events_rx, writer, close_wait, clock));
    ConnIo {
        id,
        account,
        read_half,
        writes: writes_tx,
        owner: std::sync::Arc::new(owner_tx),
        abandon: std::sync::Arc::new(abandon_tx),
    }
}

struct Reader<M> {
    id: ConnId,
    account: AccountId,
    read_half: std::sync::Arc<ReadHalfSlot>,
    /// The holder as last read from `owner_rx`
    owner: Owner,
    owner_rx: watch::Receiver<Owner>,
    /// The control task's inbox
    control: mpsc::Sender<M>,
    closed_reported: bool,
}

impl<M: From<ConnReport>> Reader<M> {
    async fn run(
        mut self,
        stream: UpstreamStream,
        mut events: mpsc::Receiver<WriterEvent>,
        writer: futures_util::future::AbortHandle,
        close_wait: Duration,
        mut clock: Clock,
    ) {
        let mut close_deadline: Option<Instant> = None;
        // The read half is here (`Some`), or lent to a holder (`None`).
        let mut stream = Some(stream);
        let read_half = self.read_half.clone();
        loop {
            if let Some(s) = stream.take() {
                stream = self.lend(s).await.err();
            }
            let read = tokio::select! {
                biased;
                Some(event) = events.recv() => match event {
                    WriterEvent::Abandoned { started } => {
                        self.deliver(UpstreamInput::WriteAbandoned).await;
                        if started {
                            // Part of a frame may be on the wire and the writer is gone: the
                            // socket is dropped now, not after a close handshake that could
                            // only queue behind the abandoned bytes.
                            break;
                        }
                        continue;
                    }
                    WriterEvent::CloseSent => {
                        close_deadline.get_or_insert(clock.now() + close_wait);
                        continue;
                    }
                    WriterEvent::Failed => break,
                },
                () = clock.until(close_deadline) => break,
                returned = read_half.returned(), if stream.is_none() => match returned {
                    Returned::Stream(s) => {
                        stream = Some(s);
                        continue;
                    }
                    Returned::Ended { too_big } => {
                        // The holder reported the message over the limit itself.
                        self.closed_reported = too_big;
                        break;
                    }
                    Returned::NotYet => continue,
                },
                // A new holder: the loop lends it the read half.
                Ok(()) = self.owner_rx.changed(), if stream.is_some() => {
                    self.owner = self.owner_rx.borrow_and_update().clone();
                    continue;
                }
                msg = async { stream.as_mut().expect("guarded").next().await }, if stream.is_some() => {
                    Read::of(msg)
                }
            };
            match read {
                Read::Input(input) => self.deliver(input).await,
                Read::Nothing => {}
                Read::TooBig => {
                    self.deliver(UpstreamInput::TooBig).await;
                    self.closed_reported = true;
                    break;
                }
                Read::End => break,
            }
        }
        writer.abort();
        if !self.closed_reported {
            self.deliver(UpstreamInput::Closed).await;
        }
        let _ = self
            .control
            .send(M::from(ConnReport::Gone {
                account: self.account,
                conn: self.id,
            }))
            .await;
    }

    /// Hands one report to the current owner, following owner changes while it waits
    async fn deliver(&mut self, input: UpstreamInput) {
        let msg = UpstreamMsg {
            conn: self.id,
            account: self.account,
            input,
        };
        // The holder is read after the frame was: a holder that adopted the conn before its
        // create was written is seen by every reply to that create.
        match self.reserve_holder().await {
            Some(permit) => {
                permit.send(ToHolder::Report(msg));
            }
            None => {
                let _ = self.control.send(M::from(ConnReport::Idle(msg))).await;
            }
        }
    }

    /// Lends the read half to the current holder: puts it in the conn's slot and tells the
    /// holder, after the reports queued before (`Err`: the conn is the control task's; the
    /// reader keeps reading it)
    async fn lend(&mut self, stream: UpstreamStream) -> Result<(), UpstreamStream> {
        let Some(permit) = self.reserve_holder().await else {
            return Err(stream);
        };
        self.read_half.lend(stream);
        permit.send(ToHolder::Lent(self.id));
        Ok(())
    }

    /// Room in the current holder's queue, following owner changes while it waits; `None` when
    /// the conn is the control task's
    async fn reserve_holder(&mut self) -> Option<mpsc::OwnedPermit<ToHolder>> {
        self.refresh_owner();
        loop {
            let Owner::Holder(tx) = &self.owner else {
                return None;
            };
            let tx = tx.clone();
            let holder_gone = tokio::select! {
                biased;
                Ok(()) = self.owner_rx.changed() => false,
                permit = tx.reserve_owned() => match permit {
                    Ok(permit) => return Some(permit),
                    Err(_) => true,
                },
            };
            if holder_gone {
                // The holder's task ended: its release went to the control task.
                self.owner = Owner::Control;
            } else {
                // `changed` marked the new value seen: take it unconditionally.
                self.owner = self.owner_rx.borrow_and_update().clone();
            }
        }
    }

    /// Takes the current holder if it changed since the last look (one atomic load otherwise)
    fn refresh_owner(&mut self) {
        if self.owner_rx.has_changed().unwrap_or(false) {
            self.owner = self.owner_rx.borrow_and_update().clone();
        }
    }
}

/// The writer: batches ready frames, one flush per batch, under the earliest deadline, and
/// drops everything queued before an abandon. A write abandoned after it began ends the writer
/// (and with the reader, the socket): its frame may be half on the wire.
async fn run_writer<S>(
    conn: ConnId,
    mut sink: S,
    mut rx: mpsc::Receiver<Box<WriteCmd>>,
    mut abandon: watch::Receiver<u64>,
    events: mpsc::Sender<WriterEvent>,
    mut clock: Clock,
) where
    S: Sink<Message, Error = WsError> + ReleaseBuffers + Unpin,
{
    let mut current = *abandon.borrow_and_update();
    // Grows to the largest batch written (one frame, mostly) instead of room for WRITE_BATCH
    // frames held by every conn for its whole life.
    let mut batch: Vec<Message> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            changed = abandon.changed() => {
                if changed.is_err() {
                    return;
                }
                current = *abandon.borrow_and_update();
                continue;
            }
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => return,
            },
        };
        // Collect this wake-up's writes; ones queued before the latest abandon are dropped.
        let mut dropped = false;
        let mut deadline: Option<Instant> = None;
        let mut closing = false;
        // A release queued behind writes of this batch: done once they are written.
        let mut release = false;
        batch.clear();
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            let WriteCmd { op, epoch } = *cmd;
            match op {
                WriteOp::ReleaseBuffers => release = true,
                WriteOp::Transmit(msg) if epoch < current => {
                    dropped |= matches!(msg, UpstreamTransmit::Text { .. });
                }
                WriteOp::Transmit(UpstreamTransmit::Text { frame, deadline: d }) => {
                    deadline = Some(deadline.map_or(d, |x| x.min(d)));
                    match async_tungstenite::tungstenite::Utf8Bytes::try_from(frame) {
                        Ok(text) => batch.push(Message::Text(text)),
                        Err(_) => dropped = true, // the core only emits UTF-8 JSON
                    }
                }
                WriteOp::Transmit(UpstreamTransmit::Ping) => {
                    batch.push(Message::Ping(Bytes::new()))
                }
                WriteOp::Transmit(UpstreamTransmit::Close) => {
                    closing = true;
                    batch.push(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "".into(),
                    })));
                }
            }
            if batch.len() < WRITE_BATCH && !closing {
                next = rx.try_recv().ok();
            }
        }
        if dropped {
            let _ = events.send(WriterEvent::Abandoned { started: false }).await;
        }
        if !batch.is_empty() {
            let bytes: usize = batch.iter().map(Message::len).sum();
            debug!(%conn, frames = batch.len(), bytes, "upstream write");
            let write = async {
                for msg in batch.drain(..) {
                    sink.feed(msg).await?;
                }
                sink.flush().await
            };
            let failed = tokio::select! {
                biased;
                changed = abandon.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    Some(WriterEvent::Abandoned { started: true })
                }
                () = clock.until(deadline) => Some(WriterEvent::Abandoned { started: true }),
                result = write => result.err().map(|_| WriterEvent::Failed),
            };
            // An abandoned write may have put part of a frame on the wire: the framing cannot
            // be trusted any more, and the sink still holds the rest of it. Nothing more can be
            // written after it, after a failed one, or after a close.
            if let Some(event) = failed.or(closing.then_some(WriterEvent::CloseSent)) {
                let _ = events.send(event).await;
                return;
            }
        }
        if release {
            // Everything queued before was written (and flushed) already.
            sink.release_buffers();
            batch = Vec::new();
        }
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
