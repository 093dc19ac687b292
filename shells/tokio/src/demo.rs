//! `wsv2-gateway demo`: the mock upstream and the gateway in one process, two chained turns
//! driven over a real WebSocket, and what came back.

use std::fmt::Write as _;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use futures_util::StreamExt;
use serde_json::{Value, json};
use wsv2_core::file_config::{DEMO_CLIENT_KEY, GatewayConfig};
use wsv2_mock::MockConfig;

/// The key the demo's mock upstream accepts (the demo account's token)
const DEMO_UPSTREAM_KEY: &str = "sk-demo-upstream";

/// One turn as the demo client saw it
#[derive(Debug)]
pub struct DemoTurn {
    /// The response id
    pub response_id: String,
    /// The streamed text (every `response.output_text.delta`)
    pub text: String,
    /// The terminal event's `usage`
    pub usage: Value,
    /// Events received
    pub events: usize,
}

/// Runs the demo and returns its printable report
pub async fn run() -> Result<String, String> {
    let mock = wsv2_mock::start(MockConfig {
        api_key: DEMO_UPSTREAM_KEY.into(),
        ..MockConfig::default()
    })
    .await
    .map_err(|e| format!("mock upstream: {e}"))?;
    let config = GatewayConfig::demo(&mock.ws_url(), DEMO_UPSTREAM_KEY)
        .map_err(|issues| format!("demo configuration: {issues:?}"))?;
    let gateway = crate::start(config).await.map_err(|e| e.to_string())?;
    let url = gateway.ws_url();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wsv2 gateway listening on {url} (upstream: mock at {})",
        mock.ws_url()
    );
    let _ = writeln!(out, "client key: {DEMO_CLIENT_KEY}\n");
    let _ = writeln!(out, "openai-python (>= 2.x, Responses WebSocket mode):");
    let _ = writeln!(
        out,
        "  from openai import OpenAI\n  client = OpenAI(base_url=\"http://{}/v1\", api_key=\"{DEMO_CLIENT_KEY}\")\n  with client.responses.connect() as ws:  # WebSocket mode\n      ws.send({{\"type\": \"response.create\", \"model\": \"gpt-5\", \"input\": \"hi\"}})\n",
        gateway.addr
    );
    let _ = writeln!(out, "Codex (~/.codex/config.toml):");
    let _ = writeln!(
        out,
        "  [model_providers.wsv2]\n  name = \"wsv2\"\n  base_url = \"http://{}/v1\"\n  env_key = \"WSV2_KEY\"   # export WSV2_KEY={DEMO_CLIENT_KEY}\n  wire_api = \"responses\"\n  supports_websockets = true\n",
        gateway.addr
    );
    let turns = drive_two_turns(&url).await?;
    for (i, turn) in turns.iter().enumerate() {
        let _ = writeln!(
            out,
            "turn {}: {} ({} events)\n  text: {}\n  usage: {}",
            i + 1,
            turn.response_id,
            turn.events,
            turn.text,
            turn.usage
        );
    }
    if let Some(stats) = settled_pool_stats(&gateway).await {
        let _ = writeln!(
            out,
            "\npool: {} open, {} idle, {} leased, {} dials, {} reuses, {} closes",
            stats.open, stats.idle, stats.leased, stats.dials, stats.reuses, stats.closes
        );
    }
    let upgrades = mock
        .records()
        .iter()
        .filter(|r| matches!(r, wsv2_mock::Record::Handshake { .. }))
        .count();
    let _ = writeln!(out, "upstream upgrades seen by the mock: {upgrades}");
    Ok(out)
}

/// The pool's figures once the demo session's conn is back in the pool (the client's close
/// reaches the gateway a moment after the demo's last read; at most 2 s)
async fn settled_pool_stats(
    gateway: &wsv2_shell::GatewayHandle,
) -> Option<wsv2_core::pool::PoolStats> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let stats = gateway.pool_stats().await?;
        if stats.leased == 0 || tokio::time::Instant::now() >= deadline {
            return Some(stats);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Two chained turns over one client socket
pub async fn drive_two_turns(url: &str) -> Result<Vec<DemoTurn>, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_static("Bearer sk-gw-demo"),
    );
    let (mut ws, _) = async_tungstenite::tokio::connect_async(request)
        .await
        .map_err(|e| format!("connect to the gateway: {e}"))?;
    let mut turns = Vec::new();
    let mut previous: Option<String> = None;
    for input in ["Say hello.", "And once more, shorter."] {
        let mut create = json!({"type": "response.create", "model": "gpt-5", "input": input});
        if let Some(prev) = &previous {
            create["previous_response_id"] = json!(prev);
        }
        ws.send(Message::text(create.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        let mut turn = DemoTurn {
            response_id: String::new(),
            text: String::new(),
            usage: Value::Null,
            events: 0,
        };
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .map_err(|_| "no event within 10 s".to_owned())?
                .ok_or("the gateway closed the socket")?
                .map_err(|e| e.to_string())?;
            let Message::Text(text) = msg else { continue };
            let event: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            turn.events += 1;
            match event["type"].as_str().unwrap_or_default() {
                "response.output_text.delta" => turn
                    .text
                    .push_str(event["delta"].as_str().unwrap_or_default()),
                "response.completed" => {
                    turn.response_id = event["response"]["id"].as_str().unwrap_or_default().into();
                    turn.usage = event["response"]["usage"].clone();
                    break;
                }
                "error" | "response.failed" | "response.incomplete" => {
                    return Err(format!("turn ended with {event}"));
                }
                _ => {}
            }
        }
        previous = Some(turn.response_id.clone());
        turns.push(turn);
    }
    let _ = ws.close(None).await;
    Ok(turns)
}
