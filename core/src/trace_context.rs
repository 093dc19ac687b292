//! W3C Trace Context: the `traceparent` a client sends, so a response's span can join the
//! client's trace.
//!
//! A client names its trace in the `traceparent` header of the WebSocket upgrade or of the
//! `POST /v1/responses`, or per create as a string `traceparent` member of `client_metadata`
//! (Codex and the SDKs send `client_metadata` as a free-form object of strings; the create's
//! member is more specific than the upgrade's header, which holds for every create of the
//! socket). Parsing is strict (version `00` exactly 55 characters; a later version its first
//! 55 followed by `-`; lowercase hex; neither id all zeros): whatever does not parse is
//! ignored — the span then starts a trace of its own — and is never an error for the client.

/// Longest `traceparent` value looked at; longer ones are ignored unread (a hostile header
/// costs nothing)
pub const MAX_TRACEPARENT_LEN: usize = 256;

/// A client's trace and the span the gateway's span is a child of
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace id (16 bytes, not all zero)
    pub trace_id: [u8; 16],
    /// The client's span id: the parent of the gateway's span (8 bytes, not all zero)
    pub parent_span_id: [u8; 8],
    /// The trace flags (bit 0: sampled)
    pub flags: u8,
}

impl TraceContext {
    /// Parses a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`); `None` when malformed,
    /// oversized, of version `ff`, or with an all-zero id
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() > MAX_TRACEPARENT_LEN {
            return None;
        }
        let value = value.trim_ascii();
        if value.len() < 55 {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        match version {
            0xff => return None,
            // Version 00 is exactly 55 characters; a later version may append fields after a '-'.
            0x00 if value.len() != 55 => return None,
            _ if value.len() > 55 && value[55] != b'-' => return None,
            _ => {}
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_span_id = [0u8; 8];
        for (i, b) in parent_span_id.iter_mut().enumerate() {
            *b = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&value[53..55])?;
        if trace_id == [0; 16] || parent_span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_span_id,
            flags,
        })
    }

    /// Whether the client sampled its span (flag bit 0)
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// Two lowercase hex digits (W3C: uppercase is invalid)
fn hex_byte(pair: &[u8]) -> Option<u8> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_valid_traceparent() {
        let ctx = TraceContext::parse(VALID.as_bytes()).expect("valid");
        assert_eq!(ctx.trace_id[0], 0x4b);
        assert_eq!(ctx.trace_id[15], 0x36);
        assert_eq!(
            ctx.parent_span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert!(ctx.sampled());
        let unsampled = VALID.replace("-01", "-00");
        assert!(!TraceContext::parse(unsampled.as_bytes()).unwrap().sampled());
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever";
        assert!(TraceContext::parse(later.as_bytes()).is_some());
        let glued = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert_eq!(TraceContext::parse(glued.as_bytes()), None);
    }

    #[test]
    fn malformed_oversized_and_hostile_values_are_ignored() {
        let long = format!("{VALID}{}", "-".repeat(MAX_TRACEPARENT_LEN));
        let bad = [
            "",
            "00",
            "garbage",
            // version 00 with trailing data
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            // version ff is invalid
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // uppercase hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            // all-zero ids
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // wrong separators, non-hex, multi-byte characters
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
            long.as_str(),
        ];
        for value in bad {
            assert_eq!(TraceContext::parse(value.as_bytes()), None, "{value:?}");
        }
    }

    #[test]
    fn surrounding_whitespace_is_tolerated() {
        assert!(TraceContext::parse(format!(" {VALID}\t").as_bytes()).is_some());
    }
}
