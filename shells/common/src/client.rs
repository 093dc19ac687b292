//! The client hop's write side: a bounded outbox the session task fills without waiting, and a
//! writer task that feeds every ready frame and flushes once per wake-up.
//!
//! The outbox counts queued bytes against `session.client_write_buffer`; above it the session
//! is told the client is backpressured (and stops reading upstream, so TCP pushes back on
//! upstream instead of memory growing here).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_tungstenite::WebSocketSender;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use tokio::sync::{Notify, mpsc};

use crate::io::Prefixed;
use crate::runtime::{BoxIo, Clock, Rt, Task, spawn_task, timeout};

/// The client socket's stream type: the accepted socket, after any bytes hyper read past the
/// upgrade request
pub(crate) type ClientIo = Prefixed<BoxIo>;

/// Frames the writer's channel holds; beyond it frames wait in the outbox's spill
const CLIENT_QUEUE: usize = 256;
/// Frames fed in one batch before a flush
const CLIENT_BATCH: usize = 64;

/// Something to write to the client
#[derive(Debug)]
pub(crate) enum ClientOut {
    /// A text frame (the very buffer read from upstream, most of the time)
    Frame(Bytes),
    /// A keepalive ping
    Ping,
    /// A close frame; the writer stops after it
    Close(u16, &'static str),
    /// Flush tungstenite's queued answer to the client's close frame; the writer stops after it
    CloseReply,
}

/// The session task's side of the client writer, over the socket's write half (any message
/// sink in tests)
#[derive(Debug)]
pub(crate) struct ClientOutbox<S = WebSocketSender<ClientIo>> {
    tx: mpsc::Sender<ClientOut>,
    /// Frames the channel had no room for, in order (bounded: the session stops reading
    /// upstream and the client while any wait here)
    spill: VecDeque<ClientOut>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    failed: Arc<AtomicBool>,
    limit: usize,
    closed: bool,
    writer: Option<Task<Option<S>>>,
    rt: Rt,
}

impl<S> ClientOutbox<S>
where
    S: Sink<Message, Error = WsError> + Unpin + Send + 'static,
{
    /// Starts the writer task over `sink`
    pub(crate) fn spawn(rt: &Rt, sink: S, limit: usize, write_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let failed = Arc::new(AtomicBool::new(false));
        let writer = spawn_task(
            rt,
            run_writer(
                sink,
                rx,
                queued.clone(),
                drained.clone(),
                failed.clone(),
                write_timeout,
                Clock::new(rt),
            ),
        );
        Self {
            tx,
            spill: VecDeque::new(),
            queued,
            drained,
            failed,
            limit,
            closed: false,
            writer: Some(writer),
            rt: rt.clone(),
        }
    }

    /// Ends the outbox: the writer writes what is queued; returns the sink if the writer ended
    /// after writing a close frame (so the socket can linger until the client's answer)
    pub(crate) async fn finish(mut self, wait: Duration) -> Option<S> {
        self.refill();
        let writer = self.writer.take()?;
        let rt = self.rt.clone();
        drop(self);
        timeout(&rt, wait, writer.join())
            .await
            .ok()
            .flatten()
            .flatten()
    }

    /// Queues a frame without waiting
    pub(crate) fn push(&mut self, frame: Bytes) {
        if self.closed {
            return;
        }
        let len = frame.len();
        self.queued.fetch_add(len, Ordering::Relaxed);
        self.enqueue(ClientOut::Frame(frame));
    }

    /// Queues a keepalive ping after the frames already queued
    pub(crate) fn ping(&mut self) {
        if !self.closed {
            self.enqueue(ClientOut::Ping);
        }
    }

    /// Queues a close frame after the frames already queued; later frames are dropped
    pub(crate) fn close(&mut self, code: u16, reason: &'static str) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.enqueue(ClientOut::Close(code, reason));
    }

    /// Sends the answer to the client's close frame (tungstenite queued it when it read the
    /// close) after the frames already queued; later frames are dropped
    pub(crate) fn answer_close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.enqueue(ClientOut::CloseReply);
    }

    fn enqueue(&mut self, out: ClientOut) {
        if !self.spill.is_empty() {
            return self.spill.push_back(out);
        }
        if let Err(mpsc::error::TrySendError::Full(out)) = self.tx.try_send(out) {
            self.spill.push_back(out);
        }
    }

    /// Moves spilled frames into the writer's channel while it has room
    pub(crate) fn refill(&mut self) {
        while let Some(out) = self.spill.pop_front() {
            match self.tx.try_send(out) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(out)) => {
                    self.spill.push_front(out);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.spill.clear();
                    return;
                }
            }
        }
    }

    /// Whether more than `client_write_buffer` bytes (or more frames than the channel holds)
    /// wait for the client
    pub(crate) fn is_full(&self) -> bool {
        !self.spill.is_empty() || self.queued.load(Ordering::Relaxed) >= self.limit
    }

    /// Whether frames wait outside the writer's channel (then the client is not read either)
    pub(crate) fn has_spill(&self) -> bool {
        !self.spill.is_empty()
    }

    /// The writer failed (write error or `client_write_timeout` on one batch)
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Resolves after the writer finished a batch
    pub(crate) fn drained(&self) -> Arc<Notify> {
        self.drained.clone()
    }
}

async fn run_writer<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<ClientOut>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    failed: Arc<AtomicBool>,
    write_timeout: Duration,
    mut clock: Clock,
) -> Option<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    while let Some(first) = rx.recv().await {
        let deadline = Some(clock.now() + write_timeout);
        let mut written = 0usize;
        let mut closing = false;
        let batch = async {
            let mut next = Some(first);
            let mut count = 0;
            while let Some(out) = next.take() {
                match out {
                    ClientOut::Frame(frame) => {
                        written += frame.len();
                        // Frames are UTF-8 JSON (upstream text or the core's own events).
                        let text = Utf8Bytes::try_from(frame).map_err(|_| ())?;
                        sink.feed(Message::Text(text)).await.map_err(|_| ())?;
                    }
                    ClientOut::Ping => {
                        sink.feed(Message::Ping(Bytes::new()))
                            .await
                            .map_err(|_| ())?;
                    }
                    ClientOut::Close(code, reason) => {
                        closing = true;
                        let frame = CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        };
                        sink.feed(Message::Close(Some(frame)))
                            .await
                            .map_err(|_| ())?;
                        break;
                    }
                    ClientOut::CloseReply => {
                        closing = true;
                        break;
                    }
                }
                count += 1;
                if count < CLIENT_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            sink.flush().await.map_err(|_| ())
        };
        let result = tokio::select! {
            biased;
            result = batch => result,
            () = clock.until(deadline) => Err(()),
        };
        queued.fetch_sub(written, Ordering::Relaxed);
        if result.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        drained.notify_one();
        if failed.load(Ordering::Relaxed) {
            return None;
        }
        if closing {
            return Some(sink);
        }
    }
    None
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
