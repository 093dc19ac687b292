//! Opening one upstream WebSocket: TCP (`TCP_NODELAY`), TLS for `wss://`, then the upgrade with
//! the account's credential and the headers the pool key and the session allow.
//!
//! Proxies and a separate TLS-step timeout are issue 6: [`connect_transport`] is the seam where
//! a proxy connector will produce the byte stream; everything after it stays the same.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Request, header};
use async_tungstenite::tungstenite::{self, Error as WsError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::control::DialFailure;
use crate::relay_config::ws_config;

/// Any byte stream an upstream WebSocket can run over (plain TCP, TLS, later a proxy tunnel)
pub(crate) trait UpstreamIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> UpstreamIo for T {}

/// The stream type of every upstream WebSocket
pub(crate) type UpstreamWs = WebSocketStream<TokioAdapter<Box<dyn UpstreamIo>>>;

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
}

/// One rustls client config for the process (webpki roots, ring provider)
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
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
    }
}

/// Opens the byte stream to the URL's host: TCP with `TCP_NODELAY`, then TLS for `wss://`
///
/// The seam for issue 6 (HTTP CONNECT / SOCKS5 proxies, TLS handshake timeout).
async fn connect_transport(request: &Request<()>) -> Result<Box<dyn UpstreamIo>, DialFailure> {
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
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| failure(format!("connect {host}:{port}: {e}")))?;
    tcp.set_nodelay(true)
        .map_err(|e| failure(format!("TCP_NODELAY: {e}")))?;
    if !tls {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| failure(format!("TLS server name {host}: {e}")))?;
    let stream = tls_connector()
        .connect(name, tcp)
        .await
        .map_err(|e| failure(format!("TLS handshake with {host}: {e}")))?;
    Ok(Box::new(stream))
}

/// Dials one upstream WebSocket under `timeout` (TCP + TLS + upgrade)
pub(crate) async fn dial(req: &DialRequest, timeout: Duration) -> Result<UpstreamWs, DialFailure> {
    match tokio::time::timeout(timeout, dial_inner(req)).await {
        Ok(result) => result,
        Err(_) => Err(failure(format!(
            "upstream dial timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

async fn dial_inner(req: &DialRequest) -> Result<UpstreamWs, DialFailure> {
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
    let io = connect_transport(&request).await?;
    let config = ws_config(req.max_message_size);
    match async_tungstenite::tokio::client_async_with_config(request, io, Some(config)).await {
        Ok((ws, _response)) => Ok(ws),
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Err(DialFailure {
                status: Some(status),
                retry_after,
                message: format!("upstream refused the upgrade with HTTP {status}"),
            })
        }
        Err(e) => Err(failure(format!("upstream upgrade: {}", describe(&e)))),
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
