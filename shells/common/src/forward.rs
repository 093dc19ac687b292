//! The plain upstream POST of an account that resolves to HTTP (`force_http`, unknown auth
//! type, WebSocket disabled): the client's body goes to the account's `/responses` URL with the
//! account's credential, and the reply is passed through as it arrives.
//!
//! One connection per forwarded request (HTTP/1.1), opened the way the account's WebSocket dials
//! open theirs: through its proxy (if any), TLS trusting the webpki roots and `tls_ca_file`.
//! This is the fallback path, not the pooled one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use smol_hyper::rt::FuturesIo;
use wsv2_core::file_config::UpstreamUrl;

use crate::runtime::{BoxIo, Rt, spawn, timeout};
use crate::upstream::{DialRoute, Step, enter, open_stream};

/// Where and how to POST for one account
#[derive(Clone, Debug)]
pub(crate) struct ForwardTarget {
    /// The account's normalized URL
    pub(crate) url: UpstreamUrl,
    /// Its credential
    pub(crate) token: Arc<str>,
    /// Its proxy and the TLS client, the ones its WebSocket dials use
    pub(crate) route: Arc<DialRoute>,
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

/// POSTs `body` to `target` and returns the reply head within `timeout` (connect, proxy, TLS,
/// head); the error text never holds the credential
pub(crate) async fn post(
    rt: &Rt,
    target: &ForwardTarget,
    body: Bytes,
    limit: Duration,
) -> Result<ForwardReply, String> {
    let step = Mutex::new("TCP connect");
    match timeout(rt, limit, post_inner(rt, target, body, &step)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no reply head within the dial timeout (upstream.dial_timeout) in the {} step",
            step.into_inner().unwrap_or_else(PoisonError::into_inner)
        )),
    }
}

async fn post_inner(
    rt: &Rt,
    target: &ForwardTarget,
    body: Bytes,
    step: &Step,
) -> Result<ForwardReply, String> {
    let url = &target.url;
    let request = hyper::Request::post(url.path_and_query())
        .header(header::HOST, url.host_header())
        .header(header::AUTHORIZATION, format!("Bearer {}", target.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/event-stream, application/json")
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let io = open_stream(
        rt,
        url.host(),
        url.port(),
        url.is_tls(),
        &target.route,
        step,
    )
    .await
    .map_err(|f| f.message)?;
    enter(step, "HTTP request");
    let response = send(rt, io, request).await?;
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

/// Sends `request` as the only one of an HTTP/1.1 connection over `io` (forwarded and collector
/// POSTs)
pub(crate) async fn send(
    rt: &Rt,
    io: BoxIo,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Incoming>, String> {
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
