//! Label values clients choose stay a bounded, sanitized set: a flood of made-up model names
//! (WebSocket and POST) leaves `/metrics` with the `model_map` keys, the few names clients use
//! most, and `other` (issue 13 item 8).
//!
//! `WSV2_LABEL_TURNS` (default 400) sets how many distinct names the flood sends; the test prints
//! the size of `/metrics` before and after it.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use wsv2_core::turn::ModelMap;

use crate::support::Shell;
use crate::support::common::{Setup, fence};
use crate::support::http::{base, body, post, scrape};

shell_tests! {
    client_chosen_model_names_stay_a_bounded_sanitized_set,
}

/// The `model` label of every `wsv2_tokens_total` series
fn model_labels(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("wsv2_tokens_total{"))
        .filter_map(|l| l.split("model=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

async fn client_chosen_model_names_stay_a_bounded_sanitized_set(shell: Shell) {
    let flood: usize = std::env::var("WSV2_LABEL_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let setup = Setup::new(shell, |c| {
        c.accounts[0].model_map = Arc::new(ModelMap::new([(
            "team-model".to_owned(),
            "gpt-5".to_owned(),
        )]));
        c.core.telemetry.max_model_labels = 2;
        c.core.telemetry.model_label_min_responses = 3;
    })
    .await;
    let before = scrape(setup.gateway.admin_addr.expect("admin listener"))
        .await
        .len();

    let turn = |model: String| json!({"type": "response.create", "model": model, "input": "hi"});
    let mut client = setup.client().await;
    // Two names clients use take the two places; a third comes too late; the configured one is
    // its own label from its first response.
    for model in [
        "gpt-5",
        "gpt-5",
        "gpt-5",
        "o3",
        "o3",
        "o3",
        "o4",
        "o4",
        "o4",
        "team-model",
    ] {
        client.send_json(&turn(model.to_owned())).await.unwrap();
        let done = client.read_turn().await.unwrap();
        assert_eq!(done.last_type(), "response.completed", "{model}");
    }
    // Names no exporter should ever print, and the flood, on 8 sockets at once.
    let hostile = [
        "bad\0model",
        "line\u{2028}sep",
        "quote\"back\\slash\nnew",
        "ünïcode",
    ];
    let mut tasks = Vec::new();
    for socket in 0..8 {
        let mut client = setup.client().await;
        let names: Vec<String> = (0..flood)
            .filter(|i| i % 8 == socket)
            .map(|i| format!("made-up-{i}"))
            .chain(hostile.iter().map(|h| format!("{h}{socket}")))
            .collect();
        tasks.push(tokio::spawn(async move {
            for model in names {
                client.send_json(&turn(model)).await.unwrap();
                let _ = client.read_turn().await.unwrap();
            }
            fence(&mut client).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    fence(&mut client).await;
    // POST turns take the same path to their label.
    for i in 0..20 {
        let (status, _) = post(
            &base(setup.gateway.addr),
            &body("hi", json!({"model": format!("posted-{i}")})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let text = scrape(setup.gateway.admin_addr.expect("admin listener")).await;
    eprintln!(
        "{shell}: /metrics {before} bytes before, {} bytes after {} distinct client model names",
        text.len(),
        flood + 8 * hostile.len() + 20 + 4
    );
    let labels = model_labels(&text);
    let expected: BTreeSet<String> = ["gpt-5", "o3", "other", "team-model"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(labels, expected, "{text}");
    for forbidden in ['\0', '\u{2028}'] {
        assert!(!text.contains(forbidden), "{forbidden:?} in /metrics");
    }
    assert!(
        text.len() < before + 16 * 1024,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
}
