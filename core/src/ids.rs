//! Handles that name things across machines: machines refer to each other by these values,
//! never by reference.

use std::fmt;

use bytes::Bytes;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

/// Declares a `u64` handle that displays as its prefix and number (`c7`); for the handles of
/// other modules too
pub(crate) use numeric_id;

numeric_id!(
    /// One upstream WebSocket connection, unique for the life of the process.
    ConnId,
    "c"
);
numeric_id!(
    /// One client socket (WebSocket session) or one HTTP request.
    SessionId,
    "s"
);
numeric_id!(
    /// One upstream account from the configuration.
    AccountId,
    "a"
);

/// An upstream response id (`resp_…`), cheap to clone and compare.
///
/// Holds the bytes of the frame it was read from when it needed no unescaping, so naming a
/// response costs no allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseId(Bytes);

impl ResponseId {
    /// Wraps `bytes` if they are valid UTF-8 and non-empty
    pub fn new(bytes: Bytes) -> Option<Self> {
        (!bytes.is_empty() && std::str::from_utf8(&bytes).is_ok()).then_some(Self(bytes))
    }

    /// A response id from a string (tests, store replies)
    pub fn from_str_copy(s: &str) -> Option<Self> {
        Self::new(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// The id as text
    pub fn as_str(&self) -> &str {
        // Checked in `new`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id's bytes
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Debug for ResponseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ResponseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named lane (`stream_id`), validated against `^[A-Za-z0-9_.-]{1,256}$`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(Bytes);

impl StreamId {
    /// Longest `stream_id` upstream accepts
    pub const MAX_LEN: usize = 256;

    /// Wraps `bytes` if they form a valid `stream_id`
    pub fn new(bytes: Bytes) -> Option<Self> {
        Self::is_valid(&bytes).then_some(Self(bytes))
    }

    /// A stream id from a string (tests)
    pub fn from_str_copy(s: &str) -> Option<Self> {
        Self::new(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Whether `bytes` is a valid `stream_id`
    pub fn is_valid(bytes: &[u8]) -> bool {
        !bytes.is_empty()
            && bytes.len() <= Self::MAX_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }

    /// The id as text
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lane on an upstream connection: the default lane (no `stream_id`) or a named one.
pub type Lane = Option<StreamId>;

numeric_id!(
    /// One response inside a session: a client `response.create`, or an automatic successor
    /// after a steer. Session-local.
    TurnId,
    "t"
);
