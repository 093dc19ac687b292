//! What keeps the log captures of `common` and `harden` reliable: each is a subscriber installed as
//! its test thread's default, and this module installs the global one they need beside them.
//!
//! tracing caches each callsite's interest process-wide when the callsite is first hit. While a
//! single dispatcher is registered it asks only the hitting thread's default, so a gateway
//! callsite first hit by a test without a capture would be cached as "never" and stay silent in
//! every later capture. A global subscriber that answers "sometimes" to every callsite keeps them
//! all live: each event is then offered to its thread's default (a capture, or this global one,
//! which takes nothing).

use std::sync::Once;

use tracing::level_filters::LevelFilter;
use tracing::span;
use tracing::subscriber::{DefaultGuard, Interest};
use tracing::{Event, Metadata, Subscriber};

/// Installs `subscriber` as this thread's default until the guard drops
pub fn install(subscriber: impl Subscriber + Send + Sync + 'static) -> DefaultGuard {
    static GLOBAL: Once = Once::new();
    GLOBAL.call_once(|| {
        tracing::subscriber::set_global_default(KeepCallsitesLive)
            .expect("no other global subscriber in this test binary");
    });
    tracing::subscriber::set_default(subscriber)
}

/// Interested in every callsite, enabled for nothing
struct KeepCallsitesLive;

impl Subscriber for KeepCallsitesLive {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // The most verbose capture's level: tracing skips anything above the hint of every
        // dispatcher before it asks any of them.
        Some(LevelFilter::DEBUG)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}
