//! Reading a `response.create` (WebSocket frame or POST body) into what the mock acts on.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// A lane: `None` is the implicit default lane, `Some(id)` a named `stream_id` lane.
pub(crate) type LaneKey = Option<String>;

/// Default delay of `slow_first_event` and `stop_reading` when `metadata.mock_delay_ms` is absent.
const DEFAULT_FAULT_DELAY: Duration = Duration::from_millis(300);

/// A failure injected into one response through `metadata.mock_fault`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `error` event, status 400, in place of the response.
    Error400,
    /// `error` event, status 429 with rate-limit `headers` (50 ms reset).
    Error429,
    /// `error` event, status 500.
    Error500,
    /// `response.failed` (`server_error`) after a few deltas.
    Failed,
    /// `response.incomplete` (`max_output_tokens`) after a few deltas.
    Incomplete,
    /// Abrupt TCP close (no close frame) after `response.created` and 2 deltas.
    DropMidStream,
    /// Close frame 1011 after `response.created` and 2 deltas.
    Close1011MidStream,
    /// Wait `mock_delay_ms` (default 300) before `response.created`.
    SlowFirstEvent,
    /// Emit `response.created`, then nothing until the connection closes (or a steer arrives).
    StallLane,
    /// Stop reading the socket for `mock_delay_ms`; when it is absent, until
    /// `MockHandle::resume_reading`.
    StopReading,
    /// Stop answering pings on this connection from now on.
    StopPong,
    /// One extra `response.output_text.delta` after the terminal event.
    TailPacket,
    /// No event until the runtime blackhole is switched off (runtime only, no metadata name).
    Blackhole,
}

impl Fault {
    /// Every fault with its `metadata.mock_fault` name.
    pub(crate) const NAMES: [(&'static str, Self); 12] = [
        ("error_400", Self::Error400),
        ("error_429", Self::Error429),
        ("error_500", Self::Error500),
        ("failed", Self::Failed),
        ("incomplete", Self::Incomplete),
        ("drop_mid_stream", Self::DropMidStream),
        ("close_1011_mid_stream", Self::Close1011MidStream),
        ("slow_first_event", Self::SlowFirstEvent),
        ("stall_lane", Self::StallLane),
        ("stop_reading", Self::StopReading),
        ("stop_pong", Self::StopPong),
        ("tail_packet", Self::TailPacket),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// Faults that cut the stream after a couple of deltas.
    pub(crate) fn cuts_stream(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Incomplete | Self::DropMidStream | Self::Close1011MidStream
        )
    }
}

/// Which output item the mock generates (`metadata.mock_output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputKind {
    /// An assistant message (default).
    Text,
    /// A `function_call` item.
    FunctionCall,
    /// A reasoning item followed by an assistant message.
    Reasoning,
}

/// A parsed `response.create`.
#[derive(Clone, Debug)]
pub(crate) struct CreateRequest {
    /// The whole frame, for echoing settings into the response object.
    pub(crate) body: Map<String, Value>,
    /// `previous_response_id` (null counts as absent).
    pub(crate) previous_response_id: Option<String>,
    /// `store`, default true.
    pub(crate) store: bool,
    /// `generate`, default true.
    pub(crate) generate: bool,
    /// `background: true` (rejected over WebSocket).
    pub(crate) background: bool,
    /// `input` normalised to a list of items.
    pub(crate) input: Vec<Value>,
    /// `Err(name)` for an unknown `mock_fault`, so a typo in a test fails loudly.
    pub(crate) fault: Result<Option<Fault>, String>,
    /// `metadata.mock_delay_ms`.
    pub(crate) delay: Option<Duration>,
    /// `metadata.mock_deltas`.
    pub(crate) deltas: Option<usize>,
    /// `metadata.mock_output`.
    pub(crate) output: OutputKind,
    /// `include` contains `reasoning.encrypted_content`.
    pub(crate) encrypted_reasoning: bool,
}

impl CreateRequest {
    /// Reads the fields the mock acts on; unknown fields are kept in `body` and ignored.
    pub(crate) fn parse(body: Map<String, Value>) -> Self {
        let metadata = body.get("metadata").and_then(Value::as_object);
        let meta = |key: &str| metadata.and_then(|m| m.get(key));
        let meta_number = |key: &str| {
            meta(key).and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
        };
        let fault = match meta("mock_fault").and_then(Value::as_str) {
            None | Some("") | Some("none") => Ok(None),
            Some(name) => Fault::parse(name).map(Some).ok_or_else(|| name.to_owned()),
        };
        let output = match meta("mock_output").and_then(Value::as_str) {
            Some("function_call") => OutputKind::FunctionCall,
            Some("reasoning") => OutputKind::Reasoning,
            _ => OutputKind::Text,
        };
        let encrypted_reasoning = body
            .get("include")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|v| v == "reasoning.encrypted_content"));
        Self {
            previous_response_id: body
                .get("previous_response_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            store: body.get("store").and_then(Value::as_bool).unwrap_or(true),
            generate: body
                .get("generate")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            background: body
                .get("background")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            input: normalise_input(body.get("input")),
            fault,
            delay: meta_number("mock_delay_ms").map(Duration::from_millis),
            deltas: meta_number("mock_deltas").map(|n| n as usize),
            output,
            encrypted_reasoning,
            body,
        }
    }

    /// The fault of this request, ignoring an unknown name.
    pub(crate) fn known_fault(&self) -> Option<Fault> {
        self.fault.clone().ok().flatten()
    }

    /// `mock_delay_ms` or the 300 ms default.
    pub(crate) fn fault_delay(&self) -> Duration {
        self.delay.unwrap_or(DEFAULT_FAULT_DELAY)
    }

    /// Takes the mock's runtime fault when the request names no fault of its own.
    pub(crate) fn inherit(&mut self, runtime: Option<crate::switches::RuntimeFault>) {
        if let (Ok(None), Some(runtime)) = (&self.fault, runtime) {
            let (fault, delay) = runtime.per_response();
            self.fault = Ok(Some(fault));
            self.delay = delay.or(self.delay);
        }
    }

    /// The request an automatic steer successor runs with: same settings, no fault.
    pub(crate) fn successor(&self, previous_response_id: String, input: Vec<Value>) -> Self {
        let mut next = self.clone();
        next.previous_response_id = Some(previous_response_id);
        next.input = input;
        next.fault = Ok(None);
        next.delay = None;
        next.generate = true;
        if let Some(Value::Object(metadata)) = next.body.get_mut("metadata") {
            metadata.remove("mock_fault");
            metadata.remove("mock_delay_ms");
        }
        next
    }
}

/// A string input becomes one user message; an array is taken as items; anything else is empty.
pub(crate) fn normalise_input(input: Option<&Value>) -> Vec<Value> {
    match input {
        Some(Value::String(text)) => {
            vec![
                json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}),
            ]
        }
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// `stream_id` rule: absent or null selects the default lane; otherwise 1–256 of `[A-Za-z0-9_.-]`.
pub(crate) fn parse_stream_id(value: Option<&Value>) -> Result<LaneKey, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id))
            if (1..=256).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) =>
        {
            Ok(Some(id.clone()))
        }
        Some(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> CreateRequest {
        CreateRequest::parse(value.as_object().cloned().unwrap())
    }

    #[test]
    fn stream_id_rule_matches_the_documented_pattern() {
        assert_eq!(parse_stream_id(None), Ok(None));
        assert_eq!(
            parse_stream_id(Some(&json!("a.b-c_9"))),
            Ok(Some("a.b-c_9".into()))
        );
        assert_eq!(parse_stream_id(Some(&json!(""))), Err(()));
        assert_eq!(parse_stream_id(Some(&json!("has space"))), Err(()));
        assert_eq!(parse_stream_id(Some(&json!("x".repeat(257)))), Err(()));
        assert_eq!(
            parse_stream_id(Some(&json!("x".repeat(256)))),
            Ok(Some("x".repeat(256)))
        );
        assert_eq!(parse_stream_id(Some(&json!(7))), Err(()));
    }

    #[test]
    fn defaults_and_metadata_switches() {
        let plain = parse(json!({"type": "response.create", "input": "hi"}));
        assert!(plain.store && plain.generate && !plain.background);
        assert_eq!(plain.input.len(), 1);
        assert_eq!(plain.fault, Ok(None));
        let faulty = parse(
            json!({"metadata": {"mock_fault": "stall_lane", "mock_deltas": "3",
            "mock_output": "reasoning"}, "include": ["reasoning.encrypted_content"], "store": false}),
        );
        assert_eq!(faulty.fault, Ok(Some(Fault::StallLane)));
        assert_eq!(faulty.deltas, Some(3));
        assert_eq!(faulty.output, OutputKind::Reasoning);
        assert!(faulty.encrypted_reasoning && !faulty.store);
        let typo = parse(json!({"metadata": {"mock_fault": "stal_lane"}}));
        assert_eq!(typo.fault, Err("stal_lane".to_owned()));
        let successor = faulty.successor("resp_1".into(), vec![]);
        assert_eq!(successor.fault, Ok(None));
        assert!(successor.body["metadata"].get("mock_fault").is_none());
    }
}
