//! Starting and stopping a mock instance; the state every connection shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::config::MockConfig;
use crate::http;
use crate::ids::IdGen;
use crate::record::{Record, Recorder};
use crate::store::ResponseStore;
use crate::switches::{RuntimeFault, Switches};
use crate::tls;
use crate::ws::OpenGuard;

/// State shared by every connection of one mock instance.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: MockConfig,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) ids: IdGen,
    pub(crate) store: ResponseStore,
    /// 0 = accept upgrades; otherwise the HTTP status every upgrade gets.
    pub(crate) upgrade_status: AtomicU16,
    /// Runtime faults and connection counters.
    pub(crate) switches: Arc<Switches>,
    pub(crate) next_conn: AtomicU64,
}

/// A running mock. Dropping it without [`MockHandle::shutdown`] also stops it, abruptly.
#[derive(Debug)]
pub struct MockHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    alive: mpsc::Receiver<()>,
}

/// Starts a mock on `127.0.0.1` with a free port; it is ready when this returns.
pub async fn start(cfg: MockConfig) -> std::io::Result<MockHandle> {
    start_on(SocketAddr::from(([127, 0, 0, 1], 0)), cfg).await
}

/// Starts a mock on `addr` (port 0 picks a free one); it is ready when this returns.
pub async fn start_on(addr: SocketAddr, cfg: MockConfig) -> std::io::Result<MockHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        recorder: Arc::new(Recorder::new(cfg.record.as_deref())?),
        ids: IdGen::new(cfg.deterministic),
        store: ResponseStore::default(),
        upgrade_status: AtomicU16::new(cfg.upgrade_status.unwrap_or(0)),
        switches: Arc::default(),
        next_conn: AtomicU64::new(0),
        cfg,
    });
    let tls = shared.cfg.tls.as_ref().map(tls::acceptor).transpose()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (alive_tx, alive) = mpsc::channel(1);
    let accept = tokio::spawn(accept_loop(
        listener,
        tls,
        shared.clone(),
        shutdown_rx,
        alive_tx,
    ));
    Ok(MockHandle {
        addr,
        shared,
        shutdown,
        accept,
        alive,
    })
}

impl MockHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/v1/responses`.
    pub fn ws_url(&self) -> String {
        let scheme = if self.shared.cfg.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/v1/responses", self.addr)
    }

    /// `http://ADDR/v1`, the base URL SDKs take.
    pub fn http_base(&self) -> String {
        let scheme = if self.shared.cfg.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/v1", self.addr)
    }

    /// Everything recorded so far (in-memory copy, capped at 200 000 records).
    pub fn records(&self) -> Vec<Record> {
        self.shared.recorder.snapshot()
    }

    /// Waits until some record satisfies `found` and returns it, or `None` after `timeout`.
    ///
    /// Woken by each new record (no polling), so a test can wait for an event of the mock —
    /// a connection's close, a frame — instead of sleeping.
    pub async fn wait_for_record(
        &self,
        timeout: Duration,
        mut found: impl FnMut(&Record) -> bool,
    ) -> Option<Record> {
        let mut changed = self.shared.recorder.subscribe();
        let search = async {
            loop {
                changed.borrow_and_update();
                if let Some(hit) = self.records().into_iter().find(|r| found(r)) {
                    return hit;
                }
                if changed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, search).await.ok()
    }

    /// Answers every later upgrade with `status` (e.g. 426, 429, 500), or accepts them again.
    pub fn set_upgrade_status(&self, status: Option<u16>) {
        self.shared
            .upgrade_status
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }

    /// Switches a fault on for every later response (and, for a blackhole, every socket), or
    /// off with `None`. Upgrade refusals are [`MockHandle::set_upgrade_status`].
    pub fn set_fault(&self, fault: Option<RuntimeFault>) {
        self.shared.switches.set(fault);
    }

    /// Every connection stopped for good by a `stop_reading` fault (no `mock_delay_ms`) reads
    /// again: a test decides when, instead of a timed pause.
    pub fn resume_reading(&self) {
        self.shared.switches.resume_reading();
    }

    /// The fault switched on now.
    pub fn fault(&self) -> Option<RuntimeFault> {
        self.shared.switches.get()
    }

    /// Stops (`false`) or resumes (`true`) answering pings on every WebSocket connection, open
    /// or later; the sockets otherwise keep working (frames are read and answered).
    pub fn set_pongs(&self, on: bool) {
        self.shared.switches.set_pongs(on);
    }

    /// Pings received over every WebSocket connection so far, answered or not.
    pub fn pings(&self) -> u64 {
        *self.shared.switches.pings().borrow()
    }

    /// Waits until at least `n` pings were received in all (woken per ping, no polling);
    /// whether they came within `timeout`.
    pub async fn wait_for_pings(&self, n: u64, timeout: Duration) -> bool {
        let mut pings = self.shared.switches.pings();
        tokio::time::timeout(timeout, pings.wait_for(|seen| *seen >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// WebSocket connections open now.
    pub fn open_connections(&self) -> u64 {
        self.shared.switches.open_ws.load(Ordering::SeqCst)
    }

    /// The most upgrades being answered at once so far (the client's dials in flight).
    pub fn handshakes_in_flight_max(&self) -> u64 {
        self.shared.switches.handshaking_max()
    }

    /// Serves the admin endpoint (see [`crate::admin`]) on `addr` until the mock shuts down;
    /// returns its bound address.
    pub async fn serve_admin(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        admin::serve(addr, self.shared.clone(), self.shutdown.subscribe()).await
    }

    /// Stops accepting, cuts every connection and waits until all of them are gone.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.accept).await;
        // Every connection task holds a sender; recv() yields None once the last one ends.
        while self.alive.recv().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) if shared.switches.blackhole() => {
                    tokio::spawn(hold_silent(tcp, shared.clone(), shutdown.clone()));
                }
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    let (shared, shutdown, alive) = (shared.clone(), shutdown.clone(), alive.clone());
                    match tls.clone() {
                        None => {
                            tokio::spawn(serve_http(tcp, shared, shutdown, alive));
                        }
                        Some(tls) => {
                            tokio::spawn(async move {
                                if let Ok(stream) = tls.accept(tcp).await {
                                    serve_http(stream, shared, shutdown, alive).await;
                                }
                            });
                        }
                    }
                }
                // Out of descriptors and the like: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// A blackholed connection: accepted, never read or answered, dropped once the blackhole is
/// switched off (the peer has long timed out by then) or the mock stops.
async fn hold_silent(tcp: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let _held = OpenGuard::count(&shared.switches.held_silent);
    let mut switched = shared.switches.watch();
    tokio::select! {
        _ = shutdown.changed() => {}
        _ = switched.wait_for(|f| *f != Some(RuntimeFault::Blackhole)) => {}
    }
    drop(tcp);
}

async fn serve_http<S>(
    tcp: S,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service_shutdown = shutdown.clone();
    let service_alive = alive.clone();
    let service = service_fn(move |req| {
        http::handle(
            req,
            shared.clone(),
            service_shutdown.clone(),
            service_alive.clone(),
        )
    });
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::select! {
        _ = connection => {}
        _ = shutdown.changed() => {}
    }
    drop(alive);
}
