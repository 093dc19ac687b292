//! Human-readable durations: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, and sums such as `"1m30s"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a duration such as `"250ms"`, `"30s"`, `"55m"`, `"1h"` or `"1m30s"`
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. \"30s\" or \"250ms\"".to_owned());
    }
    let bad = |why: String| format!("bad duration {text:?}: {why}");
    let too_large = || bad("number too large".into());
    let bytes = s.as_bytes();
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(bad(format!("expected a number at byte {start}")));
        }
        let value: u64 = s[start..i].parse().map_err(|_| too_large())?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &s[unit_start..i] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "" => return Err(bad("missing unit (ms, s, m or h)".into())),
            other => return Err(bad(format!("unknown unit {other:?} (use ms, s, m or h)"))),
        };
        let part = unit
            .checked_mul(u32::try_from(value).map_err(|_| too_large())?)
            .ok_or_else(|| bad("too large".into()))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| bad("too large".into()))?;
    }
    Ok(total)
}

/// Formats a duration in the largest unit that divides it exactly (`"55m"`, `"250ms"`)
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// serde `with` adapter: serializes with [`format()`]
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// serde `with` adapter: deserializes from a human string
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("55m"), Ok(Duration::from_secs(3300)));
        assert_eq!(parse("55min"), Ok(Duration::from_secs(3300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse(" 2s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn rejects_bad_text_with_a_reason() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("30").unwrap_err().contains("missing unit"));
        assert!(parse("3 weeks").is_err());
        assert!(parse("5d").unwrap_err().contains("unknown unit"));
        assert!(parse("s").unwrap_err().contains("expected a number"));
    }

    #[test]
    fn format_round_trips() {
        for d in [
            0u64, 1, 250, 1000, 30_000, 60_000, 3_300_000, 3_600_000, 3_601_000,
        ] {
            let d = Duration::from_millis(d);
            assert_eq!(parse(&format(d)), Ok(d), "{d:?}");
        }
    }
}
