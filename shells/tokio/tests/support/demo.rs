//! `wsv2-gateway demo` tells the truth: every fact it prints is checked against what it did
//! (issue 15). The README says the demo's two turns travel on one pooled upstream connection
//! and the mock sees one upgrade: a session that arrives while the warm dial is in flight takes
//! that conn instead of dialing a second.

use std::process::Command;

fn field<'a>(line: &'a str, after: &str) -> &'a str {
    let rest = &line[line
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in {line:?}"))
        + after.len()..];
    rest.split([' ', ',', ')', '"']).next().unwrap_or_default()
}

fn number(line: &str, name: &str) -> u64 {
    let i = line
        .find(&format!(" {name}"))
        .unwrap_or_else(|| panic!("{name} in {line:?}"));
    line[..i]
        .rsplit([' ', ',', '('])
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a number before {name} in {line:?}"))
}

#[test]
fn the_demo_prints_only_what_happened() {
    let output = Command::new(env!("CARGO_BIN_EXE_wsv2-gateway"))
        .arg("demo")
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let find = |prefix: &str| {
        lines
            .iter()
            .copied()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"))
    };

    // The gateway's URL and key, and the snippets that point at them
    let listening = find("wsv2 gateway listening on ");
    let url = field(listening, "listening on ");
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix("/v1/responses"))
        .unwrap_or_else(|| panic!("a ws://ADDR/v1/responses URL: {url}"));
    assert!(addr.parse::<std::net::SocketAddr>().is_ok(), "{addr}");
    assert!(
        listening.contains("(upstream: mock at ws://127.0.0.1:"),
        "{listening}"
    );
    let key = field(find("client key: "), "client key: ");
    assert_eq!(key, wsv2_core::file_config::DEMO_CLIENT_KEY);
    let base_url = format!("http://{addr}/v1");
    assert!(
        stdout.contains(&format!(
            "OpenAI(base_url=\"{base_url}\", api_key=\"{key}\")"
        )),
        "the openai-python snippet names this gateway: {stdout}"
    );
    assert!(
        stdout.contains(&format!("base_url = \"{base_url}\""))
            && stdout.contains(&format!("export WSV2_KEY={key}")),
        "the Codex snippet names this gateway and key: {stdout}"
    );

    // Two turns, chained, each with text and usage
    let mut ids = Vec::new();
    for n in 1..=2 {
        let i = lines
            .iter()
            .position(|l| l.starts_with(&format!("turn {n}: ")))
            .unwrap_or_else(|| panic!("turn {n} in {stdout}"));
        let id = field(lines[i], ": ");
        assert!(id.starts_with("resp_") && id.len() > 5, "{}", lines[i]);
        assert!(number(lines[i], "events") >= 3, "{}", lines[i]);
        let text = lines[i + 1]
            .trim()
            .strip_prefix("text: ")
            .expect("a text line");
        assert!(!text.is_empty(), "turn {n} streamed text");
        let usage: serde_json::Value = serde_json::from_str(
            lines[i + 2]
                .trim()
                .strip_prefix("usage: ")
                .expect("a usage line"),
        )
        .expect("usage is JSON");
        for k in ["input_tokens", "output_tokens", "total_tokens"] {
            assert!(usage[k].as_u64().is_some_and(|v| v > 0), "{k} in {usage}");
        }
        ids.push(id.to_owned());
    }
    assert_ne!(ids[0], ids[1], "two responses");

    // One pooled upstream connection for both turns, back in the pool at the end
    let pool = find("pool: ");
    let open = number(pool, "open");
    let dials = number(pool, "dials");
    assert_eq!(open, 1, "{pool}");
    assert_eq!(number(pool, "idle"), 1, "{pool}");
    assert_eq!(number(pool, "leased"), 0, "{pool}");
    assert_eq!(dials, 1, "one dial: the session took the warm conn: {pool}");
    assert!(number(pool, "reuses") <= 1, "{pool}");
    assert_eq!(number(pool, "closes"), 0, "{pool}");
    let upgrades = field(
        find("upstream upgrades seen by the mock: "),
        "seen by the mock: ",
    );
    assert_eq!(upgrades, "1", "the mock saw one upgrade: {stdout}");
}
