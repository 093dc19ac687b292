//! JSON string text in both directions: escaping text the gateway writes, and reading
//! (validated) escaped string contents without allocating.

/// Hex digits for `\u00XX` escapes
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The short escape for `b`, if JSON has one (the same choice serde_json makes)
fn short_escape(b: u8) -> Option<u8> {
    Some(match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => return None,
    })
}

/// Whether `b` must be escaped inside a JSON string
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether `text` can be written between quotes as is
pub(crate) fn is_plain(text: &[u8]) -> bool {
    !text.iter().any(|&b| needs_escape(b))
}

/// Length of `text` once escaped (without the surrounding quotes)
pub(crate) fn escaped_len(text: &[u8]) -> usize {
    text.iter()
        .map(|&b| match b {
            _ if !needs_escape(b) => 1,
            _ if short_escape(b).is_some() => 2,
            _ => 6,
        })
        .sum()
}

/// Appends `text` escaped (without quotes); escapes `"`, `\` and control characters only,
/// like serde_json, so the output of the builders and serde_json agree byte for byte
pub(crate) fn push_escaped(out: &mut impl Extend<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend(text[start..i].iter().copied());
        match short_escape(b) {
            Some(c) => out.extend([b'\\', c]),
            None => out.extend([
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend(text[start..].iter().copied());
}

/// Appends `"text"` as a JSON string
pub(crate) fn push_string(out: &mut impl Extend<u8>, text: &str) {
    out.extend([b'"']);
    push_escaped(out, text.as_bytes());
    out.extend([b'"']);
}

/// Appends a JSON string, or `null` for `None`
pub(crate) fn push_opt_string(out: &mut impl Extend<u8>, text: Option<&str>) {
    match text {
        Some(t) => push_string(out, t),
        None => out.extend(*b"null"),
    }
}

/// Reads four hex digits at `at` as one UTF-16 code unit
pub(crate) fn hex4(raw: &[u8], at: usize) -> Option<u16> {
    let digits = raw.get(at..at + 4)?;
    let mut n: u16 = 0;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u16::from(v);
    }
    Some(n)
}

/// The bytes of escaped (already validated) string contents, unescaped on the fly
///
/// Invalid escapes cannot occur after validation; should one slip through, it decodes as
/// U+FFFD rather than panicking.
pub(crate) struct Unescaped<'a> {
    raw: &'a [u8],
    pos: usize,
    pending: [u8; 4],
    pending_len: u8,
    pending_pos: u8,
}

impl<'a> Unescaped<'a> {
    /// Unescapes `raw`, the contents between the quotes of a JSON string
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Self {
            raw,
            pos: 0,
            pending: [0; 4],
            pending_len: 0,
            pending_pos: 0,
        }
    }

    /// Decodes the escape at `self.pos` (which holds a backslash) into `pending`
    fn decode_escape(&mut self) -> u8 {
        let raw = self.raw;
        let c = raw.get(self.pos + 1).copied().unwrap_or(b'?');
        self.pos += 2;
        match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => self.decode_unicode(),
            _ => self.emit_char(char::REPLACEMENT_CHARACTER),
        }
    }

    /// Decodes `XXXX` (and a following low surrogate) after `\u`
    fn decode_unicode(&mut self) -> u8 {
        let raw = self.raw;
        let Some(hi) = hex4(raw, self.pos) else {
            return self.emit_char(char::REPLACEMENT_CHARACTER);
        };
        self.pos += 4;
        let code = if (0xD800..0xDC00).contains(&hi) {
            let lo = (raw.get(self.pos) == Some(&b'\\') && raw.get(self.pos + 1) == Some(&b'u'))
                .then(|| hex4(raw, self.pos + 2))
                .flatten()
                .filter(|lo| (0xDC00..0xE000).contains(lo));
            match lo {
                Some(lo) => {
                    self.pos += 6;
                    0x1_0000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
                }
                None => 0xFFFD,
            }
        } else {
            u32::from(hi)
        };
        self.emit_char(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Returns the first UTF-8 byte of `ch` and queues the rest
    fn emit_char(&mut self, ch: char) -> u8 {
        let mut buf = [0u8; 4];
        let len = ch.encode_utf8(&mut buf).len();
        self.pending = buf;
        self.pending_len = len as u8;
        self.pending_pos = 1;
        buf[0]
    }
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.pending_pos < self.pending_len {
            let b = self.pending[usize::from(self.pending_pos)];
            self.pending_pos += 1;
            return Some(b);
        }
        let b = *self.raw.get(self.pos)?;
        if b == b'\\' {
            return Some(self.decode_escape());
        }
        self.pos += 1;
        Some(b)
    }
}

/// The contents of a JSON string as found in a frame: raw bytes between the quotes, and
/// whether they contain any escape
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JsonStr<'a> {
    /// Bytes between the quotes, escapes intact
    pub(crate) raw: &'a [u8],
    /// Whether `raw` contains a backslash (so the text differs from `raw`)
    pub(crate) escaped: bool,
}

impl<'a> JsonStr<'a> {
    /// Whether the unescaped text equals `text`; allocates nothing
    #[inline]
    pub(crate) fn eq_text(&self, text: &[u8]) -> bool {
        if self.escaped {
            Unescaped::new(self.raw).eq(text.iter().copied())
        } else {
            self.raw == text
        }
    }

    /// The unescaped text in `out`, or `None` if it does not fit; `raw` itself when there
    /// is no escape
    #[inline]
    pub(crate) fn unescape_into<'b>(&self, out: &'b mut [u8]) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        if !self.escaped {
            return Some(self.raw);
        }
        let mut len = 0;
        for b in Unescaped::new(self.raw) {
            *out.get_mut(len)? = b;
            len += 1;
        }
        Some(&out[..len])
    }

    /// The text for matching against known names: `raw` when unescaped, else decoded into
    /// `scratch`; empty (which matches no name) when it does not fit
    #[inline]
    pub(crate) fn name<'b>(&self, scratch: &'b mut [u8]) -> &'b [u8]
    where
        'a: 'b,
    {
        self.unescape_into(scratch).unwrap_or_default()
    }

    /// The unescaped text as an owned buffer (rare paths only)
    pub(crate) fn to_vec(self) -> Vec<u8> {
        if self.escaped {
            Unescaped::new(self.raw).collect()
        } else {
            self.raw.to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape(raw: &str) -> String {
        String::from_utf8(Unescaped::new(raw.as_bytes()).collect()).unwrap()
    }

    #[test]
    fn unescapes_simple_and_unicode_escapes() {
        assert_eq!(
            unescape(r#"a\"b\\c\/d\n\t\r\b\f"#),
            "a\"b\\c/d\n\t\r\u{8}\u{c}"
        );
        assert_eq!(unescape(r"\u0041\u00e9\u20ac"), "Aé€");
        assert_eq!(unescape(r"x\ud83d\ude00y"), "x😀y");
        assert_eq!(unescape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn escapes_like_serde_json() {
        let text = "q\"b\\n\nt\tc\u{1}\u{1f}é\u{7f}";
        let mut out = Vec::new();
        push_string(&mut out, text);
        assert_eq!(out, serde_json::to_vec(text).unwrap());
        assert_eq!(escaped_len(text.as_bytes()) + 2, out.len());
        assert!(!is_plain(text.as_bytes()));
        assert!(is_plain(b"gpt-5.1-codex"));
    }

    #[test]
    fn compares_escaped_text_without_allocating_a_copy() {
        let s = JsonStr {
            raw: br"t\u0079pe",
            escaped: true,
        };
        assert!(s.eq_text(b"type"));
        assert!(!s.eq_text(b"typ"));
        assert!(!s.eq_text(b"types"));
        let mut buf = [0u8; 4];
        assert_eq!(s.unescape_into(&mut buf), Some(&b"type"[..]));
        let mut small = [0u8; 3];
        assert_eq!(s.unescape_into(&mut small), None);
    }
}
