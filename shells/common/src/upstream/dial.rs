//! Opening one upstream WebSocket, in four bounded steps:
//!
//! ```text
//!  TCP (TCP_NODELAY) ──▶ proxy tunnel (HTTP CONNECT | SOCKS5, if the account has one)
//!        ──▶ TLS (wss:// only; ≤ upstream.tls_handshake_timeout) ──▶ upgrade (101 | refusal)
//!  └──────────────────────── all of it ≤ upstream.dial_timeout ────────────────────────┘
//! ```
//!
//! Every failure names its step, so an operator can tell a silent TLS peer from a slow proxy.
//! An upgrade answered with anything but 101 becomes a [`DialFailure`] carrying the HTTP status
//! and the reset upstream named (`Retry-After`, `x-ratelimit-reset-*`, `resets_in_seconds`), so
//! the core can disable the account (401/403) or cool it down (429/5xx).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Request, Response, header};
use async_tungstenite::tungstenite::{self, Error as WsError};
use wsv2_core::control::DialFailure;
use wsv2_core::event::parse_error_event;
use wsv2_core::file_config::ProxyUrl;

use super::proxy_io::{TunnelError, open_tunnel};
use super::tls::{TlsStepError, UpstreamTls};
use crate::relay_config::ws_config;
use crate::runtime::{BoxIo, Rt, timeout};

/// The stream type of every upstream WebSocket (over TCP, TLS, a proxy tunnel, TLS in one)
pub(crate) type UpstreamWs = WebSocketStream<BoxIo>;

/// How an account's conns reach upstream: its proxy (if any) and the process's TLS client
#[derive(Clone, Debug)]
pub(crate) struct DialRoute {
    /// The account's outbound proxy
    pub(crate) proxy: Option<ProxyUrl>,
    /// Roots and the TLS-step bound
    pub(crate) tls: UpstreamTls,
}

/// Everything one dial needs
#[derive(Clone, Debug)]
pub(crate) struct DialRequest {
    /// `ws://` or `wss://` URL of the account
    pub(crate) url: String,
    /// The account's credential (replaces the client's `Authorization`)
    pub(crate) token: Arc<str>,
    /// Headers of the pool key (`OpenAI-Beta`, `x-codex-beta-features`) and, on a dial made for
    /// one session, that session's own headers
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Largest message on this hop
    pub(crate) max_message_size: usize,
    /// Proxy and TLS
    pub(crate) route: Arc<DialRoute>,
}

/// The name of the step a dial is in, for the message of a `dial_timeout` that cuts it
pub(crate) type Step = Mutex<&'static str>;

/// Enters the step named `name`
pub(crate) fn enter(step: &Step, name: &'static str) {
    *step.lock().unwrap_or_else(PoisonError::into_inner) = name;
}

/// Installs ring as the process-wide rustls provider (once; later calls are no-ops)
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn failure(message: impl Into<String>) -> DialFailure {
    DialFailure {
        status: None,
        retry_after: None,
        message: message.into(),
        local: false,
    }
}

/// A failed TCP connect; out of descriptors, buffers, memory or local ports is this process's
/// trouble, not the account's (the core then does not count it against the account)
fn connect_failure(message: String, error: &std::io::Error) -> DialFailure {
    use rustix::io::Errno;
    let local = matches!(
        Errno::from_io_error(error),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM | Errno::ADDRNOTAVAIL)
    );
    DialFailure {
        local,
        ..failure(message)
    }
}

/// Dials one upstream WebSocket; all steps together are bounded by `timeout`
/// (`upstream.dial_timeout`), the TLS step alone by `upstream.tls_handshake_timeout`
pub(crate) async fn dial(
    rt: &Rt,
    req: &DialRequest,
    limit: Duration,
) -> Result<UpstreamWs, DialFailure> {
    let step = Mutex::new("TCP connect");
    match timeout(rt, limit, dial_inner(rt, req, &step)).await {
        Ok(result) => result,
        Err(_) => Err(failure(format!(
            "upstream dial timed out after {} ms (upstream.dial_timeout) in the {} step",
            limit.as_millis(),
            step.into_inner().unwrap_or_else(PoisonError::into_inner)
        ))),
    }
}

async fn dial_inner(rt: &Rt, req: &DialRequest, step: &Step) -> Result<UpstreamWs, DialFailure> {
    let mut request = req
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| failure(format!("upstream URL: {e}")))?;
    let headers = request.headers_mut();
    for (name, value) in &req.headers {
        headers.append(name.clone(), value.clone());
    }
    let auth = HeaderValue::try_from(format!("Bearer {}", req.token))
        .map_err(|_| failure("account token is not a valid header value"))?;
    headers.insert(header::AUTHORIZATION, auth);
    let io = connect_transport(rt, &request, &req.route, step).await?;
    enter(step, "WebSocket upgrade");
    let config = ws_config(req.max_message_size);
    match async_tungstenite::client_async_with_config(request, io, Some(config)).await {
        Ok((ws, _response)) => Ok(ws),
        Err(WsError::Http(response)) => Err(refusal(&response)),
        Err(e) => Err(failure(format!("upstream upgrade: {}", describe(&e)))),
    }
}

/// Opens the byte stream to the URL's host ([`open_stream`] for `wss://` and `ws://`)
async fn connect_transport(
    rt: &Rt,
    request: &Request<()>,
    route: &DialRoute,
    step: &Step,
) -> Result<BoxIo, DialFailure> {
    let uri = request.uri();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => return Err(failure(format!("unsupported upstream scheme {other:?}"))),
    };
    let host = uri
        .host()
        .ok_or_else(|| failure("upstream URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    open_stream(rt, host, port, tls, route, step).await
}

/// Opens the byte stream to `host:port` the way `route` says, for a WebSocket dial and a
/// forwarded POST alike: TCP with `TCP_NODELAY` (to the proxy, if any), the proxy tunnel, then
/// TLS (the webpki roots and `tls_ca_file`) when `tls`; `step` names the step it is in
pub(crate) async fn open_stream(
    rt: &Rt,
    host: &str,
    port: u16,
    tls: bool,
    route: &DialRoute,
    step: &Step,
) -> Result<BoxIo, DialFailure> {
    let host = host.to_owned();
    let io: BoxIo = match &route.proxy {
        None => rt.connect(host.clone(), port).await.map_err(|e| {
            connect_failure(format!("TCP connect to upstream {host}:{port}: {e}"), &e)
        })?,
        Some(proxy) => {
            let tcp = rt
                .connect(proxy.host().to_owned(), proxy.port())
                .await
                .map_err(|e| connect_failure(format!("TCP connect to proxy {proxy}: {e}"), &e))?;
            enter(step, "proxy handshake");
            let handshake = proxy
                .handshake(&host, port)
                .map_err(|e| failure(format!("proxy {proxy}: {e}")))?;
            match open_tunnel(tcp, handshake).await {
                Ok(tunnel) => Box::new(tunnel),
                Err(TunnelError::Refused(e)) => {
                    return Err(failure(format!(
                        "proxy {proxy} refused the tunnel to {host}:{port}: {e}"
                    )));
                }
                Err(TunnelError::Io(e)) => {
                    return Err(failure(format!(
                        "proxy {proxy}: I/O error during the proxy handshake: {e}"
                    )));
                }
            }
        }
    };
    if !tls {
        return Ok(io);
    }
    enter(step, "TLS handshake");
    match route.tls.connect(rt, &host, io).await {
        Ok(stream) => Ok(Box::new(stream)),
        Err(TlsStepError::TimedOut(limit)) => Err(failure(format!(
            "TLS handshake with {host} timed out after {} ms (upstream.tls_handshake_timeout)",
            limit.as_millis()
        ))),
        Err(TlsStepError::Failed(e)) => {
            Err(failure(format!("TLS handshake with {host} failed: {e}")))
        }
        Err(TlsStepError::BadName(e)) => Err(failure(format!("TLS server name {e}"))),
    }
}

/// An upgrade answered with something other than 101: its status, the reset it names, and a
/// message that says what it means for the account (never the body's text: an upstream message
/// may quote part of the credential)
fn refusal(response: &Response<Option<Vec<u8>>>) -> DialFailure {
    let status = response.status().as_u16();
    // Without a parsable body, an empty envelope: the headers alone may name the reset.
    let mut info = response
        .body()
        .as_deref()
        .and_then(parse_error_event)
        .unwrap_or_else(|| parse_error_event(b"{}").expect("an empty object parses"));
    info.headers
        .extend(response.headers().iter().filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        }));
    let retry_after = info.retry_after_secs().map(Duration::from_secs);
    let code = info
        .code
        .as_deref()
        .or(info.error_type.as_deref())
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let meaning = match status {
        401 | 403 => {
            ": upstream rejected the account's credential; the account takes no new \
                      sessions until the configuration is reloaded"
        }
        429 => ": rate limited; the account cools down",
        500..=599 => ": upstream server error; counts as a failed dial of the account",
        _ => "",
    };
    let reset = retry_after
        .map(|d| format!(" (reset in {} s)", d.as_secs()))
        .unwrap_or_default();
    DialFailure {
        status: Some(status),
        retry_after,
        message: format!("upstream refused the upgrade with HTTP {status}{code}{meaning}{reset}"),
        local: false,
    }
}

/// An error's text without anything that could carry a credential
fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("I/O error: {io}"),
        tungstenite::Error::Tls(tls) => format!("TLS error: {tls}"),
        tungstenite::Error::Protocol(p) => format!("protocol error: {p}"),
        tungstenite::Error::Url(u) => format!("URL error: {u}"),
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Option<Vec<u8>>> {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body((!body.is_empty()).then(|| body.as_bytes().to_vec()))
            .unwrap()
    }

    #[test]
    fn a_401_carries_its_status_and_code_and_says_the_account_is_disabled() {
        let body = r#"{"error":{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided: sk-abc***xyz"}}"#;
        let f = refusal(&response(401, &[], body));
        assert_eq!(f.status, Some(401));
        assert_eq!(f.retry_after, None);
        assert!(
            f.message.contains("HTTP 401 (invalid_api_key)"),
            "{}",
            f.message
        );
        assert!(f.message.contains("until the configuration is reloaded"));
        assert!(
            !f.message.contains("sk-abc"),
            "the body's text is never repeated"
        );
    }

    #[test]
    fn a_429_takes_its_reset_from_retry_after_or_the_rate_limit_headers() {
        let f = refusal(&response(429, &[("retry-after", "7")], ""));
        assert_eq!(f.status, Some(429));
        assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
        let f = refusal(&response(
            429,
            &[
                ("x-ratelimit-reset-requests", "1m30s"),
                ("x-ratelimit-reset-tokens", "250ms"),
            ],
            "",
        ));
        assert_eq!(f.retry_after, Some(Duration::from_secs(90)));
        let body = r#"{"error":{"type":"usage_limit_reached","resets_in_seconds":42}}"#;
        let f = refusal(&response(429, &[], body));
        assert_eq!(f.retry_after, Some(Duration::from_secs(42)));
    }

    #[test]
    fn a_503_without_headers_has_no_reset_and_says_it_counts_as_a_failed_dial() {
        let f = refusal(&response(503, &[], "<html>busy</html>"));
        assert_eq!(f.status, Some(503));
        assert_eq!(f.retry_after, None);
        assert!(
            f.message
                .contains("HTTP 503: upstream server error; counts as a failed dial"),
            "{}",
            f.message
        );
    }
}
