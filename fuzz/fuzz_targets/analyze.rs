//! Arbitrary bytes through the whole pipeline, as `pcapdiag analyze --json X X` would run
//! them: the harness is `pcapdiag::fuzzing::analyze_bytes` (its doc says what it covers),
//! which `tests/it/fuzz_smoke.rs` also runs in every `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pcapdiag::fuzzing::analyze_bytes(data);
});
