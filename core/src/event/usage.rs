//! Token usage from terminal events.

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
