//! Client → server events: what a `response.create` / `response.steer` asks for.

use bytes::Bytes;

use super::ClassifyError;

/// The top-level `type` of a client event
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEventKind {
    /// `response.create`
    ResponseCreate,
    /// `response.steer`
    ResponseSteer,
    /// `response.inject` (beta)
    ResponseInject,
    /// Anything else (the gateway answers with an `error` event)
    Other,
}

/// The `stream_id` field of a create
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamIdField {
    /// Absent or `null`: the default lane
    Absent,
    /// A valid `stream_id`
    Valid(crate::StreamId),
    /// Present but not a valid `stream_id` (empty, too long, bad characters, not a string)
    Invalid,
}

/// What the gateway reads from one client event
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRequest {
    /// Top-level `type`
    pub kind: ClientEventKind,
    /// The raw `type` string (for the error message of an unknown type)
    pub type_name: Bytes,
    /// Top-level `model`
    pub model: Option<Bytes>,
    /// Top-level `previous_response_id` (`null` counts as absent)
    pub previous_response_id: Option<crate::ResponseId>,
    /// Top-level `stream_id`
    pub stream_id: StreamIdField,
    /// Top-level `store` (absent means upstream's default, true)
    pub store: Option<bool>,
    /// Top-level `generate` (`false` is a prewarm)
    pub generate: Option<bool>,
    /// Top-level `background` is `true`
    pub background: bool,
    /// Top-level `prompt_cache_key` (a session binding key)
    pub prompt_cache_key: Option<Bytes>,
}

/// Classifies a client event from its bytes, validating the JSON without building a tree
pub fn classify_client_event(frame: &Bytes) -> Result<ClientRequest, ClassifyError> {
    todo!("{}", frame.len())
}
