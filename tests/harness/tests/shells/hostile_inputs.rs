//! The table of hostile protocol inputs (issue 14, workload 5): each row sends one kind of bad
//! input over real sockets, checks its clear answer, and checks that the gateway keeps serving
//! a well-behaved client.
//!
//! | row | clear answer | test |
//! |---|---|---|
//! | bytes that are not HTTP (a TLS hello) | 400, connection closed | [`non_http_bytes_get_400_and_the_connection_closes`] |
//! | an unknown path | 404 + OpenAI error JSON | [`an_upgrade_to_an_unknown_path_gets_404`] |
//! | a request head with too many headers | 431, connection closed | [`a_request_head_with_too_many_headers_gets_431`] |
//! | no or unknown client key | 401, nothing upstream | `security::no_request_without_a_valid_key_reaches_an_upstream` |
//! | a key over its socket cap | 429 + `Retry-After` | `refusals::a_key_over_its_socket_cap_gets_429_with_retry_after`, `security::a_key_over_its_socket_cap_is_refused_at_both_doors_and_other_keys_are_not` |
//! | an invalid `Sec-WebSocket-Key` | 400 | [`an_upgrade_with_a_malformed_websocket_key_gets_400`] (issue 13 item 11) |
//! | `Sec-WebSocket-Version` other than 13 | 426 + `Sec-WebSocket-Version: 13` | [`an_upgrade_with_version_8_gets_426_naming_version_13`] (item 11) |
//! | no `Connection: Upgrade` | 4xx, no 101 | [`an_upgrade_without_connection_upgrade_is_refused`] (item 11) |
//! | an HTTP/1.0 upgrade | 4xx, no 101 | [`an_http_1_0_upgrade_is_refused`] (item 11) |
//! | a request head dripped one byte a second | closed by `ingress.header_read_timeout` (default 30 s) | [`a_dripping_request_head_is_closed_in_time`] (item 3); 200 at once: `harden_ingress` |
//! | a POST body shorter than its `Content-Length` | 408, closed by `ingress.body_read_timeout` | [`a_post_body_that_never_arrives_is_closed_in_time`] (item 3) |
//! | idle TCP connects up to the descriptor limit (EMFILE) | back off, recover, refuse cleanly | `wsv2_tests::gateway_ulimit` (each shell's binary under `ulimit -n 128`, item 2) |
//! | connections that never send a byte | the oldest gives way to a newer one; a 503 over the socket cap | `harden_ingress` (item 2) |
//! | a text frame of invalid UTF-8 | close 1007 | [`a_text_frame_of_invalid_utf8_gets_close_1007`] (item 11) |
//! | a frame with reserved bits set | close 1002 | [`a_frame_with_reserved_bits_set_gets_close_1002`] (item 11) |
//! | a text frame that is not JSON | `error` event 400, socket stays open | [`a_frame_of_invalid_json_gets_an_error_event_and_the_socket_stays_open`] |
//! | a binary frame | `error` event 400, socket stays open | `refusals::a_binary_frame_gets_an_error_event_and_the_socket_stays_open` |
//! | a message over `upstream.max_message_size` | close 1009, nothing upstream | `refusals::a_message_over_16_mib_closes_the_client_with_1009` |
//! | a POST body that is not JSON | 400 + OpenAI error JSON | [`a_post_body_that_is_not_json_gets_400`] |
//! | a POST body over `upstream.max_message_size` | 413 | [`a_post_body_over_the_size_limit_gets_413`] |
//! | a flood of creates | 429 `too_many_held_creates` beyond `session.max_held_creates_per_session` | [`a_flood_of_creates_gets_429_beyond_the_held_limit`] |
//! | a flood of pings from a client that does not read | pongs, the socket still serves turns | [`a_flood_of_pings_is_answered_and_the_socket_still_serves`] |
//! | a client that never reads | close 1008 after `session.client_write_timeout` (the frames not yet written are dropped; the close still reaches it if it reads again) | [`a_client_that_never_reads_is_closed_after_the_write_timeout`] (item 6); its slots: `harden_stall::a_key_that_never_reads_does_not_starve_another_key` |
//!
//! Rows whose fix is on another branch are `#[ignore]`d with the issue item and branch; un-ignore
//! them when it merges.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsv2_tests::client::Incoming;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, LogCapture, Setup, create};
use crate::support::raw::{ANSWER, RawAnswer, exchange};

shell_tests! {
    non_http_bytes_get_400_and_the_connection_closes,
    an_upgrade_to_an_unknown_path_gets_404,
    a_request_head_with_too_many_headers_gets_431,
    an_upgrade_with_a_malformed_websocket_key_gets_400,
    an_upgrade_with_version_8_gets_426_naming_version_13,
    an_upgrade_without_connection_upgrade_is_refused,
    an_http_1_0_upgrade_is_refused,
    a_dripping_request_head_is_closed_in_time,
    a_post_body_that_never_arrives_is_closed_in_time,
    a_text_frame_of_invalid_utf8_gets_close_1007,
    a_frame_with_reserved_bits_set_gets_close_1002,
    a_frame_of_invalid_json_gets_an_error_event_and_the_socket_stays_open,
    a_post_body_that_is_not_json_gets_400,
    a_post_body_over_the_size_limit_gets_413,
    a_flood_of_creates_gets_429_beyond_the_held_limit,
    a_flood_of_pings_is_answered_and_the_socket_still_serves,
    a_client_that_never_reads_is_closed_after_the_write_timeout,
}

/// A well-behaved client still gets a whole turn: the gateway keeps serving others
async fn assert_still_serving(setup: &Setup) {
    assert_still_serving_with(setup, json!({})).await;
}

/// [`assert_still_serving`] with the turn's `metadata` (e.g. a short answer)
async fn assert_still_serving_with(setup: &Setup, metadata: Value) {
    let mut ws = setup.client().await;
    ws.send_json(&create("a normal turn", metadata))
        .await
        .expect("send");
    loop {
        let event = ws.recv_event(ANSWER).await.expect("an event in time");
        assert_ne!(event["type"], "error", "{event}");
        if event["type"] == "response.completed" {
            return;
        }
    }
}

/// An upgrade request with the client key; `extra` holds the other header lines (the caller
/// decides `Connection` and the WebSocket headers)
fn upgrade(addr: SocketAddr, version_line: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET /v1/responses {version_line}\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Authorization: Bearer {CLIENT_KEY}\r\n{extra}\r\n"
    )
    .into_bytes()
}

const GOOD_KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

async fn non_http_bytes_get_400_and_the_connection_closes(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    // The start of a TLS ClientHello, then text that is no request line either.
    let mut garbage = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    garbage.extend_from_slice(b"\x00\xff not http at all\r\n\r\n");
    let answer = exchange(setup.gateway.addr, &garbage).await;
    assert_eq!(answer.status, Some(400), "{answer:?}");
    assert!(answer.closed, "the connection is closed after the 400");
    assert_still_serving(&setup).await;
}

async fn an_upgrade_to_an_unknown_path_gets_404(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let request = format!(
        "GET /v1/elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n{GOOD_KEY}Authorization: Bearer {CLIENT_KEY}\r\n\r\n"
    );
    let answer = exchange(setup.gateway.addr, request.as_bytes()).await;
    assert_eq!(answer.status, Some(404), "{answer:?}");
    let body: Value = serde_json::from_str(&answer.body).expect("an OpenAI error JSON body");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_still_serving(&setup).await;
}

async fn a_request_head_with_too_many_headers_gets_431(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let headers: String = (0..500).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let request = upgrade(
        setup.gateway.addr,
        "HTTP/1.1",
        &format!("Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{GOOD_KEY}{headers}"),
    );
    let answer = exchange(setup.gateway.addr, &request).await;
    assert_eq!(answer.status, Some(431), "{answer:?}");
    assert_still_serving(&setup).await;
}

async fn an_upgrade_with_a_malformed_websocket_key_gets_400(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    // RFC 6455 §4.1: the key is 16 bytes, base64-encoded (24 characters).
    let request = upgrade(
        setup.gateway.addr,
        "HTTP/1.1",
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-base64!\r\n",
    );
    let answer = exchange(setup.gateway.addr, &request).await;
    assert_eq!(answer.status, Some(400), "{answer:?}");
    assert!(setup.frames().is_empty());
    assert_still_serving(&setup).await;
}

async fn an_upgrade_with_version_8_gets_426_naming_version_13(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let request = upgrade(
        setup.gateway.addr,
        "HTTP/1.1",
        &format!("Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n{GOOD_KEY}"),
    );
    let answer = exchange(setup.gateway.addr, &request).await;
    assert_eq!(answer.status, Some(426), "{answer:?}");
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("\r\nsec-websocket-version: 13\r\n"),
        "{answer:?}"
    );
    assert_still_serving(&setup).await;
}

async fn an_upgrade_without_connection_upgrade_is_refused(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let request = upgrade(
        setup.gateway.addr,
        "HTTP/1.1",
        &format!("Sec-WebSocket-Version: 13\r\n{GOOD_KEY}Connection: close\r\n"),
    );
    let answer = exchange(setup.gateway.addr, &request).await;
    assert!(is_refusal(&answer), "a 4xx, not an upgrade: {answer:?}");
    assert_still_serving(&setup).await;
}

async fn an_http_1_0_upgrade_is_refused(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let request = upgrade(
        setup.gateway.addr,
        "HTTP/1.0",
        &format!("Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{GOOD_KEY}"),
    );
    let answer = exchange(setup.gateway.addr, &request).await;
    assert!(is_refusal(&answer), "a 4xx, not an upgrade: {answer:?}");
    assert_still_serving(&setup).await;
}

/// The read timeouts of the two rows below (the defaults, at most 30 s and 60 s, are checked
/// against docs/config.md by the core's tests); each connection must be closed by its timeout
/// plus 2 s
const READ_TIMEOUT: Duration = Duration::from_secs(1);
const READ_DEADLINE: Duration = Duration::from_secs(3);

async fn a_dripping_request_head_is_closed_in_time(shell: Shell) {
    assert!(wsv2_core::Config::default().ingress.header_read_timeout <= Duration::from_secs(30));
    let setup = Setup::new(shell, |c| c.core.ingress.header_read_timeout = READ_TIMEOUT).await;
    let mut tcp = TcpStream::connect(setup.gateway.addr).await.unwrap();
    let started = Instant::now();
    let mut head = upgrade(setup.gateway.addr, "HTTP/1.1", GOOD_KEY);
    head.truncate(head.len() - 2); // never the blank line that ends the head
    let drip = async {
        // One byte a second, never finishing the head; a write error means the gateway closed.
        for byte in head.iter().cycle() {
            if tcp.write_all(&[*byte]).await.is_err() {
                return;
            }
            let mut probe = [0u8; 512];
            // The read doubles as the one-second pace: it returns early only on EOF or data.
            let read = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut probe)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                return;
            }
        }
    };
    let closed = tokio::time::timeout(READ_DEADLINE, drip).await;
    assert!(closed.is_ok(), "still open after {:?}", started.elapsed());
    assert_still_serving(&setup).await;
}

async fn a_post_body_that_never_arrives_is_closed_in_time(shell: Shell) {
    let setup = Setup::new(shell, |c| c.core.ingress.body_read_timeout = READ_TIMEOUT).await;
    let mut tcp = TcpStream::connect(setup.gateway.addr).await.unwrap();
    let request = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"model\":"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(READ_DEADLINE, tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a body that never arrives holds the socket");
    assert_still_serving(&setup).await;
}

/// Upgrades by hand and returns the raw socket after the 101
async fn raw_websocket(setup: &Setup) -> TcpStream {
    let mut tcp = TcpStream::connect(setup.gateway.addr).await.unwrap();
    let request = upgrade(
        setup.gateway.addr,
        "HTTP/1.1",
        &format!("Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{GOOD_KEY}"),
    );
    tcp.write_all(&request).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// A masked client frame (RFC 6455 §5.2) with mask key 0, payload under 126 bytes
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![first_byte, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// Reads server frames until a close frame; its status code (`None` for a bare TCP close)
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(ANSWER, tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the gateway closes the connection");
    // Walk unmasked server frames (payloads here are short).
    let mut at = 0;
    while at + 2 <= buf.len() {
        let (opcode, len) = (buf[at] & 0x0f, usize::from(buf[at + 1] & 0x7f));
        let (header, len) = match len {
            126 => (
                4,
                usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])),
            ),
            127 => return None,
            n => (2, n),
        };
        let payload = buf.get(at + header..at + header + len)?;
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
        at += header + len;
    }
    None
}

async fn a_text_frame_of_invalid_utf8_gets_close_1007(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let mut tcp = raw_websocket(&setup).await;
    tcp.write_all(&client_frame(0x81, b"{\"type\":\"\xff\xfe\"}"))
        .await
        .unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1007));
    assert!(setup.frames().is_empty(), "nothing reached upstream");
    assert_still_serving(&setup).await;
}

async fn a_frame_with_reserved_bits_set_gets_close_1002(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let mut tcp = raw_websocket(&setup).await;
    // FIN + RSV1 with no extension negotiated.
    tcp.write_all(&client_frame(0xC1, b"{}")).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1002));
    assert_still_serving(&setup).await;
}

async fn a_frame_of_invalid_json_gets_an_error_event_and_the_socket_stays_open(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let mut ws = setup.client().await;
    for bad in [
        "{\"type\":\"response.create\",",
        "[1,2,3]",
        "{\"model\":\"gpt-5\"}",
        "{\"type\":\"response.nope\"}",
    ] {
        ws.send_text(bad.to_owned()).await.unwrap();
        let event = ws.recv_event(ANSWER).await.expect("an answer");
        assert_eq!(event["type"], "error", "{bad}: {event}");
        assert_eq!(event["status"], 400, "{bad}: {event}");
    }
    // The same socket still serves a turn, and so does the gateway.
    ws.send_json(&create("after the garbage", json!({})))
        .await
        .unwrap();
    let turn = ws.read_turn().await.expect("a turn");
    assert!(
        turn.events
            .iter()
            .any(|e| e["type"] == "response.completed"),
        "{:?}",
        turn.events
    );
    assert!(
        setup.frames().len() == 1,
        "only the valid create went upstream"
    );
    assert_still_serving(&setup).await;
}

/// A 4xx with an OpenAI error body: a clear refusal, not an upgrade
fn is_refusal(answer: &RawAnswer) -> bool {
    answer.status.is_some_and(|s| (400..500).contains(&s))
        && serde_json::from_str::<Value>(&answer.body).is_ok_and(|b| b["error"].is_object())
}

/// POSTs `body` with the client key
async fn post(addr: SocketAddr, body: &[u8]) -> RawAnswer {
    let mut request = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    exchange(addr, &request).await
}

async fn a_post_body_that_is_not_json_gets_400(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    for body in [
        &b"{\"model\":"[..],
        b"\xff\xfe",
        b"[]",
        b"{\"input\":\"no model\"}",
    ] {
        let answer = post(setup.gateway.addr, body).await;
        assert_eq!(answer.status, Some(400), "{answer:?}");
        let json: Value = serde_json::from_str(&answer.body).expect("an OpenAI error JSON body");
        assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
    }
    assert!(setup.frames().is_empty(), "nothing reached upstream");
    assert_still_serving(&setup).await;
}

async fn a_post_body_over_the_size_limit_gets_413(shell: Shell) {
    let setup = Setup::new(shell, |c| c.core.upstream.max_message_size = 4096).await;
    let body = format!(r#"{{"model":"gpt-5","input":"{}"}}"#, "x".repeat(8192));
    let answer = post(setup.gateway.addr, body.as_bytes()).await;
    assert_eq!(answer.status, Some(413), "{answer:?}");
    assert!(setup.frames().is_empty(), "nothing reached upstream");
    assert_still_serving(&setup).await;
}

async fn a_flood_of_creates_gets_429_beyond_the_held_limit(shell: Shell) {
    const HELD: usize = 4;
    const FLOOD: usize = 50;
    let setup = Setup::new(shell, |c| {
        c.core.session.max_held_creates_per_session = HELD;
        // One create in flight per conn: every later one is held or refused.
        c.core.upstream.max_inflight_per_conn = 1;
    })
    .await;
    let mut ws = setup.client().await;
    // The first response never ends, so every later create on the lane is held or refused.
    ws.send_json(&create("stall", json!({"mock_fault": "stall_lane"})))
        .await
        .unwrap();
    assert_eq!(
        ws.recv_event(ANSWER).await.unwrap()["type"],
        "response.created"
    );
    for i in 0..FLOOD {
        ws.send_json(&create(&format!("flood {i}"), json!({})))
            .await
            .unwrap();
    }
    let mut refused = 0;
    while refused < FLOOD - HELD {
        let event = ws
            .recv_event(ANSWER)
            .await
            .expect("every excess create is answered");
        assert_eq!(event["type"], "error", "{event}");
        assert_eq!(event["status"], 429, "{event}");
        assert_eq!(event["error"]["code"], "too_many_held_creates", "{event}");
        refused += 1;
    }
    assert_eq!(
        setup.frames().len(),
        1,
        "only the first create went upstream"
    );
    assert_still_serving(&setup).await;
}

async fn a_flood_of_pings_is_answered_and_the_socket_still_serves(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let mut ws = setup.client().await;
    for _ in 0..5_000 {
        ws.ping(b"flood").await.expect("the gateway keeps reading");
    }
    let mut pongs = 0;
    ws.send_json(&create("after the flood", json!({})))
        .await
        .unwrap();
    loop {
        match ws.recv(ANSWER).await.expect("the socket still answers") {
            Incoming::Pong(_) => pongs += 1,
            Incoming::Event(event) if event["type"] == "response.completed" => break,
            Incoming::Event(event) => assert_ne!(event["type"], "error", "{event}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pongs >= 1, "the pings were answered");
    assert_still_serving(&setup).await;
}

async fn a_client_that_never_reads_is_closed_after_the_write_timeout(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::with_mock(
        shell,
        |m| {
            // 25 MiB in large deltas: far more than the socket buffers and the gateway's
            // `client_write_buffer` hold, in few frames (cheap in a debug build).
            m.deltas = 100;
            m.delta_bytes = 256 * 1024;
        },
        |c| c.core.session.client_write_timeout = Duration::from_secs(1),
    )
    .await;
    let mut ws = setup.client().await;
    ws.send_json(&create("a long answer nobody reads", json!({})))
        .await
        .unwrap();
    // The client reads nothing until the gateway has given up on it …
    let gone = logs
        .wait_for(Duration::from_secs(30), |line| line.contains("ClientGone"))
        .await;
    assert!(
        gone.is_some(),
        "the gateway never gave up on a client that does not read"
    );
    // … then reads what the buffers held: the stream ends with close 1008, not the answer.
    let (events, close) = tokio::time::timeout(Duration::from_secs(30), ws.read_until_closed())
        .await
        .expect("the stream ends")
        .expect("a close or EOF");
    assert_eq!(close.code, Some(1008), "{close:?}");
    assert!(
        !events.iter().any(|e| e["type"] == "response.completed"),
        "the whole answer was delivered to a client that never read"
    );
    // One delta of the mock's 256 KiB: the 25 MiB answer would exceed the message limit.
    assert_still_serving_with(&setup, json!({"mock_deltas": 1})).await;
}
