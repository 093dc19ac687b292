//! Admission and limit scenarios: what happens before or instead of normal frames. All but the
//! auth check are gateway policy (tagged [`Tag::GatewayOnly`]).

use serde_json::Value;

use super::registry::{Outcome, Scenario, Tag};
use super::target::Ctx;
use crate::client::{ConnectError, Credentials, WsClient};
use crate::{Failure, ensure, ensure_eq};

/// A frame one byte over the gateway's 16 MiB message limit.
const OVERSIZED_FRAME: usize = 16 * 1024 * 1024 + 1;

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "auth_rejected_before_upgrade",
        tags: &[],
        outcome: Outcome {
            upstream: "a wrong bearer key ⇒ plain HTTP 401 with an OpenAI error JSON body, no upgrade",
            gateway: "same: 401 + OpenAI error JSON before any upgrade",
        },
        run: |c| Box::pin(auth_rejected(c)),
    },
    Scenario {
        name: "gateway_message_too_big",
        tags: &[Tag::GatewayOnly],
        outcome: Outcome {
            upstream: "(not run: the upstream's limit is undocumented)",
            gateway: "a text frame over 16 MiB ⇒ the gateway closes the socket with 1009",
        },
        run: |c| Box::pin(message_too_big(c)),
    },
    Scenario {
        name: "gateway_upgrade_426",
        tags: &[Tag::GatewayOnly],
        outcome: Outcome {
            upstream: "(not run)",
            gateway: "credentials whose account resolves to HTTP only (the account hook maps this \
                      scenario to one) ⇒ HTTP 426 before any upgrade, so Codex falls back at once",
        },
        run: |c| Box::pin(upgrade_426(c)),
    },
];

async fn expect_rejected(ws_url: &str, creds: &Credentials, status: u16) -> Result<Value, Failure> {
    match WsClient::connect(ws_url, creds).await {
        Ok(_) => Err(Failure::new(format!(
            "upgrade succeeded, expected HTTP {status}"
        ))),
        Err(ConnectError::Transport(e)) => Err(Failure::new(format!("connect failed: {e}"))),
        Err(ConnectError::Rejected { status: got, body }) => {
            ensure_eq!(got, status, "upgrade status (body {body})");
            serde_json::from_str(&body)
                .map_err(|e| Failure::new(format!("{status} body is not JSON ({e}): {body}")))
        }
    }
}

async fn auth_rejected(c: Ctx) -> Result<(), Failure> {
    let wrong = Credentials {
        api_key: "sk-wsv2-wrong-key".into(),
        headers: c.creds.headers.clone(),
    };
    let body = expect_rejected(&c.target.ws_url, &wrong, 401).await?;
    ensure!(
        body["error"]["message"].is_string(),
        "401 body has no error.message: {body}"
    );
    ensure!(
        body["error"].get("type").is_some(),
        "401 body has no error.type: {body}"
    );
    ensure!(
        !body.to_string().contains("sk-wsv2-wrong-key"),
        "401 body echoes the key"
    );
    Ok(())
}

async fn message_too_big(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    const PREFIX: &str = r#"{"type":"response.create","model":"m","instructions":""#;
    const SUFFIX: &str = r#""}"#;
    let filler = "x".repeat(OVERSIZED_FRAME - PREFIX.len() - SUFFIX.len());
    let frame = format!("{PREFIX}{filler}{SUFFIX}");
    ensure_eq!(frame.len(), OVERSIZED_FRAME, "test frame size");
    // The gateway may close while we are still writing; that write error is expected.
    let _ = ws.send_text(frame).await;
    let (_, close) = ws.read_until_closed().await?;
    ensure_eq!(close.code, Some(1009), "close code");
    Ok(())
}

async fn upgrade_426(c: Ctx) -> Result<(), Failure> {
    let body = expect_rejected(&c.target.ws_url, &c.creds, 426).await?;
    ensure!(
        body["error"]["message"].is_string(),
        "426 body has no error.message: {body}"
    );
    Ok(())
}
