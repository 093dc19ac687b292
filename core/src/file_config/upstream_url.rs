//! An account's upstream endpoint, normalized once so both transports agree on it.
//!
//! | written                                   | WebSocket URL                            | HTTP URL                                   |
//! |-------------------------------------------|------------------------------------------|--------------------------------------------|
//! | `wss://api.openai.com/v1/responses`       | kept                                     | `https://api.openai.com/v1/responses`      |
//! | `https://api.openai.com/v1/responses`     | `wss://api.openai.com/v1/responses`      | kept                                       |
//! | `http://127.0.0.1:9000/v1/responses/`     | `ws://127.0.0.1:9000/v1/responses`       | `http://127.0.0.1:9000/v1/responses`       |
//! | `https://api.openai.com/v1` (a base URL)  | `wss://api.openai.com/v1/responses`      | `https://api.openai.com/v1/responses`      |
//!
//! Rules: the scheme is `wss`/`https` (TLS) or `ws`/`http` (plain), case-insensitive; trailing
//! slashes are dropped; a path that does not end in `/responses` is a base URL (the SDKs'
//! convention) and gets `/responses` appended; a query string is kept; credentials in the URL
//! and fragments are rejected (the token goes in `token`).

use std::fmt;

use super::authority::{parse_authority, redact_query, split_scheme};

/// The default upstream of an account
pub const DEFAULT_BASE_URL: &str = "wss://api.openai.com/v1/responses";

/// A normalized upstream endpoint: the WebSocket URL for pooled conns and the matching HTTP(S)
/// URL for accounts that resolve to HTTP.
///
/// `Debug` and `Display` show the WebSocket URL with any query string replaced by `?***`: some
/// providers take a key there, and these forms are what logs see.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    ws_url: String,
    http_url: String,
    tls: bool,
    host: String,
    port: u16,
    host_header: String,
    path_and_query: String,
}

impl UpstreamUrl {
    /// Parses and normalizes `text`; the error says what is wrong without echoing the URL
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = split_scheme(text)?;
        let tls = match scheme.as_str() {
            "wss" | "https" => true,
            "ws" | "http" => false,
            other => {
                return Err(format!(
                    "unsupported scheme `{other}` (use wss, ws, https or http)"
                ));
            }
        };
        if rest.contains('#') {
            return Err("a fragment (#...) is not allowed".to_owned());
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };
        if authority.contains('@') {
            return Err(
                "credentials in the URL are not allowed; put the token in `token`".to_owned(),
            );
        }
        let authority = parse_authority(authority)?;
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("whitespace in the path".to_owned());
        }
        let mut path = path.trim_end_matches('/').to_owned();
        if !path.ends_with("/responses") {
            path.push_str("/responses");
        }
        let mut path_and_query = path;
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        let host_header = match authority.port {
            Some(p) => format!("{}:{p}", authority.written),
            None => authority.written.clone(),
        };
        let (ws, http) = if tls {
            ("wss", "https")
        } else {
            ("ws", "http")
        };
        Ok(Self {
            ws_url: format!("{ws}://{host_header}{path_and_query}"),
            http_url: format!("{http}://{host_header}{path_and_query}"),
            tls,
            host: authority.host,
            port: authority.port.unwrap_or(if tls { 443 } else { 80 }),
            host_header,
            path_and_query,
        })
    }

    /// `wss://…` or `ws://…`, for the upstream WebSocket upgrade
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// `https://…` or `http://…`, for upstream POSTs of accounts that resolve to HTTP
    pub fn http_url(&self) -> &str {
        &self.http_url
    }

    /// Whether the upstream speaks TLS (`wss`/`https`)
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host to dial and to name in TLS SNI (IPv6 without brackets)
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to dial (443 / 80 when the URL names none)
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header value: the host as written, with the port if the URL names one
    pub fn host_header(&self) -> &str {
        &self.host_header
    }

    /// The request target: path plus query, e.g. `/v1/responses`
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }
}

impl Default for UpstreamUrl {
    fn default() -> Self {
        Self::parse(DEFAULT_BASE_URL).unwrap_or_else(|_| unreachable!("the default URL parses"))
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_query(&self.ws_url))
    }
}

impl fmt::Debug for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UpstreamUrl({})", redact_query(&self.ws_url))
    }
}
