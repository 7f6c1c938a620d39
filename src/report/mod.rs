//! Report: one model of everything found, and one renderer per format, each writing to
//! any `io::Write`. The model is what `--json` prints; field names are a stable schema
//! (see `docs/schema.md`).

pub mod csv;
pub mod frames;
pub mod html;
pub mod json;
pub mod markdown;
pub mod parquet;
pub mod postmortem;
pub mod table;

use crate::clock::ClockModel;
use crate::correlate::{Hints, NatMap, Pairing};
use crate::decode::Endpoint;
use crate::flags::Flag;
use crate::flows::{Attempt, Conn, ConnState, Flagged, FlowRecords, StateCounts};
use crate::read::{BlockCounts, Format, ReadError};
use crate::records::Records;
use crate::skip::SkipCounts;
use crate::verdict::{AttemptVerdict, Cause, VerdictRow};
use rayon::prelude::*;
use serde::Serialize;

/// Bumped when a field changes meaning or disappears (additions keep the version).
/// 2: the pairing and verdicts moved from the top level into `pairs`, one per capture pair.
pub const SCHEMA_VERSION: u32 = 2;

/// The whole report of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub pcapdiag_version: &'static str,
    /// Attempts with a setup latency at or above this are "slow".
    pub slow_threshold_ns: i64,
    /// Every capture that could be read, in command-line order (pair by pair: client side,
    /// then real-server side). A file named in two pairs is analysed, and listed, twice.
    pub captures: Vec<CaptureReport>,
    /// Files that could not be read at all.
    pub unreadable: Vec<ReadError>,
    /// One per capture pair (a client capture alone is a pair without an RS side).
    pub pairs: Vec<PairResult>,
    /// The verdicts of every pair together.
    pub overall: Overall,
}

/// One client capture, with the real-server capture it is paired with, and what came of it.
#[derive(Debug, Serialize)]
pub struct PairResult {
    /// Unique within the report (`--pairs-dir`: the files' common prefix; otherwise the
    /// client file's name without `.client` and the capture extensions).
    pub name: String,
    pub client_file: String,
    /// `None`: the client capture alone.
    pub rs_file: Option<String>,
    /// Index into [`Report::captures`]; `None` when the file could not be read (it is then
    /// in [`Report::unreadable`]).
    pub client_capture: Option<usize>,
    pub rs_capture: Option<usize>,
    /// The two captures paired through the NAT, when both were given and read.
    pub pairing: Option<PairingReport>,
    /// A verdict per client attempt (from both captures, or inferred from the client's);
    /// `None` when a capture of the pair could not be read. Attempt ids index the attempts
    /// of this pair's client capture.
    pub verdicts: Option<VerdictReport>,
    /// Indexes into [`Report::unreadable`] of this pair's files that could not be read.
    #[serde(skip)]
    pub unreadable: Vec<usize>,
}

/// The verdicts of every pair of the report together.
#[derive(Debug, Default, Serialize)]
pub struct Overall {
    pub pairs: u64,
    /// Pairs with verdicts (every file of the pair read).
    pub pairs_judged: u64,
    /// Judged client attempts, over every judged pair.
    pub attempts: u64,
    /// As [`VerdictReport::by_verdict`], over every judged pair.
    pub by_verdict: Vec<VerdictRow>,
}

impl Overall {
    /// The verdict rows of all `pairs` together, computed as [`crate::verdict::summarize`]
    /// computes one pair's: counts and delays summed, the share out of every judged
    /// attempt, and a remedy wherever the evidence of any attempt supports it.
    pub fn of(pairs: &[PairResult]) -> Overall {
        let all: Vec<&AttemptVerdict> = pairs
            .iter()
            .filter_map(|p| p.verdicts.as_ref())
            .flat_map(|v| &v.attempts)
            .collect();
        let total = all.len().max(1) as u64;
        let mut by_verdict: Vec<VerdictRow> = Cause::ALL
            .iter()
            .filter_map(|&cause| {
                let v: Vec<&AttemptVerdict> =
                    all.iter().copied().filter(|a| a.verdict == cause).collect();
                (!v.is_empty()).then(|| VerdictRow {
                    verdict: cause,
                    text: cause.text(),
                    attempts: v.len() as u64,
                    share_permille: v.len() as u64 * 1000 / total,
                    delay_total_ns: v.iter().fold(0i64, |t, a| t.saturating_add(a.delay_ns)),
                    delay_max_ns: v.iter().map(|a| a.delay_ns).max().unwrap_or(0),
                    remedies: cause
                        .remedies()
                        .iter()
                        .filter(|r| r.applies(&v))
                        .copied()
                        .collect(),
                })
            })
            .collect();
        by_verdict.sort_by(|a, b| b.attempts.cmp(&a.attempts).then(a.verdict.cmp(&b.verdict)));
        Overall {
            pairs: pairs.len() as u64,
            pairs_judged: pairs.iter().filter(|p| p.verdicts.is_some()).count() as u64,
            attempts: all.len() as u64,
            by_verdict,
        }
    }
}

/// Which analysed captures make a pair: indexes into the list given to [`assemble`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec {
    pub name: String,
    pub client: usize,
    /// `None`: the client capture alone (verdicts inferred from one side).
    pub rs: Option<usize>,
}

/// Builds the report of one run from the analysed captures: `results` holds one entry per
/// file, in command-line order (`Err` for a file that could not be read at all), and
/// `pairs` says which of them are paired. Each pair whose files were all read is paired
/// and judged ([`crate::diagnose`]), the pairs in parallel when there are several; a pair
/// with an unreadable file is reported without verdicts and does not stop the others.
///
/// Panics when a [`PairSpec`] indexes past `results`.
pub fn assemble(
    results: Vec<Result<CaptureReport, ReadError>>,
    pairs: &[PairSpec],
    hints: &Hints,
    slow_ns: i64,
) -> Report {
    let (mut captures, mut unreadable) = (Vec::new(), Vec::new());
    // Where each input went: Ok(index into captures) or Err(index into unreadable).
    let slots: Vec<Result<usize, usize>> = results
        .into_iter()
        .map(|r| match r {
            Ok(c) => {
                captures.push(c);
                Ok(captures.len() - 1)
            }
            Err(e) => {
                unreadable.push(e);
                Err(unreadable.len() - 1)
            }
        })
        .collect();
    let file = |slot: Result<usize, usize>| match slot {
        Ok(i) => captures[i].file.clone(),
        Err(i) => unreadable[i].file.clone(),
    };
    let judge = |spec: &PairSpec| {
        let client = slots[spec.client];
        let rs = spec.rs.map(|i| slots[i]);
        let read = |slot: Result<usize, usize>| slot.ok().map(|i| &captures[i]);
        let (pairing, verdicts) = match (read(client), rs.map(read)) {
            (Some(c), None) => (None, Some(crate::diagnose(c, None, hints, slow_ns).1)),
            (Some(c), Some(Some(r))) => {
                let (p, v) = crate::diagnose(c, Some(r), hints, slow_ns);
                (p, Some(v))
            }
            _ => (None, None),
        };
        PairResult {
            name: spec.name.clone(),
            client_file: file(client),
            rs_file: rs.map(file),
            client_capture: client.ok(),
            rs_capture: rs.and_then(Result::ok),
            pairing,
            verdicts,
            unreadable: [Some(client), rs]
                .into_iter()
                .flatten()
                .filter_map(Result::err)
                .collect(),
        }
    };
    let pairs: Vec<PairResult> = if pairs.len() > 1 {
        pairs.par_iter().map(judge).collect()
    } else {
        pairs.iter().map(judge).collect()
    };
    Report {
        schema_version: SCHEMA_VERSION,
        pcapdiag_version: env!("CARGO_PKG_VERSION"),
        slow_threshold_ns: slow_ns,
        overall: Overall::of(&pairs),
        captures,
        unreadable,
        pairs,
    }
}

impl Report {
    /// The client capture of a pair, when it could be read.
    pub fn client_of(&self, pair: &PairResult) -> Option<&CaptureReport> {
        pair.client_capture.and_then(|i| self.captures.get(i))
    }

    /// The real-server capture of a pair, when it was given and could be read.
    pub fn rs_of(&self, pair: &PairResult) -> Option<&CaptureReport> {
        pair.rs_capture.and_then(|i| self.captures.get(i))
    }

    /// The captures of a pair that could be read, client side first.
    pub fn captures_of(&self, pair: &PairResult) -> Vec<&CaptureReport> {
        [self.client_of(pair), self.rs_of(pair)]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The files of a pair that could not be read.
    pub fn unreadable_of(&self, pair: &PairResult) -> Vec<&ReadError> {
        pair.unreadable
            .iter()
            .filter_map(|&i| self.unreadable.get(i))
            .collect()
    }

    /// The pair a capture (an index into [`Report::captures`]) belongs to.
    pub fn pair_of_capture(&self, capture: usize) -> Option<&PairResult> {
        self.pairs
            .iter()
            .find(|p| p.client_capture == Some(capture) || p.rs_capture == Some(capture))
    }
}

/// How the two captures were paired.
#[derive(Debug, Serialize)]
pub struct PairingReport {
    pub client_file: String,
    pub rs_file: String,
    pub client_attempts: u64,
    pub rs_attempts: u64,
    /// Client attempts found in the RS capture.
    pub matched_attempts: u64,
    pub matched_by_tsval: u64,
    pub matched_by_time: u64,
    /// RS attempts on a client's own 4-tuple (pre-NAT copies of `tcpdump -i any`), ignored.
    pub pre_nat_copies: u64,
    pub nat: NatMap,
    /// RS clock − client clock; every time in `verdicts` is on the client's clock.
    pub clock: ClockModel,
    /// The RS capture's span on the client's clock.
    pub rs_span: Option<(i64, i64)>,
}

impl PairingReport {
    pub fn new(client: &CaptureReport, rs: &CaptureReport, p: &Pairing) -> PairingReport {
        PairingReport {
            client_file: client.file.clone(),
            rs_file: rs.file.clone(),
            client_attempts: p.selected.iter().filter(|&&s| s).count() as u64,
            rs_attempts: rs.attempts.len() as u64,
            matched_attempts: p.rs_of.iter().filter(|v| !v.is_empty()).count() as u64,
            matched_by_tsval: p.matched_by_tsval,
            matched_by_time: p.matched_by_time,
            pre_nat_copies: p.pre_nat_copies,
            nat: p.nat.clone(),
            clock: p.clock.clone(),
            rs_span: p.rs_span,
        }
    }
}

/// Verdicts and their summary.
#[derive(Debug, Serialize)]
pub struct VerdictReport {
    /// `both`, or `client_only` when one capture was given.
    pub sides: &'static str,
    pub by_verdict: Vec<VerdictRow>,
    pub attempts: Records<AttemptVerdict>,
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
fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
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
    pub blocks: BlockCounts,
    pub read_problem: Option<ReadError>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
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

        let mut setups: Vec<i64> = rec.attempts.iter().filter_map(|a| a.setup_ns).collect();
        setups.sort_unstable();
        let setup = LatencySummary {
            attempts: rec.attempts.len() as u64,
            established: setups.len() as u64,
            slow: rec
                .attempts
                .iter()
                .filter(|a| a.setup_ns.is_some_and(|s| s >= slow_ns))
                .count() as u64,
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
                })
                .collect(),
            blocks: meta.blocks,
            read_problem: meta.read_problem,
            first_ts: meta.first_ts,
            last_ts: meta.last_ts,
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

    /// The attempts sorted slowest first (no SYN-ACK counts as slowest), at most `n`.
    pub fn slowest(&self, n: usize) -> Vec<&Attempt> {
        let mut v: Vec<&Attempt> = self.attempts.iter().collect();
        let key = |a: &Attempt| -> i64 {
            a.setup_ns.unwrap_or_else(|| {
                // Unanswered: as slow as the span of its tries, ranked above answered ones.
                i64::MAX / 2 + (a.syns.last().map_or(0, |s| s.pkt.ts) - a.first_syn().ts)
            })
        };
        v.sort_by(|a, b| key(b).cmp(&key(a)).then(a.id.cmp(&b.id)));
        v.truncate(n);
        v
    }
}

/// `a -> b` for a 4-tuple.
pub fn tuple(a: &Endpoint, b: &Endpoint) -> String {
    format!("{a} -> {b}")
}

/// Nanoseconds as milliseconds with three decimals, for humans.
pub fn ms(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    format!(
        "{sign}{}.{:03} ms",
        ns / 1_000_000,
        (ns % 1_000_000) / 1_000
    )
}

/// Nanoseconds since the epoch as UTC ISO-8601 with nanoseconds.
pub fn utc(ts: i64) -> String {
    let secs = ts.div_euclid(1_000_000_000);
    let nanos = ts.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
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

    #[test]
    fn test_utc_and_ms() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            utc(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            utc(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(ms(1_008_123_999), "1008.123 ms");
        assert_eq!(ms(-2_500_000), "-2.500 ms");
    }
}
