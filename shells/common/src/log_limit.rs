//! Rate limits of the log lines clients can trigger: one line per kind per
//! `ingress.client_log_interval`, carrying the count of the ones dropped since (`suppressed=N`).
//!
//! Each gateway instance has its own [`LogLimits`] (the listener shares it with every session),
//! so two gateways in one process never share a budget. The decision is the core's
//! [`LineBudget`]; this module only holds one per kind and reads the clock.
//!
//! ```ignore
//! limited!(ingress.logs, now, ClientLine::AcceptFailed, warn!(error = %e, "accept failed"));
//! ```

use std::sync::Mutex;
use std::time::{Duration, Instant};

use wsv2_core::ingress::LineBudget;

/// Every kind of log line a client can trigger
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientLine {
    /// `accept` failed
    AcceptFailed,
    /// A connection closed to make room for a newer one
    Evicted,
    /// A connection refused with 503 (or closed unanswered) over the socket cap
    Refused,
    /// An upgrade that is not a valid WebSocket handshake
    BadHandshake,
    /// An upgrade or POST over its key's socket cap
    KeySocketCap,
    /// A request body that did not arrive in time
    BodyTimeout,
    /// An HTTP connection that ended with an error, or an upgrade that failed
    ConnectionError,
    /// A client that broke the WebSocket protocol, or whose socket failed
    ClientReadEnded,
    /// A create refused for want of a concurrency slot
    SlotRefused,
    /// A create answered by the gateway itself
    CreateAnswered,
}

impl ClientLine {
    const COUNT: usize = 10;
}

/// One [`LineBudget`] per [`ClientLine`]
#[derive(Debug)]
pub(crate) struct LogLimits {
    interval: Duration,
    budgets: [Mutex<LineBudget>; ClientLine::COUNT],
}

impl LogLimits {
    /// At most one line of each kind per `interval`
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            budgets: std::array::from_fn(|_| Mutex::new(LineBudget::new())),
        }
    }

    /// `Some(dropped since the last one)` when a line of `kind` may be written at `now`
    pub(crate) fn admit(&self, kind: ClientLine, now: Instant) -> Option<u64> {
        let mut budget = self.budgets[kind as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        budget.admit(now, self.interval)
    }
}

/// Logs with `tracing::$level!` when `$limits` lets a line of `$kind` through at `$now`, adding
/// the field `suppressed` (lines of that kind dropped since the last one written)
macro_rules! limited {
    ($limits:expr, $now:expr, $kind:expr, $level:ident!($($args:tt)*)) => {
        if let Some(suppressed) = $limits.admit($kind, $now) {
            tracing::$level!(suppressed, $($args)*);
        }
    };
}

pub(crate) use limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_budget() {
        let limits = LogLimits::new(Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(limits.admit(ClientLine::AcceptFailed, now), Some(0));
        assert_eq!(limits.admit(ClientLine::AcceptFailed, now), None);
        assert_eq!(limits.admit(ClientLine::CreateAnswered, now), Some(0));
        let later = now + Duration::from_secs(1);
        assert_eq!(limits.admit(ClientLine::AcceptFailed, later), Some(1));
    }
}
