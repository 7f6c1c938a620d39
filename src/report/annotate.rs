//! `--annotate DIR`: what pcapdiag found, as packet comments in pcapng copies of the
//! captures and in their merge on the reference clock ([`crate::pcapng`] writes the
//! files). A packet with something to say gets, one line each: its flags; for evidence of
//! an attempt, what it is, the attempt and its verdict; and where the same packet was seen
//! in the other captures. In Wireshark, `frame.comment contains "rs_timewait_collision"`
//! then shows one attempt across the NAT.

use super::summary;
use super::{PairResult, Report};
use crate::pcapng::{self, Input, Notes, WriteError, Written};
use crate::units::{capture_stem, ms};
use crate::verdict::{AttemptVerdict, Cause, Evidence, Side};
use std::path::{Path, PathBuf};

/// Writes the annotated copy of every capture of the report, and `merged.pcapng`.
pub fn write(report: &Report, dir: &Path) -> Result<Written, WriteError> {
    pcapng::write(dir, &inputs(report), &notes(report))
}

/// The report's captures, as [`pcapng::write`] takes them: their files (each rotated part),
/// their clock onto the reference, and a description naming what each saw.
pub fn inputs(report: &Report) -> Vec<Input> {
    report
        .captures
        .iter()
        .enumerate()
        .map(|(i, cap)| {
            let parts = match cap.parts.is_empty() {
                true => vec![PathBuf::from(&cap.file)],
                false => cap.parts.iter().map(|p| PathBuf::from(&p.file)).collect(),
            };
            Input {
                name: cap.file.clone(),
                parts,
                to_reference: to_reference(report, i),
                description: format!(
                    "{}: {}; clock {}",
                    cap.file,
                    summary::role(report, i),
                    summary::capture_clock(report, i)
                ),
            }
        })
        .collect()
}

/// How a time of the capture `i` gets onto the reference clock: through the set's clock
/// graph, or for a pair's real-server capture through the pair's clock. Other captures are
/// the reference (or on their own clock).
fn to_reference(report: &Report, i: usize) -> Box<dyn Fn(i64) -> i64 + Send + Sync> {
    if let Some(p) = report.vantage_points.get(i) {
        return match p.clock.clone() {
            Some(c) => Box::new(move |t| c.to_reference(t)),
            None => Box::new(|t| t),
        };
    }
    let rs_clock = report
        .pair_of_capture(i)
        .filter(|p| p.rs_capture == Some(i) && p.client_capture != Some(i))
        .and_then(|p| p.pairing.as_ref())
        .map(|p| p.clock.clone());
    match rs_clock {
        Some(c) => Box::new(move |t| c.to_client(t)),
        None => Box::new(|t| t),
    }
}

/// The comment lines of every packet pcapdiag has something to say about, keyed by
/// (capture index, frame).
pub fn notes(report: &Report) -> Notes {
    let mut notes = Notes::new();
    for (i, cap) in report.captures.iter().enumerate() {
        for f in cap.flagged_packets.iter() {
            let codes: Vec<&str> = f.flags.iter().map(|f| f.code()).collect();
            notes
                .entry((i, f.frame))
                .or_default()
                .push(format!("pcapdiag flags: {}", codes.join(", ")));
        }
    }
    for pair in &report.pairs {
        let Some(verdicts) = &pair.verdicts else {
            continue;
        };
        for v in verdicts
            .attempts
            .iter()
            .filter(|v| !v.notes().evidence.is_empty())
        {
            attempt_notes(report, pair, v, &mut notes);
        }
    }
    notes
}

/// The notes of one attempt's evidence packets.
fn attempt_notes(report: &Report, pair: &PairResult, v: &AttemptVerdict, notes: &mut Notes) {
    let located: Vec<(usize, &Evidence)> = v
        .notes()
        .evidence
        .iter()
        .filter_map(|e| Some((capture_of(pair, e)?, e)))
        .collect();
    let verdict = match (v.verdict, v.signature) {
        (Cause::Ok, Some(s)) => format!("ok, with the signature of {}", s.code()),
        (c, _) => c.code().to_string(),
    };
    let setup = match v.setup_ns {
        Some(s) => format!("set up in {}", ms(s)),
        None => "never set up".into(),
    };
    let links = same_packets(&located);
    for (k, &(cap, e)) in located.iter().enumerate() {
        let lines = notes.entry((cap, e.frame)).or_default();
        lines.push(format!(
            "pcapdiag: {} of attempt {} ({verdict}; {setup})",
            e.what,
            v.tuple()
        ));
        let same: Vec<String> = links[k]
            .iter()
            .map(|&j| {
                let (c, other) = located[j];
                format!(
                    "{} #{}",
                    capture_stem(&report.captures[c].file),
                    other.frame
                )
            })
            .collect();
        if !same.is_empty() {
            lines.push(format!("same packet as {}", same.join(", ")));
        }
    }
}

/// The capture (index into the report's) an evidence packet is in.
fn capture_of(pair: &PairResult, e: &Evidence) -> Option<usize> {
    match e.side {
        Side::Client => pair.client_capture,
        Side::Rs => pair.rs_capture,
        Side::Other => e.capture.map(|c| c as usize),
    }
}

/// For each evidence packet, the ones that are the same packet seen at another place: of
/// the same kind ([`Evidence::packet`]), and each the other's nearest in time among that
/// place's packets of the kind (a SYN and its retry are milliseconds to seconds apart; one
/// packet's copies, the clock error and the path's delay apart). A place is a capture and
/// where in it: a node capture holds the leg before the NAT and the leg after it (the
/// pair's two sides, or a sighting's hop), each a place of its own.
fn same_packets(located: &[(usize, &Evidence)]) -> Vec<Vec<usize>> {
    let place = |k: usize| {
        let (capture, e) = located[k];
        let hop = if e.side == Side::Other { e.what } else { "" };
        (capture, e.side as u8, hop)
    };
    let nearest = |k: usize, at: (usize, u8, &str)| -> Option<usize> {
        let kind = located[k].1.packet()?;
        (0..located.len())
            .filter(|&j| place(j) == at && located[j].1.packet() == Some(kind))
            .min_by_key(|&j| (located[j].1.ts.abs_diff(located[k].1.ts), j))
    };
    let mut places: Vec<(usize, u8, &str)> = (0..located.len()).map(place).collect();
    places.sort_unstable();
    places.dedup();
    (0..located.len())
        .map(|k| {
            places
                .iter()
                .filter(|&&p| p != place(k))
                .filter_map(|&p| nearest(k, p))
                .filter(|&j| nearest(j, place(k)) == Some(k))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(side: Side, frame: u64, ts: i64, what: &'static str) -> Evidence {
        Evidence {
            side,
            frame,
            ts,
            what,
            capture: None,
        }
    }

    #[test]
    fn test_same_packets_pairs_each_try_with_its_copy() {
        // Three SYNs at the client; the real server saw only the last, 0.1 ms later.
        let e = [
            ev(Side::Client, 10, 0, "SYN"),
            ev(Side::Client, 11, 1_000_000_000, "SYN retry"),
            ev(Side::Client, 12, 3_000_000_000, "SYN retry"),
            ev(Side::Rs, 7, 3_000_100_000, "SYN on the RS side"),
            ev(Side::Rs, 8, 3_000_200_000, "SYN-ACK sent by RS"),
            ev(Side::Client, 13, 3_000_300_000, "SYN-ACK"),
        ];
        let located: Vec<(usize, &Evidence)> = e
            .iter()
            .map(|e| (if e.side == Side::Client { 0 } else { 1 }, e))
            .collect();
        let links = same_packets(&located);
        assert_eq!(links[0], Vec::<usize>::new());
        assert_eq!(links[1], Vec::<usize>::new());
        assert_eq!(links[2], vec![3]);
        assert_eq!(links[3], vec![2]);
        assert_eq!(links[4], vec![5]);
        assert_eq!(links[5], vec![4]);
    }

    #[test]
    fn test_same_packets_links_both_legs_of_a_node_capture() {
        // The node (capture 2) saw the SYN enter and leave the NAT box; the real server
        // (capture 1) saw it 30 µs later; the client (capture 0) first. Every copy is the
        // same packet as every other, the node's two legs included.
        let node = |frame, ts, what| Evidence {
            capture: Some(2),
            ..ev(Side::Other, frame, ts, what)
        };
        let e = [
            ev(Side::Client, 5, 0, "SYN"),
            node(7, 10_000, "SYN entering the NAT box"),
            node(8, 40_000, "SYN leaving the NAT box"),
            ev(Side::Rs, 3, 70_000, "SYN on the RS side"),
        ];
        let located: Vec<(usize, &Evidence)> = [0, 2, 2, 1].into_iter().zip(&e).collect();
        let links = same_packets(&located);
        for (k, l) in links.iter().enumerate() {
            let mut want: Vec<usize> = (0..4).filter(|&j| j != k).collect();
            let mut got = l.clone();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{k}");
        }
    }

    #[test]
    fn test_same_packets_never_links_different_kinds_or_the_same_place() {
        let e = [
            ev(Side::Client, 1, 0, "stale ACK"),
            ev(Side::Client, 2, 10, "client RST"),
            ev(Side::Rs, 3, 5, "SYN-ACK sent by RS"),
            ev(Side::Rs, 4, 6, "previous connection on the tuple closed"),
        ];
        let located: Vec<(usize, &Evidence)> = e
            .iter()
            .map(|e| (if e.side == Side::Client { 0 } else { 1 }, e))
            .collect();
        assert!(same_packets(&located).iter().all(Vec::is_empty));
    }
}
