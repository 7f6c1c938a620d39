//! `pcapdiag`: parse the flags, run, map the outcome to an exit code.

use clap::{CommandFactory, Parser};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pcapdiag::cli::{Cli, Command, Config};
use pcapdiag::read::{CaptureReader, ReadError};
use pcapdiag::report::CaptureReport;
use pcapdiag::report::{self, Report};
use rayon::prelude::*;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => Config::from_args(*args).map(|c| run(&c)),
        Command::Flows(args) => Config::from_flows(args).map(|c| run_flows(&c)),
        Command::Explain { code } => return explain(&code),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pcapdiag", &mut io::stdout());
            return ExitCode::SUCCESS;
        }
    };
    let result = match result {
        Ok(r) => r,
        Err(usage) => {
            eprintln!("pcapdiag: {usage}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcapdiag: {e}");
            ExitCode::from(1)
        }
    }
}

/// A progress bar per capture on standard error; drawn only on a terminal.
fn progress_bar(bars: &MultiProgress, path: &Path) -> ProgressBar {
    // The reader counts bytes of the decompressed stream: a known total only for plain files.
    let gzip = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut magic).map(|_| magic == [0x1f, 0x8b])
        })
        .unwrap_or(true);
    let len = std::fs::metadata(path)
        .map(|m| m.len())
        .ok()
        .filter(|_| !gzip);
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
    bars.add(bar.with_message(path.display().to_string()))
}

fn explain(code: &str) -> ExitCode {
    match pcapdiag::explain::explain(code) {
        Some(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "pcapdiag: unknown code {code}; known codes: {}",
                pcapdiag::explain::codes().join(", ")
            );
            ExitCode::from(1)
        }
    }
}

/// Reads and analyses every capture, side by side (they are independent until pairing):
/// on rayon's pool, so at most as many at once as the machine has cores, each with its
/// progress bar while it runs. The results are in the order of `config.captures`.
fn analyze_all(config: &Config) -> Vec<Result<CaptureReport, ReadError>> {
    let bars = MultiProgress::new();
    if config.quiet {
        bars.set_draw_target(ProgressDrawTarget::hidden());
    }
    config
        .captures
        .par_iter()
        .map(|p| {
            let bar = progress_bar(&bars, p);
            let r = CaptureReader::open(p).map(|reader| {
                pcapdiag::analyze_reader_with(reader, &config.options, &mut |pos| {
                    bar.set_position(pos)
                })
            });
            bar.finish_and_clear();
            r
        })
        .collect()
}

/// Prints what stopped reading early; true when a capture failed (exit status 1).
fn report_problems(captures: &[CaptureReport], unreadable: &[ReadError]) -> bool {
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
    !unreadable.is_empty()
        || captures
            .iter()
            .any(|c| c.read_problem.as_ref().is_some_and(|p| !p.is_warning()))
}

fn run_flows(config: &Config) -> io::Result<ExitCode> {
    let (mut captures, mut unreadable) = (Vec::new(), Vec::new());
    for r in analyze_all(config) {
        match r {
            Ok(c) => captures.push(c),
            Err(e) => unreadable.push(e),
        }
    }
    let failed = report_problems(&captures, &unreadable);
    let mut out = io::BufWriter::new(io::stdout().lock());
    for c in &captures {
        if config.json {
            serde_json::to_writer(&mut out, &c.connections).map_err(io::Error::other)?;
            writeln!(out)?;
        } else {
            report::table::write_flows(c, &mut out)?;
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes the requested files, naming the one that failed.
fn write_exports(report: &Report, e: &pcapdiag::cli::Exports) -> io::Result<()> {
    let named = |path: &Path, r: io::Result<()>| {
        r.map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))
    };
    let create = |path: &Path| {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::File::create(path).map(io::BufWriter::new)
    };
    let dir = |path: &Path| std::fs::create_dir_all(path);
    if let Some(p) = &e.json {
        named(
            p,
            create(p).and_then(|mut f| report::json::write(report, &mut f).and_then(|_| f.flush())),
        )?;
    }
    if let Some(p) = &e.csv {
        named(p, dir(p).and_then(|_| report::csv::write_dir(report, p)))?;
    }
    if let Some(p) = &e.parquet {
        named(
            p,
            dir(p).and_then(|_| report::parquet::write_dir(report, p)),
        )?;
    }
    if let Some(p) = &e.markdown {
        named(
            p,
            create(p)
                .and_then(|mut f| report::markdown::write(report, &mut f).and_then(|_| f.flush())),
        )?;
    }
    if let Some(p) = &e.html {
        named(
            p,
            create(p).and_then(|mut f| report::html::write(report, &mut f).and_then(|_| f.flush())),
        )?;
    }
    Ok(())
}

fn run(config: &Config) -> io::Result<ExitCode> {
    let results = analyze_all(config);
    // Each pair whose files were read is paired and judged, the pairs in parallel.
    let report = report::assemble(results, &config.pairs, &config.hints, config.slow_ns());
    let failed = report_problems(&report.captures, &report.unreadable);
    write_exports(&report, &config.exports)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if config.json {
        report::json::write(&report, &mut out)?;
    } else {
        report::table::write(
            &report,
            report::table::TableOptions { top: config.top },
            &mut out,
        )?;
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
