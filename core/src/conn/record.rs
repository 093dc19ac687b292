//! What travels with an upstream connection between the pool and the sessions that lease it.
//!
//! The pool keeps a [`ConnRecord`] per idle conn and hands it out in a lease; the session builds
//! its connection machine from it and gives an updated record back on release. No state is
//! shared: the record is the single owner of a conn's history.

use std::time::Instant;

use crate::{AccountId, ConnId, Lane, ResponseId, StreamId};

/// Handshake-compatibility key: a pooled conn serves only requests with an equal key
///
/// Account + the sorted, de-duplicated `OpenAI-Beta` and `x-codex-beta-features` values.
/// Per-session headers (`session-id`, `x-client-request-id`, …) are never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CompatKey {
    account: AccountId,
    openai_beta: Vec<String>,
    codex_beta_features: Vec<String>,
}

impl CompatKey {
    /// Builds the key from the raw header values (each may hold comma-separated items)
    pub fn new<'a>(
        account: AccountId,
        openai_beta: impl IntoIterator<Item = &'a str>,
        codex_beta_features: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            account,
            openai_beta: normalize(openai_beta),
            codex_beta_features: normalize(codex_beta_features),
        }
    }

    /// A key with no beta values
    pub fn plain(account: AccountId) -> Self {
        Self::new(account, [], [])
    }

    /// The account this key belongs to
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Normalized `OpenAI-Beta` values
    pub fn openai_beta(&self) -> &[String] {
        &self.openai_beta
    }

    /// Normalized `x-codex-beta-features` values
    pub fn codex_beta_features(&self) -> &[String] {
        &self.codex_beta_features
    }
}

fn normalize<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One entry of upstream's connection-local cache: the latest response of a lane
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedResponse {
    /// The lane the response ran on
    pub lane: Lane,
    /// Its id
    pub response: ResponseId,
    /// Its `store` flag (false: only this conn can continue it)
    pub store: bool,
}

/// The history of one upstream connection that outlives a lease
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRecord {
    /// The conn
    pub id: ConnId,
    /// Its compatibility key (includes the account)
    pub compat: CompatKey,
    /// When its dial finished (max-age counts from here)
    pub opened_at: Instant,
    /// Last time anything was read from its socket
    pub last_read: Instant,
    /// Last time it was released to the pool
    pub last_released: Instant,
    /// Distinct named lanes it has used over its lifetime (upstream counts them that way)
    pub named_lanes: Vec<StreamId>,
    /// What upstream's connection-local cache holds, one entry per lane
    pub lane_cache: Vec<CachedResponse>,
}

impl ConnRecord {
    /// A freshly dialed conn
    pub fn new(id: ConnId, compat: CompatKey, now: Instant) -> Self {
        Self {
            id,
            compat,
            opened_at: now,
            last_read: now,
            last_released: now,
            named_lanes: Vec::new(),
            lane_cache: Vec::new(),
        }
    }

    /// The account the conn belongs to
    pub fn account(&self) -> AccountId {
        self.compat.account()
    }

    /// Records `response` as the latest on `lane`, replacing the lane's previous entry
    pub fn cache(&mut self, lane: Lane, response: ResponseId, store: bool) {
        match self.lane_cache.iter_mut().find(|c| c.lane == lane) {
            Some(entry) => {
                entry.response = response;
                entry.store = store;
            }
            None => self.lane_cache.push(CachedResponse {
                lane,
                response,
                store,
            }),
        }
    }

    /// Drops `response` from the cache (a failed same-lane continuation evicts it upstream)
    pub fn evict(&mut self, response: &ResponseId) {
        self.lane_cache.retain(|c| &c.response != response);
    }

    /// Whether `lane` was used on this conn before
    pub fn has_used_lane(&self, lane: &StreamId) -> bool {
        self.named_lanes.iter().any(|l| l == lane)
    }
}

/// A conn leaving a session: back to the pool if `reusable`, else closed by the pool
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// The conn's history, updated by the session
    pub record: ConnRecord,
    /// Clean (Open, not dirty, nothing unfinished): may be leased again
    pub reusable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_key_sorts_and_dedups_and_ignores_order() {
        let a = CompatKey::new(AccountId(1), ["b, a", "a"], ["remote_compaction_v2"]);
        let b = CompatKey::new(AccountId(1), ["a,b"], [" remote_compaction_v2 "]);
        assert_eq!(a, b);
        assert_eq!(a.openai_beta(), ["a", "b"]);
        assert_ne!(
            a,
            CompatKey::new(AccountId(2), ["a,b"], ["remote_compaction_v2"])
        );
        assert_ne!(a, CompatKey::new(AccountId(1), ["a,b"], []));
    }
}
