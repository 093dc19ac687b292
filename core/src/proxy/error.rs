//! Every way a proxy handshake can fail, with messages an operator can act on.

use std::fmt;

/// Why a proxy handshake failed (or could not start)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// The target host cannot be sent to the proxy
    InvalidTarget {
        /// What is wrong with it
        reason: &'static str,
    },
    /// The proxy credentials cannot be encoded for this proxy type
    InvalidCredentials {
        /// What is wrong with them
        reason: &'static str,
    },
    /// The HTTP proxy answered CONNECT with a non-2xx status
    HttpRefused {
        /// The status code
        status: u16,
        /// The reason phrase, printable ASCII only, shortened
        reason: String,
    },
    /// The HTTP proxy's first line is not `HTTP/1.x NNN reason`
    MalformedStatusLine {
        /// The line, escaped and shortened
        line: String,
    },
    /// The HTTP proxy's response header did not end within `limit` bytes
    ResponseHeaderTooLarge {
        /// The bound, in bytes
        limit: usize,
    },
    /// A SOCKS reply carried the wrong version byte
    Socks5BadVersion {
        /// Which reply
        stage: &'static str,
        /// The version expected
        expected: u8,
        /// The version received
        got: u8,
    },
    /// The SOCKS5 proxy accepts none of the offered auth methods (method 0xFF)
    Socks5NoAcceptableAuth {
        /// Whether username/password was offered
        offered_password: bool,
    },
    /// The SOCKS5 proxy chose a method that was not offered
    Socks5UnexpectedMethod {
        /// The method byte
        method: u8,
    },
    /// The SOCKS5 proxy rejected the username/password (RFC 1929 status ≠ 0)
    Socks5AuthFailed {
        /// The status byte
        status: u8,
    },
    /// The SOCKS5 proxy refused the CONNECT (RFC 1928 REP ≠ 0)
    Socks5Refused {
        /// The REP code
        code: u8,
    },
    /// The SOCKS5 reply names an address type other than IPv4, domain or IPv6
    Socks5UnsupportedAddressType {
        /// The ATYP byte
        atyp: u8,
    },
    /// The proxy closed the connection before the handshake finished
    ClosedDuringHandshake {
        /// What the handshake was waiting for
        stage: &'static str,
    },
}

/// The RFC 1928 §6 name of SOCKS5 reply code `code`
pub fn socks5_reply_name(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

fn http_hint(status: u16) -> Option<&'static str> {
    Some(match status {
        407 => "proxy authentication required: check the proxy username and password",
        403 => "the proxy forbids this destination",
        400 => "the proxy did not understand the CONNECT request",
        405 => "the proxy does not allow CONNECT",
        502 => "the proxy could not reach the upstream host",
        503 => "the proxy is unavailable or overloaded",
        504 => "the proxy timed out reaching the upstream host",
        _ => return None,
    })
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidTarget { reason } => write!(f, "invalid proxy target: {reason}"),
            Self::InvalidCredentials { reason } => write!(f, "invalid proxy credentials: {reason}"),
            Self::HttpRefused { status, reason } => {
                write!(f, "HTTP proxy refused CONNECT with {status} {reason}")?;
                match http_hint(*status) {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            Self::MalformedStatusLine { line } => {
                write!(f, "HTTP proxy sent a malformed status line: \"{line}\"")
            }
            Self::ResponseHeaderTooLarge { limit } => {
                write!(f, "HTTP proxy response header exceeds {limit} bytes")
            }
            Self::Socks5BadVersion { stage, expected, got } => write!(
                f,
                "SOCKS5 proxy sent version {got:#04x} in its {stage} (expected {expected:#04x}); \
                 is this really a SOCKS5 proxy?"
            ),
            Self::Socks5NoAcceptableAuth { offered_password: true } => f.write_str(
                "SOCKS5 proxy accepts none of the offered auth methods (no-auth, username/password)",
            ),
            Self::Socks5NoAcceptableAuth { offered_password: false } => f.write_str(
                "SOCKS5 proxy accepts none of the offered auth methods (no-auth): \
                 it probably requires a username and password",
            ),
            Self::Socks5UnexpectedMethod { method } => {
                write!(f, "SOCKS5 proxy chose auth method {method:#04x}, which was not offered")
            }
            Self::Socks5AuthFailed { status } => write!(
                f,
                "SOCKS5 proxy rejected the username/password (status {status:#04x})"
            ),
            Self::Socks5Refused { code } => write!(
                f,
                "SOCKS5 proxy refused CONNECT: {} (reply code {code})",
                socks5_reply_name(*code)
            ),
            Self::Socks5UnsupportedAddressType { atyp } => {
                write!(f, "SOCKS5 proxy reply has unsupported address type {atyp:#04x}")
            }
            Self::ClosedDuringHandshake { stage } => {
                write!(f, "proxy closed the connection while {stage}")
            }
        }
    }
}

impl std::error::Error for ProxyError {}

/// Printable ASCII of `bytes`, escaped, at most `max` characters (proxy text going into logs)
pub(crate) fn printable(bytes: &[u8], max: usize) -> String {
    let mut text: String = bytes.escape_ascii().to_string();
    if text.len() > max {
        text.truncate(max);
        text.push('…');
    }
    text
}
