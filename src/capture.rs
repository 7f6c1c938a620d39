//! Capture: one capture read, decoded and analysed in a single streaming pass, and the
//! [`CaptureReport`] every later stage reads (the pairing, the verdicts, the report).
//!
//! Invariant: every frame read is either analysed or counted as skipped with its reason
//! (`frames.read == frames.analysed + frames.skipped`).

use crate::decode;
use crate::defrag::{Defrag, DefragCounts};
use crate::flags::Flag;
use crate::flows::{self, Attempt, Conn, ConnState, Flagged, FlowRecords, StateCounts};
use crate::read::{BlockCounts, CaptureReader, Format, ReadError};
use crate::records::Records;
use crate::skip::{SkipCounts, SkipReason};
use crate::units::NS_PER_MS;
use serde::Serialize;
use std::path::Path;

/// Attempts delayed at least this long are slow unless `--slow-ms` says otherwise.
pub const DEFAULT_SLOW_NS: i64 = 200 * NS_PER_MS;

/// Reads, decodes and analyses one capture in a single streaming pass.
///
/// `Err` only when nothing could be read (not a capture, cannot open); a capture that
/// stops early (cut off, corrupt) gives a report of everything before the problem, with
/// the problem in [`CaptureReport::read_problem`].
pub fn analyze_file(path: &Path, opts: &Options) -> Result<CaptureReport, ReadError> {
    let reader = CaptureReader::open(path)?;
    Ok(analyze_reader(reader, opts, &mut |_| {}))
}

/// How often (in frames) [`analyze_reader`] reports progress.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// What shapes the analysis of one capture.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Attempts delayed this long count as slow ([`Attempt::is_slow`]): given once, here,
    /// for the captures' summaries and the verdicts alike.
    pub slow_ns: i64,
    /// Most 4-tuples with live state ([`flows::DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// Most connection records, and most flagged-packet records
    /// ([`flows::DEFAULT_MAX_RECORDS`]).
    pub max_records: usize,
    /// Which TCP segments to analyse; the rest are counted as `filtered`.
    pub filter: Filter,
    /// List the numbers of the skipped frames under each reason (`--list-skipped`), so
    /// that an outside comparison can leave out exactly those frames.
    pub list_skipped: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            slow_ns: DEFAULT_SLOW_NS,
            max_connections: flows::DEFAULT_MAX_CONNECTIONS,
            max_records: flows::DEFAULT_MAX_RECORDS,
            filter: Filter::default(),
            list_skipped: false,
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

/// [`analyze_file`] on an opened reader; `progress` is called with the bytes read so far
/// every [`PROGRESS_EVERY`] frames.
pub fn analyze_reader(
    reader: CaptureReader,
    opts: &Options,
    progress: &mut (dyn FnMut(u64) + Send),
) -> CaptureReport {
    analyze_parts(None, vec![reader], opts, progress, Pass::OneThread)
}

/// One file of a capture read from several (rotated files, [`crate::rotated`]).
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    pub file: String,
    /// The capture's frame number of this file's first frame: frames are numbered on
    /// through the parts, so this file's frame `n` is the capture's `first_frame + n - 1`.
    pub first_frame: u64,
    pub frames: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// From the previous part's last frame to this one's first: a gap in the capture, or
    /// (negative) an overlap.
    pub gap_ns: Option<i64>,
}

/// How one capture's pass uses the cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Reading, decoding and the connection table on one thread.
    OneThread,
    /// Reading and decoding on a thread of its own, handing the segments to the connection
    /// table a batch at a time: two cores on one capture (a quarter to a third less wall
    /// time on the lab mix's client capture, at the same CPU time). For a capture read
    /// while other cores are idle; with as many captures as cores, a thread each does as
    /// well without the hand-over.
    TwoThreads,
}

/// Segments handed over at a time in a [`Pass::TwoThreads`] pass.
const BATCH: usize = 4096;

/// Reads the parts of one capture (rotated files, in time order) as one stream: the
/// connections go on from one file into the next, and frames are numbered on through
/// them ([`Part::first_frame`]). A problem that stops one part (a file cut off, corrupt
/// data) ends that part only; the report keeps the first error (else the first warning).
/// `name` names the capture (default: the first part's file). The report is the same
/// whichever the [`Pass`].
pub fn analyze_parts(
    name: Option<String>,
    readers: Vec<CaptureReader>,
    opts: &Options,
    progress: &mut (dyn FnMut(u64) + Send),
    pass: Pass,
) -> CaptureReport {
    let mut flows = flows::Flows::with_limits(opts.max_connections, opts.max_records);
    // Segments the connection table turned away (past `--max-records`).
    let mut refused = Skipped::new(opts);
    let mut push = |seg: &decode::Segment| {
        if let Err(reason) = flows.push(seg) {
            refused.add(reason, seg.frame);
        }
    };
    let mut meta = match pass {
        Pass::OneThread => ingest(name, readers, opts, progress, |seg| push(&seg)),
        Pass::TwoThreads => std::thread::scope(|scope| {
            let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<decode::Segment>>(2);
            let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<decode::Segment>>();
            let reading = scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                let meta = ingest(name, readers, opts, progress, |seg| {
                    batch.push(seg);
                    if batch.len() == BATCH {
                        let next = empty_rx
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                        // Fails only when the receiving side has gone (it panicked).
                        let _ = full_tx.send(std::mem::replace(&mut batch, next));
                    }
                });
                let _ = full_tx.send(batch);
                meta
            });
            for mut batch in full_rx {
                batch.iter().for_each(&mut push);
                batch.clear();
                let _ = empty_tx.send(batch);
            }
            reading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    };
    refused.add_to(&mut meta);
    CaptureReport::build(meta, flows.finish(), opts.slow_ns)
}

/// Frames skipped, by reason, and with `--list-skipped` their numbers.
struct Skipped {
    counts: SkipCounts,
    frames: Option<Vec<Vec<u64>>>,
}

impl Skipped {
    fn new(opts: &Options) -> Skipped {
        Skipped {
            counts: SkipCounts::default(),
            frames: opts
                .list_skipped
                .then(|| vec![Vec::new(); SkipReason::ALL.len()]),
        }
    }
    fn add(&mut self, reason: SkipReason, frame: u64) {
        self.counts.add(reason);
        if let Some(l) = self.frames.as_mut() {
            l[reason as usize].push(frame);
        }
    }
    /// Adds these skips to those of the reading side (`meta`: other frames of the same
    /// capture), the numbers of each reason kept in capture order.
    fn add_to(self, meta: &mut CaptureMeta) {
        meta.skipped.merge(&self.counts);
        if let (Some(mine), Some(theirs)) = (meta.skipped_frames.as_mut(), self.frames) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                if !t.is_empty() {
                    m.extend(t);
                    m.sort_unstable();
                }
            }
        }
    }
}

/// The reading side of a capture's pass: the parts' frames read, decoded (fragments put
/// back together) and filtered; each segment to analyse given to `analyse`, in capture
/// order, every other frame counted by its reason. What the capture's report takes
/// besides its flows.
fn ingest(
    name: Option<String>,
    readers: Vec<CaptureReader>,
    opts: &Options,
    progress: &mut (dyn FnMut(u64) + Send),
    mut analyse: impl FnMut(decode::Segment),
) -> CaptureMeta {
    let mut skipped = Skipped::new(opts);
    let mut defrag = Defrag::default();
    let (mut first_ts, mut last_ts) = (None::<i64>, None::<i64>);
    let (mut frames_read, mut bytes_before) = (0u64, 0u64);
    let mut blocks = BlockCounts::default();
    let mut problem: Option<ReadError> = None;
    let mut parts: Vec<Part> = Vec::with_capacity(readers.len());
    let file = name.unwrap_or_else(|| readers.first().map_or(String::new(), |r| r.name().into()));
    // Known once a header is read: the first part's.
    let (mut format, mut gzip) = (None, false);
    for mut reader in readers {
        let base = frames_read;
        let (mut part_first, mut part_last) = (None::<i64>, None::<i64>);
        let end = reader.for_each(|record| match record {
            Ok(mut frame) => {
                frame.number += base;
                if frame.number.is_multiple_of(PROGRESS_EVERY) {
                    progress(bytes_before + frame.offset);
                }
                part_first.get_or_insert(frame.ts);
                part_last = Some(frame.ts);
                let decoded = match decode::decode(&frame) {
                    // A fragment: analysed when it completes its datagram.
                    Err(SkipReason::IpFragment) => {
                        defrag.push(&frame).unwrap_or(Err(SkipReason::IpFragment))
                    }
                    d => d,
                };
                match decoded {
                    Ok(seg) if opts.filter.keeps(&seg) => analyse(seg),
                    Ok(_) => skipped.add(SkipReason::Filtered, frame.number),
                    Err(reason) => skipped.add(reason, frame.number),
                }
            }
            Err(unreadable) => skipped.add(unreadable.reason, base + unreadable.number),
        });
        if parts.is_empty() {
            (format, gzip) = (reader.format(), reader.gzip());
        }
        frames_read += reader.frames();
        bytes_before += reader.position();
        blocks.add(&reader.blocks());
        if let Err(e) = end {
            let keep = match &problem {
                None => true,
                Some(p) => p.is_warning() && !e.is_warning(),
            };
            if keep {
                problem = Some(e);
            }
        }
        parts.push(Part {
            file: reader.name().to_string(),
            first_frame: base + 1,
            frames: reader.frames(),
            first_ts: part_first,
            last_ts: part_last,
            gap_ns: last_ts.zip(part_first).map(|(a, b)| b.saturating_sub(a)),
        });
        first_ts = first_ts.or(part_first);
        last_ts = part_last.or(last_ts);
    }
    if parts.len() == 1 {
        parts.clear();
    }
    CaptureMeta {
        file,
        format,
        gzip,
        frames_read,
        skipped: skipped.counts,
        skipped_frames: skipped.frames,
        blocks,
        read_problem: problem,
        first_ts,
        last_ts,
        parts,
        fragments: defrag.finish(),
    }
}

/// Where every frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrameCounts {
    pub read: u64,
    pub analysed: u64,
    pub skipped: u64,
}

#[derive(Debug, Serialize)]
pub struct SkipRow {
    pub reason: &'static str,
    pub text: &'static str,
    pub frames: u64,
    /// The frame numbers, in capture order, when asked for (`--list-skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_numbers: Option<Vec<u64>>,
}

#[derive(Debug, Serialize)]
pub struct CountRow {
    pub code: &'static str,
    pub text: &'static str,
    pub count: u64,
}

/// Setup-latency distribution over the attempts that completed their handshake.
#[derive(Debug, Default, Serialize)]
pub struct LatencySummary {
    pub attempts: u64,
    pub established: u64,
    pub slow: u64,
    pub with_retries: u64,
    pub p50_ns: Option<i64>,
    pub p90_ns: Option<i64>,
    pub p99_ns: Option<i64>,
    pub max_ns: Option<i64>,
}

/// Everything found in one capture.
#[derive(Debug, Serialize)]
pub struct CaptureReport {
    pub file: String,
    pub format: Option<Format>,
    pub gzip: bool,
    pub frames: FrameCounts,
    pub skipped_by_reason: Vec<SkipRow>,
    pub blocks: BlockCounts,
    /// What stopped reading early (a cut-off file is a warning; the rest are errors).
    pub read_problem: Option<ReadError>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// For a capture read from rotated files: each file, with its first frame number and
    /// the gap (or overlap) before it. Absent for a single file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// What became of fragmented IP datagrams carrying TCP (absent when there were none).
    #[serde(skip_serializing_if = "DefragCounts::is_empty")]
    pub fragments: DefragCounts,
    pub connection_states: Vec<CountRow>,
    pub flag_counts: Vec<CountRow>,
    pub setup: LatencySummary,
    /// Per-connection state dropped and rebuilt (memory is per live connection).
    pub state: StateCounts,
    pub attempts: Records<Attempt>,
    pub connections: Records<Conn>,
    pub flagged_packets: Records<Flagged>,
}

/// Nearest-rank percentile of a sorted slice.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// The inputs of a [`CaptureReport`] besides the flow records.
pub struct CaptureMeta {
    pub file: String,
    pub format: Option<Format>,
    pub gzip: bool,
    pub frames_read: u64,
    pub skipped: SkipCounts,
    /// Per [`SkipReason`] (by its index), the skipped frames' numbers, when listed.
    pub skipped_frames: Option<Vec<Vec<u64>>>,
    pub blocks: BlockCounts,
    pub read_problem: Option<ReadError>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// The files of a rotated capture, in the order read (empty for one file).
    pub parts: Vec<Part>,
    pub fragments: DefragCounts,
}

impl CaptureReport {
    pub fn build(meta: CaptureMeta, rec: FlowRecords, slow_ns: i64) -> CaptureReport {
        let mut states: Vec<(ConnState, u64)> = Vec::new();
        for c in &rec.conns {
            match states.iter_mut().find(|(s, _)| *s == c.state) {
                Some((_, n)) => *n += 1,
                None => states.push((c.state, 1)),
            }
        }
        states.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.code().cmp(b.0.code())));

        let mut setups: Vec<i64> = rec.attempts.iter().filter_map(|a| a.setup_ns()).collect();
        setups.sort_unstable();
        let setup = LatencySummary {
            attempts: rec.attempts.len() as u64,
            established: setups.len() as u64,
            slow: rec.attempts.iter().filter(|a| a.is_slow(slow_ns)).count() as u64,
            with_retries: rec.attempts.iter().filter(|a| a.tries() > 1).count() as u64,
            p50_ns: percentile(&setups, 50),
            p90_ns: percentile(&setups, 90),
            p99_ns: percentile(&setups, 99),
            max_ns: setups.last().copied(),
        };
        let skipped = meta.skipped.total();
        CaptureReport {
            file: meta.file,
            format: meta.format,
            gzip: meta.gzip,
            frames: FrameCounts {
                read: meta.frames_read,
                analysed: rec.segments,
                skipped,
            },
            skipped_by_reason: meta
                .skipped
                .iter()
                .map(|(r, n)| SkipRow {
                    reason: r.code(),
                    text: r.text(),
                    frames: n,
                    frame_numbers: meta.skipped_frames.as_ref().map(|l| l[r as usize].clone()),
                })
                .collect(),
            blocks: meta.blocks,
            read_problem: meta.read_problem,
            first_ts: meta.first_ts,
            last_ts: meta.last_ts,
            parts: meta.parts,
            fragments: meta.fragments,
            connection_states: states
                .into_iter()
                .map(|(s, n)| CountRow {
                    code: s.code(),
                    text: s.text(),
                    count: n,
                })
                .collect(),
            flag_counts: Flag::ALL
                .iter()
                .filter(|f| rec.flag_counts[**f as usize] > 0)
                .map(|f| CountRow {
                    code: f.code(),
                    text: f.text(),
                    count: rec.flag_counts[*f as usize],
                })
                .collect(),
            setup,
            state: rec.memory,
            attempts: rec.attempts,
            connections: rec.conns,
            flagged_packets: rec.flagged,
        }
    }

    /// What the memory limits cost this capture, one sentence each (empty when no limit
    /// was reached): the report says so wherever it shows the capture.
    pub fn limit_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let m = &self.state;
        if let Some(frame) = m.record_cap_frame {
            let skipped = self
                .skipped_by_reason
                .iter()
                .find(|r| r.reason == crate::skip::SkipReason::RecordCap.code())
                .map_or(0, |r| r.frames);
            notes.push(format!(
                "the connection records reached --max-records ({} connections) at frame {frame}: \
                 {skipped} later frames that would have started a connection were skipped \
                 (record_cap); raise --max-records to analyse them",
                self.connections.len()
            ));
        }
        if m.flagged_not_listed > 0 {
            notes.push(format!(
                "{} flagged packets past --max-records are in the flag counts but not listed",
                m.flagged_not_listed
            ));
        }
        if m.evicted > 0 {
            notes.push(format!(
                "the live state of {} connections was evicted (more than --max-connections \
                 were live at once); a later packet on one started a new connection record \
                 without its history",
                m.evicted
            ));
        }
        notes
    }
}

/// The report of a hand-built capture: `segments` in order, as if each were one frame.
#[cfg(test)]
pub(crate) fn of_segments(file: &str, segments: &[decode::Segment]) -> CaptureReport {
    let mut flows = flows::Flows::new();
    for seg in segments {
        flows.push(seg).expect("analysed");
    }
    let meta = CaptureMeta {
        file: file.into(),
        format: None,
        gzip: false,
        frames_read: segments.len() as u64,
        skipped: SkipCounts::default(),
        skipped_frames: None,
        blocks: BlockCounts::default(),
        read_problem: None,
        first_ts: segments.first().map(|s| s.ts),
        last_ts: segments.last().map(|s| s.ts),
        parts: Vec::new(),
        fragments: DefragCounts::default(),
    };
    CaptureReport::build(meta, flows.finish(), DEFAULT_SLOW_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_percentile_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
