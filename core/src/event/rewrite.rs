//! Single-pass model rewrites.
//!
//! Both rewrites scan the frame once (validating it), collect the byte ranges of the
//! values to replace, and splice them into one new buffer of exactly the right size. A frame
//! with nothing to replace comes back as the same buffer (`Bytes::clone`, no copy). Invalid
//! JSON is never rewritten: it comes back untouched for the caller's classifier to reject.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::json_str::{JsonStr, escaped_len, is_plain, push_escaped};
use super::scan::ObjectScan;

/// At most this many values are replaced in one frame (a top-level `model` and a
/// `response.model`, each possibly repeated); further duplicates are left as they are
const MAX_REPLACEMENTS: usize = 8;

/// The ranges (in increasing order) of the values to replace
struct Splices {
    ranges: [Range<usize>; MAX_REPLACEMENTS],
    len: usize,
}

impl Splices {
    fn new() -> Self {
        Self {
            ranges: std::array::from_fn(|_| 0..0),
            len: 0,
        }
    }

    fn push(&mut self, range: Range<usize>) {
        if let Some(slot) = self.ranges.get_mut(self.len) {
            *slot = range;
            self.len += 1;
        }
    }

    /// `frame` with every range replaced by `text` as a JSON string; the same buffer when
    /// there is nothing to replace
    fn apply(&self, frame: &Bytes, text: &[u8]) -> Bytes {
        if self.len == 0 {
            return frame.clone();
        }
        let ranges = &self.ranges[..self.len];
        let replaced: usize = ranges.iter().map(|r| r.len()).sum();
        let value_len = escaped_len(text) + 2;
        let out_len = frame.len() - replaced + self.len * value_len;
        let mut out = BytesMut::with_capacity(out_len);
        let mut at = 0;
        for range in ranges {
            out.put_slice(&frame[at..range.start]);
            out.put_u8(b'"');
            push_escaped(&mut out, text);
            out.put_u8(b'"');
            at = range.end;
        }
        out.put_slice(&frame[at..]);
        debug_assert_eq!(out.len(), out_len);
        out.freeze()
    }
}

/// Sets the top-level `model` of a client `response.create` to `upstream_model`
///
/// Returns the same buffer when it already says so (compared after unescaping), has no
/// `model` (the gateway checks presence elsewhere) or is not valid JSON. A `model` of another
/// JSON type (e.g. `null`) is replaced too. Nested `model` keys (inside `input`, `tools`, …)
/// are never touched.
pub fn rewrite_create_model(frame: &Bytes, upstream_model: &str) -> Bytes {
    let want = upstream_model.as_bytes();
    let splices = create_model_splices(frame, want);
    splices.map_or_else(|| frame.clone(), |s| s.apply(frame, want))
}

/// The ranges of top-level `model` values other than `want`; `None` for invalid JSON
fn create_model_splices(frame: &[u8], want: &[u8]) -> Option<Splices> {
    let mut splices = Splices::new();
    let mut scan = ObjectScan::top_level(frame).ok()?;
    while let Some(member) = scan.next_member().ok()? {
        let value = member.value;
        if member.key.eq_text(b"model") && !value.as_str().is_some_and(|s| s.eq_text(want)) {
            splices.push(value.range());
        }
    }
    Some(splices)
}

/// Restores the client's model name in a server event
///
/// Replaces a top-level `model` and a `response.model` equal to `upstream_model` with
/// `client_model`, in one pass producing one new buffer; returns the same buffer when nothing
/// matches. Never rewrites twice.
///
/// - Values are compared after unescaping. As a fast path, a frame whose bytes do not
///   contain `upstream_model` as written by a standard serializer (which escapes only `"`,
///   `\` and control characters) is returned without scanning; a model name spelled with
///   needless `\uXXXX` escapes in such a frame is therefore left alone.
/// - `client_model` is JSON-escaped when written.
/// - `upstream_model == client_model` returns the same buffer at once, so restoring is
///   idempotent; invalid JSON is returned untouched.
pub fn restore_event_model(frame: &Bytes, upstream_model: &[u8], client_model: &[u8]) -> Bytes {
    if upstream_model == client_model {
        return frame.clone();
    }
    if is_plain(upstream_model) && !contains(frame, upstream_model) {
        return frame.clone();
    }
    let splices = model_splices(frame, upstream_model);
    splices.map_or_else(|| frame.clone(), |s| s.apply(frame, client_model))
}

/// Whether `needle` occurs in `haystack`
///
/// A first-byte `memchr` scan: unlike `memmem::find`, it builds no searcher per call,
/// which dominates on short frames such as deltas.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    memchr::memchr_iter(first, haystack).any(|i| haystack[i + 1..].starts_with(rest))
}

/// The ranges of top-level `model` and `response.model` values equal to `model`; `None`
/// for invalid JSON
fn model_splices(frame: &[u8], model: &[u8]) -> Option<Splices> {
    let matches = |s: Option<JsonStr<'_>>| s.is_some_and(|s| s.eq_text(model));
    let mut splices = Splices::new();
    let mut scan = ObjectScan::top_level(frame).ok()?;
    while let Some(key) = scan.next_key().ok()? {
        if key.eq_text(b"model") {
            let value = scan.skip_value().ok()?;
            if matches(value.as_str()) {
                splices.push(value.range());
            }
        } else if key.eq_text(b"response") {
            let Some(mut child) = scan.nested_object().ok()? else {
                scan.skip_value().ok()?;
                continue;
            };
            while let Some(member) = child.next_member().ok()? {
                if member.key.eq_text(b"model") && matches(member.value.as_str()) {
                    splices.push(member.value.range());
                }
            }
            scan.resume_after(child).ok()?;
        } else {
            scan.skip_value().ok()?;
        }
    }
    Some(splices)
}
