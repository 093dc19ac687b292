//! `WSV2_*` environment variables that override values of the file.
//!
//! | variable                     | overrides                         |
//! |------------------------------|-----------------------------------|
//! | `WSV2_LISTEN`                | `listen`                          |
//! | `WSV2_REDIS_URL`             | `redis_url`                       |
//! | `WSV2_METRICS`               | `metrics`                         |
//! | `WSV2_TLS_CA_FILE`           | `tls_ca_file`                     |
//! | `WSV2_<SECTION>__<KEY>`      | `[section] key`, e.g. `WSV2_POOL__MIN_IDLE_PER_ACCOUNT=0` |
//!
//! Names are matched case-insensitively after the prefix. A key whose value is text
//! (`listen`, durations such as `"250ms"`, `default_group`) takes the variable verbatim; any other
//! key parses it as a TOML scalar (`0`, `true`), falling back to the text so a bad value is
//! reported against the key it was meant for. An empty value removes the key, so it takes its
//! default (`WSV2_REDIS_URL=` switches a file's Redis state back to memory).
//!
//! `client_keys` and `accounts` are arrays and cannot be set this way; their credentials come
//! from the environment through `key_env` / `token_env`. A variable the file names as a
//! `key_env` / `token_env` is a credential, never an override (operators call them
//! `WSV2_OPENAI_KEY`), and so are the shell's own variables in [`SHELL_ENV_VARS`]. Every other
//! `WSV2_` name that sets nothing is a **warning**, never a refusal: a variable meant for another
//! tool (or exported by a tutorial) must not stop the gateway, and the warning still names the
//! nearest setting so a typo is found.

use std::str::FromStr;

use toml::{Table, Value};

use super::core_sections::{schema, section_keys, section_names};
use super::reader::{Issues, did_you_mean, push};
use super::{ConfigIssue, TOP_LEVEL_SCALARS};

/// The prefix of every override
pub const ENV_PREFIX: &str = "WSV2_";

/// `WSV2_` variables the shells read themselves (command-line flags with environment
/// fallbacks); [`apply_env_overrides`] skips them instead of calling them unknown
pub const SHELL_ENV_VARS: &[&str] = &[
    "WSV2_CONFIG",
    "WSV2_LOG",
    "WSV2_LOG_FORMAT",
    "WSV2_PID_FILE",
];

/// Applies every `WSV2_*` variable of `env_vars` to `root` (the parsed file); other variables
/// are ignored, and so are the shell's own ([`SHELL_ENV_VARS`]) and every variable `root` names
/// as a `client_keys[].key_env` or `accounts[].token_env`. Returns one **warning** per variable
/// that sets nothing (the path is the variable's name): such a variable changes nothing and
/// stops nothing. A bad *value* of a known key is not caught here: it is reported against that
/// key by [`GatewayConfig::from_table`](super::GatewayConfig::from_table), which runs next.
pub fn apply_env_overrides(
    root: &mut Table,
    env_vars: impl Iterator<Item = (String, String)>,
) -> Vec<ConfigIssue> {
    let schema = schema();
    let credentials = credential_variables(root);
    let mut vars: Vec<(String, String)> = env_vars
        .filter(|(name, _)| {
            name.starts_with(ENV_PREFIX)
                && !SHELL_ENV_VARS.contains(&name.as_str())
                && !credentials.contains(name)
        })
        .collect();
    // Deterministic order of issues whatever order the process environment has.
    vars.sort();
    let mut issues = Issues::new();
    for (name, raw) in vars {
        let rest = name[ENV_PREFIX.len()..].to_ascii_lowercase();
        if let Err(warning) = apply_one(root, &schema, &rest, &raw) {
            push(&mut issues, name, warning);
        }
    }
    issues
}

/// Sets the value the variable whose name after the prefix is `rest` (lowercase) stands for;
/// the warning when it stands for none
fn apply_one(root: &mut Table, schema: &Table, rest: &str, raw: &str) -> Result<(), String> {
    let split = rest.split_once("__");
    if matches!(
        split.map_or(rest, |(head, _)| head),
        "client_keys" | "accounts"
    ) {
        return Err(ARRAY_MESSAGE.to_owned());
    }
    let Some((section, key)) = split else {
        let Some(&(key, is_text)) = TOP_LEVEL_SCALARS.iter().find(|(k, _)| *k == rest) else {
            let known: Vec<&str> = TOP_LEVEL_SCALARS.iter().map(|(k, _)| *k).collect();
            let hint = did_you_mean(rest, &known);
            return Err(format!("no such setting `{rest}`{hint}"));
        };
        set(root, key, raw, is_text);
        return Ok(());
    };
    let sections = section_names(schema);
    if !sections.contains(&section) {
        let hint = did_you_mean(section, &sections);
        return Err(format!("no such section `{section}`{hint}"));
    }
    let keys = section_keys(schema, section);
    if !keys.contains(&key) {
        let hint = did_you_mean(key, &keys);
        return Err(format!("no such key `{section}.{key}`{hint}"));
    }
    let is_text = matches!(&schema[section][key], Value::String(_));
    let entry = root
        .entry(section.to_owned())
        .or_insert_with(|| Value::Table(Table::new()));
    let Value::Table(table) = entry else {
        return Err(format!("`{section}` in the file is not a table"));
    };
    set(table, key, raw, is_text);
    Ok(())
}

/// The variables `root` reads credentials from: every `client_keys[].key_env` and
/// `accounts[].token_env` (exact names, as the lookup uses them)
fn credential_variables(root: &Table) -> Vec<String> {
    [("client_keys", "key_env"), ("accounts", "token_env")]
        .iter()
        .filter_map(|(array, key)| Some((root.get(*array)?.as_array()?, *key)))
        .flat_map(|(entries, key)| {
            entries
                .iter()
                .filter_map(move |entry| entry.get(key)?.as_str().map(str::to_owned))
        })
        .collect()
}

/// The warning for a variable naming an array of tables
const ARRAY_MESSAGE: &str = "accounts and client_keys cannot be set from the environment; use token_env / key_env in the file";

/// Sets (or, for an empty value, removes) `key` in `table`
fn set(table: &mut Table, key: &str, raw: &str, is_text: bool) {
    if raw.is_empty() {
        table.remove(key);
        return;
    }
    table.insert(key.to_owned(), env_value(raw, is_text));
}

/// The TOML value of an environment variable for a key of the given kind
fn env_value(raw: &str, is_text: bool) -> Value {
    if is_text {
        return Value::String(raw.to_owned());
    }
    match Value::from_str(raw) {
        Ok(v @ (Value::Integer(_) | Value::Float(_) | Value::Boolean(_))) => v,
        _ => Value::String(raw.to_owned()),
    }
}
