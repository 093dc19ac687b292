//! Whether an upgrade request is a valid WebSocket opening handshake (RFC 6455 §4.2.1).
//!
//! The listener routes a request with `Upgrade: websocket` here before it authenticates it; a
//! request that fails gets a plain HTTP answer and never a 101:
//!
//! | request | answer |
//! |---|---|
//! | HTTP/1.0 | 400 |
//! | no `upgrade` token in `Connection` | 400 |
//! | `Sec-WebSocket-Key` missing, repeated, or not the base64 of 16 bytes | 400 |
//! | `Sec-WebSocket-Version` missing, repeated or not `13` | 426 with `Sec-WebSocket-Version: 13` |

use crate::errors::{ErrorCode, ErrorType, GatewayError};

/// The parts of an upgrade request RFC 6455 puts rules on (header values as sent, one entry
/// per header line)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpgradeRequest<'a> {
    /// HTTP/1.1 or later (a WebSocket handshake needs at least 1.1)
    pub http_1_1: bool,
    /// Every `Connection` header value
    pub connection: Vec<&'a [u8]>,
    /// Every `Sec-WebSocket-Key` header value
    pub keys: Vec<&'a [u8]>,
    /// Every `Sec-WebSocket-Version` header value
    pub versions: Vec<&'a [u8]>,
}

/// Why an upgrade request is not a valid WebSocket handshake
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeRefusal {
    /// Sent as HTTP/1.0
    Http10,
    /// `Connection` does not name `upgrade`
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing, repeated or not the base64 of 16 bytes
    BadKey,
    /// `Sec-WebSocket-Version` is missing, repeated or not 13
    UnsupportedVersion,
}

/// The one WebSocket version the gateway speaks, sent back with a 426
pub const WEBSOCKET_VERSION: &str = "13";

impl HandshakeRefusal {
    /// The HTTP answer (400, or 426 for the version)
    pub fn answer(self) -> GatewayError {
        let message = match self {
            Self::Http10 => "a WebSocket upgrade needs HTTP/1.1",
            Self::NoConnectionUpgrade => "a WebSocket upgrade needs Connection: Upgrade",
            Self::BadKey => "Sec-WebSocket-Key must be one base64-encoded 16-byte value",
            Self::UnsupportedVersion => {
                "only WebSocket version 13 is supported (Sec-WebSocket-Version: 13)"
            }
        };
        let (status, code) = match self {
            Self::UnsupportedVersion => (426, ErrorCode::UnsupportedWebsocketVersion),
            _ => (400, ErrorCode::InvalidWebsocketHandshake),
        };
        GatewayError::new(status, ErrorType::InvalidRequest, Some(code), message)
    }

    /// The `Sec-WebSocket-Version` header the answer must carry (RFC 6455 §4.4)
    pub fn sec_websocket_version(self) -> Option<&'static str> {
        (self == Self::UnsupportedVersion).then_some(WEBSOCKET_VERSION)
    }
}

/// Checks an upgrade request against RFC 6455 §4.2.1 (the method, path and `Upgrade` header
/// are the router's business)
pub fn check_upgrade(request: &UpgradeRequest<'_>) -> Result<(), HandshakeRefusal> {
    if !request.http_1_1 {
        return Err(HandshakeRefusal::Http10);
    }
    let names_upgrade = request
        .connection
        .iter()
        .flat_map(|value| value.split(|b| *b == b','))
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"));
    if !names_upgrade {
        return Err(HandshakeRefusal::NoConnectionUpgrade);
    }
    match request.keys.as_slice() {
        [key] if is_16_byte_base64(key.trim_ascii()) => {}
        _ => return Err(HandshakeRefusal::BadKey),
    }
    match request.versions.as_slice() {
        [version] if version.trim_ascii() == WEBSOCKET_VERSION.as_bytes() => Ok(()),
        _ => Err(HandshakeRefusal::UnsupportedVersion),
    }
}

/// 16 bytes in base64: 22 characters of the alphabet and `==`
fn is_16_byte_base64(key: &[u8]) -> bool {
    let is_alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key[..22].iter().all(is_alphabet) && &key[22..] == b"=="
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> UpgradeRequest<'static> {
        UpgradeRequest {
            http_1_1: true,
            connection: vec![b"Upgrade"],
            keys: vec![b"dGhlIHNhbXBsZSBub25jZQ=="],
            versions: vec![b"13"],
        }
    }

    #[test]
    fn the_rfc_example_and_token_lists_pass() {
        assert_eq!(check_upgrade(&valid()), Ok(()));
        let mut firefox = valid();
        firefox.connection = vec![b"keep-alive, Upgrade"];
        assert_eq!(check_upgrade(&firefox), Ok(()));
        let mut split = valid();
        split.connection = vec![b"keep-alive", b"upgrade"];
        assert_eq!(check_upgrade(&split), Ok(()));
    }

    /// A change that breaks a valid request
    type Breakage = fn(&mut UpgradeRequest<'static>);

    #[test]
    fn each_broken_rule_has_its_refusal() {
        let cases: [(Breakage, HandshakeRefusal); 9] = [
            (|r| r.http_1_1 = false, HandshakeRefusal::Http10),
            (
                |r| r.connection.clear(),
                HandshakeRefusal::NoConnectionUpgrade,
            ),
            (
                |r| r.connection = vec![b"keep-alive"],
                HandshakeRefusal::NoConnectionUpgrade,
            ),
            (|r| r.keys.clear(), HandshakeRefusal::BadKey),
            (|r| r.keys = vec![b"not base64!"], HandshakeRefusal::BadKey),
            // 15 bytes
            (
                |r| r.keys = vec![b"AAAAAAAAAAAAAAAAAAAA"],
                HandshakeRefusal::BadKey,
            ),
            (
                |r| r.keys.push(b"dGhlIHNhbXBsZSBub25jZQ=="),
                HandshakeRefusal::BadKey,
            ),
            (
                |r| r.versions = vec![b"8"],
                HandshakeRefusal::UnsupportedVersion,
            ),
            (|r| r.versions.clear(), HandshakeRefusal::UnsupportedVersion),
        ];
        for (break_it, expected) in cases {
            let mut request = valid();
            break_it(&mut request);
            assert_eq!(check_upgrade(&request), Err(expected), "{request:?}");
        }
    }

    #[test]
    fn only_the_version_refusal_is_a_426_naming_version_13() {
        let version = HandshakeRefusal::UnsupportedVersion;
        assert_eq!(version.answer().status, 426);
        assert_eq!(version.sec_websocket_version(), Some("13"));
        for other in [
            HandshakeRefusal::Http10,
            HandshakeRefusal::NoConnectionUpgrade,
            HandshakeRefusal::BadKey,
        ] {
            assert_eq!(other.answer().status, 400);
            assert_eq!(other.sec_websocket_version(), None);
        }
    }
}
