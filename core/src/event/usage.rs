//! Token usage from terminal events.

use super::ClassifyError;
use super::scan::ObjectScan;

/// `response.usage` of a terminal event
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// `input_tokens`
    pub input_tokens: u64,
    /// `input_tokens_details.cached_tokens`
    pub cached_tokens: u64,
    /// `input_tokens_details.cache_write_tokens`
    pub cache_write_tokens: u64,
    /// `output_tokens`
    pub output_tokens: u64,
    /// `output_tokens_details.reasoning_tokens`
    pub reasoning_tokens: u64,
    /// `total_tokens`
    pub total_tokens: u64,
}

impl Usage {
    /// Reads a `usage` object from its JSON bytes without allocating
    ///
    /// Missing fields, `null` and values that are not non-negative integers count as 0
    /// (upstream sends integers; a gateway must not fail a response over a malformed count).
    /// Fails only when `json` is not a valid JSON object.
    pub fn from_json(json: &[u8]) -> Result<Self, ClassifyError> {
        let mut usage = Self::default();
        let mut scan = ObjectScan::top_level(json)?;
        while let Some(key) = scan.next_key()? {
            if key.eq_text(b"input_tokens_details") {
                read_details(
                    &mut scan,
                    &mut [
                        (b"cached_tokens", &mut usage.cached_tokens),
                        (b"cache_write_tokens", &mut usage.cache_write_tokens),
                    ],
                )?;
                continue;
            }
            if key.eq_text(b"output_tokens_details") {
                read_details(
                    &mut scan,
                    &mut [(b"reasoning_tokens", &mut usage.reasoning_tokens)],
                )?;
                continue;
            }
            let value = scan.skip_value()?;
            let slot = if key.eq_text(b"input_tokens") {
                &mut usage.input_tokens
            } else if key.eq_text(b"output_tokens") {
                &mut usage.output_tokens
            } else if key.eq_text(b"total_tokens") {
                &mut usage.total_tokens
            } else {
                continue;
            };
            *slot = value.as_u64().unwrap_or(0);
        }
        Ok(usage)
    }
}

/// Reads the named counts of a `*_details` object (skips any other value type)
fn read_details(
    scan: &mut ObjectScan<'_>,
    fields: &mut [(&[u8], &mut u64)],
) -> Result<(), ClassifyError> {
    let Some(mut child) = scan.nested_object()? else {
        scan.skip_value()?;
        return Ok(());
    };
    while let Some(member) = child.next_member()? {
        if let Some((_, slot)) = fields.iter_mut().find(|(name, _)| member.key.eq_text(name)) {
            **slot = member.value.as_u64().unwrap_or(0);
        }
    }
    scan.resume_after(child)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_count_and_defaults_missing_ones_to_zero() {
        let json = br#"{"input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 5,
                                     "cache_write_tokens_details": {"ttl_30m_tokens": 9}},
            "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 107}"#;
        assert_eq!(
            Usage::from_json(json).unwrap(),
            Usage {
                input_tokens: 100,
                cached_tokens: 64,
                cache_write_tokens: 5,
                output_tokens: 7,
                reasoning_tokens: 3,
                total_tokens: 107,
            }
        );
        let sparse = br#"{"output_tokens":2,"input_tokens_details":null,"total_tokens":-1,"input_tokens":1.5}"#;
        assert_eq!(
            Usage::from_json(sparse).unwrap(),
            Usage {
                output_tokens: 2,
                ..Usage::default()
            }
        );
        assert_eq!(Usage::from_json(b"[1]"), Err(ClassifyError::NotAnObject));
        assert_eq!(
            Usage::from_json(b"{\"input_tokens\":1"),
            Err(ClassifyError::InvalidJson)
        );
    }
}
