//! [`Runtime`] on tokio: `tokio::spawn`, `tokio::time::Sleep`, `tokio::net`.
//!
//! The clock is tokio's, so paused-time tests move every task's timers and `now()` together.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_tungstenite::tokio::TokioAdapter;
use futures_util::future::BoxFuture;
use wsv2_shell::runtime::{AsyncTimer, BoxIo, Listener, Runtime};

/// The tokio runtime the calling task runs on
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        tokio::spawn(future);
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer(Box::pin(tokio::time::sleep_until(deadline.into()))))
    }

    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<BoxIo>> {
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(TokioAdapter::new(tcp)) as BoxIo)
        })
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TcpListener(listener)) as Box<dyn Listener>)
        })
    }
}

/// A `Sleep` boxed once per task, so the timer is `Unpin` and re-armed in place
struct Timer(Pin<Box<tokio::time::Sleep>>);

impl AsyncTimer for Timer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

struct TcpListener(tokio::net::TcpListener);

impl Listener for TcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> BoxFuture<'_, io::Result<(BoxIo, SocketAddr)>> {
        Box::pin(async move {
            let (tcp, peer) = self.0.accept().await?;
            tcp.set_nodelay(true)?;
            Ok((Box::new(TokioAdapter::new(tcp)) as BoxIo, peer))
        })
    }
}
