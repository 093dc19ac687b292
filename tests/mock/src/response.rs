//! The Response object, its output items and `usage`.

use serde_json::{Map, Value, json};

use crate::request::CreateRequest;

/// The default of an echoed setting the create left out.
type DefaultValue = fn() -> Value;

/// Settings a create carries that the response object echoes, with the API's defaults.
const ECHOED: [(&str, DefaultValue); 13] = [
    ("instructions", || Value::Null),
    ("tools", || json!([])),
    ("tool_choice", || json!("auto")),
    ("parallel_tool_calls", || json!(true)),
    ("temperature", || json!(1.0)),
    ("top_p", || json!(1.0)),
    ("reasoning", || json!({"effort": null, "summary": null})),
    ("text", || json!({"format": {"type": "text"}})),
    ("truncation", || json!("disabled")),
    ("service_tier", || json!("default")),
    ("prompt_cache_key", || Value::Null),
    ("user", || Value::Null),
    ("max_output_tokens", || Value::Null),
];

/// Identity and echoed settings of one response.
#[derive(Clone, Debug)]
pub(crate) struct ResponseSpec {
    pub(crate) id: String,
    pub(crate) created_at: u64,
    pub(crate) previous_response_id: Option<String>,
    pub(crate) store: bool,
    pub(crate) model: Value,
    pub(crate) metadata: Value,
    pub(crate) echoed: Map<String, Value>,
}

impl ResponseSpec {
    pub(crate) fn new(id: String, created_at: u64, request: &CreateRequest) -> Self {
        let body = &request.body;
        let echoed = ECHOED
            .iter()
            .map(|(key, default)| {
                (
                    (*key).to_owned(),
                    body.get(*key).cloned().unwrap_or_else(default),
                )
            })
            .collect();
        Self {
            id,
            created_at,
            previous_response_id: request.previous_response_id.clone(),
            store: request.store,
            model: body
                .get("model")
                .cloned()
                .unwrap_or_else(|| json!("mock-model")),
            metadata: body.get("metadata").cloned().unwrap_or_else(|| json!({})),
            echoed,
        }
    }

    /// The full Response object in a given state.
    pub(crate) fn object(&self, state: &ResponseState<'_>) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), self.id.clone().into());
        object.insert("object".into(), "response".into());
        object.insert("created_at".into(), self.created_at.into());
        object.insert("completed_at".into(), state.completed_at.into());
        object.insert("status".into(), state.status.into());
        object.insert("background".into(), false.into());
        object.insert("error".into(), state.error.clone());
        object.insert(
            "incomplete_details".into(),
            state
                .incomplete_reason
                .map_or(Value::Null, |r| json!({"reason": r})),
        );
        object.insert("model".into(), self.model.clone());
        object.insert("output".into(), Value::Array(state.output.to_vec()));
        object.insert(
            "previous_response_id".into(),
            self.previous_response_id.clone().into(),
        );
        object.insert("store".into(), self.store.into());
        object.insert("metadata".into(), self.metadata.clone());
        object.insert(
            "usage".into(),
            state.usage.map_or(Value::Null, |u| u.to_json()),
        );
        for (key, value) in &self.echoed {
            object.insert(key.clone(), value.clone());
        }
        Value::Object(object)
    }
}

/// The variable part of a Response object.
#[derive(Debug)]
pub(crate) struct ResponseState<'a> {
    pub(crate) status: &'static str,
    pub(crate) output: &'a [Value],
    pub(crate) usage: Option<&'a Usage>,
    pub(crate) completed_at: Option<u64>,
    pub(crate) error: Value,
    pub(crate) incomplete_reason: Option<&'static str>,
}

impl<'a> ResponseState<'a> {
    /// `in_progress`, no output yet.
    pub(crate) fn in_progress() -> Self {
        Self {
            status: "in_progress",
            output: &[],
            usage: None,
            completed_at: None,
            error: Value::Null,
            incomplete_reason: None,
        }
    }

    /// A terminal state with output and usage.
    pub(crate) fn terminal(
        status: &'static str,
        output: &'a [Value],
        usage: &'a Usage,
        at: u64,
    ) -> Self {
        Self {
            status,
            output,
            usage: Some(usage),
            completed_at: Some(at),
            error: Value::Null,
            incomplete_reason: None,
        }
    }
}

/// Token accounting, shaped like protocol.md §3.3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) input_tokens: u64,
    pub(crate) cached_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) reasoning_tokens: u64,
}

impl Usage {
    pub(crate) fn to_json(self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {
                "cached_tokens": self.cached_tokens,
                "cache_write_tokens": 0,
                "cache_write_tokens_details": {"ttl_30m_tokens": 0, "ttl_12h_tokens": 0},
            },
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        })
    }
}

/// A deterministic token count: one token per started 4 bytes of each item's compact JSON.
/// Chained context therefore shows up as a growing `input_tokens`.
pub(crate) fn count_tokens(items: &[Value]) -> u64 {
    items
        .iter()
        .map(|item| {
            serde_json::to_string(item)
                .map_or(0, |s| s.len() as u64)
                .div_ceil(4)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_has_the_documented_shape_and_total() {
        let usage = Usage {
            input_tokens: 100,
            cached_tokens: 64,
            output_tokens: 7,
            reasoning_tokens: 3,
        };
        assert_eq!(
            usage.to_json(),
            json!({"input_tokens": 100,
             "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0,
                                      "cache_write_tokens_details": {"ttl_30m_tokens": 0, "ttl_12h_tokens": 0}},
             "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 107})
        );
    }

    #[test]
    fn token_count_grows_with_context() {
        let one = vec![json!({"role": "user", "content": "hello"})];
        let two = [one.clone(), one.clone()].concat();
        assert!(count_tokens(&one) > 0);
        assert_eq!(count_tokens(&two), 2 * count_tokens(&one));
    }
}
