//! The configuration file: any text is either a configuration or a list of issues, never a
//! panic; and no credential (a `token`, `key`, `redis_url` or proxy password, whether written
//! in the file or read from the environment) appears in an issue or in the `Debug` output of
//! the configuration.
//!
//! Leaks are found by planting: every credential of the parsed table is replaced by a unique
//! marker before the configuration is read, so a marker in the output can only have been
//! copied there from a credential (a credential that merely equals some word of a message
//! would not prove anything).

use toml::{Table, Value};
use wsv2_core::file_config::{GatewayConfig, parse_table};

/// Starts every planted credential; no message of the gateway contains it
const MARKER: &str = "PLANTED-credential-";

pub(crate) fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The text as it is: no panic, whatever it holds.
    let env = |name: &str| (name != "UNSET").then(|| format!("{MARKER}env"));
    let plain = GatewayConfig::from_toml_str(text, &env);
    if text.contains(MARKER) {
        return;
    }
    assert_no_marker(&plain);
    // The same table with every credential planted.
    let Ok(mut table) = parse_table(text) else {
        return;
    };
    let mut planted = 0;
    plant_table(&mut table, &mut planted);
    assert_no_marker(&GatewayConfig::from_table(&table, &env));
}

fn assert_no_marker(result: &Result<GatewayConfig, Vec<wsv2_core::file_config::ConfigIssue>>) {
    let shown = match result {
        Ok(config) => format!("{config:?}"),
        Err(issues) => issues
            .iter()
            .map(|i| format!("{}: {}\n", i.path, i.message))
            .collect(),
    };
    assert!(
        !shown.contains(MARKER),
        "a credential shows in the configuration's output: {shown}"
    );
}

fn plant_table(table: &mut Table, planted: &mut usize) {
    for (key, value) in table.iter_mut() {
        plant_value(key, value, planted);
    }
}

fn plant_value(key: &str, value: &mut Value, planted: &mut usize) {
    match value {
        Value::String(s) if matches!(key, "token" | "key") => {
            *s = format!("{MARKER}{planted}");
            *planted += 1;
        }
        Value::String(s) if key == "redis_url" => {
            // Keep the scheme (so the URL is still read) and plant the password.
            *s = format!("redis://:{MARKER}{planted}@127.0.0.1:6379");
            *planted += 1;
        }
        Value::String(s) if key == "proxy" => {
            // scheme://user:password@host:port: plant the password, keep the rest.
            if let Some((scheme, rest)) = s.split_once("://")
                && let Some((userinfo, host)) = rest.rsplit_once('@')
            {
                let user = userinfo.split(':').next().unwrap_or_default();
                *s = format!("{scheme}://{user}:{MARKER}{planted}@{host}");
                *planted += 1;
            }
        }
        Value::Table(t) => plant_table(t, planted),
        Value::Array(items) => {
            for item in items {
                plant_value(key, item, planted);
            }
        }
        _ => {}
    }
}
