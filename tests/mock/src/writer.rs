//! The writing half of a WebSocket connection: one task, so a slow client never blocks the
//! reader (which keeps answering pings and taking frames).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_tungstenite::WebSocketSender;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use futures_util::SinkExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use crate::emitter::Outgoing;
use crate::pong_filter::PongFilter;
use crate::record::{CloseSide, Record, Recorder};

/// The socket type under the WebSocket of every mock connection.
pub(crate) type WsIo = TokioAdapter<PongFilter<TokioIo<Upgraded>>>;

/// Why the writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterExit {
    /// A `drop_mid_stream` fault: the socket must be cut now, without a close frame.
    Dropped,
    /// A close frame went out; the reader should wait for the client's reply.
    Closed,
    /// The socket failed or every producer is gone.
    Ended,
}

/// Writes queued events, feeding every ready one before a single flush.
pub(crate) async fn run(
    mut sink: WebSocketSender<WsIo>,
    mut queue: mpsc::Receiver<Outgoing>,
    recorder: Arc<Recorder>,
    conn: u64,
    server_closed: Arc<AtomicBool>,
) -> WriterExit {
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Outgoing::Event { json, .. } => {
                    if sink.feed(Message::text(json)).await.is_err() {
                        return WriterExit::Ended;
                    }
                }
                Outgoing::Close { code, reason } => {
                    server_closed.store(true, Ordering::SeqCst);
                    recorder.push(Record::Close {
                        conn,
                        by: CloseSide::Server,
                        code: Some(code),
                    });
                    let frame = CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return WriterExit::Closed;
                }
                Outgoing::Drop => {
                    let _ = sink.flush().await;
                    server_closed.store(true, Ordering::SeqCst);
                    recorder.push(Record::Close {
                        conn,
                        by: CloseSide::Server,
                        code: None,
                    });
                    return WriterExit::Dropped;
                }
            }
            next = queue.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return WriterExit::Ended;
        }
    }
    WriterExit::Ended
}
