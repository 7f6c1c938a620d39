//! Inputs the fuzzer (`fuzz/`, README "Fuzzing") found to crash pcapdiag, minimised, one
//! file each in `testdata/fuzz-regressions/`. The real binary must take every one of them
//! without a panic: a report or a read error (exit 0 or 1), and valid JSON on stdout.
//! A new find goes into that folder with a name saying what it is; this test picks it up.

use crate::util::*;
use serde_json::Value;

#[test]
fn test_every_fuzz_regression_gives_a_report_not_a_panic() {
    let dir = testdata("fuzz-regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "fixtures missing in {}", dir.display());
    for f in &files {
        let out = pcapdiag()
            .args(["analyze", "--json"])
            .arg(f)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}: exit {:?}: {stderr}",
            f.display(),
            out.status.code()
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", f.display());
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", f.display()));
        assert!(
            v["captures"].is_array() || v["unreadable"].is_array(),
            "{}: {v}",
            f.display()
        );
    }
}

#[test]
fn test_fuzz_regression_pair_with_itself_gives_verdicts() {
    // The fuzz target also pairs each capture with itself (correlate, clock, verdict):
    // the command line does the same with the file given twice.
    for name in [
        "pcapng-times-at-i64-max.bin",
        "verdict-delays-sum-past-i64.bin",
        "syn-retry-gap-ratio-overflow.bin",
    ] {
        let f = testdata(&format!("fuzz-regressions/{name}"));
        let out = pcapdiag()
            .args(["analyze", "--json"])
            .arg(&f)
            .arg(&f)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{name}: exit {:?}: {stderr}",
            out.status.code()
        );
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: invalid JSON: {e}"));
        assert!(
            v["pairs"][0]["verdicts"]["attempts"].is_array(),
            "{name}: {v}"
        );
    }
}
