//! Postmortem: the content of the Markdown and HTML reports as one small document model
//! (headings, paragraphs, lists, tables, and where the charts go), so that both formats say
//! exactly the same thing. Built from the report and its polars tables; deterministic: no
//! time of "now", and every list in a stable order.

use super::frames::{self, Summary};
use super::{Report, ms, tuple, utc};
use crate::verdict::{AttemptVerdict, Cause, Side};
use polars::prelude::*;

/// How many attempts of each cause are shown with their evidence.
pub const EXAMPLES_PER_CAUSE: usize = 5;

/// A piece of inline text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Span {
    Text(String),
    /// A code, address, file name or frame list: shown verbatim.
    Code(String),
    Strong(String),
}

pub type Line = Vec<Span>;

/// A chart the HTML report draws at this point (Markdown has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    /// Setup-latency histogram, log-scale x.
    Latency,
    /// Each attempt's delay over time, coloured by verdict.
    OverTime,
    /// Attempts per verdict.
    Verdicts,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// Level 2 for the report's title, 3 for sections, 4 below.
    Heading(u8, String),
    Para(Line),
    List(Vec<Line>),
    Table {
        header: Vec<&'static str>,
        /// Per column: right-aligned (numbers).
        numeric: Vec<bool>,
        rows: Vec<Vec<Line>>,
    },
    Chart(Chart),
}

fn t(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}
fn c(s: impl Into<String>) -> Span {
    Span::Code(s.into())
}
fn b(s: impl Into<String>) -> Span {
    Span::Strong(s.into())
}

fn share(permille: u64) -> String {
    format!("{}.{} %", permille / 10, permille % 10)
}

/// The `all` row of the summary, as numbers.
struct Totals {
    attempts: i64,
    slow: i64,
    share_permille: u64,
    p: [Option<i64>; 4],
    delay_max: Option<i64>,
}

fn totals(attempts: &DataFrame) -> PolarsResult<Totals> {
    let all = frames::summarize(attempts, Summary::All)?;
    let get = |name: &str| -> PolarsResult<Option<i64>> { Ok(all.column(name)?.i64()?.get(0)) };
    let n = get("attempts")?.unwrap_or(0);
    let slow = get("slow")?.unwrap_or(0);
    Ok(Totals {
        attempts: n,
        slow,
        share_permille: if n > 0 { (slow * 1000 / n) as u64 } else { 0 },
        p: [
            get("setup_p50_ns")?,
            get("setup_p90_ns")?,
            get("setup_p99_ns")?,
            get("setup_max_ns")?,
        ],
        delay_max: get("delay_max_ns")?,
    })
}

/// The report as a document.
pub fn build(report: &Report) -> PolarsResult<Vec<Block>> {
    let attempts = frames::attempts(report)?;
    let mut doc = vec![Block::Heading(
        2,
        "Slow TCP connection setups: what the captures show".into(),
    )];
    doc.extend(sources(report));
    doc.extend(what_happened(report, &attempts)?);
    doc.extend(causes(report));
    doc.extend(nat_and_clock(report));
    doc.extend(remedies(report));
    Ok(doc)
}

fn sources(report: &Report) -> Vec<Block> {
    let mut items = Vec::new();
    for (i, cap) in report.captures.iter().enumerate() {
        let role = match (i, report.captures.len()) {
            (0, 1) => "the only capture",
            (0, _) => "client side",
            (1, _) => "real-server side",
            _ => "not analysed further",
        };
        let mut line = vec![
            c(&cap.file),
            t(format!(" ({role}): {} frames", cap.frames.read)),
        ];
        if let (Some(a), Some(z)) = (cap.first_ts, cap.last_ts) {
            line.push(t(", "));
            line.push(c(utc(a)));
            line.push(t(" to "));
            line.push(c(utc(z)));
        }
        if let Some(p) = &cap.read_problem {
            let level = if p.is_warning() { "warning" } else { "error" };
            line.push(t(format!("; {level}: {p}")));
        }
        items.push(line);
    }
    for e in &report.unreadable {
        items.push(vec![t(format!("could not be read: {e}"))]);
    }
    let mut out = vec![Block::Para(vec![t(format!(
        "Slow means a setup (first SYN to SYN-ACK) of at least {}, or none at all. Times are UTC.",
        ms(report.slow_threshold_ns)
    ))])];
    if !items.is_empty() {
        out.push(Block::List(items));
    }
    out
}

fn what_happened(report: &Report, attempts: &DataFrame) -> PolarsResult<Vec<Block>> {
    let mut out = vec![Block::Heading(3, "What happened".into())];
    let tot = totals(attempts)?;
    if tot.attempts == 0 {
        out.push(Block::Para(vec![t(
            "No TCP connection attempt (SYN) was seen in the client capture.",
        )]));
        return Ok(out);
    }
    let clients = frames::summarize(attempts, Summary::ClientIp)?.height();
    let span = {
        let ts = attempts.column("first_syn_ns")?.i64()?;
        (ts.min(), ts.max())
    };
    let mut items = Vec::new();
    let mut first = vec![
        b(tot.attempts.to_string()),
        t(format!(
            " connection attempts from {clients} client address{}",
            if clients == 1 { "" } else { "es" }
        )),
    ];
    if let (Some(a), Some(z)) = span {
        first.push(t(format!(
            ", first SYNs from {} to {} ({})",
            utc(a),
            utc(z),
            ms(z - a)
        )));
    }
    items.push(first);
    let mut slow = vec![
        b(tot.slow.to_string()),
        t(format!(
            " slow or failed ({} of the attempts)",
            share(tot.share_permille)
        )),
    ];
    if let Some(worst) = worst_attempt(report) {
        slow.push(t("; worst delay "));
        slow.push(b(ms(worst.delay_ns)));
        slow.push(t(": "));
        slow.push(c(tuple(&worst.client, &worst.server)));
        slow.push(t(format!(" at {}, verdict ", utc(worst.first_syn_ts))));
        slow.push(c(worst.verdict.code()));
    } else if let Some(d) = tot.delay_max {
        slow.push(t(format!("; worst delay {}", ms(d))));
    }
    items.push(slow);
    let pct = |v: Option<i64>| v.map_or("-".to_string(), ms);
    items.push(vec![t(format!(
        "setup latency over the established attempts: p50 {}, p90 {}, p99 {}, max {}",
        pct(tot.p[0]),
        pct(tot.p[1]),
        pct(tot.p[2]),
        pct(tot.p[3])
    ))]);
    if let Some(v) = &report.verdicts {
        for (cause, n) in quick_signatures(&v.attempts) {
            items.push(vec![
                t(format!(
                    "also seen without a slow setup: {n} attempts with the signature "
                )),
                c(cause.code()),
            ]);
        }
        if v.sides != "both" {
            items.push(vec![t(
                "one capture only: the verdicts are inferred from the client side",
            )]);
        }
    }
    out.push(Block::List(items));
    out.push(Block::Chart(Chart::Latency));
    out.push(Block::Chart(Chart::OverTime));
    Ok(out)
}

/// The slow attempt that cost the most (lowest attempt id on a tie).
fn worst_attempt(report: &Report) -> Option<&AttemptVerdict> {
    report
        .verdicts
        .as_ref()?
        .attempts
        .iter()
        .filter(|a| a.verdict != Cause::Ok)
        .min_by(|a, b| b.delay_ns.cmp(&a.delay_ns).then(a.attempt.cmp(&b.attempt)))
}

/// Signatures of attempts that were not slow, with their counts, in `Cause` order.
fn quick_signatures(attempts: &[AttemptVerdict]) -> Vec<(Cause, usize)> {
    Cause::ALL
        .iter()
        .map(|&cause| {
            let n = attempts
                .iter()
                .filter(|a| a.verdict == Cause::Ok && a.signature == Some(cause))
                .count();
            (cause, n)
        })
        .filter(|&(_, n)| n > 0)
        .collect()
}

fn causes(report: &Report) -> Vec<Block> {
    let mut out = vec![Block::Heading(3, "Causes".into())];
    let Some(v) = &report.verdicts else {
        out.push(Block::Para(vec![t(
            "No verdicts: the client capture could not be judged.",
        )]));
        return out;
    };
    let rows = v
        .by_verdict
        .iter()
        .map(|r| {
            vec![
                vec![c(r.verdict.code())],
                vec![t(r.attempts.to_string())],
                vec![t(share(r.share_permille))],
                vec![t(ms(r.delay_total_ns))],
                vec![t(ms(r.delay_max_ns))],
                vec![t(r.text)],
            ]
        })
        .collect();
    out.push(Block::Table {
        header: vec![
            "verdict",
            "attempts",
            "share",
            "delay total",
            "delay max",
            "meaning",
        ],
        numeric: vec![false, true, true, true, true, false],
        rows,
    });
    out.push(Block::Chart(Chart::Verdicts));
    let (client_file, rs_file) = match &report.pairing {
        Some(p) => (p.client_file.as_str(), p.rs_file.as_str()),
        None => (
            report
                .captures
                .first()
                .map_or("client", |c| c.file.as_str()),
            "rs",
        ),
    };
    for row in v.by_verdict.iter().filter(|r| r.verdict != Cause::Ok) {
        out.push(Block::Heading(
            4,
            format!("{} ({} attempts)", row.verdict.code(), row.attempts),
        ));
        out.push(Block::Para(vec![t(format!("{}.", row.verdict.text()))]));
        let mut these: Vec<&AttemptVerdict> = v
            .attempts
            .iter()
            .filter(|a| a.verdict == row.verdict)
            .collect();
        these.sort_by(|a, b| b.delay_ns.cmp(&a.delay_ns).then(a.attempt.cmp(&b.attempt)));
        for a in these.iter().take(EXAMPLES_PER_CAUSE) {
            // The explanation starts with the tuple.
            let mut line = vec![b(utc(a.first_syn_ts)), t(": "), t(a.explanation.clone())];
            for (cl, sv) in &a.rs_tuples {
                line.push(t("; on the RS side as "));
                line.push(c(tuple(cl, sv)));
            }
            out.push(Block::Para(line));
            if !a.evidence.is_empty() {
                out.push(Block::Table {
                    header: vec!["file", "frame", "time (client clock)", "packet"],
                    numeric: vec![false, true, false, false],
                    rows: a
                        .evidence
                        .iter()
                        .map(|e| {
                            vec![
                                vec![c(match e.side {
                                    Side::Client => client_file,
                                    Side::Rs => rs_file,
                                })],
                                vec![t(e.frame.to_string())],
                                vec![t(utc(e.ts))],
                                vec![t(e.what)],
                            ]
                        })
                        .collect(),
                });
            }
        }
        if these.len() > EXAMPLES_PER_CAUSE {
            out.push(Block::Para(vec![t(format!(
                "... and {} more (every attempt is in attempts.csv).",
                these.len() - EXAMPLES_PER_CAUSE
            ))]));
        }
    }
    out
}

fn nat_and_clock(report: &Report) -> Vec<Block> {
    let mut out = vec![Block::Heading(3, "NAT mapping and clocks".into())];
    let Some(p) = &report.pairing else {
        out.push(Block::Para(vec![t(
            "One capture: no NAT mapping or clock estimate (give the real-server side's capture as the second file).",
        )]));
        return out;
    };
    let mut line = vec![t(format!(
        "{} of {} client attempts found on the real-server side ({} by TSval, {} by time); {} attempts in the RS capture.",
        p.matched_attempts, p.client_attempts, p.matched_by_tsval, p.matched_by_time, p.rs_attempts
    ))];
    if p.pre_nat_copies > 0 {
        line.push(t(format!(
            " {} RS-side attempts on a client's own 4-tuple (pre-NAT copies) were ignored.",
            p.pre_nat_copies
        )));
    }
    out.push(Block::Para(line));
    let mut rows = Vec::new();
    for s in &p.nat.services {
        for (be, n) in &s.backends {
            rows.push(vec![
                vec![t("VIP "), c(s.vip.to_string())],
                vec![t("real server "), c(be.to_string())],
                vec![t(n.to_string())],
            ]);
        }
    }
    for (cl, rs, n) in &p.nat.snat {
        rows.push(vec![
            vec![t("client "), c(cl.to_string())],
            vec![t("source "), c(rs.to_string())],
            vec![t(n.to_string())],
        ]);
    }
    rows.push(vec![
        vec![t("client ports")],
        vec![t(format!(
            "kept {} / rewritten {}",
            p.nat.ports_kept, p.nat.ports_rewritten
        ))],
        vec![],
    ]);
    out.push(Block::Table {
        header: vec!["client side", "seen on the real-server side", "attempts"],
        numeric: vec![false, false, true],
        rows,
    });
    let clock = &p.clock;
    if clock.segments.is_empty() {
        out.push(Block::Para(vec![t(
            "Clock: no handshake was seen on both sides, so RS times are shown as recorded.",
        )]));
    } else {
        let mut items = Vec::new();
        for (i, s) in clock.segments.iter().enumerate() {
            let from = if i == 0 {
                String::new()
            } else {
                format!(" from {}", utc(s.from_ns))
            };
            items.push(vec![t(format!(
                "RS clock{from} = client clock {}{} ± {}, skew {} ppb ({} min-delay samples of {} handshakes)",
                if s.offset_ns < 0 { "- " } else { "+ " },
                ms(s.offset_ns.abs()),
                ms(s.error_ns),
                s.skew_ppb,
                s.samples,
                clock.exchanges
            ))]);
        }
        for (at, size) in &clock.steps {
            items.push(vec![t(format!(
                "clock step of {} at {} (client clock)",
                ms(*size),
                utc(*at)
            ))]);
        }
        out.push(Block::Para(vec![t(
            "Clock estimate (each handshake seen on both sides is an NTP exchange); every time above is on the client's clock:",
        )]));
        out.push(Block::List(items));
    }
    out
}

fn remedies(report: &Report) -> Vec<Block> {
    let mut out = vec![Block::Heading(3, "What to do".into())];
    let rows: Vec<_> = report
        .verdicts
        .iter()
        .flat_map(|v| &v.by_verdict)
        .filter(|r| r.verdict != Cause::Ok && !r.remedies.is_empty())
        .collect();
    if rows.is_empty() {
        out.push(Block::Para(vec![t(
            "Nothing the captures point at: no slow attempt with a known remedy.",
        )]));
    }
    for r in rows {
        out.push(Block::Para(vec![t("For "), c(r.verdict.code()), t(":")]));
        out.push(Block::List(
            r.remedies
                .iter()
                .map(|m| vec![t(format!("{} (side effect: {})", m.fix, m.side_effect))])
                .collect(),
        ));
    }
    out
}
