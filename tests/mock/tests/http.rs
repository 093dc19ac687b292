//! The HTTP side: auth before the upgrade, upgrade status switches, paths and query strings,
//! SSE and JSON POST, models, the record file and the binary's pinned command line.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use async_tungstenite::tungstenite::Error as WsError;
use bytes::Bytes;
use common::{Client, KEY, cfg, create, final_response, mock, try_connect, types};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use wsv2_mock::{CloseSide, MockConfig, MockHandle, Record};

/// A refused upgrade: its status, headers and JSON body.
fn refused(result: Result<impl std::fmt::Debug, WsError>) -> (u16, hyper::HeaderMap, Value) {
    match result {
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).expect("JSON error body"));
            (
                response.status().as_u16(),
                response.headers().clone(),
                body.unwrap_or(Value::Null),
            )
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

/// One HTTP/1.1 request over a fresh connection; returns status, content type and body.
async fn http(
    mock: &MockHandle,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, String, String) {
    let tcp = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", mock.addr().to_string())
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// Parses `event: <type>\ndata: <json>\n\n` blocks, checking that both lines agree.
fn sse_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let (event_line, data_line) = block.split_once('\n').expect("two lines per block");
            let event_type = event_line.strip_prefix("event: ").expect("event line");
            let data: Value =
                serde_json::from_str(data_line.strip_prefix("data: ").expect("data line")).unwrap();
            assert_eq!(data["type"], event_type);
            data
        })
        .collect()
}

#[tokio::test]
async fn a_wrong_or_missing_key_gets_401_before_any_upgrade() {
    let mock = mock(cfg()).await;
    let (status, _, body) = refused(try_connect(&mock.ws_url(), "sk-wrong-key-999999").await);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        !body.to_string().contains("sk-wrong"),
        "the key is never echoed"
    );
    let (status, _, _) = refused(try_connect(&mock.ws_url(), "").await);
    assert_eq!(status, 401);
    let records = mock.records();
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::Handshake { .. })),
        "no upgrade happened"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, Record::Http { status: 401, .. }))
            .count(),
        2
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn the_upgrade_status_switch_refuses_with_426_429_or_500() {
    let mock = mock(MockConfig {
        upgrade_status: Some(426),
        ..cfg()
    })
    .await;
    let (status, _, body) = refused(try_connect(&mock.ws_url(), KEY).await);
    assert_eq!(status, 426);
    assert_eq!(body["error"]["code"], "upgrade_required");
    mock.set_upgrade_status(Some(429));
    let (status, headers, body) = refused(try_connect(&mock.ws_url(), KEY).await);
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-reset-requests"], "50ms");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    mock.set_upgrade_status(Some(500));
    let (status, _, body) = refused(try_connect(&mock.ws_url(), KEY).await);
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "server_error");
    mock.set_upgrade_status(None);
    let mut client = Client::connect(&mock).await;
    assert_eq!(
        final_response(&client.turn(create(json!({}))).await)["status"],
        "completed"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn query_strings_and_the_codex_path_are_accepted_and_recorded() {
    let mock = mock(cfg()).await;
    let mut with_query = Client::connect_url(&format!("{}?foo=bar", mock.ws_url())).await;
    assert_eq!(
        final_response(&with_query.turn(create(json!({}))).await)["status"],
        "completed"
    );
    let codex_url = format!("ws://{}/backend-api/codex/responses", mock.addr());
    let mut codex = Client::connect_url(&codex_url).await;
    assert_eq!(
        final_response(&codex.turn(create(json!({}))).await)["status"],
        "completed"
    );
    let handshakes: Vec<(u64, String, Option<String>)> = mock
        .records()
        .into_iter()
        .filter_map(|r| match r {
            Record::Handshake {
                conn, path, query, ..
            } => Some((conn, path, query)),
            _ => None,
        })
        .collect();
    assert_eq!(
        handshakes,
        vec![
            (1, "/v1/responses".to_owned(), Some("foo=bar".to_owned())),
            (2, "/backend-api/codex/responses".to_owned(), None)
        ]
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn post_streams_sse_and_answers_json_and_chains_through_the_store() {
    let mock = mock(MockConfig { deltas: 3, ..cfg() }).await;
    let (status, content_type, body) = http(
        &mock,
        "POST",
        "/v1/responses",
        KEY,
        Some(json!({"model": "m", "input": "hi", "stream": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/event-stream");
    let events = sse_events(&body);
    assert_eq!(types(&events).first(), Some(&"response.created"));
    assert_eq!(types(&events).last(), Some(&"response.completed"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .count(),
        3
    );
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], json!(index));
    }
    let first_id = final_response(&events)["id"].clone();

    let (status, content_type, body) = http(
        &mock,
        "POST",
        "/v1/responses",
        KEY,
        Some(json!({"model": "m", "input": "again", "previous_response_id": first_id})),
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["previous_response_id"], first_id);

    let (status, _, body) = http(
        &mock,
        "POST",
        "/v1/responses",
        KEY,
        Some(json!({"input": "x", "previous_response_id": "resp_missing"})),
    )
    .await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "previous_response_not_found");

    let (status, _, _) = http(
        &mock,
        "POST",
        "/v1/responses",
        "sk-bad-key-000000",
        Some(json!({"input": "x"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, body) = http(&mock, "GET", "/v1/models", KEY, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["data"][0]["id"],
        "mock-model"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn post_faults_map_to_http_statuses() {
    let mock = mock(cfg()).await;
    let (status, _, body) = http(
        &mock,
        "POST",
        "/v1/responses",
        KEY,
        Some(json!({"input": "x", "metadata": {"mock_fault": "error_429"}})),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );
    let (status, _, body) = http(
        &mock,
        "POST",
        "/v1/responses",
        KEY,
        Some(json!({"input": "x", "stream": true, "metadata": {"mock_fault": "failed"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(types(&sse_events(&body)).last(), Some(&"response.failed"));
    mock.shutdown().await;
}

#[tokio::test]
async fn the_record_file_has_one_parsable_line_per_observation() {
    let path = std::env::temp_dir().join(format!(
        "wsv2-mock-record-{}-{:?}.jsonl",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    let mock = mock(MockConfig {
        record: Some(path.clone()),
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    let events = client.turn(create(json!({"stream_id": "main"}))).await;
    let response_id = final_response(&events)["id"].as_str().unwrap().to_owned();
    client
        .turn(create(json!({"metadata": {"mock_fault": "error_500"}})))
        .await;
    client.close().await;
    let (status, _, _) = http(
        &mock,
        "POST",
        "/v1/responses",
        KEY,
        Some(json!({"input": "x"})),
    )
    .await;
    assert_eq!(status, 200);
    let in_memory = mock.records();
    mock.shutdown().await;

    let text = std::fs::read_to_string(&path).unwrap();
    let from_file: Vec<Record> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a Record per line"))
        .collect();
    assert_eq!(from_file, in_memory);
    let Record::Handshake {
        conn: 1, headers, ..
    } = &from_file[0]
    else {
        panic!("{:?}", from_file[0])
    };
    assert_eq!(
        headers["authorization"], "Bearer ***6789",
        "credentials are masked"
    );
    assert_eq!(headers["openai-beta"], "responses_websockets=2026-02-06");
    assert!(
        matches!(&from_file[1], Record::Frame { conn: 1, frame } if frame["stream_id"] == "main")
    );
    assert!(from_file.contains(&Record::Sent {
        conn: 1,
        response_id: Some(response_id),
        r#type: "response.completed".into(),
        code: None,
        status: None,
        stream_id: Some("main".into()),
    }));
    assert!(
        from_file.iter().any(
            |r| matches!(r, Record::Sent { r#type, status: Some(500), .. } if r#type == "error")
        )
    );
    assert!(from_file.contains(&Record::Close {
        conn: 1,
        by: CloseSide::Client,
        code: Some(1000)
    }));
    assert!(from_file.iter().any(|r| matches!(r, Record::Http { method, status: 200, body, .. } if method == "POST" && body["input"] == "x")));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn the_binary_prints_its_ws_url_and_serves_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsv2-mock-upstream"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
            "--deterministic",
            "--deltas",
            "2",
            "--delta-interval",
            "1ms",
            "--lifetime",
            "60m",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .expect("pinned readiness line")
        .to_owned();
    assert!(
        url.starts_with("ws://127.0.0.1:")
            && url.ends_with("/v1/responses")
            && !url.contains(":0/"),
        "{url}"
    );
    let mut client = Client::connect_url(&url).await;
    let events = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&events)["id"], "resp_mock_0001");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .count(),
        2
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
