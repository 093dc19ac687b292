//! # wsv2-core
//!
//! The sans-IO core of wsv2, a gateway for the OpenAI Responses API in WebSocket mode. It holds
//! every decision the gateway makes — which account, which pooled upstream connection, which
//! response an upstream event belongs to, when a conn is dirty, when to retry, rotate, drain or
//! give up — as pure state machines. It contains no sockets, no clock and no runtime: time
//! enters as `now: Instant`, and work leaves as values the shell performs. The tokio and smol
//! shells are thin drivers around the same machines.
//!
//! ## The machines
//!
//! | machine | owned by | inputs | outputs |
//! |---|---|---|---|
//! | [`session::Session`] | one task per client socket | client frames, upstream frames of its conns, leases, admissions, slots | frames for both hops, [`session::SessionRequest`]s, [`session::SessionEvent`]s |
//! | [`http::HttpTurn`] | one task per `POST /v1/responses` | the body, upstream frames of its conn, lease, admission, slot | the answer, upstream frames, [`http::HttpTurnRequest`]s, [`http::HttpEvent`]s |
//! | [`control::Control`] | the process | both holders' requests (one path for sessions and HTTP turns), dial and store results | answers ([`session::SessionInput`], [`http::HttpInput`]), dials, store requests |
//! | [`conn::UpstreamConn`] | the session that leased it | upstream frames, pongs, socket end | frames to write, ended responses |
//! | [`pool`] | one per account (+ registry) | acquires, releases, dial results | leases, dials, pings, closes |
//! | [`scheduler::Scheduler`] | the process | schedule requests, failures | decisions, cooldowns, slots |
//! | [`store::Store`] | the process | lookups, bindings, store replies | store requests, resolved lookups |
//!
//! A create's life — held, waiting for its slot, sent, relayed, ended, with its retries, its
//! model names and their restore rule (none once the client left), its bind and its report —
//! is one machine, `turn::Turn`, in the [`turn`] leaf module: a session drives many (held in
//! order, then open on its conns), an HTTP turn one, through the same named transitions, so the
//! rules hold on both paths by construction. Each machine's state is private and moves only in
//! its own module (a session's lifecycle, account route, shutdown and client buffer in
//! `session/state.rs`; an HTTP turn's stage and answer in `http/`); from outside, a holder is
//! read with `is_finished()`, `is_draining()` and the like.
//!
//! A session owns the connection machines it leased, so the per-event path (an upstream delta
//! relayed to the client) touches only that session's state and allocates nothing. Everything
//! shared is reached through requests: values, never references.
//!
//! ## The drive invariant
//!
//! **After any `handle_*` call, drain the `poll_*` outputs until each returns `None`, then read
//! `poll_timeout()` and arm one timer for it.** For a session the order is
//! [`poll_transmit`](session::Session::poll_transmit), then
//! [`poll_request`](session::Session::poll_request), then
//! [`poll_event`](session::Session::poll_event), then
//! [`poll_timeout`](session::Session::poll_timeout). When the timer fires, re-read the clock
//! (runtimes wake timers late or early) and call `handle_timeout(now)`; a call before the
//! deadline does nothing. Inputs must be given in non-decreasing `now` order.
//!
//! ## A run loop
//!
//! A shell's session task, reduced to its decisions. Here a scripted "upstream" answers the
//! create; a real shell writes [`session::Transmit`]s to sockets and routes requests to the
//! pool, scheduler and store.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use wsv2_core::conn::{CompatKey, ConnRecord, UpstreamTransmit};
//! use wsv2_core::session::{Admission, Lease, Session, SessionRequest, Transmit};
//! use wsv2_core::event::Utf8;
//! use wsv2_core::turn::{Holder, SlotRequest, UpstreamInput};
//! use wsv2_core::{AccountId, Config, ConnId, SessionId};
//!
//! let now = Instant::now();
//! let mut session = Session::new(SessionId(1), Arc::new(Config::default()), now);
//! let mut to_client = Vec::new();
//! let mut upstream_inbox: Vec<Bytes> = Vec::new();
//!
//! // A client frame arrives.
//! session.handle_client_text(now, Bytes::from_static(br#"{"type":"response.create","model":"gpt-5","input":"hi"}"#));
//!
//! // The run loop: drain every output after every input.
//! for _ in 0..10 {
//!     while let Some(t) = session.poll_transmit() {
//!         match t {
//!             Transmit::Client(frame) => to_client.push(frame),
//!             Transmit::Upstream { msg: UpstreamTransmit::Text { .. }, conn } => {
//!                 // The mock upstream answers the create on the same conn.
//!                 upstream_inbox.push(Bytes::from_static(br#"{"type":"response.created","response":{"id":"resp_1"}}"#));
//!                 upstream_inbox.push(Bytes::from_static(br#"{"type":"response.completed","response":{"id":"resp_1","usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}}"#));
//!                 assert_eq!(conn, ConnId(7));
//!             }
//!             Transmit::Upstream { .. } | Transmit::ClientPing => {}
//!         }
//!     }
//!     while let Some(cmd) = session.poll_request() {
//!         match cmd {
//!             SessionRequest::Schedule { .. } => {
//!                 let account = AccountId(1);
//!                 let admission = Admission { account, max_concurrency: 8, compat: CompatKey::plain(account), model_map: Default::default() };
//!                 session.handle_admission(now, admission);
//!             }
//!             SessionRequest::Acquire { compat, .. } => {
//!                 session.handle_lease(now, Lease { holder: SessionId(1), record: ConnRecord::new(ConnId(7), compat, now), fresh: true, preferred_hit: false });
//!             }
//!             SessionRequest::Slot(SlotRequest::Acquire { turn, .. }) => {
//!                 session.handle_slot_granted(now, turn)
//!             }
//!             _ => {} // release slots, bind responses, release conns, close the client …
//!         }
//!     }
//!     while session.poll_event().is_some() {} // logs and metrics
//!     for frame in upstream_inbox.drain(..) {
//!         session.handle_upstream(now, ConnId(7), UpstreamInput::Frame(frame, Utf8::Unchecked));
//!     }
//! }
//! assert_eq!(to_client.len(), 2, "created and completed reached the client");
//! assert!(session.poll_timeout().is_some(), "the idle timer is armed");
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod conn;
pub mod control;
pub mod errors;
pub mod event;
pub mod file_config;
pub mod http;
mod ids;
pub mod ingress;
pub mod metrics;
pub mod pool;
pub mod proxy;
pub mod resolver;
pub mod rng;
pub mod scheduler;
pub mod session;
pub mod store;
pub mod timer;
pub mod trace_context;
pub mod turn;

pub use config::Config;

/// A queue that can give back its room once empty. The machines' queues grow during a turn
/// and keep their capacity; a session idle between turns has them all empty, and a gateway
/// holds many such sessions (the next turn allocates them again: once per turn, not per event).
pub(crate) trait FreeWhenEmpty {
    /// Frees the queue's room if it holds nothing
    fn free_when_empty(&mut self);
}

impl<T> FreeWhenEmpty for Vec<T> {
    fn free_when_empty(&mut self) {
        if self.is_empty() {
            self.shrink_to_fit();
        }
    }
}

impl<T> FreeWhenEmpty for std::collections::VecDeque<T> {
    fn free_when_empty(&mut self) {
        if self.is_empty() {
            self.shrink_to_fit();
        }
    }
}
pub use ids::{AccountId, ConnId, Lane, ResponseId, SessionId, StreamId, TurnId};
