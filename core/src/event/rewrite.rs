//! Single-pass model rewrites.

use bytes::Bytes;

/// Sets the top-level `model` of a client `response.create` to `upstream_model`
///
/// Returns the same buffer when it already says so (or has no `model`).
pub fn rewrite_create_model(frame: &Bytes, upstream_model: &str) -> Bytes {
    todo!("{}{upstream_model}", frame.len())
}

/// Restores the client's model name in a server event
///
/// Replaces a top-level `model` and a `response.model` equal to `upstream_model` with
/// `client_model`, in one pass producing one new buffer; returns the same buffer when nothing
/// matches. Never rewrites twice.
pub fn restore_event_model(frame: &Bytes, upstream_model: &[u8], client_model: &[u8]) -> Bytes {
    todo!("{}{upstream_model:?}{client_model:?}", frame.len())
}
