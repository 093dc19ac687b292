//! Helpers shared by the mock's socket tests: start a mock, connect a real WebSocket client,
//! send creates and collect events. Every receive has a timeout so a broken mock fails a test
//! instead of hanging it; nothing here sleeps to synchronise.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::{ConnectStream, connect_async_with_config};
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use serde_json::{Value, json};
use wsv2_mock::{MockConfig, MockHandle};

/// The key every test mock accepts.
pub const KEY: &str = "sk-test-key-0123456789";
/// Upper bound for any single receive.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A config with the test key and everything else default.
pub fn cfg() -> MockConfig {
    MockConfig {
        api_key: KEY.into(),
        ..MockConfig::default()
    }
}

/// Starts a mock; it is ready when this returns.
pub async fn mock(cfg: MockConfig) -> MockHandle {
    wsv2_mock::start(cfg).await.expect("mock starts")
}

/// A `response.create` with `fields` merged over a small default.
pub fn create(fields: Value) -> Value {
    let mut frame = json!({"type": "response.create", "model": "mock-model", "stream": true,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}]});
    if let (Some(frame), Some(fields)) = (frame.as_object_mut(), fields.as_object()) {
        for (key, value) in fields {
            frame.insert(key.clone(), value.clone());
        }
    }
    frame
}

/// Whether an event ends a request: a terminal response event or an `error`.
pub fn is_terminal(event: &Value) -> bool {
    matches!(
        event["type"].as_str(),
        Some("response.completed" | "response.failed" | "response.incomplete" | "error")
    )
}

/// Event types in order.
pub fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect()
}

/// A WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<ConnectStream>,
}

/// Opens a WebSocket to `url` with `key` as bearer token.
pub async fn try_connect(url: &str, key: &str) -> Result<WebSocketStream<ConnectStream>, WsError> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    request.headers_mut().insert(
        "openai-beta",
        "responses_websockets=2026-02-06".parse().expect("header"),
    );
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    connect_async_with_config(request, Some(config))
        .await
        .map(|(ws, _)| ws)
}

impl Client {
    /// Connects to the mock's WebSocket URL with the test key.
    pub async fn connect(mock: &MockHandle) -> Self {
        Self::connect_url(&mock.ws_url()).await
    }

    /// Connects to `url` with the test key.
    pub async fn connect_url(url: &str) -> Self {
        Self {
            ws: try_connect(url, KEY).await.expect("upgrade accepted"),
        }
    }

    /// Sends one JSON text frame.
    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("send");
    }

    /// The next message of any kind (`None` when the stream ended or failed).
    pub async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
            .await
            .expect("no message within the timeout")
    }

    /// The next JSON event, skipping pings and pongs.
    pub async fn event(&mut self) -> Value {
        loop {
            match self.recv().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("event is JSON");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text event, got {other:?}"),
            }
        }
    }

    /// Events up to and including the first terminal or `error` event.
    pub async fn response(&mut self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = self.event().await;
            let done = is_terminal(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// Sends `frame` and collects its events up to the terminal one.
    pub async fn turn(&mut self, frame: Value) -> Vec<Value> {
        self.send(frame).await;
        self.response().await
    }

    /// Events until `count` terminal events have arrived (any lane).
    pub async fn terminals(&mut self, count: usize) -> Vec<Value> {
        let mut events = Vec::new();
        let mut seen = 0;
        while seen < count {
            let event = self.event().await;
            if is_terminal(&event) {
                seen += 1;
            }
            events.push(event);
        }
        events
    }

    /// Sends a 1000 close frame (as openai-python does) and waits for the server's reply.
    pub async fn close(mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        while let Some(Ok(_)) = self.recv().await {}
    }
}

/// The terminal event's response object.
pub fn final_response(events: &[Value]) -> &Value {
    &events.last().expect("events")["response"]
}
