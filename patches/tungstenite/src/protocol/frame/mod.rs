//! Utilities to work with raw WebSocket frames.

pub mod coding;

#[allow(clippy::module_inception)]
mod frame;
mod mask;
mod utf8;

pub use self::{
    frame::{CloseFrame, Frame, FrameHeader},
    utf8::Utf8Bytes,
};

use crate::{
    error::{CapacityError, Error, ProtocolError, Result},
    protocol::frame::mask::apply_mask,
    Message,
};
use bytes::BytesMut;
use log::*;
use std::io::{self, Cursor, Error as IoError, ErrorKind as IoErrorKind, Read, Write};

/// Read buffer size used for `FrameSocket`.
const READ_BUF_LEN: usize = 128 * 1024;

/// A reader and writer for WebSocket frames.
#[derive(Debug)]
pub struct FrameSocket<Stream> {
    /// The underlying network stream.
    stream: Stream,
    /// Codec for reading/writing frames.
    codec: FrameCodec,
}

impl<Stream> FrameSocket<Stream> {
    /// Create a new frame socket.
    pub fn new(stream: Stream) -> Self {
        FrameSocket { stream, codec: FrameCodec::new(READ_BUF_LEN) }
    }

    /// Create a new frame socket from partially read data.
    pub fn from_partially_read(stream: Stream, part: Vec<u8>) -> Self {
        FrameSocket { stream, codec: FrameCodec::from_partially_read(part, READ_BUF_LEN) }
    }

    /// Extract a stream from the socket.
    pub fn into_inner(self) -> (Stream, BytesMut) {
        (self.stream, self.codec.in_buffer)
    }

    /// Returns a shared reference to the inner stream.
    pub fn get_ref(&self) -> &Stream {
        &self.stream
    }

    /// Returns a mutable reference to the inner stream.
    pub fn get_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

impl<Stream> FrameSocket<Stream>
where
    Stream: Read,
{
    /// Read a frame from stream.
    pub fn read(&mut self, max_size: Option<usize>) -> Result<Option<Frame>> {
        self.codec.read_frame(&mut self.stream, max_size, false, true)
    }
}

impl<Stream> FrameSocket<Stream>
where
    Stream: Write,
{
    /// Writes and immediately flushes a frame.
    /// Equivalent to calling [`write`](Self::write) then [`flush`](Self::flush).
    pub fn send(&mut self, frame: Frame) -> Result<()> {
        self.write(frame)?;
        self.flush()
    }

    /// Write a frame to stream.
    ///
    /// A subsequent call should be made to [`flush`](Self::flush) to flush writes.
    ///
    /// This function guarantees that the frame is queued unless [`Error::WriteBufferFull`]
    /// is returned.
    /// In order to handle WouldBlock or Incomplete, call [`flush`](Self::flush) afterwards.
    pub fn write(&mut self, frame: Frame) -> Result<()> {
        self.codec.buffer_frame(&mut self.stream, frame)
    }

    /// Flush writes.
    pub fn flush(&mut self) -> Result<()> {
        self.codec.write_out_buffer(&mut self.stream)?;
        Ok(self.stream.flush()?)
    }
}

/// A codec for WebSocket frames.
#[derive(Debug)]
pub(super) struct FrameCodec {
    /// Buffer to read data from the stream.
    in_buffer: BytesMut,
    in_buf_max_read: usize,
    /// Buffer to send packets to the network.
    out_buffer: Vec<u8>,
    /// Capacity limit for `out_buffer`.
    max_out_buffer_len: usize,
    /// Buffer target length to reach before writing to the stream
    /// on calls to `buffer_frame`.
    ///
    /// Setting this to non-zero will buffer small writes from hitting
    /// the stream.
    out_buffer_write_len: usize,
    /// Header and remaining size of the incoming packet being processed.
    header: Option<(FrameHeader, u64)>,
    /// How many bytes of `in_buffer`'s spare capacity, from its length on, are known to be
    /// initialized (zeroed or written by an earlier read), so `read_in` need not zero them again.
    in_spare_init: usize,
}

impl FrameCodec {
    /// Create a new frame codec.
    pub(super) fn new(in_buf_len: usize) -> Self {
        Self {
            in_buffer: BytesMut::with_capacity(in_buf_len),
            in_buf_max_read: in_buf_len.max(FrameHeader::MAX_SIZE),
            out_buffer: <_>::default(),
            max_out_buffer_len: usize::MAX,
            out_buffer_write_len: 0,
            header: None,
            in_spare_init: 0,
        }
    }

    /// Create a new frame codec from partially read data.
    pub(super) fn from_partially_read(part: Vec<u8>, min_in_buf_len: usize) -> Self {
        let mut in_buffer = BytesMut::from_iter(part);
        in_buffer.reserve(min_in_buf_len.saturating_sub(in_buffer.len()));
        Self {
            in_buffer,
            in_buf_max_read: min_in_buf_len.max(FrameHeader::MAX_SIZE),
            out_buffer: <_>::default(),
            max_out_buffer_len: usize::MAX,
            out_buffer_write_len: 0,
            header: None,
            in_spare_init: 0,
        }
    }

    /// Sets a maximum size for the out buffer.
    pub(super) fn set_max_out_buffer_len(&mut self, max: usize) {
        self.max_out_buffer_len = max;
    }

    /// Sets [`Self::buffer_frame`] buffer target length to reach before
    /// writing to the stream.
    pub(super) fn set_out_buffer_write_len(&mut self, len: usize) {
        self.out_buffer_write_len = len;
    }

    /// Read a frame from the provided stream.
    pub(super) fn read_frame(
        &mut self,
        stream: &mut impl Read,
        max_size: Option<usize>,
        unmask: bool,
        accept_unmasked: bool,
    ) -> Result<Option<Frame>> {
        let max_size = max_size.unwrap_or_else(usize::max_value);

        let mut payload = loop {
            if self.header.is_none() {
                let mut cursor = Cursor::new(&mut self.in_buffer);
                self.header = FrameHeader::parse(&mut cursor)?;
                let advanced = cursor.position();
                bytes::Buf::advance(&mut self.in_buffer, advanced as _);

                if let Some((_, len)) = &self.header {
                    // Enforce frame size limit early. Compare in u64 before
                    // narrowing so a length above usize::MAX can't wrap on
                    // 32-bit/wasm32 targets and slip past the check.
                    if *len > max_size as u64 {
                        return Err(Error::Capacity(CapacityError::MessageTooLong {
                            size: *len as usize,
                            max_size,
                        }));
                    }
                    let len = *len as usize;

                    // Reserve room for the full message only once, even for multiple
                    // loops or if WouldBlock errors cause multiple fn calls: room for what
                    // is not read yet, not its whole length again (a full buffer holding the
                    // whole payload was regrown, a new buffer per buffer-full read).
                    self.reserve_in(len.saturating_sub(self.in_buffer.len()));
                } else if self.in_buffer.capacity() > 0 {
                    self.reserve_in(FrameHeader::MAX_SIZE.saturating_sub(self.in_buffer.len()));
                }
                // (Without a buffer, `read_in` allocates one once bytes arrive.)
            }

            if let Some((_, len)) = &self.header {
                let len = *len as usize;
                if len <= self.in_buffer.len() {
                    break self.in_buffer.split_to(len);
                }
            }

            // Not enough data in buffer.
            if self.read_in(stream)? == 0 {
                trace!("no frame received");
                return Ok(None);
            }
        };

        let (mut header, length) = self.header.take().expect("Bug: no frame header");
        debug_assert_eq!(payload.len() as u64, length);

        if unmask {
            if let Some(mask) = header.mask.take() {
                // A server MUST remove masking for data frames received from a client
                // as described in Section 5.3. (RFC 6455)
                apply_mask(&mut payload, mask);
            } else if !accept_unmasked {
                // The server MUST close the connection upon receiving a
                // frame that is not masked. (RFC 6455)
                // The only exception here is if the user explicitly accepts given
                // stream by setting WebSocketConfig.accept_unmasked_frames to true
                return Err(Error::Protocol(ProtocolError::UnmaskedFrameFromClient));
            }
        }

        let frame = Frame::from_payload(header, payload.freeze());
        trace!("received frame {frame}");
        Ok(Some(frame))
    }

    /// Frees the read buffer if it holds no unread bytes and the write buffer if it holds no
    /// unwritten ones (see [`WebSocketContext::release_buffers`](super::WebSocketContext::release_buffers)).
    pub(super) fn release_buffers(&mut self) {
        // A frame whose header was read keeps its buffer: the room reserved for its payload.
        if self.in_buffer.is_empty() && self.header.is_none() {
            self.in_buffer = BytesMut::new();
            self.in_spare_init = 0;
        }
        if self.out_buffer.is_empty() {
            self.out_buffer = Vec::new();
        }
    }

    /// Reserves room in `in_buffer` for `additional` more bytes.
    fn reserve_in(&mut self, additional: usize) {
        if self.in_buffer.capacity() - self.in_buffer.len() < additional {
            self.in_buffer.reserve(additional);
            // The spare capacity may now be new (or moved) memory.
            self.in_spare_init = 0;
        }
    }

    /// Read into available `in_buffer` capacity.
    ///
    /// `Read::read` needs an initialized slice, but only the part of the spare capacity that
    /// was never initialized is zeroed: bytes zeroed or read into before (and truncated away
    /// since) are reused as they are, so a read that finds nothing (`WouldBlock`) or a few bytes
    /// does not clear the whole read region again.
    fn read_in(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        if self.in_buffer.capacity() == 0 {
            return self.read_in_unbuffered(stream);
        }
        let len = self.in_buffer.len();
        debug_assert!(self.in_buffer.capacity() > len);
        let target = self.in_buffer.capacity().min(len + self.in_buf_max_read);
        let initialized = target.min(len + self.in_spare_init);
        // SAFETY: `initialized <= capacity`, and the bytes from `len` to `initialized` are
        // initialized: `in_spare_init` counts only bytes of the spare capacity that an earlier
        // `resize` zeroed or a read wrote, and is reset whenever `reserve` may have replaced or
        // moved the spare capacity (`reserve_in`). Advancing the front of the buffer and
        // `split_to` leave the spare capacity where it was.
        unsafe { self.in_buffer.set_len(initialized) };
        self.in_buffer.resize(target, 0);
        let size = stream.read(&mut self.in_buffer[len..]);
        let filled = len + size.as_ref().copied().unwrap_or(0);
        self.in_buffer.truncate(filled);
        self.in_spare_init = target - filled;
        size
    }

    /// Reads without a read buffer (released, or never allocated): into a small stack buffer
    /// first, so a read that finds nothing (`WouldBlock`) allocates nothing; once bytes
    /// arrive, a read buffer of the configured size takes them.
    fn read_in_unbuffered(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        let mut first = [0u8; 128];
        let size = stream.read(&mut first)?;
        if size > 0 {
            // A new buffer, not `reserve` on the released one: a `BytesMut` remembers the
            // capacity it was created with, and when it must grow while frames split off it
            // are still alive it allocates at least that much again. `BytesMut::new()`
            // remembers 0: every regrowth under load then made room for one more frame only,
            // a new buffer (and its shared header) per frame read.
            self.in_buffer = BytesMut::with_capacity(self.in_buf_max_read.max(size));
            self.in_spare_init = 0;
            self.in_buffer.extend_from_slice(&first[..size]);
        }
        Ok(size)
    }

    /// Writes a frame into the `out_buffer`.
    /// If the out buffer size is over the `out_buffer_write_len` will also write
    /// the out buffer into the provided `stream`.
    ///
    /// To ensure buffered frames are written call [`Self::write_out_buffer`].
    ///
    /// May write to the stream, will **not** flush.
    pub(super) fn buffer_frame<Stream>(&mut self, stream: &mut Stream, frame: Frame) -> Result<()>
    where
        Stream: Write,
    {
        if frame.len() + self.out_buffer.len() > self.max_out_buffer_len {
            return Err(Error::WriteBufferFull(Message::Frame(frame).into()));
        }

        trace!("writing frame {frame}");

        self.out_buffer.reserve(frame.len());
        frame.format_into_buf(&mut self.out_buffer).expect("Bug: can't write to vector");

        if self.out_buffer.len() > self.out_buffer_write_len {
            self.write_out_buffer(stream)
        } else {
            Ok(())
        }
    }

    /// Writes the out_buffer to the provided stream.
    ///
    /// Does **not** flush.
    pub(super) fn write_out_buffer<Stream>(&mut self, stream: &mut Stream) -> Result<()>
    where
        Stream: Write,
    {
        while !self.out_buffer.is_empty() {
            let len = stream.write(&self.out_buffer)?;
            if len == 0 {
                // This is the same as "Connection reset by peer"
                return Err(IoError::new(
                    IoErrorKind::ConnectionReset,
                    "Connection reset while sending",
                )
                .into());
            }
            self.out_buffer.drain(0..len);
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use crate::error::{CapacityError, Error};

    use super::{Frame, FrameSocket};

    use std::io::Cursor;

    #[test]
    fn read_frames() {
        env_logger::init();

        let raw = Cursor::new(vec![
            0x82, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x82, 0x03, 0x03, 0x02, 0x01,
            0x99,
        ]);
        let mut sock = FrameSocket::new(raw);

        assert_eq!(
            sock.read(None).unwrap().unwrap().into_payload(),
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07][..]
        );
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[0x03, 0x02, 0x01][..]);
        assert!(sock.read(None).unwrap().is_none());

        let (_, rest) = sock.into_inner();
        assert_eq!(rest, vec![0x99]);
    }

    #[test]
    fn from_partially_read() {
        let raw = Cursor::new(vec![0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        let mut sock = FrameSocket::from_partially_read(raw, vec![0x82, 0x07, 0x01]);
        assert_eq!(
            sock.read(None).unwrap().unwrap().into_payload(),
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07][..]
        );
    }

    #[test]
    fn write_frames() {
        let mut sock = FrameSocket::new(Vec::new());

        let frame = Frame::ping(vec![0x04, 0x05]);
        sock.send(frame).unwrap();

        let frame = Frame::pong(vec![0x01]);
        sock.send(frame).unwrap();

        let (buf, _) = sock.into_inner();
        assert_eq!(buf, vec![0x89, 0x02, 0x04, 0x05, 0x8a, 0x01, 0x01]);
    }

    #[test]
    fn parse_overflow() {
        let raw = Cursor::new(vec![
            0x83, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
        ]);
        let mut sock = FrameSocket::new(raw);
        let _ = sock.read(None); // should not crash
    }

    #[test]
    fn size_limit_hit() {
        let raw = Cursor::new(vec![0x82, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        let mut sock = FrameSocket::new(raw);
        assert!(matches!(
            sock.read(Some(5)),
            Err(Error::Capacity(CapacityError::MessageTooLong { size: 7, max_size: 5 }))
        ));
    }

    #[test]
    #[cfg(target_pointer_width = "32")]
    fn length_above_usize_max_rejected() {
        // 64-bit payload length 0x1_0000_0005 does not fit a 32-bit usize; it
        // must be rejected rather than wrapping to 5 when narrowed.
        let raw = Cursor::new(vec![0x82, 0x7f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05]);
        let mut sock = FrameSocket::new(raw);
        assert!(matches!(
            sock.read(None),
            Err(Error::Capacity(CapacityError::MessageTooLong { size: 5, max_size: usize::MAX }))
        ));
    }

    /// Hands out its bytes at most `step` at a time, with a `WouldBlock` before each piece
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        blocked: bool,
    }

    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.blocked = !self.blocked;
            if self.blocked {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn reads_frames_arriving_in_pieces_between_would_blocks() {
        use crate::protocol::frame::coding::{Data, OpCode};
        let mut raw = Vec::new();
        let mut expected = Vec::new();
        for i in 0..200usize {
            let payload: Vec<u8> = (0..(i * 37) % 300).map(|b| (b + i) as u8).collect();
            Frame::message(payload.clone(), OpCode::Data(Data::Binary), true)
                .format_into_buf(&mut raw)
                .unwrap();
            expected.push(payload);
        }
        // A read buffer smaller than some frames, so it is reserved (and moved) along the way.
        for step in [1, 7, 64, 1000] {
            let stream = Trickle { data: raw.clone(), pos: 0, step, blocked: false };
            let mut sock = FrameSocket { stream, codec: super::FrameCodec::new(256) };
            let mut got = Vec::new();
            while got.len() < expected.len() {
                match sock.read(None) {
                    Ok(Some(frame)) => got.push(frame.into_payload().to_vec()),
                    Ok(None) => panic!("end of stream after {} frames", got.len()),
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got, expected, "step {step}");
        }
    }

    #[test]
    fn released_buffers_are_freed_and_allocated_again_once_bytes_arrive() {
        use crate::protocol::frame::coding::{Data, OpCode};
        let mut chunks = std::collections::VecDeque::new();
        for payload in [vec![1u8; 10], vec![], vec![2u8; 20], vec![3u8; 30]] {
            let mut raw = Vec::new();
            if !payload.is_empty() {
                Frame::message(payload, OpCode::Data(Data::Binary), true)
                    .format_into_buf(&mut raw)
                    .unwrap();
            }
            chunks.push_back(raw);
        }
        let stream = OneFramePerRead { chunks, offered: Vec::new() };
        let mut sock = FrameSocket { stream, codec: super::FrameCodec::new(256) };
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[1u8; 10][..]);
        assert!(sock.codec.in_buffer.is_empty());
        let mut written = Vec::new();
        sock.codec.buffer_frame(&mut written, Frame::pong(vec![0x01])).unwrap();
        sock.codec.write_out_buffer(&mut written).unwrap();
        assert!(sock.codec.out_buffer.capacity() > 0);
        sock.codec.release_buffers();
        assert_eq!(sock.codec.in_buffer.capacity(), 0);
        assert_eq!(sock.codec.out_buffer.capacity(), 0);

        // A read that finds nothing allocates nothing.
        assert!(matches!(sock.read(None), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock));
        assert_eq!(sock.codec.in_buffer.capacity(), 0);
        // Bytes arriving get a read buffer of the configured size again.
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[2u8; 20][..]);
        assert!(sock.codec.in_buffer.capacity() >= 256 - 22);
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[3u8; 30][..]);
        assert_eq!(sock.stream.offered[..3], [256, 128, 128]);

        // Unread bytes (a frame begun) and unwritten ones are never released.
        sock.codec.in_buffer.extend_from_slice(&[0x82]);
        sock.codec.buffer_frame(&mut BlockedWriter, Frame::pong(vec![0x02])).ok();
        sock.codec.release_buffers();
        assert_eq!(&sock.codec.in_buffer[..], &[0x82]);
        assert!(!sock.codec.out_buffer.is_empty());
    }

    #[test]
    fn a_frame_whose_header_was_read_keeps_its_buffer() {
        use crate::protocol::frame::coding::{Data, OpCode};
        let mut raw = Vec::new();
        Frame::message(vec![7u8; 600], OpCode::Data(Data::Binary), true)
            .format_into_buf(&mut raw)
            .unwrap();
        let tail = raw.split_off(4); // the header alone: the payload is still to come
        let chunks = [raw, vec![], tail].into_iter().collect();
        let stream = OneFramePerRead { chunks, offered: Vec::new() };
        let mut sock = FrameSocket { stream, codec: super::FrameCodec::new(256) };
        assert!(sock.read(None).is_err()); // the header, then nothing
        assert!(sock.codec.in_buffer.is_empty());
        sock.codec.release_buffers();
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[7u8; 600][..]);
    }

    /// Reads `count` frames of 100 bytes sent back to back (each read takes as much as fits),
    /// keeping them all alive as a relay that has not written them yet does; returns how many
    /// read buffers they were split from (a frame starting right after the one before it,
    /// past its 2-byte header, is from the same buffer)
    fn buffers_for_held_frames(sock: &mut FrameSocket<OneFramePerRead>, count: usize) -> usize {
        use crate::protocol::frame::coding::{Data, OpCode};
        let mut raw = Vec::new();
        for i in 0..count {
            Frame::message(vec![i as u8; 100], OpCode::Data(Data::Binary), true)
                .format_into_buf(&mut raw)
                .unwrap();
        }
        sock.stream.chunks.push_back(raw);
        let mut held: Vec<bytes::Bytes> = Vec::new();
        let mut buffers = 0;
        for i in 0..count {
            let payload = sock.read(None).unwrap().unwrap().into_payload();
            assert_eq!(payload, vec![i as u8; 100]);
            let next = held.last().map(|prev| prev.as_ptr().wrapping_add(102));
            if next != Some(payload.as_ptr()) {
                buffers += 1;
            }
            held.push(payload);
        }
        buffers
    }

    #[test]
    fn a_released_read_buffer_regrows_at_its_configured_size() {
        use crate::protocol::frame::coding::{Data, OpCode};
        let mut first = Vec::new();
        Frame::message(vec![9u8; 10], OpCode::Data(Data::Binary), true)
            .format_into_buf(&mut first)
            .unwrap();
        let stream = OneFramePerRead { chunks: [first].into_iter().collect(), offered: Vec::new() };
        let mut sock = FrameSocket { stream, codec: super::FrameCodec::new(1024) };
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[9u8; 10][..]);
        sock.codec.release_buffers();
        assert_eq!(sock.codec.in_buffer.capacity(), 0);
        // 60 frames of 102 bytes: 6,120 bytes, so 6 or 7 buffers of 1,024 (a buffer regrown
        // with a frame begun carries it over). 11 when a full buffer holding a whole payload
        // was regrown for it, or the released buffer regrew with room for one frame at a time.
        let buffers = buffers_for_held_frames(&mut sock, 60);
        assert!(buffers <= 7, "60 frames came from {buffers} read buffers");
    }

    /// Hands out one chunk per read (as much of it as fits; an empty one: `WouldBlock`) and
    /// records how many bytes each read was offered
    struct OneFramePerRead {
        chunks: std::collections::VecDeque<Vec<u8>>,
        offered: Vec<usize>,
    }

    impl std::io::Read for OneFramePerRead {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.offered.push(buf.len());
            let mut chunk = self.chunks.pop_front().unwrap_or_default();
            if chunk.is_empty() {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            if chunk.len() > buf.len() {
                self.chunks.push_front(chunk.split_off(buf.len()));
            }
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    /// A socket whose send buffer is full
    struct BlockedWriter;

    impl std::io::Write for BlockedWriter {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::WouldBlock.into())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
