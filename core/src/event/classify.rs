//! Server → client events: top-level `type`, `stream_id`, response id, store flag, usage.

use std::ops::Range;

use super::flat::classify_flat;
use super::json_str::JsonStr;
use super::lex::ValueKind;
use super::scan::ObjectScan;
use super::{ClassifyError, ErrorInfo, Usage, parse_error_event};

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

/// Room for an escaped key: longer than any key the classifier looks for
const KEY_BUF_LEN: usize = 16;

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

/// What the scan keeps of the `response` object
#[derive(Default)]
struct ResponseFields<'a> {
    id: Option<&'a [u8]>,
    store: Option<bool>,
    usage: Option<Range<usize>>,
}

/// Classifies a server event from its bytes without a full parse
///
/// Reads only top-level keys (nested `"type"` keys, whitespace, escapes and key order do not
/// fool it) and, for `response.created` and terminal events, the `response` object's `id`,
/// `store` and `usage`. The whole frame is validated in the same single pass. Allocates
/// nothing for events other than `error`.
///
/// - `type` must be a string ([`ClassifyError::MissingType`] otherwise); one written with
///   escapes is unescaped on the stack before mapping.
/// - `stream_id` and `response.id` are the raw string contents: upstream writes them
///   without escapes (lane names are `[A-Za-z0-9_.-]`); a value with escapes stays escaped
///   and so matches no lane. A non-string or `null` `stream_id` is `None` (default lane).
/// - A repeated key: the last occurrence wins, as in serde_json.
///
/// Flat, compact events (deltas and most stream events) take a shorter walk first
/// (`flat.rs`) that gives the same answer; [`classify_server_event_full`] is the scan alone.
#[inline]
pub fn classify_server_event(frame: &[u8]) -> Result<ServerEvent<'_>, ClassifyError> {
    match classify_flat(frame) {
        Some(event) => Ok(event),
        None => classify_server_event_full(frame),
    }
}

/// [`classify_server_event`] without its fast path for flat events: the full scan, which the
/// fast path is tested against
pub fn classify_server_event_full(frame: &[u8]) -> Result<ServerEvent<'_>, ClassifyError> {
    let mut scan = ObjectScan::top_level(frame)?;
    let mut ty: Option<Option<JsonStr<'_>>> = None;
    let mut stream_id = None;
    let mut response = ResponseFields::default();
    let mut scratch = [0u8; KEY_BUF_LEN];
    while let Some(key) = scan.next_key()? {
        match key.name(&mut scratch) {
            b"type" => ty = Some(scan.skip_value()?.as_str()),
            b"stream_id" => stream_id = scan.skip_value()?.as_str().map(|s| s.raw),
            b"response" => {
                response = match scan.nested_object()? {
                    Some(mut child) => {
                        let fields = read_response(&mut child)?;
                        scan.resume_after(child)?;
                        fields
                    }
                    None => {
                        scan.skip_value()?;
                        ResponseFields::default()
                    }
                };
            }
            _ => {
                scan.skip_value()?;
            }
        }
    }
    let ty = ty.flatten().ok_or(ClassifyError::MissingType)?;
    let kind = ServerEventKind::from_json_str(ty);
    let mut event = ServerEvent::bare(kind, stream_id);
    if kind == ServerEventKind::ResponseCreated || kind.is_terminal() {
        event.response_id = response.id;
        event.store = response.store;
    }
    if kind.is_terminal() {
        event.usage = match response.usage {
            Some(range) => Some(Usage::from_json(&frame[range])?),
            None => None,
        };
    }
    if kind == ServerEventKind::Error {
        event.error = parse_error_event(frame).map(Box::new);
    }
    Ok(event)
}

/// Reads `id`, `store` and the range of `usage` from the `response` object
fn read_response<'a>(child: &mut ObjectScan<'a>) -> Result<ResponseFields<'a>, ClassifyError> {
    let mut fields = ResponseFields::default();
    let mut scratch = [0u8; KEY_BUF_LEN];
    while let Some(member) = child.next_member()? {
        let value = member.value;
        match member.key.name(&mut scratch) {
            b"id" => fields.id = value.as_str().map(|s| s.raw),
            b"store" => fields.store = value.as_bool(),
            b"usage" => fields.usage = (value.kind == ValueKind::Object).then(|| value.range()),
            _ => {}
        }
    }
    Ok(fields)
}
