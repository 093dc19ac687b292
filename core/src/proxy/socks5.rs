//! SOCKS5 client handshake (RFC 1928) with no-auth and username/password (RFC 1929), CONNECT
//! to a domain name (ATYP 3) or an IPv4/IPv6 address.

use std::collections::VecDeque;
use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::ProxyError;
use super::{Progress, ProxyAuth};

const VERSION: u8 = 0x05;
const AUTH_VERSION: u8 = 0x01;
const METHOD_NONE: u8 = 0x00;
const METHOD_PASSWORD: u8 = 0x02;
const METHOD_UNACCEPTABLE: u8 = 0xff;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_V6: u8 = 0x04;

/// Where the SOCKS5 handshake is
///
/// ```text
///  new(): send greeting
///     |
///     v
///  AwaitingMethod --0x00--> (send CONNECT) ---------------+
///     |  \                                                 v
///     |   +--0x02--> (send user/pass) --> AwaitingAuth --0x00--> AwaitingReply --REP 0--> Done
///     |                                        |                      |
///     +--0xFF / other / bad version------------+--status != 0---------+--REP 1..=255, bad
///                                                                         version/ATYP, EOF
///                                                                               |
///                                                                               v
///                                                                        Failed(error)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    AwaitingMethod,
    AwaitingAuth,
    AwaitingReply,
    Done,
    Failed(ProxyError),
}

/// A SOCKS5 CONNECT handshake, sans-IO; driven like [`HttpConnect`](super::HttpConnect)
#[derive(Debug)]
pub struct Socks5 {
    state: State,
    /// Requests not yet taken by the shell, in order (at most the three of a handshake)
    transmit: VecDeque<Bytes>,
    connect_request: Bytes,
    auth_request: Option<Bytes>,
    buf: Vec<u8>,
}

impl Socks5 {
    /// A handshake for a tunnel to `host:port`: an IP literal (IPv6 with or without brackets)
    /// goes as an address, anything else as a domain name the proxy resolves
    pub fn new(host: &str, port: u16, auth: Option<&ProxyAuth>) -> Result<Self, ProxyError> {
        let connect_request = connect_request(host, port)?;
        let auth_request = auth.map(auth_request).transpose()?;
        let greeting: &[u8] = if auth_request.is_some() {
            &[VERSION, 2, METHOD_NONE, METHOD_PASSWORD]
        } else {
            &[VERSION, 1, METHOD_NONE]
        };
        Ok(Self {
            state: State::AwaitingMethod,
            transmit: VecDeque::from([Bytes::from_static(greeting)]),
            connect_request,
            auth_request,
            buf: Vec::new(),
        })
    }

    /// Bytes to write to the proxy next
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// Takes bytes read from the proxy, in any split
    pub fn handle_input(&mut self, data: &[u8]) -> Result<Progress, ProxyError> {
        match &self.state {
            State::Done => {
                return Ok(Progress::Done {
                    leftover: Bytes::copy_from_slice(data),
                });
            }
            State::Failed(error) => return Err(error.clone()),
            _ => {}
        }
        self.buf.extend_from_slice(data);
        match self.advance() {
            Ok(progress) => Ok(progress),
            Err(error) => {
                // Nothing more goes to a proxy that refused.
                self.state = State::Failed(error.clone());
                self.transmit.clear();
                self.buf = Vec::new();
                Err(error)
            }
        }
    }

    /// The error to report when the proxy closes the connection before the handshake ends
    pub fn handle_eof(&mut self) -> ProxyError {
        let stage = match self.state {
            State::AwaitingMethod => "waiting for the SOCKS5 method choice",
            State::AwaitingAuth => "waiting for the SOCKS5 authentication result",
            _ => "waiting for the SOCKS5 CONNECT reply",
        };
        let error = ProxyError::ClosedDuringHandshake { stage };
        if !matches!(self.state, State::Done | State::Failed(_)) {
            self.state = State::Failed(error.clone());
        }
        error
    }

    /// Whether the tunnel is established
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes complete replies from the buffer, as far as they go
    fn advance(&mut self) -> Result<Progress, ProxyError> {
        loop {
            match self.state {
                State::AwaitingMethod => {
                    let Some(&[version, method]) = self.buf.get(..2) else {
                        break;
                    };
                    check_version("method choice", VERSION, version)?;
                    self.buf.drain(..2);
                    match (method, self.auth_request.take()) {
                        (METHOD_NONE, _) => self.send_connect(),
                        (METHOD_PASSWORD, Some(auth)) => {
                            self.transmit.push_back(auth);
                            self.state = State::AwaitingAuth;
                        }
                        (METHOD_UNACCEPTABLE, auth) => {
                            return Err(ProxyError::Socks5NoAcceptableAuth {
                                offered_password: auth.is_some(),
                            });
                        }
                        (method, _) => return Err(ProxyError::Socks5UnexpectedMethod { method }),
                    }
                }
                State::AwaitingAuth => {
                    let Some(&[version, status]) = self.buf.get(..2) else {
                        break;
                    };
                    check_version("authentication reply", AUTH_VERSION, version)?;
                    if status != 0 {
                        return Err(ProxyError::Socks5AuthFailed { status });
                    }
                    self.buf.drain(..2);
                    self.send_connect();
                }
                State::AwaitingReply => {
                    let Some(len) = reply_len(&self.buf)? else {
                        break;
                    };
                    let leftover = Bytes::copy_from_slice(&self.buf[len..]);
                    self.buf = Vec::new();
                    self.state = State::Done;
                    return Ok(Progress::Done { leftover });
                }
                State::Done | State::Failed(_) => break,
            }
        }
        Ok(Progress::NeedMore)
    }

    fn send_connect(&mut self) {
        self.transmit.push_back(self.connect_request.clone());
        self.state = State::AwaitingReply;
    }
}

fn check_version(stage: &'static str, expected: u8, got: u8) -> Result<(), ProxyError> {
    if got == expected {
        Ok(())
    } else {
        Err(ProxyError::Socks5BadVersion {
            stage,
            expected,
            got,
        })
    }
}

/// Length of the complete CONNECT reply at the start of `buf`, once it has arrived; a refusal
/// is reported as soon as its REP byte is in
fn reply_len(buf: &[u8]) -> Result<Option<usize>, ProxyError> {
    let Some(&[version, code]) = buf.get(..2) else {
        return Ok(None);
    };
    check_version("CONNECT reply", VERSION, version)?;
    if code != 0 {
        return Err(ProxyError::Socks5Refused { code });
    }
    let Some(&atyp) = buf.get(3) else {
        return Ok(None);
    };
    let address_len = match atyp {
        ATYP_V4 => 4,
        ATYP_V6 => 16,
        ATYP_DOMAIN => match buf.get(4) {
            Some(&len) => 1 + usize::from(len),
            None => return Ok(None),
        },
        atyp => return Err(ProxyError::Socks5UnsupportedAddressType { atyp }),
    };
    let len = 4 + address_len + 2;
    Ok((buf.len() >= len).then_some(len))
}

fn connect_request(host: &str, port: u16) -> Result<Bytes, ProxyError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let mut out = BytesMut::with_capacity(7 + bare.len());
    out.put_slice(&[VERSION, CMD_CONNECT, 0x00]);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            out.put_u8(ATYP_V4);
            out.put_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            out.put_u8(ATYP_V6);
            out.put_slice(&ip.octets());
        }
        Err(_) => {
            if bare.is_empty() {
                return Err(ProxyError::InvalidTarget {
                    reason: "empty host",
                });
            }
            let len = u8::try_from(bare.len()).map_err(|_| ProxyError::InvalidTarget {
                reason: "a SOCKS5 domain name is at most 255 bytes",
            })?;
            out.put_u8(ATYP_DOMAIN);
            out.put_u8(len);
            out.put_slice(bare.as_bytes());
        }
    }
    out.put_u16(port);
    Ok(out.freeze())
}

fn auth_request(auth: &ProxyAuth) -> Result<Bytes, ProxyError> {
    let field = |text: &str| u8::try_from(text.len()).ok().filter(|len| *len > 0);
    let (Some(user_len), Some(pass_len)) = (field(&auth.username), field(&auth.password)) else {
        return Err(ProxyError::InvalidCredentials {
            reason: "SOCKS5 username and password must each be 1 to 255 bytes",
        });
    };
    let mut out = BytesMut::with_capacity(3 + auth.username.len() + auth.password.len());
    out.put_u8(AUTH_VERSION);
    out.put_u8(user_len);
    out.put_slice(auth.username.as_bytes());
    out.put_u8(pass_len);
    out.put_slice(auth.password.as_bytes());
    Ok(out.freeze())
}
