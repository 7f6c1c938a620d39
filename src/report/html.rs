//! HTML renderer: one self-contained page, the Markdown report's content plus three charts
//! drawn with plotters' SVG backend and embedded inline. Nothing is fetched: no script, no
//! external stylesheet, font or image, and a Content-Security-Policy of `default-src 'none'`
//! makes the browser refuse any fetch a later change might add. Text in the charts is SVG
//! `<text>` set in the reader's sans-serif font, so no font file is needed.

use super::Report;
use super::postmortem::{self, Block, Chart, Line, Span};
use super::summary::{self, Row};
use crate::units::{ms, utc};
use crate::verdict::Cause;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io::{self, Write};

/// Width and height of every chart, in CSS pixels (the page scales them down to fit).
const CHART_SIZE: (u32, u32) = (960, 360);
const FONT: &str = "sans-serif";

const STYLE: &str = "
body { font-family: system-ui, sans-serif; color: #1f2328; background: #fff; margin: 0; }
main { max-width: 1000px; margin: 0 auto; padding: 16px 24px 48px; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 6px; }
h3 { margin-top: 32px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
code { font-family: ui-monospace, monospace; font-size: 90%; background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 16px 0; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: #57606a; }
footer { margin-top: 40px; font-size: 12px; color: #57606a; }
";

/// Writes the page.
pub fn write(report: &Report, mut out: impl Write) -> io::Result<()> {
    let doc = postmortem::build(report);
    let rows = summary::rows(report);
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
    )?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        out,
        "<meta name=\"generator\" content=\"pcapdiag {}\">",
        esc(report.pcapdiag_version)
    )?;
    writeln!(out, "<title>pcapdiag: slow TCP connection setups</title>")?;
    writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<main>")?;
    for block in &doc {
        match block {
            Block::Heading(level, text) => writeln!(out, "<h{level}>{}</h{level}>", esc(text))?,
            Block::Para(line) => writeln!(out, "<p>{}</p>", inline(line))?,
            Block::List(items) => {
                writeln!(out, "<ul>")?;
                for item in items {
                    writeln!(out, "<li>{}</li>", inline(item))?;
                }
                writeln!(out, "</ul>")?;
            }
            Block::Table {
                header,
                numeric,
                rows,
            } => {
                let class = |i: usize| {
                    if numeric.get(i).copied().unwrap_or(false) {
                        " class=\"num\""
                    } else {
                        ""
                    }
                };
                write!(out, "<table>\n<thead><tr>")?;
                for (i, h) in header.iter().enumerate() {
                    write!(out, "<th{}>{}</th>", class(i), esc(h))?;
                }
                writeln!(out, "</tr></thead>\n<tbody>")?;
                for row in rows {
                    write!(out, "<tr>")?;
                    for (i, cell) in row.iter().enumerate() {
                        write!(out, "<td{}>{}</td>", class(i), inline(cell))?;
                    }
                    writeln!(out, "</tr>")?;
                }
                writeln!(out, "</tbody>\n</table>")?;
            }
            Block::Chart(kind) => {
                let (id, caption) = match kind {
                    Chart::Latency => (
                        "chart-latency",
                        "Setup latency (first SYN to SYN-ACK) of the established attempts; log scale. Red: at or above the slow threshold.",
                    ),
                    Chart::OverTime => (
                        "chart-over-time",
                        "Delay of every attempt over time, coloured by verdict (grey: ok); log scale.",
                    ),
                    Chart::Verdicts => ("chart-verdicts", "Attempts per verdict."),
                };
                let svg = chart(*kind, report, &rows).map_err(io::Error::other)?;
                writeln!(
                    out,
                    "<figure id=\"{id}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
                    label_svg(&svg, caption),
                    esc(caption)
                )?;
            }
        }
    }
    writeln!(
        out,
        "<footer>Made by pcapdiag {} from the captures alone; every number links back to frame numbers in them.</footer>",
        esc(report.pcapdiag_version)
    )?;
    writeln!(out, "</main>\n</body>\n</html>")
}

/// Gives the plotters `<svg>` element an accessible name and a class.
fn label_svg(svg: &str, caption: &str) -> String {
    svg.replacen(
        "<svg ",
        &format!(
            "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" ",
            esc(caption)
        ),
        1,
    )
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(ch),
        }
    }
    o
}

fn inline(line: &Line) -> String {
    line.iter()
        .map(|s| match s {
            Span::Text(s) => esc(s),
            Span::Code(s) => format!("<code>{}</code>", esc(s)),
            Span::Strong(s) => format!("<strong>{}</strong>", esc(s)),
        })
        .collect()
}

/// The fixed colour of each verdict in every chart, as RGB.
pub fn verdict_colour(c: Option<Cause>) -> [u8; 3] {
    match c {
        Some(Cause::Ok) => [0x9e, 0x9e, 0x9e],
        Some(Cause::LbSynDropPortReuse) => [0x4e, 0x79, 0xa7],
        Some(Cause::RsTimewaitCollision) => [0xe1, 0x57, 0x59],
        Some(Cause::SnatPortExhaustion) => [0xf2, 0x8e, 0x2b],
        Some(Cause::ConntrackInsertRace) => [0xb0, 0x7a, 0xa1],
        Some(Cause::SynLostBeforeRs) => [0xd4, 0xa6, 0x00],
        Some(Cause::DroppedInNat) => [0x8c, 0x6d, 0x31],
        Some(Cause::SynackLostAfterRs) => [0x76, 0xb7, 0xb2],
        Some(Cause::RsSlowSynack) => [0x59, 0xa1, 0x4f],
        Some(Cause::RsRefused) => [0x9c, 0x75, 0x5f],
        Some(Cause::Unmatched) => [0x6b, 0x6b, 0x6b],
        Some(Cause::CaptureEnded) => [0xbd, 0xbd, 0xbd],
        Some(Cause::Unexplained) => [0xff, 0x6f, 0x91],
        None => [0x4e, 0x79, 0xa7],
    }
}

fn colour(c: Option<Cause>) -> RGBColor {
    let [r, g, b] = verdict_colour(c);
    RGBColor(r, g, b)
}

const BLUE: RGBColor = RGBColor(0x4e, 0x79, 0xa7);
const SLOW_RED: RGBColor = RGBColor(0xe1, 0x57, 0x59);
const GRID: RGBColor = RGBColor(0x55, 0x55, 0x55);

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// Draws one chart as an SVG document.
fn chart(kind: Chart, report: &Report, rows: &[Row<'_>]) -> Result<String, String> {
    let mut buf = String::new();
    {
        let size = match kind {
            // One bar per verdict: as tall as the bars need.
            Chart::Verdicts => (
                CHART_SIZE.0,
                90 + 40 * verdict_bars(report, rows).len().max(1) as u32,
            ),
            _ => CHART_SIZE,
        };
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let drawn: ChartResult = (|| {
            root.fill(&WHITE)?;
            match kind {
                Chart::Latency => latency(&root, report, rows)?,
                Chart::OverTime => over_time(&root, report, rows)?,
                Chart::Verdicts => verdicts(&root, report, rows)?,
            }
            root.present()?;
            Ok(())
        })();
        drawn.map_err(|e| format!("drawing the {kind:?} chart: {e}"))?;
    }
    Ok(buf)
}

fn no_data(root: &DrawingArea<SVGBackend<'_>, Shift>, what: &str) -> ChartResult {
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        what.to_string(),
        (w as i32 / 2 - 120, h as i32 / 2),
        (FONT, 18).into_font().color(&GRID),
    ))?;
    Ok(())
}

/// Powers of ten around `lo..hi` (both > 0), at least one decade apart.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let a = 10f64.powf(lo.log10().floor());
    let mut b = 10f64.powf(hi.log10().ceil());
    if b <= a {
        b = a * 10.0;
    }
    (a, b)
}

fn ms_f(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Axis label for a value in ms on a log axis: no trailing zeros.
fn ms_label(v: &f64) -> String {
    if *v >= 1.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').to_string()
    }
}

fn latency(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    report: &Report,
    rows: &[Row<'_>],
) -> ChartResult {
    let setups: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.attempt.setup_ns)
        .map(|ns| ms_f(ns.max(1)))
        .collect();
    if setups.is_empty() {
        return no_data(root, "no established attempt");
    }
    let slow = ms_f(report.slow_threshold_ns);
    let min = setups.iter().copied().fold(slow, f64::min);
    let max = setups.iter().copied().fold(slow, f64::max);
    let (lo, hi) = decades(min, max);
    // Five bins per decade, edges at lo·10^(k/5).
    const PER_DECADE: f64 = 5.0;
    let nbins = ((hi / lo).log10() * PER_DECADE).round() as usize;
    let edge = |k: usize| lo * 10f64.powf(k as f64 / PER_DECADE);
    let mut counts = vec![0u32; nbins];
    for v in &setups {
        let k = (((v / lo).log10() * PER_DECADE).floor().max(0.0) as usize).min(nbins - 1);
        counts[k] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1) + 1;
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .caption("Setup latency", (FONT, 22))
        .x_label_area_size(44)
        .y_label_area_size(56)
        .margin_right(30)
        .build_cartesian_2d((lo..hi).log_scale(), 0u32..top)?;
    chart
        .configure_mesh()
        .x_desc("setup latency, ms (log scale)")
        .y_desc("attempts")
        .x_label_formatter(&ms_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| {
                let colour = if edge(k) >= slow { SLOW_RED } else { BLUE };
                let mut r = Rectangle::new([(edge(k), 0), (edge(k + 1), *n)], colour.filled());
                r.set_margin(0, 0, 1, 1);
                r
            }),
    )?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(slow, 0), (slow, top)],
            GRID.stroke_width(2),
        )))?
        .label(format!("slow threshold {}", ms(report.slow_threshold_ns)))
        .legend(|(x, y)| PathElement::new(vec![(x, y - 6), (x, y + 6)], GRID.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .draw()?;
    Ok(())
}

fn over_time(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    report: &Report,
    rows: &[Row<'_>],
) -> ChartResult {
    let ts = || rows.iter().map(|r| r.attempt.first_syn().ts);
    let Some(t0) = ts().min() else {
        return no_data(root, "no connection attempt");
    };
    let t1 = ts().max().unwrap_or(t0);
    // (seconds since t0, delay ms, verdict)
    let points: Vec<(f64, f64, Option<Cause>)> = rows
        .iter()
        .map(|r| {
            (
                (r.attempt.first_syn().ts - t0) as f64 / 1e9,
                ms_f(r.delay_ns.max(1_000)),
                r.verdict.map(|v| v.verdict),
            )
        })
        .collect();
    let slow = ms_f(report.slow_threshold_ns);
    let min = points.iter().map(|p| p.1).fold(slow, f64::min);
    let max = points.iter().map(|p| p.1).fold(slow, f64::max);
    let (lo, hi) = decades(min, max);
    let span = ((t1 - t0) as f64 / 1e9).max(1.0);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .caption("Attempts over time, by verdict", (FONT, 22))
        .x_label_area_size(44)
        .y_label_area_size(64)
        .margin_right(30)
        // Room on the right for the legend.
        .build_cartesian_2d(-0.01 * span..span * 1.3, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(format!("seconds since {}", utc(t0)))
        .y_desc("delay, ms (log scale)")
        .y_label_formatter(&ms_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE)
        .draw()?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.01 * span, slow), (span * 1.3, slow)],
            GRID.stroke_width(1),
        )))?
        .label(format!("slow threshold {}", ms(report.slow_threshold_ns)))
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], GRID.stroke_width(1)));
    // Ok first (underneath), then each verdict in its fixed order, each a legend entry.
    let mut kinds: Vec<Option<Cause>> = vec![Some(Cause::Ok)];
    kinds.extend(Cause::ALL.iter().skip(1).map(|&c| Some(c)));
    kinds.push(None);
    for kind in kinds {
        let these: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.2 == kind)
            .map(|p| (p.0, p.1))
            .collect();
        if these.is_empty() {
            continue;
        }
        let colour = colour(kind);
        let (radius, style) = if kind == Some(Cause::Ok) {
            (3, colour.mix(0.6).filled())
        } else {
            (5, colour.filled())
        };
        let name = kind.map_or("no verdict", Cause::code);
        chart
            .draw_series(
                these
                    .into_iter()
                    .map(move |p| Circle::new(p, radius, style)),
            )?
            .label(name)
            .legend(move |(x, y)| Circle::new((x, y), 5, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .draw()?;
    Ok(())
}

/// One bar per verdict of every pair together (most attempts first), and one for the
/// attempts of pairs without verdicts.
fn verdict_bars(report: &Report, rows: &[Row<'_>]) -> Vec<(Option<Cause>, u64)> {
    let mut bars: Vec<(Option<Cause>, u64)> = report
        .overall
        .by_verdict
        .iter()
        .map(|r| (Some(r.verdict), r.attempts))
        .collect();
    let unjudged = rows.iter().filter(|r| r.verdict.is_none()).count() as u64;
    if unjudged > 0 {
        bars.push((None, unjudged));
    }
    bars
}

fn verdicts(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    report: &Report,
    rows: &[Row<'_>],
) -> ChartResult {
    let total = rows.len().max(1) as f64;
    let mut rows = verdict_bars(report, rows);
    if rows.is_empty() {
        return no_data(root, "no connection attempt");
    }
    // Most frequent at the top: the y axis counts upwards.
    rows.reverse();
    let n = rows.len() as i32;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| r.0.map_or("(no verdict)", Cause::code).to_string())
        .collect();
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .margin_right(30)
        .caption("Verdicts", (FONT, 22))
        .x_label_area_size(36)
        .y_label_area_size(200)
        .build_cartesian_2d(0f64..max * 1.3, (0..n).into_segmented())?;
    let label_of = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_labels(n as usize)
        .y_label_formatter(&label_of)
        .x_desc("attempts")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let c = colour(r.0);
        let mut rect = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i as i32)),
                (r.1 as f64, SegmentValue::Exact(i as i32 + 1)),
            ],
            c.filled(),
        );
        rect.set_margin(5, 5, 0, 0);
        rect
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        Text::new(
            format!("{} ({:.1} %)", r.1, r.1 as f64 * 100.0 / total),
            (r.1 as f64 + max * 0.01, SegmentValue::CenterOf(i as i32)),
            (FONT, 15).into_font().color(&BLACK),
        )
    }))?;
    Ok(())
}
