//! Stamping, recording and queueing the events of one lane for the socket writer (or SSE body).

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::errors::ApiError;
use crate::record::{Record, Recorder};

/// What the writer of a connection is asked to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send one event as a text frame (or SSE `event:`/`data:` block).
    Event {
        /// The event's `type`, for the SSE `event:` line.
        event_type: String,
        /// The serialized event.
        json: String,
    },
    /// Send a close frame.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: &'static str,
    },
    /// Cut the TCP connection without a close frame once everything before it is written.
    Drop,
}

/// The connection (or HTTP stream) went away; stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// Events of one lane: adds `sequence_number` and `stream_id`, records terminal and error events.
#[derive(Debug)]
pub(crate) struct Emitter {
    out: mpsc::Sender<Outgoing>,
    stream_id: Option<String>,
    next_sequence: u64,
    conn: u64,
    recorder: Arc<Recorder>,
}

impl Emitter {
    pub(crate) fn new(
        out: mpsc::Sender<Outgoing>,
        stream_id: Option<String>,
        conn: u64,
        recorder: Arc<Recorder>,
    ) -> Self {
        Self {
            out,
            stream_id,
            next_sequence: 0,
            conn,
            recorder,
        }
    }

    /// A new response starts: its `sequence_number` counts from 0 again.
    pub(crate) fn start_response(&mut self) {
        self.next_sequence = 0;
    }

    /// Sends an event of the current response with the next `sequence_number`.
    pub(crate) async fn emit(&mut self, event: Value) -> Result<(), Gone> {
        let Value::Object(mut event) = event else {
            return Ok(());
        };
        event.insert("sequence_number".into(), self.next_sequence.into());
        self.next_sequence += 1;
        self.send(event).await
    }

    /// Sends a request-scoped `error` event (no `sequence_number`), echoing the lane.
    pub(crate) async fn error(&mut self, error: &ApiError) -> Result<(), Gone> {
        self.send(error.ws_event(None)).await
    }

    /// Asks the writer to close (1011) or drop the connection.
    pub(crate) async fn control(&mut self, outgoing: Outgoing) -> Result<(), Gone> {
        self.out.send(outgoing).await.map_err(|_| Gone)
    }

    /// Resolves when the writer is gone.
    pub(crate) async fn closed(&self) {
        self.out.closed().await;
    }

    async fn send(&mut self, mut event: Map<String, Value>) -> Result<(), Gone> {
        if let Some(stream_id) = &self.stream_id {
            event.insert("stream_id".into(), stream_id.clone().into());
        }
        let event_type = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if matches!(
            event_type.as_str(),
            "response.completed" | "response.failed" | "response.incomplete" | "error"
        ) {
            self.recorder
                .push(sent_record(self.conn, &event_type, &event));
        }
        let json = serde_json::to_string(&event).map_err(|_| Gone)?;
        self.out
            .send(Outgoing::Event { event_type, json })
            .await
            .map_err(|_| Gone)
    }
}

fn sent_record(conn: u64, event_type: &str, event: &Map<String, Value>) -> Record {
    let response = event.get("response");
    let error = event
        .get("error")
        .or_else(|| response.and_then(|r| r.get("error")));
    Record::Sent {
        conn,
        response_id: response
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        r#type: event_type.to_owned(),
        code: error
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        status: event
            .get("status")
            .and_then(Value::as_u64)
            .map(|s| s as u16),
        stream_id: event
            .get("stream_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}
