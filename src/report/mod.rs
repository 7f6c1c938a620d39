//! Report: one model of everything found, and one renderer per format, each writing to
//! any `io::Write`. The model is what `--json` prints; field names are a stable schema
//! (see `docs/schema.md`).

pub mod annotate;
pub mod csv;
pub mod frames;
pub mod html;
pub mod json;
pub mod markdown;
pub mod parquet;
pub mod postmortem;
pub mod screen;
pub mod summary;
pub mod table;

use crate::capture::CaptureReport;
use crate::clock::ClockModel;
use crate::correlate::{NatMap, Pairing};
use crate::k8s::{Name, Names};
use crate::read::ReadError;
use crate::vantage::VantagePoint;
use crate::verdict::{VerdictReport, VerdictRow};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Bumped when a field changes meaning or disappears (additions keep the version).
/// 2: the pairing and verdicts moved from the top level into `pairs`, one per capture pair.
/// 3: `captures[].setup.slow` counts by the one definition of slow ([`Attempt::is_slow`]).
/// 4: `analyze CAPTURE...` is a set: pairs planned from `vantage_points`, one verdict per
///    client attempt wherever it was seen, `dropped_in_nat`, `path`. (Added since, without
///    a new version: `names`, `vantage_points[].clock.at_ns`.)
///
/// [`Attempt::is_slow`]: crate::flows::Attempt::is_slow
pub const SCHEMA_VERSION: u32 = 5;

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
    /// For a set of captures (CAPTURE...): what each capture in `captures` saw of the NAT,
    /// in the same order. Empty for given pairs (`--pair`, `--pairs-dir`).
    pub vantage_points: Vec<VantagePoint>,
    /// One per capture pair (a client capture alone is a pair without an RS side).
    pub pairs: Vec<PairResult>,
    /// The verdicts of every pair together.
    pub overall: Overall,
    /// Kubernetes names (`--k8s`) of the addresses the report shows: clients, VIPs, real
    /// servers, SNAT sources ([`names_for`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<IpAddr, Name>,
}

/// The names of the addresses the report shows (every judged attempt's client, server and
/// real-server-side tuples; every NAT mapping's addresses), from the cluster's objects.
pub fn names_for(report: &Report, k8s: &Names) -> BTreeMap<IpAddr, Name> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for p in &report.pairs {
        if let Some(v) = &p.verdicts {
            for a in v.attempts.iter() {
                ips.extend([a.client.ip, a.server.ip]);
                ips.extend(a.rs_tuples.iter().flat_map(|t| [t.client.ip, t.server.ip]));
            }
        }
        if let Some(pairing) = &p.pairing {
            for s in &pairing.nat.services {
                ips.push(s.vip.ip);
                ips.extend(s.backends.iter().map(|b| b.0.ip));
            }
            ips.extend(pairing.nat.snat.iter().flat_map(|&(c, s, _)| [c, s]));
        }
    }
    ips.into_iter()
        .filter_map(|ip| Some((ip, k8s.get(ip)?.clone())))
        .collect()
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
    /// The verdicts of all `pairs` together, summarized as one pair's are
    /// ([`crate::verdict::summarize`]).
    pub fn of(pairs: &[PairResult]) -> Overall {
        let judged = || pairs.iter().filter_map(|p| p.verdicts.as_ref());
        Overall {
            pairs: pairs.len() as u64,
            pairs_judged: judged().count() as u64,
            attempts: judged().map(|v| v.attempts.len() as u64).sum(),
            by_verdict: crate::verdict::summarize(judged().flat_map(|v| &v.attempts)),
        }
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
