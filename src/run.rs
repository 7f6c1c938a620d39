//! Run: the wiring of one invocation, the only module that calls both the stages and
//! `report/`. Every capture is read and analysed (in parallel, at most one per core), each
//! pair is paired and judged, the one report model is assembled, then the exports are
//! written and the report rendered. Data flows one way: stages → model → renderers.

use crate::capture::{self, CaptureReport, Options};
use crate::cli::{Config, Exports, PairSpec, pair_name};
use crate::correlate::{self, Hints, Pairing};
use crate::k8s::Names;
use crate::read::{CaptureReader, ReadError};
use crate::report::{self, Overall, PairResult, PairingReport, Report, SCHEMA_VERSION};
use crate::rotated::{self, Source};
use crate::vantage::{self, Selection, Vantage};
use crate::verdict::{self, VerdictReport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How a run ended, for the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every capture was read to its end (a cut-off file is a warning, not a failure).
    Clean,
    /// A capture could not be read, or stopped at corrupt data: the report covers what
    /// was read (exit status 1).
    CaptureFailed,
}

/// `pcapdiag analyze`: the report of every pair, the exports, and the summary (or the
/// JSON) on `out`.
pub fn analyze(config: &Config, out: impl Write) -> io::Result<Status> {
    // The cluster's names first: a file that cannot be used stops the run before the
    // captures are read.
    let k8s = match &config.k8s {
        Some(path) => Some(Names::from_file(path).map_err(|e| io::Error::other(e.to_string()))?),
        None => None,
    };
    // A set's rotated files are one capture each; given pairs are read as given.
    let sources = if config.set {
        rotated::group(&config.captures, |p| {
            CaptureReader::open(p).ok()?.first_link_type()
        })
    } else {
        config
            .captures
            .iter()
            .cloned()
            .map(Source::single)
            .collect()
    };
    // The side given for each capture: that of its (first) file.
    let side_of = |p: &PathBuf| {
        let i = config.captures.iter().position(|c| c == p)?;
        config.sides.get(i).copied().flatten()
    };
    let source_sides: Vec<Option<Vantage>> = sources.iter().map(|s| side_of(&s.parts[0])).collect();
    let results = read_all(&sources, &config.options, config.quiet);
    let layout = if config.set {
        Layout::Set(&source_sides)
    } else {
        Layout::Pairs(&config.pairs)
    };
    // On a thread of the pool that read the captures: the memory their connection tables
    // held, freed there, is taken again by the plan, the pairing and the verdicts, where
    // on this thread every page would be fresh (and cleared by the kernel on first touch).
    let mut report =
        rayon::scope(|_| assemble(results, layout, &config.hints, config.options.slow_ns));
    if let Some(k8s) = &k8s {
        report.names = report::names_for(&report, k8s);
    }
    let status = report_problems(&report.captures, &report.unreadable);
    write_exports(&report, &config.exports, config.quiet)?;
    let mut out = io::BufWriter::new(out);
    if config.json {
        report::json::write(&report, &mut out)?;
    } else {
        let opts = report::screen::ScreenOptions {
            top: config.top,
            width: config.screen.width,
            color: config.screen.color,
            verbose: config.verbose,
        };
        report::screen::write(&report, opts, &mut out)?;
    }
    out.flush()?;
    Ok(status)
}

/// `pcapdiag flows`: the connections of each capture, as a table or JSON.
pub fn flows(config: &Config, out: impl Write) -> io::Result<Status> {
    let (mut captures, mut unreadable) = (Vec::new(), Vec::new());
    let sources: Vec<Source> = config
        .captures
        .iter()
        .cloned()
        .map(Source::single)
        .collect();
    for r in read_all(&sources, &config.options, config.quiet) {
        match r {
            Ok(c) => captures.push(c),
            Err(e) => unreadable.push(e),
        }
    }
    let status = report_problems(&captures, &unreadable);
    let mut out = io::BufWriter::new(out);
    for c in &captures {
        if config.json {
            report::json::write_connections(c, &mut out)?;
        } else {
            // A listing: as wide as its rows unless a width was asked for.
            let width = match config.screen.width_defaulted {
                true => u16::MAX,
                false => config.screen.width,
            };
            report::table::write_flows(c, width, &mut out)?;
        }
    }
    out.flush()?;
    Ok(status)
}

/// Reads and analyses every capture, side by side (they are independent until pairing):
/// on rayon's pool, so at most as many at once as the machine has cores, each with a
/// progress bar on standard error while it runs (drawn only on a terminal). A rotated
/// capture's files are read one after the other, as one stream. The results are in the
/// order of `sources`; a capture one of whose files cannot be opened is an error.
pub fn read_all(
    sources: &[Source],
    opts: &Options,
    quiet: bool,
) -> Vec<Result<CaptureReport, ReadError>> {
    let bars = MultiProgress::new();
    if quiet {
        bars.set_draw_target(ProgressDrawTarget::hidden());
    }
    // Fewer captures than cores: each capture's pass takes two of them.
    let pass = match sources.len() < rayon::current_num_threads() {
        true => capture::Pass::TwoThreads,
        false => capture::Pass::OneThread,
    };
    sources
        .par_iter()
        .map(|src| {
            let readers = src
                .parts
                .iter()
                .map(|p| CaptureReader::open(p))
                .collect::<Result<Vec<_>, _>>()?;
            let bar = bars.add(progress_bar(src, &readers));
            let name = (src.parts.len() > 1).then(|| src.name.clone());
            let r =
                capture::analyze_parts(name, readers, opts, &mut |pos| bar.set_position(pos), pass);
            bar.finish_and_clear();
            Ok(r)
        })
        .collect()
}

/// A bar with the files' size as its total, or a spinner where the size of what is read
/// is not known (standard input, gzip: the reader counts decompressed bytes).
fn progress_bar(src: &Source, readers: &[CaptureReader]) -> ProgressBar {
    let size = |p: &PathBuf| {
        std::fs::metadata(p)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    };
    let len = if readers.iter().any(CaptureReader::gzip) {
        None
    } else {
        src.parts.iter().map(size).sum::<Option<u64>>()
    };
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{msg:30!} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg:30!} {spinner} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.with_message(src.name.clone())
}

/// Prints what stopped reading early, and the limits a capture reached, on standard error.
fn report_problems(captures: &[CaptureReport], unreadable: &[ReadError]) -> Status {
    for e in unreadable {
        eprintln!("pcapdiag: {e}");
    }
    for c in captures {
        if let Some(p) = &c.read_problem {
            let level = if p.is_warning() { "warning" } else { "error" };
            eprintln!("pcapdiag: {level}: {p}");
        }
        for note in c.limit_notes() {
            eprintln!("pcapdiag: note: {}: {note}", c.file);
        }
    }
    let failed = !unreadable.is_empty()
        || captures
            .iter()
            .any(|c| c.read_problem.as_ref().is_some_and(|p| !p.is_warning()));
    if failed {
        Status::CaptureFailed
    } else {
        Status::Clean
    }
}

/// How the files of a run go together.
#[derive(Clone, Copy, Debug)]
pub enum Layout<'a> {
    /// Given pairs, as indexes into the files.
    Pairs(&'a [PairSpec]),
    /// A set: the pairs follow from what each capture saw ([`vantage::plan`]); the
    /// side of each capture (read ones and unreadable alike, in order) where the user gave it.
    Set(&'a [Option<Vantage>]),
}

/// Builds the report of one run from the analysed captures: `results` holds one entry per
/// file, in command-line order (`Err` for a file that could not be read at all), and
/// `layout` says how they go together. Each pair whose files were all read is paired
/// and judged ([`diagnose`]), the pairs in parallel when there are several; a pair
/// with an unreadable file is reported without verdicts and does not stop the others.
///
/// Panics when a [`PairSpec`] indexes past `results`.
pub fn assemble(
    results: Vec<Result<CaptureReport, ReadError>>,
    layout: Layout<'_>,
    hints: &Hints,
    slow_ns: i64,
) -> Report {
    let (mut captures, mut unreadable) = (Vec::new(), Vec::new());
    // Where each input went: Ok(index into captures) or Err(index into unreadable).
    let slots: Vec<Result<usize, usize>> = results
        .into_iter()
        .map(|r| match r {
            Ok(c) => {
                captures.push(c);
                Ok(captures.len() - 1)
            }
            Err(e) => {
                unreadable.push(e);
                Err(unreadable.len() - 1)
            }
        })
        .collect();
    let file = |slot: Result<usize, usize>| match slot {
        Ok(i) => captures[i].file.clone(),
        Err(i) => unreadable[i].file.clone(),
    };
    // The pairs, and what each side takes: as given (with their selections), or planned
    // from what each capture saw.
    let (specs, given, plan) = match layout {
        Layout::Pairs(pairs) => {
            // Each side as given; only where the SYNs were seen comes from the traffic.
            let sels = pairs
                .iter()
                .map(|p| {
                    let read = |i: usize| slots[i].ok().map(|c| &captures[c]);
                    let both: Vec<&CaptureReport> = [read(p.client), p.rs.and_then(read)]
                        .into_iter()
                        .flatten()
                        .collect();
                    let paths = match (read(p.client), both.len()) {
                        (Some(_), 2) => vantage::plan(&both, &[]).paths.swap_remove(0),
                        _ => Vec::new(),
                    };
                    Selection {
                        paths,
                        ..Selection::default()
                    }
                })
                .collect();
            (pairs.to_vec(), sels, None)
        }
        Layout::Set(all_sides) => {
            // The sides of the captures that could be read.
            let sides: Vec<Option<Vantage>> = slots
                .iter()
                .zip(all_sides.iter().chain(std::iter::repeat(&None)))
                .filter(|(s, _)| s.is_ok())
                .map(|(_, &side)| side)
                .collect();
            let sides = &sides;
            let plan = vantage::plan(&captures.iter().collect::<Vec<_>>(), sides);
            // Back from indexes into `captures` to indexes into `results`.
            let slot_of = |i: usize| {
                slots
                    .iter()
                    .position(|s| *s == Ok(i))
                    .expect("every capture has a slot")
            };
            let mut names: Vec<String> = Vec::new();
            let mut specs = Vec::new();
            for p in &plan.pairs {
                let base = pair_name(Path::new(&captures[p.client].file));
                let mut name = base.clone();
                for k in 2.. {
                    if !names.contains(&name) {
                        break;
                    }
                    name = format!("{base}#{k}");
                }
                names.push(name.clone());
                specs.push(PairSpec {
                    name,
                    client: slot_of(p.client),
                    rs: p.rs.map(slot_of),
                });
            }
            (specs, Vec::new(), Some(plan))
        }
    };
    let read = |slot: Result<usize, usize>| slot.ok().map(|i| &captures[i]);
    // Each pair's two captures paired (in parallel when there are several).
    let pair = |spec: &PairSpec, sel: &Selection| match (
        read(slots[spec.client]),
        spec.rs.map(|i| read(slots[i])),
    ) {
        (Some(c), Some(Some(r))) => Some(correlate::pair(c, r, hints, sel)),
        _ => None,
    };
    let sel = |i: usize| match &plan {
        Some(p) => &p.pairs[i].selection,
        None => &given[i],
    };
    let pairings: Vec<Option<Pairing>> = (0..specs.len())
        .into_par_iter()
        .map(|i| pair(&specs[i], sel(i)))
        .collect();
    // A set's captures on one clock: between the two captures of a pair, the clock its
    // pairing estimated.
    let set = plan.is_some();
    let (selections, vantage) = match plan {
        Some(mut plan) => {
            let all: Vec<&CaptureReport> = captures.iter().collect();
            let clocks: Vec<Option<&crate::clock::ClockModel>> = pairings
                .iter()
                .map(|p| p.as_ref().map(|p| &p.clock))
                .collect();
            plan.place_clocks(&all, &clocks);
            let sels = plan.pairs.into_iter().map(|p| p.selection).collect();
            (sels, Some(plan.points))
        }
        None => (given, None),
    };
    // What each pair whose files were all read is judged with.
    let contexts: Vec<Option<verdict::Context>> = specs
        .iter()
        .zip(&selections)
        .zip(&pairings)
        .map(|((spec, sel), pairing)| {
            let rs = spec.rs.map(|i| slots[i]);
            Some(verdict::Context {
                client: read(slots[spec.client])?,
                rs: match rs {
                    Some(slot) => Some(read(slot)?),
                    None => None,
                },
                pairing: pairing.as_ref(),
                sel,
                slow_ns,
                rs_at: rs.and_then(Result::ok).map(|i| i as u32),
            })
        })
        .collect();
    // The pairs judged together: in a set, those of one client capture (its backends on
    // several hosts); given pairs, each alone. The groups in parallel.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        if contexts[i].is_none() {
            continue;
        }
        match groups
            .iter_mut()
            .find(|g| set && specs[g[0]].client == spec.client)
        {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let judge_group = |g: &Vec<usize>| -> Vec<(usize, VerdictReport)> {
        let ctxs: Vec<verdict::Context> = g.iter().filter_map(|&i| contexts[i]).collect();
        g.iter().copied().zip(verdict::judge_group(&ctxs)).collect()
    };
    let judged: Vec<(usize, VerdictReport)> =
        groups.par_iter().flat_map_iter(judge_group).collect();
    let mut verdicts: Vec<Option<VerdictReport>> = specs.iter().map(|_| None).collect();
    for (i, v) in judged {
        verdicts[i] = Some(v);
    }
    let pairs: Vec<PairResult> = specs
        .iter()
        .zip(pairings)
        .zip(verdicts)
        .map(|((spec, pairing), verdicts)| {
            let client = slots[spec.client];
            let rs = spec.rs.map(|i| slots[i]);
            let pairing = match (read(client), rs.and_then(read), pairing) {
                (Some(c), Some(r), Some(p)) => Some(PairingReport::new(c, r, &p)),
                _ => None,
            };
            PairResult {
                name: spec.name.clone(),
                client_file: file(client),
                rs_file: rs.map(file),
                client_capture: client.ok(),
                rs_capture: rs.and_then(Result::ok),
                pairing,
                verdicts,
                unreadable: [Some(client), rs]
                    .into_iter()
                    .flatten()
                    .filter_map(Result::err)
                    .collect(),
            }
        })
        .collect();
    Report {
        schema_version: SCHEMA_VERSION,
        pcapdiag_version: env!("CARGO_PKG_VERSION"),
        slow_threshold_ns: slow_ns,
        overall: Overall::of(&pairs),
        vantage_points: vantage.unwrap_or_default(),
        captures,
        unreadable,
        pairs,
        names: Default::default(),
    }
}

/// Writes the requested files (creating their directories), naming the one that failed.
fn write_exports(report: &Report, e: &Exports, quiet: bool) -> io::Result<()> {
    let named = |path: &Path, r: io::Result<()>| {
        r.map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))
    };
    let file =
        |path: &Path, write: fn(&Report, &mut io::BufWriter<std::fs::File>) -> io::Result<()>| {
            let r = (|| {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = io::BufWriter::new(std::fs::File::create(path)?);
                write(report, &mut f)?;
                f.flush()
            })();
            named(path, r)
        };
    if let Some(p) = &e.json {
        file(p, |r, f| report::json::write(r, f))?;
    }
    if let Some(p) = &e.csv {
        named(p, report::csv::write_dir(report, p))?;
    }
    if let Some(p) = &e.parquet {
        named(p, report::parquet::write_dir(report, p))?;
    }
    if let Some(p) = &e.markdown {
        file(p, |r, f| report::markdown::write(r, f))?;
    }
    if let Some(p) = &e.html {
        file(p, |r, f| report::html::write(r, f))?;
    }
    if let Some(dir) = &e.annotate {
        let written = report::annotate::write(report, dir)
            .map_err(|err| io::Error::other(format!("--annotate: {err}")))?;
        annotated(&written, quiet);
    }
    Ok(())
}

/// What `--annotate` wrote, on standard error: a line per file (unless `quiet`), and a
/// warning for each part that stopped early and each note that found no packet.
fn annotated(w: &crate::pcapng::Written, quiet: bool) {
    for c in &w.copies {
        if !quiet {
            eprintln!(
                "annotated: {} ({} frames, {} with comments)",
                c.file.display(),
                c.frames,
                c.commented
            );
        }
        for p in &c.read_problems {
            eprintln!("pcapdiag: warning: --annotate: {p}");
        }
        if c.notes_unplaced > 0 {
            eprintln!(
                "pcapdiag: warning: --annotate: {}: {} comments for frames that could not be written again",
                c.input, c.notes_unplaced
            );
        }
    }
    if !quiet {
        eprintln!(
            "annotated: {} ({} frames of every capture, on the reference clock)",
            w.merged.display(),
            w.merged_frames
        );
    }
}
