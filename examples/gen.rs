//! Writes a synthetic capture (and its ground truth) with `pcapdiag::synth`.
//!
//! ```text
//! cargo run --release --example gen -- --packets 1000000 --seed 1 -o big.pcap --truth big.tsv
//! ```
//! Flags are parsed by hand: this is a test tool, not part of the product.

use pcapdiag::synth::{
    CaptureFormat, Encap, ScenarioConfig, StaleResend, SynSchedule, write_capture,
};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
usage: gen -o FILE [options]
  --packets N          about N packets (default 1000)
  --seed S             PRNG seed (default 1)
  --anomaly-rate R     share of anomalous attempts, 0..1 (default 0.03)
  --format pcap|pcapng (default pcap)
  --nanos              nanosecond timestamps (pcap magic a1b23c4d / pcapng tsresol 9)
  --encap E            ethernet|vlan|qinq|sll|sll2|raw|null|ipip|vxlan|geneve (default ethernet)
  --ipv6               IPv6 clients and server
  --no-timestamps      clients do not send TCP timestamps
  --schedule S         linear|classic SYN retry schedule (default linear)
  --stale-resend S     fast|slow|mixed re-send after a stale ACK (default mixed)
  --clients N          client hosts (default 16)
  --gap-us N           mean gap between connection starts, µs (default 500)
  --truth FILE.tsv     also write the ground truth";

struct Args {
    cfg: ScenarioConfig,
    out: String,
    truth: Option<String>,
    format: CaptureFormat,
    encap: Encap,
}

fn parse() -> Result<Args, String> {
    let mut cfg = ScenarioConfig {
        attempts: u64::MAX,
        max_packets: Some(1000),
        ..ScenarioConfig::default()
    };
    let (mut out, mut truth) = (None, None);
    let (mut ng, mut nanos) = (false, false);
    let mut encap = Encap::Ethernet;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--packets" => cfg.max_packets = Some(num(value()?)?),
            "--seed" => cfg.seed = num(value()?)?,
            "--anomaly-rate" => {
                let r: f64 = value()?.parse().map_err(|e| format!("{flag}: {e}"))?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("{flag} must be within 0..1"));
                }
                cfg.anomaly_ppm = (r * 1e6).round() as u32;
            }
            "--format" => {
                ng = match value()?.as_str() {
                    "pcap" => false,
                    "pcapng" => true,
                    v => return Err(format!("unknown format {v}")),
                }
            }
            "--nanos" => nanos = true,
            "--encap" => encap = parse_encap(&value()?)?,
            "--ipv6" => cfg.ipv6 = true,
            "--no-timestamps" => cfg.timestamps = false,
            "--schedule" => {
                cfg.syn_schedule = match value()?.as_str() {
                    "linear" => SynSchedule::Linear,
                    "classic" => SynSchedule::Classic,
                    v => return Err(format!("unknown schedule {v}")),
                }
            }
            "--stale-resend" => {
                cfg.stale_resend = match value()?.as_str() {
                    "fast" => Some(StaleResend::Fast),
                    "slow" => Some(StaleResend::Slow),
                    "mixed" => None,
                    v => return Err(format!("unknown stale-resend {v}")),
                }
            }
            "--clients" => {
                let n = num(value()?)?;
                if !(1..=62_500).contains(&n) {
                    return Err("--clients must be 1..=62500".into());
                }
                cfg.clients = n as u32;
            }
            "--gap-us" => cfg.mean_gap_ns = num(value()?)?.max(1) * 1_000,
            "-o" | "--output" => out = Some(value()?),
            "--truth" => truth = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            f => return Err(format!("unknown flag {f}")),
        }
    }
    let format = if ng {
        CaptureFormat::Pcapng {
            tsresol: if nanos { 9 } else { 6 },
        }
    } else {
        CaptureFormat::Pcap { nanos }
    };
    let out = out.ok_or("missing -o FILE")?;
    Ok(Args {
        cfg,
        out,
        truth,
        format,
        encap,
    })
}

fn parse_encap(s: &str) -> Result<Encap, String> {
    let (a, b) = (
        Ipv4Addr::new(192, 168, 10, 1),
        Ipv4Addr::new(192, 168, 10, 2),
    );
    Ok(match s {
        "ethernet" | "eth" => Encap::Ethernet,
        "vlan" => Encap::Vlan(100),
        "qinq" => Encap::QinQ(200, 100),
        "sll" => Encap::Sll,
        "sll2" => Encap::Sll2,
        "raw" => Encap::RawIp,
        "null" => Encap::Null,
        "ipip" => Encap::IpIp {
            outer_src: a,
            outer_dst: b,
        },
        "vxlan" => Encap::Vxlan {
            outer_src: a,
            outer_dst: b,
            vni: 1,
        },
        "geneve" => Encap::Geneve {
            outer_src: a,
            outer_dst: b,
            vni: 1,
        },
        _ => return Err(format!("unknown encap {s}")),
    })
}

fn run(args: Args) -> std::io::Result<()> {
    let started = Instant::now();
    let out = BufWriter::with_capacity(1 << 20, File::create(&args.out)?);
    let mut truth = match &args.truth {
        Some(p) => Some(BufWriter::new(File::create(p)?)),
        None => None,
    };
    let stats = write_capture(
        &args.cfg,
        &args.encap,
        args.format,
        out,
        truth.as_mut().map(|w| w as &mut dyn Write),
    )?;
    if let Some(mut t) = truth {
        t.flush()?;
    }
    eprintln!(
        "wrote {} packets ({} frame bytes), {} attempts to {} in {} ms",
        stats.packets,
        stats.frame_bytes,
        stats.attempts,
        args.out,
        started.elapsed().as_millis()
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse() {
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("gen: {msg}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
        Ok(args) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gen: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
