//! The gateway's own keys: `[[client_keys]]` and `[[accounts]]`, with their cross-checks.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use toml::{Table, Value};

use super::reader::{Fields, Issues, push, type_name, unknown_keys};
use super::{
    AccountConfig, ClientKey, DEFAULT_AUTH_TYPE, DEFAULT_CONCURRENCY, DEFAULT_MAX_SOCKETS,
    ProxyUrl, Secret, UpstreamUrl,
};
use crate::AccountId;
use crate::resolver::AuthType;
use crate::turn::ModelMap;

/// Every key a `[[client_keys]]` entry may have
pub const CLIENT_KEY_KEYS: &[&str] = &["group", "key", "key_env", "max_sockets", "name"];

/// Every key an `[[accounts]]` entry may have
pub const ACCOUNT_KEYS: &[&str] = &[
    "auth_type",
    "base_url",
    "concurrency",
    "force_http",
    "id",
    "model_map",
    "name",
    "priority",
    "proxy",
    "token",
    "token_env",
];

/// How `key_env` / `token_env` names are looked up
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The entries of an array of tables at `key`, each with its path (`accounts[2]`); `missing`
/// is the issue when `key` is absent or an empty array (every such array is required)
fn entries<'a>(
    root: &'a Table,
    key: &str,
    missing: &str,
    issues: &mut Issues,
) -> Vec<(String, &'a Table)> {
    let Some(value) = root.get(key) else {
        push(issues, key, missing);
        return Vec::new();
    };
    let Value::Array(items) = value else {
        push(
            issues,
            key,
            format!(
                "expected an array of tables ([[{key}]]), found {}",
                type_name(value)
            ),
        );
        return Vec::new();
    };
    if items.is_empty() {
        push(issues, key, missing);
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{key}[{i}]");
        match item {
            Value::Table(t) => out.push((path, t)),
            other => push(
                issues,
                path,
                format!("expected a table, found {}", type_name(other)),
            ),
        }
    }
    out
}

/// A credential given inline (`inline`) or by the name of an environment variable (`env_key`);
/// exactly one of the two must be present. Surrounding whitespace is dropped (a variable filled
/// from a file often ends in a newline, and no header value may carry one).
fn secret(
    fields: &Fields<'_>,
    inline: &str,
    env_key: &str,
    env: EnvLookup<'_>,
    issues: &mut Issues,
) -> Option<(Secret, Option<String>)> {
    let (path, message) = match (fields.has(inline), fields.has(env_key)) {
        (true, true) => (
            env_key,
            format!("set either `{inline}` or `{env_key}`, not both"),
        ),
        (false, false) => (inline, format!("missing (set `{inline}` or `{env_key}`)")),
        (true, false) => {
            return fields
                .non_empty_string(inline, issues)
                .map(|s| (Secret::new(s.trim()), None));
        }
        (false, true) => {
            let name = fields.non_empty_string(env_key, issues)?;
            let problem = match env(name).as_deref().map(str::trim) {
                None => "is not set",
                Some("") => "is empty",
                Some(value) => return Some((Secret::new(value), Some(name.to_owned()))),
            };
            (env_key, format!("environment variable `{name}` {problem}"))
        }
    };
    push(issues, fields.path(path), message);
    None
}

/// Whether `value` is held by an earlier entry (the path of the first holder); if not, `path`
/// becomes its holder
fn first_holder<K: std::hash::Hash + Eq>(
    holders: &mut HashMap<K, String>,
    value: K,
    path: &str,
) -> Option<String> {
    match holders.entry(value) {
        Entry::Occupied(first) => Some(first.get().clone()),
        Entry::Vacant(slot) => {
            slot.insert(path.to_owned());
            None
        }
    }
}

/// Reads `[[client_keys]]`; keys without a group get `default_group`
pub(crate) fn read_client_keys(
    root: &Table,
    default_group: &str,
    env: EnvLookup<'_>,
    issues: &mut Issues,
) -> Vec<ClientKey> {
    let mut keys = Vec::new();
    // First path of each key value, to name duplicates without printing the key.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let listed = entries(
        root,
        "client_keys",
        "no client keys: every client would be refused with 401 (add a [[client_keys]] entry)",
        issues,
    );
    for (position, (path, table)) in listed.into_iter().enumerate() {
        let f = Fields::new(table, path.clone());
        unknown_keys(table, &path, CLIENT_KEY_KEYS, issues);
        let key = secret(&f, "key", "key_env", env, issues);
        let group = f.non_empty_string("group", issues).unwrap_or(default_group);
        let max_sockets = f
            .integer("max_sockets", 1, i64::from(u32::MAX), issues)
            .map_or(DEFAULT_MAX_SOCKETS, |n| n as u32);
        let name = match f.non_empty_string("name", issues) {
            None if f.has("name") => continue,
            None => format!("key-{}", position + 1),
            Some(name) if !is_label_safe(name) => {
                push(
                    issues,
                    f.path("name"),
                    "use at most 64 ASCII letters, digits, '.', '_' or '-' (it is a metric label)",
                );
                continue;
            }
            Some(name) => name.to_owned(),
        };
        if let Some(first) = first_holder(&mut names, name.clone(), &path) {
            push(issues, f.path("name"), format!("the same name as {first}"));
            continue;
        }
        let Some((key, key_env)) = key else { continue };
        let key_path = f.path(if key_env.is_some() { "key_env" } else { "key" });
        if let Some(first) = first_holder(&mut seen, key.expose().to_owned(), &path) {
            push(issues, key_path, format!("the same key as {first}"));
            continue;
        }
        keys.push(ClientKey {
            key,
            key_env,
            name,
            group: group.to_owned(),
            max_sockets,
        });
    }
    keys
}

/// Whether a client key's name can be a metric label as it is
fn is_label_safe(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Reads `[[accounts]]`
pub(crate) fn read_accounts(
    root: &Table,
    env: EnvLookup<'_>,
    issues: &mut Issues,
) -> Vec<AccountConfig> {
    let listed = entries(
        root,
        "accounts",
        "no accounts: add at least one [[accounts]] entry",
        issues,
    );
    let mut accounts = Vec::new();
    let mut ids: HashMap<i64, String> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for (path, table) in listed {
        unknown_keys(table, &path, ACCOUNT_KEYS, issues);
        let before = issues.len();
        let account = read_account(&Fields::new(table, path.clone()), env, issues);
        let valid = issues.len() == before;
        // Duplicates are checked on the raw values, so an entry with other problems still
        // counts as the first holder of its id and name.
        if let Some(id) = table.get("id").and_then(Value::as_integer)
            && let Some(first) = first_holder(&mut ids, id, &path)
        {
            let message = format!("duplicate id {id} (also {first})");
            push(issues, format!("{path}.id"), message);
        }
        if let Some(name) = table.get("name").and_then(Value::as_str)
            && let Some(first) = first_holder(&mut names, name.to_owned(), &path)
        {
            let message = format!("duplicate name {name:?} (also {first})");
            push(issues, format!("{path}.name"), message);
        }
        if let Some(account) = account.filter(|_| valid) {
            accounts.push(account);
        }
    }
    accounts
}

/// One account; `None` when a required value is missing or bad (already reported)
fn read_account(f: &Fields<'_>, env: EnvLookup<'_>, issues: &mut Issues) -> Option<AccountConfig> {
    let id = f.integer("id", 0, i64::MAX, issues);
    if !f.has("id") {
        push(
            issues,
            f.path("id"),
            "missing (every account needs a unique numeric id)",
        );
    }
    let name = f.non_empty_string("name", issues);
    if !f.has("name") {
        push(
            issues,
            f.path("name"),
            "missing (every account needs a unique name)",
        );
    }
    let auth_type = f
        .non_empty_string("auth_type", issues)
        .unwrap_or(DEFAULT_AUTH_TYPE);
    let token = secret(f, "token", "token_env", env, issues);
    let base_url = match f.string("base_url", issues) {
        None => Some(UpstreamUrl::default()),
        Some(text) => UpstreamUrl::parse(text)
            .map_err(|e| push(issues, f.path("base_url"), e))
            .ok(),
    };
    let concurrency = f
        .integer("concurrency", 1, i64::from(u32::MAX), issues)
        .map_or(DEFAULT_CONCURRENCY, |n| n as u32);
    let priority = f
        .integer("priority", i64::from(i32::MIN), i64::from(i32::MAX), issues)
        .map_or(0, |n| n as i32);
    let model_map = f
        .table("model_map", issues)
        .map(|t| read_model_map(t, &f.path("model_map"), issues));
    let proxy = f.string("proxy", issues).and_then(|text| {
        ProxyUrl::parse(text)
            .map_err(|e| push(issues, f.path("proxy"), e))
            .ok()
    });
    let force_http = f.bool("force_http", issues).unwrap_or(false);
    let (token, token_env) = token?;
    Some(AccountConfig {
        id: AccountId(u64::try_from(id?).ok()?),
        name: name?.to_owned(),
        auth_type: AuthType::parse(auth_type),
        token,
        token_env,
        base_url: base_url?,
        concurrency,
        priority,
        model_map: Arc::new(model_map.unwrap_or_default()),
        proxy,
        force_http,
    })
}

/// `model_map = { "client-name" = "upstream-name" }`
fn read_model_map(table: &Table, path: &str, issues: &mut Issues) -> ModelMap {
    let f = Fields::new(table, path);
    let mut pairs = Vec::with_capacity(table.len());
    for client in table.keys() {
        if let Some(upstream) = f.non_empty_string(client, issues) {
            pairs.push((client.clone(), upstream.to_owned()));
        }
    }
    ModelMap::new(pairs)
}
