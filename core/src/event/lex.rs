//! Token-level validation for the scanner: whitespace, strings (with escapes), numbers and
//! literals. Each function takes the buffer and a position and returns the position after
//! the token, or [`ClassifyError::InvalidJson`].

use super::ClassifyError;
use super::json_str::hex4;

type Result<T> = std::result::Result<T, ClassifyError>;

const INVALID: ClassifyError = ClassifyError::InvalidJson;

/// The JSON type of a value
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// `{…}`
    Object,
    /// `[…]`
    Array,
    /// `"…"`; `escaped` says whether the contents hold a backslash
    String {
        /// The contents hold at least one escape
        escaped: bool,
    },
    /// A number
    Number,
    /// `true`
    True,
    /// `false`
    False,
    /// `null`
    Null,
}

/// Skips the string, number or literal at `pos`; `None` when a container (or nothing
/// valid) starts there
#[inline]
pub(crate) fn skip_scalar(buf: &[u8], pos: usize) -> Result<Option<(ValueKind, usize)>> {
    Ok(Some(match buf.get(pos) {
        Some(b'"') => {
            let (end, escaped) = skip_string(buf, pos)?;
            (ValueKind::String { escaped }, end)
        }
        Some(b'-' | b'0'..=b'9') => (ValueKind::Number, skip_number(buf, pos)?),
        Some(b't') => (ValueKind::True, expect_literal(buf, pos, b"true")?),
        Some(b'f') => (ValueKind::False, expect_literal(buf, pos, b"false")?),
        Some(b'n') => (ValueKind::Null, expect_literal(buf, pos, b"null")?),
        _ => return Ok(None),
    }))
}

/// Position of the first non-whitespace byte at or after `pos`
#[inline(always)]
pub(crate) fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = buf.get(pos) {
        pos += 1;
    }
    pos
}

/// Skips `"key"` `:` inside a nested object, returning the position of the value
pub(crate) fn skip_member_key(buf: &[u8], pos: usize) -> Result<usize> {
    if buf.get(pos) != Some(&b'"') {
        return Err(INVALID);
    }
    let (end, _) = skip_string(buf, pos)?;
    let colon = skip_ws(buf, end);
    if buf.get(colon) != Some(&b':') {
        return Err(INVALID);
    }
    Ok(skip_ws(buf, colon + 1))
}

/// `0x01` in every byte
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte
pub(crate) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` (little-endian) that is `"`, `\` or a control
/// character
///
/// The classic SWAR "has zero byte" / "has byte less than" tricks: a borrow can flag a byte
/// above a true hit, never below one, so the lowest flagged byte is always a true hit.
#[inline(always)]
pub(crate) fn special_bytes(word: u64) -> u64 {
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (quote | backslash | control) & HIGHS
}

/// Validates the string starting with the quote at `pos`; returns the position after the
/// closing quote and whether it held an escape
///
/// Eight bytes per step while nothing special shows up; UTF-8 is checked once at the end,
/// and only if a non-ASCII byte was seen (escapes are ASCII, so they never split a
/// multi-byte sequence).
pub(crate) fn skip_string(buf: &[u8], pos: usize) -> Result<(usize, bool)> {
    let start = pos + 1;
    let mut i = start;
    let mut escaped = false;
    let mut non_ascii = 0u64;
    loop {
        while let Some(chunk) = buf.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().map_err(|_| INVALID)?);
            non_ascii |= word & HIGHS;
            let special = special_bytes(word);
            if special != 0 {
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let &b = buf.get(i).ok_or(INVALID)?;
        match b {
            b'"' => {
                if non_ascii != 0 && std::str::from_utf8(&buf[start..i]).is_err() {
                    return Err(INVALID);
                }
                return Ok((i + 1, escaped));
            }
            b'\\' => {
                escaped = true;
                i = skip_escape(buf, i)?;
            }
            0..=0x1f => return Err(INVALID),
            _ => {
                non_ascii |= u64::from(b & 0x80);
                i += 1;
            }
        }
    }
}

/// Validates the escape at `i` (a backslash); returns the position after it
#[inline]
pub(crate) fn skip_escape(buf: &[u8], i: usize) -> Result<usize> {
    match buf.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => {
            let unit = hex4(buf, i + 2).ok_or(INVALID)?;
            match unit {
                // A leading surrogate must be followed by an escaped trailing one.
                0xD800..=0xDBFF => {
                    let paired = buf.get(i + 6) == Some(&b'\\')
                        && buf.get(i + 7) == Some(&b'u')
                        && hex4(buf, i + 8).is_some_and(|lo| (0xDC00..=0xDFFF).contains(&lo));
                    if paired { Ok(i + 12) } else { Err(INVALID) }
                }
                0xDC00..=0xDFFF => Err(INVALID),
                _ => Ok(i + 6),
            }
        }
        _ => Err(INVALID),
    }
}

/// Validates the number at `pos`; returns the position after it
#[inline]
pub(crate) fn skip_number(buf: &[u8], mut pos: usize) -> Result<usize> {
    let digit = |p: usize| buf.get(p).is_some_and(u8::is_ascii_digit);
    let digits_from = |mut p: usize| {
        while digit(p) {
            p += 1;
        }
        p
    };
    if buf.get(pos) == Some(&b'-') {
        pos += 1;
    }
    match buf.get(pos) {
        Some(b'0') => pos += 1,
        Some(b'1'..=b'9') => pos = digits_from(pos + 1),
        _ => return Err(INVALID),
    }
    if buf.get(pos) == Some(&b'.') {
        if !digit(pos + 1) {
            return Err(INVALID);
        }
        pos = digits_from(pos + 1);
    }
    if let Some(b'e' | b'E') = buf.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = buf.get(pos) {
            pos += 1;
        }
        if !digit(pos) {
            return Err(INVALID);
        }
        pos = digits_from(pos);
    }
    Ok(pos)
}

/// Checks that `literal` is written at `pos`; returns the position after it
pub(crate) fn expect_literal(buf: &[u8], pos: usize, literal: &[u8]) -> Result<usize> {
    if buf.get(pos..pos + literal.len()) == Some(literal) {
        Ok(pos + literal.len())
    } else {
        Err(INVALID)
    }
}
