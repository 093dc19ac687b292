//! The HTTP side of the mock: routing, bearer auth, the WebSocket upgrade (or the status switch
//! that refuses it), `POST /v1/responses` as SSE or JSON, and `GET /v1/models`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::emitter::{Emitter, Outgoing};
use crate::errors::ApiError;
use crate::generate::Generator;
use crate::ids::FIXED_CREATED_AT;
use crate::job::build_plan;
use crate::record::{Record, header_map};
use crate::request::{CreateRequest, Fault};
use crate::server::Shared;
use crate::ws;

/// Response body type of every route.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// Paths that serve the Responses API (WebSocket upgrade and POST).
const RESPONSES_PATHS: [&str; 3] = [
    "/v1/responses",
    "/responses",
    "/backend-api/codex/responses",
];
/// Paths that list models.
const MODELS_PATHS: [&str; 2] = ["/v1/models", "/models"];
/// Largest POST body the mock reads.
const MAX_BODY: usize = 256 << 20;
/// Events buffered between the generator and an HTTP response body.
const SSE_QUEUE: usize = 256;

/// Routes one HTTP request.
pub(crate) async fn handle(
    req: Request<Incoming>,
    server: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let responses = RESPONSES_PATHS.contains(&path.as_str());
    let response = if responses && method == Method::GET && is_upgrade(&req) {
        let switches = server.switches.clone();
        let _in_flight = switches.handshake();
        if !server.cfg.handshake_delay.is_zero() {
            tokio::time::sleep(server.cfg.handshake_delay).await; // the upstream's handshake time
        }
        upgrade(req, server, shutdown, alive)
    } else if responses && method == Method::POST {
        post_responses(req, server).await
    } else if MODELS_PATHS.contains(&path.as_str()) && method == Method::GET {
        simple(&req, &server, Ok(models()))
    } else {
        let error = ApiError {
            status: 404,
            code: None,
            message: format!("Invalid URL ({method} {path})"),
            ..ApiError::fault_400()
        };
        simple(&req, &server, Err(error))
    };
    Ok(response)
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Checks `Authorization: Bearer <api key>`.
fn authorize<B>(req: &Request<B>, server: &Shared) -> Result<(), ApiError> {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ApiError::unauthorized(false));
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && token.trim() == server.cfg.api_key =>
        {
            Ok(())
        }
        _ => Err(ApiError::unauthorized(true)),
    }
}

/// A GET route without a body: authorize, answer, record.
fn simple(
    req: &Request<Incoming>,
    server: &Shared,
    answer: Result<Value, ApiError>,
) -> Response<Body> {
    let result = authorize(req, server).and(answer);
    let response = match &result {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(error) => error_response(error),
    };
    record_http(
        server,
        req.method(),
        req.uri().path(),
        req.headers(),
        Value::Null,
        response.status(),
    );
    response
}

fn models() -> Value {
    json!({"object": "list", "data": [
        {"id": "mock-model", "object": "model", "created": FIXED_CREATED_AT, "owned_by": "wsv2-mock"}
    ]})
}

fn upgrade(
    mut req: Request<Incoming>,
    server: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) -> Response<Body> {
    let switched = match server.upgrade_status.load(Ordering::SeqCst) {
        0 => None,
        status => Some(ApiError::upgrade_switch(status)),
    };
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let refusal = switched.map(Err).unwrap_or_else(|| authorize(&req, &server)).err().or_else(|| {
        (key.is_none() || !version_ok).then(|| ApiError {
            message: "Invalid WebSocket upgrade: Sec-WebSocket-Key and Sec-WebSocket-Version: 13 are required.".into(),
            ..ApiError::fault_400()
        })
    });
    if let Some(error) = refusal {
        let response = error_response(&error);
        record_http(
            &server,
            req.method(),
            req.uri().path(),
            req.headers(),
            Value::Null,
            response.status(),
        );
        return response;
    }
    let conn = server.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
    server.recorder.push(Record::Handshake {
        conn,
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        headers: header_map(req.headers()),
    });
    let accept = derive_accept_key(key.as_ref().map_or(&b""[..], HeaderValue::as_bytes));
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            ws::serve(server, conn, upgraded, shutdown, alive).await;
        }
    });
    // No Sec-WebSocket-Extensions: permessage-deflate is declined and clients fall back to none.
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header("x-mock-conn-id", conn.to_string())
        .body(empty())
        .unwrap_or_default()
}

async fn post_responses(req: Request<Incoming>, server: Arc<Shared>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let record = |body: Value, status: StatusCode| {
        record_http(
            &server,
            &parts.method,
            parts.uri.path(),
            &parts.headers,
            body,
            status,
        );
    };
    let auth = authorize(&Request::from_parts(parts.clone(), ()), &server);
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Err(error) = auth {
        let response = error_response(&error);
        record(parsed, response.status());
        return response;
    }
    let Value::Object(map) = parsed.clone() else {
        let response = error_response(&ApiError::invalid_frame(
            "We could not parse the JSON body of your request.".into(),
        ));
        record(parsed, response.status());
        return response;
    };
    let stream = map.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut request = CreateRequest::parse(map);
    request.inherit(server.switches.get());
    let prior = match prepare(&server, &request) {
        Ok(prior) => prior,
        Err(error) => {
            let response = error_response(&error);
            record(parsed, response.status());
            return response;
        }
    };
    record(parsed, StatusCode::OK);
    let mut context = prior;
    context.extend(request.input.iter().cloned());
    let plan = build_plan(&server, &request, Arc::new(context), 0);
    let (out, mut events) = mpsc::channel(SSE_QUEUE);
    let generator_server = server.clone();
    tokio::spawn(async move {
        let mut em = Emitter::new(out, None, 0, generator_server.recorder.clone());
        let remember = |output: &[Value]| {
            if plan.spec.store {
                let mut full = plan.context.to_vec();
                full.extend(output.iter().cloned());
                generator_server
                    .store
                    .put(plan.spec.id.clone(), Arc::new(full));
            }
        };
        Generator::new(&plan, &mut em, None, &generator_server.ids, &remember)
            .run()
            .await;
    });
    if stream {
        return sse_response(events);
    }
    let mut last_response = None;
    while let Some(outgoing) = events.recv().await {
        match outgoing {
            Outgoing::Event { event_type, json } => {
                if matches!(
                    event_type.as_str(),
                    "response.completed" | "response.failed" | "response.incomplete"
                ) {
                    last_response = serde_json::from_str::<Value>(&json)
                        .ok()
                        .map(|mut e| e["response"].take());
                }
            }
            Outgoing::Close { .. } | Outgoing::Drop => break,
        }
    }
    match last_response {
        Some(response) => json_response(StatusCode::OK, &response),
        None => error_response(&ApiError::fault_500()),
    }
}

/// Request checks of a POST: rejections, injected error statuses and the stored parent context.
fn prepare(server: &Shared, request: &CreateRequest) -> Result<Vec<Value>, ApiError> {
    match &request.fault {
        Err(name) => {
            return Err(ApiError {
                message: format!("Unknown metadata.mock_fault '{name}'."),
                ..ApiError::fault_400()
            });
        }
        Ok(Some(Fault::Error400)) => return Err(ApiError::fault_400()),
        Ok(Some(Fault::Error429)) => return Err(ApiError::fault_429()),
        Ok(Some(Fault::Error500)) => return Err(ApiError::fault_500()),
        Ok(_) => {}
    }
    if request.background {
        return Err(ApiError {
            message: "The mock does not run background responses.".into(),
            ..ApiError::background_unsupported()
        });
    }
    match &request.previous_response_id {
        None => Ok(Vec::new()),
        Some(id) => server
            .store
            .get(id)
            .map(|context| context.to_vec())
            .ok_or_else(|| ApiError::previous_response_not_found(id)),
    }
}

/// `event: <type>\ndata: <json>\n\n` per event; a drop or close fault aborts the body.
fn sse_response(events: mpsc::Receiver<Outgoing>) -> Response<Body> {
    let frames = futures_util::stream::unfold(Some(events), |events| async move {
        let mut events = events?;
        match events.recv().await? {
            Outgoing::Event { event_type, json } => {
                let block = format!("event: {event_type}\ndata: {json}\n\n");
                Some((Ok(Frame::data(Bytes::from(block))), Some(events)))
            }
            Outgoing::Close { .. } | Outgoing::Drop => {
                Some((Err(std::io::Error::other("mock fault: stream cut")), None))
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap_or_default()
}

fn empty() -> Body {
    BodyExt::boxed(Full::new(Bytes::new()).map_err(|never: Infallible| match never {}))
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed(
            Full::new(bytes).map_err(|never: Infallible| match never {}),
        ))
        .unwrap_or_default()
}

/// An OpenAI-shaped HTTP error, with the error's headers (429 rate-limit headers) set.
fn error_response(error: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &error.http_body());
    for (name, value) in error.headers.iter().flatten() {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

fn record_http(
    server: &Shared,
    method: &Method,
    path: &str,
    headers: &hyper::HeaderMap,
    body: Value,
    status: StatusCode,
) {
    server.recorder.push(Record::Http {
        method: method.to_string(),
        path: path.to_owned(),
        headers: header_map(headers),
        body,
        status: status.as_u16(),
    });
}
