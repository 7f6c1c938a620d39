//! The terminal's detail (`--verbose`, after [`super::screen`]): every capture's frames,
//! connection states, packet flags and slowest attempts; what each capture of a set saw
//! of the NAT; each pairing's NAT mapping and clock; each pair's verdict counts. Also
//! `pcapdiag flows`. Tables are arranged to the screen's width (comfy-table).

use super::screen::ScreenOptions;
use super::summary;
use super::{PairResult, PairingReport, Report};
use crate::capture::CaptureReport;
use crate::units::{ms, utc};
use crate::vantage::Vantage;
use crate::verdict::VerdictReport;
use crate::verdict::VerdictRow;
use crate::verdict::attempt_evidence;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use std::io::{self, Write};

fn table(header: &[&str], opts: &ScreenOptions) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(opts.width.max(ScreenOptions::MIN_WIDTH))
        .force_no_tty()
        .set_header(header.iter().map(Cell::new));
    t
}

/// A line of text wrapped to the screen's width (continuations indented).
fn say(out: &mut impl Write, opts: &ScreenOptions, text: &str) -> io::Result<()> {
    super::screen::wrap(out, opts.width, "", "    ", text)
}

fn right(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

/// Writes the detail of every capture, then what each capture of a set saw, then each
/// pair's pairing and verdict counts (a section per pair when there are several).
pub fn write(report: &Report, opts: &ScreenOptions, out: &mut impl Write) -> io::Result<()> {
    for (i, cap) in report.captures.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        capture(cap, report.slow_threshold_ns, opts, out)?;
    }
    if shows_vantage(report) {
        writeln!(out)?;
        vantage(report, opts, out)?;
    }
    for p in &report.pairs {
        pair(report, p, opts, out)?;
    }
    Ok(())
}

/// A pair's pairing and verdict counts.
fn pair(
    report: &Report,
    p: &PairResult,
    opts: &ScreenOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    if report.pairs.len() > 1 {
        writeln!(out)?;
        match &p.rs_file {
            Some(rs) => say(
                out,
                opts,
                &format!(
                    "=== pair {}: {} (client side) with {rs} (real-server side)",
                    p.name, p.client_file
                ),
            )?,
            None => say(
                out,
                opts,
                &format!("=== pair {}: {} (client side only)", p.name, p.client_file),
            )?,
        }
        if p.verdicts.is_none() {
            say(
                out,
                opts,
                "not judged: a capture of this pair could not be read",
            )?;
        }
    }
    if let Some(pairing) = &p.pairing {
        writeln!(out)?;
        self::pairing(pairing, opts, out)?;
    }
    if let Some(v) = &p.verdicts {
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
fn vantage(report: &Report, opts: &ScreenOptions, out: &mut impl Write) -> io::Result<()> {
    let points = &report.vantage_points;
    say(
        out,
        opts,
        "== what each capture saw (the same SYN on two 4-tuples is one packet before and after NAT)",
    )?;
    let mut t = table(
        &[
            "capture",
            "side",
            "attempts pre/post NAT",
            "SYNs pre/post NAT",
            "judged here",
            "copies",
            "clock",
        ],
        opts,
    );
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
        say(
            out,
            opts,
            &format!(
                "{} by interface, SYNs pre/post NAT: {}",
                p.file,
                each.join(", ")
            ),
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

fn pairing(p: &PairingReport, opts: &ScreenOptions, out: &mut impl Write) -> io::Result<()> {
    if p.client_file == p.rs_file {
        say(
            out,
            opts,
            &format!(
                "== pairing the two legs of {}: before the NAT (client side) with after it (real-server side)",
                p.client_file
            ),
        )?;
    } else {
        say(
            out,
            opts,
            &format!(
                "== pairing {} (client side) with {} (real-server side)",
                p.client_file, p.rs_file
            ),
        )?;
    }
    say(
        out,
        opts,
        &format!(
            "   {} of {} client attempts found on the RS side ({} by TSval, {} by time); {} RS attempts",
            p.matched_attempts,
            p.client_attempts,
            p.matched_by_tsval,
            p.matched_by_time,
            p.rs_attempts
        ),
    )?;
    if p.pre_nat_copies > 0 {
        say(
            out,
            opts,
            &format!(
                "   {} RS-side attempts on the client's own 4-tuple (pre-NAT copies) ignored",
                p.pre_nat_copies
            ),
        )?;
    }
    let mut t = table(&["NAT mapping", "seen on the RS side", "attempts"], opts);
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
        say(
            out,
            opts,
            "clock: no handshake seen on both sides; RS times shown as recorded",
        )?;
    } else {
        for (i, s) in c.segments.iter().enumerate() {
            say(
                out,
                opts,
                &format!(
                    "clock{}: RS clock = client clock {}",
                    summary::clock_from(c, i),
                    summary::clock_estimate(c, s)
                ),
            )?;
        }
        for &(at, size) in &c.steps {
            say(out, opts, &summary::clock_step(at, size))?;
        }
        say(out, opts, "all times below are on the client's clock")?;
    }
    Ok(())
}

fn verdicts(
    report: &Report,
    v: &VerdictReport,
    opts: &ScreenOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    say(
        out,
        opts,
        &format!(
            "== verdicts (slow: setup >= {}), from {}",
            ms(report.slow_threshold_ns),
            v.sides.text()
        ),
    )?;
    let mut t = table(
        &[&summary::VERDICT_COLUMNS[..], &["meaning"]].concat(),
        opts,
    );
    for r in &v.by_verdict {
        t.add_row(verdict_cells(r, r.text));
    }
    writeln!(out, "{t}")
}

fn capture(
    cap: &CaptureReport,
    slow_ns: i64,
    opts: &ScreenOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    let format = match cap.format {
        Some(f) => format!("{f:?}").to_lowercase(),
        None => "unknown".into(),
    };
    let gz = if cap.gzip { ", gzip" } else { "" };
    say(out, opts, &format!("== {} ({format}{gz})", cap.file))?;
    if let (Some(a), Some(b)) = (cap.first_ts, cap.last_ts) {
        say(
            out,
            opts,
            &format!("   {} .. {} ({})", utc(a), utc(b), ms(b - a)),
        )?;
    }
    if let Some(p) = &cap.read_problem {
        let level = if p.is_warning() { "warning" } else { "error" };
        say(out, opts, &format!("{level}: {p}"))?;
    }
    if !cap.parts.is_empty() {
        say(
            out,
            opts,
            &format!(
                "   {} rotated files, read as one capture (frames numbered on through them):",
                cap.parts.len()
            ),
        )?;
        let mut t = table(
            &[
                "file",
                "frames",
                "first .. last packet",
                "since the previous file",
            ],
            opts,
        );
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

    let mut t = table(&["frames", "count"], opts);
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
    let f = &cap.fragments;
    for (what, n) in [
        ("IP datagrams reassembled from fragments", f.reassembled),
        (
            "  first fragments cut by the snaplen, analysed alone",
            f.cut_first,
        ),
        ("  datagrams dropped: fragments overlapped", f.overlapping),
        ("  datagrams dropped: fragments past the end", f.invalid),
        ("  datagrams dropped: not complete within 30 s", f.timed_out),
        ("  datagrams dropped: too many at once", f.evicted),
        ("  datagrams incomplete at the end", f.unfinished),
    ] {
        if n > 0 {
            t.add_row(vec![Cell::new(what), right(n)]);
        }
    }
    if cap.blocks.unknown_blocks > 0 {
        t.add_row(vec![
            Cell::new("pcapng blocks of unknown type (skipped)"),
            right(cap.blocks.unknown_blocks),
        ]);
    }
    writeln!(out, "{t}")?;
    for note in cap.limit_notes() {
        say(out, opts, &format!("note: {note}"))?;
    }

    if !cap.connection_states.is_empty() {
        let mut t = table(&["conn_state", "meaning", "connections"], opts);
        for s in &cap.connection_states {
            t.add_row(vec![Cell::new(s.code), Cell::new(s.text), right(s.count)]);
        }
        writeln!(out, "{t}")?;
    }
    if !cap.flag_counts.is_empty() {
        let mut t = table(&["packet flag", "meaning", "packets"], opts);
        for f in &cap.flag_counts {
            t.add_row(vec![Cell::new(f.code), Cell::new(f.text), right(f.count)]);
        }
        writeln!(out, "{t}")?;
    }

    let s = &cap.setup;
    let opt_ms = |v: Option<i64>| v.map_or("-".to_string(), ms);
    say(
        out,
        opts,
        &format!(
            "connection setup (first SYN -> SYN-ACK): {} attempts, {} established, {} with SYN retries, {} slow (>= {})",
            s.attempts,
            s.established,
            s.with_retries,
            s.slow,
            ms(slow_ns)
        ),
    )?;
    say(
        out,
        opts,
        &format!(
            "  p50 {}   p90 {}   p99 {}   max {}",
            opt_ms(s.p50_ns),
            opt_ms(s.p90_ns),
            opt_ms(s.p99_ns),
            opt_ms(s.max_ns)
        ),
    )?;

    let notable = summary::notable_attempts(cap, slow_ns, opts.top);
    if !notable.is_empty() {
        let mut t = table(
            &[
                "attempt",
                "first SYN",
                "tries (gaps)",
                "setup",
                "outcome",
                "evidence frames",
            ],
            opts,
        );
        for a in notable {
            let gaps: Vec<String> = (1..a.tries())
                .map(|i| {
                    format!(
                        "{} {}",
                        ms(a.gap_ns(i).unwrap_or(0)),
                        a.syns[i].gap_class.map_or("", |c| c.code())
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
                right(a.setup_ns().map_or("-".to_string(), ms)),
                Cell::new(a.outcome.code()),
                Cell::new(ev.join(", ")),
            ]);
        }
        say(out, opts, "slowest attempts:")?;
        writeln!(out, "{t}")?;
    }
    Ok(())
}

/// The connections of a capture, one row each (`pcapdiag flows`).
pub fn write_flows(cap: &CaptureReport, width: u16, mut out: impl Write) -> io::Result<()> {
    let opts = ScreenOptions {
        top: 0,
        width,
        color: false,
        verbose: false,
    };
    let mut t = table(
        &[
            "conn",
            "client -> server",
            "state",
            "history",
            "packets",
            "bytes",
            "first",
            "duration",
            "reuses",
        ],
        &opts,
    );
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
    say(
        &mut out,
        &opts,
        &format!("== {}: {} connections", cap.file, cap.connections.len()),
    )?;
    writeln!(out, "{t}")
}
