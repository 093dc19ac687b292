//! The core's sections (`[upstream]`, `[session]`, `[pool]`, `[scheduler]`, `[store]`,
//! `[protocol]`, `[ingress]`), read key by key so every unknown key and bad value is reported.
//!
//! The known keys and their types come from serializing [`Config::default()`], so this file
//! never repeats the core's schema: a key added to `core/src/config.rs` is known here at once.

use serde::Deserialize;
use toml::{Table, Value};

use super::reader::{Issues, join, push, type_name, unknown_key_message};
use crate::Config;

/// `Config::default()` as a TOML table: section name → key → default value
pub(crate) fn schema() -> Table {
    Table::try_from(Config::default())
        .unwrap_or_else(|e| unreachable!("the default config serializes: {e}"))
}

/// The section names, sorted
pub(crate) fn section_names(schema: &Table) -> Vec<&str> {
    let mut names: Vec<&str> = schema.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

/// The known keys of one section, sorted
pub(crate) fn section_keys<'a>(schema: &'a Table, section: &str) -> Vec<&'a str> {
    let mut keys: Vec<&str> = match schema.get(section) {
        Some(Value::Table(t)) => t.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    keys.sort_unstable();
    keys
}

/// Reads the core sections of `root`; keys with problems are reported and left at their default
pub(crate) fn read(root: &Table, issues: &mut Issues) -> Config {
    let schema = schema();
    let mut accepted = Table::new();
    for section in section_names(&schema) {
        let Some(value) = root.get(section) else {
            continue;
        };
        let Value::Table(user) = value else {
            push(
                issues,
                section,
                format!("expected a table ([{section}]), found {}", type_name(value)),
            );
            continue;
        };
        let known = section_keys(&schema, section);
        let mut keys: Vec<&String> = user.keys().collect();
        keys.sort();
        let mut good = Table::new();
        for key in keys {
            let path = join(section, key);
            if !known.contains(&key.as_str()) {
                push(issues, path, unknown_key_message(key, &known));
                continue;
            }
            // Deserialize this one key on its own, so its error is its own.
            let probe = Table::from_iter([(key.clone(), user[key].clone())]);
            let probe_root = Table::from_iter([(section.to_owned(), Value::Table(probe))]);
            match Config::deserialize(probe_root) {
                Ok(_) => {
                    good.insert(key.clone(), user[key].clone());
                }
                Err(e) => push(issues, path, e.message().to_owned()),
            }
        }
        accepted.insert(section.to_owned(), Value::Table(good));
    }
    let config = match Config::deserialize(accepted) {
        Ok(config) => config,
        Err(e) => {
            // Each key deserialized alone; together they cannot fail, but never hide it.
            push(issues, "core", e.message().to_owned());
            Config::default()
        }
    };
    issues.extend(config.validate());
    config
}
