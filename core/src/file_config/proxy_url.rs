//! An account's outbound proxy, typed for the core's handshake machines.

use std::fmt;

use super::authority::{parse_authority, split_scheme};
use crate::proxy::{HttpConnect, ProxyAuth, ProxyError, Socks5};

/// Which handshake the proxy speaks
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// `http://`: an HTTP CONNECT proxy (optional basic auth)
    HttpConnect,
    /// `socks5://` (or `socks5h://`): a SOCKS5 proxy that resolves the upstream host itself
    Socks5,
}

impl ProxyKind {
    /// The URL scheme
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpConnect => "http",
            Self::Socks5 => "socks5",
        }
    }
}

/// A parsed `socks5://[user:pass@]host:port` or `http://[user:pass@]host:port`.
///
/// The port is required; user and password may be percent-encoded (`%40` for `@`). `Debug` and
/// `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    kind: ProxyKind,
    host: String,
    port: u16,
    auth: Option<ProxyAuth>,
}

/// A proxy handshake ready to drive on a fresh socket to the proxy
#[derive(Debug)]
pub enum ProxyHandshake {
    /// HTTP CONNECT
    HttpConnect(HttpConnect),
    /// SOCKS5
    Socks5(Socks5),
}

impl ProxyUrl {
    /// Parses a proxy URL; the error names the problem without echoing the URL (it may hold a
    /// password)
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = split_scheme(text.trim())?;
        let kind = match scheme.as_str() {
            "socks5" | "socks5h" => ProxyKind::Socks5,
            "http" => ProxyKind::HttpConnect,
            other => {
                return Err(format!(
                    "unsupported proxy scheme `{other}` (use socks5:// or http://)"
                ));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err("a proxy URL has no path, query or fragment".to_owned());
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let auth = userinfo
            .map(|u| {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).ok_or("bad percent-encoding in the user name")?;
                let pass = percent_decode(pass).ok_or("bad percent-encoding in the password")?;
                if user.is_empty() {
                    return Err("empty user name before '@'");
                }
                Ok(ProxyAuth::new(user, pass))
            })
            .transpose()
            .map_err(str::to_owned)?;
        let authority = parse_authority(hostport)?;
        let Some(port) = authority.port else {
            return Err("the proxy URL needs a port, e.g. socks5://127.0.0.1:1080".to_owned());
        };
        Ok(Self {
            kind,
            host: authority.host,
            port,
            auth,
        })
    }

    /// The handshake the proxy speaks
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host (IPv6 without brackets)
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Credentials from the URL, if any
    pub fn auth(&self) -> Option<&ProxyAuth> {
        self.auth.as_ref()
    }

    /// A handshake asking this proxy for a tunnel to `target_host:target_port`
    pub fn handshake(
        &self,
        target_host: &str,
        target_port: u16,
    ) -> Result<ProxyHandshake, ProxyError> {
        Ok(match self.kind {
            ProxyKind::HttpConnect => ProxyHandshake::HttpConnect(HttpConnect::new(
                target_host,
                target_port,
                self.auth.as_ref(),
            )?),
            ProxyKind::Socks5 => {
                ProxyHandshake::Socks5(Socks5::new(target_host, target_port, self.auth.as_ref())?)
            }
        })
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.as_str())?;
        if let Some(auth) = &self.auth {
            write!(f, "{}:***@", auth.username())?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// Decodes `%XX` escapes; `None` on a bad escape or non-UTF-8 result
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
