//! Wireshark parity on captures the project did not make: the public corpora beside the
//! repository (`../shared/corpus/public` and `tcpdump`), against tshark's flags stored as
//! golden files by `lab/tshark-golden-corpus.sh` (tshark does not run here).
//!
//! Per Wireshark flag, over every TCP frame of every capture: the frames both tools flag
//! against the frames either flags (intersection over union). Every frame where they
//! disagree is put in a class, counted and printed (`cargo test --test it parity --
//! --nocapture`): a frame pcapdiag skipped is in the class of its skip reason
//! (`--list-skipped`); any other disagreement is `analysed`. Nothing is left out.

use crate::util::*;
use pcapdiag::capture::{self, Options};
use pcapdiag::flags::Flag;
use pcapdiag::skip::SkipReason;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// What one tool flagged: frame → Wireshark flag codes.
type FlagsByFrame = HashMap<u64, HashSet<&'static str>>;

/// tshark's flags from a golden file (TCP frames only).
fn tshark(golden: &Path) -> FlagsByFrame {
    read_tsv(golden)
        .into_iter()
        .map(|r| {
            let flags = r["flags"]
                .split(',')
                .filter_map(Flag::from_code)
                .map(Flag::code)
                .collect();
            (r["frame"].parse().expect("a frame number"), flags)
        })
        .collect()
}

/// pcapdiag's Wireshark flags and the reason of every skipped frame.
fn pcapdiag(capture: &Path) -> (FlagsByFrame, HashMap<u64, SkipReason>) {
    let opts = Options {
        list_skipped: true,
        ..Options::default()
    };
    let Ok(rep) = capture::analyze_file(capture, &opts) else {
        return Default::default();
    };
    let mut flags = FlagsByFrame::new();
    for p in &rep.flagged_packets {
        let ws: HashSet<&'static str> = p
            .flags
            .iter()
            .filter(|f| f.is_wireshark())
            .map(Flag::code)
            .collect();
        if !ws.is_empty() {
            flags.insert(p.frame, ws);
        }
    }
    let mut skipped = HashMap::new();
    for row in &rep.skipped_by_reason {
        let reason = SkipReason::from_code(row.reason).expect("a skip code");
        for &f in row.frame_numbers.iter().flatten() {
            skipped.insert(f, reason);
        }
    }
    (flags, skipped)
}

/// Per flag: frames both flag, frames either flags, and the disagreements by class.
#[derive(Default)]
struct Tally {
    both: u64,
    either: u64,
    by_class: BTreeMap<&'static str, u64>,
    /// A few of the frames they disagree on, as `file#frame (class)`.
    examples: Vec<String>,
}

/// Issue #14's bar: for every flag, at least this share of the frames either tool flags
/// are flagged by both.
const AGREEMENT: f64 = 0.999;

#[test]
fn test_wireshark_parity_per_flag_on_the_public_corpora() {
    let Some(corpus) = shared_corpus() else {
        return;
    };
    let goldens = files_under(&testdata("golden/corpus"), &[".tshark.tsv"]);
    assert!(
        goldens.len() >= 150,
        "golden files missing: {}",
        goldens.len()
    );
    let mut tally: BTreeMap<&'static str, Tally> = BTreeMap::new();
    // TCP frames tshark dissected that pcapdiag skipped, by skip reason, flagged or not.
    let mut not_analysed: BTreeMap<&'static str, (u64, Vec<String>)> = BTreeMap::new();
    let mut tcp_frames = 0u64;
    for golden in &goldens {
        let set = golden.parent().unwrap().file_name().unwrap();
        let name = golden.file_name().unwrap().to_str().unwrap();
        let cap = corpus
            .join(set)
            .join(name.strip_suffix(".tshark.tsv").unwrap());
        assert!(
            cap.is_file(),
            "{}: no capture for the golden",
            cap.display()
        );
        let theirs = tshark(golden);
        let (ours, skipped) = pcapdiag(&cap);
        tcp_frames += theirs.len() as u64;
        for frame in theirs.keys() {
            if let Some(r) = skipped.get(frame) {
                let (n, examples) = not_analysed.entry(r.code()).or_default();
                *n += 1;
                if examples.len() < 3 {
                    examples.push(format!("{}#{frame}", cap.file_name().unwrap().display()));
                }
            }
        }
        let frames: HashSet<u64> = theirs
            .iter()
            .filter(|(_, f)| !f.is_empty())
            .map(|(&n, _)| n)
            .chain(ours.keys().copied())
            .collect();
        let none = HashSet::new();
        for frame in frames {
            let ws = theirs.get(&frame).unwrap_or(&none);
            let mine = ours.get(&frame).unwrap_or(&none);
            for &flag in ws.union(mine) {
                let t = tally.entry(flag).or_default();
                t.either += 1;
                if ws.contains(flag) && mine.contains(flag) {
                    t.both += 1;
                } else {
                    let class = skipped.get(&frame).map_or("analysed", |r| r.code());
                    *t.by_class.entry(class).or_default() += 1;
                    if t.examples.len() < 3 {
                        let file = name.strip_suffix(".tshark.tsv").unwrap_or(name);
                        t.examples.push(format!("{file}#{frame} ({class})"));
                    }
                }
            }
        }
    }
    println!("flag: both / either = agreement; disagreements by class");
    let mut low = Vec::new();
    for (flag, t) in &tally {
        let agreement = t.both as f64 / t.either.max(1) as f64;
        println!(
            "{flag}: {} / {} = {agreement:.4}; {:?} {:?}",
            t.both, t.either, t.by_class, t.examples
        );
        if agreement < AGREEMENT {
            low.push(format!("{flag} {agreement:.4}"));
        }
    }
    println!(
        "{} captures, {tcp_frames} TCP frames (tshark); not analysed by pcapdiag: {not_analysed:?}",
        goldens.len()
    );
    assert!(tally.len() >= 8, "too few flags exercised: {}", tally.len());
    assert!(low.is_empty(), "agreement below {AGREEMENT}: {low:?}");
}
