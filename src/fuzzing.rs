//! The fuzz harnesses, as plain functions of the library: the cargo-fuzz targets in `fuzz/`
//! (libFuzzer, README "Fuzzing") are one-line calls to them, and `tests/it/fuzz_smoke.rs` runs
//! them on deterministic mutations of the test captures in every `cargo test`. So a change
//! to the report model or a renderer that breaks the harness breaks the build, not only the
//! fuzz crate that CI does not build.
//!
//! **Contract:** no harness panics, hangs or allocates without bound, on any input.
//! Any panic is a bug in pcapdiag (or in the harness), to be minimised into a fixture in
//! `testdata/fuzz-regressions/`.

use crate::capture::{self, CaptureReport, DEFAULT_SLOW_NS, FrameCounts, Options};
use crate::cli::PairSpec;
use crate::decode::{self, linktype};
use crate::read::{CaptureReader, Frame};
use crate::report::{self, Report};
use crate::run;
use std::io::{self, Cursor};

/// Arbitrary bytes through the whole pipeline, as `pcapdiag analyze --json X X` runs them:
/// read → decode → flows/classify → report, twice (the client side and the RS side), the
/// two paired (correlate, clock, verdict), then the renderers that stream the report: JSON
/// and the terminal table, each to [`io::sink`]. The `analyze` fuzz target.
///
/// Returns the frame accounting of the capture, or `None` when the bytes are not a
/// capture at all (the reader refused them). Never panics: a hostile capture gives a report
/// (possibly with a read problem) or a read error.
pub fn analyze_bytes(data: &[u8]) -> Option<FrameCounts> {
    let (report, frames) = report_bytes(data)?;
    render_streams(&report);
    Some(frames)
}

/// The same report as [`analyze_bytes`], rendered as the Markdown postmortem instead. The
/// `postmortem` fuzz target. It became a target of its own when the postmortem counted
/// with polars queries (11 M instructions for an empty capture, against 0.8 M for the rest
/// of the harness); it now reads `report::summary` and needs no polars, but it stays a
/// target of its own so that its corpus keeps its use.
pub fn postmortem_bytes(data: &[u8]) -> Option<FrameCounts> {
    let (report, frames) = report_bytes(data)?;
    render_postmortem(&report);
    Some(frames)
}

/// The report of the capture paired with itself, and its frame accounting; `None` when
/// the bytes are not a capture.
fn report_bytes(data: &[u8]) -> Option<(Report, FrameCounts)> {
    let client = analyze_one(data)?;
    let rs = analyze_one(data)?;
    let frames = client.frames;
    Some((build_report(client, rs), frames))
}

/// JSON and the terminal table, to [`io::sink`]. Writing to a sink cannot fail, so an
/// error counts as a bug and panics here, as the CLI would fail on it.
fn render_streams(report: &Report) {
    report::json::write(report, io::sink()).expect("JSON to a sink");
    report::screen::write(
        report,
        report::screen::ScreenOptions {
            top: 10,
            width: 80,
            color: true,
            verbose: true,
        },
        io::sink(),
    )
    .expect("terminal table to a sink");
}

/// The Markdown postmortem, to [`io::sink`]. Writing to a sink cannot fail, so an error
/// counts as a bug and panics here.
fn render_postmortem(report: &Report) {
    report::markdown::write(report, io::sink()).expect("Markdown to a sink");
}

/// One capture's report, as [`capture::analyze_file`] gives it (default options), from
/// bytes in memory.
fn analyze_one(data: &[u8]) -> Option<CaptureReport> {
    let reader = CaptureReader::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))).ok()?;
    Some(capture::analyze_reader(
        reader,
        &Options::default(),
        &mut |_| {},
    ))
}

/// The report of one run, assembled as `pcapdiag analyze` assembles it ([`run::assemble`]: the
/// two captures paired and judged as one pair): the only place the harness builds a
/// [`Report`].
fn build_report(client: CaptureReport, rs: CaptureReport) -> Report {
    let pair = PairSpec {
        name: "fuzz".into(),
        client: 0,
        rs: Some(1),
    };
    let captures = vec![Ok(client), Ok(rs)];
    run::assemble(
        captures,
        run::Layout::Pairs(&[pair]),
        &Default::default(),
        DEFAULT_SLOW_NS,
    )
}

/// The link types [`decode_bytes`] chooses from: those `decode` handles, and one it does
/// not.
pub const LINKTYPES: [u16; 11] = [
    linktype::ETHERNET,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::NULL,
    linktype::LOOP,
    linktype::RAW_BSD_12,
    linktype::RAW_BSD_14,
    147, // LINKTYPE_USER0: unsupported
];

/// One frame's bytes through [`decode::decode`]. Input: 2 bytes (big-endian) choosing the
/// link type, 2 bytes of "not captured" length (orig_len − captured, exercising the snaplen
/// paths), then the frame. A selector with the top bit set is the link type itself (low 15
/// bits); otherwise it indexes [`LINKTYPES`]. `fuzz/seed.sh` and [`decode_input`] write
/// frames in this form.
///
/// Never panics: every frame decodes to a segment or a skip reason, and where
/// [`decode::decode_common`] (the fast path) decodes the frame, it agrees with
/// [`decode::decode_lax`] (it panics if not). Inputs shorter than 4 bytes are ignored.
pub fn decode_bytes(data: &[u8]) {
    let Some((head, frame)) = data.split_at_checked(4) else {
        return;
    };
    let sel = u16::from_be_bytes([head[0], head[1]]);
    let linktype = if sel & 0x8000 != 0 {
        sel & 0x7fff
    } else {
        LINKTYPES[sel as usize % LINKTYPES.len()]
    };
    let uncaptured = u32::from(u16::from_be_bytes([head[2], head[3]]));
    let frame = Frame {
        number: 1,
        offset: 0,
        ts: 0,
        iface: 0,
        linktype,
        data: frame,
        orig_len: (frame.len() as u32).saturating_add(uncaptured),
    };
    // The fast path must agree with the general decoder wherever it answers.
    let lax = decode::decode_lax(&frame);
    if let Some(common) = decode::decode_common(&frame) {
        assert_eq!(Ok(common), lax, "decode_common differs from decode_lax");
    }
}

/// A frame as [`decode_bytes`] input (the inverse of its parsing): for seeding.
pub fn decode_input(frame: &Frame<'_>) -> Vec<u8> {
    let sel = match LINKTYPES.iter().position(|&l| l == frame.linktype) {
        Some(i) => i as u16,
        None => 0x8000 | (frame.linktype & 0x7fff),
    };
    let uncaptured = frame.orig_len.saturating_sub(frame.data.len() as u32);
    let uncaptured = u16::try_from(uncaptured).unwrap_or(u16::MAX);
    let mut v = Vec::with_capacity(4 + frame.data.len());
    v.extend_from_slice(&sel.to_be_bytes());
    v.extend_from_slice(&uncaptured.to_be_bytes());
    v.extend_from_slice(frame.data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_input_round_trips_the_link_type() {
        for (lt, want) in [(linktype::LINUX_SLL2, 2u16), (147, 10), (300, 0x8000 | 300)] {
            let f = Frame {
                number: 1,
                offset: 0,
                ts: 0,
                iface: 0,
                linktype: lt,
                data: &[1, 2, 3],
                orig_len: 70_003,
            };
            let v = decode_input(&f);
            assert_eq!(u16::from_be_bytes([v[0], v[1]]), want);
            assert_eq!(u16::from_be_bytes([v[2], v[3]]), u16::MAX);
            assert_eq!(&v[4..], &[1, 2, 3]);
            decode_bytes(&v);
        }
        decode_bytes(&[]);
        decode_bytes(&[0x80, 0, 0]);
    }
}
