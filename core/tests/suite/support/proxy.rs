//! Drives a proxy handshake against a scripted proxy and records the byte exchange.

#![allow(dead_code, unreachable_pub)]

use std::time::Instant;

use bytes::Bytes;
use wsv2_core::proxy::{HttpConnect, Progress, ProxyError, Socks5};

use super::trace::Trace;

pub trait Handshake {
    fn transmit(&mut self) -> Option<Bytes>;
    fn input(&mut self, data: &[u8]) -> Result<Progress, ProxyError>;
}

impl Handshake for HttpConnect {
    fn transmit(&mut self) -> Option<Bytes> {
        self.poll_transmit()
    }
    fn input(&mut self, data: &[u8]) -> Result<Progress, ProxyError> {
        self.handle_input(data)
    }
}

impl Handshake for Socks5 {
    fn transmit(&mut self) -> Option<Bytes> {
        self.poll_transmit()
    }
    fn input(&mut self, data: &[u8]) -> Result<Progress, ProxyError> {
        self.handle_input(data)
    }
}

/// What a run produced: every byte written, and the end (leftover or error)
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub written: Vec<u8>,
    pub end: Result<Bytes, ProxyError>,
    /// False if the input ran out before Done or an error
    pub finished: bool,
}

/// A trace for handshakes, which take no time
pub fn untimed() -> Trace {
    Trace::new(Instant::now())
}

/// Feeds `chunks` in order, writing whatever the handshake transmits in between; stops at
/// Done or at the first error. `render` formats bytes for the trace; what a chunk's input
/// returned is traced as an output. The trace must take no time ([`untimed`]).
pub fn run<H: Handshake>(
    handshake: &mut H,
    chunks: &[&[u8]],
    render: fn(&[u8]) -> String,
    trace: &mut Trace,
) -> Outcome {
    let now = trace.start();
    let mut written = Vec::new();
    let mut flush = |h: &mut H, trace: &mut Trace| {
        while let Some(bytes) = h.transmit() {
            trace.output(now, render(&bytes));
            written.extend_from_slice(&bytes);
        }
    };
    flush(handshake, trace);
    for (index, chunk) in chunks.iter().enumerate() {
        trace.input(now, render(chunk));
        match handshake.input(chunk) {
            Ok(Progress::NeedMore) => flush(handshake, trace),
            Ok(Progress::Done { leftover }) => {
                flush(handshake, trace);
                trace.output(now, format!("tunnel up, leftover {}", render(&leftover)));
                // Later chunks are tunnel bytes the next layer reads itself.
                let mut tunnel = leftover.to_vec();
                chunks[index + 1..]
                    .iter()
                    .for_each(|c| tunnel.extend_from_slice(c));
                return Outcome {
                    written,
                    end: Ok(Bytes::from(tunnel)),
                    finished: true,
                };
            }
            Err(error) => {
                trace.output(now, format!("error: {error}"));
                return Outcome {
                    written,
                    end: Err(error),
                    finished: true,
                };
            }
        }
    }
    trace.output(now, "need more");
    Outcome {
        written,
        end: Ok(Bytes::new()),
        finished: false,
    }
}

/// Checks that `response` split at every one and every two byte boundaries, and byte by byte,
/// gives the same outcome as in one piece; returns that outcome
pub fn assert_split_invariant<H: Handshake>(make: impl Fn() -> H, response: &[u8]) -> Outcome {
    let mut sink = untimed();
    let whole = run(&mut make(), &[response], hex, &mut sink);
    assert!(
        whole.finished,
        "the whole response must finish the handshake"
    );
    let n = response.len();
    for i in 0..=n {
        for j in i..=n {
            let parts = [&response[..i], &response[i..j], &response[j..]];
            let split = run(&mut make(), &parts, hex, &mut sink);
            same_outcome(&split, &whole, &format!("split at {i} and {j}"));
        }
    }
    let bytes: Vec<&[u8]> = response.chunks(1).collect();
    same_outcome(
        &run(&mut make(), &bytes, hex, &mut sink),
        &whole,
        "byte by byte",
    );
    if let Ok(leftover) = &whole.end {
        let handshake_len = n - leftover.len();
        let short = run(
            &mut make(),
            &[&response[..handshake_len - 1]],
            hex,
            &mut sink,
        );
        assert!(
            !short.finished,
            "must not finish before the reply's last byte"
        );
    }
    whole
}

/// Same end; same bytes written on success. On a refusal, a split run may have written the
/// next request before the refusal arrived, so the one-piece run's bytes need only be a prefix.
fn same_outcome(split: &Outcome, whole: &Outcome, context: &str) {
    assert_eq!(split.end, whole.end, "{context}");
    assert!(split.finished, "{context}");
    if whole.end.is_ok() {
        assert_eq!(split.written, whole.written, "{context}");
    } else {
        assert!(split.written.starts_with(&whole.written), "{context}");
    }
}

pub fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(none)".to_owned();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn text(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(none)".to_owned();
    }
    bytes.escape_ascii().to_string()
}

pub use super::assert_trace as snapshot;
