//! Who may open a WebSocket or POST a turn, and what a request's headers mean to the gateway.
//!
//! [`ClientKeys`] is the client-key table: `Authorization: Bearer <key>` names a configured key
//! (else 401), and a key holds at most `max_sockets` open WebSockets and requests in flight
//! (else 429 with `Retry-After`). A reload replaces the keys in place: a key that stays keeps
//! its identity and its open count; a removed key's sockets stay counted until they close.
//!
//! [`read_headers`] splits a request's headers into the pool-key headers (`openai-beta`,
//! `x-codex-beta-features`: sent on every dial for the key), the session headers (sent only on
//! a dial made for that session) and the rest (never forwarded: `authorization`, cookies, …).
//!
//! ```text
//!             admit ok                    handle_closed
//!   (absent) ─────────▶ open += 1 ──────────────────────▶ open -= 1
//!                          │ open == max_sockets
//!                          ▼
//!                    429 too_many_sockets (nothing counted)
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::errors::{ErrorCode, ErrorType, GatewayError};

/// Headers that form the pool key: sent on every dial for the key
pub const COMPAT_HEADERS: [&str; 2] = ["openai-beta", "x-codex-beta-features"];

/// Headers that belong to one session: sent only on a dial made for it (as is every other
/// `x-codex-*` header)
pub const SESSION_HEADERS: [&str; 6] = [
    "session-id",
    "thread-id",
    "x-client-request-id",
    "originator",
    "user-agent",
    "x-codex-window-id",
];

/// One configured client key
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKeySpec {
    /// The key itself (a credential: never logged)
    pub secret: String,
    /// Its name, for logs and metric labels
    pub name: String,
    /// Stickiness scope
    pub group: String,
    /// Cap on its open WebSockets and requests in flight
    pub max_sockets: usize,
}

/// A client key's identity: stable across reloads that keep the key, never shared between
/// keys (it is also the key's tenant for fair slot sharing)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKeyId(pub u64);

/// Which door a request came in by
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// A WebSocket upgrade
    Upgrade,
    /// A `POST /v1/responses`
    Post,
}

/// A request the table admitted; its socket counts until [`ClientKeys::handle_closed`]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// The key (and tenant)
    pub key: ClientKeyId,
    /// Its name, for logs and metric labels
    pub name: Arc<str>,
    /// Its stickiness scope
    pub group: String,
}

/// Why the table refused a request, and the answer
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No `Authorization: Bearer` key: 401
    Missing,
    /// A key the gateway does not know: 401
    Unknown,
    /// The key holds `max_sockets` already: 429 with `Retry-After`
    AtCap {
        /// The key's name (its group names it in the log; the key is a credential)
        name: Arc<str>,
        /// Its group
        group: String,
        /// Its cap
        max_sockets: usize,
        /// The answer
        error: GatewayError,
    },
}

impl KeyRefusal {
    /// The answer to send
    pub fn error(&self) -> GatewayError {
        let unauthorized = |message| {
            GatewayError::new(
                401,
                ErrorType::InvalidRequest,
                Some(ErrorCode::InvalidApiKey),
                message,
            )
        };
        match self {
            Self::Missing => {
                unauthorized("You didn't provide an API key; send Authorization: Bearer <key>")
            }
            Self::Unknown => unauthorized("Incorrect API key provided"),
            Self::AtCap { error, .. } => error.clone(),
        }
    }
}

#[derive(Debug)]
struct KeyState {
    name: Arc<str>,
    group: String,
    max_sockets: usize,
    /// Open sockets (WebSockets and requests in flight) counted against the cap
    open: usize,
    /// Still configured (a removed key is kept only while its sockets are open)
    configured: bool,
}

/// The client-key table: authentication and the per-key socket cap
#[derive(Debug)]
pub struct ClientKeys {
    by_secret: HashMap<String, ClientKeyId>,
    keys: HashMap<ClientKeyId, KeyState>,
    next_id: u64,
    /// `Retry-After` of a 429 for the cap (`session.socket_cap_retry_after`)
    cap_retry_after: Duration,
}

impl ClientKeys {
    /// A table of `specs`; `cap_retry_after` is the wait a 429 for the cap names
    pub fn new(specs: Vec<ClientKeySpec>, cap_retry_after: Duration) -> Self {
        let mut table = Self {
            by_secret: HashMap::new(),
            keys: HashMap::new(),
            next_id: 1,
            cap_retry_after,
        };
        table.handle_reload(specs);
        table
    }

    /// Admits a request carrying `authorization` (the `Authorization` header's value) and
    /// counts its socket, or refuses it
    pub fn admit(
        &mut self,
        authorization: Option<&[u8]>,
        door: Door,
    ) -> Result<Admitted, KeyRefusal> {
        let token = authorization.and_then(bearer).ok_or(KeyRefusal::Missing)?;
        let id = *self.by_secret.get(token).ok_or(KeyRefusal::Unknown)?;
        let key = self
            .keys
            .get_mut(&id)
            .expect("a configured key has a state");
        if key.open >= key.max_sockets {
            let held = match door {
                Door::Upgrade => "open WebSockets",
                Door::Post => "open WebSockets and requests in flight",
            };
            let error = GatewayError::new(
                429,
                ErrorType::RateLimit,
                Some(ErrorCode::TooManySockets),
                format!("this key may hold at most {} {held}", key.max_sockets),
            )
            .with_retry_after(Some(whole_seconds_up(self.cap_retry_after)));
            return Err(KeyRefusal::AtCap {
                name: key.name.clone(),
                group: key.group.clone(),
                max_sockets: key.max_sockets,
                error,
            });
        }
        key.open += 1;
        Ok(Admitted {
            key: id,
            name: key.name.clone(),
            group: key.group.clone(),
        })
    }

    /// A socket admitted for `key` closed
    pub fn handle_closed(&mut self, key: ClientKeyId) {
        if let Some(state) = self.keys.get_mut(&key) {
            state.open = state.open.saturating_sub(1);
            if state.open == 0 && !state.configured {
                self.keys.remove(&key);
            }
        }
    }

    /// Replaces the configured keys: a key that stays (same secret) keeps its identity and
    /// open count and takes its new name, group and cap
    pub fn handle_reload(&mut self, specs: Vec<ClientKeySpec>) {
        let mut by_secret = HashMap::with_capacity(specs.len());
        for state in self.keys.values_mut() {
            state.configured = false;
        }
        for spec in specs {
            let id = match self.by_secret.get(&spec.secret) {
                Some(id) if self.keys.contains_key(id) => *id,
                _ => {
                    let id = ClientKeyId(self.next_id);
                    self.next_id += 1;
                    id
                }
            };
            let open = self.keys.get(&id).map_or(0, |k| k.open);
            self.keys.insert(
                id,
                KeyState {
                    name: Arc::from(spec.name),
                    group: spec.group,
                    max_sockets: spec.max_sockets,
                    open,
                    configured: true,
                },
            );
            by_secret.insert(spec.secret, id);
        }
        self.keys.retain(|_, k| k.configured || k.open > 0);
        self.by_secret = by_secret;
    }

    /// The open sockets counted against `key`
    #[cfg(test)]
    fn open(&self, key: ClientKeyId) -> usize {
        self.keys.get(&key).map_or(0, |k| k.open)
    }
}

/// The token of `Bearer <token>` (any case of the scheme; an empty token is none)
pub fn bearer(authorization: &[u8]) -> Option<&str> {
    let value = visible_ascii(authorization)?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A duration in whole seconds, rounded up (a client must not come back early)
pub(super) fn whole_seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Whether the header named `lower` (a lower-case name) goes on dials made for its session
/// only: the session headers and every `x-codex-*` header that is not part of the pool key
pub fn is_session_header(lower: &str) -> bool {
    !COMPAT_HEADERS.contains(&lower)
        && (SESSION_HEADERS.contains(&lower) || lower.starts_with("x-codex-"))
}

/// What a request's headers tell the gateway
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    /// The first `session-id` (the session binding key)
    pub session_key: Option<String>,
    /// `openai-beta` values (part of the pool key)
    pub openai_beta: Vec<String>,
    /// `x-codex-beta-features` values (part of the pool key)
    pub codex_beta_features: Vec<String>,
    /// Positions, in the order given, of the headers sent only on dials made for the session
    pub per_session: Vec<usize>,
}

/// Reads `(lower-case name, value)` pairs in order (every value of a repeated name); a value
/// that is not visible ASCII is no text (a session header still goes on dials as it came)
pub fn read_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> RequestHeaders {
    let mut read = RequestHeaders::default();
    let mut session_id_seen = false;
    for (at, (name, value)) in headers.into_iter().enumerate() {
        if is_session_header(name) {
            read.per_session.push(at);
        }
        let text = visible_ascii(value).map(str::to_owned);
        match name {
            "openai-beta" => read.openai_beta.extend(text),
            "x-codex-beta-features" => read.codex_beta_features.extend(text),
            // Only the first counts, even when it is not text.
            "session-id" if !session_id_seen => {
                session_id_seen = true;
                read.session_key = text;
            }
            _ => {}
        }
    }
    read
}

/// The value as text when it is visible ASCII (or tabs), as HTTP libraries read header text
fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (32..127).contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(secret: &str, name: &str, max_sockets: usize) -> ClientKeySpec {
        ClientKeySpec {
            secret: secret.to_owned(),
            name: name.to_owned(),
            group: "team".to_owned(),
            max_sockets,
        }
    }

    fn table() -> ClientKeys {
        ClientKeys::new(vec![spec("sk-a", "a", 2)], Duration::from_millis(1500))
    }

    #[test]
    fn a_missing_or_unknown_key_is_401_and_counts_nothing() {
        let mut keys = table();
        let missing = keys.admit(None, Door::Upgrade).unwrap_err();
        assert_eq!(missing, KeyRefusal::Missing);
        assert_eq!(missing.error().status, 401);
        assert_eq!(
            missing.error().message,
            "You didn't provide an API key; send Authorization: Bearer <key>"
        );
        let unknown = keys.admit(Some(b"Bearer sk-b"), Door::Post).unwrap_err();
        assert_eq!(unknown.error().code, Some(ErrorCode::InvalidApiKey));
        assert_eq!(unknown.error().message, "Incorrect API key provided");
        assert_eq!(
            keys.admit(Some(b"Basic sk-a"), Door::Post),
            Err(KeyRefusal::Missing)
        );
    }

    #[test]
    fn the_cap_refuses_with_retry_after_rounded_up_until_a_socket_closes() {
        let mut keys = table();
        let first = keys.admit(Some(b"Bearer sk-a"), Door::Upgrade).unwrap();
        keys.admit(Some(b"bearer  sk-a "), Door::Post).unwrap();
        let refused = keys.admit(Some(b"Bearer sk-a"), Door::Post).unwrap_err();
        let error = refused.error();
        assert_eq!((error.status, error.retry_after), (429, Some(2)));
        assert_eq!(error.code, Some(ErrorCode::TooManySockets));
        assert_eq!(
            error.message,
            "this key may hold at most 2 open WebSockets and requests in flight"
        );
        assert_eq!(keys.open(first.key), 2);
        keys.handle_closed(first.key);
        assert!(keys.admit(Some(b"Bearer sk-a"), Door::Upgrade).is_ok());
    }

    #[test]
    fn a_kept_key_keeps_its_identity_and_count_and_a_removed_one_lives_while_open() {
        let mut keys = table();
        let a = keys.admit(Some(b"Bearer sk-a"), Door::Upgrade).unwrap();
        keys.handle_reload(vec![spec("sk-a", "renamed", 1), spec("sk-b", "b", 9)]);
        let refused = keys.admit(Some(b"Bearer sk-a"), Door::Upgrade).unwrap_err();
        assert!(
            matches!(refused, KeyRefusal::AtCap { ref name, max_sockets: 1, .. } if &**name == "renamed")
        );
        let b = keys.admit(Some(b"Bearer sk-b"), Door::Upgrade).unwrap();
        assert_ne!(a.key, b.key);
        keys.handle_reload(vec![spec("sk-b", "b", 9)]);
        assert_eq!(
            keys.admit(Some(b"Bearer sk-a"), Door::Upgrade),
            Err(KeyRefusal::Unknown)
        );
        assert_eq!(keys.open(a.key), 1);
        keys.handle_closed(a.key);
        assert_eq!(keys.open(a.key), 0);
        // Configured again: a new identity, counting from zero.
        keys.handle_reload(vec![spec("sk-a", "a", 1), spec("sk-b", "b", 9)]);
        let again = keys.admit(Some(b"Bearer sk-a"), Door::Upgrade).unwrap();
        assert_ne!(again.key, a.key);
    }

    #[test]
    fn compat_headers_form_the_key_session_headers_go_on_dials_and_auth_never_does() {
        let headers: [(&str, &[u8]); 8] = [
            ("authorization", b"Bearer sk-client"),
            ("openai-beta", b"responses_websockets=2026-02-06"),
            ("x-codex-beta-features", b"a,b"),
            ("session-id", b"sess-1"),
            ("x-codex-turn-metadata", b"{}"),
            ("user-agent", b"codex"),
            ("cookie", b"x=y"),
            ("session-id", b"sess-2"),
        ];
        let read = read_headers(headers);
        assert_eq!(read.session_key.as_deref(), Some("sess-1"));
        assert_eq!(read.openai_beta, ["responses_websockets=2026-02-06"]);
        assert_eq!(read.codex_beta_features, ["a,b"]);
        assert_eq!(read.per_session, [3, 4, 5, 7]);
        assert!(!is_session_header("x-codex-beta-features"));
        assert!(!is_session_header("authorization"));
    }

    #[test]
    fn a_value_that_is_not_visible_ascii_is_no_text() {
        let read = read_headers([("session-id", "caf\u{e9}".as_bytes())]);
        assert_eq!(read.session_key, None);
        assert_eq!(read.per_session, [0]);
    }
}
