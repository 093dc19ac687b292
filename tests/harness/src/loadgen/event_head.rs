//! The few fields the load generator reads from each event, borrowed from the frame bytes.

use serde::Deserialize;
use serde_json::json;

/// `type`, `sequence_number`, the mock's send stamp, and the response id / status when present.
#[derive(Debug, Deserialize)]
pub struct EventHead<'a> {
    /// Event type.
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    /// Per-response sequence number.
    pub sequence_number: Option<u64>,
    /// The mock's `SystemTime` at send, in ns since the UNIX epoch.
    pub mock_ts_ns: Option<u64>,
    /// The response object of lifecycle events.
    #[serde(borrow)]
    pub response: Option<ResponseHead<'a>>,
    /// The HTTP status of an `error` event.
    pub status: Option<u16>,
}

/// The part of a response object the load generator needs.
#[derive(Debug, Deserialize)]
pub struct ResponseHead<'a> {
    /// `resp_…`.
    #[serde(borrow)]
    pub id: Option<&'a str>,
}

impl EventHead<'_> {
    /// Parses one frame.
    pub fn parse(bytes: &[u8]) -> Result<EventHead<'_>, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The response id, if the event carries a response object.
    pub fn response_id(&self) -> Option<&str> {
        self.response.as_ref().and_then(|r| r.id)
    }
}

/// The `response.create` the load generator sends (WS frame when `ws`, POST body otherwise).
pub fn create_body(ws: bool, previous: Option<&str>, deltas: Option<u32>, turn: usize) -> String {
    let mut body = json!({
        "model": crate::protocol::MODEL,
        "stream": true,
        // WS turns chain in the connection-local cache (Codex style); SSE turns need stored ids.
        "store": !ws,
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": format!("load turn {turn}")}]}],
    });
    if ws {
        body["type"] = json!("response.create");
    }
    if let Some(id) = previous {
        body["previous_response_id"] = json!(id);
    }
    if let Some(n) = deltas {
        body["metadata"] = json!({"mock_deltas": n.to_string()});
    }
    body.to_string()
}
