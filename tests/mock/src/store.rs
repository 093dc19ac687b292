//! Where previous responses live: the connection-local per-lane cache and the process-wide
//! store of `store: true` responses.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::request::LaneKey;

/// The full context of a response: every input item so far plus its output items.
pub(crate) type Context = Arc<Vec<Value>>;

/// The process-wide store keeps at most this many responses; the oldest go first.
const STORE_CAP: usize = 65_536;

/// Per connection, per lane: only the latest response (protocol.md §4.3).
#[derive(Debug, Default)]
pub(crate) struct ConnCache {
    latest: HashMap<LaneKey, (String, Context)>,
}

impl ConnCache {
    /// The lane holding `id` as its latest response, and its context.
    pub(crate) fn lookup(&self, id: &str) -> Option<(LaneKey, Context)> {
        self.latest
            .iter()
            .find(|(_, (cached, _))| cached == id)
            .map(|(lane, (_, context))| (lane.clone(), context.clone()))
    }

    /// Makes `id` the latest response of `lane`, forgetting the previous one.
    pub(crate) fn put(&mut self, lane: LaneKey, id: String, context: Context) {
        self.latest.insert(lane, (id, context));
    }

    /// Forgets `id` if it is still the latest response of `lane`.
    pub(crate) fn evict(&mut self, lane: &LaneKey, id: &str) {
        if self
            .latest
            .get(lane)
            .is_some_and(|(cached, _)| cached == id)
        {
            self.latest.remove(lane);
        }
    }

    /// Whether `id` is any lane's latest response.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.lookup(id).is_some()
    }
}

/// Responses created with `store: true`, shared by every connection and HTTP request.
#[derive(Debug, Default)]
pub(crate) struct ResponseStore {
    inner: Mutex<StoreInner>,
}

#[derive(Debug, Default)]
struct StoreInner {
    contexts: HashMap<String, Context>,
    order: VecDeque<String>,
}

impl ResponseStore {
    pub(crate) fn put(&self, id: String, context: Context) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.contexts.insert(id.clone(), context).is_none() {
            inner.order.push_back(id);
        }
        while inner.order.len() > STORE_CAP {
            if let Some(oldest) = inner.order.pop_front() {
                inner.contexts.remove(&oldest);
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Context> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contexts
            .get(id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lane_keeps_only_its_latest_response() {
        let mut cache = ConnCache::default();
        let ctx: Context = Arc::new(vec![]);
        cache.put(None, "r1".into(), ctx.clone());
        cache.put(Some("b".into()), "r2".into(), ctx.clone());
        cache.put(None, "r3".into(), ctx.clone());
        assert!(!cache.contains("r1"));
        assert_eq!(
            cache.lookup("r2").map(|(lane, _)| lane),
            Some(Some("b".into()))
        );
        cache.evict(&None, "r2");
        assert!(
            cache.contains("r2"),
            "evicting on another lane must not touch lane b"
        );
        cache.evict(&Some("b".into()), "r2");
        assert!(!cache.contains("r2"));
        assert!(cache.contains("r3"));
    }
}
