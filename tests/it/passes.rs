//! A capture's pass on two threads (reading and decoding on one, the connection table on
//! the other, as `pcapdiag` runs a single capture on two cores) gives exactly the report
//! of the pass on one thread: the same frames analysed and skipped, in the same order,
//! whatever crosses the hand-over between the threads.

use crate::util::{files_under, testdata};
use pcapdiag::capture::{self, CaptureReport, Filter, Options, Pass};
use pcapdiag::read::CaptureReader;
use std::path::PathBuf;

fn report(parts: &[PathBuf], opts: &Options, pass: Pass) -> CaptureReport {
    let readers = parts
        .iter()
        .map(|p| CaptureReader::open(p).unwrap())
        .collect();
    capture::analyze_parts(None, readers, opts, &mut |_| {}, pass)
}

/// Both passes' reports, as JSON, and the number of frames read.
fn both(parts: &[PathBuf], opts: &Options) -> (String, String, u64) {
    let one = report(parts, opts, Pass::OneThread);
    let two = report(parts, opts, Pass::TwoThreads);
    let json = |r: &CaptureReport| serde_json::to_string(r).unwrap();
    (json(&one), json(&two), one.frames.read)
}

fn listing() -> Options {
    Options {
        list_skipped: true,
        ..Options::default()
    }
}

/// Every lab capture, and the regression captures with their skipped frames listed
/// (fragments, non-TCP, truncated and corrupt frames).
#[test]
fn test_two_threads_give_the_report_of_one_on_every_testdata_capture() {
    let files: Vec<PathBuf> = ["lab", "corpus-regressions", "fuzz-regressions"]
        .iter()
        .flat_map(|dir| files_under(&testdata(dir), &[]))
        .filter(|p| CaptureReader::open(p).is_ok())
        .collect();
    assert!(files.len() >= 30, "{} captures", files.len());
    for f in &files {
        let (one, two, _) = both(std::slice::from_ref(f), &listing());
        assert!(one == two, "{}: the two passes differ", f.display());
    }
}

/// A capture rotated into seven files (one of them empty) read as one stream.
#[test]
fn test_two_threads_give_the_report_of_one_on_rotated_parts() {
    let dir = testdata("lab/two_backends.client-rotated");
    let parts = files_under(&dir, &[".pcap"]);
    assert_eq!(parts.len(), 7, "{}", dir.display());
    let (one, two, frames) = both(&parts, &listing());
    assert!(frames > 0);
    assert!(one == two, "the rotated capture's two passes differ");
}

/// Many batches, segments turned away by the connection table (past `--max-records`)
/// behind frames the reading side filtered out (before `--since`): the skipped frames of
/// both sides are counted and listed in capture order.
#[test]
fn test_two_threads_merge_the_skips_of_both_sides_in_capture_order() {
    const SYNS: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    synth::write_syn_flood(SYNS, std::fs::File::create(&path).unwrap()).unwrap();
    let first = report(
        std::slice::from_ref(&path),
        &Options::default(),
        Pass::OneThread,
    );
    let (t0, t1) = (first.first_ts.unwrap(), first.last_ts.unwrap());
    let opts = Options {
        max_records: 5_000,
        max_connections: 1_000,
        filter: Filter {
            since: Some(t0 + (t1 - t0) / 10),
            ..Filter::default()
        },
        ..listing()
    };
    let (one, two, frames) = both(std::slice::from_ref(&path), &opts);
    assert_eq!(frames, SYNS);
    assert!(one == two, "the flood's two passes differ");
    let r = report(&[path], &opts, Pass::TwoThreads);
    let reasons: Vec<(&str, u64)> = r
        .skipped_by_reason
        .iter()
        .map(|s| (s.reason, s.frames))
        .collect();
    let filtered = reasons.iter().find(|r| r.0 == "filtered").map(|r| r.1);
    let capped = reasons.iter().find(|r| r.0 == "record_cap").map(|r| r.1);
    assert!(filtered.is_some_and(|n| n > 0), "{reasons:?}");
    assert!(capped.is_some_and(|n| n > 10_000), "{reasons:?}");
    assert_eq!(r.frames.analysed, 5_000);
    for row in &r.skipped_by_reason {
        let listed = row.frame_numbers.as_ref().unwrap();
        assert_eq!(listed.len() as u64, row.frames, "{}", row.reason);
        assert!(listed.is_sorted(), "{}", row.reason);
    }
}
