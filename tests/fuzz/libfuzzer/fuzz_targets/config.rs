#![no_main]
//! libFuzzer entry of the `config` target (see `wsv2_fuzz::Target::Config`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsv2_fuzz::Target::Config.run(data));
