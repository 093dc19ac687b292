//! Response and item ids: seeded counters in deterministic mode, random otherwise.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// `created_at` used by every response in deterministic mode (2025-11-26T00:00:00Z).
pub(crate) const FIXED_CREATED_AT: u64 = 1_764_115_200;

/// The prefixes of the ids the mock hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// `resp_…`
    Response,
    /// `msg_…`
    Message,
    /// `fc_…` (function call item)
    FunctionCall,
    /// `call_…` (function call `call_id`)
    CallId,
    /// `rs_…` (reasoning item)
    Reasoning,
    /// `steer_…`
    Steer,
}

impl IdKind {
    const ALL: [Self; 6] = [
        Self::Response,
        Self::Message,
        Self::FunctionCall,
        Self::CallId,
        Self::Reasoning,
        Self::Steer,
    ];

    fn prefix(self) -> &'static str {
        match self {
            Self::Response => "resp",
            Self::Message => "msg",
            Self::FunctionCall => "fc",
            Self::CallId => "call",
            Self::Reasoning => "rs",
            Self::Steer => "steer",
        }
    }
}

/// Hands out ids; one per mock instance, so deterministic runs start at `…_0001`.
#[derive(Debug)]
pub(crate) struct IdGen {
    deterministic: bool,
    counters: [AtomicU64; 6],
    rng: Mutex<SmallRng>,
}

impl IdGen {
    pub(crate) fn new(deterministic: bool) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed)
            ^ u64::from(std::process::id()) << 32;
        Self {
            deterministic,
            counters: Default::default(),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }

    /// A fresh id of `kind`: `resp_mock_0001` in deterministic mode, `resp_<32 hex>` otherwise.
    pub(crate) fn next(&self, kind: IdKind) -> String {
        if self.deterministic {
            let index = IdKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            let n = self.counters[index].fetch_add(1, Ordering::Relaxed) + 1;
            format!("{}_mock_{n:04}", kind.prefix())
        } else {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            format!(
                "{}_{:016x}{:016x}",
                kind.prefix(),
                rng.next_u64(),
                rng.next_u64()
            )
        }
    }

    /// Unix seconds for `created_at` / `completed_at`.
    pub(crate) fn now_secs(&self) -> u64 {
        if self.deterministic {
            FIXED_CREATED_AT
        } else {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        }
    }

    /// Wall-clock send time for `mock_ts_ns`, `None` in deterministic mode.
    pub(crate) fn timestamp_ns(&self) -> Option<u64> {
        if self.deterministic {
            None
        } else {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_nanos() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_ids_count_per_kind_from_one() {
        let ids = IdGen::new(true);
        assert_eq!(ids.next(IdKind::Response), "resp_mock_0001");
        assert_eq!(ids.next(IdKind::Message), "msg_mock_0001");
        assert_eq!(ids.next(IdKind::Response), "resp_mock_0002");
        assert_eq!(ids.now_secs(), FIXED_CREATED_AT);
        assert_eq!(ids.timestamp_ns(), None);
    }

    #[test]
    fn random_ids_differ_and_keep_the_prefix() {
        let ids = IdGen::new(false);
        let (a, b) = (ids.next(IdKind::Response), ids.next(IdKind::Response));
        assert!(a.starts_with("resp_") && a.len() == 37, "{a}");
        assert_ne!(a, b);
        assert!(ids.timestamp_ns().is_some());
    }
}
