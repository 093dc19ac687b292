//! Per-account pools of upstream connections and the registry of all accounts.
//!
//! An [`AccountPool`] is a sans-IO machine that owns the [`ConnRecord`]s of the **idle** conns of
//! one account and the accounting (open, dialing) of **all** its conns. A lease moves the record
//! out to its holder (a WebSocket session or an HTTP turn, named by its [`SessionId`]); the holder
//! gives it back with `handle_release` or reports its death with `handle_conn_closed`. Leased
//! conns' liveness belongs to the holder's conn machine; idle conns' liveness belongs to the
//! pool (ping tick, pong timeout, tail packets).
//!
//! The [`PoolRegistry`] holds one pool per account, routes calls to it, and runs the ping and
//! cleanup ticks for every account, with or without traffic. Pool decisions are per account and
//! rare (acquire, release, dial results, ticks); the per-event path never touches the pool.
//!
//! # Driving a pool
//!
//! Inputs are `handle_*` / `acquire` / `cancel` calls, each taking `now`; outputs are
//! [`PoolRequest`]s from `poll_request()`. **After any input, drain `poll_request()` until it
//! returns `None`, then read `poll_timeout()`** and call `handle_timeout(now)` when it passes
//! (spurious or early calls do nothing). Requests come out in the order the decisions were made:
//! e.g. the `Close` of an evicted conn comes before the `Dial` that takes its place, and a
//! `Granted` for a fresh conn comes right after the dial result that produced it.
//!
//! ```
//! use std::time::Instant;
//! use wsv2_core::{AccountId, Config, SessionId};
//! use wsv2_core::conn::CompatKey;
//! use wsv2_core::pool::{HolderKind, PoolRequest, PoolRegistry};
//!
//! let now = Instant::now();
//! let mut pools = PoolRegistry::new(&Config::default(), 7, now);
//! pools.add_account(now, AccountId(1), 4);
//! let key = CompatKey::plain(AccountId(1));
//! pools.acquire(now, SessionId(1), HolderKind::Session, &key, None, None);
//! while let Some(request) = pools.poll_request() {
//!     if let PoolRequest::Dial { conn, .. } = request {
//!         // the shell dials; here the dial succeeds at once
//!         pools.handle_dial_ok(now, AccountId(1), conn);
//!     }
//! }
//! assert_eq!(pools.stats(AccountId(1)).unwrap().leased, 1);
//! let _next_wakeup = pools.poll_timeout();
//! ```
//!
//! [`ConnRecord`]: crate::conn::ConnRecord
//! [`SessionId`]: crate::SessionId

mod account;
mod acquire;
mod holds;
mod keys;
mod pacing;
mod registry;
mod release;
mod request;
mod stats;
mod ticks;

pub use account::{AccountPool, ConnIdSource, HolderKind};
pub use registry::PoolRegistry;
pub use request::{CloseReason, Lease, PoolRequest, RefuseReason};
pub use stats::PoolStats;
