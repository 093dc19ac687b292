#![no_main]
//! libFuzzer entry of the `proxy` target (see `wsv2_fuzz::Target::Proxy`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsv2_fuzz::Target::Proxy.run(data));
