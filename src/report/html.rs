//! HTML renderer: one self-contained page, the Markdown report's content plus three charts
//! drawn with plotters' SVG backend and embedded inline. Nothing is fetched: no script, no
//! external stylesheet, font or image, and a Content-Security-Policy of `default-src 'none'`
//! makes the browser refuse any fetch a later change might add. Text in the charts is SVG
//! `<text>` set in the reader's sans-serif font, so no font file is needed. After them, the
//! worst attempts, each as a ladder (sequence) diagram written by hand as SVG
//! ([`ladder_svg`]): a lifeline per place the packets were seen, time flowing down.

use super::Report;
use super::postmortem::{self, Block, Chart, Line, Span};
use super::summary::{self, Row, Step};
use crate::units::{NS_PER_MS, ms, utc};
use crate::verdict::{self, AttemptVerdict, Cause};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Write as _;
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
h4.attempt { margin: 28px 0 4px; font-weight: 600; }
p.findings { margin: 0 0 8px; color: #57606a; font-size: 14px; }
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
    worst_attempts(report, &mut out)?;
    writeln!(
        out,
        "<footer>Made by pcapdiag {} from the captures alone; every number links back to frame numbers in them.</footer>",
        esc(report.pcapdiag_version)
    )?;
    writeln!(out, "</main>\n</body>\n</html>")
}

/// How many of the worst attempts get a ladder diagram.
pub const LADDERS: usize = 5;

/// The worst attempts (at most [`LADDERS`]): each under a heading (verdict, client tuple,
/// setup, first SYN, then what the captures showed) with its ladder diagram.
fn worst_attempts(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let worst = summary::worst_of(report);
    if worst.is_empty() {
        return Ok(());
    }
    let shown = worst.len().min(LADDERS);
    let count = if shown < worst.len() {
        format!(" ({shown} of {})", worst.len())
    } else {
        String::new()
    };
    writeln!(out, "<section id=\"worst-attempts\">")?;
    writeln!(out, "<h3>Worst attempts{}</h3>", esc(&count))?;
    writeln!(
        out,
        "<p>Each attempt's packets from every capture, on the client capture's clock: one \
         lifeline per place they were seen, time flowing down, one row per packet, its time \
         from the first SYN on the left. An arrow joins the same packet seen at two places; \
         a shaded band marks a step of {} or more, where the time went.</p>",
        esc(&ms(LONG_STEP_NS))
    )?;
    for (n, &(i, v)) in worst.iter().take(shown).enumerate() {
        let pair = &report.pairs[i];
        let of_pair = if report.pairs.len() > 1 {
            format!(" (pair {})", pair.name)
        } else {
            String::new()
        };
        writeln!(
            out,
            "<h4 class=\"attempt\">{}. <code>{}</code> {}: {}; first SYN {}{}</h4>",
            n + 1,
            esc(v.verdict.code()),
            esc(&v.tuple().to_string()),
            esc(&summary::setup_phrase(v)),
            esc(&utc(v.first_syn_ts)),
            esc(&of_pair)
        )?;
        let findings = verdict::findings(v);
        if !findings.is_empty() {
            writeln!(
                out,
                "<p class=\"findings\">{}</p>",
                esc(&findings.join("; "))
            )?;
        }
        let steps = summary::ladder(report, pair, v);
        let title = format!("Ladder of attempt {}: {}", n + 1, attempt_title(v));
        writeln!(
            out,
            "<figure class=\"ladder\" id=\"ladder-{}\">\n{}</figure>",
            n + 1,
            ladder_svg(&steps, verdict_colour(Some(v.verdict)), &title)
        )?;
    }
    writeln!(out, "</section>")
}

/// An attempt in a few words, for the diagram's accessible name.
fn attempt_title(v: &AttemptVerdict) -> String {
    format!("{} {}", v.verdict.code(), v.tuple())
}

/// A step at least this long gets a band with its delay in it: where the time went.
const LONG_STEP_NS: i64 = 100 * NS_PER_MS;

/// The ladder's geometry, in CSS pixels.
mod geo {
    /// Minimum width (the page scales the diagram down to fit).
    pub const WIDTH: f64 = 960.0;
    /// The right edge of the time column.
    pub const TIME_X: f64 = 112.0;
    /// The first lifeline.
    pub const FIRST_X: f64 = 170.0;
    /// Room for the labels right of the last lifeline.
    pub const LABEL_ROOM: f64 = 250.0;
    /// The place names above the lifelines.
    pub const HEAD: f64 = 44.0;
    /// One step per row, equally spaced.
    pub const ROW: f64 = 24.0;
    /// The extra height of a long step's band.
    pub const BAND: f64 = 30.0;
    pub const MARKER_R: f64 = 5.0;
    /// A generous width of one character of the 12 px labels: the width the labels need.
    pub const CHAR_W: f64 = 7.0;
}

/// Draws one attempt's ladder as an SVG element: a vertical lifeline per place its
/// packets were seen ([`summary::ladder_places`], the client side left, the real-server
/// side right), one row per step (equally spaced, so a burst of packets stays readable)
/// with a marker on its place's lifeline, the label `#frame what` beside it and its time
/// from the first SYN in the left margin. An arrow joins consecutive steps that are the
/// same packet seen at two places ([`summary::same_packet`]); a step of [`LONG_STEP_NS`]
/// or more gets a band across the diagram with its delay. `colour` (the verdict's) fills
/// the markers and bands; `title` is the diagram's accessible name. Every text is escaped.
fn ladder_svg(steps: &[Step<'_>], colour: [u8; 3], title: &str) -> String {
    use geo::*;
    let places = summary::ladder_places(steps);
    let spacing = match places.len() {
        0 | 1 => 0.0,
        n => (WIDTH - LABEL_ROOM - FIRST_X) / (n - 1) as f64,
    };
    let x_of = |at: &str| {
        let i = places.iter().position(|p| *p == at).unwrap_or(0);
        FIRST_X + i as f64 * spacing
    };
    let label = |s: &Step<'_>| format!("#{} {}", s.frame, s.what);
    // Rows from the top, each long step pushed down by its band.
    let mut ys = Vec::with_capacity(steps.len());
    let mut y = HEAD + ROW / 2.0;
    for s in steps {
        if s.adds_ns.is_some_and(|d| d >= LONG_STEP_NS) {
            y += BAND;
        }
        ys.push(y);
        y += ROW;
    }
    // Room below the last row for a label set under it.
    let height = y - ROW / 2.0 + 18.0;
    let width = steps
        .iter()
        .map(|s| x_of(&s.at) + 2.0 * MARKER_R + label(s).chars().count() as f64 * CHAR_W)
        .fold(WIDTH, f64::max)
        .ceil();
    let [r, g, b] = colour;
    let fill = format!("#{r:02x}{g:02x}{b:02x}");

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"ladder\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" \
         aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"12\">",
        esc(title)
    );
    let _ = writeln!(
        svg,
        "<rect width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#fff\"/>"
    );
    // Bands first, under everything: the long steps.
    for (k, s) in steps.iter().enumerate() {
        let Some(d) = s.adds_ns.filter(|&d| d >= LONG_STEP_NS) else {
            continue;
        };
        let top = ys[k] - ROW / 2.0 - BAND;
        let _ = writeln!(
            svg,
            "<rect class=\"gap\" x=\"0\" y=\"{top:.1}\" width=\"{width:.0}\" height=\"{BAND:.1}\" \
             fill=\"{fill}\" fill-opacity=\"0.16\"/>"
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\" fill=\"#1f2328\">+{}</text>",
            FIRST_X + 12.0,
            top + BAND / 2.0 + 4.0,
            esc(&ms(d))
        );
    }
    // The lifelines, each with its place's name above it.
    let _ = writeln!(
        svg,
        "<text x=\"{TIME_X:.1}\" y=\"20\" text-anchor=\"end\" fill=\"#57606a\">from first SYN</text>"
    );
    for at in &places {
        let x = x_of(at);
        let _ = writeln!(
            svg,
            "<g class=\"lifeline\"><text class=\"place\" x=\"{x:.1}\" y=\"20\" \
             text-anchor=\"middle\" font-weight=\"bold\" font-size=\"13\" fill=\"#1f2328\">{}</text>\
             <line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\" \
             stroke-width=\"1.5\"/></g>",
            esc(at),
            HEAD - 16.0,
            height - 6.0
        );
    }
    // The arrows: the same packet seen at two places. `arrived[k]`: step k is the end of
    // one.
    let mut arrived = vec![false; steps.len()];
    for k in 1..steps.len() {
        if summary::same_packet(&steps[k - 1], &steps[k], &places) {
            arrived[k] = true;
            svg.push_str(&arrow(
                (x_of(&steps[k - 1].at), ys[k - 1]),
                (x_of(&steps[k].at), ys[k]),
            ));
        }
    }
    // The steps: time, marker, label (over the lines, with a white halo). A label sits
    // right of its marker, clear of the arrows: a packet on its way toward the server
    // comes from the upper left and goes on to the lower right, so its label sits above
    // the row's middle; one on its way back arrives from the upper right, so its label
    // sits below.
    for (k, (s, &y)) in steps.iter().zip(&ys).enumerate() {
        let x = x_of(&s.at);
        let from_right = arrived[k] && x_of(&steps[k - 1].at) > x;
        let leaves = arrived.get(k + 1).copied().unwrap_or(false);
        let label_y = if from_right {
            y + 13.0
        } else if arrived[k] || leaves {
            y - 3.0
        } else {
            y + 4.0
        };
        let sign = if s.since_first_ns < 0 { "" } else { "+" };
        let _ = writeln!(
            svg,
            "<text x=\"{TIME_X:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-family=\"ui-monospace, monospace\" \
             fill=\"#1f2328\">{sign}{}</text>",
            y + 4.0,
            esc(&ms(s.since_first_ns))
        );
        let _ = writeln!(
            svg,
            "<circle class=\"step\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{MARKER_R:.1}\" fill=\"{fill}\" \
             stroke=\"#1f2328\" stroke-width=\"1\"><title>{}</title></circle>",
            esc(&format!("{} #{} {} ({})", s.at, s.frame, s.what, s.file))
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1f2328\" stroke=\"#fff\" stroke-width=\"4\" \
             stroke-linejoin=\"round\" paint-order=\"stroke\">{}</text>",
            x + 2.0 * MARKER_R,
            label_y,
            esc(&label(s))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// An arrow from one marker to another: a line between their edges and a filled head.
fn arrow((x1, y1): (f64, f64), (x2, y2): (f64, f64)) -> String {
    const HEAD_LEN: f64 = 8.0;
    const HEAD_HALF: f64 = 3.5;
    let (dx, dy) = (x2 - x1, y2 - y1);
    let len = dx.hypot(dy).max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let r = geo::MARKER_R + 1.0;
    let (sx, sy) = (x1 + ux * r, y1 + uy * r);
    let (tx, ty) = (x2 - ux * r, y2 - uy * r);
    let (bx, by) = (tx - ux * HEAD_LEN, ty - uy * HEAD_LEN);
    let (px, py) = (-uy * HEAD_HALF, ux * HEAD_HALF);
    format!(
        "<g class=\"arrow\" stroke=\"#57606a\" fill=\"#57606a\"><line x1=\"{sx:.1}\" y1=\"{sy:.1}\" \
         x2=\"{bx:.1}\" y2=\"{by:.1}\" stroke-width=\"1.5\"/><polygon points=\"{tx:.1},{ty:.1} \
         {:.1},{:.1} {:.1},{:.1}\" stroke=\"none\"/></g>\n",
        bx + px,
        by + py,
        bx - px,
        by - py
    )
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
        .filter_map(|r| r.attempt.setup_ns())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        at: &str,
        ms_since: i64,
        adds_ms: Option<i64>,
        frame: u64,
        what: &'static str,
    ) -> Step<'static> {
        Step {
            ts: 1_000 * NS_PER_MS + ms_since * NS_PER_MS,
            since_first_ns: ms_since * NS_PER_MS,
            adds_ns: adds_ms.map(|d| d * NS_PER_MS),
            at: at.to_string(),
            file: "x.pcap",
            frame,
            what,
            packet: crate::verdict::Evidence {
                side: crate::verdict::Side::Client,
                frame,
                ts: 0,
                what,
                capture: None,
            }
            .packet(),
        }
    }

    /// The texts of the elements of `class` in `svg`, in order.
    fn texts<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        svg.split(&format!("class=\"{class}\""))
            .skip(1)
            .map(|rest| rest.split_once('>').unwrap().1.split('<').next().unwrap())
            .collect()
    }

    /// A SYN lost in a node once, then through on the retry: client, node, server.
    fn lost_then_through() -> Vec<Step<'static>> {
        vec![
            step(
                "server",
                -1500,
                None,
                3,
                "previous connection on the tuple closed",
            ),
            step("client", 0, Some(1500), 10, "SYN"),
            step("node", 0, Some(0), 20, "SYN entering the NAT box"),
            step("client", 1000, Some(1000), 11, "SYN retry"),
            step("node", 1000, Some(0), 21, "SYN entering the NAT box"),
            step("node", 1000, Some(0), 22, "SYN leaving the NAT box"),
            step("server", 1001, Some(1), 4, "SYN on the RS side"),
            step("server", 1002, Some(1), 5, "SYN-ACK sent by RS"),
            step("client", 1003, Some(1), 12, "SYN-ACK"),
        ]
    }

    #[test]
    fn test_ladder_lifelines_client_side_first_server_side_last() {
        let svg = ladder_svg(&lost_then_through(), [0, 0, 0], "t");
        assert_eq!(texts(&svg, "place"), ["client", "node", "server"]);
        assert_eq!(svg.matches("class=\"lifeline\"").count(), 3);
        let one_file = [
            step("after NAT", 0, None, 2, "SYN on the RS side"),
            step("before NAT", 0, Some(0), 1, "SYN"),
        ];
        let svg = ladder_svg(&one_file, [0, 0, 0], "t");
        assert_eq!(texts(&svg, "place"), ["before NAT", "after NAT"]);
    }

    #[test]
    fn test_ladder_one_marker_per_step_and_a_band_per_long_step() {
        let steps = lost_then_through();
        let svg = ladder_svg(&steps, [0xe1, 0x57, 0x59], "t");
        assert_eq!(svg.matches("class=\"step\"").count(), steps.len());
        assert_eq!(svg.matches("class=\"gap\"").count(), 2);
        assert!(svg.contains(">+1500.000 ms</text>"), "{svg}");
        assert!(svg.contains(">+1000.000 ms</text>"), "{svg}");
        assert!(svg.contains(">-1500.000 ms</text>"), "{svg}");
        assert!(svg.contains(">#22 SYN leaving the NAT box</text>"), "{svg}");
        assert!(svg.contains("fill=\"#e15759\""));
    }

    /// An arrow where a packet goes on to the next place along its way; none from a
    /// node back to the client's retry, none within one place, none across a long step.
    #[test]
    fn test_ladder_arrows_join_one_packet_at_two_places() {
        let svg = ladder_svg(&lost_then_through(), [0, 0, 0], "t");
        // client SYN -> node, client retry -> node, node -> server, server SYN-ACK -> client.
        assert_eq!(svg.matches("class=\"arrow\"").count(), 4, "{svg}");
        let slow_transit = [
            step("client", 0, None, 1, "SYN"),
            step("server", 150, Some(150), 2, "SYN on the RS side"),
        ];
        let svg = ladder_svg(&slow_transit, [0, 0, 0], "t");
        assert_eq!(svg.matches("class=\"arrow\"").count(), 0);
    }

    #[test]
    fn test_ladder_escapes_every_text() {
        let steps = [step("a<b>&\"c\"", 0, None, 1, "SYN")];
        let svg = ladder_svg(&steps, [0, 0, 0], "x < y & z");
        assert!(svg.contains("a&lt;b&gt;&amp;&quot;c&quot;"), "{svg}");
        assert!(svg.contains("aria-label=\"x &lt; y &amp; z\""), "{svg}");
        assert!(!svg.contains("a<b"));
    }

    #[test]
    fn test_ladder_of_nothing_is_an_empty_diagram() {
        let svg = ladder_svg(&[], [0, 0, 0], "t");
        assert!(svg.starts_with("<svg class=\"ladder\""));
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("class=\"step\"").count(), 0);
    }
}
