//! The client hop's write side, written by the session task itself: a bounded outbox the
//! session fills without waiting and drains whenever the socket takes more, feeding every
//! queued frame and flushing once per wake-up.
//!
//! Writing in the session task (rather than in a writer task of its own) saves a task wake-up
//! per relayed event and a task per socket. The outbox counts unwritten bytes against
//! `session.client_write_buffer`; above it the session is told the client is backpressured (and
//! stops reading upstream, so TCP pushes back on upstream instead of memory growing here). A
//! write that does not finish within `session.client_write_timeout` gives the client up: the
//! frames not yet handed to the socket are dropped (a frame already begun is finished, never
//! cut) and a close 1008 takes their place, written whenever the client reads again within
//! `session.close_linger` of being given up, so it learns why its stream ended. After that
//! nothing more is written and the socket is let go.

use std::collections::VecDeque;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketSender;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use bytes::Bytes;
use futures_util::Sink;

use crate::io::Prefixed;
use crate::relay_config::ReleaseBuffers;
use crate::runtime::{BoxIo, Rt, timeout};

/// The client socket's stream type: the accepted socket, after any bytes hyper read past the
/// upgrade request
pub(crate) type ClientIo = Prefixed<BoxIo>;

/// Something to write to the client
#[derive(Clone, Debug)]
enum ClientOut {
    /// A text frame (the very buffer read from upstream, most of the time)
    Frame(Bytes),
    /// A keepalive ping
    Ping,
    /// A close frame; nothing is written after it
    Close(u16, &'static str),
    /// Flush tungstenite's queued answer to the client's close frame; nothing is written after
    CloseReply,
}

/// How far the outbox is in its life
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Frames are taken
    Open,
    /// A close (or close reply) is queued: later frames are dropped
    Closing,
    /// The close went out: nothing more is written
    Closed,
    /// The socket failed, or a client given up did not read its close in time: nothing more
    /// is written
    Failed,
}

/// The client socket's write half with the frames waiting for it (any message sink in tests)
#[derive(Debug)]
pub(crate) struct ClientOutbox<S = WebSocketSender<ClientIo>> {
    sink: S,
    /// Frames not yet handed to the sink, in order
    queue: VecDeque<ClientOut>,
    /// Text bytes queued or handed to the sink and not yet flushed
    unflushed: usize,
    /// Of those, the bytes already handed to the sink
    fed: usize,
    limit: usize,
    write_timeout: Duration,
    /// How long a client given up still has to read its close 1008
    close_linger: Duration,
    /// The write under way must be flushed by then (`client_write_timeout` after it began)
    write_deadline: Option<Instant>,
    /// Frames were handed to the sink since its last flush
    flush_pending: bool,
    state: State,
    /// A write missed `client_write_timeout`: the client counts as gone, only its close 1008
    /// is still written
    timed_out: bool,
    /// When a client given up stops being offered its close (`close_linger` after it was given
    /// up); `None` once the close went out
    linger_deadline: Option<Instant>,
}

impl<S> ClientOutbox<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    /// An empty outbox over `sink`: `limit` is `session.client_write_buffer`, then
    /// `session.client_write_timeout` and `session.close_linger`
    pub(crate) fn new(
        sink: S,
        limit: usize,
        write_timeout: Duration,
        close_linger: Duration,
    ) -> Self {
        Self {
            sink,
            queue: VecDeque::new(),
            unflushed: 0,
            fed: 0,
            limit,
            write_timeout,
            close_linger,
            write_deadline: None,
            flush_pending: false,
            state: State::Open,
            timed_out: false,
            linger_deadline: None,
        }
    }

    /// Queues a frame without waiting
    pub(crate) fn push(&mut self, now: Instant, frame: Bytes) {
        self.enqueue(now, ClientOut::Frame(frame));
    }

    /// Queues a keepalive ping after the frames already queued
    pub(crate) fn ping(&mut self, now: Instant) {
        self.enqueue(now, ClientOut::Ping);
    }

    /// Queues a close frame after the frames already queued; later frames are dropped
    pub(crate) fn close(&mut self, now: Instant, code: u16, reason: &'static str) {
        self.enqueue(now, ClientOut::Close(code, reason));
    }

    /// Sends the answer to the client's close frame (tungstenite queued it when it read the
    /// close) after the frames already queued; later frames are dropped
    pub(crate) fn answer_close(&mut self, now: Instant) {
        self.enqueue(now, ClientOut::CloseReply);
    }

    /// Queues `out` while the outbox is open; a close or close reply closes it
    fn enqueue(&mut self, now: Instant, out: ClientOut) {
        if self.state != State::Open {
            return;
        }
        match &out {
            ClientOut::Frame(frame) => self.unflushed += frame.len(),
            ClientOut::Ping => {}
            ClientOut::Close(..) | ClientOut::CloseReply => self.state = State::Closing,
        }
        self.write_deadline.get_or_insert(now + self.write_timeout);
        self.queue.push_back(out);
    }

    /// Whether frames may still be handed to the sink
    fn writable(&self) -> bool {
        matches!(self.state, State::Open | State::Closing)
    }

    /// Whether there is something to write (then [`poll_write`](Self::poll_write) should be
    /// polled)
    pub(crate) fn has_work(&self) -> bool {
        self.writable() && (!self.queue.is_empty() || self.flush_pending)
    }

    /// Feeds every queued frame the sink takes and flushes; ready once all of it is written
    /// (or the socket failed). Cancel-safe: the state lives in the outbox and the sink.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Err(()) = ready!(self.poll_write_inner(cx)) {
            self.fail();
        }
        Poll::Ready(())
    }

    /// Hands the queued frames to the sink at once, without flushing: the sink copies each into
    /// its write buffer, so a frame's buffer (a slice of the upstream read buffer, mostly) is let
    /// go now and that read buffer is reused instead of regrown while the frames wait for the
    /// flush. Frames the sink cannot take yet, and pings and closes, stay queued for
    /// [`poll_write`](Self::poll_write), which flushes what it feeds.
    pub(crate) async fn feed(&mut self) {
        std::future::poll_fn(|cx| {
            if let Poll::Ready(Err(())) = self.poll_feed(cx, true) {
                self.fail();
            }
            Poll::Ready(())
        })
        .await
    }

    fn poll_write_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        ready!(self.poll_feed(cx, false))?;
        if self.flush_pending {
            ready!(std::pin::Pin::new(&mut self.sink).poll_flush(cx)).map_err(|_| ())?;
            self.flush_pending = false;
            self.unflushed -= self.fed;
            self.fed = 0;
        }
        if self.queue.is_empty() || self.state == State::Closed {
            self.write_deadline = None;
        }
        if self.state == State::Closed {
            self.linger_deadline = None;
        }
        Poll::Ready(Ok(()))
    }

    /// Feeds every queued frame the sink takes (`frames_only`: up to the first ping or close);
    /// ready when the queue is empty or closed
    fn poll_feed(&mut self, cx: &mut Context<'_>, frames_only: bool) -> Poll<Result<(), ()>> {
        while self.writable() {
            let Some(front) = self.queue.front() else {
                break;
            };
            if frames_only && !matches!(front, ClientOut::Frame(_)) {
                break;
            }
            if matches!(front, ClientOut::CloseReply) {
                // Nothing to feed: tungstenite already queued the reply; the flush sends it.
                self.queue.pop_front();
                self.state = State::Closed;
                self.flush_pending = true;
                break;
            }
            ready!(std::pin::Pin::new(&mut self.sink).poll_ready(cx)).map_err(|_| ())?;
            let message = match self.queue.pop_front() {
                Some(ClientOut::Frame(frame)) => {
                    self.fed += frame.len();
                    // Frames are UTF-8 JSON: upstream text frames (validated by tungstenite on
                    // read), upstream binary frames (validated by the core's classifier) and the
                    // core's own events. Validating again here would be a frame's second pass
                    // (issue 17): the frame goes out as a text frame as it is.
                    debug_assert!(
                        std::str::from_utf8(&frame).is_ok(),
                        "client frames are UTF-8"
                    );
                    Message::Frame(Frame::message(frame, OpCode::Data(Data::Text), true))
                }
                Some(ClientOut::Ping) => Message::Ping(Bytes::new()),
                Some(ClientOut::Close(code, reason)) => {
                    self.state = State::Closed;
                    Message::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    }))
                }
                Some(ClientOut::CloseReply) | None => break,
            };
            std::pin::Pin::new(&mut self.sink)
                .start_send(message)
                .map_err(|_| ())?;
            self.flush_pending = true;
        }
        Poll::Ready(Ok(()))
    }

    fn fail(&mut self) {
        self.state = State::Failed;
        self.queue.clear();
        self.write_deadline = None;
        self.linger_deadline = None;
    }

    /// When the write under way times out (`session.client_write_timeout` after it began), or
    /// a client given up stops being offered its close (`session.close_linger` after that)
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.write_deadline.or(self.linger_deadline)
    }

    /// Gives the client up if its write is still not done at its deadline: the frames not yet
    /// handed to the socket are dropped and a close 1008 is queued in their place (a close
    /// already queued stays), offered for `close_linger`; a client that has not read it by
    /// then gets nothing more (the socket is let go without a close)
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.timed_out {
            if self.linger_deadline.is_some_and(|d| d <= now) {
                self.fail();
            }
            return;
        }
        if self.write_deadline.is_none_or(|d| d > now) {
            return;
        }
        self.timed_out = true;
        self.write_deadline = None;
        self.linger_deadline = Some(now + self.close_linger);
        let keep_close = self
            .queue
            .iter()
            .find(|out| matches!(out, ClientOut::Close(..) | ClientOut::CloseReply))
            .cloned();
        self.queue.clear();
        self.unflushed = self.fed;
        if self.state == State::Open {
            self.state = State::Closing;
        }
        self.queue.push_back(keep_close.unwrap_or(ClientOut::Close(
            1008,
            "client did not read its events in time",
        )));
    }

    /// Whether more than `client_write_buffer` bytes wait for the client
    pub(crate) fn is_full(&self) -> bool {
        self.unflushed >= self.limit
    }

    /// The socket failed (write error) or the client was given up (`client_write_timeout`)
    pub(crate) fn failed(&self) -> bool {
        self.state == State::Failed || self.timed_out
    }

    /// Writes what is queued within the same bounds as during the session (the write under
    /// way by its `client_write_timeout`, then a close 1008 for `close_linger`); returns the
    /// sink if a close frame (or the answer to the client's) went out, so the socket can
    /// linger until the client's answer
    pub(crate) async fn finish(mut self, rt: &Rt) -> Option<S> {
        while self.has_work() {
            // Every queued write has a deadline; without one there is nothing left to bound.
            let Some(deadline) = self.deadline() else {
                break;
            };
            let wait = deadline.saturating_duration_since(rt.now());
            let write = std::future::poll_fn(|cx| self.poll_write(cx));
            if timeout(rt, wait, write).await.is_err() {
                self.handle_timeout(rt.now());
            }
        }
        (self.state == State::Closed).then_some(self.sink)
    }
}

impl<S: ReleaseBuffers> ClientOutbox<S> {
    /// Lets the client socket's empty read and write buffers go, and the queue's room when it
    /// is empty (the session idles)
    pub(crate) fn release_buffers(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
        self.sink.release_buffers();
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
