//! A TCP relay with fault switches, run by the reliability suite between the gateway and what it
//! dials (workload 3): in front of the mock (TLS failures), as the account's HTTP CONNECT proxy
//! (proxy failures) and in front of `redis-server` (Redis on a closed port, on a listener that
//! never answers, restarted).
//!
//! ```text
//!            POST /mode?name=closed ──▶ closed: no listener (connects refused), open pipes cut
//!   pass ──┬─POST /mode?name=silent ──▶ silent: accepted and read, never answered; open
//!          │                             pipes frozen (their bytes arrive late, after the clear)
//!          └─POST /mode?name=fail ────▶ fail: each new connection fails in turn (see below);
//!                                        open pipes cut, so the client must redial into it
//!   any ── POST /mode?name=pass ──▶ pass (the listener is bound again on the same port)
//! ```
//!
//! `fail`, plain relay: garbage bytes then close (a TLS client reads a non-TLS answer), close at
//! once, silence. `fail`, CONNECT proxy: `502 Bad Gateway`, `407 Proxy Authentication
//! Required`, close after the request head, silence. The admin endpoint answers every route
//! with the state as JSON.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::Failure;

/// The biggest CONNECT request head (or admin request) read.
const MAX_HEAD: usize = 8192;
/// How long a client may take to send its CONNECT head or admin request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What happens to connections (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward.
    Pass,
    /// No listener.
    Closed,
    /// Accept, read, never answer; freeze open pipes.
    Silent,
    /// Fail each new connection, cycling through the failure kinds.
    Fail,
}

impl Mode {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pass" => Self::Pass,
            "closed" => Self::Closed,
            "silent" => Self::Silent,
            "fail" => Self::Fail,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Closed => "closed",
            Self::Silent => "silent",
            Self::Fail => "fail",
        }
    }
}

/// The relay's plan.
#[derive(Debug, Clone)]
pub struct RelayPlan {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Where it forwards (a CONNECT proxy without it dials the requested authority).
    pub to: Option<String>,
    /// Speak HTTP CONNECT to the client first.
    pub connect_proxy: bool,
    /// The admin endpoint's address.
    pub admin: SocketAddr,
}

struct Shared {
    plan: RelayPlan,
    mode: watch::Sender<Mode>,
    /// Bumped to cut every open pipe.
    cut: watch::Sender<u64>,
    accepted: AtomicU64,
    open_pipes: AtomicU64,
    failed: AtomicU64,
}

/// Binds, prints `listening on tcp://ADDR` and `admin on http://ADDR`, and serves forever.
pub async fn run(plan: RelayPlan) -> Result<(), Failure> {
    let listener = TcpListener::bind(plan.listen)
        .await
        .map_err(|e| Failure::new(format!("bind {}: {e}", plan.listen)))?;
    let admin = TcpListener::bind(plan.admin)
        .await
        .map_err(|e| Failure::new(format!("bind {}: {e}", plan.admin)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new(format!("local address: {e}")))?;
    println!(
        "admin on http://{}",
        admin
            .local_addr()
            .map_err(|e| Failure::new(format!("local address: {e}")))?
    );
    println!("listening on tcp://{addr}");
    let shared = Arc::new(Shared {
        plan,
        mode: watch::channel(Mode::Pass).0,
        cut: watch::channel(0).0,
        accepted: AtomicU64::new(0),
        open_pipes: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    tokio::spawn(serve_admin(admin, shared.clone()));
    let mut listener = Some(listener);
    let mut mode = shared.mode.subscribe();
    loop {
        let Some(bound) = &listener else {
            // Closed: wait for another mode, then bind the same port again.
            let _ = mode.changed().await;
            if *mode.borrow_and_update() != Mode::Closed {
                listener = Some(rebind(addr).await?);
            }
            continue;
        };
        tokio::select! {
            accepted = bound.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                let _ = socket.set_nodelay(true);
                let n = shared.accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(socket, n, shared.clone()));
            }
            _ = mode.changed() => {
                if *mode.borrow_and_update() == Mode::Closed {
                    listener = None;
                }
            }
        }
    }
}

async fn rebind(addr: SocketAddr) -> Result<TcpListener, Failure> {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
        // The port was ours a moment ago; a rebind can race the kernel's release of it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Failure::new(format!("rebind {addr}: {last:?}")))
}

async fn serve(mut client: TcpStream, n: u64, shared: Arc<Shared>) {
    let mode = *shared.mode.borrow();
    let connect = shared.plan.connect_proxy;
    let head = if connect {
        match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
            Ok(Some(head)) => head,
            _ => return,
        }
    } else {
        String::new()
    };
    match mode {
        Mode::Pass => {}
        Mode::Closed => return,
        Mode::Silent => return silence(client, &shared).await,
        Mode::Fail => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            let kinds = if connect { 4 } else { 3 };
            let answer: &[u8] = match (connect, n % kinds) {
                (true, 0) => b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n",
                (true, 1) => b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm=\"relay\"\r\ncontent-length: 0\r\n\r\n",
                (false, 0) => b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
                (_, k) if k == kinds - 1 => return silence(client, &shared).await,
                _ => b"",
            };
            let _ = client.write_all(answer).await;
            return;
        }
    }
    let target = match (&shared.plan.to, connect) {
        (Some(to), _) => to.clone(),
        (None, true) => match connect_authority(&head) {
            Some(authority) => authority,
            None => {
                let _ = client
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            }
        },
        (None, false) => return,
    };
    let Ok(upstream) = TcpStream::connect(&target).await else {
        if connect {
            let _ = client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
        return;
    };
    let _ = upstream.set_nodelay(true);
    if connect
        && client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
    {
        return;
    }
    shared.open_pipes.fetch_add(1, Ordering::Relaxed);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    // Either direction ending ends the pipe (both sockets close).
    tokio::select! {
        () = pump(client_read, upstream_write, &shared) => {}
        () = pump(upstream_read, client_write, &shared) => {}
    }
    shared.open_pipes.fetch_sub(1, Ordering::Relaxed);
}

/// Reads and drops whatever comes until the peer leaves or the pipes are cut.
async fn silence(mut client: TcpStream, shared: &Shared) {
    let mut cut = shared.cut.subscribe();
    let mut sink = vec![0u8; 4096];
    loop {
        tokio::select! {
            read = client.read(&mut sink) => if matches!(read, Ok(0) | Err(_)) { return },
            _ = cut.changed() => return,
        }
    }
}

/// Copies `from` to `to` until either ends or the pipes are cut; holds while the mode is silent.
async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, shared: &Shared) {
    let mut mode = shared.mode.subscribe();
    let mut cut = shared.cut.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *mode.borrow_and_update() == Mode::Silent {
            tokio::select! {
                _ = mode.changed() => continue,
                _ = cut.changed() => return,
            }
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = mode.changed() => continue,
            _ = cut.changed() => return,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Reads up to the end of an HTTP request head (`\r\n\r\n`); bytes past it are not expected
/// (a CONNECT client waits for the answer, an admin client sends no body).
async fn read_head(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || !matches!(socket.read(&mut byte).await, Ok(1)) {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// `CONNECT host:port HTTP/1.1` → `host:port`.
fn connect_authority(head: &str) -> Option<String> {
    let mut words = head.lines().next()?.split(' ');
    (words.next()? == "CONNECT").then_some(())?;
    Some(words.next()?.to_owned())
}

async fn serve_admin(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(Some(head)) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut socket)).await
            else {
                return;
            };
            let (status, body) = admin_route(&head, &shared);
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        });
    }
}

fn admin_route(head: &str, shared: &Shared) -> (&'static str, String) {
    let target = head.lines().next().and_then(|l| l.split(' ').nth(1));
    let (path, query) = target
        .unwrap_or_default()
        .split_once('?')
        .unwrap_or((target.unwrap_or_default(), ""));
    let name = query.split('&').find_map(|pair| pair.strip_prefix("name="));
    match (path, name.and_then(Mode::parse)) {
        ("/state", _) => {}
        ("/mode", Some(mode)) => {
            if matches!(mode, Mode::Closed | Mode::Fail) {
                shared.cut.send_modify(|n| *n += 1);
            }
            shared.mode.send_replace(mode);
        }
        _ => {
            return (
                "400 Bad Request",
                json!({"error": "no such route or mode"}).to_string(),
            );
        }
    }
    let state = json!({
        "mode": shared.mode.borrow().name(),
        "accepted": shared.accepted.load(Ordering::Relaxed),
        "open_pipes": shared.open_pipes.load(Ordering::Relaxed),
        "failed": shared.failed.load(Ordering::Relaxed),
    });
    ("200 OK", state.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_authority_is_the_request_target() {
        let head = "CONNECT 127.0.0.1:443 HTTP/1.1\r\nhost: 127.0.0.1:443\r\n\r\n";
        assert_eq!(connect_authority(head).as_deref(), Some("127.0.0.1:443"));
        assert_eq!(connect_authority("GET / HTTP/1.1\r\n\r\n"), None);
    }
}
