//! The listener: hyper 1 HTTP/1.1 with upgrades. Everything that can be refused is refused
//! before the 101, as plain HTTP with an OpenAI error body; after it, the session task owns
//! the socket and every failure is an `error` event or a close code.
//!
//! `accept` (the accept loop and the client socket caps) decides which connections hyper
//! serves at all; this module routes their requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
use wsv2_core::errors::{ErrorCode, ErrorType, GatewayError};
use wsv2_core::ingress::{UpgradeRequest, check_upgrade};
use wsv2_core::{AccountId, Config, SessionId};

use crate::control::SessionInfo;
use crate::control_task::{ControlMsg, ControlTx, DialHeaders, ask};
use crate::io::Prefixed;
use crate::lifecycle::{Lifecycle, ShutdownSignal};
use crate::log_limit::{ClientLine, LogLimits, limited};
use crate::relay_config::ws_config;
use crate::reload::Swap;
use crate::runtime::{BoxIo, Rt, spawn};
use crate::session_task::{SessionStart, run_session};

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

/// Headers that form the pool key: sent on every dial for the key
const COMPAT_HEADERS: [&str; 2] = ["openai-beta", "x-codex-beta-features"];

/// Headers that belong to one session: sent only on a dial made for it
const SESSION_HEADERS: [&str; 6] = [
    "session-id",
    "thread-id",
    "x-client-request-id",
    "originator",
    "user-agent",
    "x-codex-window-id",
];

/// One configured client key
#[derive(Debug)]
pub(crate) struct ClientKey {
    /// Its configured name, for logs and metric labels (never the key)
    pub(crate) name: Arc<str>,
    /// Stickiness scope
    pub(crate) group: String,
    /// Open WebSocket cap
    pub(crate) max_sockets: usize,
    /// Open sockets of this key (carried over by a reload that keeps the key)
    pub(crate) open: Arc<AtomicUsize>,
}

impl ClientKey {
    pub(crate) fn new(name: &str, group: String, max_sockets: usize) -> Self {
        Self {
            name: Arc::from(name),
            group,
            max_sockets,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// One open socket counted against its key's cap, and its shutdown signal (the socket counts
/// as open for graceful shutdown until both are dropped); released on drop
#[derive(Debug)]
pub(crate) struct SocketPermit {
    count: Arc<AtomicUsize>,
    shutdown: Option<ShutdownSignal>,
}

impl SocketPermit {
    /// A permit that counts against the key's cap but takes no shutdown signal (HTTP requests)
    pub(crate) fn without_shutdown(count: Arc<AtomicUsize>) -> Self {
        Self {
            count,
            shutdown: None,
        }
    }

    /// The socket's shutdown signal, for the session task to select on (once)
    pub(crate) fn take_shutdown(&mut self) -> ShutdownSignal {
        self.shutdown.take().unwrap_or_else(ShutdownSignal::never)
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Shared state of the listener
pub(crate) struct Ingress {
    pub(crate) rt: Rt,
    /// Client keys (swapped by a reload)
    pub(crate) keys: Swap<HashMap<String, ClientKey>>,
    pub(crate) control: ControlTx,
    pub(crate) cfg: Arc<Config>,
    /// Account names for log lines (swapped by a reload)
    pub(crate) account_names: Swap<HashMap<AccountId, String>>,
    pub(crate) next_session: AtomicU64,
    /// `/metrics` and the counters tasks bump (`None` with `metrics = false`)
    pub(crate) metrics: Option<Arc<crate::metrics_export::Metrics>>,
    /// Where accounts that resolve to HTTP are POSTed
    pub(crate) forward: Arc<HashMap<AccountId, crate::forward::ForwardTarget>>,
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
        if let Some(response) = crate::health::route(&self, &req).await {
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
        let (group, key_name, count) = match self.admit(&req, Door::Upgrade) {
            Ok(admitted) => admitted,
            Err(refusal) => return *refusal,
        };
        let tenant = tenant_of(&count);
        let permit = SocketPermit {
            count,
            shutdown: Some(self.lifecycle.subscribe()),
        };
        match ask(&self.control, |reply| ControlMsg::Upgrade { reply }).await {
            Some(Ok(())) => {}
            Some(Err(refusal)) => return error_response(&refusal.error()),
            None => return error_response(&GatewayError::gateway_gone()),
        }
        // check_upgrade made sure there is exactly one valid key.
        let key = req.headers().get(header::SEC_WEBSOCKET_KEY);
        let accept = derive_accept_key(key.map_or(&[][..], HeaderValue::as_bytes));
        let id = SessionId(self.next_session.fetch_add(1, Ordering::Relaxed));
        let (info, headers) = session_info(req.headers(), &group, tenant);
        let start = SessionStart {
            rt: self.rt.clone(),
            id,
            cfg: self.cfg.clone(),
            control: self.control.clone(),
            info,
            key_name,
            headers: Arc::new(headers),
            account_names: self.account_names.load(),
            permit,
            metrics: self.metrics.clone(),
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
                    run_session(ws, start).await;
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

/// Which door a request came in by (for the socket cap's log line and message)
#[derive(Clone, Copy, Debug)]
enum Door {
    Upgrade,
    Post,
}

/// What [`Ingress::admit`] learns of an accepted request's key: its group, its name and its
/// open-socket count
type Admitted = (String, Arc<str>, Arc<AtomicUsize>);

impl Ingress {
    /// The request's client key — its group, name and open-socket count, already counting this
    /// request — or the answer that refuses it: 401 for a missing or unknown key, 429 with
    /// `Retry-After` when the key is at its socket cap.
    ///
    /// A valid key also marks the request's connection authenticated: it no longer gives its
    /// place up to newer connections.
    fn admit<B>(&self, req: &Request<B>, door: Door) -> Result<Admitted, Box<Response<Body>>> {
        let headers = req.headers();
        let keys = self.keys.load();
        let Some(key) = bearer(headers).and_then(|k| keys.get(k)) else {
            let message = if bearer(headers).is_some() {
                "Incorrect API key provided"
            } else {
                "You didn't provide an API key; send Authorization: Bearer <key>"
            };
            return Err(Box::new(error_response(&GatewayError::new(
                401,
                ErrorType::InvalidRequest,
                Some(ErrorCode::InvalidApiKey),
                message,
            ))));
        };
        if let Some(conn) = req.extensions().get::<ClientConn>() {
            conn.authenticated();
        }
        let max = key.max_sockets;
        if key.open.fetch_add(1, Ordering::AcqRel) >= max {
            key.open.fetch_sub(1, Ordering::AcqRel);
            // The key itself is a credential: its group names it in the log.
            let now = self.rt.now();
            let held = match door {
                Door::Upgrade => {
                    limited!(
                        self.logs,
                        now,
                        ClientLine::KeySocketCap,
                        warn!(client = %key.name, group = %key.group, max_sockets = max, "upgrade refused: the key's socket cap is reached")
                    );
                    "open WebSockets"
                }
                Door::Post => {
                    limited!(
                        self.logs,
                        now,
                        ClientLine::KeySocketCap,
                        warn!(client = %key.name, group = %key.group, max_sockets = max, "POST refused: the key's socket cap is reached")
                    );
                    "open WebSockets and requests in flight"
                }
            };
            let wait = self.cfg.session.socket_cap_retry_after;
            let refusal = GatewayError::new(
                429,
                ErrorType::RateLimit,
                Some(ErrorCode::TooManySockets),
                format!("this key may hold at most {max} {held}"),
            )
            .with_retry_after(Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)));
            return Err(Box::new(error_response(&refusal)));
        }
        Ok((key.group.clone(), key.name.clone(), key.open.clone()))
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A client key's identity for fair slot sharing: its socket counter is one allocation per
/// key, kept by reloads that keep the key, and never shared between keys
pub(crate) fn tenant_of(count: &Arc<AtomicUsize>) -> u64 {
    Arc::as_ptr(count) as usize as u64
}

/// What the session tells the control task, and the headers it adds to upstream handshakes
fn session_info(headers: &HeaderMap, group: &str, tenant: u64) -> (SessionInfo, DialHeaders) {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    };
    let mut dial = DialHeaders::default();
    for (name, value) in headers {
        let lower = name.as_str();
        let is_compat = COMPAT_HEADERS.contains(&lower);
        let is_session =
            SESSION_HEADERS.contains(&lower) || (lower.starts_with("x-codex-") && !is_compat);
        if is_session {
            dial.per_session.push((name.clone(), value.clone()));
        }
    }
    let info = SessionInfo {
        group: group.to_owned(),
        tenant,
        session_key: headers
            .get("session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        openai_beta: values("openai-beta"),
        codex_beta_features: values("x-codex-beta-features"),
    };
    (info, dial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderName;

    #[test]
    fn compat_headers_form_the_key_session_headers_go_on_dials_and_auth_never_does() {
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
        let (info, dial) = session_info(&h, "team", 1);
        assert_eq!(info.group, "team");
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

    #[test]
    fn bearer_parsing_accepts_any_case_and_rejects_empty_tokens() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("bearer sk-1"));
        assert_eq!(bearer(&h), Some("sk-1"));
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
