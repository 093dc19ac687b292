//! Graceful shutdown and reload through the library API (`GatewayHandle::shutdown`, what
//! SIGTERM does; `GatewayHandle::reload`, what SIGHUP does), on real sockets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wsv2_core::AccountId;
use wsv2_core::file_config::UpstreamUrl;
use wsv2_mock::{CloseSide, Record};
use wsv2_tests::client::{Credentials, Incoming, WsClient};

use crate::support::Shell;
use crate::support::harden::{CLIENT_KEY, LogCapture, config_for, mock};
use crate::support::http::{base, body, post, posts};

shell_tests! {
    shutdown_lets_the_response_in_flight_finish_refuses_new_creates_then_closes_1012,
    a_response_still_running_at_the_grace_is_cut_and_the_client_closed_1012,
    idle_sockets_are_closed_1012_at_instants_spread_over_the_close_spread,
    reload_adds_an_account_removes_one_and_keeps_the_open_session,
    reload_replaces_client_keys_without_closing_sockets_of_a_removed_key,
    reload_points_a_forward_account_at_its_new_url,
}

fn create(input: &str, metadata: Value) -> Value {
    json!({"type": "response.create", "model": "gpt-5", "input": input, "metadata": metadata})
}

fn frames(mock: &wsv2_mock::MockHandle) -> usize {
    mock.records()
        .iter()
        .filter(|r| matches!(r, Record::Frame { .. }))
        .count()
}

async fn shutdown_lets_the_response_in_flight_finish_refuses_new_creates_then_closes_1012(
    shell: Shell,
) {
    let (logs, _guard) = LogCapture::install();
    // 10 deltas, 40 ms apart: the response is still streaming when shutdown begins.
    let mock = mock(|c| {
        c.deltas = 10;
        c.delta_interval = Duration::from_millis(40);
    })
    .await;
    let mut config = config_for(&mock.ws_url());
    config.core.session.shutdown_grace = Duration::from_secs(5);
    let gateway = shell.start(config).await.unwrap();
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .unwrap();
    ws.send_json(&create("long", json!({}))).await.unwrap();
    let created = ws.recv_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(created["type"], "response.created");

    // The client drops its socket once it has read the close, as real clients do.
    let client = async move {
        logs.wait_for(
            &["shutting down: no new connections"],
            Duration::from_secs(5),
        )
        .await
        .expect("shutdown began");
        // A create sent during shutdown is refused; the one in flight streams on.
        ws.send_json(&create("too late", json!({}))).await.unwrap();
        let (events, close) = ws.read_until_closed().await.unwrap();
        (events, close, Instant::now())
    };
    let (report, (events, close, closed_at)) = tokio::join!(gateway.shutdown(), client);

    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let completed = types
        .iter()
        .position(|t| *t == "response.completed")
        .expect("the response in flight completed");
    let refused = events
        .iter()
        .find(|e| e["type"] == "error")
        .expect("the late create got an error event");
    assert_eq!(refused["status"], 503, "{refused}");
    assert_eq!(
        refused["error"]["code"], "gateway_shutting_down",
        "{refused}"
    );
    assert!(
        types[..completed]
            .iter()
            .filter(|t| **t == "response.output_text.delta")
            .count()
            >= 1,
        "deltas streamed during shutdown: {types:?}"
    );
    assert_eq!(close.code, Some(1012), "{close:?}");
    assert_eq!(report.sockets_at_start, 1);
    assert_eq!(report.sockets_cut, 0, "{report:?}");
    assert!(report.pool_closed, "{report:?}");
    assert!(report.elapsed < Duration::from_secs(2), "{report:?}");
    assert!(closed_at.elapsed() < Duration::from_secs(5));
    // Only the first create reached upstream.
    assert_eq!(frames(&mock), 1);
    // The pool's conns were closed by the gateway with a close frame.
    let closes: Vec<(CloseSide, Option<u16>)> = mock
        .records()
        .into_iter()
        .filter_map(|r| match r {
            Record::Close { by, code, .. } => Some((by, code)),
            _ => None,
        })
        .collect();
    assert!(!closes.is_empty(), "every upstream conn ended");
    assert!(
        closes.iter().all(|(by, _)| *by == CloseSide::Client),
        "{closes:?}"
    );
    // The listener is gone: nobody new gets in.
    assert!(
        WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
            .await
            .is_err()
    );
}

async fn a_response_still_running_at_the_grace_is_cut_and_the_client_closed_1012(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let mock = mock(|_| {}).await;
    let mut config = config_for(&mock.ws_url());
    config.core.session.shutdown_grace = Duration::from_millis(300);
    let gateway = shell.start(config).await.unwrap();
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .unwrap();
    ws.send_json(&create("never ends", json!({"mock_fault": "stall_lane"})))
        .await
        .unwrap();
    assert_eq!(
        ws.recv_event(Duration::from_secs(5)).await.unwrap()["type"],
        "response.created"
    );
    let started = Instant::now();
    let client = async move {
        let (_, close) = ws.read_until_closed().await.unwrap();
        (close, started.elapsed())
    };
    let (report, (close, closed_after)) = tokio::join!(gateway.shutdown(), client);
    assert_eq!(close.code, Some(1012), "{close:?}");
    assert!(
        closed_after >= Duration::from_millis(300),
        "closed after {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_millis(1300),
        "closed after {closed_after:?}"
    );
    // The cut is told: the response's own line, and the shutdown's count.
    let (_, ended) = logs
        .wait_for(&["response ended"], Duration::ZERO)
        .await
        .expect("the cut response is logged");
    assert!(ended.contains("outcome=\"cut_at_shutdown\""), "{ended}");
    let (_, done) = logs
        .wait_for(&["shutdown complete"], Duration::ZERO)
        .await
        .expect("shutdown logged");
    assert!(done.contains("responses_cut=1"), "{done}");
    assert!(done.contains("sockets_cut=1"), "{done}");
    assert_eq!(
        (report.responses_cut, report.sockets_cut),
        (1, 1),
        "{report:?}"
    );
    assert!(report.pool_closed, "{report:?}");
    assert!(
        report.elapsed < Duration::from_millis(1300),
        "shutdown took {:?}",
        report.elapsed
    );
    eprintln!("grace 300 ms: client closed after {closed_after:?}; shutdown {report:?}");
}

async fn idle_sockets_are_closed_1012_at_instants_spread_over_the_close_spread(shell: Shell) {
    let mock = mock(|_| {}).await;
    let mut config = config_for(&mock.ws_url());
    config.core.session.shutdown_grace = Duration::from_secs(3);
    config.core.session.shutdown_close_spread = Duration::from_secs(1);
    let gateway = shell.start(config).await.unwrap();
    let mut clients = Vec::new();
    for i in 0..16 {
        let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
            .await
            .unwrap();
        ws.send_json(&create(&format!("turn {i}"), json!({})))
            .await
            .unwrap();
        assert_eq!(
            ws.read_turn().await.unwrap().last_type(),
            "response.completed"
        );
        clients.push(ws);
    }
    let started = Instant::now();
    let closes = futures_util::future::join_all(clients.into_iter().map(|mut ws| async move {
        let (_, close) = ws.read_until_closed().await.unwrap();
        (close.code, started.elapsed())
    }));
    let (report, closes) = tokio::join!(gateway.shutdown(), closes);
    assert!(
        closes.iter().all(|(code, _)| *code == Some(1012)),
        "{closes:?}"
    );
    let first = closes.iter().map(|(_, at)| *at).min().unwrap();
    let last = closes.iter().map(|(_, at)| *at).max().unwrap();
    // Each socket's instant is drawn from [0, 1 s]: sixteen of them are not one instant.
    assert!(
        last - first >= Duration::from_millis(250),
        "closes bunched: {closes:?}"
    );
    assert!(last < Duration::from_millis(2500), "{closes:?}");
    assert_eq!(
        (report.responses_cut, report.sockets_cut),
        (0, 0),
        "{report:?}"
    );
    eprintln!("{shell}: 16 idle sockets closed between {first:?} and {last:?}");
}

async fn reload_adds_an_account_removes_one_and_keeps_the_open_session(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let first = mock(|_| {}).await;
    let second = mock(|_| {}).await;
    let config = config_for(&first.ws_url());
    let gateway = shell.start(config.clone()).await.unwrap();
    let mut open = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .unwrap();
    open.send_json(&create("before", json!({}))).await.unwrap();
    let turn = open.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed");
    assert_eq!(frames(&first), 1);

    // Account 1 goes, account 2 (the second mock) comes.
    let mut reloaded = config.clone();
    reloaded.accounts[0].id = AccountId(2);
    reloaded.accounts[0].name = "second".to_owned();
    reloaded.accounts[0].base_url = UpstreamUrl::parse(&second.ws_url()).unwrap();
    let report = gateway.reload(reloaded).await.expect("reload");
    assert_eq!(report.added, [AccountId(2)]);
    assert_eq!(report.removed, [AccountId(1)]);
    assert!(report.needs_restart.is_empty(), "{report:?}");
    logs.wait_for(&["configuration reloaded"], Duration::ZERO)
        .await
        .expect("the reload is logged");

    // The open session was not dropped: it answers a ping and runs another turn.
    open.ping(b"still-there").await.unwrap();
    match open.recv(Duration::from_secs(5)).await.unwrap() {
        Incoming::Pong(payload) => assert_eq!(&payload[..], b"still-there"),
        Incoming::Event(e) => panic!("unexpected event {e}"),
        Incoming::Closed(c) => panic!("the open session was closed: {c:?}"),
    }
    open.send_json(&create("after", json!({}))).await.unwrap();
    let turn = open.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);

    // A new session is served by the new account only.
    let first_frames = frames(&first);
    let mut fresh = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .unwrap();
    fresh.send_json(&create("new", json!({}))).await.unwrap();
    let turn = fresh.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    assert_eq!(
        frames(&first),
        first_frames,
        "the removed account took nothing new"
    );
    assert!(
        frames(&second) >= 1,
        "the added account served the new session"
    );
    eprintln!(
        "open session's second turn went to: first={} second={}",
        frames(&first),
        frames(&second)
    );
}

async fn reload_replaces_client_keys_without_closing_sockets_of_a_removed_key(shell: Shell) {
    let mock = mock(|_| {}).await;
    let config = config_for(&mock.ws_url());
    let gateway = shell.start(config.clone()).await.unwrap();
    let mut open = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .unwrap();
    let mut reloaded = config;
    reloaded.client_keys[0].key = wsv2_core::file_config::Secret::new("sk-rotated");
    gateway.reload(reloaded).await.expect("reload");
    // The old key no longer upgrades; the new one does.
    assert!(
        WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
            .await
            .is_err()
    );
    let mut rotated = WsClient::connect(&gateway.ws_url(), &Credentials::bearer("sk-rotated"))
        .await
        .expect("the new key upgrades");
    // The socket opened with the old key keeps working.
    open.send_json(&create("old key, open socket", json!({})))
        .await
        .unwrap();
    assert_eq!(
        open.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    rotated
        .send_json(&create("new key", json!({})))
        .await
        .unwrap();
    assert_eq!(
        rotated.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
}

async fn reload_points_a_forward_account_at_its_new_url(shell: Shell) {
    let first = mock(|_| {}).await;
    let second = mock(|_| {}).await;
    let mut config = config_for(&first.ws_url());
    config.accounts[0].force_http = true;
    let gateway = shell.start(config.clone()).await.unwrap();
    let (status, text) = post(&base(gateway.addr), &body("before", json!({}))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(posts(&first), 1);

    // Account 1 goes, account 2 (forwarded too, at the second mock) comes.
    let mut reloaded = config;
    reloaded.accounts[0].id = AccountId(2);
    reloaded.accounts[0].base_url = UpstreamUrl::parse(&second.ws_url()).unwrap();
    gateway.reload(reloaded).await.expect("reload");
    let (status, text) = post(&base(gateway.addr), &body("after", json!({}))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(posts(&first), 1, "the removed account took nothing new");
    assert_eq!(posts(&second), 1, "the added account was POSTed to");
}
