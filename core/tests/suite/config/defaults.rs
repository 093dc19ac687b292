//! `docs/config.md` and `Config::default()` cannot drift apart.
//!
//! The documented tables (header `key | default | meaning`) are parsed and compared with
//! `Config::default()` serialized through serde and flattened to `section.field` → text. Every
//! documented key must exist with exactly that default, and every key of the code must be
//! documented. The prior art shipped a "fixed" default its own test never checked; this is the
//! check.

use std::collections::BTreeMap;

use serde_json::Value;
use wsv2_core::Config;
use wsv2_core::config::duration;

/// The documentation, compiled in so that editing it re-runs this test
const DOCS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"));

/// One row of a documented defaults table
#[derive(Debug, PartialEq)]
struct DocRow {
    /// 1-based line in the markdown, for error messages
    line: usize,
    /// `section.field`, without the backticks
    key: String,
    /// The default as written, without the backticks
    default: String,
}

/// Splits a markdown table line into its trimmed cells
fn cells(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

/// The text between the backticks of a cell that must be one code span
fn code_span(cell: &str, line: usize) -> Result<String, String> {
    let inner = cell
        .strip_prefix('`')
        .and_then(|rest| rest.strip_suffix('`'))
        .filter(|inner| !inner.is_empty() && !inner.contains('`'));
    inner
        .map(str::to_owned)
        .ok_or_else(|| format!("line {line}: {cell:?} must be one code span such as `30s`"))
}

/// Every row of every `key | default | meaning` table; other tables and text are skipped
fn documented_rows(markdown: &str) -> Result<Vec<DocRow>, String> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for (index, raw) in markdown.lines().enumerate() {
        let line = index + 1;
        if !raw.trim_start().starts_with('|') {
            in_table = false;
            continue;
        }
        let cells = cells(raw);
        if cells == ["key", "default", "meaning"] {
            in_table = true;
            continue;
        }
        let is_separator = cells
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'));
        if !in_table || is_separator {
            continue;
        }
        let [key, default, meaning] = cells[..] else {
            return Err(format!(
                "line {line}: expected 3 cells (key | default | meaning), found {}",
                cells.len()
            ));
        };
        if meaning.is_empty() {
            return Err(format!("line {line}: {key} has no meaning"));
        }
        rows.push(DocRow {
            line,
            key: code_span(key, line)?,
            default: code_span(default, line)?,
        });
    }
    Ok(rows)
}

/// How a serialized value is written in the docs: durations bare (`30s`), other strings quoted,
/// numbers and booleans plain
fn documented_form(value: &Value) -> String {
    match value {
        // A string that is a duration in canonical form is shown bare, like the brief's `30s`.
        Value::String(text)
            if duration::parse(text).map(duration::format).as_deref() == Ok(text) =>
        {
            text.clone()
        }
        other => other.to_string(),
    }
}

/// Flattens a serialized config to `section.field` → documented form
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&path, child, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), documented_form(leaf));
        }
    }
}

/// `Config::default()` as `section.field` → documented form
fn code_defaults() -> BTreeMap<String, String> {
    let value = serde_json::to_value(Config::default()).expect("Config serializes");
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    out
}

/// Every disagreement between a markdown text and the code defaults, one line each
fn drift(markdown: &str) -> Vec<String> {
    let rows = match documented_rows(markdown) {
        Ok(rows) => rows,
        Err(problem) => return vec![problem],
    };
    let code = code_defaults();
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for row in &rows {
        if let Some(first) = seen.insert(row.key.as_str(), row.line) {
            problems.push(format!(
                "line {}: {} is documented twice (first on line {first})",
                row.line, row.key
            ));
        }
        match code.get(&row.key) {
            None => problems.push(format!(
                "line {}: {} is documented but Config has no such key",
                row.line, row.key
            )),
            Some(actual) if *actual != row.default => problems.push(format!(
                "line {}: {} is documented as `{}` but Config::default() has `{actual}`",
                row.line, row.key, row.default
            )),
            Some(_) => {}
        }
    }
    for (key, default) in &code {
        if !seen.contains_key(key.as_str()) {
            problems.push(format!(
                "{key} (default `{default}`) is not documented in docs/config.md"
            ));
        }
    }
    problems
}

/// The problems an edited copy of the docs has beyond those of the real docs, so each probe below
/// tests its own edit even while the real docs are wrong
fn new_drift(edited: &str) -> Vec<String> {
    let existing = drift(DOCS);
    drift(edited)
        .into_iter()
        .filter(|problem| !existing.contains(problem))
        .collect()
}

#[test]
fn every_documented_default_matches_the_code_and_every_key_is_documented() {
    let problems = drift(DOCS);
    assert!(
        problems.is_empty(),
        "docs/config.md and Config::default() disagree:\n{}",
        problems.join("\n")
    );
    let rows = documented_rows(DOCS).expect("docs/config.md tables parse");
    assert_eq!(
        rows.len(),
        code_defaults().len(),
        "one documented row per key"
    );
}

#[test]
fn the_documented_forms_follow_serde() {
    let code = code_defaults();
    assert_eq!(code["upstream.max_age"], "55m");
    assert_eq!(code["pool.warm_cooldown"], "300ms");
    assert_eq!(code["store.response_binding_ttl"], "720h");
    assert_eq!(code["upstream.max_message_size"], "16777216");
    assert_eq!(code["protocol.force_http"], "false");
    assert_eq!(code["store.default_group"], "\"default\"");
}

#[test]
fn a_changed_default_is_caught() {
    let row = "| `upstream.ping_interval` | `30s` |";
    assert!(
        DOCS.contains(row),
        "the docs changed; update this test's probe row"
    );
    let problems = new_drift(&DOCS.replacen(row, "| `upstream.ping_interval` | `31s` |", 1));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("upstream.ping_interval is documented as `31s`"),
        "{problems:?}"
    );
    assert!(problems[0].contains("has `30s`"), "{problems:?}");
}

#[test]
fn a_string_default_must_be_quoted() {
    let row = "| `store.default_group` | `\"default\"` |";
    assert!(
        DOCS.contains(row),
        "the docs changed; update this test's probe row"
    );
    let problems = new_drift(&DOCS.replacen(row, "| `store.default_group` | `default` |", 1));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("store.default_group"), "{problems:?}");
}

#[test]
fn an_undocumented_key_is_caught() {
    let without: String = DOCS
        .lines()
        .filter(|line| !line.starts_with("| `pool.lane_reuse_limit`"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(without.len(), DOCS.len(), "the probe row exists");
    assert_eq!(
        new_drift(&without),
        ["pool.lane_reuse_limit (default `16`) is not documented in docs/config.md"]
    );
}

#[test]
fn a_documented_key_the_code_lacks_is_caught() {
    let extra = format!(
        "{DOCS}\n| key | default | meaning |\n|---|---|---|\n| `pool.max_pools` | `3` | Invented. |\n"
    );
    let problems = new_drift(&extra);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].ends_with("pool.max_pools is documented but Config has no such key"),
        "{problems:?}"
    );
}

#[test]
fn a_duplicated_row_is_caught() {
    let extra = format!(
        "{DOCS}\n| key | default | meaning |\n|---|---|---|\n| `pool.ping_tick` | `30s` | Again. |\n"
    );
    let problems = new_drift(&extra);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("pool.ping_tick is documented twice"),
        "{problems:?}"
    );
}

#[test]
fn the_table_parser_reads_only_defaults_tables() {
    let markdown = "\
| unit | meaning |
|---|---|
| `ms` | milliseconds |

| key | default | meaning |
|:--|--:|---|
| `a.b` | `1s` | One. |
| `a.c` | `\"x\"` | Two. |

text ends the table
| `a.d` | `2` | Outside any defaults table. |
";
    let rows = documented_rows(markdown).expect("parses");
    assert_eq!(
        rows,
        [
            DocRow {
                line: 7,
                key: "a.b".to_owned(),
                default: "1s".to_owned()
            },
            DocRow {
                line: 8,
                key: "a.c".to_owned(),
                default: "\"x\"".to_owned()
            },
        ]
    );
    let bad =
        "| key | default | meaning |\n|---|---|---|\n| a.b | `1s` | No backticks on the key. |\n";
    assert!(documented_rows(bad).unwrap_err().contains("line 3"));
    let empty = "| key | default | meaning |\n|---|---|---|\n| `a.b` | `1s` | |\n";
    assert!(
        documented_rows(empty)
            .unwrap_err()
            .contains("has no meaning")
    );
}
