//! Hand-written HTTP over a raw socket, for requests no client library would send: one answer
//! read to the end of its body (`Content-Length` or chunked), whether or not the gateway keeps
//! the connection open.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any answer may take before the exchange counts as a hang
pub const ANSWER: Duration = Duration::from_secs(10);

/// One HTTP answer as read from the socket
#[derive(Debug, Default)]
pub struct RawAnswer {
    /// The status code (`None`: no status line came)
    pub status: Option<u16>,
    /// The head, status line included
    pub head: String,
    /// The body, de-chunked
    pub body: String,
    /// The gateway closed the connection after the answer (read to EOF within `ANSWER`)
    pub closed: bool,
}

/// Sends `request` (which may be cut short by the gateway) and reads one answer
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> RawAnswer {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.write_all(request).await;
    read_answer(&mut tcp).await
}

/// Reads one answer, then checks briefly whether the connection was closed
pub async fn read_answer(tcp: &mut TcpStream) -> RawAnswer {
    let mut buf = Vec::new();
    let mut answer = RawAnswer::default();
    let read = tokio::time::timeout(ANSWER, async {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break Some(i + 4);
            }
            if !fill(tcp, &mut buf).await {
                break None;
            }
        };
        let Some(head_end) = head_end else {
            answer.closed = true;
            return;
        };
        answer.head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        answer.status = answer
            .head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok());
        let lower = answer.head.to_ascii_lowercase();
        let mut body = buf[head_end..].to_vec();
        if lower.contains("\r\ntransfer-encoding: chunked") {
            while find(&body, b"\r\n0\r\n\r\n").is_none() && !body.starts_with(b"0\r\n\r\n") {
                if !fill(tcp, &mut body).await {
                    answer.closed = true;
                    break;
                }
            }
            answer.body = dechunk(&body);
        } else {
            let length = lower
                .split("\r\ncontent-length: ")
                .nth(1)
                .and_then(|rest| rest.split("\r\n").next())
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while body.len() < length {
                if !fill(tcp, &mut body).await {
                    answer.closed = true;
                    break;
                }
            }
            answer.body = String::from_utf8_lossy(&body[..length.min(body.len())]).into_owned();
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no whole answer within {ANSWER:?}: {answer:?}"
    );
    if !answer.closed {
        let mut probe = [0u8; 64];
        answer.closed = matches!(
            tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut probe)).await,
            Ok(Ok(0) | Err(_))
        );
    }
    answer
}

/// Reads more into `buf`; false at EOF or on an error
async fn fill(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match tcp.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The payload of a chunked body
fn dechunk(mut body: &[u8]) -> String {
    let mut out = Vec::new();
    while let Some(line_end) = find(body, b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        let end = (start + size).min(body.len());
        out.extend_from_slice(&body[start..end]);
        body = &body[(end + 2).min(body.len())..];
    }
    String::from_utf8_lossy(&out).into_owned()
}
