//! Drives the core's sans-IO proxy handshakes (HTTP CONNECT, SOCKS5) over a socket; the
//! bytes the proxy sent past its reply reach the next layer first ([`Prefixed`]).

use std::io;

use bytes::Bytes;
use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wsv2_core::file_config::ProxyHandshake;
use wsv2_core::proxy::{Progress, ProxyError};

use crate::io::Prefixed;

/// Bytes read per step of a handshake (proxy replies are a few hundred bytes at most)
const HANDSHAKE_READ: usize = 1024;

/// Why a tunnel could not be opened
#[derive(Debug)]
pub(crate) enum TunnelError {
    /// The proxy answered, and not with a tunnel
    Refused(ProxyError),
    /// Reading or writing the proxy socket failed
    Io(io::Error),
}

/// Runs `handshake` on `socket` until the tunnel is up; returns the socket with any tunnel bytes
/// that arrived with the proxy's last reply in front of it
pub(crate) async fn open_tunnel<S>(
    mut socket: S,
    handshake: ProxyHandshake,
) -> Result<Prefixed<S>, TunnelError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut machine = Machine(handshake);
    let mut buf = [0u8; HANDSHAKE_READ];
    loop {
        while let Some(bytes) = machine.poll_transmit() {
            socket.write_all(&bytes).await.map_err(TunnelError::Io)?;
        }
        socket.flush().await.map_err(TunnelError::Io)?;
        let n = socket.read(&mut buf).await.map_err(TunnelError::Io)?;
        if n == 0 {
            return Err(TunnelError::Refused(machine.handle_eof()));
        }
        match machine
            .handle_input(&buf[..n])
            .map_err(TunnelError::Refused)?
        {
            Progress::NeedMore => {}
            Progress::Done { leftover } => {
                return Ok(Prefixed::new(leftover, socket));
            }
        }
    }
}

/// One interface over both handshake machines
struct Machine(ProxyHandshake);

impl Machine {
    fn poll_transmit(&mut self) -> Option<Bytes> {
        match &mut self.0 {
            ProxyHandshake::HttpConnect(h) => h.poll_transmit(),
            ProxyHandshake::Socks5(h) => h.poll_transmit(),
        }
    }

    fn handle_input(&mut self, data: &[u8]) -> Result<Progress, ProxyError> {
        match &mut self.0 {
            ProxyHandshake::HttpConnect(h) => h.handle_input(data),
            ProxyHandshake::Socks5(h) => h.handle_input(data),
        }
    }

    fn handle_eof(&mut self) -> ProxyError {
        match &mut self.0 {
            ProxyHandshake::HttpConnect(h) => h.handle_eof(),
            ProxyHandshake::Socks5(h) => h.handle_eof(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tokio::TokioAdapter;
    use tokio_test::io::Builder;
    use wsv2_core::file_config::ProxyUrl;

    #[tokio::test]
    async fn connect_reply_split_across_reads_leaves_tunnel_bytes_in_front() {
        let proxy = ProxyUrl::parse("http://127.0.0.1:3128").unwrap();
        let handshake = proxy.handshake("upstream.test", 443).unwrap();
        let mock = Builder::new()
            .write(b"CONNECT upstream.test:443 HTTP/1.1\r\nHost: upstream.test:443\r\n\r\n")
            .read(b"HTTP/1.1 200 Connection established\r\n")
            .read(b"\r\nTUNNEL")
            .read(b"-REST")
            .build();
        let mock = TokioAdapter::new(mock);
        let mut tunnel = open_tunnel(mock, handshake).await.expect("tunnel");
        let mut got = Vec::new();
        tunnel.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"TUNNEL-REST");
    }

    #[tokio::test]
    async fn a_407_is_a_refusal_naming_the_status() {
        let proxy = ProxyUrl::parse("http://127.0.0.1:3128").unwrap();
        let handshake = proxy.handshake("upstream.test", 443).unwrap();
        let mock = Builder::new()
            .write(b"CONNECT upstream.test:443 HTTP/1.1\r\nHost: upstream.test:443\r\n\r\n")
            .read(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .build();
        let mock = TokioAdapter::new(mock);
        match open_tunnel(mock, handshake).await {
            Err(TunnelError::Refused(e)) => {
                let text = e.to_string();
                assert!(text.contains("407"), "{text}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn socks5_eof_mid_handshake_is_a_refusal_not_a_hang() {
        let proxy = ProxyUrl::parse("socks5://127.0.0.1:1080").unwrap();
        let handshake = proxy.handshake("upstream.test", 443).unwrap();
        let mock = TokioAdapter::new(Builder::new().write(&[5, 1, 0]).build());
        match open_tunnel(mock, handshake).await {
            Err(TunnelError::Refused(ProxyError::ClosedDuringHandshake { .. })) => {}
            other => panic!("expected ClosedDuringHandshake, got {other:?}"),
        }
    }
}
