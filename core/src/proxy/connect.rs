//! HTTP CONNECT client handshake (RFC 9110 §9.3.6) with optional basic auth (RFC 7617).

use bytes::Bytes;

use super::base64;
use super::error::{ProxyError, printable};
use super::{Progress, ProxyAuth};

/// Largest CONNECT response header accepted (status line + headers + blank line)
pub const MAX_RESPONSE_HEADER: usize = 8 * 1024;

/// Where the CONNECT handshake is
///
/// ```text
///  new() --> AwaitingResponse --2xx + blank line--> Done { leftover }
///                  |
///                  +--non-2xx / malformed / > 8 KiB / EOF--> Failed(error)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    AwaitingResponse,
    Done,
    Failed(ProxyError),
}

/// An HTTP CONNECT handshake, sans-IO: write what [`poll_transmit`](Self::poll_transmit) gives,
/// feed what the proxy sends to [`handle_input`](Self::handle_input) until it says
/// [`Progress::Done`], then use the socket as a tunnel, starting with the leftover bytes
#[derive(Debug)]
pub struct HttpConnect {
    request: Option<Bytes>,
    buf: Vec<u8>,
    state: State,
}

impl HttpConnect {
    /// A handshake asking the proxy for a tunnel to `host:port` (an IPv6 literal may come with or
    /// without brackets)
    pub fn new(host: &str, port: u16, auth: Option<&ProxyAuth>) -> Result<Self, ProxyError> {
        let authority = authority(host, port)?;
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = auth {
            if auth.username.contains(':') {
                return Err(ProxyError::InvalidCredentials {
                    reason: "a basic-auth username cannot contain ':'",
                });
            }
            let token = base64::encode(format!("{}:{}", auth.username, auth.password).as_bytes());
            request.push_str("Proxy-Authorization: Basic ");
            request.push_str(&token);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        Ok(Self {
            request: Some(Bytes::from(request)),
            buf: Vec::new(),
            state: State::AwaitingResponse,
        })
    }

    /// Bytes to write to the proxy (the request, once)
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.request.take()
    }

    /// Takes bytes read from the proxy, in any split
    pub fn handle_input(&mut self, data: &[u8]) -> Result<Progress, ProxyError> {
        match &self.state {
            State::AwaitingResponse => {}
            State::Done => {
                return Ok(Progress::Done {
                    leftover: Bytes::copy_from_slice(data),
                });
            }
            State::Failed(error) => return Err(error.clone()),
        }
        // Rescan only the tail that could complete a blank line.
        let scan_from = self.buf.len().saturating_sub(3);
        self.buf.extend_from_slice(data);
        let result = match header_end(&self.buf, scan_from) {
            None if self.buf.len() <= MAX_RESPONSE_HEADER => return Ok(Progress::NeedMore),
            Some(end) if end <= MAX_RESPONSE_HEADER => parse_status(&self.buf[..end]).map(|()| end),
            _ => Err(ProxyError::ResponseHeaderTooLarge {
                limit: MAX_RESPONSE_HEADER,
            }),
        };
        match result {
            Ok(end) => {
                self.state = State::Done;
                let leftover = Bytes::copy_from_slice(&self.buf[end..]);
                self.buf = Vec::new();
                Ok(Progress::Done { leftover })
            }
            Err(error) => {
                self.state = State::Failed(error.clone());
                self.request = None;
                self.buf = Vec::new();
                Err(error)
            }
        }
    }

    /// The error to report when the proxy closes the connection before the handshake ends
    pub fn handle_eof(&mut self) -> ProxyError {
        let error = ProxyError::ClosedDuringHandshake {
            stage: "waiting for the CONNECT response",
        };
        if self.state == State::AwaitingResponse {
            self.state = State::Failed(error.clone());
        }
        error
    }

    /// Whether the tunnel is established
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

/// `host:port`, bracketing IPv6 literals; rejects text that could break the request line
fn authority(host: &str, port: u16) -> Result<String, ProxyError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() {
        return Err(ProxyError::InvalidTarget {
            reason: "empty host",
        });
    }
    if !bare
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'@' | b'[' | b']'))
    {
        return Err(ProxyError::InvalidTarget {
            reason: "host has spaces, control characters or URL delimiters",
        });
    }
    Ok(if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
    })
}

/// Index just past the blank line ending the header (`\r\n\r\n`, or a bare `\n\n`)
fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = memchr::memchr(b'\n', &buf[i..]) {
        let nl = i + offset;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        i = nl + 1;
    }
    None
}

/// Accepts `HTTP/1.x 2NN …`; every other status is a refusal with its reason
fn parse_status(header: &[u8]) -> Result<(), ProxyError> {
    let line_end = memchr::memchr(b'\n', header).unwrap_or(header.len());
    let line = header[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&header[..line_end]);
    let malformed = || ProxyError::MalformedStatusLine {
        line: printable(line, 120),
    };
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .filter(|r| r.first().is_some_and(u8::is_ascii_digit))
        .map(|r| &r[1..])
        .and_then(|r| r.strip_prefix(b" "))
        .ok_or_else(malformed)?;
    let (code, reason) = rest.split_at(rest.len().min(3));
    if code.len() != 3
        || !code.iter().all(u8::is_ascii_digit)
        || !(reason.is_empty() || reason[0] == b' ')
    {
        return Err(malformed());
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if (200..300).contains(&status) {
        return Ok(());
    }
    let reason = reason.strip_prefix(b" ").unwrap_or(reason);
    Err(ProxyError::HttpRefused {
        status,
        reason: printable(reason, 120),
    })
}
