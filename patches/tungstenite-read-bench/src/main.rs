//! Reads small text messages that arrive one at a time, as a relay's upstream socket delivers
//! streamed events: every message is preceded by a read that finds nothing (`WouldBlock`).
//! Run under callgrind to count instructions per message (../tungstenite/PROPOSAL.md):
//!
//! ```sh
//! cargo build --release
//! valgrind --tool=callgrind target/release/tungstenite-read-bench {upstream|patched} 4096 100000
//! ```
//!
//! Arguments: which tungstenite (crates.io 0.30.0 or ../tungstenite), the read buffer size
//! (`WebSocketConfig::read_buffer_size`) and the number of messages.

use std::io::{self, Read, Write};


/// One frame per read, with a `WouldBlock` before each
struct Paced {
    frame: Vec<u8>,
    left: usize,
    blocked: bool,
}

impl Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        self.blocked = !self.blocked;
        if self.blocked {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.left -= 1;
        buf[..self.frame.len()].copy_from_slice(&self.frame);
        Ok(self.frame.len())
    }
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

macro_rules! read_all {
    ($krate:ident, $buffer:expr, $count:expr) => {{
        use $krate::protocol::frame::coding::{Data, OpCode};
        use $krate::protocol::frame::Frame;
        use $krate::protocol::{Role, WebSocket, WebSocketConfig};
        use $krate::{Error, Message};
        let (buffer, count) = ($buffer, $count);
        let text =
            format!(r#"{{"type":"response.output_text.delta","delta":"{}"}}"#, "x".repeat(180));
        let mut frame = Vec::new();
        Frame::message(text.clone(), OpCode::Data(Data::Text), true).format(&mut frame).unwrap();
        let stream = Paced { frame, left: count, blocked: false };
        let config = WebSocketConfig::default().read_buffer_size(buffer);
        let mut ws = WebSocket::from_raw_socket(stream, Role::Client, Some(config));
        let mut read = 0;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    assert_eq!(t.len(), text.len());
                    read += 1;
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(Error::Protocol(_)) if read == count => break,
                Err(e) => panic!("after {read} messages: {e}"),
            }
        }
        read
    }};
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let buffer: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4096);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let read = match which.as_str() {
        "upstream" => read_all!(upstream, buffer, count),
        "patched" => read_all!(patched, buffer, count),
        _ => panic!("first argument: upstream or patched"),
    };
    assert_eq!(read, count);
}
