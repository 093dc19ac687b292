//! The official `openai` Python SDK over HTTP through the gateway: `responses.create` streamed
//! and not, a chained `store=False` turn, and two interleaved `store=False` chains from two
//! clients on a reused pool. Uses the venv `tests/clients/setup.sh` creates; skips with a
//! printed reason only when it is absent and `WSV2_REQUIRE_CLIENTS` is unset.

use std::path::PathBuf;

use serde_json::Value;
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::{MockConfig, Record};

use crate::support::Shell;

shell_tests! {
    the_openai_python_sdk_streams_answers_and_chains_store_false_over_http,
}

const UPSTREAM_KEY: &str = "sk-upstream-test";

const SCRIPT: &str = r#"
import json, os
from openai import OpenAI

def client():
    return OpenAI(base_url=os.environ["GW_BASE"], api_key=os.environ["GW_KEY"], max_retries=0)

c = client()
stream = c.responses.create(model="gpt-5", input="hello", stream=True)
types = [event.type for event in stream]
assert types[0] == "response.created", types
assert types[-1] == "response.completed", types

first = c.responses.create(model="gpt-5", input="hi", store=False)
assert first.status == "completed", first
second = c.responses.create(model="gpt-5", input="again", store=False, previous_response_id=first.id)
assert second.status == "completed" and second.id != first.id, second

# Two clients, two store=False chains, turns interleaved on the same pool.
a, b = client(), client()
ra = a.responses.create(model="gpt-5", input="a1", store=False)
rb = b.responses.create(model="gpt-5", input="b1", store=False)
chains = {"a": [ra.id], "b": [rb.id]}
for turn in range(2, 4):
    ra = a.responses.create(model="gpt-5", input=f"a{turn}", store=False, previous_response_id=ra.id)
    rb = b.responses.create(model="gpt-5", input=f"b{turn}", store=False, previous_response_id=rb.id)
    assert ra.status == "completed" and rb.status == "completed"
    chains["a"].append(ra.id)
    chains["b"].append(rb.id)

print(json.dumps({"stream_events": len(types), "first": first.id, "second": second.id, "chains": chains}))
"#;

fn venv_python() -> PathBuf {
    wsv2_tests::real_clients::clients_dir().join(".venv/bin/python")
}

async fn the_openai_python_sdk_streams_answers_and_chains_store_false_over_http(shell: Shell) {
    let python = venv_python();
    if !python.exists() {
        assert!(
            std::env::var_os("WSV2_REQUIRE_CLIENTS").is_none(),
            "WSV2_REQUIRE_CLIENTS is set but {} is missing",
            python.display()
        );
        println!(
            "skipped: {} is absent (run tests/clients/setup.sh)",
            python.display()
        );
        return;
    }
    let mock = wsv2_mock::start(MockConfig {
        api_key: UPSTREAM_KEY.into(),
        ..MockConfig::default()
    })
    .await
    .expect("mock");
    let mut c = GatewayConfig::demo(&mock.ws_url(), UPSTREAM_KEY).expect("config");
    c.listen = "127.0.0.1:0".parse().expect("addr");
    let gw = shell.start(c).await.expect("gateway");
    let output = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .env("GW_BASE", crate::support::http::base(gw.addr))
        .env("GW_KEY", crate::support::http::CLIENT_KEY)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), output)
        .await
        .expect("the SDK script finishes")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SDK script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("report JSON");
    assert!(
        report["stream_events"].as_u64().unwrap_or(0) >= 3,
        "{report}"
    );
    let records = mock.records();
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::Http { method, .. } if method == "POST")),
        "0 POSTs upstream: every turn ran on a pooled WebSocket"
    );
    // Each chained create went upstream with its previous id, on the conn that ran it.
    let creates: Vec<(u64, Value)> = records
        .into_iter()
        .filter_map(|r| match r {
            Record::Frame { conn, frame } => Some((conn, frame)),
            _ => None,
        })
        .collect();
    assert_eq!(creates.len(), 1 + 2 + 6, "{creates:?}");
    let second = creates
        .iter()
        .find(|(_, f)| f["previous_response_id"] == report["first"])
        .expect("the chained create carries previous_response_id");
    assert_eq!(second.1["store"], false);
    for chain in ["a", "b"] {
        let ids = report["chains"][chain].as_array().expect("chain ids");
        for pair in ids.windows(2) {
            assert!(
                creates
                    .iter()
                    .any(|(_, f)| f["previous_response_id"] == pair[0]),
                "chain {chain}: {} continued upstream",
                pair[0]
            );
        }
    }
}
