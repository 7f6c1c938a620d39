//! One frame's bytes through `decode::decode`: the harness is
//! `pcapdiag::fuzzing::decode_bytes` (its doc gives the input layout, which `fuzz/seed.sh`
//! writes), which `tests/it/fuzz_smoke.rs` also runs in every `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pcapdiag::fuzzing::decode_bytes(data));
