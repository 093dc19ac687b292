//! Reading one TOML table against a known list of keys, collecting every problem with its path.
//!
//! serde's derived `Deserialize` stops at the first error and names no path for most of them;
//! an operator fixing a file wants every unknown key and every bad value at once, each named
//! the way they would write it (`accounts[1].tokn`). So each value is read on its own here.

use toml::{Table, Value};

use super::ConfigIssue;

/// Collected problems, in the order they were found
pub(crate) type Issues = Vec<ConfigIssue>;

/// Records one problem
pub(crate) fn push(issues: &mut Issues, path: impl Into<String>, message: impl Into<String>) {
    issues.push(ConfigIssue {
        path: path.into(),
        message: message.into(),
    });
}

/// `parent.key`, or `key` at the top level
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The TOML type of a value, for "expected …, found …" messages (never the value itself: it
/// may be a credential)
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Reports every key of `table` not in `known`, with the nearest known key as a hint
pub(crate) fn unknown_keys(table: &Table, path: &str, known: &[&str], issues: &mut Issues) {
    let mut keys: Vec<&String> = table
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    keys.sort();
    for key in keys {
        push(issues, join(path, key), unknown_key_message(key, known));
    }
}

/// "unknown key", plus "did you mean `x`?" when a known key is a small edit away
pub(crate) fn unknown_key_message(key: &str, known: &[&str]) -> String {
    format!("unknown key{}", did_you_mean(key, known))
}

/// ` (did you mean `x`?)` naming the nearest known key, or nothing when none is close
pub(crate) fn did_you_mean(key: &str, known: &[&str]) -> String {
    let nearest = known
        .iter()
        .map(|k| (hint_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match nearest {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    }
}

/// How far `key` is from `known`: the edit distance, or (one worse) the distance to the start of
/// `known`, so a misspelt prefix such as `min_idel` still points at `min_idle_per_account`
fn hint_distance(key: &str, known: &str) -> usize {
    let full = edit_distance(key, known);
    if key.len() < 4 || key.len() >= known.len() {
        return full;
    }
    full.min(edit_distance(key, &known[..key.len()]) + 1)
}

/// Levenshtein distance over bytes (keys are ASCII)
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Typed reads of one table's values; each bad value becomes an issue and reads as `None`
pub(crate) struct Fields<'a> {
    table: &'a Table,
    path: String,
}

impl<'a> Fields<'a> {
    /// Reads `table`, found at `path`
    pub(crate) fn new(table: &'a Table, path: impl Into<String>) -> Self {
        Self {
            table,
            path: path.into(),
        }
    }

    /// The path of `key` in this table
    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether the key is present
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The value of `key` as `pick` reads it; a value of another type is reported as not
    /// `expected`
    fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        issues: &mut Issues,
        pick: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Option<T> {
        let value = self.table.get(key)?;
        let picked = pick(value);
        if picked.is_none() {
            let found = type_name(value);
            push(
                issues,
                self.path(key),
                format!("expected {expected}, found {found}"),
            );
        }
        picked
    }

    /// A string value
    pub(crate) fn string(&self, key: &str, issues: &mut Issues) -> Option<&'a str> {
        self.typed(key, "a string", issues, Value::as_str)
    }

    /// A non-empty string value
    pub(crate) fn non_empty_string(&self, key: &str, issues: &mut Issues) -> Option<&'a str> {
        let s = self.string(key, issues)?;
        if s.trim().is_empty() {
            push(issues, self.path(key), "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A boolean value
    pub(crate) fn bool(&self, key: &str, issues: &mut Issues) -> Option<bool> {
        self.typed(key, "true or false", issues, Value::as_bool)
    }

    /// An integer in `min..=max`
    pub(crate) fn integer(
        &self,
        key: &str,
        min: i64,
        max: i64,
        issues: &mut Issues,
    ) -> Option<i64> {
        let i = self.typed(key, "an integer", issues, Value::as_integer)?;
        if !(min..=max).contains(&i) {
            let message = format!("{i} is out of range (expected {min} to {max})");
            push(issues, self.path(key), message);
            return None;
        }
        Some(i)
    }

    /// A table value
    pub(crate) fn table(&self, key: &str, issues: &mut Issues) -> Option<&'a Table> {
        self.typed(key, "a table", issues, Value::as_table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("tokn", "token"), 1);
        assert_eq!(edit_distance("min_idel", "min_idle"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn unknown_keys_get_a_hint_only_when_close() {
        assert_eq!(
            unknown_key_message("tokn", &["token", "name"]),
            "unknown key (did you mean `token`?)"
        );
        assert_eq!(
            unknown_key_message("colour", &["token", "name"]),
            "unknown key"
        );
        assert_eq!(
            unknown_key_message(
                "min_idel",
                &["max_idle_per_account", "min_idle_per_account"]
            ),
            "unknown key (did you mean `min_idle_per_account`?)"
        );
    }
}
