#![no_main]
//! libFuzzer entry of the `http` target (see `wsv2_fuzz::Target::Http`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsv2_fuzz::Target::Http.run(data));
