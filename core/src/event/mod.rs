//! Frames on both hops: classification without a full parse, single-pass rewrites, error
//! shapes and the HTTP-side encoders.
//!
//! The per-event path ([`classify_server_event`] on a delta, [`restore_event_model`] on a frame
//! that needs no rewrite) allocates nothing: results borrow from the frame, and a frame that
//! needs no rewrite comes back as the same buffer (`tests/alloc/events.rs` checks this with a
//! counting allocator).
//!
//! Both sides share one validating scanner (`scan`): it walks a JSON object member by member,
//! validates every byte in a single pass (strings eight bytes per step), and can descend into
//! one member object (`response`) without a second pass. serde_json is used only on rare paths
//! (error envelopes, the flat SSE error).

mod classify;
mod client;
pub(crate) mod client_metadata;
mod error;
mod flat;
#[cfg(test)]
mod flat_props;
pub(crate) mod json_str;
pub(crate) mod lex;
mod rewrite;
pub(crate) mod scan;
mod server_event;
mod sse;
mod usage;

pub use classify::{classify_server_event, classify_server_event_full, classify_server_text};
pub use client::{ClientEventKind, ClientRequest, StreamIdField, classify_client_event};
pub use error::{
    ErrorClass, ErrorInfo, gateway_error_event, invalid_stream_id_event, parse_error_event,
    previous_response_not_found_event, websocket_connection_limit_reached_event,
    websocket_stream_limit_reached_event,
};
pub use rewrite::{restore_event_model, rewrite_create_model};
pub use server_event::{ServerEvent, ServerEventKind};
pub use sse::{http_error_body, sse_encode, sse_flat_error};
pub use usage::Usage;

/// What the driver knows of an upstream frame's encoding
///
/// A WebSocket library validates every text frame as UTF-8 on read; the classifier then need
/// not check the encoding a second time (one validation per frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Utf8 {
    /// Bytes of unknown encoding (a binary frame, bytes from anywhere else): the classifier
    /// validates them
    Unchecked,
    /// The payload of a text frame the WebSocket library validated as UTF-8: not validated
    /// again ([`classify_server_text`]). Bytes that are not UTF-8 break the promise and may be
    /// relayed.
    Validated,
}

/// Why a frame could not be classified
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifyError {
    /// Not valid JSON
    InvalidJson,
    /// Valid JSON, but not an object
    NotAnObject,
    /// An object without a string `type`
    MissingType,
}

impl std::fmt::Display for ClassifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InvalidJson => "frame is not valid JSON",
            Self::NotAnObject => "frame is not a JSON object",
            Self::MissingType => "frame has no string \"type\" field",
        })
    }
}

impl std::error::Error for ClassifyError {}
