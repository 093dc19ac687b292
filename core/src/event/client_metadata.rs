//! The `client_metadata` member of a create: the one thing the gateway reads from it, a
//! per-create W3C `traceparent` (see [`crate::trace_context`]).

use super::scan::{ObjectScan, Value};
use crate::trace_context::TraceContext;

/// The `traceparent` member of a `client_metadata` value, when it is an object holding a
/// valid one (anything else: `None`, never an error)
pub(crate) fn trace_parent(value: &Value<'_>) -> Option<TraceContext> {
    let mut scan = ObjectScan::top_level(value.bytes()).ok()?;
    let mut found = None;
    while let Ok(Some(member)) = scan.next_member() {
        if member.key.eq_text(b"traceparent") {
            // A repeated key: the last one wins, as for every other member.
            found = member
                .value
                .as_str()
                .filter(|s| !s.escaped)
                .and_then(|s| TraceContext::parse(s.raw));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn metadata(json: &str) -> Option<TraceContext> {
        let mut scan = ObjectScan::top_level(json.as_bytes()).unwrap();
        let mut found = None;
        while let Some(m) = scan.next_member().unwrap() {
            if m.key.eq_text(b"client_metadata") {
                found = trace_parent(&m.value);
            }
        }
        found
    }

    #[test]
    fn client_metadata_traceparent_is_read_and_anything_else_ignored() {
        let ok = format!(r#"{{"client_metadata":{{"session_id":"s","traceparent":"{VALID}"}}}}"#);
        assert_eq!(metadata(&ok), TraceContext::parse(VALID.as_bytes()));
        for json in [
            r#"{"client_metadata":{"session_id":"s"}}"#,
            r#"{"client_metadata":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
            r#"{"client_metadata":{"traceparent":42}}"#,
            r#"{"client_metadata":{"traceparent":"nonsense"}}"#,
            r#"{"client_metadata":null}"#,
        ] {
            assert_eq!(metadata(json), None, "{json}");
        }
    }
}
