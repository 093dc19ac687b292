//! What the gateway reads from one server event (its kind, lane, response id, store flag,
//! usage, error): the values the classifier's two walks (`classify.rs`, `flat.rs`) produce.

use super::json_str::JsonStr;
use super::{ErrorInfo, Usage};

/// Every kind with its wire name, in declaration order (one static table for both directions)
const KINDS: [(ServerEventKind, &str); 14] = [
    (ServerEventKind::ResponseCreated, "response.created"),
    (ServerEventKind::ResponseInProgress, "response.in_progress"),
    (ServerEventKind::ResponseQueued, "response.queued"),
    (ServerEventKind::ResponseCompleted, "response.completed"),
    (ServerEventKind::ResponseIncomplete, "response.incomplete"),
    (ServerEventKind::ResponseFailed, "response.failed"),
    (ServerEventKind::Error, "error"),
    (ServerEventKind::SteerAccepted, "response.steer.accepted"),
    (ServerEventKind::SteerPending, "response.steer.pending"),
    (ServerEventKind::SteerFailed, "response.steer.failed"),
    (ServerEventKind::InjectCreated, "response.inject.created"),
    (ServerEventKind::InjectFailed, "response.inject.failed"),
    (
        ServerEventKind::OutputTextDelta,
        "response.output_text.delta",
    ),
    (ServerEventKind::Other, "other"),
];

/// Longest known `type` value, with room to spare: an escaped `type` that unescapes to
/// more than this cannot be a known kind
const TYPE_BUF_LEN: usize = 64;

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
    ///
    /// Unknown names (including the literal `"other"`) map to [`ServerEventKind::Other`].
    pub fn from_type(ty: &[u8]) -> Self {
        // The delta is by far the most frequent event: test it first.
        if ty == b"response.output_text.delta" {
            return Self::OutputTextDelta;
        }
        KINDS[..KINDS.len() - 1]
            .iter()
            .find(|(_, name)| name.as_bytes() == ty)
            .map_or(Self::Other, |&(kind, _)| kind)
    }

    /// Maps the contents of a JSON `type` string, unescaping it on the stack when it holds
    /// escapes (a value too long for [`TYPE_BUF_LEN`] bytes is no known kind: `Other`)
    pub(crate) fn from_json_str(ty: JsonStr<'_>) -> Self {
        let mut buf = [0u8; TYPE_BUF_LEN];
        ty.unescape_into(&mut buf)
            .map_or(Self::Other, Self::from_type)
    }

    /// `response.completed`, `response.incomplete` or `response.failed`
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::ResponseCompleted | Self::ResponseIncomplete | Self::ResponseFailed
        )
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
            Self::SteerAccepted
                | Self::SteerPending
                | Self::SteerFailed
                | Self::InjectCreated
                | Self::InjectFailed
        )
    }

    /// The wire name of the kind (`"other"` for [`ServerEventKind::Other`])
    pub fn as_str(self) -> &'static str {
        KINDS[self as usize].1
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

impl<'a> ServerEvent<'a> {
    /// An event with its kind and lane only
    pub(super) fn bare(kind: ServerEventKind, stream_id: Option<&'a [u8]>) -> Self {
        Self {
            kind,
            stream_id,
            response_id: None,
            store: None,
            usage: None,
            error: None,
        }
    }
}
