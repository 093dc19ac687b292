//! The configuration file: any text is either a configuration or a list of issues, never a
//! panic; and no credential (a `token`, `key`, `redis_url` or proxy password, whether written
//! in the file or read from the environment) appears in an issue or in the `Debug` output of
//! the configuration.

use toml::{Table, Value};
use wsv2_core::file_config::{GatewayConfig, parse_table};

/// What every `*_env` variable holds
const ENV_SECRET: &str = "sk-env-PLANTED-credential";

pub(crate) fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name != "UNSET").then(|| ENV_SECRET.to_owned());
    let result = GatewayConfig::from_toml_str(text, &env);
    let shown = match &result {
        Ok(config) => format!("{config:?}"),
        Err(issues) => issues
            .iter()
            .map(|i| format!("{}: {}\n", i.path, i.message))
            .collect(),
    };
    let mut secrets = Vec::new();
    let mut plain = String::new();
    if !text.contains(ENV_SECRET) {
        secrets.push(ENV_SECRET.to_owned());
    }
    if let Ok(table) = parse_table(text) {
        collect(&table, &mut secrets, &mut plain);
    }
    for secret in secrets {
        // A value also written where it is no secret (a name, a key) may show up legitimately.
        if secret.len() >= 6 && !plain.contains(&secret) {
            assert!(
                !shown.contains(&secret),
                "a credential shows in the configuration's output: {shown}"
            );
        }
    }
}

/// Splits every string of the table into credentials (values of `token`, `key`, `redis_url`,
/// and the password of a `proxy` URL) and plain text (keys and every other value)
fn collect(table: &Table, secrets: &mut Vec<String>, plain: &mut String) {
    for (key, value) in table {
        plain.push_str(key);
        plain.push('\n');
        collect_value(key, value, secrets, plain);
    }
}

fn collect_value(key: &str, value: &Value, secrets: &mut Vec<String>, plain: &mut String) {
    match value {
        Value::String(s) if matches!(key, "token" | "key" | "redis_url") => secrets.push(s.clone()),
        Value::String(s) if key == "proxy" => {
            // scheme://user:password@host:port
            let password = s
                .split_once("://")
                .and_then(|(_, rest)| rest.rsplit_once('@'))
                .and_then(|(userinfo, _)| userinfo.split_once(':'))
                .map(|(_, pass)| pass.to_owned());
            if let Some(password) = password {
                secrets.push(password);
            }
            plain.push_str(s.split('@').next_back().unwrap_or_default());
            plain.push('\n');
        }
        Value::String(s) => {
            plain.push_str(s);
            plain.push('\n');
        }
        Value::Table(t) => collect(t, secrets, plain),
        Value::Array(items) => {
            for item in items {
                collect_value(key, item, secrets, plain);
            }
        }
        other => {
            plain.push_str(&other.to_string());
            plain.push('\n');
        }
    }
}
