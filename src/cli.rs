//! Command line: flags (clap) become a validated [`Config`] before any work starts.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  pcapdiag analyze client.pcap                 one capture: flags, attempts, setup latency
  pcapdiag analyze client.pcap rs.pcap         both sides of the VIP (each analysed on its own for now)
  pcapdiag analyze --json capture.pcapng.gz    the full report as JSON on standard output
  tcpdump -i any -w - port 80 | pcapdiag analyze -

Exit status:
  0  every capture was read to its end (a file cut off mid-record counts: it is analysed
     up to the cut and the report says so)
  1  a capture could not be read, or stopped at corrupt data (the report covers what was read)
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
    /// Reconstruct every TCP connection and report handshake anomalies and setup latency.
    #[command(after_help = EXAMPLES)]
    Analyze(AnalyzeArgs),
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap, pcapng, optionally gzip-compressed; `-` for standard input):
    /// the client side first, then the real-server side.
    #[arg(required = true, num_args = 1..=2, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,
    /// Print the full report as JSON (schema in docs/schema.md) instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Connection setups at least this slow (milliseconds) count as slow.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub slow_ms: u64,
    /// How many of the slowest connection attempts to list in the summary.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
}

/// What to do, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub captures: Vec<PathBuf>,
    pub json: bool,
    pub slow_ns: i64,
    pub top: usize,
}

impl Config {
    pub fn from_args(a: AnalyzeArgs) -> Result<Config, String> {
        let stdin_uses = a.captures.iter().filter(|p| p.as_os_str() == "-").count();
        if stdin_uses > 1 {
            return Err("standard input (-) can be read only once".into());
        }
        let slow_ns = i64::try_from(a.slow_ms)
            .ok()
            .and_then(|v| v.checked_mul(1_000_000))
            .ok_or("--slow-ms is too large")?;
        Ok(Config {
            captures: a.captures,
            json: a.json,
            slow_ns,
            top: a.top,
        })
    }
}
