//! The admin listener (`admin_listen`, by default `127.0.0.1:9464`): what names accounts, keys
//! and models stays off the public listener.
//!
//! - `GET /metrics`: the Prometheus text (404 with `metrics = false`);
//! - `GET /readyz`: the public verdict, whether upgrades are accepted now (`upgrades`:
//!   `accepted` or the refusal), plus every account's detail — state (`usable`,
//!   `cooling` with the time left, `disabled`), transport, responses in flight against its
//!   concurrency, slot waiters, pool conns — 200 when ready, else 503;
//! - `GET /healthz`: 200 while the process serves.
//!
//! The public listener keeps `/healthz` and a plain `/readyz`, and answers `/metrics` with a 404
//! that names this listener. At most `ingress.max_admin_connections` connections are served at
//! once (one more is closed at once); hyper reads each request under
//! `ingress.header_read_timeout`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use smol_hyper::rt::FuturesIo;
use wsv2_core::control::{AccountState, Readiness};

use crate::http_task::GatewayBody;
use crate::hyper_timer::HyperTimer;
use crate::ingress::Ingress;
use crate::log_limit::{ClientLine, limited};
use crate::runtime::{Clock, Listener, spawn};
use crate::shared::{ControlMsg, ask};

/// Counts one served admin connection until dropped
struct Served(Arc<AtomicUsize>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts admin connections until the task is aborted
pub(crate) async fn serve(listener: Box<dyn Listener>, ingress: Arc<Ingress>) {
    let mut clock = Clock::new(&ingress.rt);
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let io = match listener.accept().await {
            Ok((io, _)) => io,
            Err(e) => {
                let now = clock.now();
                limited!(
                    ingress.logs,
                    now,
                    ClientLine::AcceptFailed,
                    warn!(error = %e, "admin accept failed")
                );
                clock
                    .until(Some(now + ingress.cfg.ingress.accept_error_backoff))
                    .await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= ingress.cfg.ingress.max_admin_connections {
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let served = Served(open.clone());
        let handler = ingress.clone();
        let mut builder = http1::Builder::new();
        builder
            .timer(HyperTimer(ingress.rt.clone()))
            .header_read_timeout(ingress.cfg.ingress.header_read_timeout);
        spawn(&ingress.rt, async move {
            let _served = served;
            let service = service_fn(move |req| {
                let ingress = handler.clone();
                async move { Ok::<_, Infallible>(route(&ingress, &req).await) }
            });
            let _ = builder.serve_connection(FuturesIo::new(io), service).await;
        });
    }
}

fn json_response(status: StatusCode, body: Value) -> Response<GatewayBody> {
    crate::health::json_response(status, body).map(BodyExt::boxed_unsync)
}

async fn route<B>(ingress: &Ingress, req: &Request<B>) -> Response<GatewayBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"status": "error", "reason": "use GET"}),
        );
    }
    match req.uri().path() {
        "/metrics" => ingress.metrics_response().await,
        "/healthz" => json_response(StatusCode::OK, json!({"status": "ok"})),
        "/readyz" => readiness(ingress).await,
        path => json_response(
            StatusCode::NOT_FOUND,
            json!({"status": "error", "reason": format!("no admin route {path}")}),
        ),
    }
}

async fn readiness(ingress: &Ingress) -> Response<GatewayBody> {
    let Some(detail) = ask(&ingress.control, |reply| ControlMsg::Readiness { reply }).await else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": "control task stopped", "accounts": []}),
        );
    };
    let shutting_down = ingress.lifecycle.is_shutting_down();
    let (status, body) = readiness_body(&detail, shutting_down);
    json_response(status, body)
}

/// The admin `/readyz` answer for `detail`
fn readiness_body(detail: &Readiness, shutting_down: bool) -> (StatusCode, Value) {
    let accounts: Vec<Value> = detail
        .accounts
        .iter()
        .map(|a| {
            let mut account = json!({
                "id": a.account.0,
                "name": a.name,
                "state": a.state.as_str(),
                "transport": if a.websocket { "websocket" } else { "http" },
                "in_flight": a.in_flight,
                "concurrency": a.concurrency,
                "slot_waiters": a.slot_waiters,
            });
            if let AccountState::Cooling { remaining } = a.state {
                account["cooling_ms"] = json!(remaining.as_millis() as u64);
            }
            if let Some(pool) = &a.pool {
                account["pool"] = json!({
                    "open": pool.open,
                    "idle": pool.idle,
                    "leased": pool.leased,
                    "dialing": pool.dialing,
                    "waiters": pool.waiters,
                });
            }
            account
        })
        .collect();
    let upgrades = match &detail.upgrade {
        Ok(()) => Value::from("accepted"),
        Err(refusal) => Value::from(refusal.error().message.into_owned()),
    };
    let reason = if shutting_down {
        Some("shutting down".to_owned())
    } else {
        detail
            .verdict
            .as_ref()
            .err()
            .map(|r| r.error().message.into_owned())
    };
    match reason {
        None => (
            StatusCode::OK,
            json!({"status": "ready", "upgrades": upgrades, "accounts": accounts}),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": reason, "upgrades": upgrades, "accounts": accounts}),
        ),
    }
}
