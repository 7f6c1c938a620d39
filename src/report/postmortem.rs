//! Postmortem: the content of the Markdown and HTML reports as one small document model
//! (headings, paragraphs, lists, tables, and where the charts go), so that both formats say
//! exactly the same thing. Built from the report and its [`summary`]; deterministic: no
//! time of "now", and every list in a stable order.

use super::summary::{self, Totals};
use super::{PairResult, Report};
use crate::units::{ms, utc};
use crate::verdict::{AttemptVerdict, Cause, Sides, VerdictRow};

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
    /// Level 2 for the report's title, 3 for sections, 4 below (with several pairs: 3 for
    /// each pair, 4 for its sections, 5 below).
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

/// The report as a document. With one pair: what happened, the causes, the NAT mapping
/// and clocks, what to do. With several: what happened over all pairs (with the charts),
/// then a section per pair (what happened, causes, NAT mapping and clocks), then what to
/// do.
pub fn build(report: &Report) -> Vec<Block> {
    let mut doc = vec![Block::Heading(
        2,
        "Slow TCP connection setups: what the captures show".into(),
    )];
    doc.extend(sources(report));
    if report.pairs.len() <= 1 {
        let pair = report.pairs.first();
        let totals = Totals::of(&summary::rows(report));
        doc.extend(what_happened(pair, &totals, 3, true));
        doc.extend(causes(report, pair, 3, true));
        doc.extend(nat_and_clock(pair, 3));
    } else {
        doc.extend(all_pairs(report, &Totals::of(&summary::rows(report))));
        for (i, pair) in report.pairs.iter().enumerate() {
            doc.push(Block::Heading(3, format!("Pair {}", pair.name)));
            let mut files = vec![t("Client side "), c(&pair.client_file)];
            if let Some(rs) = &pair.rs_file {
                files.push(t(", real-server side "));
                files.push(c(rs));
            }
            files.push(t("."));
            if pair.verdicts.is_none() {
                files.push(t(" Not judged: a capture of this pair could not be read."));
            }
            doc.push(Block::Para(files));
            let totals = Totals::of(&summary::pair_rows(report, i));
            doc.extend(what_happened(Some(pair), &totals, 4, false));
            doc.extend(causes(report, Some(pair), 4, false));
            doc.extend(nat_and_clock(Some(pair), 4));
        }
    }
    doc.extend(remedies(report));
    doc
}

fn sources(report: &Report) -> Vec<Block> {
    let mut items = Vec::new();
    for (i, cap) in report.captures.iter().enumerate() {
        let role = summary::role(report, i);
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
        for note in cap.limit_notes() {
            line.push(t(format!("; note: {note}")));
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

/// What happened over every pair together: the totals, the verdicts with each pair's
/// count, and the charts.
fn all_pairs(report: &Report, tot: &Totals) -> Vec<Block> {
    let o = &report.overall;
    let mut out = vec![Block::Heading(3, "What happened, all pairs".into())];
    let mut items = vec![vec![
        b(o.pairs.to_string()),
        t(format!(
            " capture pairs, {} judged; {} connection attempts",
            o.pairs_judged, tot.attempts
        )),
    ]];
    items.push(vec![
        b(tot.slow.to_string()),
        t(format!(
            " slow or failed ({} of the attempts)",
            share(tot.slow_permille)
        )),
    ]);
    let not_judged = summary::not_judged(report);
    if !not_judged.is_empty() {
        let mut line = vec![t("not judged (a capture could not be read): ")];
        for (i, name) in not_judged.iter().enumerate() {
            if i > 0 {
                line.push(t(", "));
            }
            line.push(c(*name));
        }
        items.push(line);
    }
    out.push(Block::List(items));
    let rows = o
        .by_verdict
        .iter()
        .map(|r| {
            let mut row = verdict_row(r);
            row.pop();
            row.push(vec![t(summary::by_pair(report, r.verdict))]);
            row
        })
        .collect();
    out.push(Block::Table {
        header: [&summary::VERDICT_COLUMNS[..], &["by pair"]].concat(),
        numeric: vec![false, true, true, true, true, false],
        rows,
    });
    out.push(Block::Chart(Chart::Latency));
    out.push(Block::Chart(Chart::OverTime));
    out.push(Block::Chart(Chart::Verdicts));
    out
}

/// A verdict row's cells: code, attempts, share, delays, meaning.
fn verdict_row(r: &VerdictRow) -> Vec<Line> {
    vec![
        vec![c(r.verdict.code())],
        vec![t(r.attempts.to_string())],
        vec![t(share(r.share_permille))],
        vec![t(ms(r.delay_total_ns))],
        vec![t(ms(r.delay_max_ns))],
        vec![t(r.text)],
    ]
}

/// What happened in one pair's `attempts` (every pair's, with one), under a heading of
/// `level`; with `charts`, where the latency charts go.
fn what_happened(pair: Option<&PairResult>, tot: &Totals, level: u8, charts: bool) -> Vec<Block> {
    let verdicts = pair.and_then(|p| p.verdicts.as_ref());
    let mut out = vec![Block::Heading(level, "What happened".into())];
    if tot.attempts == 0 {
        out.push(Block::Para(vec![t(
            "No TCP connection attempt (SYN) was seen in the client capture.",
        )]));
        return out;
    }
    let mut items = Vec::new();
    let mut first = vec![
        b(tot.attempts.to_string()),
        t(format!(
            " connection attempts from {} client address{}",
            tot.clients,
            if tot.clients == 1 { "" } else { "es" }
        )),
    ];
    if let Some((a, z)) = tot.span {
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
            share(tot.slow_permille)
        )),
    ];
    if let Some(worst) = verdicts.and_then(|v| summary::worst(v).first().copied()) {
        slow.push(t("; worst delay "));
        slow.push(b(ms(worst.delay_ns)));
        slow.push(t(": "));
        slow.push(c(worst.tuple().to_string()));
        slow.push(t(format!(" at {}, verdict ", utc(worst.first_syn_ts))));
        slow.push(c(worst.verdict.code()));
    } else if let Some(d) = tot.delay_max_ns {
        slow.push(t(format!("; worst delay {}", ms(d))));
    }
    items.push(slow);
    let pct = |v: Option<i64>| v.map_or("-".to_string(), ms);
    items.push(vec![t(format!(
        "setup latency over the established attempts: p50 {}, p90 {}, p99 {}, max {}",
        pct(tot.setup_p50_ns),
        pct(tot.setup_p90_ns),
        pct(tot.setup_p99_ns),
        pct(tot.setup_max_ns)
    ))]);
    if let Some(v) = verdicts {
        for (cause, n) in summary::quick_signatures(v) {
            items.push(vec![
                t(format!(
                    "also seen without a slow setup: {n} attempts with the signature "
                )),
                c(cause.code()),
            ]);
        }
        if v.sides != Sides::Both {
            items.push(vec![t(
                "one capture only: the verdicts are inferred from the client side",
            )]);
        }
    }
    out.push(Block::List(items));
    if charts {
        out.push(Block::Chart(Chart::Latency));
        out.push(Block::Chart(Chart::OverTime));
    }
    out
}

/// One pair's causes, under a heading of `level`; with `chart`, where the verdict chart
/// goes.
fn causes(report: &Report, pair: Option<&PairResult>, level: u8, chart: bool) -> Vec<Block> {
    let mut out = vec![Block::Heading(level, "Causes".into())];
    let Some(v) = pair.and_then(|p| p.verdicts.as_ref()) else {
        out.push(Block::Para(vec![t(
            "No verdicts: the client capture could not be judged.",
        )]));
        return out;
    };
    let rows = v.by_verdict.iter().map(verdict_row).collect();
    out.push(Block::Table {
        header: [&summary::VERDICT_COLUMNS[..], &["meaning"]].concat(),
        numeric: vec![false, true, true, true, true, false],
        rows,
    });
    if chart {
        out.push(Block::Chart(Chart::Verdicts));
    }
    let pair = pair.expect("verdicts come with a pair");
    let worst = summary::worst(v);
    for row in v.by_verdict.iter().filter(|r| r.verdict != Cause::Ok) {
        out.push(Block::Heading(
            level + 1,
            format!("{} ({} attempts)", row.verdict.code(), row.attempts),
        ));
        out.push(Block::Para(vec![t(format!("{}.", row.verdict.text()))]));
        let these: Vec<&AttemptVerdict> = worst
            .iter()
            .copied()
            .filter(|a| a.verdict == row.verdict)
            .collect();
        for a in these.iter().take(EXAMPLES_PER_CAUSE) {
            // The explanation starts with the tuple.
            let mut line = vec![
                b(utc(a.first_syn_ts)),
                t(": "),
                t(a.notes().explanation.clone()),
            ];
            if let Some(names) = summary::names_path(report, a) {
                line.push(t("; by name: "));
                line.push(t(names));
            }
            for rs_tuple in &a.rs_tuples {
                line.push(t("; on the RS side as "));
                line.push(c(rs_tuple.to_string()));
            }
            if !a.notes().path.is_empty() {
                line.push(t("; where each SYN was seen: "));
                line.push(t(summary::path(&a.notes().path)));
            }
            out.push(Block::Para(line));
            if !a.notes().evidence.is_empty() {
                out.push(Block::Table {
                    header: vec!["file", "frame", "time (client clock)", "packet"],
                    numeric: vec![false, true, false, false],
                    rows: a
                        .notes()
                        .evidence
                        .iter()
                        .map(|e| {
                            vec![
                                vec![c(summary::evidence_file(report, pair, e))],
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

/// One pair's NAT mapping and clock estimate, under a heading of `level`.
fn nat_and_clock(pair: Option<&PairResult>, level: u8) -> Vec<Block> {
    let mut out = vec![Block::Heading(level, "NAT mapping and clocks".into())];
    let Some(p) = pair.and_then(|p| p.pairing.as_ref()) else {
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
    let cell = |(words, code): summary::NatCell| {
        let mut line = vec![t(words)];
        line.extend(code.map(c));
        line
    };
    let rows = summary::nat_rows(&p.nat)
        .into_iter()
        .map(|row| {
            vec![
                cell(row.client_side),
                cell(row.rs_side),
                row.attempts.map_or(vec![], |n| vec![t(n.to_string())]),
            ]
        })
        .collect();
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
            items.push(vec![t(format!(
                "RS clock{} = client clock {}",
                summary::clock_from(clock, i),
                summary::clock_estimate(clock, s)
            ))]);
        }
        for &(at, size) in &clock.steps {
            items.push(vec![t(summary::clock_step(at, size))]);
        }
        out.push(Block::Para(vec![t(
            "Clock estimate (each handshake seen on both sides is an NTP exchange); every time above is on the client's clock:",
        )]));
        out.push(Block::List(items));
    }
    out
}

/// The remedies the evidence of every pair supports.
fn remedies(report: &Report) -> Vec<Block> {
    let mut out = vec![Block::Heading(3, "What to do".into())];
    let by_verdict: &[VerdictRow] = if report.pairs.len() <= 1 {
        report
            .pairs
            .first()
            .and_then(|p| p.verdicts.as_ref())
            .map_or(&[], |v| &v.by_verdict)
    } else {
        &report.overall.by_verdict
    };
    let rows: Vec<_> = by_verdict
        .iter()
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
        if !r.checks.is_empty() {
            out.push(Block::Para(vec![t("To confirm it:")]));
            out.push(Block::List(
                r.checks
                    .iter()
                    .map(|k| {
                        vec![
                            t(format!("on the {}: ", k.on)),
                            c(k.command),
                            t(format!(": {}", k.look_for)),
                        ]
                    })
                    .collect(),
            ));
        }
    }
    out
}
