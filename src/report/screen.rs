//! The terminal screen: the answer first. A headline (how many attempts, how many slow or
//! failed), the causes with what to do and how to confirm each, the worst attempts as
//! ladders of packets from every capture on one clock, then one line per capture. The
//! per-capture statistics ([`super::table`]) follow with `--verbose`.
//!
//! Every line fits `width` columns: tables are arranged by comfy-table to that width,
//! prose is wrapped by textwrap. Colour (ANSI) only when asked for; textwrap and
//! comfy-table both measure text without its escape sequences.

use super::summary::{self, Totals};
use super::{PairResult, Report};
use crate::units::{ms, utc};
use crate::verdict::{AttemptVerdict, Cause, VerdictRow};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use std::io::{self, Write};

/// How the screen is drawn.
#[derive(Clone, Copy, Debug)]
pub struct ScreenOptions {
    /// How many of the worst attempts get a ladder.
    pub top: usize,
    /// Columns: no line is wider.
    pub width: u16,
    /// ANSI colour for the headline and the verdicts.
    pub color: bool,
    /// The per-capture statistics after the screen.
    pub verbose: bool,
}

impl ScreenOptions {
    /// The narrowest screen drawn: below it, tables cannot keep their columns apart.
    pub const MIN_WIDTH: u16 = 40;
}

/// Writes the screen, then (with `verbose`) every capture's statistics.
pub fn write(report: &Report, opts: ScreenOptions, mut out: impl Write) -> io::Result<()> {
    let s = Screen { report, opts };
    s.headline(&mut out)?;
    s.causes(&mut out)?;
    s.worst(&mut out)?;
    s.captures(&mut out)?;
    if opts.verbose {
        writeln!(out)?;
        super::table::write(report, &opts, &mut out)?;
    }
    Ok(())
}

/// `text` wrapped to `width` columns (at least [`ScreenOptions::MIN_WIDTH`]), the first
/// line after `first`, the others after `rest`. Leading spaces of `text` are kept.
pub fn wrap(
    out: &mut impl Write,
    width: u16,
    first: &str,
    rest: &str,
    text: &str,
) -> io::Result<()> {
    // Hyphens do not split words: times (2026-11-25T...) and codes stay whole.
    let wrap = textwrap::Options::new(usize::from(width.max(ScreenOptions::MIN_WIDTH)))
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .initial_indent(first)
        .subsequent_indent(rest);
    for line in textwrap::wrap(text, wrap) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// ANSI styles used on the screen.
#[derive(Clone, Copy)]
enum Style {
    Bold,
    Bad,
    Good,
}

struct Screen<'a> {
    report: &'a Report,
    opts: ScreenOptions,
}

impl Screen<'_> {
    fn width(&self) -> usize {
        usize::from(self.opts.width.max(ScreenOptions::MIN_WIDTH))
    }

    fn paint(&self, s: &str, style: Style) -> String {
        if !self.opts.color {
            return s.to_string();
        }
        let code = match style {
            Style::Bold => "1",
            Style::Bad => "1;31",
            Style::Good => "32",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    }

    /// `text` wrapped to the width, the first line after `first`, the others after `rest`.
    fn prose(&self, out: &mut impl Write, first: &str, rest: &str, text: &str) -> io::Result<()> {
        wrap(out, self.opts.width, first, rest, text)
    }

    fn heading(&self, out: &mut impl Write, text: &str) -> io::Result<()> {
        writeln!(out)?;
        self.prose(out, "", "  ", &self.paint(text, Style::Bold))
    }

    /// A borderless table `width - indent` wide, each line after `indent` spaces.
    fn table(&self, out: &mut impl Write, indent: usize, t: &mut Table) -> io::Result<()> {
        let width = self.width().saturating_sub(indent);
        t.set_width(u16::try_from(width).unwrap_or(u16::MAX));
        if self.opts.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        for line in t.to_string().lines() {
            writeln!(out, "{:indent$}{}", "", line.trim_end())?;
        }
        Ok(())
    }

    /// How many attempts, how many slow or failed, and from what.
    fn headline(&self, out: &mut impl Write) -> io::Result<()> {
        let r = self.report;
        let tot = Totals::of(&summary::rows(r));
        let slow = if tot.slow == 0 {
            self.paint("none slow", Style::Good)
        } else {
            let failed = match tot.failed {
                0 => String::new(),
                n => format!(", {n} of them never set up"),
            };
            self.paint(
                &format!(
                    "{} slow ({}.{} %){failed}",
                    tot.slow,
                    tot.slow_permille / 10,
                    tot.slow_permille % 10
                ),
                Style::Bad,
            )
        };
        let attempts = self.paint(
            &format!("{} connection attempts", tot.attempts),
            Style::Bold,
        );
        self.prose(out, "", "  ", &format!("{attempts}, {slow}"))?;
        let slow_is = format!(
            "{}; slow: a setup (first SYN to SYN-ACK) of {} or more, or none.",
            summary::judged_from(r),
            ms(r.slow_threshold_ns)
        );
        self.prose(out, "  ", "  ", &slow_is)?;
        if let Some((a, z)) = tot.span {
            self.prose(
                out,
                "  ",
                "  ",
                &format!("First SYNs {} .. {}", utc(a), utc(z)),
            )?;
        }
        for p in summary::problems(r) {
            self.prose(out, "", "  ", &self.paint(&p, Style::Bad))?;
        }
        Ok(())
    }

    /// Each cause: its count and delay, what it means, what to do, how to confirm it.
    fn causes(&self, out: &mut impl Write) -> io::Result<()> {
        let r = self.report;
        let rows: Vec<&VerdictRow> = r
            .overall
            .by_verdict
            .iter()
            .filter(|row| row.verdict != Cause::Ok)
            .collect();
        let quick = summary::quick_signatures_of(r);
        if rows.is_empty() && quick.is_empty() {
            return Ok(());
        }
        self.heading(out, "Causes")?;
        for row in &rows {
            let code = self.paint(row.verdict.code(), Style::Bad);
            let mut head = format!(
                "{code}: {} attempt{}, {} lost, worst {}",
                row.attempts,
                if row.attempts == 1 { "" } else { "s" },
                ms(row.delay_total_ns),
                ms(row.delay_max_ns)
            );
            if r.pairs.len() > 1 {
                head.push_str(&format!(" (by pair: {})", summary::by_pair(r, row.verdict)));
            }
            self.prose(out, "  ", "      ", &head)?;
            self.prose(out, "    ", "    ", row.text)?;
            if let Some(fix) = row.remedies.first() {
                let more = match row.remedies.len() - 1 {
                    0 => String::new(),
                    n => format!(" ({n} more: pcapdiag explain {})", row.verdict.code()),
                };
                self.prose(out, "    do: ", "        ", &format!("{}{more}", fix.fix))?;
            }
            if let Some(k) = row.checks.first() {
                self.prose(
                    out,
                    "    confirm: ",
                    "        ",
                    &format!("on the {}: {}; look for {}", k.on, k.command, k.look_for),
                )?;
            }
        }
        for (cause, n) in quick {
            self.prose(
                out,
                "  ",
                "    ",
                &format!(
                    "also {n} quick attempt{} with the signature of {}",
                    if n == 1 { "" } else { "s" },
                    cause.code()
                ),
            )?;
        }
        Ok(())
    }

    /// The worst attempts, each as a ladder of its packets.
    fn worst(&self, out: &mut impl Write) -> io::Result<()> {
        let r = self.report;
        let worst = summary::worst_of(r);
        if worst.is_empty() || self.opts.top == 0 {
            return Ok(());
        }
        let shown = worst.len().min(self.opts.top);
        let more = if shown < worst.len() {
            "; --top N for more".to_string()
        } else {
            String::new()
        };
        self.heading(
            out,
            &format!(
                "Worst attempts ({shown} of {}{more}), times from the first SYN",
                worst.len()
            ),
        )?;
        for (n, &(i, v)) in worst.iter().take(shown).enumerate() {
            self.attempt(out, n + 1, &r.pairs[i], v)?;
        }
        Ok(())
    }

    fn attempt(
        &self,
        out: &mut impl Write,
        n: usize,
        pair: &PairResult,
        v: &AttemptVerdict,
    ) -> io::Result<()> {
        let r = self.report;
        let mut head = format!(
            "{} {}: {}; first SYN {}",
            self.paint(v.verdict.code(), Style::Bad),
            v.tuple(),
            summary::setup_phrase(v),
            utc(v.first_syn_ts)
        );
        if r.pairs.len() > 1 {
            head.push_str(&format!(" (pair {})", pair.name));
        }
        let num = format!("{n:>2}. ");
        self.prose(out, &num, "      ", &head)?;
        if let Some(path) = summary::names_path(r, v) {
            self.prose(out, "    ", "      ", &path)?;
        }
        let findings = crate::verdict::findings(v);
        if !findings.is_empty() {
            self.prose(out, "    ", "      ", &findings.join("; "))?;
        }
        for t in &v.rs_tuples {
            self.prose(out, "    ", "      ", &format!("after NAT: {t}"))?;
        }
        let mut t = Table::new();
        t.load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(["ms", "+ms", "seen at", "frame", "packet"]);
        for s in summary::ladder(r, pair, v) {
            t.add_row(vec![
                right(signed_ms(s.since_first_ns)),
                right(s.adds_ns.map_or(String::new(), signed_ms)),
                Cell::new(s.at),
                right(format!("#{}", s.frame)),
                Cell::new(s.what),
            ]);
        }
        self.table(out, 4, &mut t)
    }

    /// One line per capture: what it saw, how much, its clock; then the NAT mapping.
    fn captures(&self, out: &mut impl Write) -> io::Result<()> {
        let r = self.report;
        if r.captures.is_empty() && r.unreadable.is_empty() {
            return Ok(());
        }
        let hint = if self.opts.verbose {
            ""
        } else {
            " (--verbose for the statistics of each)"
        };
        self.heading(out, &format!("Captures{hint}"))?;
        for (i, cap) in r.captures.iter().enumerate() {
            self.prose(out, "  ", "    ", &cap.file)?;
            let mut line = format!("{}; {} frames", summary::role(r, i), cap.frames.read);
            if !cap.parts.is_empty() {
                line.push_str(&format!(" from {} rotated files", cap.parts.len()));
            }
            if cap.frames.skipped > 0 {
                line.push_str(&format!(" ({} skipped)", cap.frames.skipped));
            }
            if let (Some(a), Some(z)) = (cap.first_ts, cap.last_ts) {
                line.push_str(&format!(" over {}", ms(z - a)));
            }
            let clock = summary::capture_clock(r, i);
            if !clock.is_empty() {
                line.push_str(&format!("; clock {clock}"));
            }
            self.prose(out, "      ", "      ", &line)?;
        }
        for p in &r.pairs {
            let Some(pairing) = &p.pairing else { continue };
            let rows: Vec<String> = summary::nat_rows(&pairing.nat)
                .into_iter()
                .map(|row| {
                    let text = |(w, c): summary::NatCell| w + &c.unwrap_or_default();
                    let named = |k: usize| row.ips[k].and_then(|ip| r.names.get(&ip));
                    let side = |k: usize, cell: summary::NatCell| match named(k) {
                        Some(n) => format!("{} ({})", text(cell), n.label()),
                        None => text(cell),
                    };
                    match row.attempts {
                        Some(n) => {
                            format!(
                                "{} -> {} ({n})",
                                side(0, row.client_side),
                                side(1, row.rs_side)
                            )
                        }
                        None => format!("{} {}", side(0, row.client_side), side(1, row.rs_side)),
                    }
                })
                .collect();
            let name = if r.pairs.len() > 1 {
                format!(" ({})", p.name)
            } else {
                String::new()
            };
            self.prose(
                out,
                "  ",
                "      ",
                &format!("NAT{name}: {}", rows.join("; ")),
            )?;
        }
        Ok(())
    }
}

fn right(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

/// Milliseconds with three decimals and an explicit sign, without the unit: `+12.345`.
fn signed_ms(ns: i64) -> String {
    let s = ms(ns);
    let s = s.strip_suffix(" ms").unwrap_or(&s);
    if ns < 0 {
        s.to_string()
    } else {
        format!("+{s}")
    }
}
