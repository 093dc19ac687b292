//! State-store rules: sticky bindings, store commands, the breaker and local copies.
//!
//! # Bindings
//! A binding's value is `{account}:{group}` ([`Binding`]): the account, and the client key's
//! `group` ([`StoreConfig::default_group`] when the key names none) that wrote it.
//! - response→account, set after every terminal with a response id and after a
//!   `generate:false` prewarm ([`Store::bind_response`]). Not scoped by group: the record says
//!   which group created the response, and [`judge_continuation`] refuses a continuation from
//!   another group (the rule: [`judge_continuation`]). It lives as long as what it
//!   protects and no read extends it: `response_binding_ttl` (30 days, upstream's retention)
//!   for `store:true`, at most `upstream.max_age` for `store:false` (the chain dies with its
//!   conn);
//! - session→account, scoped by group (the key is client text), TTL `session_binding_ttl`
//!   refreshed on every hit, the session key being the `session-id` header or the
//!   `prompt_cache_key` ([`Store::bind_session`]);
//! - response→(conn, lane, store flag), purely local and bounded, kept as long as the
//!   response's binding ([`Store::record_response_conn`]).
//!
//! Keys are `wsv2:resp:{hash}` and `wsv2:{group}:sess:{hash}` with a stable 128-bit hash of the
//! id ([`StoreKey`]).
//!
//! # Commands, replies, timeouts
//! The [`Store`] machine emits [`StoreRequest`]s; the shell runs them on Redis or on the
//! [`MemoryBackend`] and answers each with [`Store::handle_reply`]. Every command has its own
//! deadline (`store_op_timeout`). A failed or timed-out get is a **miss**, never a client error;
//! a failed or timed-out set yields [`StoreEvent::SetFailed`] (the shell logs a warning with
//! group, account and binding) and counts in [`StoreStats::set_failures`].
//!
//! **At most one outstanding get per decision, and per key:** a lookup issues at most one get
//! (one op per call), and a second lookup of a key whose get is still unanswered joins it (it
//! gets the same [`Lookup::Pending`] op; the shell wakes every decision waiting on that op when
//! [`StoreEvent::Resolved`] arrives). A lookup that got `Pending(op)` is answered by that op's
//! deadline (`store_op_timeout` after it was sent). Physically, a key never has two gets in
//! flight, except after its local entry was evicted (`local_cache_entries`) within one op
//! timeout of a local write that superseded the first get.
//!
//! # Breaker
//! [`Breaker`] opens after `breaker_failure_limit` consecutive failures or timeouts. While it is
//! open, lookups answer from local state or Miss at once, writes are skipped and counted
//! ([`StoreStats::writes_skipped`]), lookups already waiting are answered Miss at once, and the
//! only command is one probe (a get of `wsv2:probe`) every `breaker_probe_interval`. The first
//! success closes it (a late success of a get sent before it opened counts too; such a reply still
//! fills the local map, and once closed a lookup of its key may join it again).
//!
//! # Local copies and the no-stale-read rule
//! After a remote hit the binding is copied locally (bounded by `local_cache_entries`, expiring
//! with the binding's TTL; a session binding's copy is refreshed with it on every hit, which
//! also sends an `Expire` so the store's TTL moves too). Rule: **a binding deleted or rebound through this gateway is never
//! served from a local copy or a store reply older than that write.** Two mechanisms enforce it:
//! 1. *Write-through locally.* Every bind replaces the local entry; every delete replaces it
//!    with a **tombstone** that lives for the binding's TTL, so a lookup after a delete answers
//!    Miss at once, without a store round trip (and even if the store's delete failed, since a
//!    remote copy can live no longer than the TTL the tombstone also has).
//! 2. *Writes supersede reads in flight.* A get still unanswered when its key is written is
//!    answered at once with the written value (bound account, or Miss after a delete) and marked
//!    answered; its reply, whenever it arrives, is never copied. Each get is, in effect, versioned
//!    by its op: only an op that no local write has superseded may fill the local map.
//!
//! # Changes made by other gateways
//! A local entry is trusted for `local_copy_max_age` from the command that confirmed it (the get
//! that read it, or this gateway's own set or delete once the store took it; a session hit
//! refreshes the TTL but not this), then a lookup drops it and reads the store again
//! ([`StoreStats::rechecks`]). So a delete or rebind made by *another* gateway process is seen
//! within `local_copy_max_age` of it, however often the key is hit. A session bind of the
//! binding the local entry already trusts writes nothing ([`StoreStats::unchanged_binds`]): each
//! schedule binds its session key, and rewriting an unchanged binding would overwrite another
//! gateway's rebind and restart the trust clock on every hit. A write of this gateway the
//! store refused, or that timed out or was never sent, stays trusted until its TTL (a hit does
//! not extend it): the store may still hold the older value, which rule 1 forbids serving.
//!
//! [`StoreConfig::default_group`]: crate::config::StoreConfig::default_group

mod binding;
mod breaker;
mod entry;
mod key;
mod local;
mod machine;
mod memory;
mod op;
mod request;

pub use binding::{Binding, Continuation, ContinuationRefusal, GroupTag, judge_continuation};
pub use breaker::{Breaker, BreakerState};
pub use key::{StoreKey, group_segment, is_plain_group, stable_hash};
pub use machine::{ResponseConn, Store};
pub use memory::MemoryBackend;
pub use request::{
    BindingRef, Lookup, OpId, RequestKind, StoreEvent, StoreFailure, StoreRequest, StoreStats,
};
