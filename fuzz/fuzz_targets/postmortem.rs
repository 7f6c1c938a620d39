//! Arbitrary bytes through the pipeline, then the Markdown postmortem and its polars
//! tables: the harness is `pcapdiag::fuzzing::postmortem_bytes` (its doc says why this is
//! not part of `analyze`), which `tests/it/fuzz_smoke.rs` also runs in every `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pcapdiag::fuzzing::postmortem_bytes(data);
});
