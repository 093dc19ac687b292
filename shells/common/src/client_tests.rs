//! The client outbox under paused time. The gateway's frames to the client are unmasked
//! (server role), so the exact bytes on the wire are scripted with `tokio_test::io::Builder`.

use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::{WebSocketSender, WebSocketStream};
use bytes::Bytes;
use tokio::time::Instant as TokioInstant;
use wsv2_core::conn::{CompatKey, ConnRecord};
use wsv2_core::event::Utf8;
use wsv2_core::session::{Admission, Hop, Lease, Session, SessionRequest, Transmit};
use wsv2_core::turn::{Holder, SlotRequest, UpstreamInput};
use wsv2_core::{AccountId, Config, ConnId, SessionId};

use super::ClientOutbox;

const CONN: ConnId = ConnId(7);

/// The write half of a scripted client socket
type ScriptedClient = WebSocketSender<TokioAdapter<tokio_test::io::Mock>>;

/// The exact unmasked close frame a server writes: FIN + opcode 8, length, code, reason
fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut frame = vec![0x88, u8::try_from(2 + reason.len()).unwrap()];
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason.as_bytes());
    frame
}

/// An outbox over a scripted client socket that expects exactly `expected` to be written
async fn outbox_expecting(expected: &[u8], cfg: &Config) -> ClientOutbox<ScriptedClient> {
    let mock = tokio_test::io::Builder::new().write(expected).build();
    let ws = WebSocketStream::from_raw_socket(TokioAdapter::new(mock), Role::Server, None).await;
    let (sink, _stream) = ws.split();
    ClientOutbox::new(
        sink,
        cfg.session.client_write_buffer,
        cfg.session.client_write_timeout,
        cfg.session.close_linger,
    )
}

/// The write half of a client socket over an in-memory pipe
type PipedClient = WebSocketSender<TokioAdapter<tokio::io::DuplexStream>>;

/// An outbox over a client that does not read and whose receive window holds 8 bytes, and the
/// client's end of the pipe (for a test that has it read later)
async fn outbox_to_a_client_that_does_not_read(
    cfg: &Config,
) -> (ClientOutbox<PipedClient>, tokio::io::DuplexStream) {
    let (gateway_end, client_end) = tokio::io::duplex(8);
    let ws =
        WebSocketStream::from_raw_socket(TokioAdapter::new(gateway_end), Role::Server, None).await;
    let (sink, _stream) = ws.split();
    let outbox = ClientOutbox::new(
        sink,
        cfg.session.client_write_buffer,
        cfg.session.client_write_timeout,
        cfg.session.close_linger,
    );
    (outbox, client_end)
}

fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}

/// A session with one create in flight upstream (sent on `CONN`, not answered)
fn session_with_a_turn_in_flight(cfg: Arc<Config>) -> Session {
    let mut session = Session::new(SessionId(1), cfg, now());
    session.handle_client_text(
        now(),
        Bytes::from_static(br#"{"type":"response.create","model":"gpt-5","input":"hi"}"#),
    );
    let mut sent = false;
    for _ in 0..10 {
        while let Some(transmit) = session.poll_transmit() {
            sent |= matches!(transmit, Transmit::Upstream { conn: CONN, .. });
        }
        while let Some(cmd) = session.poll_request() {
            match cmd {
                SessionRequest::Schedule { .. } => {
                    let account = AccountId(1);
                    session.handle_admission(
                        now(),
                        Admission {
                            account,
                            max_concurrency: 8,
                            compat: CompatKey::plain(account),
                            model_map: Default::default(),
                        },
                    );
                }
                SessionRequest::Acquire { compat, .. } => session.handle_lease(
                    now(),
                    Lease {
                        holder: SessionId(1),
                        record: ConnRecord::new(CONN, compat, now()),
                        fresh: true,
                        preferred_hit: false,
                    },
                ),
                SessionRequest::Slot(SlotRequest::Acquire { turn, .. }) => {
                    session.handle_slot_granted(now(), turn)
                }
                _ => {}
            }
        }
        while session.poll_event().is_some() {}
    }
    assert!(sent, "the create went upstream");
    session
}

/// Runs the session's timers on the runtime's clock until it closes the client; returns the
/// close, having queued it on `outbox` (client pings are not written: the script has none)
async fn run_until_close(
    session: &mut Session,
    outbox: &mut ClientOutbox<ScriptedClient>,
) -> (u16, &'static str) {
    loop {
        while let Some(cmd) = session.poll_request() {
            if let SessionRequest::CloseClient { code, reason } = cmd {
                outbox.close(now(), code, reason);
                return (code, reason);
            }
        }
        while session.poll_transmit().is_some() {}
        while session.poll_event().is_some() {}
        crate::runtime::Clock::new(&crate::test_rt())
            .until(session.poll_timeout())
            .await;
        session.handle_timeout(now());
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_a_turn_in_flight_closes_the_client_1012_at_shutdown_grace() {
    let mut cfg = Config::default();
    // Below every other session timer, so only the grace can close the client here.
    cfg.session.shutdown_grace = Duration::from_secs(3);
    let cfg = Arc::new(cfg);
    let mut session = session_with_a_turn_in_flight(cfg.clone());
    let mut outbox = outbox_expecting(&close_frame(1012, "gateway restarting"), &cfg).await;
    let start = TokioInstant::now();
    session.handle_shutdown(now());
    let (code, _) = run_until_close(&mut session, &mut outbox).await;
    assert_eq!(code, 1012);
    assert_eq!(start.elapsed(), cfg.session.shutdown_grace);
    // The writer wrote exactly the close frame and handed the sink back for the linger.
    assert!(outbox.finish(&crate::test_rt()).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn shutdown_of_an_idle_session_closes_the_client_1012_within_the_close_spread() {
    let cfg = Arc::new(Config::default());
    let mut session = session_with_a_turn_in_flight(cfg.clone());
    // Upstream finishes the turn: nothing is in flight any more.
    for frame in [
        &br#"{"type":"response.created","response":{"id":"resp_1"}}"#[..],
        br#"{"type":"response.completed","response":{"id":"resp_1","usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}}"#,
    ] {
        let frame = UpstreamInput::Frame(Bytes::from_static(frame), Utf8::Unchecked);
        session.handle_upstream(now(), CONN, frame);
    }
    let mut outbox = outbox_expecting(&close_frame(1012, "gateway restarting"), &cfg).await;
    let start = TokioInstant::now();
    session.handle_shutdown(now());
    let (code, _) = run_until_close(&mut session, &mut outbox).await;
    assert_eq!(code, 1012);
    // At this session's own instant within the spread (virtual time: exactly the core's).
    assert!(start.elapsed() > Duration::ZERO, "{:?}", start.elapsed());
    assert!(start.elapsed() <= cfg.session.shutdown_close_spread);
    assert!(outbox.finish(&crate::test_rt()).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn an_over_size_client_message_closes_the_client_with_exactly_1009() {
    let cfg = Arc::new(Config::default());
    let mut session = session_with_a_turn_in_flight(cfg.clone());
    let mut outbox = outbox_expecting(&close_frame(1009, "message too big"), &cfg).await;
    session.handle_message_too_big(now(), Hop::Client);
    let (code, reason) = run_until_close(&mut session, &mut outbox).await;
    assert_eq!((code, reason), (1009, "message too big"));
    assert!(outbox.finish(&crate::test_rt()).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_given_up_at_client_write_timeout_and_told_1008() {
    let cfg = Config::default();
    let frame = br#"{"type":"response.created"}"#;
    // The frame cannot go out.
    let (mut outbox, mut client_end) = outbox_to_a_client_that_does_not_read(&cfg).await;
    let start = TokioInstant::now();
    outbox.push(now(), Bytes::from_static(frame));
    // The frame cannot go out: the write stays pending until its deadline.
    let mut clock = crate::runtime::Clock::new(&crate::test_rt());
    let deadline = outbox.deadline();
    let written = tokio::select! {
        () = std::future::poll_fn(|cx| outbox.poll_write(cx)) => true,
        () = clock.until(deadline) => false,
    };
    assert!(!written, "the write cannot finish");
    outbox.handle_timeout(now());
    assert!(outbox.failed(), "the client counts as gone at the deadline");
    assert_eq!(start.elapsed(), cfg.session.client_write_timeout);
    outbox.push(now(), Bytes::from_static(br#"{"type":"later"}"#));
    // It reads again, too late: the frame begun before the deadline, then only a close 1008.
    let mut expected = vec![0x81, u8::try_from(frame.len()).unwrap()];
    expected.extend_from_slice(frame);
    expected.extend_from_slice(&close_frame(1008, "client did not read its events in time"));
    let mut got = vec![0; expected.len()];
    let rt = crate::test_rt();
    let reading = tokio::io::AsyncReadExt::read_exact(&mut client_end, &mut got);
    let (read, closed) = tokio::join!(reading, outbox.finish(&rt));
    read.expect("the client reads the frame and the close");
    assert_eq!(got, expected);
    assert!(closed.is_some(), "the close went out");
}

#[tokio::test(start_paused = true)]
async fn a_client_given_up_that_does_not_read_within_close_linger_is_let_go_without_a_close() {
    let cfg = Config::default();
    // Nothing can go out.
    let (mut outbox, _client_end) = outbox_to_a_client_that_does_not_read(&cfg).await;
    let start = TokioInstant::now();
    outbox.push(now(), Bytes::from_static(br#"{"type":"response.created"}"#));
    // The session ends at once; the end bounds the write as the session did: the frame's
    // client_write_timeout, then close_linger for the close 1008.
    let closed = outbox.finish(&crate::test_rt()).await;
    assert!(closed.is_none(), "the close never went out");
    assert_eq!(
        start.elapsed(),
        cfg.session.client_write_timeout + cfg.session.close_linger
    );
}

/// Issue 17's allocations: a relayed frame is a slice of the upstream read buffer, which can
/// be reused (not regrown) only once no frame refers to it. Fed, the frame is copied into the
/// socket's write buffer and let go before the flush, while the next upstream frames are read.
#[tokio::test(start_paused = true)]
async fn a_fed_frame_lets_its_read_buffer_go_before_the_flush() {
    let cfg = Config::default();
    let event = br#"{"type":"response.output_text.delta","delta":"x"}"#;
    let mut wire = vec![0x81, u8::try_from(event.len()).unwrap()];
    wire.extend_from_slice(event);
    let mut outbox = outbox_expecting(&wire, &cfg).await;
    let mut read_buffer = bytes::BytesMut::with_capacity(4096);
    read_buffer.extend_from_slice(event);
    let frame = read_buffer.split().freeze();
    outbox.push(now(), frame);
    assert!(
        !read_buffer.try_reclaim(4096),
        "a queued frame holds the read buffer"
    );
    outbox.feed().await;
    assert!(
        read_buffer.try_reclaim(4096),
        "fed, the frame no longer holds it"
    );
    assert!(outbox.has_work(), "the flush is still to do");
    std::future::poll_fn(|cx| outbox.poll_write(cx)).await;
    assert!(!outbox.has_work() && !outbox.failed());
}
