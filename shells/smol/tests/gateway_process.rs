//! The `wsv2-gateway-smol` binary as an operator runs it (`serve`, `reload`, SIGTERM): the tests
//! are written once in `wsv2_tests::gateway_process`; `CARGO_BIN_EXE_*` exists only here. It runs
//! on its executor threads and starts no tokio runtime.

wsv2_tests::gateway_process_tests!(
    env!("CARGO_BIN_EXE_wsv2-gateway-smol"),
    runtime_threads = "wsv2-smol-",
    foreign_threads = "tokio-"
);

wsv2_tests::gateway_ulimit_tests!(env!("CARGO_BIN_EXE_wsv2-gateway-smol"));
