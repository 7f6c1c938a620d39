//! Command line: flags (clap) become a validated [`Config`] before any work starts.

use crate::capture::{DEFAULT_SLOW_NS, Filter, Options};
use crate::correlate::Hints;
use crate::units::NS_PER_MS;
use crate::vantage::Vantage;
use clap::{ArgAction, ArgGroup, Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

const EXAMPLES: &str = "\
Examples:
  pcapdiag analyze node.pcap
      a node's tcpdump -i any: both legs of the NAT, a verdict per attempt
  pcapdiag analyze client.pcap rs.pcap
      both sides of the VIP: NAT mapping, clock offset, a verdict per attempt
  pcapdiag analyze rs.pcap node.pcap client.pcap captures/
      any number of captures (and directories), in any order: what each saw
      is worked out from the traffic
  pcapdiag analyze --client c.pcap --rs r.pcap
      say which side a capture is where the traffic cannot (no NAT between)
  pcapdiag analyze client.pcap
      one capture: flags, attempts, setup latency
  pcapdiag analyze --vip 10.96.0.10:80 --rs-port 8080 client.pcap rs.pcap
  pcapdiag analyze --since 2026-11-25T01:55:40Z --until 2026-11-25T01:56:00Z \\
      client.pcap rs.pcap
  pcapdiag analyze --pair c1.pcap rs1.pcap --pair c2.pcap rs2.pcap
      several pairs in parallel, their causes together
  pcapdiag analyze --pairs-dir captures/
      every NAME.client.pcap with its NAME.rs.pcap (also .pcapng, .gz)
  pcapdiag analyze -v --width 120 node.pcap
      the answer, then each capture's statistics, 120 columns wide
  pcapdiag analyze --json capture.pcapng.gz | jq .overall.by_verdict
  pcapdiag analyze --csv out/ --parquet out/ --markdown pm.md \\
      --html report.html client.pcap rs.pcap
  kubectl get pods,services,endpointslices,nodes -A -o json > cluster.json
  pcapdiag analyze --k8s cluster.json node.pcap
      pod, service and node names on every address
  pcapdiag analyze --annotate annotated/ node.pcap
      the captures again as pcapng, a comment on each packet of note, and
      merged.pcapng on one clock, for Wireshark
  tcpdump -i any -w - port 80 | pcapdiag analyze -
  pcapdiag flows --port 80 capture.pcap
      list the connections
  pcapdiag explain rs_timewait_collision
      what a verdict, flag or state means, what to do, how to confirm it

Exit status:
  0  every capture was read to its end (a file cut off mid-record counts: it
     is analysed up to the cut and the report says so)
  1  a capture could not be read, or stopped at corrupt data (the report
     covers what was read, and every other pair); an output or --k8s file
     could not be used; explain: unknown code
  2  usage error";

/// Diagnose slow TCP connection setups from tcpdump captures taken on both sides of a
/// load-balancer virtual IP.
#[derive(Debug, Parser)]
#[command(name = "pcapdiag", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reconstruct every TCP connection and report handshake anomalies and setup latency;
    /// with two captures, pair them through the NAT and give each attempt a verdict.
    #[command(after_help = EXAMPLES, override_usage = "\
pcapdiag analyze [OPTIONS] CAPTURE...
       pcapdiag analyze [OPTIONS] --client FILE --rs FILE [CAPTURE...]
       pcapdiag analyze [OPTIONS] --pair CLIENT RS... | --pairs-dir DIR...")]
    Analyze(Box<AnalyzeArgs>),
    /// List the TCP connections of a capture (one row per incarnation of a 4-tuple).
    #[command(after_help = EXAMPLES)]
    Flows(FlowsArgs),
    /// Explain a verdict, packet flag, gap class, connection state or skip reason.
    Explain {
        /// The code, e.g. rs_timewait_collision, reused_ports, initial_rto_1s, RSTO.
        code: String,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What selects the packets of a capture.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Only TCP segments to or from this port (on the client side: the VIP's port).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Only packets at or after this time (RFC 3339, e.g. 2026-11-25T01:55:40Z, or seconds
    /// since the epoch), on each capture's own clock.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only packets before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Keep live state for at most this many connections; beyond it the least recently
    /// active are evicted (counted in the report). Bounds memory on SYN floods.
    #[arg(long, default_value_t = crate::flows::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// Keep at most this many connection records (and as many flagged-packet records) per
    /// capture. Past it, segments that would start a connection are skipped and counted
    /// (`record_cap`), so memory stays bounded (about 1 KB per record); the connections
    /// already recorded are followed to their end.
    #[arg(long, default_value_t = crate::flows::DEFAULT_MAX_RECORDS, value_name = "N")]
    pub max_records: usize,
    /// In the JSON report, list the numbers of the skipped frames under each reason
    /// (`skipped_by_reason[].frame_numbers`), e.g. to leave exactly those out of a
    /// comparison with another tool.
    #[arg(long)]
    pub list_skipped: bool,
    /// No progress bar (it is drawn only when standard error is a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("input").required(true).multiple(true)))]
pub struct AnalyzeArgs {
    /// Capture files or directories of them (pcap, pcapng, optionally gzip-compressed; `-`
    /// for standard input), in any order: what each one saw (the client side, the
    /// real-server side, or both, as a node's `tcpdump -i any` does) is worked out from the
    /// traffic, and each client attempt is judged once.
    #[arg(num_args = 1.., value_name = "CAPTURE", group = "input",
          conflicts_with_all = ["pair", "pairs_dir"])]
    pub captures: Vec<PathBuf>,
    /// A capture of the client side, part of the set: says what the traffic leaves
    /// ambiguous (e.g. no NAT between the captures). Can be repeated.
    #[arg(long = "client", value_name = "FILE", action = ArgAction::Append, group = "input",
          conflicts_with_all = ["pair", "pairs_dir"])]
    pub client_files: Vec<PathBuf>,
    /// A capture of the real-server side, part of the set. Can be repeated.
    #[arg(long = "rs", value_name = "FILE", action = ArgAction::Append, group = "input",
          conflicts_with_all = ["pair", "pairs_dir"])]
    pub rs_files: Vec<PathBuf>,
    /// A client-side capture and the real-server-side capture taken with it, instead of
    /// CAPTURE. Repeat it for several pairs: they are analysed in parallel into one report,
    /// a section per pair and their verdicts together.
    #[arg(long, num_args = 2, value_names = ["CLIENT", "RS"], action = ArgAction::Append,
          group = "input")]
    pub pair: Vec<PathBuf>,
    /// Every capture pair in this directory: NAME.client.EXT with NAME.rs.EXT (EXT: pcap,
    /// pcapng, pcap.gz or pcapng.gz); the pair is called NAME. Other files are ignored.
    /// Instead of CAPTURE; can be repeated and combined with --pair.
    #[arg(long, value_name = "DIR", action = ArgAction::Append, group = "input")]
    pub pairs_dir: Vec<PathBuf>,
    /// Print the full report as JSON (schema in docs/schema.md) instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the full report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<PathBuf>,
    /// Also write attempts.csv, events.csv and summary.csv into this directory.
    #[arg(long, value_name = "DIR")]
    pub csv: Option<PathBuf>,
    /// Also write the same tables as Parquet into this directory.
    #[arg(long, value_name = "DIR")]
    pub parquet: Option<PathBuf>,
    /// Also write a postmortem section in Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Also write a self-contained HTML report with charts to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write every capture again as pcapng into this directory, each packet pcapdiag
    /// has something to say about with a comment (its flags, its attempt and verdict, the
    /// same packet in the other captures), and merged.pcapng: all captures in one file on
    /// the reference clock. In Wireshark: frame.comment contains "rs_timewait_collision".
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// Connection setups at least this slow (milliseconds) count as slow.
    #[arg(long, default_value_t = (DEFAULT_SLOW_NS / NS_PER_MS) as u64, value_name = "MS")]
    pub slow_ms: u64,
    /// How many of the worst attempts to show as a ladder of their packets (and, with
    /// --verbose, how many of each capture's slowest attempts to list).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub top: usize,
    /// After the answer, each capture's statistics: frames, connection states, packet
    /// flags, slowest attempts; the NAT mapping and clocks in detail.
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub screen: ScreenArgs,
    /// Only client attempts to this virtual IP (IP or IP:PORT).
    #[arg(long, value_name = "IP[:PORT]")]
    pub vip: Option<String>,
    /// Only real-server attempts to this port.
    #[arg(long, value_name = "PORT")]
    pub rs_port: Option<u16>,
    /// Name the addresses after the cluster's objects: FILE holds the output of
    /// `kubectl get pods,services,endpointslices,nodes -A -o json`. A verdict then reads
    /// "pod default/web-7d9f8 -> svc default/api -> pod default/api-5f2c1 on node-2".
    #[arg(long, value_name = "FILE")]
    pub k8s: Option<PathBuf>,
    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// How output is drawn on the terminal.
#[derive(Debug, clap::Args)]
pub struct ScreenArgs {
    /// Fit the output to N columns (default: the terminal's width; when standard output is
    /// not a terminal, $COLUMNS, else 80).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(40..))]
    pub width: Option<u16>,
    /// Colour the headline and the verdicts: auto (on a terminal, unless NO_COLOR is set),
    /// always, never.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
}

/// When to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// The screen's width and colour, from the flags, the terminal and the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    pub width: u16,
    /// The width came from the default, not from the terminal, `$COLUMNS` or `--width`.
    pub width_defaulted: bool,
    pub color: bool,
}

impl Screen {
    /// Without a terminal, `$COLUMNS`, or a width given.
    pub const DEFAULT_WIDTH: u16 = 80;

    /// `--width`, else the terminal's width, else `$COLUMNS` (when it is a number of at
    /// least 40), else 80. Colour: `always`, or `auto` on a terminal without `NO_COLOR`
    /// (any non-empty value, no-color.org).
    pub fn resolve(
        a: &ScreenArgs,
        env: &dyn Fn(&str) -> Option<String>,
        tty: Option<u16>,
    ) -> Screen {
        let columns = env("COLUMNS")
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|&c| c >= 40);
        let no_color = env("NO_COLOR").is_some_and(|v| !v.is_empty());
        let width = a.width.or(tty).or(columns);
        Screen {
            width: width.unwrap_or(Self::DEFAULT_WIDTH),
            width_defaulted: width.is_none(),
            color: match a.color {
                ColorWhen::Always => true,
                ColorWhen::Never => false,
                ColorWhen::Auto => tty.is_some() && !no_color,
            },
        }
    }

    /// For standard output, from this process's environment.
    pub fn for_stdout(a: &ScreenArgs) -> Screen {
        use std::io::IsTerminal;
        let tty = std::io::stdout()
            .is_terminal()
            .then(|| terminal_size::terminal_size().map(|(w, _)| w.0))
            .flatten();
        Screen::resolve(a, &|k| std::env::var(k).ok(), tty)
    }
}

#[derive(Debug, clap::Args)]
pub struct FlowsArgs {
    /// A capture file (`-` for standard input).
    #[arg(value_name = "CAPTURE")]
    pub capture: PathBuf,
    /// Print the connections as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub select: CaptureArgs,
    #[command(flatten)]
    pub screen: ScreenArgs,
}

/// Which analysed captures make a pair: indexes into the list given to [`assemble`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec {
    pub name: String,
    pub client: usize,
    /// `None`: the client capture alone (verdicts inferred from one side).
    pub rs: Option<usize>,
}

/// Files to write besides what goes to standard output.
#[derive(Debug, Clone, Default)]
pub struct Exports {
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub parquet: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub annotate: Option<PathBuf>,
}

/// A command line that cannot be run (exit status 2), with what is wrong in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    NoCapture,
    StdinTwice,
    SlowTooLarge,
    SinceNotBeforeUntil,
    /// `--since` or `--until` with a value that is not a time.
    BadTime {
        flag: &'static str,
        value: String,
    },
    BadVip(String),
    /// `--pairs-dir DIR` could not be listed.
    PairsDirUnreadable {
        dir: PathBuf,
        error: String,
    },
    /// `NAME.client.*` or `NAME.rs.*` without the other side (`missing` is `client` or
    /// `rs`): the files that are there.
    PairsDirOneSide {
        name: String,
        missing: &'static str,
        files: String,
    },
    PairsDirAmbiguous {
        name: String,
        files: String,
    },
    PairsDirEmpty(PathBuf),
    /// A CAPTURE directory without capture files in it, or that could not be listed.
    DirEmpty(PathBuf),
    DirUnreadable {
        dir: PathBuf,
        error: String,
    },
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageError::NoCapture => {
                write!(
                    f,
                    "no capture given (CAPTURE, --pair CLIENT RS or --pairs-dir DIR)"
                )
            }
            UsageError::StdinTwice => write!(f, "standard input (-) can be read only once"),
            UsageError::SlowTooLarge => write!(f, "--slow-ms is too large"),
            UsageError::SinceNotBeforeUntil => write!(f, "--since must be before --until"),
            UsageError::BadTime { flag, value } => write!(
                f,
                "{flag} {value}: expected RFC 3339 (2026-11-25T01:55:40Z) or seconds since the epoch"
            ),
            UsageError::BadVip(v) => write!(f, "--vip {v}: expected IP, IP:PORT or [IPv6]:PORT"),
            UsageError::PairsDirUnreadable { dir, error } => {
                write!(f, "--pairs-dir {}: {error}", dir.display())
            }
            UsageError::PairsDirOneSide {
                name,
                missing,
                files,
            } => write!(
                f,
                "--pairs-dir: {files} has no {name}.{missing}.* beside it"
            ),
            UsageError::PairsDirAmbiguous { name, files } => {
                write!(f, "--pairs-dir: pair {name} is ambiguous: {files}")
            }
            UsageError::DirUnreadable { dir, error } => write!(f, "{}: {error}", dir.display()),
            UsageError::DirEmpty(dir) => write!(
                f,
                "{}: no capture file (.pcap, .pcapng, either rotated as .pcap1 ... or with .gz) in this directory",
                dir.display()
            ),
            UsageError::PairsDirEmpty(dir) => write!(
                f,
                "--pairs-dir {}: no NAME.client.pcap with NAME.rs.pcap (or .pcapng, .gz) in it",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for UsageError {}

/// What to do, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every file to analyse, pair by pair (client side, then real-server side).
    pub captures: Vec<PathBuf>,
    /// The pairs, as indexes into `captures`; empty for a set of captures.
    pub pairs: Vec<PairSpec>,
    /// The captures are a set (CAPTURE...): what each saw, and so the pairs, is worked out
    /// from the traffic once they are read.
    pub set: bool,
    /// For a set: the side given for each capture (`--client`, `--rs`), in `captures`'
    /// order; `None` where the traffic decides.
    pub sides: Vec<Option<Vantage>>,
    pub json: bool,
    pub exports: Exports,
    pub top: usize,
    pub verbose: bool,
    pub screen: Screen,
    /// `--k8s FILE`: the cluster's objects, to name addresses.
    pub k8s: Option<PathBuf>,
    pub hints: Hints,
    pub quiet: bool,
    pub options: Options,
}

impl Config {
    pub fn from_args(a: AnalyzeArgs) -> Result<Config, UsageError> {
        // (name, client, RS): the positional form, or the --pair and --pairs-dir ones.
        let mut pairs: Vec<(Option<String>, PathBuf, Option<PathBuf>)> = Vec::new();
        let (mut set, mut sides) = (Vec::new(), Vec::new());
        for (paths, side) in [
            (&a.captures, None),
            (&a.client_files, Some(Vantage::Client)),
            (&a.rs_files, Some(Vantage::Rs)),
        ] {
            for p in paths {
                let files = expand_dir(p)?;
                sides.extend(files.iter().map(|_| side));
                set.extend(files);
            }
        }
        for two in a.pair.chunks(2) {
            if let [client, rs] = two {
                pairs.push((None, client.clone(), Some(rs.clone())));
            }
        }
        for dir in &a.pairs_dir {
            for (name, client, rs) in scan_pairs_dir(dir)? {
                pairs.push((Some(name), client, Some(rs)));
            }
        }
        if pairs.is_empty() && set.is_empty() {
            return Err(UsageError::NoCapture);
        }
        let is_set = !set.is_empty();
        let (captures, pairs) = if is_set {
            (set, Vec::new())
        } else {
            plan(pairs)
        };
        let stdin_uses = captures.iter().filter(|p| p.as_os_str() == "-").count();
        if stdin_uses > 1 {
            return Err(UsageError::StdinTwice);
        }
        let slow_ns = i64::try_from(a.slow_ms)
            .ok()
            .and_then(|v| v.checked_mul(NS_PER_MS))
            .ok_or(UsageError::SlowTooLarge)?;
        let vip = a.vip.as_deref().map(parse_vip).transpose()?;
        let mut options = options(&a.capture)?;
        options.slow_ns = slow_ns;
        Ok(Config {
            captures,
            pairs,
            set: is_set,
            sides,
            json: a.json,
            exports: Exports {
                json: a.json_file,
                csv: a.csv,
                parquet: a.parquet,
                markdown: a.markdown,
                html: a.html,
                annotate: a.annotate,
            },
            top: a.top,
            verbose: a.verbose,
            screen: Screen::for_stdout(&a.screen),
            k8s: a.k8s,
            hints: Hints {
                vip,
                rs_port: a.rs_port,
            },
            quiet: a.capture.quiet,
            options,
        })
    }

    pub fn from_flows(a: FlowsArgs) -> Result<Config, UsageError> {
        let (captures, pairs) = plan(vec![(None, a.capture, None)]);
        Ok(Config {
            options: options(&a.select)?,
            captures,
            pairs,
            set: false,
            sides: Vec::new(),
            json: a.json,
            exports: Exports::default(),
            top: 0,
            verbose: false,
            screen: Screen::for_stdout(&a.screen),
            k8s: None,
            hints: Hints::default(),
            quiet: a.select.quiet,
        })
    }
}

/// The files to analyse, in order, and the pairs as indexes into them, each with a name
/// unique in the run: the given one, else [`pair_name`] of the client file; a name already
/// taken gets `#2`, `#3`, ...
fn plan(pairs: Vec<(Option<String>, PathBuf, Option<PathBuf>)>) -> (Vec<PathBuf>, Vec<PairSpec>) {
    let mut files = Vec::new();
    let mut specs: Vec<PairSpec> = Vec::new();
    for (name, client, rs) in pairs {
        let base = name.unwrap_or_else(|| pair_name(&client));
        let mut name = base.clone();
        let mut k = 2;
        while specs.iter().any(|s| s.name == name) {
            name = format!("{base}#{k}");
            k += 1;
        }
        files.push(client);
        let client = files.len() - 1;
        let rs = rs.map(|rs| {
            files.push(rs);
            files.len() - 1
        });
        specs.push(PairSpec { name, client, rs });
    }
    (files, specs)
}

/// A CAPTURE argument as files: a directory's capture files (by their extension, sorted by
/// name), else the argument itself.
fn expand_dir(p: &Path) -> Result<Vec<PathBuf>, UsageError> {
    if !p.is_dir() {
        return Ok(vec![p.to_path_buf()]);
    }
    let err = |e: std::io::Error| UsageError::DirUnreadable {
        dir: p.to_path_buf(),
        error: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(p).map_err(err)? {
        let path = entry.map_err(err)?.path();
        let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if path.is_file() && is_capture_name(name) {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(UsageError::DirEmpty(p.to_path_buf()));
    }
    files.sort();
    Ok(files)
}

/// Whether a file in a CAPTURE directory is a capture: `.pcap` or `.pcapng`, with
/// tcpdump's rotation number after it (`x.pcap3`), optionally gzip-compressed.
fn is_capture_name(name: &str) -> bool {
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    let plain = plain.trim_end_matches(|c: char| c.is_ascii_digit());
    plain.ends_with(".pcap") || plain.ends_with(".pcapng")
}

/// The capture extensions, longest first.
const CAPTURE_EXTS: [&str; 4] = [".pcapng.gz", ".pcap.gz", ".pcapng", ".pcap"];

/// A pair's name from its client file: the file name without a capture extension (and
/// `.gz`) and without a final `.client` (`lab/rs_timewait.client.pcap` → `rs_timewait`);
/// standard input is `stdin`.
pub fn pair_name(client: &Path) -> String {
    if client.as_os_str() == "-" {
        return "stdin".into();
    }
    let file = client.display().to_string();
    let stem = crate::units::capture_stem(&file);
    let stem = stem.strip_suffix(".client").unwrap_or(stem);
    if stem.is_empty() {
        file.rsplit(['/', '\\']).next().unwrap_or(&file).to_string()
    } else {
        stem.to_string()
    }
}

/// The pairs of `--pairs-dir DIR`: `NAME.client.EXT` with `NAME.rs.EXT`, sorted by NAME.
/// A NAME with two client or two RS files, or with only one side, is an error, as is a
/// directory without any pair.
pub fn scan_pairs_dir(dir: &Path) -> Result<Vec<(String, PathBuf, PathBuf)>, UsageError> {
    use std::collections::BTreeMap;
    let err = |e: std::io::Error| UsageError::PairsDirUnreadable {
        dir: dir.to_path_buf(),
        error: e.to_string(),
    };
    let mut sides: BTreeMap<String, [Vec<PathBuf>; 2]> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = CAPTURE_EXTS.iter().find_map(|e| file.strip_suffix(e)) else {
            continue;
        };
        let (name, side) = match (stem.strip_suffix(".client"), stem.strip_suffix(".rs")) {
            (Some(n), _) => (n, 0),
            (_, Some(n)) => (n, 1),
            _ => continue,
        };
        if name.is_empty() || !path.is_file() {
            continue;
        }
        sides.entry(name.to_string()).or_default()[side].push(path);
    }
    let mut pairs = Vec::new();
    for (name, [mut client, mut rs]) in sides {
        client.sort();
        rs.sort();
        let list = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (client.len(), rs.len()) {
            (1, 1) => pairs.push((name, client.remove(0), rs.remove(0))),
            (0, _) => {
                return Err(UsageError::PairsDirOneSide {
                    name,
                    missing: "client",
                    files: list(&rs),
                });
            }
            (_, 0) => {
                return Err(UsageError::PairsDirOneSide {
                    name,
                    missing: "rs",
                    files: list(&client),
                });
            }
            _ => {
                return Err(UsageError::PairsDirAmbiguous {
                    files: list(&[client, rs].concat()),
                    name,
                });
            }
        }
    }
    if pairs.is_empty() {
        return Err(UsageError::PairsDirEmpty(dir.to_path_buf()));
    }
    Ok(pairs)
}

fn options(a: &CaptureArgs) -> Result<Options, UsageError> {
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time("--since", s))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time("--until", s))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(UsageError::SinceNotBeforeUntil);
    }
    Ok(Options {
        max_connections: a.max_connections,
        max_records: a.max_records,
        list_skipped: a.list_skipped,
        filter: Filter {
            port: a.port,
            since,
            until,
        },
        ..Options::default()
    })
}

/// RFC 3339 (`2026-11-25T01:55:40.5Z`, humantime's reading) or seconds since the epoch
/// (`1795571740.5`), as nanoseconds since the epoch.
fn parse_time(flag: &'static str, s: &str) -> Result<i64, UsageError> {
    let bad = || UsageError::BadTime {
        flag,
        value: s.to_string(),
    };
    if let Some((secs, frac)) = s.split_once('.').or(Some((s, ""))).filter(|(a, b)| {
        !a.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    }) {
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        let mut digits = frac.to_string();
        digits.truncate(9);
        let nanos: i64 = format!("{digits:0<9}").parse().map_err(|_| bad())?;
        return secs
            .checked_mul(crate::units::NS_PER_S)
            .and_then(|v| v.checked_add(nanos))
            .ok_or_else(bad);
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|_| bad())?;
    let d = t.duration_since(std::time::UNIX_EPOCH).map_err(|_| bad())?;
    i64::try_from(d.as_nanos()).map_err(|_| bad())
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`.
fn parse_vip(s: &str) -> Result<(IpAddr, Option<u16>), UsageError> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    s.parse::<SocketAddr>()
        .map(|sa| (sa.ip(), Some(sa.port())))
        .map_err(|_| UsageError::BadVip(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(
        width: Option<u16>,
        color: ColorWhen,
        env: &[(&str, &str)],
        tty: Option<u16>,
    ) -> Screen {
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        Screen::resolve(&ScreenArgs { width, color }, &env, tty)
    }

    #[test]
    fn test_screen_width_flag_then_terminal_then_columns_then_80() {
        let auto = ColorWhen::Auto;
        let columns = [("COLUMNS", "132")];
        assert_eq!(screen(Some(100), auto, &columns, Some(90)).width, 100);
        assert_eq!(screen(None, auto, &columns, Some(90)).width, 90);
        assert_eq!(screen(None, auto, &columns, None).width, 132);
        let s = screen(None, auto, &[], None);
        assert_eq!((s.width, s.width_defaulted), (80, true));
        // Not a number, or too narrow to draw: ignored.
        assert_eq!(screen(None, auto, &[("COLUMNS", "wide")], None).width, 80);
        assert_eq!(screen(None, auto, &[("COLUMNS", "12")], None).width, 80);
    }

    #[test]
    fn test_screen_colour_on_a_terminal_unless_no_color() {
        assert!(screen(None, ColorWhen::Auto, &[], Some(80)).color);
        assert!(!screen(None, ColorWhen::Auto, &[], None).color);
        assert!(!screen(None, ColorWhen::Auto, &[("NO_COLOR", "1")], Some(80)).color);
        // An empty NO_COLOR does not count (no-color.org).
        assert!(screen(None, ColorWhen::Auto, &[("NO_COLOR", "")], Some(80)).color);
        assert!(screen(None, ColorWhen::Always, &[("NO_COLOR", "1")], None).color);
        assert!(!screen(None, ColorWhen::Never, &[], Some(80)).color);
    }

    #[test]
    fn test_parse_time_forms() {
        assert_eq!(
            parse_time("--since", "1795571740").unwrap(),
            1_795_571_740_000_000_000
        );
        assert_eq!(
            parse_time("--since", "1795571740.25").unwrap(),
            1_795_571_740_250_000_000
        );
        assert_eq!(
            parse_time("--since", "2026-11-25T01:55:40Z").unwrap(),
            1_795_571_740_000_000_000
        );
        assert_eq!(
            parse_time("--since", "2026-11-25T01:55:40.5Z").unwrap(),
            1_795_571_740_500_000_000
        );
        assert!(parse_time("--since", "yesterday").is_err());
    }

    #[test]
    fn test_parse_vip_forms() {
        assert_eq!(
            parse_vip("10.0.0.1").unwrap(),
            ("10.0.0.1".parse().unwrap(), None)
        );
        assert_eq!(
            parse_vip("10.0.0.1:80").unwrap(),
            ("10.0.0.1".parse().unwrap(), Some(80))
        );
        assert_eq!(
            parse_vip("[fd00::1]:443").unwrap(),
            ("fd00::1".parse().unwrap(), Some(443))
        );
        assert!(parse_vip("nope").is_err());
    }
}
