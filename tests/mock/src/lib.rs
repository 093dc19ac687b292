//! `wsv2-mock`: a faithful mock of OpenAI's Responses API upstream, for tests and benchmarks.
//!
//! One port serves:
//! - `GET /v1/responses` (also `/responses`, `/backend-api/codex/responses`) — WebSocket mode,
//!   query strings allowed, `Authorization: Bearer <api key>` checked before the upgrade (a wrong
//!   key gets a plain HTTP 401 with an OpenAI JSON error body);
//! - `POST /v1/responses` — `stream: true` as SSE (`event: <type>\ndata: <json>\n\n`), otherwise
//!   the final Response object as JSON;
//! - `GET /v1/models`.
//!
//! Behaviour follows `protocol.md` §1–§4 and its checklist §6.1: the canonical event sequences
//! with `sequence_number` from 0 per response; `stream_id` lanes (FIFO per lane, lanes concurrent,
//! ≤ 16 in flight with the rest queued, ≤ 32 named lanes, `invalid_stream_id`); `--serial` runs
//! everything FIFO; a per-connection per-lane cache of the latest response with
//! `previous_response_not_found` for uncached `store: false` ids and rehydration of `store: true`
//! ids from a process-wide store; eviction on failed same-lane continuations; `generate: false`;
//! `response.steer`; the connection lifetime limit. The four verbatim error shapes of §4.4 are
//! checked by `tests/fixtures.rs`.
//!
//! permessage-deflate is never negotiated (async-tungstenite cannot); clients that offer it
//! (Codex, openai-agents) fall back to uncompressed frames. Pings are answered at once, also
//! mid-stream, and counted ([`MockHandle::pings`]); [`MockHandle::set_pongs`]`(false)` stops
//! answering them on every connection. The mock never sends binary frames and accepts messages
//! up to 256 MiB.
//!
//! # Command line (`wsv2-mock-upstream`)
//!
//! ```text
//! wsv2-mock-upstream --listen 127.0.0.1:PORT --api-key KEY [--record FILE] [--serial]
//!     [--deterministic] [--deltas N] [--delta-bytes B] [--delta-interval DUR] [--lifetime DUR]
//!     [--upgrade-status 426|429|500] [--unsolicited-limit] [--cut-at-lifetime] [--handshake-delay DUR]
//!     [--tls-cert PEM --tls-key PEM] [--admin ADDR]
//! ```
//! DUR is `250ms`, `30s`, `60m`, `2h`. Once ready it prints one line,
//! `listening on ws://ADDR/v1/responses`.
//!
//! - `--record FILE`: one JSON line per [`Record`] (handshake, frame, http, sent, close).
//! - `--deterministic`: ids `resp_mock_0001`…, fixed `created_at`, no timestamps. Otherwise every
//!   delta carries `mock_ts_ns` (Unix time in ns at send) for end-to-end latency.
//! - `--deltas` (default 8) deltas per item of `--delta-bytes` (default 8) bytes, paced by
//!   `--delta-interval` (default 0).
//! - `--lifetime` (default 60m): the next `response.create` after it gets
//!   `websocket_connection_limit_reached`; with `--unsolicited-limit` an idle socket gets that
//!   error unsolicited at expiry, then a 1001 close; with `--cut-at-lifetime` a busy socket is
//!   cut at expiry too: each response still running or queued gets that error on its lane, then
//!   the 1001 close.
//! - `--upgrade-status`: answer every upgrade with that status (429 carries `retry-after` and
//!   `x-ratelimit-*` headers).
//! - `--handshake-delay` (default 0): pause before answering each upgrade (~200 ms upstream).
//! - `--tls-cert`/`--tls-key`: serve TLS (`wss://`, `https://`); the printed URL says `wss://`.
//! - `--admin ADDR`: runtime fault switches on a separate plain-HTTP port (`admin` module docs:
//!   `POST /fault?name=drop_mid_stream|error_429|error_500|blackhole|slow`, `POST
//!   /upgrade?status=401`, `POST /clear`, `GET /state`); prints `admin on http://ADDR` second.
//!
//! # Per-response switches (in `metadata` of the create)
//!
//! - `mock_output`: `text` (default) | `function_call` | `reasoning` (reasoning item, then a
//!   message; `encrypted_content` when `include` asks for `reasoning.encrypted_content`).
//! - `mock_deltas`: overrides `--deltas`. `mock_delay_ms`: delay for the faults below.
//! - `mock_fault`:
//!   `error_400`, `error_429` (with `headers`: `retry-after: 1`, `retry-after-ms: 50`,
//!   `x-ratelimit-reset-requests: 50ms`, …), `error_500` — an `error` event in place of the
//!   response, socket stays open;
//!   `failed` — `response.failed` (`server_error`) after 2 deltas;
//!   `incomplete` — `response.incomplete` (`max_output_tokens`) after 2 deltas;
//!   `drop_mid_stream` — TCP closed without a close frame after `response.created` + 2 deltas;
//!   `close_1011_mid_stream` — close frame 1011 at the same point;
//!   `slow_first_event` — `mock_delay_ms` (default 300) before `response.created`;
//!   `stall_lane` — `response.created`, then nothing until the connection closes or the response
//!   is steered (its lane stays blocked, other lanes keep working);
//!   `stop_reading` — the mock stops reading the socket for `mock_delay_ms`, or for good;
//!   `stop_pong` — pings on this connection go unanswered from now on;
//!   `tail_packet` — one extra `response.output_text.delta` after the terminal event.
//!   An unknown name is answered with a 400 `error` event, so typos fail loudly.
//!
//! Ids (connection ids, deterministic response ids) count from 1 per mock instance, which is
//! per process for the binary.

mod admin;
mod config;
mod emitter;
mod errors;
mod generate;
mod http;
mod ids;
mod job;
mod lanes;
mod pong_filter;
mod record;
mod request;
mod response;
mod server;
mod store;
mod switches;
mod tls;
mod writer;
mod ws;

pub use config::{MockConfig, MockTls, parse_duration};
pub use record::{CloseSide, Record};
pub use server::{MockHandle, start, start_on};
pub use switches::RuntimeFault;
