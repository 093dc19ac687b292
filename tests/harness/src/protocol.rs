//! Responses API vocabulary the harness needs: a `response.create` builder, terminal-event
//! classification, and [`Turn`], the events of one response with checks over them.

use serde_json::{Map, Value, json};

use crate::{Failure, ensure, ensure_eq};

/// The model name the harness sends; the mock accepts any, a gateway may map it.
pub const MODEL: &str = "mock-model";

/// True for the events that end one response (`response.completed|failed|incomplete`).
pub fn is_response_terminal(kind: &str) -> bool {
    matches!(
        kind,
        "response.completed" | "response.failed" | "response.incomplete"
    )
}

/// Builds a flat `response.create` frame, the shape every official client sends.
#[derive(Debug, Clone)]
pub struct Create {
    body: Map<String, Value>,
    metadata: Map<String, Value>,
}

impl Create {
    /// A create for `mock-model` with one user message and `stream: true` (as clients send it).
    pub fn user(text: &str) -> Self {
        let mut body = Map::new();
        body.insert("type".into(), json!("response.create"));
        body.insert("model".into(), json!(MODEL));
        body.insert("stream".into(), json!(true));
        body.insert(
            "input".into(),
            json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]),
        );
        Self {
            body,
            metadata: Map::new(),
        }
    }

    /// A create whose input is the given items.
    pub fn items(input: Value) -> Self {
        let mut create = Self::user("");
        create.body.insert("input".into(), input);
        create
    }

    /// Chains to a previous response.
    #[must_use]
    pub fn previous(mut self, id: &str) -> Self {
        self.body.insert("previous_response_id".into(), json!(id));
        self
    }

    /// Routes to a named lane.
    #[must_use]
    pub fn lane(mut self, stream_id: &str) -> Self {
        self.body.insert("stream_id".into(), json!(stream_id));
        self
    }

    /// Sets `store` (the service default is true).
    #[must_use]
    pub fn store(mut self, store: bool) -> Self {
        self.body.insert("store".into(), json!(store));
        self
    }

    /// Sets `generate` (`false` = warm-up without output).
    #[must_use]
    pub fn generate(mut self, generate: bool) -> Self {
        self.body.insert("generate".into(), json!(generate));
        self
    }

    /// Any other top-level field.
    #[must_use]
    pub fn field(mut self, name: &str, value: Value) -> Self {
        self.body.insert(name.into(), value);
        self
    }

    /// Asks the mock for a fault on this response (`metadata.mock_fault`).
    #[must_use]
    pub fn fault(self, fault: &str) -> Self {
        self.meta("mock_fault", fault)
    }

    /// Asks the mock for an output kind (`metadata.mock_output`: text, function_call, reasoning).
    #[must_use]
    pub fn output(self, kind: &str) -> Self {
        self.meta("mock_output", kind)
    }

    /// Asks the mock for `n` deltas on this response (`metadata.mock_deltas`).
    #[must_use]
    pub fn deltas(self, n: u32) -> Self {
        self.meta("mock_deltas", &n.to_string())
    }

    /// Sets one string entry of `metadata` (the API types metadata values as strings).
    #[must_use]
    pub fn meta(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.into(), json!(value));
        self
    }

    /// The frame as JSON.
    pub fn build(&self) -> Value {
        let mut body = self.body.clone();
        if !self.metadata.is_empty() {
            body.insert("metadata".into(), Value::Object(self.metadata.clone()));
        }
        Value::Object(body)
    }
}

/// The events of one response (or the single `error` event that replaced it), in arrival order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Turn {
    /// Every event, the last one terminal or `error`.
    pub events: Vec<Value>,
}

impl Turn {
    /// The `type` of the last event.
    pub fn last_type(&self) -> &str {
        self.events
            .last()
            .and_then(|e| e["type"].as_str())
            .unwrap_or_default()
    }

    /// The last event.
    pub fn last(&self) -> &Value {
        self.events.last().unwrap_or(&Value::Null)
    }

    /// The response id, taken from `response.created` or the terminal event.
    pub fn response_id(&self) -> Option<&str> {
        self.events
            .iter()
            .find_map(|e| e["response"]["id"].as_str())
    }

    /// Fails unless the response completed; returns its id.
    pub fn expect_completed(&self) -> Result<&str, Failure> {
        ensure_eq!(
            self.last_type(),
            "response.completed",
            "terminal event ({})",
            self.summary()
        );
        self.response_id()
            .ok_or_else(|| Failure::new("completed response has no id"))
    }

    /// Fails unless the turn ended with an `error` event; returns it.
    pub fn expect_error(&self) -> Result<&Value, Failure> {
        ensure_eq!(
            self.last_type(),
            "error",
            "expected an error event ({})",
            self.summary()
        );
        Ok(self.last())
    }

    /// The concatenated `delta` of every `response.output_text.delta`.
    pub fn output_text(&self) -> String {
        self.events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect()
    }

    /// Number of events of the given type.
    pub fn count(&self, kind: &str) -> usize {
        self.events.iter().filter(|e| e["type"] == kind).count()
    }

    /// Checks the response-stream invariants: `response.created` first, `sequence_number` 0, 1, 2…
    /// without gaps, and every event on the expected lane (`None` = the default lane: no `stream_id`).
    pub fn check_stream(&self, lane: Option<&str>) -> Result<(), Failure> {
        ensure!(!self.events.is_empty(), "empty turn");
        let first = self.events[0]["type"].as_str().unwrap_or_default();
        ensure!(
            first == "response.created" || first == "error",
            "first event is {first}, expected response.created ({})",
            self.summary()
        );
        for (i, event) in self.events.iter().enumerate() {
            let kind = event["type"].as_str().unwrap_or_default();
            if kind == "error" && event.get("sequence_number").is_none() {
                continue;
            }
            ensure_eq!(
                event["sequence_number"].as_u64(),
                Some(i as u64),
                "sequence_number of {kind}"
            );
            ensure_eq!(
                event["stream_id"].as_str(),
                lane,
                "stream_id of {kind} #{i}"
            );
        }
        Ok(())
    }

    /// A one-line description for assertion messages: event types, no bodies.
    pub fn summary(&self) -> String {
        let mut kinds: Vec<String> = Vec::new();
        let mut deltas = 0;
        for e in &self.events {
            let kind = e["type"].as_str().unwrap_or("?");
            if kind.ends_with(".delta") {
                deltas += 1;
                continue;
            }
            if deltas > 0 {
                kinds.push(format!("{deltas}×delta"));
                deltas = 0;
            }
            kinds.push(kind.to_owned());
        }
        if deltas > 0 {
            kinds.push(format!("{deltas}×delta"));
        }
        if self.last_type() == "error" {
            kinds.push(format!(
                "status={} code={}",
                self.last()["status"],
                self.last()["error"]["code"]
            ));
        }
        kinds.join(", ")
    }
}
