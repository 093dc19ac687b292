//! An IO wrapper that can swallow outgoing pong frames, for the `stop_pong` fault.
//!
//! tungstenite always answers pings; to stop answering them while still reading the socket, this
//! layer tracks the frame boundaries of the bytes the mock writes (server frames are unmasked)
//! and, once switched on, reports pong frames as written without passing them on.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::switches::Switches;

const OPCODE_PONG: u8 = 0xA;

/// Where the writer is within the outgoing frame stream.
#[derive(Clone, Copy, Debug, Default)]
struct FrameCursor {
    header: [u8; 14],
    header_len: usize,
    payload_left: u64,
    in_payload: bool,
    dropping: bool,
}

impl FrameCursor {
    fn at_boundary(&self) -> bool {
        !self.in_payload && self.header_len == 0
    }

    /// Bytes the header needs in total, once the first two are known.
    fn header_needed(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        match self.header[1] & 0x7F {
            126 => 4 + mask,
            127 => 10 + mask,
            _ => 2 + mask,
        }
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().unwrap_or_default()),
            len => u64::from(len),
        }
    }

    /// Consumes bytes of the current frame only; returns how many.
    fn consume(&mut self, bytes: &[u8], drop_pongs: bool) -> usize {
        if self.at_boundary() {
            self.dropping = drop_pongs && bytes[0] & 0x0F == OPCODE_PONG;
        }
        if self.in_payload {
            let n = (bytes.len() as u64).min(self.payload_left) as usize;
            self.payload_left -= n as u64;
            if self.payload_left == 0 {
                self.in_payload = false;
            }
            return n;
        }
        let mut used = 0;
        while used < bytes.len() && self.header_len < self.header_needed() {
            self.header[self.header_len] = bytes[used];
            self.header_len += 1;
            used += 1;
        }
        if self.header_len >= 2 && self.header_len == self.header_needed() {
            self.payload_left = self.payload_len();
            self.header_len = 0;
            self.in_payload = self.payload_left > 0;
        }
        used
    }

    /// Length of the leading run of `bytes` that is all kept or all dropped, and which it is.
    fn leading_run(&self, bytes: &[u8], drop_pongs: bool) -> (bool, usize) {
        let mut probe = *self;
        let mut len = 0;
        let mut kind = None;
        while len < bytes.len() {
            let dropping = if probe.at_boundary() {
                drop_pongs && bytes[len] & 0x0F == OPCODE_PONG
            } else {
                probe.dropping
            };
            if kind.is_some_and(|k| k != dropping) {
                break;
            }
            kind = Some(dropping);
            len += probe.consume(&bytes[len..], drop_pongs);
        }
        (kind.unwrap_or(false), len)
    }
}

/// Wraps the upgraded socket; `drop_pongs` is shared with the connection task, `switches` with
/// the whole mock (a blackhole, or pongs switched off, drops pongs on every connection).
#[derive(Debug)]
pub(crate) struct PongFilter<T> {
    inner: T,
    drop_pongs: Arc<AtomicBool>,
    switches: Arc<Switches>,
    cursor: FrameCursor,
}

impl<T> PongFilter<T> {
    pub(crate) fn new(inner: T, drop_pongs: Arc<AtomicBool>, switches: Arc<Switches>) -> Self {
        Self {
            inner,
            drop_pongs,
            switches,
            cursor: FrameCursor::default(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for PongFilter<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for PongFilter<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if buf.is_empty() {
            return Pin::new(&mut me.inner).poll_write(cx, buf);
        }
        let drop_pongs = me.drop_pongs.load(Ordering::Relaxed) || me.switches.drops_pongs();
        let (dropping, run) = me.cursor.leading_run(buf, drop_pongs);
        let written = if dropping {
            run
        } else {
            ready!(Pin::new(&mut me.inner).poll_write(cx, &buf[..run]))?
        };
        let mut advanced = 0;
        while advanced < written {
            advanced += me.cursor.consume(&buf[advanced..written], drop_pongs);
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload_len: usize) -> Vec<u8> {
        let mut bytes = vec![0x80 | opcode];
        match payload_len {
            0..=125 => bytes.push(payload_len as u8),
            126..=65535 => {
                bytes.push(126);
                bytes.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                bytes.push(127);
                bytes.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        bytes.extend(std::iter::repeat_n(opcode, payload_len));
        bytes
    }

    /// Feeds `stream` in chunks of `chunk` bytes and returns what would reach the socket.
    fn filter(stream: &[u8], chunk: usize, drop_pongs: bool) -> Vec<u8> {
        let mut cursor = FrameCursor::default();
        let mut kept = Vec::new();
        for piece in stream.chunks(chunk) {
            let mut offset = 0;
            while offset < piece.len() {
                let (dropping, run) = cursor.leading_run(&piece[offset..], drop_pongs);
                let mut advanced = 0;
                while advanced < run {
                    advanced += cursor.consume(&piece[offset + advanced..offset + run], drop_pongs);
                }
                if !dropping {
                    kept.extend_from_slice(&piece[offset..offset + run]);
                }
                offset += run;
            }
        }
        kept
    }

    #[test]
    fn drops_exactly_the_pong_frames_at_any_chunking() {
        let text_small = frame(0x1, 5);
        let pong = frame(OPCODE_PONG, 4);
        let text_mid = frame(0x1, 300);
        let text_big = frame(0x1, 70_000);
        let empty_pong = frame(OPCODE_PONG, 0);
        let stream = [
            text_small.clone(),
            pong.clone(),
            text_mid.clone(),
            empty_pong.clone(),
            text_big.clone(),
        ]
        .concat();
        let expected = [text_small, text_mid, text_big].concat();
        for chunk in [1, 2, 3, 7, 64, 1000, stream.len()] {
            assert_eq!(filter(&stream, chunk, true), expected, "chunk {chunk}");
            assert_eq!(
                filter(&stream, chunk, false),
                stream,
                "chunk {chunk}, filter off"
            );
        }
    }
}
