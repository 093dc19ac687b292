//! What an unauthenticated, slow or broken client can hold of the listener: handshakes that break
//! RFC 6455, frames that break it, dripping headers, short bodies, connections that never speak,
//! and the log lines all of them would write. Real sockets, bytes written by hand.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, LogCapture, Setup, create};

shell_tests! {
    upgrades_that_break_rfc_6455_get_400_or_426_and_never_101,
    frames_that_break_rfc_6455_close_1007_or_1002_not_a_bare_tcp_close,
    dripping_headers_and_idle_keep_alives_are_closed_at_header_read_timeout_while_a_client_is_served,
    a_post_body_short_of_its_content_length_gets_408_at_body_read_timeout,
    over_the_unauthenticated_cap_the_oldest_silent_connection_makes_room_for_a_client,
    over_the_client_socket_cap_a_connection_gets_503_with_retry_after,
    a_flood_of_refused_upgrades_logs_one_line_per_interval_with_a_count,
}

/// The RFC 6455 example key
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An HTTP answer read off a raw socket
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The head, header names lower-cased
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n == name).then(|| v.trim())
        })
    }

    fn error_code(&self) -> Value {
        serde_json::from_str::<Value>(&self.body)
            .map_or(Value::Null, |b| b["error"]["code"].clone())
    }
}

/// Reads one HTTP answer (head, then `content-length` bytes of body) within 5 s
async fn read_answer(tcp: &mut TcpStream) -> Answer {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = tcp.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed before an answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head: String = String::from_utf8_lossy(&buf[..head_end])
            .lines()
            .map(|l| match l.split_once(':') {
                Some((n, v)) => format!("{}:{v}\n", n.to_ascii_lowercase()),
                None => format!("{l}\n"),
            })
            .collect();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let n = tcp.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "closed inside the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        Answer { status, head, body }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer within 5 s")
}

/// Whether the peer closes `tcp` (EOF or reset) within `within`; bytes it sends first are dropped
async fn closes_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    let eof = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    tokio::time::timeout(within, eof).await.is_ok()
}

/// A WebSocket upgrade request with the headers a test leaves out or changes
fn upgrade(version: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("GET /v1/responses {version}\r\nHost: gateway\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Authorization: Bearer {CLIENT_KEY}\r\n\r\n"));
    request
}

const UPGRADE: (&str, &str) = ("Upgrade", "websocket");
const CONNECTION: (&str, &str) = ("Connection", "Upgrade");
const VERSION_13: (&str, &str) = ("Sec-WebSocket-Version", "13");
const GOOD_KEY: (&str, &str) = ("Sec-WebSocket-Key", KEY);

async fn send(addr: std::net::SocketAddr, request: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    tcp
}

async fn upgrades_that_break_rfc_6455_get_400_or_426_and_never_101(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let addr = setup.gateway.addr;
    let cases: [(&str, String, u16); 7] = [
        (
            "no key",
            upgrade("HTTP/1.1", &[UPGRADE, CONNECTION, VERSION_13]),
            400,
        ),
        (
            "a key that is not base64",
            upgrade(
                "HTTP/1.1",
                &[
                    UPGRADE,
                    CONNECTION,
                    VERSION_13,
                    ("Sec-WebSocket-Key", "not a key!"),
                ],
            ),
            400,
        ),
        (
            "a key of 15 bytes",
            upgrade(
                "HTTP/1.1",
                &[
                    UPGRADE,
                    CONNECTION,
                    VERSION_13,
                    ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"),
                ],
            ),
            400,
        ),
        (
            "no Connection: Upgrade",
            upgrade(
                "HTTP/1.1",
                &[UPGRADE, ("Connection", "keep-alive"), VERSION_13, GOOD_KEY],
            ),
            400,
        ),
        (
            "HTTP/1.0",
            upgrade("HTTP/1.0", &[UPGRADE, CONNECTION, VERSION_13, GOOD_KEY]),
            400,
        ),
        (
            "version 8",
            upgrade(
                "HTTP/1.1",
                &[
                    UPGRADE,
                    CONNECTION,
                    ("Sec-WebSocket-Version", "8"),
                    GOOD_KEY,
                ],
            ),
            426,
        ),
        (
            "no version",
            upgrade("HTTP/1.1", &[UPGRADE, CONNECTION, GOOD_KEY]),
            426,
        ),
    ];
    for (case, request, status) in cases {
        let mut tcp = send(addr, &request).await;
        let answer = read_answer(&mut tcp).await;
        assert_eq!(answer.status, status, "{case}: {answer:?}");
        let code = if status == 426 {
            "unsupported_websocket_version"
        } else {
            "invalid_websocket_handshake"
        };
        assert_eq!(answer.error_code(), code, "{case}: {answer:?}");
        let version = answer.header("sec-websocket-version");
        assert_eq!(
            version,
            (status == 426).then_some("13"),
            "{case}: {answer:?}"
        );
    }
    // A token list naming upgrade (as browsers send it) is a valid handshake.
    let request = upgrade(
        "HTTP/1.1",
        &[
            UPGRADE,
            ("Connection", "keep-alive, Upgrade"),
            VERSION_13,
            GOOD_KEY,
        ],
    );
    let mut tcp = send(addr, &request).await;
    let answer = read_answer(&mut tcp).await;
    assert_eq!(answer.status, 101, "{answer:?}");
    assert_eq!(
        answer.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "RFC 6455's example answer"
    );
}

/// One client frame: `first` is the FIN/RSV/opcode byte; masked unless `unmasked`
fn frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mask_bit = if unmasked { 0 } else { 0x80 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    if unmasked {
        out.extend_from_slice(payload);
    } else {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    out
}

/// Reads server frames until a close frame and returns its code (`None`: the socket ended
/// without one, or nothing came within 5 s)
async fn read_close_code(tcp: &mut TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut head = [0u8; 2];
            tcp.read_exact(&mut head).await.ok()?;
            let len = match head[1] & 0x7f {
                126 => usize::from(tcp.read_u16().await.ok()?),
                127 => usize::try_from(tcp.read_u64().await.ok()?).ok()?,
                n => usize::from(n),
            };
            let mut payload = vec![0u8; len];
            tcp.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == 0x8 {
                return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

async fn frames_that_break_rfc_6455_close_1007_or_1002_not_a_bare_tcp_close(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let cases: [(&str, Vec<u8>, u16); 7] = [
        (
            "invalid UTF-8 in a text frame",
            frame(0x81, &[0xc3, 0x28], false),
            1007,
        ),
        ("a reserved bit set", frame(0xc1, b"{}", false), 1002),
        ("an unmasked client frame", frame(0x81, b"{}", true), 1002),
        ("a continuation of nothing", frame(0x80, b"{}", false), 1002),
        ("a fragmented ping", frame(0x09, b"", false), 1002),
        ("a ping of 126 bytes", frame(0x89, &[0u8; 126], false), 1002),
        ("an unknown opcode", frame(0x83, b"{}", false), 1002),
    ];
    for (case, bytes, code) in cases {
        let request = upgrade("HTTP/1.1", &[UPGRADE, CONNECTION, VERSION_13, GOOD_KEY]);
        let mut tcp = send(setup.gateway.addr, &request).await;
        assert_eq!(read_answer(&mut tcp).await.status, 101, "{case}");
        tcp.write_all(&bytes).await.unwrap();
        assert_eq!(read_close_code(&mut tcp).await, Some(code), "{case}");
    }
    // The session after a violation is gone; a well-behaved one is served as before.
    let mut ws = setup.client().await;
    ws.send_json(&create("hi", json!({}))).await.unwrap();
    assert_eq!(
        ws.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
}

async fn dripping_headers_and_idle_keep_alives_are_closed_at_header_read_timeout_while_a_client_is_served(
    shell: Shell,
) {
    let header_read_timeout = Duration::from_secs(1);
    let setup = Setup::new(shell, |c| {
        c.core.ingress.header_read_timeout = header_read_timeout;
    })
    .await;
    let addr = setup.gateway.addr;
    // Each sends one byte of a request header every 100 ms and never finishes it.
    let drip = |_| async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        let header = b"GET /v1/responses HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 256].iter());
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut sink = [0u8; 64];
        let (mut rd, mut wr) = tcp.split();
        let mut header = header.copied();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let byte = header.next().unwrap_or(b'a');
                    if wr.write_all(&[byte]).await.is_err() {
                        break;
                    }
                }
                read = rd.read(&mut sink) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        break;
                    }
                }
            }
        }
        started.elapsed()
    };
    let drippers = futures_util::future::join_all((0..20).map(drip));
    // A keep-alive connection served once, then silent.
    let keep_alive = async {
        let mut tcp = send(addr, "GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n").await;
        assert_eq!(read_answer(&mut tcp).await.status, 200);
        let answered = Instant::now();
        assert!(closes_within(&mut tcp, Duration::from_secs(10)).await);
        answered.elapsed()
    };
    let client = async {
        let mut ws = setup.client().await;
        ws.send_json(&create("served", json!({}))).await.unwrap();
        ws.read_turn().await.unwrap().last_type().to_owned()
    };
    let (dripped, idle, served) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(drippers, keep_alive, client)
    })
    .await
    .expect("every dripping connection was closed");
    assert_eq!(served, "response.completed");
    let bound = header_read_timeout + Duration::from_secs(2);
    for held in dripped.iter().chain([&idle]) {
        assert!(
            *held >= header_read_timeout - Duration::from_millis(100) && *held <= bound,
            "closed after {held:?}, expected {header_read_timeout:?} .. {bound:?}: {dripped:?}"
        );
    }
}

async fn a_post_body_short_of_its_content_length_gets_408_at_body_read_timeout(shell: Shell) {
    let setup = Setup::new(shell, |c| {
        c.core.ingress.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    let request = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"model\":"
    );
    let mut tcp = send(setup.gateway.addr, &request).await;
    let answer = read_answer(&mut tcp).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.error_code(), "request_timeout", "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert!(closes_within(&mut tcp, Duration::from_secs(5)).await);
    assert!(setup.frames().is_empty(), "nothing went upstream");
}

async fn over_the_unauthenticated_cap_the_oldest_silent_connection_makes_room_for_a_client(
    shell: Shell,
) {
    let setup = Setup::new(shell, |c| {
        c.core.ingress.max_unauthenticated_connections = 4;
    })
    .await;
    let addr = setup.gateway.addr;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // The gateway accepts in connect order: the client is the fifth unauthenticated connection.
    let mut ws = setup.client().await;
    ws.send_json(&create("served", json!({}))).await.unwrap();
    assert_eq!(
        ws.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    assert!(
        closes_within(&mut silent[0], Duration::from_secs(5)).await,
        "the oldest silent connection made room"
    );
    // The others are still served.
    for tcp in &mut silent[1..] {
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(tcp).await.status, 200);
    }
}

async fn over_the_client_socket_cap_a_connection_gets_503_with_retry_after(shell: Shell) {
    let setup = Setup::new(shell, |c| {
        c.core.ingress.max_client_sockets = 2;
        c.core.ingress.busy_retry_after = Duration::from_millis(1500);
    })
    .await;
    let mut first = setup.client().await;
    let _second = setup.client().await;
    let request = upgrade("HTTP/1.1", &[UPGRADE, CONNECTION, VERSION_13, GOOD_KEY]);
    let mut third = send(setup.gateway.addr, &request).await;
    let answer = read_answer(&mut third).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.error_code(), "too_many_connections", "{answer:?}");
    assert_eq!(
        answer.header("retry-after"),
        Some("2"),
        "rounded up: {answer:?}"
    );
    assert!(closes_within(&mut third, Duration::from_secs(5)).await);
    // The sockets within the cap are unaffected.
    first
        .send_json(&create("still served", json!({})))
        .await
        .unwrap();
    assert_eq!(
        first.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
}

async fn a_flood_of_refused_upgrades_logs_one_line_per_interval_with_a_count(shell: Shell) {
    let logs = LogCapture::start();
    let interval = Duration::from_millis(200);
    let setup = Setup::new(shell, |c| {
        c.client_keys[0].max_sockets = 1;
        c.core.ingress.client_log_interval = interval;
    })
    .await;
    let _held = setup.client().await;
    let line = "upgrade refused: the key's socket cap is reached";
    let request = upgrade("HTTP/1.1", &[UPGRADE, CONNECTION, VERSION_13, GOOD_KEY]);
    let started = Instant::now();
    // Refused upgrades until a line reports the ones dropped before it.
    let mut refused = 0;
    let counted = loop {
        let mut tcp = send(setup.gateway.addr, &request).await;
        assert_eq!(read_answer(&mut tcp).await.status, 429);
        refused += 1;
        let counted = logs
            .lines()
            .into_iter()
            .find(|l| l.contains(line) && !l.contains("suppressed=0"));
        if let Some(counted) = counted {
            break counted;
        }
        assert!(refused < 5000, "no line counted the dropped ones");
    };
    let elapsed = started.elapsed();
    let written = logs.lines().iter().filter(|l| l.contains(line)).count();
    let allowed = (elapsed.as_millis() / interval.as_millis()) as usize + 1;
    assert!(
        written <= allowed,
        "{written} lines for {refused} refusals in {elapsed:?}"
    );
    assert!(counted.contains("suppressed="), "{counted}");
    let dropped: u64 = counted
        .split("suppressed=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a count");
    assert!(dropped >= 1 && dropped < refused, "{counted}");
}
