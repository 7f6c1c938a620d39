//! Arbitrary bytes through the whole pipeline, as `pcapdiag analyze --json X X` would run
//! them: read → decode → flows/classify → report, then the capture paired with itself
//! (correlate, clock, verdict) and the JSON renderer. Any panic, hang or runaway
//! allocation is a bug: a hostile capture must give a report or a read error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapdiag::read::CaptureReader;
use pcapdiag::report::{self, Report, SCHEMA_VERSION};
use std::io::Cursor;

const SLOW_NS: i64 = 200_000_000;

fuzz_target!(|data: &[u8]| {
    let reader = match CaptureReader::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))) {
        Ok(r) => r,
        Err(_) => return,
    };
    let capture = pcapdiag::analyze_reader(reader, SLOW_NS, &mut |_| {});
    let (pairing, verdicts) =
        pcapdiag::diagnose(&capture, Some(&capture), &Default::default(), SLOW_NS);
    let report = Report {
        schema_version: SCHEMA_VERSION,
        pcapdiag_version: "fuzz",
        slow_threshold_ns: SLOW_NS,
        captures: vec![capture],
        unreadable: Vec::new(),
        pairing,
        verdicts: Some(verdicts),
    };
    report::json::write(&report, std::io::sink()).expect("JSON to a sink cannot fail");
});
