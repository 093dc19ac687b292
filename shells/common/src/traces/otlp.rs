//! OTLP/HTTP protobuf encoding of an `ExportTraceServiceRequest` (opentelemetry-proto's
//! `collector/trace/v1`), written by hand: the gateway sends one message shape, and a dozen
//! field numbers do not justify a code generator and its runtime in the gateway's tree. The
//! shells suite decodes what this writes with the official generated types.

use super::{AttrValue, SpanRecord};

/// Protobuf wire types
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    tag(out, field, LEN);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

/// A nested message: written to a scratch buffer, then length-prefixed
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    bytes(out, field, &inner);
}

/// `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string 1, bool 2, int 3, double 4 }`
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &AttrValue) {
    message(out, field, |kv| {
        bytes(kv, 1, key.as_bytes());
        message(kv, 2, |any| match value {
            AttrValue::Str(s) => bytes(any, 1, s.as_bytes()),
            AttrValue::Bool(b) => uint(any, 2, u64::from(*b)),
            AttrValue::Int(i) => uint(any, 3, *i as u64),
            AttrValue::Double(d) => fixed64(any, 4, d.to_bits()),
        });
    });
}

/// The request body for `spans`, all under one resource and one instrumentation scope
pub(crate) fn encode_request(resource: &[(String, AttrValue)], spans: &[SpanRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + spans.len() * 512);
    // ExportTraceServiceRequest.resource_spans = 1
    message(&mut out, 1, |rs| {
        // ResourceSpans.resource = 1 { attributes = 1 }
        message(rs, 1, |r| {
            for (k, v) in resource {
                key_value(r, 1, k, v);
            }
        });
        // ResourceSpans.scope_spans = 2
        message(rs, 2, |ss| {
            // ScopeSpans.scope = 1 { name = 1; version = 2 }
            message(ss, 1, |scope| {
                bytes(scope, 1, b"wsv2-gateway");
                bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            for span in spans {
                // ScopeSpans.spans = 2
                message(ss, 2, |s| encode_span(s, span));
            }
        });
    });
    out
}

/// `Span`: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start 7, end 8,
/// attributes 9, events 11, status 15
fn encode_span(out: &mut Vec<u8>, span: &SpanRecord) {
    bytes(out, 1, &span.trace_id);
    bytes(out, 2, &span.span_id);
    if let Some(parent) = &span.parent {
        bytes(out, 4, parent);
    }
    bytes(out, 5, span.name.as_bytes());
    uint(out, 6, 2); // SPAN_KIND_SERVER: the gateway serves the client's request
    fixed64(out, 7, span.start_ns);
    fixed64(out, 8, span.end_ns);
    for (k, v) in &span.attributes {
        key_value(out, 9, k, v);
    }
    for event in &span.events {
        // Span.Event { time_unix_nano = 1; name = 2; attributes = 3 }
        message(out, 11, |e| {
            fixed64(e, 1, event.time_ns);
            bytes(e, 2, event.name.as_bytes());
            for (k, v) in &event.attributes {
                key_value(e, 3, k, v);
            }
        });
    }
    if let Some(error) = span.error {
        // Status { message = 2; code = 3 (STATUS_CODE_ERROR = 2) }
        message(out, 15, |st| {
            bytes(st, 2, error.as_bytes());
            uint(st, 3, 2);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_negative_ints_use_the_protobuf_encoding() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut out = Vec::new();
        key_value(&mut out, 9, "k", &AttrValue::Int(-1));
        // -1 as int64 is ten varint bytes
        assert_eq!(out.len(), 2 + 3 + 2 + 1 + 10);
    }
}
