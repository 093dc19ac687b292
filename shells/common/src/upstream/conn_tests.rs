//! The conn reader/writer under paused time, with the upstream hop scripted at message level
//! (client frames are masked randomly, so byte-level scripts cannot be exact here).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use bytes::Bytes;
use futures_util::Sink;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant as TokioInstant;
use wsv2_core::conn::{CloseReason, CompatKey, ConnRecord, UpstreamConn, UpstreamTransmit};
use wsv2_core::event::Utf8;
use wsv2_core::{AccountId, Config, ConnId};

use super::{
    ConnIo, ConnReport, ToHolder, UpstreamInput, UpstreamMsg, UpstreamStream, spawn_conn_over,
};
use crate::upstream::HeldConns;

const CONN: ConnId = ConnId(7);
const ACCOUNT: AccountId = AccountId(1);

/// The upstream hop's write side: records every message; while stalled it never becomes ready
/// (upstream stopped reading and TCP is full)
struct ScriptedSink {
    sent: mpsc::UnboundedSender<Message>,
    stalled: Arc<AtomicBool>,
    /// Notified when a write finds the sink stalled (the write has begun)
    blocked: Arc<Notify>,
}

impl ScriptedSink {
    fn ready(&self) -> Poll<Result<(), WsError>> {
        if self.stalled.load(Ordering::SeqCst) {
            self.blocked.notify_one();
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

/// A release of the socket's buffers, as the scripted sink records it among the messages
const RELEASED: &[u8] = b"(buffers released)";

impl crate::relay_config::ReleaseBuffers for ScriptedSink {
    fn release_buffers(&self) {
        let _ = self
            .sent
            .send(Message::Binary(Bytes::from_static(RELEASED)));
    }
}

impl Sink<Message> for ScriptedSink {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.ready()
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        let _ = self.sent.send(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.ready()
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// One conn's I/O over scripted channels, leased to a test-held session inbox
struct Rig {
    io: ConnIo,
    /// What the writer put on the wire
    sent: mpsc::UnboundedReceiver<Message>,
    upstream: Option<UpstreamScript>,
    /// The holder: its task's piece that takes the reports and reads the lent read half
    held: HeldConns<ConnReport>,
    /// The control task's inbox
    control: mpsc::Receiver<ConnReport>,
    blocked: Arc<Notify>,
}

fn cfg() -> Config {
    Config::default()
}

/// What upstream sends on a scripted conn; dropping it is EOF
type UpstreamScript = mpsc::Sender<Result<Message, WsError>>;

/// A conn over a scripted stream and `sink`, not leased yet: its I/O, what upstream sends, and
/// the control task's inbox (both ends)
fn scripted_conn_over(
    sink: ScriptedSink,
) -> (
    ConnIo,
    UpstreamScript,
    mpsc::Sender<ConnReport>,
    mpsc::Receiver<ConnReport>,
) {
    let (upstream, rx) = mpsc::channel(8);
    let stream: UpstreamStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|msg| (msg, rx))
    }));
    let (control_tx, control) = mpsc::channel(8);
    let io = spawn_conn_over(
        &crate::test_rt(),
        CONN,
        ACCOUNT,
        sink,
        stream,
        control_tx.clone(),
        cfg().upstream.close_timeout,
    );
    (io, upstream, control_tx, control)
}

/// [`scripted_conn_over`] a sink that takes every write and nobody reads
fn scripted_conn() -> (
    ConnIo,
    UpstreamScript,
    mpsc::Sender<ConnReport>,
    mpsc::Receiver<ConnReport>,
) {
    let (sent, _sent) = mpsc::unbounded_channel();
    scripted_conn_over(ScriptedSink {
        sent,
        stalled: Arc::new(AtomicBool::new(false)),
        blocked: Arc::new(Notify::new()),
    })
}

async fn rig(stalled: bool) -> Rig {
    let (sent_tx, sent) = mpsc::unbounded_channel();
    let blocked = Arc::new(Notify::new());
    let (io, upstream, control_tx, control) = scripted_conn_over(ScriptedSink {
        sent: sent_tx,
        stalled: Arc::new(AtomicBool::new(stalled)),
        blocked: blocked.clone(),
    });
    let mut held = HeldConns::new(control_tx);
    assert_eq!(held.adopt(Some(io.clone()), CONN), None);
    Rig {
        io,
        sent,
        upstream: Some(upstream),
        held,
        control,
        blocked,
    }
}

fn text(deadline: TokioInstant) -> UpstreamTransmit {
    UpstreamTransmit::Text {
        frame: Bytes::from_static(br#"{"type":"response.create"}"#),
        deadline: deadline.into_std(),
    }
}

impl Rig {
    async fn report(&mut self) -> UpstreamInput {
        let msg = self.held.recv().await.expect("the reader reports");
        assert_eq!(msg.conn, CONN);
        assert_eq!(msg.account, ACCOUNT);
        msg.input
    }

    /// The reader's last word: `Closed` to the holder, then `ConnGone` to the control task
    async fn expect_gone(&mut self) {
        assert!(matches!(self.report().await, UpstreamInput::Closed));
        match self.control.recv().await {
            Some(ConnReport::Gone { account, conn }) => {
                assert_eq!((account, conn), (ACCOUNT, CONN));
            }
            _ => panic!("expected ConnGone"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_write_that_never_completes_is_abandoned_at_the_write_deadline_as_started() {
    let mut rig = rig(true).await;
    let config = cfg();
    let write_timeout = config.upstream.write_timeout;
    let start = TokioInstant::now();
    let now = || TokioInstant::now().into_std();
    let record = ConnRecord::new(CONN, CompatKey::plain(ACCOUNT), now());
    let mut machine = UpstreamConn::new(record, now(), &config.upstream);
    rig.io.write(text(start + write_timeout)).unwrap();
    let report = rig.report().await;
    assert!(
        matches!(report, UpstreamInput::WriteAbandoned),
        "{report:?}"
    );
    assert_eq!(start.elapsed(), write_timeout, "abandoned at the deadline");
    // What the session task does with the report: the core closes the conn.
    machine.handle_write_abandoned();
    assert_eq!(machine.close_reason(), Some(CloseReason::AbandonedWrite));
    assert!(!machine.is_reusable());
    // Part of the frame may be on the wire: the socket is dropped, not closed politely.
    rig.expect_gone().await;
    assert_eq!(start.elapsed(), write_timeout, "and dropped at once");
    assert!(rig.sent.try_recv().is_err(), "nothing was written");
}

#[tokio::test(start_paused = true)]
async fn the_holders_abandon_aborts_a_blocked_write_at_once() {
    let mut rig = rig(true).await;
    let start = TokioInstant::now();
    rig.io
        .write(text(start + Duration::from_secs(3600)))
        .unwrap();
    rig.blocked.notified().await; // the write has begun and is stuck
    rig.io.abandon_writes();
    let report = rig.report().await;
    assert!(
        matches!(report, UpstreamInput::WriteAbandoned),
        "{report:?}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no deadline was waited for"
    );
    rig.expect_gone().await;
}

#[tokio::test(start_paused = true)]
async fn writes_flow_while_the_sink_is_ready_and_a_close_waits_close_timeout_for_eof() {
    let mut rig = rig(false).await;
    let start = TokioInstant::now();
    rig.io.write(text(start + Duration::from_secs(10))).unwrap();
    let Some(Message::Text(frame)) = rig.sent.recv().await else {
        panic!("a text frame");
    };
    assert_eq!(frame.as_str(), r#"{"type":"response.create"}"#);
    rig.io.write(UpstreamTransmit::Close).unwrap();
    assert!(
        matches!(rig.sent.recv().await, Some(Message::Close(Some(f))) if u16::from(f.code) == 1000)
    );
    // Upstream never answers the close nor ends the socket: the reader gives up at close_timeout.
    rig.expect_gone().await;
    assert_eq!(start.elapsed(), cfg().upstream.close_timeout);
    drop(rig.upstream.take());
}

#[tokio::test(start_paused = true)]
async fn an_idle_conn_releases_its_buffers_after_the_writes_queued_before() {
    let mut rig = rig(false).await;
    let start = TokioInstant::now();
    rig.io.write(text(start + Duration::from_secs(10))).unwrap();
    rig.io.release_buffers();
    assert!(matches!(rig.sent.recv().await, Some(Message::Text(_))));
    assert!(
        matches!(rig.sent.recv().await, Some(Message::Binary(b)) if b == RELEASED),
        "released once the write went out"
    );
    // A conn released to its pool idles there: its buffers go too.
    let (control_tx, _control) = mpsc::channel::<ConnReport>(8);
    let mut held = HeldConns::new(control_tx);
    assert_eq!(held.adopt(Some(rig.io.clone()), CONN), None);
    held.release(CONN);
    assert!(matches!(rig.sent.recv().await, Some(Message::Binary(b)) if b == RELEASED));
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_ping_closes_the_conn_at_pong_timeout() {
    // The core's conn machine decides; the shell's part is writing its ping, delivering its
    // timer on the runtime's clock, and writing its close.
    let mut rig = rig(false).await;
    let config = cfg();
    let start = TokioInstant::now();
    let now = || TokioInstant::now().into_std();
    let record = ConnRecord::new(CONN, CompatKey::plain(ACCOUNT), now());
    let mut machine = UpstreamConn::new(record, now(), &config.upstream);
    let mut pinged_at = None;
    let mut clock = crate::runtime::Clock::new(&crate::test_rt());
    while machine.close_reason().is_none() {
        clock.until(machine.poll_timeout()).await;
        machine.handle_timeout(now());
        while let Some(transmit) = machine.poll_transmit() {
            if matches!(transmit, UpstreamTransmit::Ping) {
                pinged_at.get_or_insert(start.elapsed());
            }
            rig.io.write(transmit).unwrap();
        }
    }
    assert_eq!(machine.close_reason(), Some(CloseReason::PongTimeout));
    let pinged_at = pinged_at.expect("a ping was written");
    assert_eq!(pinged_at, config.upstream.ping_interval);
    assert_eq!(
        start.elapsed(),
        config.upstream.ping_interval + config.upstream.pong_timeout,
        "closed pong_timeout after the ping"
    );
    assert!(matches!(rig.sent.recv().await, Some(Message::Ping(_))));
    assert!(matches!(rig.sent.recv().await, Some(Message::Close(_))));
}

#[tokio::test(start_paused = true)]
async fn an_answered_ping_reaches_the_holder_as_a_pong() {
    let mut rig = rig(false).await;
    rig.io.write(UpstreamTransmit::Ping).unwrap();
    assert!(matches!(rig.sent.recv().await, Some(Message::Ping(_))));
    let upstream = rig.upstream.as_ref().unwrap();
    upstream
        .send(Ok(Message::Pong(Bytes::new())))
        .await
        .unwrap();
    assert!(matches!(rig.report().await, UpstreamInput::Pong));
    drop(rig.upstream.take()); // EOF
    rig.expect_gone().await;
}

/// A text frame reaches the holder as `Frame` (tungstenite validated its UTF-8, so the core
/// does not again), a binary frame as `Binary` (the core validates it)
#[tokio::test(start_paused = true)]
async fn text_and_binary_frames_reach_the_holder_told_apart() {
    let mut rig = rig(false).await;
    let upstream = rig.upstream.as_ref().unwrap();
    let event = r#"{"type":"response.output_text.delta","delta":"é"}"#;
    upstream.send(Ok(Message::text(event))).await.unwrap();
    upstream
        .send(Ok(Message::binary(event.as_bytes().to_vec())))
        .await
        .unwrap();
    match rig.report().await {
        UpstreamInput::Frame(frame, Utf8::Validated) => assert_eq!(&frame[..], event.as_bytes()),
        other => panic!("expected the text frame, got {other:?}"),
    }
    match rig.report().await {
        UpstreamInput::Frame(frame, Utf8::Unchecked) => assert_eq!(&frame[..], event.as_bytes()),
        other => panic!("expected the binary frame, got {other:?}"),
    }
    drop(rig.upstream.take()); // EOF
    rig.expect_gone().await;
}

/// The hand-off race behind smol's lost first turns: a session releases a conn by sending
/// `Release` to the control task and then routing the conn's reports home. Between the two, on
/// a multi-threaded executor, the control task can lease the conn to the next session, which
/// adopts it at once; the first session's owner change then runs last. It must not take the
/// conn away from its new holder: the reply to the new holder's create would go to the control
/// task as an idle frame and the new holder would wait for it until a timeout.
#[tokio::test(start_paused = true)]
async fn a_late_release_by_the_previous_holder_leaves_the_conn_with_its_new_holder() {
    let (io, upstream, control_tx, mut control) = scripted_conn();
    let mut previous = HeldConns::new(control_tx.clone());
    let mut next = HeldConns::new(control_tx);
    assert_eq!(previous.adopt(Some(io.clone()), CONN), None);
    // `previous` sent its Release; the control task leased the conn to `next`, which adopted it…
    assert_eq!(next.adopt(Some(io), CONN), None);
    // …before `previous` got round to routing the conn home.
    previous.release(CONN);
    // Upstream answers `next`'s create.
    let created = r#"{"type":"response.created"}"#;
    upstream.send(Ok(Message::text(created))).await.unwrap();
    tokio::select! {
        biased;
        msg = next.recv() => match msg.map(|m| m.input) {
            Some(UpstreamInput::Frame(frame, _)) => assert_eq!(&frame[..], created.as_bytes()),
            other => panic!("expected the frame, got {other:?}"),
        },
        Some(ConnReport::Idle(_)) = control.recv() => {
            panic!("the new holder's frame went to the control task as an idle frame")
        }
    }
}

fn delta(n: u32) -> Message {
    Message::text(format!(
        r#"{{"type":"response.output_text.delta","n":{n}}}"#
    ))
}

async fn expect_frame(held: &mut HeldConns<ConnReport>, n: u32) {
    match held.recv().await.map(|m| m.input) {
        Some(UpstreamInput::Frame(frame, _)) => {
            assert!(
                frame.ends_with(format!(r#""n":{n}}}"#).as_bytes()),
                "{frame:?}"
            )
        }
        other => panic!("expected frame {n}, got {other:?}"),
    }
}

async fn expect_idle(control: &mut mpsc::Receiver<ConnReport>, n: u32) {
    match control.recv().await {
        Some(ConnReport::Idle(UpstreamMsg {
            input: UpstreamInput::Frame(frame, _),
            ..
        })) => assert!(frame.ends_with(format!(r#""n":{n}}}"#).as_bytes())),
        _ => panic!("expected frame {n} at the control task"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_conns_frames_are_read_by_its_holder_and_go_to_the_pool_after_release() {
    let (io, upstream, control_tx, mut control) = scripted_conn();
    let mut held = HeldConns::new(control_tx);
    assert_eq!(held.adopt(Some(io), CONN), None);
    upstream.try_send(Ok(delta(1))).unwrap();
    expect_frame(&mut held, 1).await;
    // The reader lent the holder the read half: a frame is read at once, by the holder's own
    // task, without the reader task running (this task does not yield in between).
    upstream.try_send(Ok(delta(2))).unwrap();
    match held.try_recv().await.map(|m| m.input) {
        Some(UpstreamInput::Frame(frame, Utf8::Validated)) => {
            assert!(frame.ends_with(br#""n":2}"#))
        }
        other => panic!("frame 2 read in the holder's task, got {other:?}"),
    }
    // Released: the read half goes back, and the reader reports for the pool.
    held.release(CONN);
    upstream.try_send(Ok(delta(3))).unwrap();
    expect_idle(&mut control, 3).await;
}

#[tokio::test(start_paused = true)]
async fn a_read_half_given_back_late_goes_on_to_the_conns_next_holder() {
    let (io, upstream, control_tx, mut control) = scripted_conn();
    let mut previous = HeldConns::new(control_tx.clone());
    let mut next = HeldConns::new(control_tx);
    assert_eq!(previous.adopt(Some(io.clone()), CONN), None);
    upstream.try_send(Ok(delta(1))).unwrap();
    expect_frame(&mut previous, 1).await; // the read half is lent to `previous`
    // The control task leased the conn to `next` before `previous` routed it home and gave
    // its read half back.
    assert_eq!(next.adopt(Some(io), CONN), None);
    previous.release(CONN);
    upstream.try_send(Ok(delta(2))).unwrap();
    tokio::select! {
        biased;
        () = expect_frame(&mut next, 2) => {}
        Some(_) = control.recv() => panic!("the new holder's frame went to the control task"),
    }
}

/// The read half waits in the conn's slot, not in a message to the holder: a holder that lets
/// go of the conn before taking it (its client stopped reading, so it polls no upstream
/// reports) must not keep the conn's next holder from reading it.
#[tokio::test(start_paused = true)]
async fn a_holder_that_lets_go_before_taking_the_read_half_does_not_keep_it_from_the_next() {
    let (io, upstream, control_tx, _control) = scripted_conn();
    let mut previous = HeldConns::new(control_tx.clone());
    assert_eq!(previous.adopt(Some(io.clone()), CONN), None);
    // The reader lends `previous` the read half (the test runtime has one thread: the reader
    // runs while this task yields); `previous` never polls again.
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    previous.release(CONN);
    let mut next = HeldConns::new(control_tx);
    assert_eq!(next.adopt(Some(io), CONN), None);
    upstream.try_send(Ok(delta(1))).unwrap();
    tokio::select! {
        biased;
        () = expect_frame(&mut next, 1) => {}
        () = tokio::time::sleep(Duration::from_secs(3600)) => {
            panic!("the next holder never got the read half")
        }
    }
    drop(previous);
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_ends_without_releasing_gives_the_read_half_back() {
    let (io, upstream, control_tx, mut control) = scripted_conn();
    let mut held = HeldConns::new(control_tx);
    assert_eq!(held.adopt(Some(io), CONN), None);
    upstream.try_send(Ok(delta(1))).unwrap();
    expect_frame(&mut held, 1).await;
    // Its task ended (the core had released the conn, or the task is cut at shutdown).
    drop(held);
    upstream.try_send(Ok(delta(2))).unwrap();
    expect_idle(&mut control, 2).await;
}

#[tokio::test(start_paused = true)]
async fn a_message_over_the_limit_read_by_the_holder_ends_the_conn_reported_once() {
    let (io, upstream, control_tx, mut control) = scripted_conn();
    let mut held = HeldConns::new(control_tx);
    assert_eq!(held.adopt(Some(io), CONN), None);
    upstream.try_send(Ok(delta(1))).unwrap();
    expect_frame(&mut held, 1).await;
    let too_long = CapacityError::MessageTooLong {
        size: 2,
        max_size: 1,
    };
    upstream.try_send(Err(WsError::Capacity(too_long))).unwrap();
    assert!(matches!(
        held.recv().await.map(|m| m.input),
        Some(UpstreamInput::TooBig)
    ));
    assert!(
        matches!(
            control.recv().await,
            Some(ConnReport::Gone { conn: CONN, .. })
        ),
        "the conn ends"
    );
    assert!(
        held.try_recv().await.is_none(),
        "and is not reported closed again"
    );
}

#[tokio::test(start_paused = true)]
async fn what_waits_on_a_full_holder_follows_the_conn_to_its_next_holder() {
    let (io, upstream, control_tx, _control) = scripted_conn();
    // A holder that stopped taking reports: its queue holds one and is full.
    let (stuck, _stuck_rx) = mpsc::channel(1);
    stuck
        .try_send(ToHolder::Report(UpstreamMsg {
            conn: CONN,
            account: ACCOUNT,
            input: UpstreamInput::Pong,
        }))
        .unwrap();
    io.lease_to(stuck);
    upstream.try_send(Ok(Message::Pong(Bytes::new()))).unwrap();
    // The reader waits on the stuck holder to lend it the read half (the test runtime has one
    // thread: the reader runs only while this task yields).
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    let mut next = HeldConns::new(control_tx);
    assert_eq!(next.adopt(Some(io), CONN), None);
    let msg = next.recv().await.expect("the pong reaches the next holder");
    assert!(matches!(msg.input, UpstreamInput::Pong));
}
