//! The admin endpoint of a mock (`wsv2-mock-upstream --admin ADDR`): plain HTTP on its own port,
//! so it keeps answering while the mock's own port is blackholed.
//!
//! | request | effect |
//! |---|---|
//! | `GET /state` | JSON: `fault`, `slow_ms`, `upgrade_status`, `open_connections` (WebSocket), `held_silent` (blackholed TCP), `upgrades` (accepted so far), `handshakes_in_flight_max` |
//! | `POST /fault?name=N[&slow_ms=MS]` | switches fault `N` on for every later response: `drop_mid_stream`, `error_429`, `error_500`, `blackhole`, `slow` (default 2000 ms); `none` switches it off |
//! | `POST /upgrade?status=S` | answers every later upgrade with HTTP `S` (401, 426, 429, 500, …); `0` accepts again |
//! | `POST /clear` | both off |
//! | `POST /drop-all` | cuts every open WebSocket connection now (TCP, no close frame) |
//! | `POST /reset-max` | restarts `handshakes_in_flight_max` (most upgrades being answered at once: the client's dials in flight) |
//!
//! Every `POST` answers the new state, or 400 with a one-line reason.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::Shared;
use crate::switches::RuntimeFault;

/// Binds `addr` and serves the admin routes until `shutdown` changes.
pub(crate) async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let shared = shared.clone();
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(route(&req, &shared)) }
                    });
                    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(tcp), service));
                }
            }
        }
    });
    Ok(bound)
}

fn route(req: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let query = |key: &str| {
        req.uri().query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
        })
    };
    let outcome = match (req.method(), req.uri().path()) {
        (_, "/state") => Ok(()),
        (&Method::POST, "/drop-all") => {
            shared.switches.drop_all();
            Ok(())
        }
        (&Method::POST, "/reset-max") => {
            shared.switches.reset_handshaking_max();
            Ok(())
        }
        (&Method::POST, "/clear") => {
            shared.switches.set(None);
            shared.upgrade_status.store(0, Ordering::SeqCst);
            Ok(())
        }
        (&Method::POST, "/fault") => {
            let slow_ms = query("slow_ms").and_then(|v| v.parse().ok());
            match query("name").as_deref() {
                Some("none") => {
                    shared.switches.set(None);
                    Ok(())
                }
                Some(name) => match RuntimeFault::parse(name, slow_ms) {
                    Some(fault) => {
                        shared.switches.set(Some(fault));
                        Ok(())
                    }
                    None => Err(format!("unknown fault name {name:?}")),
                },
                None => Err("missing ?name=".to_owned()),
            }
        }
        (&Method::POST, "/upgrade") => match query("status").and_then(|s| s.parse::<u16>().ok()) {
            Some(status) if status == 0 || (400..600).contains(&status) => {
                shared.upgrade_status.store(status, Ordering::SeqCst);
                Ok(())
            }
            _ => Err("?status= must be 0 or an HTTP error status".to_owned()),
        },
        _ => Err(format!("no route {} {}", req.method(), req.uri().path())),
    };
    let (status, body) = match outcome {
        Ok(()) => (StatusCode::OK, state(shared).to_string()),
        Err(reason) => (StatusCode::BAD_REQUEST, reason),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn state(shared: &Shared) -> serde_json::Value {
    let fault = shared.switches.get();
    let slow_ms = match fault {
        Some(RuntimeFault::Slow(delay)) => Some(delay.as_millis() as u64),
        _ => None,
    };
    let upgrade_status = match shared.upgrade_status.load(Ordering::SeqCst) {
        0 => None,
        status => Some(status),
    };
    json!({
        "fault": fault.map(RuntimeFault::name),
        "slow_ms": slow_ms,
        "upgrade_status": upgrade_status,
        "open_connections": shared.switches.open_ws.load(Ordering::SeqCst),
        "held_silent": shared.switches.held_silent.load(Ordering::SeqCst),
        "upgrades": shared.next_conn.load(Ordering::SeqCst),
        "handshakes_in_flight_max": shared.switches.handshaking_max(),
    })
}
