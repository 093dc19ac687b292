//! The one stream adapter the driver needs: a stream with bytes already read in front of it,
//! and with what must live exactly as long as the stream.
//!
//! Two places hand a socket over with bytes read past a handshake: a proxy's reply can carry
//! the first tunnel bytes, and hyper can have read past the HTTP upgrade request. Both give the
//! next layer a [`Prefixed`] stream. A served client socket carries its place against the
//! client socket caps the same way ([`Prefixed::holding`]), so the place is given back exactly
//! when the socket is dropped, by hyper or by the session task it was upgraded to.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::io::{AsyncRead, AsyncWrite};

/// A stream whose first reads return `prefix`; writes go straight to the inner stream.
/// `held` lives as long as the stream does.
#[derive(Debug)]
pub(crate) struct Prefixed<S, H = ()> {
    prefix: Bytes,
    inner: S,
    _held: H,
}

impl<S> Prefixed<S> {
    /// `inner`, read after `prefix`
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        // An empty slice of a larger buffer would keep all of it alive for the socket's life.
        let prefix = if prefix.is_empty() {
            Bytes::new()
        } else {
            prefix
        };
        Self {
            prefix,
            inner,
            _held: (),
        }
    }
}

impl<S, H> Prefixed<S, H> {
    /// `inner` with nothing in front, keeping `held` alive for as long as the stream exists
    pub(crate) fn holding(inner: S, held: H) -> Self {
        Self {
            prefix: Bytes::new(),
            inner,
            _held: held,
        }
    }
}

impl<S: AsyncRead + Unpin, H: Unpin> AsyncRead for Prefixed<S, H> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // An empty slice still holds its whole buffer (hyper's read buffer): let it go.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin, H: Unpin> AsyncWrite for Prefixed<S, H> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}
