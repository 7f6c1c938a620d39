//! Terminal renderer: the summary an on-call engineer reads first (comfy-table).

use super::{CaptureReport, Report, ms, tuple, utc};
use crate::flows::Outcome;
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

/// Writes the summary of every capture, then the unreadable files.
pub fn write(report: &Report, opts: TableOptions, mut out: impl Write) -> io::Result<()> {
    for (i, cap) in report.captures.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        capture(cap, report.slow_threshold_ns, opts, &mut out)?;
    }
    for e in &report.unreadable {
        writeln!(out, "error: {e}")?;
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

    let slow: Vec<_> = cap
        .slowest(opts.top)
        .into_iter()
        .filter(|a| {
            a.setup_ns.is_none_or(|s| s >= slow_ns) || a.tries() > 1 || a.stale_ack.is_some()
        })
        .collect();
    if !slow.is_empty() {
        let mut t = table(&[
            "attempt",
            "first SYN",
            "tries (gaps)",
            "setup",
            "outcome",
            "evidence frames",
        ]);
        for a in slow {
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
            let mut ev = vec![format!("SYN #{}", a.first_syn().frame)];
            if let Some(p) = a.stale_ack {
                ev.push(format!("stale ACK #{}", p.frame));
            }
            if let Some(p) = a.stale_rst {
                ev.push(format!("RST #{}", p.frame));
            }
            for s in a.syns.iter().skip(1) {
                ev.push(format!("SYN #{}", s.pkt.frame));
            }
            if let Some(p) = a.refused {
                ev.push(format!("RST #{}", p.frame));
            }
            if let Some(p) = a.synack {
                ev.push(format!("SYN-ACK #{}", p.frame));
            }
            let outcome = match a.outcome {
                Outcome::Established => "established",
                Outcome::Refused => "refused",
                Outcome::Reset => "reset",
                Outcome::NoAnswer => "no answer",
            };
            t.add_row(vec![
                Cell::new(tuple(&a.client, &a.server)),
                Cell::new(utc(a.first_syn().ts)),
                Cell::new(if gaps.is_empty() {
                    "1".to_string()
                } else {
                    format!("{} ({})", a.tries(), gaps.join(", "))
                }),
                right(a.setup_ns.map_or("-".to_string(), ms)),
                Cell::new(outcome),
                Cell::new(ev.join(", ")),
            ]);
        }
        writeln!(out, "slowest attempts:")?;
        writeln!(out, "{t}")?;
    }
    Ok(())
}
