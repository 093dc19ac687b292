//! An HTTP client for `POST /v1/responses` with `stream: true`, yielding SSE events one by one as
//! they arrive (so per-event latency can be measured on this path too).

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::Failure;
use crate::client::{Credentials, DEFAULT_FRAME_TIMEOUT};

/// A pooled HTTP/1.1 client (keep-alive, `TCP_NODELAY`).
#[derive(Clone, Debug)]
pub struct SseClient {
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Default for SseClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SseClient {
    /// A new client with its own connection pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// POSTs `body` to `{http_base}/responses` and returns the response as an event stream.
    pub async fn post(
        &self,
        http_base: &str,
        creds: &Credentials,
        body: &Value,
    ) -> Result<SseStream, Failure> {
        let mut request = Request::post(format!("{}/responses", http_base.trim_end_matches('/')))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream");
        if !creds.api_key.is_empty() {
            request = request.header("authorization", format!("Bearer {}", creds.api_key));
        }
        for (name, value) in &creds.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Failure::new(format!("bad request: {e}")))?;
        let response = tokio::time::timeout(DEFAULT_FRAME_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| Failure::new("no HTTP response head within the frame timeout"))?
            .map_err(|e| Failure::new(format!("POST /responses failed: {e}")))?;
        Ok(SseStream::new(response))
    }
}

/// The body of one streamed response, parsed into events as bytes arrive.
#[derive(Debug)]
pub struct SseStream {
    status: u16,
    body: Body,
    buffer: BytesMut,
    ended: bool,
}

impl SseStream {
    fn new(response: Response<Body>) -> Self {
        let status = response.status().as_u16();
        Self {
            status,
            body: response.into_body(),
            buffer: BytesMut::new(),
            ended: false,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Reads the whole (non-SSE) body, e.g. the JSON of an error status.
    pub async fn text(mut self) -> Result<String, Failure> {
        while !self.ended {
            self.fill().await?;
        }
        Ok(String::from_utf8_lossy(&self.buffer).into_owned())
    }

    /// The next event's JSON `data`, or `None` at the end of the body.
    pub async fn next_event(&mut self) -> Result<Option<Value>, Failure> {
        match self.next_data().await? {
            None => Ok(None),
            Some(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| Failure::new(format!("SSE data is not JSON: {e}"))),
        }
    }

    /// The next event's raw `data` bytes, or `None` at the end of the body (`[DONE]` is skipped).
    pub async fn next_data(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            if let Some((end, separator)) = blank_line(&self.buffer) {
                let block = self.buffer.split_to(end).freeze();
                self.buffer.advance(separator);
                match data_range(&block) {
                    Some(range) if &block[range.clone()] != b"[DONE]" => {
                        return Ok(Some(block.slice(range)));
                    }
                    _ => continue,
                }
            }
            if self.ended {
                let rest = self.buffer.split().freeze();
                return Ok(data_range(&rest).map(|range| rest.slice(range)));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), Failure> {
        let frame = tokio::time::timeout(DEFAULT_FRAME_TIMEOUT, self.body.frame())
            .await
            .map_err(|_| Failure::new("SSE body stalled past the frame timeout"))?;
        match frame {
            None => self.ended = true,
            Some(Err(e)) => return Err(Failure::new(format!("SSE body broke: {e}"))),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    self.buffer.extend_from_slice(&data);
                }
            }
        }
        Ok(())
    }
}

/// Finds the first blank line: returns (end of the block, length of the separator).
fn blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Where the `data:` payload of one SSE block lies (the Responses API sends one data line per
/// event).
fn data_range(block: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut start = 0;
    for line in block.split(|&b| b == b'\n') {
        let line_start = start;
        start += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let skip = usize::from(rest.first() == Some(&b' '));
            return Some(line_start + 5 + skip..line_start + line.len());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_line_and_data_are_found_in_lf_and_crlf_streams() {
        let lf = b"event: a\ndata: {\"x\":1}\n\nrest";
        assert_eq!(blank_line(lf), Some((22, 2)));
        assert_eq!(&lf[data_range(&lf[..22]).unwrap()], b"{\"x\":1}".as_slice());
        let crlf = b"event: a\r\ndata:{}\r\n\r\n";
        assert_eq!(blank_line(crlf), Some((17, 4)));
        assert_eq!(&crlf[data_range(&crlf[..17]).unwrap()], b"{}".as_slice());
        assert_eq!(data_range(b": comment"), None);
    }
}
