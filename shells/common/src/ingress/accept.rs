//! The accept loop: every connection is admitted, refused or closed by the core's
//! [`ClientSockets`](wsv2_core::ingress::ClientSockets) before hyper sees a byte of it, and
//! `accept` failures pause the loop instead of spinning it.
//!
//! A served connection runs hyper with the runtime's timer, so `ingress.header_read_timeout`
//! bounds both a request's header and the wait for the next request on a keep-alive connection;
//! its task also ends (closing the socket) when a newer connection evicts it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use smol_hyper::rt::FuturesIo;
use wsv2_core::errors::GatewayError;
use wsv2_core::ingress::AcceptNext;

use super::Ingress;
use super::sockets::{Accepted, ClientSlot, Eviction, classify};
use crate::hyper_timer::HyperTimer;
use crate::io::Prefixed;
use crate::log_limit::{ClientLine, limited};
use crate::runtime::{BoxIo, Clock, Listener, spawn, timeout};

/// Accepts connections until the task is aborted
pub(crate) async fn serve(listener: Box<dyn Listener>, ingress: Arc<Ingress>) {
    let mut clock = Clock::new(&ingress.rt);
    loop {
        // While too many sockets are on their way out, newcomers wait in the backlog.
        ingress.sockets.ready_to_accept().await;
        let (io, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                let now = clock.now();
                let next = ingress.sockets.accept_failed(now, classify(&e));
                limited!(
                    ingress.logs,
                    now,
                    ClientLine::AcceptFailed,
                    warn!(error = %e, "accept failed")
                );
                if let AcceptNext::PauseUntil(resume) = next {
                    clock.until(Some(resume)).await;
                }
                continue;
            }
        };
        match ingress.sockets.accept() {
            Accepted::Serve {
                slot,
                evicted,
                displaced,
            } => {
                if let Some(old) = displaced {
                    limited!(
                        ingress.logs,
                        clock.now(),
                        ClientLine::Evicted,
                        info!(
                            conn = %old,
                            "unauthenticated connection closed to make room for a newer one"
                        )
                    );
                }
                spawn(
                    &ingress.rt.clone(),
                    serve_connection(ingress.clone(), io, peer, slot, evicted),
                );
            }
            Accepted::Refuse(answer, guard) => {
                limited!(
                    ingress.logs,
                    clock.now(),
                    ClientLine::Refused,
                    warn!(%peer, "connection refused: the client socket cap is reached")
                );
                let ingress = ingress.clone();
                spawn(&ingress.rt.clone(), async move {
                    refuse(&ingress, io, &answer).await;
                    drop(guard);
                });
            }
        }
    }
}

/// Serves one connection with hyper until it ends, is upgraded or is evicted
async fn serve_connection(
    ingress: Arc<Ingress>,
    io: BoxIo,
    peer: SocketAddr,
    slot: ClientSlot,
    evicted: Eviction,
) {
    let conn = slot.handle();
    let io: BoxIo = Box::new(Prefixed::holding(io, slot));
    let handler = ingress.clone();
    let service = service_fn(move |mut req| {
        req.extensions_mut().insert(conn.clone());
        let ingress = handler.clone();
        async move { Ok::<_, Infallible>(ingress.route(req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(HyperTimer(ingress.rt.clone()))
        .header_read_timeout(ingress.cfg.ingress.header_read_timeout);
    let serving = builder
        .serve_connection(FuturesIo::new(io), service)
        .with_upgrades();
    tokio::select! {
        // An evicted connection is closed (by dropping hyper's connection) even if a request of
        // its is ready too.
        biased;
        () = evicted.fired() => {}
        served = serving => {
            if let Err(e) = served {
                limited!(
                    ingress.logs,
                    ingress.rt.now(),
                    ClientLine::ConnectionError,
                    debug!(%peer, error = %e, "client connection ended with an error")
                );
            }
        }
    }
}

/// Answers a refused connection and closes it: the answer, then our FIN, then its bytes are
/// read and dropped until it closes too (so it reads the answer rather than a reset), all
/// within `session.close_linger`
async fn refuse(ingress: &Ingress, mut io: BoxIo, answer: &GatewayError) {
    let response = http_response(answer);
    let _ = timeout(&ingress.rt, ingress.cfg.session.close_linger, async {
        io.write_all(&response).await?;
        io.close().await?;
        let mut scratch = [0u8; 512];
        while io.read(&mut scratch).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// A whole HTTP/1.1 answer for a connection hyper never saw
fn http_response(answer: &GatewayError) -> Vec<u8> {
    let body = answer.json_body();
    let status = hyper::StatusCode::from_u16(answer.status)
        .unwrap_or(hyper::StatusCode::SERVICE_UNAVAILABLE);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(seconds) = answer.retry_after {
        head.push_str(&format!("retry-after: {seconds}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}
