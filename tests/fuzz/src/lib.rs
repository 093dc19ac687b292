//! # wsv2-fuzz
//!
//! The fuzz targets of wsv2: one function per place where the gateway parses bytes it does not
//! control, each checking the invariants that place must keep on *any* input, not only that it
//! does not panic.
//!
//! | target | untrusted bytes | invariants checked |
//! |---|---|---|
//! | [`Target::Events`] | upstream and client frames (`core/src/event/`) | the scanner agrees with serde_json on validity and fields; rewrites keep the JSON and change only the model |
//! | [`Target::Session`] | client and upstream frames through a WebSocket `Session` and the real `Control` | no panic or livelock; every frame to either hop is valid; nothing leaks once everyone leaves |
//! | [`Target::Http`] | `POST /v1/responses` bodies and upstream frames through an `HttpTurn` | one well-formed answer (head, bodies, end); SSE framing and JSON bodies valid; nothing leaks |
//! | [`Target::Sse`] | event types and JSON bodies to encode as SSE, WebSocket errors to flatten | an SSE parser reads back exactly one event with the same type and data |
//! | [`Target::Config`] | the TOML configuration file | no panic; no credential in any issue message or `Debug` output |
//! | [`Target::Proxy`] | HTTP CONNECT and SOCKS5 proxy replies | the outcome does not depend on how the reply is split; no credential in errors |
//!
//! The same functions run three ways: `tests/corpus.rs` replays the committed corpus
//! (`corpus/<target>/`) and every past crash (`regressions/<target>/`) in the ordinary test
//! build; `tests/props.rs` feeds each target arbitrary bytes with proptest; and `run.sh`
//! builds the coverage-guided libFuzzer harness in `libfuzzer/` on the stable toolchain and
//! runs each target for a bounded time (see `README.md`).

mod config;
mod events;
mod gateway;
mod input;
mod proxy;
mod sse;

/// One fuzz target
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Classification and rewriting of frames on both hops
    Events,
    /// A WebSocket session driven by arbitrary client and upstream frames
    Session,
    /// An HTTP turn driven by an arbitrary body and upstream frames
    Http,
    /// SSE encoding and the flat SSE error
    Sse,
    /// The configuration file
    Config,
    /// Proxy handshake replies
    Proxy,
}

impl Target {
    /// Every target, in the order `run.sh` runs them
    pub const ALL: [Self; 6] = [
        Self::Events,
        Self::Session,
        Self::Http,
        Self::Sse,
        Self::Config,
        Self::Proxy,
    ];

    /// The target's name: its corpus folder and its libFuzzer binary
    pub fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Session => "session",
            Self::Http => "http",
            Self::Sse => "sse",
            Self::Config => "config",
            Self::Proxy => "proxy",
        }
    }

    /// The target named `name`
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Runs the target on one input; panics when an invariant breaks
    pub fn run(self, data: &[u8]) {
        match self {
            Self::Events => events::run(data),
            Self::Session => gateway::run_session(data),
            Self::Http => gateway::run_http(data),
            Self::Sse => sse::run(data),
            Self::Config => config::run(data),
            Self::Proxy => proxy::run(data),
        }
    }
}
