//! Summary: every number the renderers show beyond the model itself, computed once, here.
//!
//! - [`rows`]: one row per client attempt of every pair (per judged attempt when the pair
//!   has verdicts), with its delay and whether it was slow, by the one definition each
//!   ([`Attempt::delay_ns`], [`Attempt::is_slow`]). The CSV and Parquet tables, the
//!   Markdown and the HTML charts are all made of these rows.
//! - [`Totals`]: counts, the slow share and the setup percentiles of some rows.
//! - [`worst`], [`worst_of`], [`quick_signatures`], [`notable_attempts`]: the attempts
//!   shown first.
//! - [`ladder`]: one attempt's packets from every capture on one clock, the delay each
//!   step adds, and where each was seen ([`place`]).
//! - [`evidence`], [`evidence_file`]: an evidence packet in one line, and its file.
//! - [`nat_rows`], [`clock_estimate`], [`clock_from`], [`clock_step`]: the NAT mapping and
//!   the clock estimate as the terminal and the postmortem both print them.
//! - [`by_pair`], [`not_judged`]: the overall verdicts' per-pair counts, and the pairs
//!   without verdicts.
//!
//! Renderers read the model and these, and compute nothing of their own.

use super::{PairResult, Report};
use crate::capture::{CaptureReport, percentile};
use crate::clock::{ClockModel, ClockSegment};
use crate::correlate::NatMap;
use crate::flows::Attempt;
use crate::units::{capture_stem, ms, utc};
use crate::vantage::Vantage;
use crate::verdict::{AttemptVerdict, Cause, Evidence, Side, Sides, VerdictReport};
use std::net::IpAddr;

/// One client connection attempt as every export shows it.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    /// Index into [`Report::pairs`].
    pub pair: usize,
    pub attempt: &'a Attempt,
    /// `None` when the pair has no verdicts (a capture of it could not be read).
    pub verdict: Option<&'a AttemptVerdict>,
    pub delay_ns: i64,
    pub slow: bool,
}

/// The rows of every pair, pair by pair, in attempt order.
pub fn rows(report: &Report) -> Vec<Row<'_>> {
    (0..report.pairs.len())
        .flat_map(|i| pair_rows(report, i))
        .collect()
}

/// The rows of the pair `i` of the report.
pub fn pair_rows<'a>(report: &'a Report, i: usize) -> Vec<Row<'a>> {
    let pair = &report.pairs[i];
    let Some(cap) = report.client_of(pair) else {
        return Vec::new();
    };
    let slow_ns = report.slow_threshold_ns;
    let row = |attempt: &'a Attempt, verdict: Option<&'a AttemptVerdict>| Row {
        pair: i,
        attempt,
        verdict,
        delay_ns: attempt.delay_ns(),
        slow: attempt.is_slow(slow_ns),
    };
    match &pair.verdicts {
        Some(v) => v
            .attempts
            .iter()
            .map(|av| row(&cap.attempts[av.attempt as usize], Some(av)))
            .collect(),
        None => cap.attempts.iter().map(|a| row(a, None)).collect(),
    }
}

/// Counts and setup percentiles over some rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub attempts: u64,
    pub slow: u64,
    /// Never set up (no SYN-ACK seen): slow by definition, counted apart.
    pub failed: u64,
    /// Slow per mille of the attempts.
    pub slow_permille: u64,
    /// Distinct client addresses.
    pub clients: u64,
    /// The first and the last first SYN.
    pub span: Option<(i64, i64)>,
    /// Nearest-rank setup percentiles (50, 90, 99) and maximum, over the established.
    pub setup_p50_ns: Option<i64>,
    pub setup_p90_ns: Option<i64>,
    pub setup_p99_ns: Option<i64>,
    pub setup_max_ns: Option<i64>,
    pub delay_max_ns: Option<i64>,
}

impl Totals {
    pub fn of(rows: &[Row<'_>]) -> Totals {
        let mut setups: Vec<i64> = rows.iter().filter_map(|r| r.attempt.setup_ns()).collect();
        setups.sort_unstable();
        let mut clients: Vec<IpAddr> = rows.iter().map(|r| r.attempt.client.ip).collect();
        clients.sort_unstable();
        clients.dedup();
        let first_syns = || rows.iter().map(|r| r.attempt.first_syn().ts);
        let attempts = rows.len() as u64;
        let slow = rows.iter().filter(|r| r.slow).count() as u64;
        Totals {
            attempts,
            slow,
            failed: rows
                .iter()
                .filter(|r| r.attempt.setup_ns().is_none())
                .count() as u64,
            slow_permille: (slow * 1000).checked_div(attempts).unwrap_or(0),
            clients: clients.len() as u64,
            span: first_syns().min().zip(first_syns().max()),
            setup_p50_ns: percentile(&setups, 50),
            setup_p90_ns: percentile(&setups, 90),
            setup_p99_ns: percentile(&setups, 99),
            setup_max_ns: setups.last().copied(),
            delay_max_ns: rows.iter().map(|r| r.delay_ns).max(),
        }
    }
}

/// The attempts with a verdict other than `ok`, the costliest first (lowest attempt id on
/// a tie).
pub fn worst(v: &VerdictReport) -> Vec<&AttemptVerdict> {
    let mut worst: Vec<&AttemptVerdict> = v
        .attempts
        .iter()
        .filter(|a| a.verdict != Cause::Ok)
        .collect();
    worst.sort_by(|a, b| b.delay_ns.cmp(&a.delay_ns).then(a.attempt.cmp(&b.attempt)));
    worst
}

/// The attempts with a verdict other than `ok` over every pair, with the index of their
/// pair, in [`worst`]'s order (then by pair).
pub fn worst_of(report: &Report) -> Vec<(usize, &AttemptVerdict)> {
    let mut worst: Vec<(usize, &AttemptVerdict)> = report
        .pairs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.verdicts.as_ref()?)))
        .flat_map(|(i, v)| worst(v).into_iter().map(move |a| (i, a)))
        .collect();
    worst.sort_by(|(i, a), (j, b)| {
        b.delay_ns
            .cmp(&a.delay_ns)
            .then(i.cmp(j))
            .then(a.attempt.cmp(&b.attempt))
    });
    worst
}

/// One packet of an attempt's ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    /// On the pair's client capture's clock.
    pub ts: i64,
    /// From the attempt's first SYN (negative: before it, e.g. the previous connection's
    /// close).
    pub since_first_ns: i64,
    /// From the previous step; `None` for the first.
    pub adds_ns: Option<i64>,
    /// Where it was seen ([`place`]).
    pub at: String,
    pub file: &'a str,
    pub frame: u64,
    pub what: &'static str,
    /// Which packet of the handshake it is ([`Evidence::packet`]).
    pub packet: Option<&'static str>,
}

/// An attempt's evidence packets from every capture, in time order on one clock (the
/// earlier frame first on a tie), each with the delay it adds to the one before.
pub fn ladder<'a>(report: &'a Report, pair: &'a PairResult, v: &AttemptVerdict) -> Vec<Step<'a>> {
    let mut ev: Vec<&Evidence> = v.notes().evidence.iter().collect();
    ev.sort_by_key(|e| (e.ts, e.side != Side::Client, e.frame));
    let mut prev: Option<i64> = None;
    ev.into_iter()
        .map(|e| {
            let step = Step {
                ts: e.ts,
                since_first_ns: e.ts.saturating_sub(v.first_syn_ts),
                adds_ns: prev.map(|p| e.ts.saturating_sub(p)),
                at: place(report, pair, e),
                file: evidence_file(report, pair, e),
                frame: e.frame,
                what: e.what,
                packet: e.packet(),
            };
            prev = Some(e.ts);
            step
        })
        .collect()
}

/// Where an evidence packet was seen, in a word or two: `client` and `server` for the
/// pair's captures (`before NAT` and `after NAT` when one capture holds both legs), the
/// file's name without directory and extension for another capture of the set.
pub fn place(report: &Report, pair: &PairResult, e: &Evidence) -> String {
    let one_file = pair.rs_file.as_deref() == Some(pair.client_file.as_str());
    match (e.side, one_file) {
        (Side::Client, false) => "client".into(),
        (Side::Client, true) => "before NAT".into(),
        (Side::Rs, false) => "server".into(),
        (Side::Rs, true) => "after NAT".into(),
        (Side::Other, _) => {
            other_capture(report, e).map_or("other".into(), |f| capture_stem(f).to_string())
        }
    }
}

/// The places of a ladder ([`Step::at`]) in their order along the path, each once: the
/// client side (`client`, `before NAT`) first, the real-server side (`server`, `after NAT`)
/// last, and the set's other captures in between, in the order they first appear.
pub fn ladder_places<'s>(steps: &'s [Step<'_>]) -> Vec<&'s str> {
    let rank = |at: &str| match at {
        "client" | "before NAT" => 0,
        "server" | "after NAT" => 2,
        _ => 1,
    };
    let mut places: Vec<&str> = Vec::new();
    for s in steps {
        if !places.contains(&s.at.as_str()) {
            places.push(&s.at);
        }
    }
    // Stable: within a rank, the order of first appearance.
    places.sort_by_key(|at| rank(at));
    places
}

/// Whether `b`, the step after `a`, is the packet of `a` seen again further along its way:
/// the same kind of packet (a SYN, a SYN-ACK, a stale ACK, the client's RST, a refusing RST,
/// whichever capture names it), at a place further in its direction in `places` (as
/// [`ladder_places`] orders them: a SYN and the client's RST travel toward the server, the
/// answers toward the client), less than 100 ms later. A ladder names packets, not their
/// identity, so this is read from the order: a retry sent again at the client is a new
/// packet, and a step of 100 ms or more is a wait between two packets, not one in flight.
pub fn same_packet(a: &Step<'_>, b: &Step<'_>, places: &[&str]) -> bool {
    const IN_FLIGHT_MAX_NS: i64 = 100 * crate::units::NS_PER_MS;
    // The SYN and the client's RST travel toward the server, the answers toward the client.
    let toward_server = |kind: &str| matches!(kind, "SYN" | "client RST");
    let at = |s: &Step<'_>| places.iter().position(|p| *p == s.at);
    let (Some(ka), Some(kb)) = (a.packet, b.packet) else {
        return false;
    };
    let (Some(pa), Some(pb)) = (at(a), at(b)) else {
        return false;
    };
    let onward = if toward_server(ka) { pb > pa } else { pb < pa };
    ka == kb && onward && b.ts.saturating_sub(a.ts) < IN_FLIGHT_MAX_NS
}

/// The signatures of attempts that were not slow, with their counts, in [`Cause`] order.
pub fn quick_signatures(v: &VerdictReport) -> Vec<(Cause, u64)> {
    signature_counts(v.attempts.iter())
}

/// [`quick_signatures`] over every judged pair.
pub fn quick_signatures_of(report: &Report) -> Vec<(Cause, u64)> {
    signature_counts(
        report
            .pairs
            .iter()
            .filter_map(|p| p.verdicts.as_ref())
            .flat_map(|v| v.attempts.iter()),
    )
}

fn signature_counts<'a>(verdicts: impl Iterator<Item = &'a AttemptVerdict>) -> Vec<(Cause, u64)> {
    let mut n = [0u64; Cause::ALL.len()];
    for a in verdicts.filter(|a| a.verdict == Cause::Ok) {
        if let Some(s) = a.signature {
            n[s as usize] += 1;
        }
    }
    Cause::ALL
        .into_iter()
        .zip(n)
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// A capture's attempts worth a look, slowest first, at most `n`: slow ones, and those
/// with SYN retries or a stale ACK even when quick. Unanswered attempts rank above the
/// answered ones.
pub fn notable_attempts(cap: &CaptureReport, slow_ns: i64, n: usize) -> Vec<&Attempt> {
    let mut v: Vec<&Attempt> = cap
        .attempts
        .iter()
        .filter(|a| a.is_slow(slow_ns) || a.tries() > 1 || a.stale_ack().is_some())
        .collect();
    let key = |a: &Attempt| (a.setup_ns().is_none(), a.delay_ns());
    v.sort_by(|a, b| key(b).cmp(&key(a)).then(a.id.cmp(&b.id)));
    v.truncate(n);
    v
}

/// The capture of an evidence packet of another capture of the set ([`Side::Other`]).
fn other_capture<'a>(report: &'a Report, e: &Evidence) -> Option<&'a str> {
    e.capture
        .and_then(|c| report.captures.get(c as usize))
        .map(|c| c.file.as_str())
}

/// The file an evidence packet is in, by the pair's files (another capture of the set:
/// by the report's captures).
pub fn evidence_file<'a>(report: &'a Report, pair: &'a PairResult, e: &Evidence) -> &'a str {
    match e.side {
        Side::Client => &pair.client_file,
        Side::Rs => pair.rs_file.as_deref().unwrap_or("rs"),
        Side::Other => other_capture(report, e).unwrap_or("another capture"),
    }
}

/// An evidence packet in one line: `client #12 SYN`, or for another capture of the set
/// its file name: `node.pcap #7 SYN entering the NAT box`.
pub fn evidence(report: &Report, e: &Evidence) -> String {
    let side = match e.side {
        Side::Other => {
            other_capture(report, e).map_or("other", |f| f.rsplit('/').next().unwrap_or(f))
        }
        s => s.code(),
    };
    format!("{side} #{} {}", e.frame, e.what)
}

/// Where each SYN try was seen, in one line: `#1 nat_in; #2 nat_in, nat_out` (empty when
/// the captures saw the attempt in one place only).
pub fn path(p: &[crate::vantage::Hops]) -> String {
    let tries: Vec<String> = p
        .iter()
        .enumerate()
        .map(|(i, hops)| {
            let names: Vec<&str> = crate::vantage::Hop::ALL
                .into_iter()
                .filter(|&h| hops.has(h))
                .map(|h| h.code())
                .collect();
            format!("#{} {}", i + 1, names.join(", "))
        })
        .collect();
    tries.join("; ")
}

/// A capture's clock against the set's reference, in a few words: `reference`,
/// `+0.005 ms ± 0.027 ms (via node.pcap)`, or `own clock (no handshake shared)`.
pub fn vantage_clock(p: &crate::vantage::VantagePoint) -> String {
    let Some(c) = &p.clock else {
        return "own clock (no handshake shared)".into();
    };
    if c.path.len() == 1 {
        return "reference".into();
    }
    let sign = if c.offset_ns < 0 { "-" } else { "+" };
    let mut s = format!("{sign}{} ± {}", ms(c.offset_ns.abs()), ms(c.error_ns));
    if c.path.len() > 2 {
        let via: Vec<&str> = c.path[1..c.path.len() - 1]
            .iter()
            .map(|f| f.rsplit('/').next().unwrap_or(f))
            .collect();
        s.push_str(&format!(" (via {})", via.join(", ")));
    }
    s
}

/// What a capture of the report was: its vantage point in a set (`node: both legs of the
/// NAT`), else its role in its pair (`client side`, `real-server side of pair b`).
pub fn role(report: &Report, i: usize) -> String {
    if let Some(p) = report.vantage_points.get(i) {
        let what = match p.vantage {
            Vantage::Client => "client side",
            Vantage::Rs => "real-server side",
            Vantage::Node => "node (both legs)",
            Vantage::Unknown => "no NAT seen",
        };
        return match p.judged {
            0 => what.to_string(),
            n => format!("{what}, judged {n}"),
        };
    }
    if report.pairs.len() <= 1 {
        return match (i, report.captures.len()) {
            (0, 1) => "the only capture",
            (0, _) => "client side",
            (1, _) => "real-server side",
            _ => "not analysed further",
        }
        .into();
    }
    match report.pair_of_capture(i) {
        Some(p) if p.client_capture == Some(i) => format!("client side of pair {}", p.name),
        Some(p) => format!("real-server side of pair {}", p.name),
        None => "not analysed further".into(),
    }
}

/// A capture's clock in a few words: against the set's reference ([`vantage_clock`]), or
/// for a pair's real-server capture against its client capture's.
pub fn capture_clock(report: &Report, i: usize) -> String {
    if let Some(p) = report.vantage_points.get(i) {
        return vantage_clock(p);
    }
    let Some(pair) = report.pair_of_capture(i) else {
        return String::new();
    };
    let pairing = pair.pairing.as_ref().filter(|_| pair.rs_capture == Some(i));
    match pairing.and_then(|p| p.clock.segments.first()) {
        None if pairing.is_some() => "own clock (no handshake shared)".into(),
        None => "reference".into(),
        Some(s) => {
            let sign = if s.offset_ns < 0 { "-" } else { "+" };
            format!("{sign}{} ± {}", ms(s.offset_ns.abs()), ms(s.error_ns))
        }
    }
}

/// What an attempt's setup came to, in a few words: `set up in 12.345 ms after 3 tries`,
/// `never set up (3000.000 ms without an answer)`.
pub fn setup_phrase(v: &AttemptVerdict) -> String {
    let setup = match v.setup_ns {
        Some(s) => format!("set up in {}", ms(s)),
        None => format!("never set up ({} without an answer)", ms(v.delay_ns)),
    };
    match v.tries {
        1 => setup,
        k => format!("{setup} after {k} tries"),
    }
}

/// An attempt's way through the cluster by name, when any of its addresses has one:
/// `pod default/web-7d9f8 -> svc default/api -> pod default/api-5f2c1 on node-2` (an
/// address without a name stays an address).
pub fn names_path(report: &Report, v: &AttemptVerdict) -> Option<String> {
    if report.names.is_empty() {
        return None;
    }
    let name = |ip: IpAddr| match report.names.get(&ip) {
        Some(n) => match &n.node {
            Some(node) if n.kind != crate::k8s::Kind::Node => format!("{} on {node}", n.label()),
            _ => n.label(),
        },
        None => ip.to_string(),
    };
    let mut hops = vec![name(v.client.ip), name(v.server.ip)];
    let mut backends: Vec<IpAddr> = v.rs_tuples.iter().map(|t| t.server.ip).collect();
    backends.dedup();
    hops.extend(backends.into_iter().map(name));
    [v.client.ip, v.server.ip]
        .iter()
        .chain(v.rs_tuples.iter().map(|t| &t.server.ip))
        .any(|ip| report.names.contains_key(ip))
        .then(|| hops.join(" -> "))
}

/// Which captures the verdicts come from, in a few words.
pub fn judged_from(report: &Report) -> String {
    let sides: Vec<Sides> = report
        .pairs
        .iter()
        .filter_map(|p| Some(p.verdicts.as_ref()?.sides))
        .collect();
    let captures = report.captures.len();
    let what = if sides.is_empty() {
        "no verdicts"
    } else if sides.iter().all(|&s| s == Sides::Both) {
        "judged on both sides of the NAT"
    } else if sides.contains(&Sides::Both) {
        "judged on both sides of the NAT where a real-server capture was given"
    } else {
        "judged from the client side alone (inferred)"
    };
    format!(
        "{what}, from {captures} capture{}",
        if captures == 1 { "" } else { "s" }
    )
}

/// What went wrong reading the captures, a line each: read problems (errors, then cut-off
/// files), the files that could not be read, and the limits hit.
pub fn problems(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for cap in &report.captures {
        if let Some(p) = &cap.read_problem {
            let level = if p.is_warning() { "warning" } else { "error" };
            lines.push(format!("{level}: {p}"));
        }
        lines.extend(cap.limit_notes().into_iter().map(|n| format!("note: {n}")));
        // Rotated files that overlap in time: the same packets may be in both.
        for p in cap.parts.iter().filter(|p| p.gap_ns.is_some_and(|g| g < 0)) {
            lines.push(format!(
                "warning: {} OVERLAPS the file before it by {}",
                p.file,
                ms(-p.gap_ns.unwrap_or(0))
            ));
        }
    }
    lines.extend(
        report
            .unreadable
            .iter()
            .map(|e| format!("error: could not read {e}")),
    );
    let not_judged = not_judged(report);
    if !not_judged.is_empty() {
        lines.push(format!(
            "not judged (a capture could not be read): {}",
            not_judged.join(", ")
        ));
    }
    lines
}

/// The columns of a verdict table, every renderer's, before its last one (the meaning, or
/// the counts by pair).
pub const VERDICT_COLUMNS: [&str; 5] = ["verdict", "attempts", "share", "delay total", "delay max"];

/// Each judged pair's count of `cause`, as `name count`, joined by commas: the "by pair"
/// column of the overall verdicts.
pub fn by_pair(report: &Report, cause: Cause) -> String {
    let counts: Vec<String> = report
        .pairs
        .iter()
        .filter_map(|p| {
            let row = p
                .verdicts
                .as_ref()?
                .by_verdict
                .iter()
                .find(|x| x.verdict == cause)?;
            Some(format!("{} {}", p.name, row.attempts))
        })
        .collect();
    counts.join(", ")
}

/// The names of the pairs without verdicts (a capture of theirs could not be read).
pub fn not_judged(report: &Report) -> Vec<&str> {
    report
        .pairs
        .iter()
        .filter(|p| p.verdicts.is_none())
        .map(|p| p.name.as_str())
        .collect()
}

/// A cell of the NAT mapping: words, then an address or port shown verbatim (if any).
pub type NatCell = (String, Option<String>);

/// One row of the NAT mapping: the client side, what the real-server side saw, and how
/// many attempts (none for the ports row).
pub struct NatRow {
    pub client_side: NatCell,
    pub rs_side: NatCell,
    pub attempts: Option<u64>,
    /// The addresses of the two sides, for the rows that map one (to name them).
    pub ips: [Option<IpAddr>; 2],
}

/// The NAT mapping: each VIP with its real servers, each client address with its SNAT
/// source, then whether the client ports were kept.
pub fn nat_rows(nat: &NatMap) -> Vec<NatRow> {
    let words = |w: &str, code: String| (w.to_string(), Some(code));
    let mut rows = Vec::new();
    for s in &nat.services {
        for (backend, n) in &s.backends {
            rows.push(NatRow {
                client_side: words("VIP ", s.vip.to_string()),
                rs_side: words("real server ", backend.to_string()),
                attempts: Some(*n),
                ips: [Some(s.vip.ip), Some(backend.ip)],
            });
        }
    }
    for (client, source, n) in &nat.snat {
        rows.push(NatRow {
            client_side: words("client ", client.to_string()),
            rs_side: words("source ", source.to_string()),
            attempts: Some(*n),
            ips: [Some(*client), Some(*source)],
        });
    }
    if let Some(age) = nat.tuple_reused_after_ns {
        rows.push(NatRow {
            client_side: ("closed SNAT tuples".into(), None),
            rs_side: (
                format!(
                    "re-used after as little as {} ({} times within {}: ports count as held {} after their last packet)",
                    ms(age),
                    nat.tuples_reused_within_hold,
                    ms(crate::correlate::NAT_HOLD_NS),
                    ms(nat.hold_ns())
                ),
                None,
            ),
            attempts: None,
            ips: [None, None],
        });
    }
    rows.push(NatRow {
        client_side: ("client ports".into(), None),
        rs_side: (
            format!(
                "kept {} / rewritten {}",
                nat.ports_kept, nat.ports_rewritten
            ),
            None,
        ),
        attempts: None,
        ips: [None, None],
    });
    rows
}

/// A piece of the clock estimate, after "RS clock = client clock ": `+ 1.234 ms ± 0.010
/// ms, skew 12 ppb (5 min-delay samples of 40 handshakes)`.
pub fn clock_estimate(clock: &ClockModel, s: &ClockSegment) -> String {
    format!(
        "{}{} ± {}, skew {} ppb ({} min-delay samples of {} handshakes)",
        if s.offset_ns < 0 { "- " } else { "+ " },
        ms(s.offset_ns.abs()),
        ms(s.error_ns),
        s.skew_ppb,
        s.samples,
        clock.exchanges
    )
}

/// Where a piece of the clock estimate starts, when it is not the first: ` from <UTC>`.
pub fn clock_from(clock: &ClockModel, i: usize) -> String {
    match clock.segments.get(i) {
        Some(s) if i > 0 => format!(" from {}", utc(s.from_ns)),
        _ => String::new(),
    }
}

/// A step of the RS clock: `clock step of 12.000 ms at <UTC> (client clock)`.
pub fn clock_step(at: i64, size: i64) -> String {
    format!("clock step of {} at {} (client clock)", ms(size), utc(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_evidence_line_names_side_frame_and_packet() {
        let e = Evidence {
            side: Side::Rs,
            frame: 12,
            ts: 0,
            what: "stale ACK",
            capture: None,
        };
        let report = Report {
            schema_version: crate::report::SCHEMA_VERSION,
            pcapdiag_version: "",
            slow_threshold_ns: 0,
            captures: Vec::new(),
            unreadable: Vec::new(),
            vantage_points: Vec::new(),
            pairs: Vec::new(),
            overall: Default::default(),
            names: Default::default(),
        };
        assert_eq!(evidence(&report, &e), "rs #12 stale ACK");
    }

    #[test]
    fn test_totals_of_nothing() {
        let t = Totals::of(&[]);
        assert_eq!(t.attempts, 0);
        assert_eq!(t.slow_permille, 0);
        assert_eq!(t.setup_p50_ns, None);
        assert_eq!(t.span, None);
    }
}
