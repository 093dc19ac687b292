//! Planted secrets and the forms they could leak in: a test puts each [`Secret`] where the gateway
//! handles it (a credential, a prompt, a proxy password), then [`find_leaks`] searches any text
//! the gateway wrote — log lines today, exported spans or metric labels tomorrow — for every
//! form of every secret.
//!
//! Forms: the text as is; JSON-escaped and Rust-`Debug`-escaped (a string field, a `{:?}`);
//! lower- and upper-case hex (tungstenite prints frame payloads so); the decimal byte list of a
//! `Vec<u8>`'s `Debug`; and standard and URL-safe base64 at each of the three offsets a secret
//! can sit at inside a longer encoded text (`Proxy-Authorization: Basic base64(user:password)`).

use std::fmt;

/// A value that must never appear in what the gateway writes
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// What it is, for the failure message (`"upstream token"`)
    pub what: &'static str,
    /// Its text
    pub text: String,
}

impl Secret {
    /// A secret named `what`
    pub fn new(what: &'static str, text: impl Into<String>) -> Self {
        Self {
            what,
            text: text.into(),
        }
    }

    /// Every form of it to search for, each named
    pub fn forms(&self) -> Vec<(&'static str, String)> {
        let bytes = self.text.as_bytes();
        let json = serde_json::to_string(&self.text).expect("a string serializes");
        let mut forms = vec![
            ("plain", self.text.clone()),
            ("json-escaped", json[1..json.len() - 1].to_owned()),
            (
                "debug-escaped",
                format!("{:?}", self.text).trim_matches('"').to_owned(),
            ),
            ("hex", hex(bytes, false)),
            ("HEX", hex(bytes, true)),
            (
                "byte list",
                format!("{bytes:?}").trim_matches(['[', ']']).to_owned(),
            ),
        ];
        for (name, alphabet) in [("base64", STANDARD), ("base64url", URL_SAFE)] {
            for offset in 0..3 {
                forms.push((name, base64_core(bytes, offset, alphabet)));
            }
        }
        forms.retain(|(_, form)| form.len() >= 8);
        forms.sort_by(|a, b| a.1.cmp(&b.1));
        forms.dedup_by(|a, b| a.1 == b.1);
        forms
    }
}

/// One form of one secret found in a text
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// The secret's name
    pub what: &'static str,
    /// The form it was found in
    pub form: &'static str,
    /// The line it was found on (trimmed to 300 characters)
    pub line: String,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) in: {}", self.what, self.form, self.line)
    }
}

/// Every form of every secret found in `text`, per line; ANSI colour codes are removed first
/// (so a colour switch inside a secret cannot hide it)
pub fn find_leaks(text: &str, secrets: &[Secret]) -> Vec<Leak> {
    let plain = strip_ansi(text);
    let forms: Vec<(&'static str, &'static str, String)> = secrets
        .iter()
        .flat_map(|s| s.forms().into_iter().map(move |(f, t)| (s.what, f, t)))
        .collect();
    let mut leaks = Vec::new();
    for line in plain.lines() {
        for (what, form, needle) in &forms {
            if line.contains(needle.as_str()) {
                leaks.push(Leak {
                    what,
                    form,
                    line: line.chars().take(300).collect(),
                });
            }
        }
    }
    leaks
}

/// `text` without ANSI escape sequences (`ESC [ … letter`)
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend only on `bytes` when they sit `offset` (0..3) bytes past a
/// 3-byte boundary of a longer encoded text (characters that share bits with a neighbour are
/// left out)
fn base64_core(bytes: &[u8], offset: usize, alphabet: &[u8; 64]) -> String {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(bytes);
    let bit_at = |i: usize| (padded[i / 8] >> (7 - i % 8)) & 1;
    (0..)
        .map(|k| 6 * k)
        .take_while(|start| start + 6 <= padded.len() * 8)
        .filter(|start| *start >= offset * 8)
        .map(|start| {
            let index = (start..start + 6).fold(0usize, |v, i| v << 1 | usize::from(bit_at(i)));
            char::from(alphabet[index])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain base64 encoder with padding, as a proxy client writes it
    fn encode(bytes: &[u8]) -> String {
        let mut padded = bytes.to_vec();
        let pad = (3 - bytes.len() % 3) % 3;
        padded.extend(std::iter::repeat_n(0, pad));
        let mut text = base64_core(&padded, 0, STANDARD);
        text.truncate(text.len() - pad);
        text + &"=".repeat(pad)
    }

    #[test]
    fn base64_encoder_matches_reference_vectors() {
        assert_eq!(encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(encode(b"Ma"), "TWE=");
        assert_eq!(encode(b"M"), "TQ==");
    }

    #[test]
    fn base64_forms_are_found_inside_longer_encodings_at_every_offset() {
        let secret = Secret::new("password", "hunter2-planted");
        for prefix in ["", "u:", "ab:", "user:", "longer-user:"] {
            let whole = format!("{prefix}{}!tail", secret.text);
            let line = format!("Proxy-Authorization: Basic {}", encode(whole.as_bytes()));
            assert!(
                !find_leaks(&line, std::slice::from_ref(&secret)).is_empty(),
                "{prefix:?}: {line}"
            );
        }
        assert!(find_leaks("Basic dXNlcjpvdGhlcg==", &[secret]).is_empty());
    }

    #[test]
    fn escaped_hex_and_byte_list_forms_are_found() {
        let secret = Secret::new("prompt", "say \"hi\" PLANTED");
        let json = serde_json::json!({ "input": secret.text }).to_string();
        let hexed = hex(secret.text.as_bytes(), false);
        let listed = format!("{:?}", secret.text.as_bytes());
        for text in [json, format!("payload: 0x{hexed}"), listed] {
            let leaks = find_leaks(&text, std::slice::from_ref(&secret));
            assert!(!leaks.is_empty(), "{text}");
        }
        let colored = "\u{1b}[2mauthorization\u{1b}[0m: say \"hi\" PLA\u{1b}[1mNTED";
        assert!(!find_leaks(colored, &[secret]).is_empty());
    }
}
