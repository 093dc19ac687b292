//! Server → client events: top-level `type`, `stream_id`, response id, store flag, usage.

use super::{ClassifyError, ErrorInfo, Usage};

/// The top-level `type` of a server event, as far as the gateway cares
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerEventKind {
    /// `response.created`: a response starts (also an automatic successor after a steer)
    ResponseCreated,
    /// `response.in_progress`
    ResponseInProgress,
    /// `response.queued`
    ResponseQueued,
    /// `response.completed` (terminal)
    ResponseCompleted,
    /// `response.incomplete` (terminal)
    ResponseIncomplete,
    /// `response.failed` (terminal)
    ResponseFailed,
    /// `error`: the WebSocket error envelope
    Error,
    /// `response.steer.accepted`
    SteerAccepted,
    /// `response.steer.pending`
    SteerPending,
    /// `response.steer.failed`
    SteerFailed,
    /// `response.inject.created`
    InjectCreated,
    /// `response.inject.failed`
    InjectFailed,
    /// `response.output_text.delta`
    OutputTextDelta,
    /// Any other type: a stream event of the response open on its lane
    Other,
}

impl ServerEventKind {
    /// Maps a `type` value (raw JSON string contents, no escapes) to its kind
    pub fn from_type(ty: &[u8]) -> Self {
        todo!("{ty:?}")
    }

    /// `response.completed`, `response.incomplete` or `response.failed`
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::ResponseCompleted | Self::ResponseIncomplete | Self::ResponseFailed)
    }

    /// Events whose `response.model` the gateway restores to the client's model name
    pub fn may_carry_model(self) -> bool {
        matches!(
            self,
            Self::ResponseCreated
                | Self::ResponseInProgress
                | Self::ResponseQueued
                | Self::ResponseCompleted
                | Self::ResponseIncomplete
                | Self::ResponseFailed
        )
    }

    /// `response.steer.*` and `response.inject.*` events
    pub fn is_steer_or_inject(self) -> bool {
        matches!(
            self,
            Self::SteerAccepted | Self::SteerPending | Self::SteerFailed | Self::InjectCreated | Self::InjectFailed
        )
    }

    /// The wire name of the kind (`"other"` for [`ServerEventKind::Other`])
    pub fn as_str(self) -> &'static str {
        todo!()
    }
}

/// What the gateway reads from one server event; borrows from the frame
#[derive(Clone, Debug, PartialEq)]
pub struct ServerEvent<'a> {
    /// Top-level `type`
    pub kind: ServerEventKind,
    /// Top-level `stream_id` (raw bytes; the default lane when absent)
    pub stream_id: Option<&'a [u8]>,
    /// `response.id`, read only for `response.created` and terminal events
    pub response_id: Option<&'a [u8]>,
    /// `response.store`, read only for `response.created` and terminal events
    pub store: Option<bool>,
    /// `response.usage`, parsed only for terminal events
    pub usage: Option<Usage>,
    /// The parsed envelope, only for `error` events (rare, so boxed)
    pub error: Option<Box<ErrorInfo>>,
}

/// Classifies a server event from its bytes without a full parse
///
/// Reads only top-level keys (nested `"type"` keys, whitespace, escapes and key order do not
/// fool it) and, for `response.created` and terminal events, the `response` object's `id`,
/// `store` and `usage`. Allocates nothing for events other than `error`.
pub fn classify_server_event(frame: &[u8]) -> Result<ServerEvent<'_>, ClassifyError> {
    todo!("{}", frame.len())
}
