//! The listener's HTTP routes: `POST /v1/responses` (and its aliases) as one turn on a pooled
//! upstream conn, and the `/metrics` answer (served by the admin listener only; the public one
//! answers it 404). Everything else goes to the WebSocket handler.
//!
//! A POST gets the same client auth and per-key cap as an upgrade: an in-flight request counts
//! against the key's `max_sockets` like an open WebSocket does, until its answer ends. Its body
//! must arrive within `ingress.body_read_timeout` (hyper bounds only the header).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use wsv2_core::SessionId;
use wsv2_core::errors::{ErrorType, GatewayError};
use wsv2_core::ingress::Door;

use super::{Ingress, WS_PATHS, error_response, session_info};
use crate::http_task::{self, GatewayBody, HttpStart};
use crate::log_limit::{ClientLine, limited};
use crate::runtime::{Elapsed, timeout};
use crate::shared::SocketPermit;
use crate::shared::{ControlMsg, ask};

/// The OpenMetrics text format's content type
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn boxed(response: Response<Full<Bytes>>) -> Response<GatewayBody> {
    response.map(BodyExt::boxed_unsync)
}

fn shutting_down() -> Response<GatewayBody> {
    boxed(error_response(&GatewayError::gateway_gone()))
}

impl Ingress {
    /// Routes one request: POST turns and `/metrics` here, the rest to the WebSocket handler
    pub(crate) async fn route(self: Arc<Self>, req: Request<Incoming>) -> Response<GatewayBody> {
        let path = req.uri().path();
        if req.method() == Method::POST && WS_PATHS.contains(&path) {
            return self.handle_post(req).await;
        }
        if req.method() == Method::GET && path == "/metrics" {
            // It names accounts, keys and models: only the admin listener serves it.
            return boxed(error_response(&GatewayError::not_found(
                "/metrics is served on the admin listener (admin_listen)",
            )));
        }
        boxed(self.handle(req).await)
    }

    /// The `/metrics` answer (the admin listener's route)
    pub(crate) async fn metrics_response(&self) -> Response<GatewayBody> {
        let Some(metrics) = &self.metrics else {
            return boxed(error_response(&GatewayError::not_found(
                "metrics are disabled (metrics = false)",
            )));
        };
        let Some(snapshot) = ask(&self.control, |reply| ControlMsg::Scrape { reply }).await else {
            return shutting_down();
        };
        let text = metrics.render(snapshot);
        let mut response = Response::new(Full::new(Bytes::from(text)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
        boxed(response)
    }

    async fn handle_post(&self, req: Request<Incoming>) -> Response<GatewayBody> {
        if self.lifecycle.is_shutting_down() {
            return boxed(error_response(&GatewayError::shutting_down(
                "the gateway is shutting down; send the request to another instance",
            )));
        }
        let admitted = match self.admit(&req, Door::Post) {
            Ok(admitted) => admitted,
            Err(refusal) => return boxed(*refusal),
        };
        // An HTTP turn is not signalled at shutdown: it ends with its response.
        let permit = SocketPermit::new(self.keys.clone(), &admitted, None);
        let (info, headers) = session_info(req.headers(), &admitted);
        let group = &admitted.group;
        let trace_header = super::trace_header(req.headers());
        let limit = self.cfg.upstream.max_message_size;
        // hyper bounds the header; the body's bound is the gateway's own.
        let body_timeout = self.cfg.ingress.body_read_timeout;
        let reading = Limited::new(req.into_body(), limit).collect();
        let body = match timeout(&self.rt, body_timeout, reading).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return boxed(error_response(&GatewayError::new(
                    413,
                    ErrorType::InvalidRequest,
                    None,
                    format!("the request body is larger than {limit} bytes"),
                )));
            }
            Ok(Err(_)) => {
                return boxed(error_response(&GatewayError::bad_request(
                    "the request body could not be read",
                )));
            }
            Err(Elapsed) => {
                limited!(
                    self.logs,
                    self.rt.now(),
                    ClientLine::BodyTimeout,
                    info!(group = %group, "POST refused: its body did not arrive within body_read_timeout")
                );
                let mut response = error_response(&GatewayError::request_timeout(body_timeout));
                // The rest of the body may still come: the connection cannot carry another request.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return boxed(response);
            }
        };
        let id = SessionId(self.next_session.fetch_add(1, Ordering::Relaxed));
        let key_name = admitted.name.clone();
        let (head, body_rx) = http_task::spawn(HttpStart {
            holder: self.holder_start(id, (info, headers), key_name, permit, trace_header),
            body,
            forward: self.forward.load(),
        });
        // The task ends without a head only when the control task is gone.
        let Ok(head) = head.await else {
            return shutting_down();
        };
        let mut response = Response::new(http_task::channel_body(body_rx));
        *response.status_mut() =
            StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let h = response.headers_mut();
        if let Some(content_type) = head.content_type {
            if content_type.as_bytes().starts_with(b"text/event-stream") {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            }
            h.insert(header::CONTENT_TYPE, content_type);
        }
        if let Some(seconds) = head.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
