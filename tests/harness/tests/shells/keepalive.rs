//! Keepalive on both hops. Client keepalive (`session.client_ping_interval`,
//! `client_pong_timeout`): the session decides, the shell sends the pings and reports the pongs.
//! Idle pooled upstream conns (`upstream.ping_interval`, `pong_timeout`, `pool.ping_tick`): the
//! pool decides, the control task sends the pings and reports the pongs; a conn that answers
//! stays, one that does not is closed (`wsv2_pool_closes_total{reason="ping"}`).

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::Shell;
use crate::support::common::{LogCapture, Setup, create};
use crate::support::http::{scrape, series};

shell_tests! {
    a_client_that_answers_pings_is_pinged_again_and_stays_open,
    a_client_that_never_answers_a_ping_is_closed_with_1001,
    dials_carry_the_pool_keys_beta_headers_and_the_sessions_own_headers,
    an_idle_pooled_conn_that_answers_pings_stays_open_past_many_pong_timeouts,
    an_idle_pooled_conn_that_stops_answering_pings_is_closed_at_its_pong_timeout,
}

const WAIT: Duration = Duration::from_secs(10);

/// The pong timeout is kept below the interval: the core re-arms the pong deadline with every
/// ping, so a timeout longer than the interval would never fire (reported to the core's owner).
fn fast_keepalive(c: &mut wsv2_core::file_config::GatewayConfig) {
    c.core.session.client_ping_interval = Duration::from_millis(100);
    c.core.session.client_pong_timeout = Duration::from_millis(60);
}

async fn next_message(ws: &mut wsv2_tests::client::WsStream) -> Message {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a frame in time")
        .expect("socket open")
        .expect("no error")
}

async fn a_client_that_answers_pings_is_pinged_again_and_stays_open(shell: Shell) {
    let setup = Setup::new(shell, fast_keepalive).await;
    let mut ws = setup.client().await.into_stream();
    // Reading answers each ping (tungstenite queues the pong and flushes it on the next read).
    for _ in 0..3 {
        let msg = next_message(&mut ws).await;
        assert!(matches!(msg, Message::Ping(_)), "{msg:?}");
    }
    // Three intervals later, the socket still serves a turn.
    ws.send(Message::text(create("still here", json!({})).to_string()))
        .await
        .unwrap();
    loop {
        match next_message(&mut ws).await {
            Message::Text(text) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                assert_ne!(event["type"], "error", "{event}");
                if event["type"] == "response.completed" {
                    break;
                }
            }
            Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn a_client_that_never_answers_a_ping_is_closed_with_1001(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::new(shell, fast_keepalive).await;
    let mut ws = setup.client().await.into_stream();
    // Not reading means not answering: wait until the session has given the client up.
    let gone = logs.wait_for(WAIT, |l| l.contains("ClientGone")).await;
    assert!(
        gone.is_some(),
        "the session gave the silent client up:\n{}",
        logs.lines().join("\n")
    );
    let first = next_message(&mut ws).await;
    assert!(matches!(first, Message::Ping(_)), "{first:?}");
    let close = loop {
        match next_message(&mut ws).await {
            Message::Close(frame) => break frame,
            Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let code = close.map(|f| u16::from(f.code));
    assert_eq!(code, Some(1001));
}

async fn dials_carry_the_pool_keys_beta_headers_and_the_sessions_own_headers(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let beta = "responses_websockets=2026-02-06";
    let creds = wsv2_tests::client::Credentials::bearer(crate::support::common::CLIENT_KEY)
        .with_header("openai-beta", beta)
        .with_header("x-codex-beta-features", "b,a")
        .with_header("session-id", "sess-beta");
    let mut ws = setup.client_with(creds).await;
    ws.send_json(&create("beta", json!({}))).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    let handshakes: Vec<_> = setup
        .mock
        .records()
        .into_iter()
        .filter_map(|r| match r {
            wsv2_mock::Record::Handshake { headers, .. } => Some(headers),
            _ => None,
        })
        .collect();
    assert_eq!(handshakes.len(), 1, "{handshakes:?}");
    let h = &handshakes[0];
    assert_eq!(h.get("openai-beta").map(String::as_str), Some(beta));
    // The key's normalized form: sorted, de-duplicated.
    assert_eq!(
        h.get("x-codex-beta-features").map(String::as_str),
        Some("a,b")
    );
    assert_eq!(h.get("session-id").map(String::as_str), Some("sess-beta"));
}

/// Pings every idle conn silent for 200 ms, each answered within 100 ms, checked every 20 ms;
/// one warm conn (dialed at start, never leased before the test's checks)
fn fast_idle_pings(c: &mut wsv2_core::file_config::GatewayConfig) {
    c.core.upstream.ping_interval = Duration::from_millis(200);
    c.core.upstream.pong_timeout = PONG_TIMEOUT;
    c.core.pool.ping_tick = Duration::from_millis(20);
    c.core.pool.min_idle_per_account = 1;
    c.core.pool.max_idle_per_account = 1;
    c.core.pool.max_conns_per_account = 1;
}

const PONG_TIMEOUT: Duration = Duration::from_millis(100);

/// Idle conns the pool closed for an unanswered ping
async fn ping_closes(setup: &Setup) -> f64 {
    let text = scrape(setup.gateway.admin_addr.expect("admin listener")).await;
    series(
        &text,
        r#"wsv2_pool_closes_total{account="mock",reason="ping"}"#,
    )
}

async fn an_idle_pooled_conn_that_answers_pings_stays_open_past_many_pong_timeouts(shell: Shell) {
    let setup = Setup::new(shell, fast_idle_pings).await;
    // Six answered pings on the warm conn: at least six pong timeouts (each ping waits for the
    // conn to be silent 200 ms after the last pong), all of them while idle.
    assert!(
        setup.mock.wait_for_pings(6, WAIT).await,
        "the idle conn was pinged ({} pings)",
        setup.mock.pings()
    );
    assert_eq!(setup.handshakes(), [1], "one conn, never replaced");
    assert!(
        !setup
            .mock
            .records()
            .iter()
            .any(|r| matches!(r, wsv2_mock::Record::Close { .. })),
        "the answering conn was never closed"
    );
    assert_eq!(ping_closes(&setup).await, 0.0);
    // And it still serves: a turn runs on it.
    let mut ws = setup.client().await;
    ws.send_json(&create("on the pinged conn", json!({})))
        .await
        .unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    assert_eq!(setup.frames().len(), 1);
    assert_eq!(setup.frames()[0].0, 1, "the turn ran on the pinged conn");
}

async fn an_idle_pooled_conn_that_stops_answering_pings_is_closed_at_its_pong_timeout(
    shell: Shell,
) {
    let setup = Setup::new(shell, fast_idle_pings).await;
    // The warm conn answers one ping, then the mock stops answering.
    assert!(
        setup.mock.wait_for_pings(1, WAIT).await,
        "the idle conn was pinged"
    );
    setup.mock.set_pongs(false);
    let closed = setup
        .mock
        .wait_for_record(WAIT, |r| {
            matches!(r, wsv2_mock::Record::Close { conn: 1, .. })
        })
        .await;
    assert!(
        closed.is_some(),
        "the silent idle conn was closed ({} pings)",
        setup.mock.pings()
    );
    assert_eq!(
        ping_closes(&setup).await,
        1.0,
        "closed by the pool for its ping"
    );
    // The pool keeps its warm conn: a new one replaces it, and serves once pongs come back.
    setup.mock.set_pongs(true);
    let mut ws = setup.client().await;
    ws.send_json(&create("on a new conn", json!({})))
        .await
        .unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    assert_ne!(setup.frames()[0].0, 1, "not on the closed conn");
}
