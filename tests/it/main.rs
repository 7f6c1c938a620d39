//! The integration tests: one test binary, a module per area (as ripgrep does), so that the
//! test build links pcapdiag and polars once. `cargo test --test it AREA::` runs one area,
//! e.g. `cargo test --test it exports::`.
//!
//! A test that needs something outside the repository (Chromium, `../shared/corpus`) skips
//! it with a printed line when it is missing, and fails under `CI=true`
//! ([`util::require`]).

mod util;

mod annotate;
mod bad_input;
mod cli;
mod corpus;
mod decode_paths;
mod exports;
mod fragments;
mod fuzz_regressions;
mod fuzz_smoke;
mod k8s;
mod lab;
mod pairing;
mod pairing_synth;
mod pairs;
mod parity;
mod passes;
mod screen;
mod sets;
mod synthetic;
