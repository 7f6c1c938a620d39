//! Command line: flags (clap) become a validated [`Config`] before any work starts.

use crate::correlate::Hints;
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  pcapdiag analyze client.pcap                 one capture: flags, attempts, setup latency
  pcapdiag analyze client.pcap rs.pcap         both sides of the VIP: NAT mapping, clock offset, a verdict per attempt
  pcapdiag analyze --vip 10.96.0.10:80 --rs-port 8080 client.pcap rs.pcap
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
    /// Only client attempts to this virtual IP (IP or IP:PORT).
    #[arg(long, value_name = "IP[:PORT]")]
    pub vip: Option<String>,
    /// Only real-server attempts to this port.
    #[arg(long, value_name = "PORT")]
    pub rs_port: Option<u16>,
    /// Keep live state for at most this many connections; beyond it the least recently
    /// active are evicted (counted in the report). Bounds memory on SYN floods.
    #[arg(long, default_value_t = pcapdiag_default_max(), value_name = "N")]
    pub max_connections: usize,
    /// No progress bar (it is drawn only when standard error is a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
}

/// What to do, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub captures: Vec<PathBuf>,
    pub json: bool,
    pub slow_ns: i64,
    pub top: usize,
    pub hints: Hints,
    pub quiet: bool,
    pub max_connections: usize,
}

const fn pcapdiag_default_max() -> usize {
    crate::flows::DEFAULT_MAX_CONNECTIONS
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
        let vip = a.vip.as_deref().map(parse_vip).transpose()?;
        Ok(Config {
            captures: a.captures,
            json: a.json,
            slow_ns,
            top: a.top,
            hints: Hints {
                vip,
                rs_port: a.rs_port,
            },
            quiet: a.quiet,
            max_connections: a.max_connections,
        })
    }
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`.
fn parse_vip(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    s.parse::<SocketAddr>()
        .map(|sa| (sa.ip(), Some(sa.port())))
        .map_err(|_| format!("--vip {s}: expected IP, IP:PORT or [IPv6]:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
