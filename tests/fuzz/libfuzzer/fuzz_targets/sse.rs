#![no_main]
//! libFuzzer entry of the `sse` target (see `wsv2_fuzz::Target::Sse`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsv2_fuzz::Target::Sse.run(data));
