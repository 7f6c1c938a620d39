//! Terminal renderer: the summary an on-call engineer reads first (comfy-table).

use super::summary;
use super::{PairResult, PairingReport, Report};
use crate::capture::CaptureReport;
use crate::units::{ms, utc};
use crate::vantage::Vantage;
use crate::verdict::Cause;
use crate::verdict::VerdictRow;
use crate::verdict::{VerdictReport, attempt_evidence};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use std::io::{self, Write};

/// Options of the terminal summary.
#[derive(Clone, Copy, Debug)]
pub struct TableOptions {
    /// How many of the slowest attempts to list.
    pub top: usize,
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(Cell::new));
    t
}

fn right(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

/// Writes the summary of every capture, then the unreadable files, the pairing and the
/// verdicts. With several pairs: a section like that per pair, then the verdicts of all
/// pairs together.
pub fn write(report: &Report, opts: TableOptions, mut out: impl Write) -> io::Result<()> {
    if report.pairs.len() <= 1 {
        let captures: Vec<&CaptureReport> = report.captures.iter().collect();
        let unreadable: Vec<_> = report.unreadable.iter().collect();
        return pair_body(
            report,
            report.pairs.first(),
            &captures,
            &unreadable,
            opts,
            &mut out,
        );
    }
    if shows_vantage(report) {
        vantage(report, &mut out)?;
        writeln!(out)?;
    }
    for (i, p) in report.pairs.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        match &p.rs_file {
            Some(rs) => writeln!(
                out,
                "=== pair {}: {} (client side) with {rs} (real-server side)",
                p.name, p.client_file
            )?,
            None => writeln!(
                out,
                "=== pair {}: {} (client side only)",
                p.name, p.client_file
            )?,
        }
        pair_body(
            report,
            Some(p),
            &report.captures_of(p),
            &report.unreadable_of(p),
            opts,
            &mut out,
        )?;
        if p.verdicts.is_none() {
            writeln!(out, "not judged: a capture of this pair could not be read")?;
        }
    }
    writeln!(out)?;
    overall(report, &mut out)
}

/// The captures of one pair, its unreadable files, its pairing and its verdicts.
fn pair_body(
    report: &Report,
    pair: Option<&PairResult>,
    captures: &[&CaptureReport],
    unreadable: &[&crate::read::ReadError],
    opts: TableOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    for (i, cap) in captures.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        capture(cap, report.slow_threshold_ns, opts, out)?;
    }
    for e in unreadable {
        writeln!(out, "error: {e}")?;
    }
    if report.pairs.len() <= 1 && shows_vantage(report) {
        writeln!(out)?;
        vantage(report, out)?;
    }
    if let Some(p) = pair.and_then(|p| p.pairing.as_ref()) {
        writeln!(out)?;
        pairing(p, out)?;
    }
    if let Some(v) = pair.and_then(|p| p.verdicts.as_ref()) {
        writeln!(out)?;
        verdicts(report, v, opts, out)?;
    }
    Ok(())
}

/// Whether the report shows what each capture saw: for a set of several captures, or a
/// node capture.
fn shows_vantage(report: &Report) -> bool {
    let points = &report.vantage_points;
    points.len() > 1 || points.iter().any(|p| p.vantage == Vantage::Node)
}

/// What each capture of a set saw of the NAT.
fn vantage(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let points = &report.vantage_points;
    writeln!(
        out,
        "== what each capture saw (the same SYN on two 4-tuples is one packet before and after NAT)"
    )?;
    let mut t = table(&[
        "capture",
        "side",
        "attempts pre/post NAT",
        "SYNs pre/post NAT",
        "judged here",
        "copies",
        "clock",
    ]);
    for p in points {
        t.add_row(vec![
            Cell::new(&p.file),
            Cell::new(p.vantage.code()),
            right(format!("{} / {}", p.pre_nat_attempts, p.post_nat_attempts)),
            right(format!("{} / {}", p.pre_nat_syns, p.post_nat_syns)),
            right(p.judged),
            right(p.copies),
            Cell::new(summary::vantage_clock(p)),
        ]);
    }
    writeln!(out, "{t}")?;
    for p in points.iter().filter(|p| !p.interfaces.is_empty()) {
        let each: Vec<String> = p
            .interfaces
            .iter()
            .map(|i| format!("#{} {} / {}", i.iface, i.pre_nat_syns, i.post_nat_syns))
            .collect();
        writeln!(
            out,
            "{} by interface, SYNs pre/post NAT: {}",
            p.file,
            each.join(", ")
        )?;
    }
    Ok(())
}

/// The verdicts of every pair together, with each pair's share of each verdict.
fn overall(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let o = &report.overall;
    writeln!(
        out,
        "=== all {} pairs: verdicts (slow: setup >= {}) over {} attempts of {} judged pairs",
        o.pairs,
        ms(report.slow_threshold_ns),
        o.attempts,
        o.pairs_judged
    )?;
    let mut t = table(&[
        "verdict",
        "attempts",
        "share",
        "delay total",
        "delay max",
        "by pair",
    ]);
    for r in &o.by_verdict {
        t.add_row(verdict_cells(r, summary::by_pair(report, r.verdict)));
    }
    writeln!(out, "{t}")?;
    let not_judged = summary::not_judged(report);
    if !not_judged.is_empty() {
        writeln!(
            out,
            "not judged (a capture could not be read): {}",
            not_judged.join(", ")
        )?;
    }
    Ok(())
}

/// A verdict row's cells, with `last` as the last column.
fn verdict_cells(r: &VerdictRow, last: impl Into<String>) -> Vec<Cell> {
    vec![
        Cell::new(r.verdict.code()),
        right(r.attempts),
        right(format!(
            "{}.{}%",
            r.share_permille / 10,
            r.share_permille % 10
        )),
        right(ms(r.delay_total_ns)),
        right(ms(r.delay_max_ns)),
        Cell::new(last.into()),
    ]
}

fn pairing(p: &PairingReport, out: &mut impl Write) -> io::Result<()> {
    if p.client_file == p.rs_file {
        writeln!(
            out,
            "== pairing the two legs of {}: before the NAT (client side) with after it (real-server side)",
            p.client_file
        )?;
    } else {
        writeln!(
            out,
            "== pairing {} (client side) with {} (real-server side)",
            p.client_file, p.rs_file
        )?;
    }
    writeln!(
        out,
        "   {} of {} client attempts found on the RS side ({} by TSval, {} by time); {} RS attempts",
        p.matched_attempts, p.client_attempts, p.matched_by_tsval, p.matched_by_time, p.rs_attempts
    )?;
    if p.pre_nat_copies > 0 {
        writeln!(
            out,
            "   {} RS-side attempts on the client's own 4-tuple (pre-NAT copies) ignored",
            p.pre_nat_copies
        )?;
    }
    let mut t = table(&["NAT mapping", "seen on the RS side", "attempts"]);
    let cell = |(words, code): summary::NatCell| Cell::new(words + &code.unwrap_or_default());
    for row in summary::nat_rows(&p.nat) {
        t.add_row(vec![
            cell(row.client_side),
            cell(row.rs_side),
            row.attempts.map_or(Cell::new(""), right),
        ]);
    }
    writeln!(out, "{t}")?;
    let c = &p.clock;
    if c.segments.is_empty() {
        writeln!(
            out,
            "clock: no handshake seen on both sides; RS times shown as recorded"
        )?;
    } else {
        for (i, s) in c.segments.iter().enumerate() {
            writeln!(
                out,
                "clock{}: RS clock = client clock {}",
                summary::clock_from(c, i),
                summary::clock_estimate(c, s)
            )?;
        }
        for &(at, size) in &c.steps {
            writeln!(out, "{}", summary::clock_step(at, size))?;
        }
        writeln!(out, "all times below are on the client's clock")?;
    }
    Ok(())
}

fn verdicts(
    report: &Report,
    v: &VerdictReport,
    opts: TableOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    let slow_ns = report.slow_threshold_ns;
    let sides = v.sides.text();
    writeln!(
        out,
        "== verdicts (slow: setup >= {}), from {sides}",
        ms(slow_ns)
    )?;
    let mut t = table(&[
        "verdict",
        "attempts",
        "share",
        "delay total",
        "delay max",
        "meaning",
    ]);
    for r in &v.by_verdict {
        t.add_row(verdict_cells(r, r.text));
    }
    writeln!(out, "{t}")?;
    for (cause, n) in summary::quick_signatures(v) {
        writeln!(
            out,
            "also seen without a slow setup: {n} attempts with the signature {}",
            cause.code()
        )?;
    }
    let worst = summary::worst(v);
    if worst.is_empty() {
        return Ok(());
    }
    writeln!(out, "worst attempts:")?;
    for a in worst.iter().take(opts.top) {
        writeln!(out, "- [{}] {}", a.verdict.code(), a.explanation)?;
        let ev: Vec<String> = a
            .evidence
            .iter()
            .map(|e| summary::evidence(report, e))
            .collect();
        writeln!(
            out,
            "    first SYN {}; evidence: {}",
            utc(a.first_syn_ts),
            ev.join(", ")
        )?;
        for t in &a.rs_tuples {
            writeln!(out, "    on the RS side as {t}")?;
        }
        if !a.path.is_empty() {
            writeln!(
                out,
                "    where each SYN was seen: {}",
                summary::path(&a.path)
            )?;
        }
    }
    for row in v
        .by_verdict
        .iter()
        .filter(|r| r.verdict != Cause::Ok && !r.remedies.is_empty())
    {
        writeln!(out, "what to do about {}:", row.verdict.code())?;
        for r in &row.remedies {
            writeln!(out, "  * {} (side effect: {})", r.fix, r.side_effect)?;
        }
        for k in row.checks {
            writeln!(out, "  confirm on the {}: {}", k.on, k.command)?;
            writeln!(out, "      look for: {}", k.look_for)?;
        }
    }
    Ok(())
}

fn capture(
    cap: &CaptureReport,
    slow_ns: i64,
    opts: TableOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    let format = match cap.format {
        Some(f) => format!("{f:?}").to_lowercase(),
        None => "unknown".into(),
    };
    let gz = if cap.gzip { ", gzip" } else { "" };
    writeln!(out, "== {} ({format}{gz})", cap.file)?;
    if let (Some(a), Some(b)) = (cap.first_ts, cap.last_ts) {
        writeln!(out, "   {} .. {} ({})", utc(a), utc(b), ms(b - a))?;
    }
    if let Some(p) = &cap.read_problem {
        let level = if p.is_warning() { "warning" } else { "error" };
        writeln!(out, "{level}: {p}")?;
    }
    if !cap.parts.is_empty() {
        writeln!(
            out,
            "   {} rotated files, read as one capture (frames numbered on through them):",
            cap.parts.len()
        )?;
        let mut t = table(&[
            "file",
            "frames",
            "first .. last packet",
            "since the previous file",
        ]);
        for p in &cap.parts {
            let frames = match p.frames {
                0 => "none".to_string(),
                n => format!("{} .. {}", p.first_frame, p.first_frame + n - 1),
            };
            let span = match (p.first_ts, p.last_ts) {
                (Some(a), Some(b)) => format!("{} .. {}", utc(a), utc(b)),
                _ => String::new(),
            };
            let gap = match p.gap_ns {
                Some(g) if g < 0 => format!("OVERLAP {}", ms(-g)),
                Some(g) => format!("gap {}", ms(g)),
                None => String::new(),
            };
            t.add_row(vec![
                Cell::new(&p.file),
                right(frames),
                Cell::new(span),
                right(gap),
            ]);
        }
        writeln!(out, "{t}")?;
    }

    let mut t = table(&["frames", "count"]);
    t.add_row(vec![Cell::new("read"), right(cap.frames.read)]);
    t.add_row(vec![
        Cell::new("analysed (TCP)"),
        right(cap.frames.analysed),
    ]);
    t.add_row(vec![Cell::new("skipped"), right(cap.frames.skipped)]);
    for s in &cap.skipped_by_reason {
        t.add_row(vec![
            Cell::new(format!("  {} ({})", s.reason, s.text)),
            right(s.frames),
        ]);
    }
    if cap.blocks.unknown_blocks > 0 {
        t.add_row(vec![
            Cell::new("pcapng blocks of unknown type (skipped)"),
            right(cap.blocks.unknown_blocks),
        ]);
    }
    writeln!(out, "{t}")?;
    for note in cap.limit_notes() {
        writeln!(out, "note: {note}")?;
    }

    if !cap.connection_states.is_empty() {
        let mut t = table(&["conn_state", "meaning", "connections"]);
        for s in &cap.connection_states {
            t.add_row(vec![Cell::new(s.code), Cell::new(s.text), right(s.count)]);
        }
        writeln!(out, "{t}")?;
    }
    if !cap.flag_counts.is_empty() {
        let mut t = table(&["packet flag", "meaning", "packets"]);
        for f in &cap.flag_counts {
            t.add_row(vec![Cell::new(f.code), Cell::new(f.text), right(f.count)]);
        }
        writeln!(out, "{t}")?;
    }

    let s = &cap.setup;
    let opt_ms = |v: Option<i64>| v.map_or("-".to_string(), ms);
    writeln!(
        out,
        "connection setup (first SYN -> SYN-ACK): {} attempts, {} established, {} with SYN retries, {} slow (>= {})",
        s.attempts,
        s.established,
        s.with_retries,
        s.slow,
        ms(slow_ns)
    )?;
    writeln!(
        out,
        "  p50 {}   p90 {}   p99 {}   max {}",
        opt_ms(s.p50_ns),
        opt_ms(s.p90_ns),
        opt_ms(s.p99_ns),
        opt_ms(s.max_ns)
    )?;

    let notable = summary::notable_attempts(cap, slow_ns, opts.top);
    if !notable.is_empty() {
        let mut t = table(&[
            "attempt",
            "first SYN",
            "tries (gaps)",
            "setup",
            "outcome",
            "evidence frames",
        ]);
        for a in notable {
            let gaps: Vec<String> = a
                .syns
                .iter()
                .skip(1)
                .map(|s| {
                    format!(
                        "{} {}",
                        ms(s.gap_ns.unwrap_or(0)),
                        s.gap_class.map_or("", |c| c.code())
                    )
                })
                .collect();
            let ev: Vec<String> = attempt_evidence(a)
                .iter()
                .map(|e| format!("{} #{}", e.what, e.frame))
                .collect();
            t.add_row(vec![
                Cell::new(a.tuple().to_string()),
                Cell::new(utc(a.first_syn().ts)),
                Cell::new(if gaps.is_empty() {
                    "1".to_string()
                } else {
                    format!("{} ({})", a.tries(), gaps.join(", "))
                }),
                right(a.setup_ns.map_or("-".to_string(), ms)),
                Cell::new(a.outcome.code()),
                Cell::new(ev.join(", ")),
            ]);
        }
        writeln!(out, "slowest attempts:")?;
        writeln!(out, "{t}")?;
    }
    Ok(())
}

/// The connections of a capture, one row each (`pcapdiag flows`).
pub fn write_flows(cap: &CaptureReport, mut out: impl Write) -> io::Result<()> {
    let mut t = table(&[
        "conn",
        "client -> server",
        "state",
        "history",
        "packets",
        "bytes",
        "first",
        "duration",
        "reuses",
    ]);
    for c in &cap.connections {
        let reuse = c
            .predecessor
            .map_or(String::new(), |p| match p.since_close_ns {
                Some(age) => format!("conn {} closed {} before", p.conn, ms(age)),
                None => format!(
                    "conn {}, last packet {} before",
                    p.conn,
                    ms(p.since_last_packet_ns)
                ),
            });
        t.add_row(vec![
            right(c.id),
            Cell::new(c.tuple().to_string()),
            Cell::new(c.state.code()),
            Cell::new(c.history.as_str()),
            right(format!("{} / {}", c.packets[0], c.packets[1])),
            right(format!("{} / {}", c.bytes[0], c.bytes[1])),
            Cell::new(utc(c.first.ts)),
            right(ms(c.last.ts - c.first.ts)),
            Cell::new(reuse),
        ]);
    }
    writeln!(
        out,
        "== {}: {} connections",
        cap.file,
        cap.connections.len()
    )?;
    writeln!(out, "{t}")
}
