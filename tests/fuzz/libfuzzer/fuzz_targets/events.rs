#![no_main]
//! libFuzzer entry of the `events` target (see `wsv2_fuzz::Target::Events`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsv2_fuzz::Target::Events.run(data));
