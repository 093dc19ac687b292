//! Conformance scenarios written once against a URL.
//!
//! A [`Target`] names where to connect (`ws_url`, `http_base`), which key to present, and what kind
//! of thing answers there ([`TargetKind::Upstream`]: the mock or the real service;
//! [`TargetKind::Gateway`]: a wsv2 gateway in front of one). Every [`Scenario`] states its
//! client-visible outcome for both kinds ([`Outcome`]) and asserts the one that applies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wsv2_tests::Failure> {
//! use wsv2_tests::conformance::{Target, TargetKind, run_scenario, scenarios};
//! let target = Target::new(TargetKind::Gateway, "ws://127.0.0.1:8080/v1/responses",
//!                          "http://127.0.0.1:8080/v1", "sk-client")
//!     // each fault scenario gets its own account, so its cooldown touches no other scenario
//!     .with_account_hook(|scenario| wsv2_tests::client::Credentials::bearer(format!("sk-{scenario}")));
//! for scenario in scenarios().iter().filter(|s| s.applies_to(target.kind)) {
//!     run_scenario(&target, scenario.name).await?;
//! }
//! # Ok(()) }
//! ```

mod chaining;
mod faults;
mod lanes;
mod policy;
mod registry;
mod target;

pub use registry::{Outcome, Scenario, ScenarioFn, Tag, run_all, run_scenario, scenarios};
pub use target::{AccountHook, Ctx, SILENCE_WINDOW, Target, TargetKind};

/// Generates one `#[tokio::test]` per named scenario, plus a `COVERED` list of the names.
///
/// `$setup` is an expression evaluated inside each (async) test that yields `(Target, guard)`;
/// the guard (a mock handle, a gateway process, …) lives until the test ends. Pair it with a test
/// that compares `COVERED` with [`scenarios`] so no scenario is forgotten.
///
/// ```ignore
/// wsv2_tests::conformance_tests!(start_gateway().await; chained_turns, fault_error_429);
/// ```
///
/// The parameterised form runs each scenario against several targets (e.g. every gateway shell).
/// It generates `async fn name(param: Type)` per scenario instead of tests, and hands the names
/// to the caller's instantiating macro, which makes the tests (one per target). `$setup` may use
/// the parameter; the parameter's `Display` names the target in a failure:
///
/// ```ignore
/// wsv2_tests::conformance_tests!(|shell: Shell| setup(shell).await => shell_tests;
///     chained_turns, fault_error_429);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (|$param:ident: $ty:ty| $setup:expr => $instantiate:ident; $($name:ident),* $(,)?) => {
        $(
            async fn $name($param: $ty) {
                let label = ::std::string::ToString::to_string(&$param);
                let (target, _guard) = $setup;
                if let Err(failure) = $crate::conformance::run_scenario(&target, stringify!($name)).await {
                    panic!("{failure} (through {label})");
                }
            }
        )*
        $instantiate! { $($name),* }
        /// The scenarios this module runs.
        const COVERED: &[&str] = &[$(stringify!($name)),*];
    };
    ($setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (target, _guard) = $setup;
                if let Err(failure) = $crate::conformance::run_scenario(&target, stringify!($name)).await {
                    panic!("{failure}");
                }
            }
        )*
        /// The scenarios this file runs.
        const COVERED: &[&str] = &[$(stringify!($name)),*];
    };
}
