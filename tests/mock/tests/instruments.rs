//! The reliability suite's instruments: the handshake delay, TLS, runtime fault switches (in
//! process and through the admin endpoint of the binary).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use common::{Client, KEY, cfg, create, final_response, mock, try_connect};
use futures_util::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsv2_mock::{MockConfig, MockTls, RuntimeFault};

/// How long a test waits to conclude that nothing is coming (a blackhole's silence).
const SILENCE: Duration = Duration::from_millis(400);

fn tls_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../harness/tests/shells/fixtures/tls")
        .join(name)
}

#[tokio::test]
async fn the_handshake_delay_holds_every_upgrade_answer() {
    let delay = Duration::from_millis(200);
    let mock = mock(MockConfig {
        handshake_delay: delay,
        ..cfg()
    })
    .await;
    let started = Instant::now();
    let mut client = Client::connect(&mock).await;
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    let events = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&events)["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn the_high_water_mark_counts_upgrades_answered_at_once() {
    let mock = mock(MockConfig {
        handshake_delay: Duration::from_millis(300),
        ..cfg()
    })
    .await;
    assert_eq!(mock.handshakes_in_flight_max(), 0);
    let url = mock.ws_url();
    let clients = futures_util::future::join_all((0..4).map(|_| try_connect(&url, KEY))).await;
    assert!(clients.iter().all(Result::is_ok));
    let max = mock.handshakes_in_flight_max();
    assert!((2..=4).contains(&max), "{max}");
    mock.shutdown().await;
}

#[tokio::test]
async fn a_tls_mock_serves_wss_to_a_client_trusting_its_ca() {
    let mock = mock(MockConfig {
        tls: Some(MockTls {
            cert_pem: tls_fixture("server.pem"),
            key_pem: tls_fixture("server.key"),
        }),
        ..cfg()
    })
    .await;
    assert!(
        mock.ws_url().starts_with("wss://127.0.0.1:"),
        "{}",
        mock.ws_url()
    );
    assert!(mock.http_base().starts_with("https://"));
    // A plain client gets no HTTP answer from a TLS port.
    assert!(
        try_connect(&mock.ws_url().replace("wss://", "ws://"), KEY)
            .await
            .is_err()
    );

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(tls_fixture("ca.pem")).expect("CA"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(mock.addr()).await.expect("tcp");
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake with the test CA");
    let mut request = mock.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {KEY}").parse().expect("header"),
    );
    let (mut ws, _) = async_tungstenite::tokio::client_async(request, tls)
        .await
        .expect("upgrade over TLS");
    ws.send(Message::text(create(json!({})).to_string()))
        .await
        .expect("send");
    let last = loop {
        let frame = tokio::time::timeout(common::RECV_TIMEOUT, ws.next())
            .await
            .expect("event in time");
        let Some(Ok(Message::Text(text))) = frame else {
            panic!("expected an event, got {frame:?}")
        };
        let event: Value = serde_json::from_str(text.as_str()).expect("JSON");
        if event["type"] == "response.completed" {
            break event;
        }
    };
    assert_eq!(last["response"]["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn runtime_error_faults_answer_every_create_until_cleared() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    for (fault, status) in [(RuntimeFault::Error429, 429), (RuntimeFault::Error500, 500)] {
        mock.set_fault(Some(fault));
        assert_eq!(mock.fault(), Some(fault));
        for _ in 0..2 {
            let events = client.turn(create(json!({}))).await;
            assert_eq!(events.len(), 1, "{events:?}");
            assert_eq!(events[0]["type"], "error");
            assert_eq!(events[0]["status"], status);
        }
        // A create that names its own fault keeps it.
        let events = client
            .turn(create(json!({"metadata": {"mock_fault": "error_400"}})))
            .await;
        assert_eq!(events[0]["status"], 400);
        mock.set_fault(None);
        let events = client.turn(create(json!({}))).await;
        assert_eq!(final_response(&events)["status"], "completed");
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn runtime_drop_mid_stream_cuts_each_socket_after_two_deltas() {
    let mock = mock(cfg()).await;
    mock.set_fault(Some(RuntimeFault::DropMidStream));
    let mut client = Client::connect(&mock).await;
    client.send(create(json!({}))).await;
    let mut types = Vec::new();
    let ended = loop {
        match client.recv().await {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(text.as_str()).expect("JSON");
                types.push(event["type"].as_str().unwrap_or("?").to_owned());
            }
            Some(Ok(Message::Close(frame))) => panic!("a close frame {frame:?} instead of a cut"),
            Some(Ok(_)) => {}
            other => break other,
        }
    };
    assert!(
        matches!(ended, None | Some(Err(_))),
        "cut without a close frame: {ended:?}"
    );
    assert_eq!(types.first().map(String::as_str), Some("response.created"));
    assert!(
        !types.iter().any(|t| t == "response.completed"),
        "{types:?}"
    );
    mock.set_fault(None);
    let mut client = Client::connect(&mock).await;
    let events = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&events)["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn runtime_slow_delays_the_first_event_of_each_response() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let delay = Duration::from_millis(300);
    mock.set_fault(Some(RuntimeFault::Slow(delay)));
    let started = Instant::now();
    let events = client.turn(create(json!({}))).await;
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(final_response(&events)["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn a_blackhole_answers_nothing_and_new_connections_hang_until_cleared() {
    let mock = mock(cfg()).await;
    let mut open = Client::connect(&mock).await;
    mock.set_fault(Some(RuntimeFault::Blackhole));
    // A create on an open socket gets no event, a ping no pong.
    open.send(create(json!({}))).await;
    open.ws
        .send(Message::Ping(b"p".to_vec().into()))
        .await
        .expect("ping");
    let silent = tokio::time::timeout(SILENCE, open.ws.next()).await;
    assert!(silent.is_err(), "expected silence, got {silent:?}");
    // A new connection is accepted by TCP and never answered.
    let hung = tokio::time::timeout(SILENCE, try_connect(&mock.ws_url(), KEY)).await;
    assert!(hung.is_err(), "the upgrade should hang, got {hung:?}");
    mock.set_fault(None);
    // The silent response streams once the blackhole is gone, as late packets would.
    let events = open.response().await;
    assert_eq!(final_response(&events)["status"], "completed");
    let mut client = Client::connect(&mock).await;
    let events = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&events)["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn a_runtime_fault_applies_to_http_posts_too() {
    let mock = mock(cfg()).await;
    mock.set_fault(Some(RuntimeFault::Error500));
    let (status, body) = post(&mock.addr().to_string(), "/v1/responses", Some(KEY)).await;
    assert_eq!(status, 500, "{body}");
    mock.set_fault(None);
    let (status, _) = post(&mock.addr().to_string(), "/v1/responses", Some(KEY)).await;
    assert_eq!(status, 200);
    mock.shutdown().await;
}

#[tokio::test]
async fn open_connections_count_live_websockets() {
    let mock = mock(cfg()).await;
    assert_eq!(mock.open_connections(), 0);
    let mut first = Client::connect(&mock).await;
    let mut second = Client::connect(&mock).await;
    // A served turn proves each connection's task is running.
    for client in [&mut first, &mut second] {
        let events = client.turn(create(json!({}))).await;
        assert_eq!(final_response(&events)["status"], "completed");
    }
    assert_eq!(mock.open_connections(), 2);
    mock.shutdown().await;
}

/// One `POST PATH` over a fresh connection (`Connection: close`); returns status and body.
async fn post(addr: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let body = json!({"model": "mock-model", "input": "hi"}).to_string();
    let auth = key.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(common::RECV_TIMEOUT, tcp.read_to_string(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[tokio::test]
async fn the_binary_admin_endpoint_switches_faults_and_upgrade_refusals() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsv2-mock-upstream"))
        .args(["--listen", "127.0.0.1:0", "--api-key", KEY])
        .args(["--admin", "127.0.0.1:0", "--handshake-delay", "10ms"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = lines.next().expect("line").expect("utf-8");
    let url = url
        .strip_prefix("listening on ")
        .expect("first line")
        .to_owned();
    let admin = lines.next().expect("line").expect("utf-8");
    let admin = admin
        .strip_prefix("admin on http://")
        .expect("second line")
        .to_owned();

    let (status, state) = post(&admin, "/upgrade?status=401", None).await;
    assert_eq!(status, 200, "{state}");
    let state: Value = serde_json::from_str(&state).expect("state JSON");
    assert_eq!(state["upgrade_status"], 401);
    let refused = try_connect(&url, KEY).await;
    assert!(
        matches!(&refused, Err(async_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );
    for status in [426, 429, 500] {
        post(&admin, &format!("/upgrade?status={status}"), None).await;
        let refused = try_connect(&url, KEY).await;
        assert!(
            matches!(&refused, Err(async_tungstenite::tungstenite::Error::Http(r)) if r.status() == status),
            "{status}: {refused:?}"
        );
    }
    let (_, state) = post(&admin, "/fault?name=error_429", None).await;
    let state: Value = serde_json::from_str(&state).expect("state JSON");
    assert_eq!(state["fault"], "error_429");
    let (status, _) = post(&admin, "/fault?name=nonsense", None).await;
    assert_eq!(status, 400);
    let (_, state) = post(&admin, "/upgrade?status=0", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&state).expect("JSON")["upgrade_status"],
        Value::Null
    );
    let mut client = Client::connect_url(&url).await;
    let events = client.turn(create(json!({}))).await;
    assert_eq!(events[0]["status"], 429);
    let (_, state) = post(&admin, "/clear", None).await;
    let state: Value = serde_json::from_str(&state).expect("state JSON");
    assert_eq!(state["fault"], Value::Null);
    assert_eq!(state["open_connections"], 1);
    let events = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&events)["status"], "completed");
    // drop-all cuts the open socket without a close frame; a new one is served.
    post(&admin, "/drop-all", None).await;
    let ended = client.recv().await;
    assert!(matches!(ended, None | Some(Err(_))), "{ended:?}");
    let mut client = Client::connect_url(&url).await;
    let events = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&events)["status"], "completed");
    let (_, state) = post(&admin, "/state", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&state).expect("JSON")["upgrades"],
        2
    );
    child.kill().expect("kill");
    child.wait().expect("wait");
}
