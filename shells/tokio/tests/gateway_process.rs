//! The `wsv2-gateway` binary as an operator runs it (`serve`, `reload`, SIGTERM): the tests are
//! written once in `wsv2_tests::gateway_process`; `CARGO_BIN_EXE_*` exists only here.

wsv2_tests::gateway_process_tests!(
    env!("CARGO_BIN_EXE_wsv2-gateway"),
    runtime_threads = "tokio-",
    foreign_threads = "wsv2-smol-"
);

wsv2_tests::gateway_ulimit_tests!(env!("CARGO_BIN_EXE_wsv2-gateway"));

// In this binary, not one of its own: on the 2-core CI every test binary's link counts.
#[path = "support/demo.rs"]
mod demo;
