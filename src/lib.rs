//! pcapdiag: diagnose slow TCP connection setups from packet captures.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`read`] (records from a capture) → [`decode`] (bytes to a [`decode::Segment`], once)
//! → [`flows`] (connections, attempts; [`classify`] flags each packet) → [`report`]
//! (one model, one renderer per format). With two captures, [`correlate`] pairs the client
//! side's attempts with the real server's through the NAT, [`clock`] puts both on one clock,
//! and [`verdict`] names the cause of every slow attempt. [`cli`] turns flags into a
//! validated config and `main.rs` only wires these together.
#![forbid(unsafe_code)]

pub mod classify;
pub mod cli;
pub mod clock;
pub mod correlate;
pub mod decode;
pub mod explain;
pub mod flags;
pub mod flows;
pub mod fuzzing;
pub mod read;
pub mod records;
pub mod report;
pub mod seq;
pub mod skip;
pub mod verdict;

use read::{CaptureReader, ReadError};
use report::{CaptureMeta, CaptureReport, PairingReport, VerdictReport};
use skip::SkipCounts;
use std::path::Path;

/// Reads, decodes and analyses one capture in a single streaming pass.
///
/// `Err` only when nothing could be read (not a capture, cannot open); a capture that
/// stops early (cut off, corrupt) gives a report of everything before the problem, with
/// the problem in [`CaptureReport::read_problem`].
pub fn analyze_file(path: &Path, slow_ns: i64) -> Result<CaptureReport, ReadError> {
    let reader = CaptureReader::open(path)?;
    Ok(analyze_reader(reader, slow_ns, &mut |_| {}))
}

/// How often (in frames) [`analyze_reader`] reports progress.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// [`analyze_file`] on an opened reader; `progress` is called with the bytes read so far
/// every [`PROGRESS_EVERY`] frames.
pub fn analyze_reader(
    reader: CaptureReader,
    slow_ns: i64,
    progress: &mut dyn FnMut(u64),
) -> CaptureReport {
    let opts = Options {
        slow_ns,
        ..Options::default()
    };
    analyze_reader_with(reader, &opts, progress)
}

/// What shapes the analysis of one capture.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Setups at least this long count as slow.
    pub slow_ns: i64,
    /// Most 4-tuples with live state ([`flows::DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// Most connection records, and most flagged-packet records
    /// ([`flows::DEFAULT_MAX_RECORDS`]).
    pub max_records: usize,
    /// Which TCP segments to analyse; the rest are counted as `filtered`.
    pub filter: Filter,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            slow_ns: 200_000_000,
            max_connections: flows::DEFAULT_MAX_CONNECTIONS,
            max_records: flows::DEFAULT_MAX_RECORDS,
            filter: Filter::default(),
        }
    }
}

/// Segments to analyse: a port on either side, a time window (on the capture's own clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub port: Option<u16>,
    /// Nanoseconds since the epoch, inclusive.
    pub since: Option<i64>,
    /// Nanoseconds since the epoch, exclusive.
    pub until: Option<i64>,
}

impl Filter {
    fn keeps(&self, seg: &decode::Segment) -> bool {
        self.port
            .is_none_or(|p| seg.src.port == p || seg.dst.port == p)
            && self.since.is_none_or(|t| seg.ts >= t)
            && self.until.is_none_or(|t| seg.ts < t)
    }
}

/// [`analyze_reader`] with every option.
pub fn analyze_reader_with(
    mut reader: CaptureReader,
    opts: &Options,
    progress: &mut dyn FnMut(u64),
) -> CaptureReport {
    let slow_ns = opts.slow_ns;
    let mut flows = flows::Flows::with_limits(opts.max_connections, opts.max_records);
    let mut skipped = SkipCounts::default();
    let (mut first_ts, mut last_ts) = (None::<i64>, None::<i64>);
    let end = reader.for_each(|record| match record {
        Ok(frame) => {
            if frame.number.is_multiple_of(PROGRESS_EVERY) {
                progress(frame.offset);
            }
            first_ts.get_or_insert(frame.ts);
            last_ts = Some(frame.ts);
            match decode::decode(&frame) {
                Ok(seg) if opts.filter.keeps(&seg) => {
                    if let Err(reason) = flows.push(&seg) {
                        skipped.add(reason);
                    }
                }
                Ok(_) => skipped.add(skip::SkipReason::Filtered),
                Err(reason) => skipped.add(reason),
            }
        }
        Err(unreadable) => skipped.add(unreadable.reason),
    });
    let meta = CaptureMeta {
        file: reader.name().to_string(),
        format: reader.format(),
        gzip: reader.gzip(),
        frames_read: reader.frames(),
        skipped,
        blocks: reader.blocks(),
        read_problem: end.err(),
        first_ts,
        last_ts,
    };
    CaptureReport::build(meta, flows.finish(), slow_ns)
}

/// Pairs the client capture with the RS capture (when given) and judges every client
/// attempt.
pub fn diagnose(
    client: &CaptureReport,
    rs: Option<&CaptureReport>,
    hints: &correlate::Hints,
    slow_ns: i64,
) -> (Option<PairingReport>, VerdictReport) {
    let pairing = rs.map(|rs| correlate::pair(client, rs, hints));
    let ctx = verdict::Context {
        client,
        rs,
        pairing: pairing.as_ref(),
        slow_ns,
    };
    let attempts = verdict::judge_all(&ctx);
    let report = VerdictReport {
        sides: if rs.is_some() { "both" } else { "client_only" },
        by_verdict: verdict::summarize(&attempts),
        attempts,
    };
    let pairing = rs
        .zip(pairing.as_ref())
        .map(|(rs, p)| PairingReport::new(client, rs, p));
    (pairing, report)
}
