//! What a shell gives the runtime-neutral driver: spawning, timers and TCP.
//!
//! The same shape as quinn's `Runtime`: a small object-safe trait a shell implements once for
//! its executor (`wsv2-tokio`, `wsv2-smol`), used by every task through an [`Rt`] handle.
//! Everything else the tasks need is runtime-neutral already: channels (`tokio::sync`, which
//! needs no tokio runtime), byte streams (`futures-io`), WebSockets (async-tungstenite over
//! those streams), TLS (futures-rustls), HTTP (hyper over [`smol_hyper::rt::FuturesIo`]).
//!
//! Timers are made once per task and reset: a session or conn task re-arms the same timer on
//! every turn of its loop, so the per-event path allocates nothing for time.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{AbortHandle, Abortable, BoxFuture};
use futures_util::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::instrument::WithSubscriber;

/// A byte stream: a TCP socket, a proxy tunnel or TLS over either
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A boxed byte stream, the one stream type the driver handles
pub type BoxIo = Box<dyn Io>;

/// A timer a task keeps for its whole life and re-arms
pub trait AsyncTimer: Send + Sync {
    /// Fires at `deadline` from now on (instead of the previous deadline)
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has passed
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A bound TCP listener
pub trait Listener: Send + Sync {
    /// The address it is bound to
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The next connection, with `TCP_NODELAY` set
    fn accept(&self) -> BoxFuture<'_, io::Result<(BoxIo, SocketAddr)>>;
}

/// The executor, timer and TCP of one async runtime
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `future` in the background to its end
    fn spawn(&self, future: BoxFuture<'static, ()>);
    /// The runtime's clock (the system's, unless a test runtime pauses it)
    fn now(&self) -> Instant;
    /// A timer that fires at `deadline`
    fn timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;
    /// Opens a TCP connection to `host:port` (resolving the name), with `TCP_NODELAY` set
    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<BoxIo>>;
    /// Binds a TCP listener
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;
}

/// The runtime handle every task holds
pub type Rt = Arc<dyn Runtime>;

/// Spawns `future` on `rt`; the handle stops it at its next await point
pub(crate) fn spawn_abortable(
    rt: &Rt,
    future: impl Future<Output = ()> + Send + 'static,
) -> AbortHandle {
    let (abort, registration) = AbortHandle::new_pair();
    spawn(rt, async move {
        let _ = Abortable::new(future, registration).await;
    });
    abort
}

/// Spawns `future` on `rt` and forgets it. The task logs to the subscriber current here: a
/// runtime whose tasks run on threads of their own would otherwise log only to the global one
/// (unless the global one is the only one: [`crate::logging::init`] in the binaries).
pub(crate) fn spawn(rt: &Rt, future: impl Future<Output = ()> + Send + 'static) {
    if crate::logging::tasks_log_globally() {
        rt.spawn(Box::pin(future));
    } else {
        rt.spawn(Box::pin(future.with_current_subscriber()));
    }
}

/// The deadline passed before the future finished
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Runs `future` for at most `limit` (one timer made for the call: not for per-event paths)
pub(crate) async fn timeout<F: Future>(
    rt: &Rt,
    limit: Duration,
    future: F,
) -> Result<F::Output, Elapsed> {
    let deadline = Some(rt.now() + limit);
    let mut clock = Clock::new(rt);
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        clock.poll_until(cx, deadline).map(|()| Err(Elapsed))
    })
    .await
}

/// A task's clock and its one timer, armed for an optional deadline (`None` never fires)
pub(crate) struct Clock {
    rt: Rt,
    timer: Pin<Box<dyn AsyncTimer>>,
    armed: Option<Instant>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock").field("armed", &self.armed).finish()
    }
}

impl Clock {
    /// A disarmed timer on `rt`'s clock
    pub(crate) fn new(rt: &Rt) -> Self {
        Self {
            timer: rt.timer(rt.now()),
            rt: rt.clone(),
            armed: None,
        }
    }

    /// The runtime's time: what every `handle_*(now, ..)` of the core is given
    pub(crate) fn now(&self) -> Instant {
        self.rt.now()
    }

    /// Ready once `deadline` has passed; pending forever without one. Re-arms only when the
    /// deadline changed, so polling it every loop turn costs no timer-wheel work.
    pub(crate) fn poll_until(
        &mut self,
        cx: &mut Context<'_>,
        deadline: Option<Instant>,
    ) -> Poll<()> {
        let Some(deadline) = deadline else {
            self.armed = None;
            return Poll::Pending;
        };
        if self.armed != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        self.timer.as_mut().poll_elapsed(cx)
    }

    /// Waits until `deadline` (forever without one)
    pub(crate) async fn until(&mut self, deadline: Option<Instant>) {
        std::future::poll_fn(|cx| self.poll_until(cx, deadline)).await
    }
}

/// A message on its way to a task's inbox: queued at once, or (the queue full) a boxed wait
/// for room; ready with whether the receiver took it (`false`: it is gone). Awaited in place
/// of `Sender::send`, whose future holds the message and the wait: a task awaiting sends
/// inline (the session task's drive) would keep room for them in its future for its whole
/// life, idle or not.
#[must_use = "a full queue takes the message only once this is awaited"]
pub(crate) enum Sending {
    Done(bool),
    Waiting(BoxFuture<'static, bool>),
}

impl Sending {
    /// Queues `msg` on `tx` now, or once it has room
    pub(crate) fn new<M: Send + 'static>(tx: &mpsc::Sender<M>, msg: M) -> Self {
        match tx.try_send(msg) {
            Ok(()) => Self::Done(true),
            Err(mpsc::error::TrySendError::Closed(_)) => Self::Done(false),
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let tx = tx.clone();
                Self::Waiting(Box::pin(async move { tx.send(msg).await.is_ok() }))
            }
        }
    }
}

impl Future for Sending {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        match &mut *self {
            Self::Done(taken) => Poll::Ready(*taken),
            Self::Waiting(wait) => wait.as_mut().poll(cx),
        }
    }
}
