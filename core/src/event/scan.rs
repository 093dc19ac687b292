//! A validating scanner over the top level of a JSON object.
//!
//! [`ObjectScan`] walks one object member by member: it yields each key (raw bytes, with a
//! flag saying whether an unescaped form differs) and either skips the member's value,
//! validating it and returning its byte range, or descends into it when it is an object.
//! Ranges are offsets into the whole buffer, so a nested scan's ranges can be used to splice
//! the original frame.
//!
//! Validation follows RFC 8259 as serde_json applies it: strings must be valid UTF-8 with
//! no raw control characters, escapes must be known and `\u` surrogates paired, numbers
//! follow the JSON grammar, nesting is limited to [`MAX_DEPTH`] containers (serde_json's
//! limit) and nothing but whitespace may follow the top-level value. Nothing allocates:
//! nesting is tracked in a fixed bit stack.
//!
//! One deliberate difference from serde_json: numbers are checked against the grammar only,
//! so `1e999` (too large for an `f64`, which serde_json rejects) is accepted. The gateway
//! never reads such a value, and upstream parsers differ on it anyway.
//!
//! Bytes outside strings must be ASCII JSON syntax; bytes inside strings are checked for
//! UTF-8 validity (only when a non-ASCII byte occurs), so frames need not arrive as `str`.

use std::ops::Range;

use super::ClassifyError;
use super::json_str::JsonStr;
use super::lex::{
    ValueKind, expect_literal, skip_member_key, skip_number, skip_scalar, skip_string, skip_ws,
};

/// Deepest nesting of objects and arrays accepted, counting the top-level object
/// (serde_json rejects the 128th level)
pub(crate) const MAX_DEPTH: usize = 127;

type Result<T> = std::result::Result<T, ClassifyError>;

const INVALID: ClassifyError = ClassifyError::InvalidJson;

/// One value: its type and byte range in the scanned buffer
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Value<'a> {
    /// The JSON type
    pub(crate) kind: ValueKind,
    /// Offset of the first byte
    pub(crate) start: usize,
    /// Offset just past the last byte
    pub(crate) end: usize,
    buf: &'a [u8],
}

impl<'a> Value<'a> {
    /// The value's bytes, as written
    pub(crate) fn bytes(&self) -> &'a [u8] {
        &self.buf[self.start..self.end]
    }

    /// The byte range in the scanned buffer
    pub(crate) fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The contents of a string value
    pub(crate) fn as_str(&self) -> Option<JsonStr<'a>> {
        match self.kind {
            ValueKind::String { escaped } => Some(JsonStr {
                raw: &self.buf[self.start + 1..self.end - 1],
                escaped,
            }),
            _ => None,
        }
    }

    /// The byte range of a string value's contents (between the quotes)
    pub(crate) fn str_range(&self) -> Option<Range<usize>> {
        matches!(self.kind, ValueKind::String { .. }).then(|| self.start + 1..self.end - 1)
    }

    /// `Some(b)` for `true` / `false`
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self.kind {
            ValueKind::True => Some(true),
            ValueKind::False => Some(false),
            _ => None,
        }
    }

    /// A non-negative integer value (saturating); `None` for anything else
    pub(crate) fn as_u64(&self) -> Option<u64> {
        if self.kind != ValueKind::Number {
            return None;
        }
        let digits = self.bytes();
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        }))
    }
}

/// One member of an object: key and value
#[derive(Clone, Copy, Debug)]
pub(crate) struct Member<'a> {
    /// The key
    pub(crate) key: JsonStr<'a>,
    /// The value
    pub(crate) value: Value<'a>,
}

/// A fixed-size stack of container types (object or array), one bit each
struct BitStack {
    bits: u128,
    len: usize,
}

impl BitStack {
    fn push(&mut self, is_object: bool, depth_before: usize) -> Result<()> {
        if depth_before + self.len + 1 > MAX_DEPTH {
            return Err(INVALID);
        }
        self.bits = (self.bits << 1) | u128::from(is_object);
        self.len += 1;
        Ok(())
    }

    fn top_is_object(&self) -> bool {
        self.bits & 1 == 1
    }

    fn pop(&mut self) {
        self.bits >>= 1;
        self.len -= 1;
    }
}

/// Where an [`ObjectScan`] stands
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Just after `{`: a key or `}` comes next
    First,
    /// A key was returned; its value comes next
    Value,
    /// After a value: `,` or `}` comes next
    Rest,
    /// The closing `}` was consumed
    Done,
}

/// Walks one JSON object member by member, validating as it goes
///
/// Call [`ObjectScan::next_key`], then exactly one of [`ObjectScan::skip_value`] or
/// [`ObjectScan::nested_object`] (+ [`ObjectScan::resume_after`]) for its value;
/// [`ObjectScan::next_member`] does both for the common case.
pub(crate) struct ObjectScan<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Containers open around (and including) this object
    depth: usize,
    state: State,
    /// The top-level object: only whitespace may follow its `}`
    top_level: bool,
}

impl<'a> ObjectScan<'a> {
    /// Starts scanning `buf`, which must hold exactly one JSON object
    ///
    /// Fails with [`ClassifyError::NotAnObject`] when `buf` is valid JSON of another type.
    pub(crate) fn top_level(buf: &'a [u8]) -> Result<Self> {
        let pos = skip_ws(buf, 0);
        if buf.get(pos) == Some(&b'{') {
            return Ok(Self {
                buf,
                pos: pos + 1,
                depth: 1,
                state: State::First,
                top_level: true,
            });
        }
        let mut probe = Self {
            buf,
            pos,
            depth: 0,
            state: State::Value,
            top_level: true,
        };
        probe.skip_value()?;
        if skip_ws(buf, probe.pos) == buf.len() {
            Err(ClassifyError::NotAnObject)
        } else {
            Err(INVALID)
        }
    }

    /// The next key, leaving the scanner before its value; `None` after the closing `}`
    #[inline]
    pub(crate) fn next_key(&mut self) -> Result<Option<JsonStr<'a>>> {
        let buf = self.buf;
        match self.state {
            State::Done => return Ok(None),
            State::Value => {
                self.skip_value()?;
            }
            State::First | State::Rest => {}
        }
        self.pos = skip_ws(buf, self.pos);
        match (self.state, buf.get(self.pos)) {
            (State::First | State::Rest, Some(b'}')) => {
                self.pos += 1;
                self.state = State::Done;
                if self.top_level && skip_ws(buf, self.pos) != buf.len() {
                    return Err(INVALID);
                }
                return Ok(None);
            }
            (State::Rest, Some(b',')) => {
                self.pos = skip_ws(buf, self.pos + 1);
            }
            (State::First, Some(b'"')) => {}
            _ => return Err(INVALID),
        }
        let key = self.read_key()?;
        self.state = State::Value;
        Ok(Some(key))
    }

    /// Reads `"key"` and the `:` after it, leaving `pos` at the value
    #[inline(always)]
    fn read_key(&mut self) -> Result<JsonStr<'a>> {
        let buf = self.buf;
        if buf.get(self.pos) != Some(&b'"') {
            return Err(INVALID);
        }
        let start = self.pos;
        let (end, escaped) = skip_string(buf, start)?;
        self.pos = skip_ws(buf, end);
        if buf.get(self.pos) != Some(&b':') {
            return Err(INVALID);
        }
        self.pos = skip_ws(buf, self.pos + 1);
        Ok(JsonStr {
            raw: &buf[start + 1..end - 1],
            escaped,
        })
    }

    /// Validates and skips the value after the last key, returning its range
    pub(crate) fn skip_value(&mut self) -> Result<Value<'a>> {
        let buf = self.buf;
        let start = skip_ws(buf, self.pos);
        // Scalars (most values) skip the container machinery.
        if let Some((kind, end)) = skip_scalar(buf, start)? {
            self.pos = end;
            self.state = State::Rest;
            return Ok(Value {
                kind,
                start,
                end,
                buf,
            });
        }
        let mut pos = start;
        let mut stack = BitStack { bits: 0, len: 0 };
        let mut kind = None;
        'value: loop {
            // A value starts at `pos`.
            pos = skip_ws(buf, pos);
            let &b = buf.get(pos).ok_or(INVALID)?;
            let this = match b {
                b'{' => {
                    stack.push(true, self.depth)?;
                    pos = skip_ws(buf, pos + 1);
                    if buf.get(pos) == Some(&b'}') {
                        pos += 1;
                        stack.pop();
                    } else {
                        pos = skip_member_key(buf, pos)?;
                        kind.get_or_insert(ValueKind::Object);
                        continue 'value;
                    }
                    ValueKind::Object
                }
                b'[' => {
                    stack.push(false, self.depth)?;
                    pos = skip_ws(buf, pos + 1);
                    if buf.get(pos) == Some(&b']') {
                        pos += 1;
                        stack.pop();
                    } else {
                        kind.get_or_insert(ValueKind::Array);
                        continue 'value;
                    }
                    ValueKind::Array
                }
                b'"' => {
                    let (end, escaped) = skip_string(buf, pos)?;
                    pos = end;
                    ValueKind::String { escaped }
                }
                b'-' | b'0'..=b'9' => {
                    pos = skip_number(buf, pos)?;
                    ValueKind::Number
                }
                b't' => {
                    pos = expect_literal(buf, pos, b"true")?;
                    ValueKind::True
                }
                b'f' => {
                    pos = expect_literal(buf, pos, b"false")?;
                    ValueKind::False
                }
                b'n' => {
                    pos = expect_literal(buf, pos, b"null")?;
                    ValueKind::Null
                }
                _ => return Err(INVALID),
            };
            kind.get_or_insert(this);
            // After a value: close containers or move to the next element.
            loop {
                if stack.len == 0 {
                    break 'value;
                }
                pos = skip_ws(buf, pos);
                match buf.get(pos) {
                    Some(b',') => {
                        pos = skip_ws(buf, pos + 1);
                        if stack.top_is_object() {
                            pos = skip_member_key(buf, pos)?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if stack.top_is_object() => {
                        pos += 1;
                        stack.pop();
                    }
                    Some(b']') if !stack.top_is_object() => {
                        pos += 1;
                        stack.pop();
                    }
                    _ => return Err(INVALID),
                }
            }
        }
        self.pos = pos;
        self.state = State::Rest;
        Ok(Value {
            kind: kind.ok_or(INVALID)?,
            start,
            end: pos,
            buf,
        })
    }

    /// The next member, its value validated and skipped
    pub(crate) fn next_member(&mut self) -> Result<Option<Member<'a>>> {
        let Some(key) = self.next_key()? else {
            return Ok(None);
        };
        let value = self.skip_value()?;
        Ok(Some(Member { key, value }))
    }

    /// A scanner for the value after the last key when it is an object, else `None`
    /// (then call [`ObjectScan::skip_value`])
    ///
    /// Scan the child to its end, then hand it to [`ObjectScan::resume_after`].
    pub(crate) fn nested_object(&mut self) -> Result<Option<Self>> {
        if self.state != State::Value || self.buf.get(self.pos) != Some(&b'{') {
            return Ok(None);
        }
        if self.depth + 1 > MAX_DEPTH {
            return Err(INVALID);
        }
        Ok(Some(Self {
            buf: self.buf,
            pos: self.pos + 1,
            depth: self.depth + 1,
            state: State::First,
            top_level: false,
        }))
    }

    /// Continues after a child from [`ObjectScan::nested_object`], draining what the
    /// caller did not read; returns the child object's range
    pub(crate) fn resume_after(&mut self, mut child: Self) -> Result<Range<usize>> {
        let start = self.pos;
        while child.next_key()?.is_some() {}
        self.pos = child.pos;
        self.state = State::Rest;
        Ok(start..child.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> Result<Vec<(String, String)>> {
        let mut scan = ObjectScan::top_level(json.as_bytes())?;
        let mut out = Vec::new();
        while let Some(m) = scan.next_member()? {
            out.push((
                String::from_utf8(m.key.to_vec()).unwrap(),
                String::from_utf8(m.value.bytes().to_vec()).unwrap(),
            ));
        }
        Ok(out)
    }

    fn validity(json: &str) -> Result<()> {
        keys(json).map(|_| ())
    }

    #[test]
    fn yields_top_level_members_with_value_ranges() {
        let got =
            keys(r#" { "a" : 1 , "b\"c":{"type":"x","d":[1,{"e":null}]}, "t\u0079pe" : "ok" } "#)
                .unwrap();
        assert_eq!(
            got,
            vec![
                ("a".into(), "1".into()),
                ("b\"c".into(), r#"{"type":"x","d":[1,{"e":null}]}"#.into()),
                ("type".into(), r#""ok""#.into()),
            ]
        );
    }

    #[test]
    fn accepts_every_value_type() {
        validity(r#"{"a":-0.5e+10,"b":true,"c":false,"d":null,"e":[],"f":{},"g":"\u00e9\ud83d\ude00","h":[[[]]],"i":0,"j":1E3}"#)
            .unwrap();
        validity("{}").unwrap();
        validity(" \t\r\n{ \n} \n").unwrap();
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [
            "",
            "{",
            "{\"a\":1",
            "{\"a\":1}x",
            "{\"a\":1}{}",
            "{\"a\" 1}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\":[1,]}",
            "{\"a\":[1 2]}",
            "{\"a\":{\"b\"}}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":+1}",
            "{\"a\":-}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12G4\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00\"}",
            "{\"a\":\"\\ud800\\u0041\"}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"unterminated}",
            "{\"a\":[}",
            "{\"a\":{]}",
            "{'a':1}",
            "{a:1}",
        ] {
            assert_eq!(validity(bad), Err(ClassifyError::InvalidJson), "{bad:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "serde agrees on {bad:?}"
            );
        }
        assert_eq!(
            keys_bytes(b"{\"a\":\"\xff\"}"),
            Err(ClassifyError::InvalidJson),
            "invalid UTF-8"
        );
    }

    fn keys_bytes(json: &[u8]) -> Result<()> {
        let mut scan = ObjectScan::top_level(json)?;
        while scan.next_member()?.is_some() {}
        Ok(())
    }

    #[test]
    fn tells_non_objects_from_invalid_json() {
        for lone in ["[1,2]", "\"s\"", "1", "true", "null", " [] "] {
            assert_eq!(validity(lone), Err(ClassifyError::NotAnObject), "{lone}");
        }
        for bad in ["[1,", "x", "\"s", "1 2"] {
            assert_eq!(validity(bad), Err(ClassifyError::InvalidJson), "{bad}");
        }
    }

    #[test]
    fn depth_limit_matches_serde_json() {
        for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 5] {
            let inner = depth - 1;
            let json = format!("{{\"a\":{}{}}}", "[".repeat(inner), "]".repeat(inner));
            let serde_ok = serde_json::from_str::<serde_json::Value>(&json).is_ok();
            assert_eq!(validity(&json).is_ok(), serde_ok, "depth {depth}");
            assert_eq!(serde_ok, depth <= MAX_DEPTH);
        }
    }

    #[test]
    fn descends_into_a_nested_object() {
        let json = br#"{"type":"x","response":{"id":"r1","usage":{"n":1}},"after":true}"#;
        let mut scan = ObjectScan::top_level(json).unwrap();
        let mut seen = Vec::new();
        while let Some(key) = scan.next_key().unwrap() {
            if key.eq_text(b"response") {
                let mut child = scan.nested_object().unwrap().unwrap();
                let first = child.next_member().unwrap().unwrap();
                assert!(first.key.eq_text(b"id"));
                assert_eq!(first.value.as_str().unwrap().raw, b"r1");
                let range = scan.resume_after(child).unwrap();
                assert_eq!(&json[range], br#"{"id":"r1","usage":{"n":1}}"#);
            } else {
                seen.push(scan.skip_value().unwrap().bytes());
            }
        }
        assert_eq!(seen, vec![&b"\"x\""[..], b"true"]);
    }
}
