#![no_main]
//! libFuzzer entry of the `session` target (see `wsv2_fuzz::Target::Session`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsv2_fuzz::Target::Session.run(data));
