//! Store keys: `wsv2:resp:{hash}` and `wsv2:{group}:sess:{hash}`.
//!
//! Ids are hashed with a stable 128-bit FNV-1a, so every gateway process renders the same key
//! for the same id (no per-process `RandomState`), and no client text ever reaches the key
//! syntax of the store. Group names come from operator config; a name outside
//! `[A-Za-z0-9_.-]{1,64}` is rendered as `~` + its hash so it cannot break the key either.
//!
//! A response key names no group: a response id is unique across groups, and its binding
//! records the group that created it, so a continuation from another group finds the record
//! and is refused (with the group in the key it would find nothing, as for an expired binding).
//! A session key is a client's own text, so it is scoped by group.

use std::fmt;

/// The stable 128-bit FNV-1a hash of `bytes` (same value in every process and on every host)
pub fn stable_hash(bytes: &[u8]) -> u128 {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u128::from(byte)).wrapping_mul(PRIME)
    })
}

/// A rendered store key; also the key of the gateway's local maps
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(String);

impl StoreKey {
    /// The key of the binding of response `id` (upstream text), whatever the group
    pub fn response(id: &[u8]) -> Self {
        let mut key = String::with_capacity(10 + 32);
        key.push_str("wsv2:resp:");
        push_hex(&mut key, stable_hash(id));
        Self(key)
    }

    /// The key of the binding of session key `session` (client text) in `group`
    pub fn session(group: &str, session: &[u8]) -> Self {
        let mut key = String::with_capacity(5 + group.len().min(64) + 6 + 32);
        key.push_str("wsv2:");
        push_group(&mut key, group);
        key.push_str(":sess:");
        push_hex(&mut key, stable_hash(session));
        Self(key)
    }

    /// The key the breaker's probe reads (outside every group's namespace)
    pub fn probe() -> Self {
        Self("wsv2:probe".to_owned())
    }

    /// The key as the store sees it
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `group` may appear in a key as it is
pub fn is_plain_group(group: &str) -> bool {
    !group.is_empty()
        && group.len() <= 64
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `group` as keys and binding values write it: the name itself, or `~` + its hash
pub fn group_segment(group: &str) -> String {
    let mut segment = String::new();
    push_group(&mut segment, group);
    segment
}

fn push_group(key: &mut String, group: &str) {
    if is_plain_group(group) {
        key.push_str(group);
    } else {
        // `~` never occurs in a plain group, so a hashed name cannot collide with one.
        key.push('~');
        push_hex(key, stable_hash(group.as_bytes()));
    }
}

fn push_hex(key: &mut String, value: u128) {
    use fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(key, "{value:032x}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_128_matches_reference_vectors() {
        assert_eq!(stable_hash(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(stable_hash(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
        assert_eq!(stable_hash(b"foobar"), 0x343e1662793c64bf6f0d3597ba446f18);
    }

    #[test]
    fn keys_are_namespaced_and_hashed() {
        let key = StoreKey::response(b"resp_1");
        assert!(key.as_str().starts_with("wsv2:resp:"));
        assert_eq!(key.as_str().len(), "wsv2:resp:".len() + 32);
        let sess = StoreKey::session("default", b"resp_1");
        assert!(sess.as_str().starts_with("wsv2:default:sess:"));
        assert_ne!(sess, StoreKey::session("other", b"resp_1"));
    }

    #[test]
    fn odd_group_names_and_ids_never_reach_key_syntax() {
        assert_eq!(group_segment("team-a"), "team-a");
        assert!(group_segment("a b").starts_with('~'));
        let key = StoreKey::session("a b:{c}\r\n", b"x y\r\n*3");
        let text = key.as_str();
        assert!(text.starts_with("wsv2:~"));
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'~')
        );
        assert_eq!(text.matches(':').count(), 3);
    }
}
