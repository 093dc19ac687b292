//! The listener: hyper 1 HTTP/1.1 with upgrades. Everything that can be refused is refused
//! before the 101, as plain HTTP with an OpenAI error body; after it, the session task owns
//! the socket and every failure is an `error` event or a close code.
//!
//! `accept` (the accept loop and the client socket caps) decides which connections hyper
//! serves at all; this module routes their requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::Role;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use smol_hyper::rt::FuturesIo;
use tracing::warn;
use wsv2_core::errors::{ErrorType, GatewayError};
use wsv2_core::ingress::{
    Admitted, ClientKeys, Door, KeyRefusal, UpgradeRequest, check_upgrade, read_headers,
};
use wsv2_core::{AccountId, Config, SessionId};

use crate::holder::{HolderStart, Labels};
use crate::io::Prefixed;
use crate::lifecycle::Lifecycle;
use crate::log_limit::{ClientLine, LogLimits, limited};
use crate::relay_config::ws_config;
use crate::reload::Swap;
use crate::runtime::{BoxIo, Rt, spawn};
use crate::session_task::{SessionStart, run_session};
use crate::shared::{ControlMsg, ControlTx, DialHeaders, SocketPermit, ask, lock_keys};
use wsv2_core::turn::SessionInfo;

mod accept;
mod http_routes;
mod sockets;

pub(crate) use accept::serve;
use sockets::ClientConn;
pub(crate) use sockets::SocketTable;

/// The paths a client may upgrade on
const WS_PATHS: [&str; 3] = [
    "/v1/responses",
    "/responses",
    "/backend-api/codex/responses",
];

/// Shared state of the listener
pub(crate) struct Ingress {
    pub(crate) rt: Rt,
    /// The core's client-key table (replaced in place by a reload)
    pub(crate) keys: Arc<Mutex<ClientKeys>>,
    pub(crate) control: ControlTx,
    pub(crate) cfg: Arc<Config>,
    /// Account names for log lines (swapped by a reload)
    pub(crate) account_names: Swap<HashMap<AccountId, String>>,
    pub(crate) next_session: AtomicU64,
    /// `/metrics` and the counters tasks bump (`None` with `metrics = false`)
    pub(crate) metrics: Option<Arc<crate::metrics_export::Metrics>>,
    /// Where response spans go (`None` when traces are not exported)
    pub(crate) traces: Option<crate::traces::TraceSink>,
    /// Where accounts that resolve to HTTP are POSTed (swapped by a reload)
    pub(crate) forward: Swap<HashMap<AccountId, crate::forward::ForwardTarget>>,
    /// Shutdown state and the per-socket signals
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Every client socket, against `[ingress]`'s caps
    pub(crate) sockets: Arc<SocketTable>,
    /// Rate limits of the log lines clients can trigger
    pub(crate) logs: Arc<LogLimits>,
}

type Body = Full<Bytes>;

/// The core's answer as an HTTP response: its status, its OpenAI error body and its
/// `Retry-After`
fn error_response(error: &GatewayError) -> Response<Body> {
    let mut response = Response::new(Full::new(error.json_body()));
    *response.status_mut() =
        StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

impl Ingress {
    async fn handle(self: Arc<Self>, mut req: Request<Incoming>) -> Response<Body> {
        if let Some(response) = crate::health::route(&self.lifecycle, &self.control, &req).await {
            return response;
        }
        let path = req.uri().path();
        if !WS_PATHS.contains(&path) {
            return error_response(&GatewayError::not_found(format!(
                "no route for {} {path}",
                req.method()
            )));
        }
        if req.method() != Method::GET || !is_websocket_upgrade(req.headers()) {
            // HTTP (SSE) mode is issue 6; this listener serves WebSocket mode only.
            return error_response(&GatewayError::new(
                501,
                ErrorType::InvalidRequest,
                None,
                "this gateway serves the Responses API in WebSocket mode: send GET with Upgrade: websocket",
            ));
        }
        if let Err(refusal) = check_upgrade(&upgrade_request(&req)) {
            limited!(
                self.logs,
                self.rt.now(),
                ClientLine::BadHandshake,
                debug!(?refusal, "upgrade refused: not a valid WebSocket handshake")
            );
            let mut response = error_response(&refusal.answer());
            if let Some(version) = refusal.sec_websocket_version() {
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static(version),
                );
            }
            return response;
        }
        if self.lifecycle.is_shutting_down() {
            return error_response(&GatewayError::shutting_down(
                "the gateway is shutting down; connect to another instance",
            ));
        }
        let admitted = match self.admit(&req, Door::Upgrade) {
            Ok(admitted) => admitted,
            Err(refusal) => return *refusal,
        };
        let permit = SocketPermit::new(
            self.keys.clone(),
            &admitted,
            Some(self.lifecycle.subscribe()),
        );
        match ask(&self.control, |reply| ControlMsg::Upgrade { reply }).await {
            Some(Ok(())) => {}
            Some(Err(refusal)) => return error_response(&refusal.error()),
            None => return error_response(&GatewayError::gateway_gone()),
        }
        // check_upgrade made sure there is exactly one valid key.
        let key = req.headers().get(header::SEC_WEBSOCKET_KEY);
        let accept = derive_accept_key(key.map_or(&[][..], HeaderValue::as_bytes));
        let id = SessionId(self.next_session.fetch_add(1, Ordering::Relaxed));
        let (info, headers) = session_info(req.headers(), &admitted);
        let trace_header = trace_header(req.headers());
        let start = SessionStart {
            holder: self.holder_start(id, (info, headers), admitted.name, permit, trace_header),
            logs: self.logs.clone(),
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let max_message_size = self.cfg.upstream.max_message_size;
        let (logs, rt) = (self.logs.clone(), self.rt.clone());
        spawn(&self.rt, async move {
            match on_upgrade.await.map(|u| u.downcast::<FuturesIo<BoxIo>>()) {
                Ok(Ok(parts)) => {
                    // Bytes a client sent right behind its upgrade request come first.
                    let io = Prefixed::new(parts.read_buf, parts.io.into_inner());
                    let ws = WebSocketStream::from_raw_socket(
                        io,
                        Role::Server,
                        Some(ws_config(max_message_size)),
                    )
                    .await;
                    // A task of its own: this one's future (the upgrade's, the handshake's and
                    // the session's start) would otherwise stay allocated for the socket's life.
                    spawn(&rt, run_session(ws, start));
                }
                Ok(Err(_)) => {
                    warn!("client upgrade: the upgraded connection is not the accepted socket")
                }
                Err(e) => limited!(
                    logs,
                    rt.now(),
                    ClientLine::ConnectionError,
                    debug!(error = %e, "client upgrade failed")
                ),
            }
        });
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// The request's `traceparent` header, when it is one valid W3C value (anything else is
/// ignored: the span then starts a trace of its own)
pub(crate) fn trace_header(headers: &HeaderMap) -> Option<wsv2_core::trace_context::TraceContext> {
    let mut values = headers.get_all("traceparent").iter();
    let value = values.next()?;
    // Two traceparent headers: the W3C rule is to ignore both.
    if values.next().is_some() {
        return None;
    }
    wsv2_core::trace_context::TraceContext::parse(value.as_bytes())
}

impl Ingress {
    /// What the task of session or HTTP turn `id` starts with
    fn holder_start(
        &self,
        id: SessionId,
        (info, headers): (SessionInfo, DialHeaders),
        key_name: Arc<str>,
        permit: SocketPermit,
        trace_header: Option<wsv2_core::trace_context::TraceContext>,
    ) -> HolderStart {
        HolderStart {
            rt: self.rt.clone(),
            id,
            cfg: self.cfg.clone(),
            control: self.control.clone(),
            info,
            labels: Labels {
                key_name,
                account_names: self.account_names.load(),
                traces: self.traces.clone(),
                trace_header,
            },
            headers: Arc::new(headers),
            permit,
            metrics: self.metrics.clone(),
        }
    }

    /// Asks the core's key table about the request: its key, already counting this request, or
    /// the answer that refuses it (401 for a missing or unknown key, 429 with `Retry-After` at
    /// the key's socket cap).
    ///
    /// A valid key also marks the request's connection authenticated: it no longer gives its
    /// place up to newer connections.
    fn admit<B>(&self, req: &Request<B>, door: Door) -> Result<Admitted, Box<Response<Body>>> {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let verdict = lock_keys(&self.keys).admit(authorization, door);
        let refusal = match verdict {
            Ok(admitted) => {
                authenticated(req);
                return Ok(admitted);
            }
            Err(refusal) => refusal,
        };
        if let KeyRefusal::AtCap {
            name,
            group,
            max_sockets,
            ..
        } = &refusal
        {
            authenticated(req);
            let door = match door {
                Door::Upgrade => "upgrade",
                Door::Post => "POST",
            };
            // The key itself is a credential: its group names it in the log.
            limited!(
                self.logs,
                self.rt.now(),
                ClientLine::KeySocketCap,
                warn!(client = %name, group = %group, max_sockets, "{door} refused: the key's socket cap is reached")
            );
        }
        Err(Box::new(error_response(&refusal.error())))
    }
}

/// Marks the request's connection authenticated (it presented a valid key)
fn authenticated<B>(req: &Request<B>) {
    if let Some(conn) = req.extensions().get::<ClientConn>() {
        conn.authenticated();
    }
}

/// What RFC 6455 checks of an upgrade request
fn upgrade_request<B>(req: &Request<B>) -> UpgradeRequest<'_> {
    let all = |name| {
        req.headers()
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    };
    UpgradeRequest {
        http_1_1: req.version() >= Version::HTTP_11,
        connection: all(header::CONNECTION),
        keys: all(header::SEC_WEBSOCKET_KEY),
        versions: all(header::SEC_WEBSOCKET_VERSION),
    }
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// What the session tells the control task, and the headers it adds to upstream handshakes
fn session_info(headers: &HeaderMap, admitted: &Admitted) -> (SessionInfo, DialHeaders) {
    let read = read_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let mut per_session = read.per_session.iter().copied().peekable();
    let mut dial = DialHeaders::default();
    for (at, (name, value)) in headers.iter().enumerate() {
        if per_session.next_if_eq(&at).is_some() {
            dial.per_session.push((name.clone(), owned_value(value)));
        }
    }
    let info = SessionInfo {
        group: admitted.group.clone(),
        tenant: admitted.key.0,
        session_key: read.session_key,
        openai_beta: read.openai_beta,
        codex_beta_features: read.codex_beta_features,
    };
    (info, dial)
}

/// A copy of `value` in an allocation of its own. hyper's header values are slices of the
/// connection's 8 KiB read buffer: a clone kept for the session's life (its dial headers) would
/// keep that whole buffer alive beside the few bytes of the value, in every idle session.
fn owned_value(value: &HeaderValue) -> HeaderValue {
    let mut owned = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
    owned.set_sensitive(value.is_sensitive());
    owned
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderName;

    #[test]
    fn dial_headers_do_not_keep_the_request_buffer_alive() {
        // As hyper parses a request: every header value is a slice of one read buffer.
        let buffer = Bytes::from(b"sess-1codex".repeat(100));
        let range = buffer.as_ptr_range();
        let mut h = HeaderMap::new();
        let value = HeaderValue::from_maybe_shared(buffer.slice(0..6)).unwrap();
        h.insert("session-id", value);
        let mut agent = HeaderValue::from_maybe_shared(buffer.slice(6..11)).unwrap();
        agent.set_sensitive(true);
        h.insert("user-agent", agent);
        let admitted = Admitted {
            key: wsv2_core::ingress::ClientKeyId(7),
            name: Arc::from("client"),
            group: "team".to_owned(),
        };
        let (_, dial) = session_info(&h, &admitted);
        assert_eq!(dial.per_session.len(), 2);
        for (name, value) in &dial.per_session {
            assert!(
                !range.contains(&value.as_bytes().as_ptr()),
                "{name} still points into the request's buffer"
            );
        }
        let kept = |n: &str| {
            dial.per_session
                .iter()
                .find(|(k, _)| k == n)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(kept("session-id"), "sess-1");
        assert_eq!(kept("user-agent"), "codex");
        assert!(kept("user-agent").is_sensitive());
    }

    #[test]
    fn the_core_reading_of_the_headers_becomes_session_info_and_dial_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer sk-client"),
        );
        h.insert(
            "openai-beta",
            HeaderValue::from_static("responses_websockets=2026-02-06"),
        );
        h.insert("x-codex-beta-features", HeaderValue::from_static("a,b"));
        h.insert("session-id", HeaderValue::from_static("sess-1"));
        h.insert("x-codex-turn-metadata", HeaderValue::from_static("{}"));
        h.insert("user-agent", HeaderValue::from_static("codex"));
        h.insert("cookie", HeaderValue::from_static("x=y"));
        let admitted = Admitted {
            key: wsv2_core::ingress::ClientKeyId(7),
            name: Arc::from("client"),
            group: "team".to_owned(),
        };
        let (info, dial) = session_info(&h, &admitted);
        assert_eq!((info.group.as_str(), info.tenant), ("team", 7));
        assert_eq!(info.session_key.as_deref(), Some("sess-1"));
        assert_eq!(info.openai_beta, ["responses_websockets=2026-02-06"]);
        assert_eq!(info.codex_beta_features, ["a,b"]);
        let names = |v: &[(HeaderName, HeaderValue)]| -> Vec<String> {
            let mut n: Vec<String> = v.iter().map(|(k, _)| k.as_str().to_owned()).collect();
            n.sort();
            n
        };
        assert_eq!(
            names(&dial.per_session),
            ["session-id", "user-agent", "x-codex-turn-metadata"]
        );
    }
}
