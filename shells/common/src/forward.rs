//! The plain upstream POST of an account that resolves to HTTP (`force_http`, unknown auth
//! type, WebSocket disabled): the client's body goes to the account's `/responses` URL with the
//! account's credential, and the reply is passed through as it arrives.
//!
//! One connection per forwarded request (HTTP/1.1 over TCP, or TLS with the webpki roots):
//! this is the fallback path, not the pooled one.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use smol_hyper::rt::FuturesIo;
use wsv2_core::file_config::UpstreamUrl;

use crate::runtime::{BoxIo, Rt, spawn, timeout};
use crate::upstream::client_config;

/// Where and how to POST for one account
#[derive(Debug)]
pub(crate) struct ForwardTarget {
    /// The account's normalized URL
    pub(crate) url: UpstreamUrl,
    /// Its credential
    pub(crate) token: Arc<str>,
}

/// The head of upstream's reply, with its body still unread
#[derive(Debug)]
pub(crate) struct ForwardReply {
    /// HTTP status
    pub(crate) status: u16,
    /// `Content-Type`, relayed as is
    pub(crate) content_type: Option<HeaderValue>,
    /// `Retry-After` in seconds
    pub(crate) retry_after: Option<Duration>,
    /// The body
    pub(crate) body: Incoming,
}

/// The client TLS configuration of plain upstream and collector POSTs (the webpki roots)
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = || client_config(None).expect("ring supports the default protocol versions");
    CONFIG.get_or_init(config).clone()
}

/// POSTs `body` to `target` and returns the reply head within `timeout` (connect, TLS, head);
/// the error text never holds the credential
pub(crate) async fn post(
    rt: &Rt,
    target: &ForwardTarget,
    body: Bytes,
    limit: Duration,
) -> Result<ForwardReply, String> {
    timeout(rt, limit, post_inner(rt, target, body))
        .await
        .map_err(|_| "no reply head within the dial timeout".to_owned())?
}

async fn post_inner(rt: &Rt, target: &ForwardTarget, body: Bytes) -> Result<ForwardReply, String> {
    let url = &target.url;
    let request = hyper::Request::post(url.path_and_query())
        .header(header::HOST, url.host_header())
        .header(header::AUTHORIZATION, format!("Bearer {}", target.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/event-stream, application/json")
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let response = connect_and_send(rt, url.host(), url.port(), url.is_tls(), request).await?;
    let headers = response.headers();
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Ok(ForwardReply {
        status: response.status().as_u16(),
        content_type: headers.get(header::CONTENT_TYPE).cloned(),
        retry_after,
        body: response.into_body(),
    })
}

/// Sends `request` on a fresh HTTP/1.1 connection to `host:port`, over TLS (the webpki roots)
/// when `tls`
pub(crate) async fn connect_and_send(
    rt: &Rt,
    host: &str,
    port: u16,
    tls: bool,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Incoming>, String> {
    let tcp = rt
        .connect(host.to_owned(), port)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let io: BoxIo = if tls {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| format!("server name: {e}"))?;
        let tls = futures_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        Box::new(tls)
    } else {
        tcp
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(FuturesIo::new(io))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The connection task ends when the reply body is read or dropped.
    spawn(rt, async move {
        let _ = conn.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))
}
