//! A small WebSocket client for the Responses API: connect with credentials, send JSON frames, and
//! read events, pongs and the close with timeouts (never sleeps).
//!
//! A connection that ends without a close frame is reported as [`CloseInfo::ABNORMAL`] (the 1006 a
//! browser would show), so scenarios can tell "the socket was dropped" from "the peer closed 1011".

use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::{HeaderMap, HeaderName, HeaderValue};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::Failure;
use crate::protocol::{Turn, is_response_terminal};

/// The WebSocket stream type the harness uses (plain TCP, `TCP_NODELAY` set).
pub type WsStream = WebSocketStream<TokioAdapter<TcpStream>>;

/// How long a scenario waits for one frame before it reports the peer as silent.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client presents on the upgrade: the bearer key and any extra headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Sent as `Authorization: Bearer <api_key>`; empty sends no `Authorization` header.
    pub api_key: String,
    /// Extra handshake headers (e.g. `session-id`, `originator`, an account selector).
    pub headers: Vec<(String, String)>,
}

impl Credentials {
    /// Credentials with a bearer key and no extra headers.
    pub fn bearer(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            headers: Vec::new(),
        }
    }

    /// Adds one handshake header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Why an upgrade did not produce a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The server answered with a plain HTTP response instead of `101`.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The response body (OpenAI-shaped JSON for API errors).
        body: String,
    },
    /// TCP or handshake failure.
    Transport(String),
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Rejected { status, body } => {
                Self(format!("upgrade rejected with HTTP {status}: {body}"))
            }
            ConnectError::Transport(msg) => Self(format!("connect failed: {msg}")),
        }
    }
}

/// How a WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code of the peer's close frame; `None` when the socket ended without one.
    pub code: Option<u16>,
    /// The close reason, empty when none was given.
    pub reason: String,
}

impl CloseInfo {
    /// The code RFC 6455 reserves for "closed without a close frame".
    pub const ABNORMAL: u16 = 1006;

    /// The close code as a client API would report it: the frame's code, or 1006 without one.
    pub fn code_or_abnormal(&self) -> u16 {
        self.code.unwrap_or(Self::ABNORMAL)
    }
}

/// One thing read from the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A JSON text frame.
    Event(Value),
    /// A pong answering one of our pings.
    Pong(Bytes),
    /// The socket ended.
    Closed(CloseInfo),
}

/// A connected Responses WebSocket client.
pub struct WsClient {
    ws: WsStream,
    upgrade_headers: HeaderMap,
    closed: Option<CloseInfo>,
}

impl WsClient {
    /// Connects with tungstenite's default limits.
    pub async fn connect(ws_url: &str, creds: &Credentials) -> Result<Self, ConnectError> {
        Self::connect_with_config(ws_url, creds, WebSocketConfig::default()).await
    }

    /// Connects with an explicit WebSocket configuration (buffer sizes, limits).
    pub async fn connect_with_config(
        ws_url: &str,
        creds: &Credentials,
        config: WebSocketConfig,
    ) -> Result<Self, ConnectError> {
        let request = ws_url
            .into_client_request()
            .map_err(|e| ConnectError::Transport(e.to_string()))?;
        let host = request.uri().host().unwrap_or("127.0.0.1").to_owned();
        let port = request.uri().port_u16().unwrap_or(80);
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| ConnectError::Transport(e.to_string()))?;
        Self::connect_over(tcp, ws_url, creds, config).await
    }

    /// Connects over a TCP socket whose receive buffer is `recv_buffer` bytes (set before the
    /// connect, so the window never grows): a client that stops reading then fills the gateway's
    /// client write buffer after little data (loopback's default buffers absorb megabytes).
    pub async fn connect_with_recv_buffer(
        ws_url: &str,
        creds: &Credentials,
        recv_buffer: u32,
    ) -> Result<Self, ConnectError> {
        let transport = |e: &dyn std::fmt::Display| ConnectError::Transport(e.to_string());
        let request = ws_url.into_client_request().map_err(|e| transport(&e))?;
        let authority = request
            .uri()
            .authority()
            .map_or("127.0.0.1:80", |a| a.as_str())
            .to_owned();
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| transport(&e))?
            .next()
            .ok_or_else(|| transport(&"no address"))?;
        let socket = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(|e| transport(&e))?;
        socket
            .set_recv_buffer_size(recv_buffer)
            .map_err(|e| transport(&e))?;
        let tcp = socket.connect(addr).await.map_err(|e| transport(&e))?;
        Self::connect_over(tcp, ws_url, creds, WebSocketConfig::default()).await
    }

    /// Upgrades an already connected TCP stream (e.g. one bound to a chosen source address).
    pub async fn connect_over(
        tcp: TcpStream,
        ws_url: &str,
        creds: &Credentials,
        config: WebSocketConfig,
    ) -> Result<Self, ConnectError> {
        let transport = |e: &dyn std::fmt::Display| ConnectError::Transport(e.to_string());
        let mut request = ws_url.into_client_request().map_err(|e| transport(&e))?;
        let headers = request.headers_mut();
        if !creds.api_key.is_empty() {
            let value = HeaderValue::from_str(&format!("Bearer {}", creds.api_key))
                .map_err(|e| transport(&e))?;
            headers.insert("authorization", value);
        }
        for (name, value) in &creds.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| transport(&e))?;
            headers.append(
                name,
                HeaderValue::from_str(value).map_err(|e| transport(&e))?,
            );
        }
        tcp.set_nodelay(true).map_err(|e| transport(&e))?;
        match async_tungstenite::tokio::client_async_with_config(request, tcp, Some(config)).await {
            Ok((ws, response)) => Ok(Self {
                ws,
                upgrade_headers: response.headers().clone(),
                closed: None,
            }),
            Err(WsError::Http(response)) => Err(ConnectError::Rejected {
                status: response.status().as_u16(),
                body: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned(),
            }),
            Err(e) => Err(transport(&e)),
        }
    }

    /// Hands out the raw stream (the load generator reads frames without building JSON values).
    pub fn into_stream(self) -> WsStream {
        self.ws
    }

    /// The headers of the `101 Switching Protocols` response.
    pub fn upgrade_headers(&self) -> &HeaderMap {
        &self.upgrade_headers
    }

    /// Sends one JSON value as a text frame.
    pub async fn send_json(&mut self, value: &Value) -> Result<(), Failure> {
        self.send_text(value.to_string()).await
    }

    /// Sends one text frame as is (may be invalid JSON on purpose).
    pub async fn send_text(&mut self, text: String) -> Result<(), Failure> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| Failure::new(format!("send failed: {e}")))
    }

    /// Sends a ping with the given payload (≤ 125 bytes).
    pub async fn ping(&mut self, payload: &'static [u8]) -> Result<(), Failure> {
        self.ws
            .send(Message::Ping(Bytes::from_static(payload)))
            .await
            .map_err(|e| Failure::new(format!("ping failed: {e}")))
    }

    /// Sends a close frame with `code` and waits (bounded) for the peer's answer.
    pub async fn close(mut self, code: u16) -> Result<(), Failure> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        // A peer that already went away makes the close fail; that is not an error for a test.
        let _ = self.ws.close(Some(frame)).await;
        let deadline = tokio::time::Instant::now() + DEFAULT_FRAME_TIMEOUT;
        while self.closed.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(Failure::new("peer did not answer our close frame"));
            }
            self.recv(left).await?;
        }
        Ok(())
    }

    /// Reads the next frame, waiting at most `timeout`; after the socket ended it keeps returning
    /// the same [`Incoming::Closed`].
    pub async fn recv(&mut self, timeout: Duration) -> Result<Incoming, Failure> {
        if let Some(closed) = &self.closed {
            return Ok(Incoming::Closed(closed.clone()));
        }
        loop {
            let next = tokio::time::timeout(timeout, self.ws.next())
                .await
                .map_err(|_| Failure::new(format!("no frame within {timeout:?}")))?;
            let incoming = match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).map_err(|e| {
                        Failure::new(format!("server sent a text frame that is not JSON: {e}"))
                    })?;
                    Incoming::Event(value)
                }
                Some(Ok(Message::Binary(_))) => {
                    return Err(Failure::new(
                        "server sent a binary frame (must be text only)",
                    ));
                }
                Some(Ok(Message::Pong(payload))) => Incoming::Pong(payload),
                Some(Ok(Message::Ping(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => Incoming::Closed(CloseInfo {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                }),
                // A reset, an EOF without a close frame or a protocol error all look like 1006.
                Some(Err(_)) | None => Incoming::Closed(CloseInfo {
                    code: None,
                    reason: String::new(),
                }),
            };
            if let Incoming::Closed(info) = &incoming {
                self.closed = Some(info.clone());
            }
            return Ok(incoming);
        }
    }

    /// Reads the next JSON event, skipping pongs; a closed socket is a failure.
    pub async fn recv_event(&mut self, timeout: Duration) -> Result<Value, Failure> {
        loop {
            match self.recv(timeout).await? {
                Incoming::Event(value) => return Ok(value),
                Incoming::Pong(_) => continue,
                Incoming::Closed(info) => {
                    return Err(Failure::new(format!(
                        "socket closed ({}) while an event was expected",
                        info.code_or_abnormal()
                    )));
                }
            }
        }
    }

    /// Reads events until the response ends: a terminal response event or an `error` event.
    pub async fn read_turn(&mut self) -> Result<Turn, Failure> {
        self.read_turn_within(DEFAULT_FRAME_TIMEOUT).await
    }

    /// [`WsClient::read_turn`], waiting at most `frame_timeout` for each event.
    pub async fn read_turn_within(&mut self, frame_timeout: Duration) -> Result<Turn, Failure> {
        let mut events = Vec::new();
        loop {
            let event = self.recv_event(frame_timeout).await?;
            let kind = event["type"].as_str().unwrap_or_default().to_owned();
            events.push(event);
            if is_response_terminal(&kind) || kind == "error" {
                return Ok(Turn { events });
            }
        }
    }

    /// Reads until the socket ends, returning the events seen before the end and how it ended.
    pub async fn read_until_closed(&mut self) -> Result<(Vec<Value>, CloseInfo), Failure> {
        let mut events = Vec::new();
        loop {
            match self.recv(DEFAULT_FRAME_TIMEOUT).await? {
                Incoming::Event(value) => events.push(value),
                Incoming::Pong(_) => {}
                Incoming::Closed(info) => return Ok((events, info)),
            }
        }
    }
}
