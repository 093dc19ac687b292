//! Fixtures of the `harden_*` scenarios, all on real loopback sockets: a TLS front for the mock
//! upstream (self-signed test CA in `fixtures/tls`), an HTTP CONNECT proxy, a SOCKS5 proxy, a
//! silent peer, a log capture to await log lines, and a tiny HTTP GET for the health routes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wsv2_core::file_config::{GatewayConfig, ProxyUrl};
/// The upstream key and the mock the gateway-binary tests use too
pub use wsv2_tests::gateway_process::{UPSTREAM_KEY, mock};

/// The client key of `GatewayConfig::demo`
pub const CLIENT_KEY: &str = wsv2_core::file_config::DEMO_CLIENT_KEY;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/shells/fixtures/tls")
        .join(name)
}

/// The test CA's PEM path (what `tls_ca_file` names)
pub fn test_ca_file() -> String {
    fixture("ca.pem").display().to_string()
}

/// A gateway configuration with one account at `url`, trusting the test CA
pub fn config_for(url: &str) -> GatewayConfig {
    let mut config = GatewayConfig::demo(url, UPSTREAM_KEY).expect("demo config");
    config.tls_ca_file = Some(test_ca_file());
    config
}

/// Accepts connections on loopback and runs `serve` on each; aborted on drop
pub struct Fixture {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_fixture<F, Fut>(serve: F) -> Fixture
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tokio::spawn(serve(tcp)));
        }
    });
    Fixture { addr, task }
}

/// TLS (the test leaf for 127.0.0.1) in front of `backend`, a plain TCP address
pub async fn tls_front(backend: SocketAddr) -> Fixture {
    let certs = vec![CertificateDer::from_pem_file(fixture("server.pem")).expect("cert")];
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    spawn_fixture(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut plain) = TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        }
    })
    .await
}

/// Accepts TCP and never sends a byte (holds each socket until the peer leaves)
pub async fn silent_peer() -> Fixture {
    spawn_fixture(|mut tcp| async move {
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await
}

/// What a proxy fixture does with a request
#[derive(Clone, Debug)]
pub enum ProxyMode {
    /// Tunnel to the requested target
    Tunnel,
    /// HTTP: answer this status; SOCKS5: answer this REP code
    Refuse(u16),
}

/// What a proxy fixture saw
#[derive(Clone, Debug, Default)]
pub struct ProxyLog {
    /// `host:port` of every tunnel asked for
    pub targets: Vec<String>,
    /// `Proxy-Authorization` values (HTTP) or `user:pass` (SOCKS5)
    pub auth: Vec<Option<String>>,
    /// Tunnels opened
    pub tunnels: usize,
}

/// A proxy fixture and its log
pub struct Proxy {
    pub fixture: Fixture,
    pub log: Arc<Mutex<ProxyLog>>,
}

impl Proxy {
    pub fn log(&self) -> ProxyLog {
        self.log.lock().unwrap().clone()
    }

    /// `scheme://[user:pass@]127.0.0.1:port`
    pub fn url(&self, scheme: &str, auth: Option<(&str, &str)>) -> ProxyUrl {
        let userinfo = auth.map_or(String::new(), |(u, p)| format!("{u}:{p}@"));
        ProxyUrl::parse(&format!("{scheme}://{userinfo}{}", self.fixture.addr)).expect("proxy url")
    }
}

/// An HTTP CONNECT proxy
pub async fn http_connect_proxy(mode: ProxyMode) -> Proxy {
    let log = Arc::new(Mutex::new(ProxyLog::default()));
    let shared = log.clone();
    let fixture = spawn_fixture(move |mut tcp| {
        let log = shared.clone();
        let mode = mode.clone();
        async move {
            let mut head = BytesMut::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let text = String::from_utf8_lossy(&head).to_string();
            let target = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("CONNECT "))
                .and_then(|l| l.split(' ').next())
                .unwrap_or_default()
                .to_owned();
            let auth = text.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("proxy-authorization")
                    .then(|| value.trim().to_owned())
            });
            {
                let mut log = log.lock().unwrap();
                log.targets.push(target.clone());
                log.auth.push(auth);
            }
            match mode {
                ProxyMode::Refuse(status) => {
                    let _ = tcp
                        .write_all(
                            format!(
                                "HTTP/1.1 {status} Refused by fixture\r\nContent-Length: 0\r\n\r\n"
                            )
                            .as_bytes(),
                        )
                        .await;
                }
                ProxyMode::Tunnel => {
                    let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
                        let _ = tcp.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    log.lock().unwrap().tunnels += 1;
                    if tcp
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .is_ok()
                    {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
                    }
                }
            }
        }
    })
    .await;
    Proxy { fixture, log }
}

/// A SOCKS5 proxy (RFC 1928; RFC 1929 username/password when the client offers it)
pub async fn socks5_proxy(mode: ProxyMode) -> Proxy {
    let log = Arc::new(Mutex::new(ProxyLog::default()));
    let shared = log.clone();
    let fixture = spawn_fixture(move |tcp| {
        let log = shared.clone();
        let mode = mode.clone();
        async move {
            let _ = socks5_session(tcp, log, mode).await;
        }
    })
    .await;
    Proxy { fixture, log }
}

async fn socks5_session(
    mut tcp: TcpStream,
    log: Arc<Mutex<ProxyLog>>,
    mode: ProxyMode,
) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    tcp.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; greeting[1] as usize];
    tcp.read_exact(&mut methods).await?;
    let mut auth = None;
    if methods.contains(&2) {
        tcp.write_all(&[5, 2]).await?;
        let mut ver_ulen = [0u8; 2];
        tcp.read_exact(&mut ver_ulen).await?;
        let mut user = vec![0u8; ver_ulen[1] as usize];
        tcp.read_exact(&mut user).await?;
        let mut plen = [0u8; 1];
        tcp.read_exact(&mut plen).await?;
        let mut pass = vec![0u8; plen[0] as usize];
        tcp.read_exact(&mut pass).await?;
        auth = Some(format!(
            "{}:{}",
            String::from_utf8_lossy(&user),
            String::from_utf8_lossy(&pass)
        ));
        tcp.write_all(&[1, 0]).await?;
    } else {
        tcp.write_all(&[5, 0]).await?;
    }
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).await?;
    let host = match head[3] {
        1 => {
            let mut ip = [0u8; 4];
            tcp.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            tcp.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            tcp.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).to_string()
        }
        _ => {
            let mut ip = [0u8; 16];
            tcp.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
    };
    let mut port = [0u8; 2];
    tcp.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    {
        let mut log = log.lock().unwrap();
        log.targets.push(target.clone());
        log.auth.push(auth);
    }
    let reply = |rep: u8| [5, rep, 0, 1, 0, 0, 0, 0, 0, 0];
    match mode {
        ProxyMode::Refuse(code) => {
            tcp.write_all(&reply(code as u8)).await?;
        }
        ProxyMode::Tunnel => {
            let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
                tcp.write_all(&reply(5)).await?;
                return Ok(());
            };
            log.lock().unwrap().tunnels += 1;
            tcp.write_all(&reply(0)).await?;
            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
        }
    }
    Ok(())
}

/// Log lines of the current thread's subscriber (see `support::capture`; tests run on a
/// current-thread runtime, so every gateway task of [`Shell::Tokio`](super::Shell::Tokio) logs
/// here; a shell with its own executor threads must carry the test's subscriber to its tasks),
/// with a way to await one
#[derive(Clone)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    changed: Arc<watch::Sender<usize>>,
    partial: Arc<Mutex<Vec<u8>>>,
}

/// Keeps the capture installed
pub struct CaptureGuard(#[allow(dead_code)] tracing::subscriber::DefaultGuard);

impl LogCapture {
    /// Installs a capture as this thread's default subscriber (INFO and up, plain text)
    pub fn install() -> (Self, CaptureGuard) {
        let capture = Self {
            lines: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
            partial: Arc::default(),
        };
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(capture.clone())
            .finish();
        let guard = super::capture::install(subscriber);
        (capture, CaptureGuard(guard))
    }

    /// The first line containing every one of `parts`, and when it was written; waits for it up
    /// to `timeout` (woken per line, no polling)
    pub async fn wait_for(&self, parts: &[&str], timeout: Duration) -> Option<(Instant, String)> {
        let mut rx = self.changed.subscribe();
        let search = async {
            loop {
                rx.borrow_and_update();
                let hit = self
                    .lines
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(_, l)| parts.iter().all(|p| l.contains(p)))
                    .cloned();
                if let Some(hit) = hit {
                    return hit;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, search).await.ok()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut partial = self.partial.lock().unwrap();
        partial.extend_from_slice(buf);
        let mut added = 0;
        while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            self.lines.lock().unwrap().push((Instant::now(), text));
            added += 1;
        }
        drop(partial);
        if added > 0 {
            self.changed.send_modify(|n| *n += added);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// `GET path` on `addr`: the status and the body
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
