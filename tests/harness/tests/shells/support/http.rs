//! Helpers of the HTTP-bridge tests: POSTs, a `/metrics` scrape, and configs with a random
//! stickiness group so tests sharing one Redis never see each other's keys.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsv2_core::AccountId;
use wsv2_core::file_config::{GatewayConfig, Secret, UpstreamUrl};
use wsv2_mock::{MockConfig, MockHandle, Record};
use wsv2_tests::client::Credentials;
use wsv2_tests::sse::SseClient;

/// The client key the demo configuration accepts
pub const CLIENT_KEY: &str = "sk-gw-demo";

/// POSTs the mock has seen
pub fn posts(mock: &MockHandle) -> usize {
    mock.records()
        .iter()
        .filter(|r| matches!(r, Record::Http { method, .. } if method == "POST"))
        .count()
}

/// `WSV2_REDIS_URL`, else the machine's Redis
pub fn redis_url() -> String {
    std::env::var("WSV2_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A group no other test or run uses
pub fn random_group(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("t-{tag}-{}-{nanos}", std::process::id())
}

/// Puts every client key in `group` and the store on `redis`
pub fn use_store(c: &mut GatewayConfig, group: &str, redis: Option<&str>) {
    for key in &mut c.client_keys {
        key.group = group.to_owned();
    }
    c.redis_url = redis.map(Secret::new);
}

/// The upstream key of the store tests' mocks
pub const STORE_UPSTREAM_KEY: &str = "sk-upstream-test";

/// A mock upstream for the store tests
pub async fn store_mock() -> MockHandle {
    wsv2_mock::start(MockConfig {
        api_key: STORE_UPSTREAM_KEY.into(),
        ..MockConfig::default()
    })
    .await
    .expect("mock")
}

/// A gateway config with account `first.1` on `first.0` (preferred) and account `second.1` on
/// `second.0`, every client key in `group`, the store on `redis`
pub fn two_account_store_config(
    first: (&MockHandle, u64),
    second: (&MockHandle, u64),
    group: &str,
    redis: Option<&str>,
) -> GatewayConfig {
    let mut c = GatewayConfig::demo(&first.0.ws_url(), STORE_UPSTREAM_KEY).expect("config");
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.core.pool.min_idle_per_account = 0;
    let mut a = c.accounts[0].clone();
    a.id = AccountId(first.1);
    a.name = format!("acct-{}", first.1);
    a.priority = 0;
    let mut b = a.clone();
    b.id = AccountId(second.1);
    b.name = format!("acct-{}", second.1);
    b.base_url = UpstreamUrl::parse(&second.0.ws_url()).expect("url");
    b.priority = 1;
    c.accounts = vec![a, b];
    use_store(&mut c, group, redis);
    c
}

/// How many creates reached mock `m`
pub fn creates(m: &MockHandle) -> usize {
    m.records()
        .iter()
        .filter(|r| matches!(r, wsv2_mock::Record::Frame { .. }))
        .count()
}

/// `http://ADDR/v1`
pub fn base(addr: SocketAddr) -> String {
    format!("http://{addr}/v1")
}

/// A Responses body (`stream:false` unless `extra` says otherwise)
pub fn body(input: &str, extra: Value) -> Value {
    let mut b = json!({"model": "gpt-5", "input": input, "stream": false});
    if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            b.insert(k.clone(), v.clone());
        }
    }
    b
}

/// POSTs `body` with the client key; the status and the whole answer
pub async fn post(base: &str, body: &Value) -> (u16, String) {
    let stream = SseClient::new()
        .post(base, &Credentials::bearer(CLIENT_KEY), body)
        .await
        .expect("POST");
    let status = stream.status();
    (status, stream.text().await.expect("body"))
}

/// POSTs and parses the JSON answer
pub async fn post_json(base: &str, body: &Value) -> (u16, Value) {
    let (status, text) = post(base, body).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// `GET /metrics` as text
pub async fn scrape(addr: SocketAddr) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// The value of the series `name{labels}` exactly as written (0 when absent)
pub fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(name_and_labels))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .next()
        .unwrap_or(0.0)
}

/// Waits until the response binding is in Redis: the gateway answers the client while the
/// binding's SET is still in flight (a cross-instance continuation sent within that write's
/// latency may miss it — the documented window), so the test waits for the write it relies on;
/// returns the stored value (`{account}:{group}`)
pub async fn binding_written(url: &str, id: &str) -> String {
    let key = wsv2_core::store::StoreKey::response(id.as_bytes());
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let value: Option<String> = redis::cmd("GET")
            .arg(key.as_str())
            .query_async(&mut conn)
            .await
            .expect("GET");
        if let Some(value) = value {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "binding of {id} never written"
        );
        tokio::task::yield_now().await;
    }
}

/// A raw client: POSTs `body` with the client key and returns the open socket (to read the
/// answer by hand, or to drop it mid-request)
pub async fn raw_post(addr: SocketAddr, body: &Value) -> tokio::net::TcpStream {
    let request = body.to_string();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        request.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp
}
