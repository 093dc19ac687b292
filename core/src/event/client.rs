//! Client → server events: what a `response.create` / `response.steer` asks for.

use bytes::Bytes;

use super::ClassifyError;
use super::json_str::JsonStr;
use super::lex::ValueKind;
use super::scan::{ObjectScan, Value};

/// The top-level `type` of a client event
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientEventKind {
    /// `response.create`
    ResponseCreate,
    /// `response.steer`
    ResponseSteer,
    /// `response.inject` (beta)
    ResponseInject,
    /// Anything else (the gateway answers with an `error` event)
    #[default]
    Other,
}

/// The `stream_id` field of a create
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StreamIdField {
    /// Absent or `null`: the default lane
    #[default]
    Absent,
    /// A valid `stream_id`
    Valid(crate::StreamId),
    /// Present but not a valid `stream_id` (empty, too long, bad characters, not a string)
    Invalid,
}

/// What the gateway reads from one client event
#[derive(Clone, Debug, Default, PartialEq)]
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
    /// A valid `client_metadata.traceparent`: the parent of this response's span
    pub trace_parent: Option<crate::trace_context::TraceContext>,
}

impl ClientEventKind {
    /// Maps a `type` value (unescaped text) to its kind
    pub fn from_type(ty: &[u8]) -> Self {
        match ty {
            b"response.create" => Self::ResponseCreate,
            b"response.steer" => Self::ResponseSteer,
            b"response.inject" => Self::ResponseInject,
            _ => Self::Other,
        }
    }
}

/// Classifies a client event from its bytes, validating the JSON without building a tree
///
/// The `Bytes` fields are slices of `frame` (no copy) unless the string was written with
/// escapes, which are then decoded into a new buffer (rare: clients do not escape model
/// names or ids). Fields of the wrong JSON type count as absent, except `stream_id`, which
/// is then [`StreamIdField::Invalid`] (upstream rejects it). A repeated key: the last
/// occurrence wins, as in serde_json.
pub fn classify_client_event(frame: &Bytes) -> Result<ClientRequest, ClassifyError> {
    let mut scan = ObjectScan::top_level(frame)?;
    let mut type_name = None;
    let mut request = ClientRequest::default();
    while let Some(member) = scan.next_member()? {
        let (key, value) = (member.key, member.value);
        if key.eq_text(b"type") {
            type_name = string_bytes(frame, &value);
        } else if key.eq_text(b"model") {
            request.model = string_bytes(frame, &value);
        } else if key.eq_text(b"previous_response_id") {
            request.previous_response_id =
                string_bytes(frame, &value).and_then(crate::ResponseId::new);
        } else if key.eq_text(b"stream_id") {
            request.stream_id = match value.kind {
                ValueKind::Null => StreamIdField::Absent,
                _ => string_bytes(frame, &value)
                    .and_then(crate::StreamId::new)
                    .map_or(StreamIdField::Invalid, StreamIdField::Valid),
            };
        } else if key.eq_text(b"store") {
            request.store = value.as_bool();
        } else if key.eq_text(b"generate") {
            request.generate = value.as_bool();
        } else if key.eq_text(b"background") {
            request.background = value.as_bool() == Some(true);
        } else if key.eq_text(b"prompt_cache_key") {
            request.prompt_cache_key = string_bytes(frame, &value);
        } else if key.eq_text(b"client_metadata") {
            request.trace_parent = crate::event::client_metadata::trace_parent(&value);
        }
    }
    let type_name = type_name.ok_or(ClassifyError::MissingType)?;
    request.kind = ClientEventKind::from_type(&type_name);
    request.type_name = type_name;
    Ok(request)
}

/// The text of a string value: a slice of `frame`, or a decoded copy when it has escapes
fn string_bytes(frame: &Bytes, value: &Value<'_>) -> Option<Bytes> {
    let text: JsonStr<'_> = value.as_str()?;
    if text.escaped {
        Some(Bytes::from(text.to_vec()))
    } else {
        value.str_range().map(|range| frame.slice(range))
    }
}
