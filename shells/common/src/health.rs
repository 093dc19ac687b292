//! `GET /healthz` and `GET /readyz` on the listen address.
//!
//! - `/healthz`: 200 while the process serves HTTP at all (liveness).
//! - `/readyz`: 200 when the listener is up and the gateway is not shutting down; with
//!   `ingress.ready_requires_upstream = true` also only while some account is usable over
//!   WebSocket — the same check an upgrade gets (`Control::check_ready`), so an account
//!   disabled by a 401 or rate limited shows here. Otherwise 503 with the reason. A plain
//!   status either way: no account names.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::lifecycle::Lifecycle;
use crate::shared::{ControlMsg, ControlTx, ask};

/// Liveness path
pub(crate) const HEALTHZ: &str = "/healthz";
/// Readiness path
pub(crate) const READYZ: &str = "/readyz";

/// The answer for a health path, or `None` when `req` is for another route; readiness asks
/// `lifecycle` and the control task
pub(crate) async fn route<B>(
    lifecycle: &Lifecycle,
    control: &ControlTx,
    req: &Request<B>,
) -> Option<Response<Full<Bytes>>> {
    let path = req.uri().path();
    if path != HEALTHZ && path != READYZ {
        return None;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Some(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"status": "error", "reason": "use GET"}),
        ));
    }
    if path == HEALTHZ {
        return Some(json_response(StatusCode::OK, json!({"status": "ok"})));
    }
    Some(match readiness(lifecycle, control).await {
        Ok(()) => json_response(StatusCode::OK, json!({"status": "ready"})),
        Err(reason) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": reason}),
        ),
    })
}

/// Whether an upgrade would be accepted now, or why not
pub(crate) async fn readiness(lifecycle: &Lifecycle, control: &ControlTx) -> Result<(), String> {
    if lifecycle.is_shutting_down() {
        return Err("shutting down".to_owned());
    }
    match ask(control, |reply| ControlMsg::Ready { reply }).await {
        Some(Ok(())) => Ok(()),
        Some(Err(refusal)) => Err(refusal.error().message.into_owned()),
        None => Err("control task stopped".to_owned()),
    }
}

/// A JSON answer that no cache keeps (the health routes' and the admin listener's)
pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
