//! HTTP CONNECT and SOCKS5 client handshakes as byte-level state machines.
//!
//! Both shells use them on a freshly connected proxy socket, so neither needs a runtime-specific
//! proxy crate:
//!
//! ```text
//! loop {
//!     while let Some(bytes) = handshake.poll_transmit() { socket.write_all(&bytes) }
//!     let n = socket.read(&mut buf);                       // under the dial timeout
//!     if n == 0 { return Err(handshake.handle_eof()) }
//!     match handshake.handle_input(&buf[..n])? {
//!         Progress::NeedMore => continue,
//!         Progress::Done { leftover } => break leftover,   // tunnel bytes already read
//!     }
//! }
//! ```
//!
//! Input may arrive split at any byte; every refusal is a [`ProxyError`] whose `Display` says
//! what the proxy answered and what to check. Credentials never appear in `Debug` output or
//! errors.

mod base64;
mod connect;
mod error;
mod socks5;

use std::fmt;

use bytes::Bytes;

pub use connect::{HttpConnect, MAX_RESPONSE_HEADER};
pub use error::{ProxyError, socks5_reply_name};
pub use socks5::Socks5;

/// What a handshake needs after some input
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not finished: write any [`poll_transmit`](HttpConnect::poll_transmit) bytes, read more
    NeedMore,
    /// The tunnel is up; `leftover` are tunnel bytes that came with the proxy's last reply
    Done {
        /// Bytes after the handshake, to hand to the next layer (TLS) first
        leftover: Bytes,
    },
}

/// Proxy credentials (basic auth for HTTP, RFC 1929 for SOCKS5)
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    username: String,
    password: String,
}

impl ProxyAuth {
    /// Credentials from the proxy URL or config
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The username (not secret)
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProxyAuth(<redacted>)")
    }
}
