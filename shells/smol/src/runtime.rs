//! [`Runtime`] on smol: an `async-executor` run by one thread per core, `async-io` timers and
//! `async-net` sockets. No tokio runtime exists in this process.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use smol::{Executor, Timer};
use wsv2_shell::runtime::{AsyncTimer, BoxIo, Listener, Runtime};

/// An executor with its own worker threads
#[derive(Clone, Debug)]
pub struct SmolRuntime {
    executor: Arc<Executor<'static>>,
}

impl SmolRuntime {
    /// The process's runtime: started on first use with one worker per available core
    /// (`SMOL_THREADS` overrides, as for smol's own global executor)
    pub fn global() -> Self {
        static GLOBAL: OnceLock<SmolRuntime> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let threads = std::env::var("SMOL_THREADS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
                    .unwrap_or(1)
                    .max(1);
                Self::with_threads(threads)
            })
            .clone()
    }

    /// A runtime whose executor runs on `threads` new threads (they live as long as the process)
    pub fn with_threads(threads: usize) -> Self {
        let executor = Arc::new(Executor::new());
        for n in 0..threads {
            let ex = executor.clone();
            std::thread::Builder::new()
                .name(format!("wsv2-smol-{n}"))
                .spawn(move || smol::block_on(ex.run(std::future::pending::<()>())))
                .expect("spawn an executor thread");
        }
        Self { executor }
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        self.executor.spawn(future).detach();
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Deadline {
            deadline,
            timer: Timer::at(deadline),
        })
    }

    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<BoxIo>> {
        Box::pin(async move {
            let tcp = smol::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(tcp) as BoxIo)
        })
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = smol::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TcpListener(listener)) as Box<dyn Listener>)
        })
    }
}

/// An `async-io` timer that stays elapsed once its deadline passed (a fired `Timer` would
/// otherwise wait forever on its next poll)
struct Deadline {
    deadline: Instant,
    timer: Timer,
}

impl AsyncTimer for Deadline {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.deadline = deadline;
        self.timer.set_at(deadline);
    }

    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

struct TcpListener(smol::net::TcpListener);

impl Listener for TcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> BoxFuture<'_, io::Result<(BoxIo, SocketAddr)>> {
        Box::pin(async move {
            let (tcp, peer) = self.0.accept().await?;
            tcp.set_nodelay(true)?;
            Ok((Box::new(tcp) as BoxIo, peer))
        })
    }
}
