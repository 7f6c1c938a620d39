//! Inputs the fuzzer (`fuzz/`, README "Fuzzing") found to crash pcapdiag, minimised, one
//! file each in `testdata/fuzz-regressions/`. The real binary must take every one of them
//! without a panic: a report or a read error (exit 0 or 1), and valid JSON on stdout that
//! names the input once and accounts for every frame read.
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
        // Both arrays are always in the report, so that they are arrays proves nothing:
        // the one input is in exactly one of them, and an exit 1 says why in the JSON.
        let captures = v["captures"].as_array().map_or(0, Vec::len);
        let unreadable = v["unreadable"].as_array().map_or(0, Vec::len);
        assert_eq!(
            captures + unreadable,
            1,
            "{}: one input, {captures} captures and {unreadable} unreadable: {v}",
            f.display()
        );
        let cap = &v["captures"][0];
        if out.status.code() == Some(1) {
            assert!(
                unreadable == 1 || cap["read_problem"].is_object(),
                "{}: exit 1 without a read problem in the report: {v}",
                f.display()
            );
        }
        // What could be read is accounted for, frame by frame.
        if captures == 1 {
            let frames = &cap["frames"];
            let n = |k: &str| frames[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
            assert_eq!(
                n("analysed") + n("skipped"),
                n("read"),
                "{}: {frames}",
                f.display()
            );
        }
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
        // The verdicts' `attempts` array is in every pair's JSON, judged or not. What
        // shows that the verdicts ran: every client attempt of the file (each of these
        // fixtures has some) got one, and the counts by verdict add up to them.
        let client_attempts = v["captures"][0]["attempts"].as_array().map_or(0, Vec::len);
        assert!(
            client_attempts > 0,
            "{name}: no attempt in the fixture: {v}"
        );
        let verdicts = &v["pairs"][0]["verdicts"];
        let judged = verdicts["attempts"].as_array().map_or(0, Vec::len);
        assert_eq!(judged, client_attempts, "{name}: verdicts: {verdicts}");
        let counted: u64 = verdict_counts(&verdicts["by_verdict"]).values().sum();
        assert_eq!(counted, judged as u64, "{name}: by_verdict: {verdicts}");
    }
}
