//! Writes a synthetic capture (and its ground truth) with the `synth` crate (`synth/`).
//!
//! ```text
//! cargo run --release --example gen -- --packets 1000000 --seed 1 -o big.pcap --truth big.tsv
//! cargo run --release --example gen -- --pair --attempts 5000 -o lab/x   # x.client.pcap, ...
//! ```
//! Flags are parsed by hand: this is a test tool, not part of the product.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Instant;
use synth::pair::{self, PairConfig, PairKind};
use synth::{CaptureFormat, Encap, ScenarioConfig, StaleResend, SynSchedule, write_capture};

const USAGE: &str = "\
usage: gen -o FILE [options]
  --packets N          about N packets (default 1000)
  --seed S             PRNG seed (default 1)
  --anomaly-rate R     share of anomalous attempts, 0..1 (default 0.03)
  --format pcap|pcapng (default pcap)
  --nanos              nanosecond timestamps (pcap magic a1b23c4d / pcapng tsresol 9)
  --encap E            ethernet|vlan|qinq|sll|sll2|raw|null|ipip|vxlan|geneve|mpls|pppoe|
                       fabricpath|gre|erspan|gtpu (default ethernet)
  --ipv6               IPv6 clients and server
  --no-timestamps      clients do not send TCP timestamps
  --schedule S         linear|classic SYN retry schedule (default linear)
  --stale-resend S     fast|slow|mixed re-send after a stale ACK (default mixed)
  --clients N          client hosts (default 16)
  --gap-us N           mean gap between connection starts, µs (default 500)
  --truth FILE.tsv     also write the ground truth

usage: gen --pair -o PREFIX [options]
  writes PREFIX.client.pcap(ng), PREFIX.rs.pcap(ng), PREFIX.truth.tsv, PREFIX.nat.tsv
  --attempts N         background attempts (default 1000)
  --packets N          about N packets per side (sets --attempts to N / 14)
  --seed S, --anomaly-rate R, --clients N, --gap-us N, --schedule S, --stale-resend S,
  --format F, --nanos  as above
  --script K,K,...     scripted attempts: ok, lb_syn_drop_port_reuse,
                       rs_timewait_collision[:fast|slow][:again][:paws|isn_not_after],
                       snat_port_exhaustion[:TRIES], conntrack_insert_race,
                       syn_lost_before_rs[:N], synack_lost_after_rs, rs_slow_synack[:MS],
                       rs_refused, unmatched, capture_ended[:client|rs] (last: ends the
                       captures while its SYN is unanswered)
  --exhaustion-weight W  weight of snat_port_exhaustion in the random mix (default 0)
  --offset-ms X        RS clock minus client clock, ms, may be negative/fractional (2.5)
  --skew-ppm X         RS clock drift, ppm (default 0)
  --step-at-s S        the RS clock steps S seconds after the start ...
  --step-ms X          ... by X ms
  --snat-ports LO-HI   SNAT port range (default 32768-60999)
  --nat-timewait-s N   NAT conntrack TIME_WAIT (default 120)
  --rs-capture A-B     RS capture from A to B seconds after the start
  --no-lb-reuse-drop   the LB maps a reused client 4-tuple anew instead of dropping
  --random-fully       the NAT draws every SNAT port at random
  --nat-evicts-closing the NAT, short of ports, evicts closed connections' entries
                       (Linux >= 6.5)
  --reuse-rate R       share of clean background attempts re-using a recently closed
                       client 4-tuple (default 0)
  --first-syn-loss-rate R  share of clean background attempts whose first SYN is
                       dropped after the NAT, whatever else (default 0)
  --encap E            client capture encapsulation; --rs-encap E for the RS capture";

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
        "mpls" => Encap::Mpls(1000),
        "pppoe" => Encap::Pppoe(1),
        "fabricpath" => Encap::FabricPath,
        "gre" => Encap::Gre {
            outer_src: a,
            outer_dst: b,
        },
        "erspan" => Encap::ErspanII {
            outer_src: a,
            outer_dst: b,
        },
        "gtpu" => Encap::GtpU {
            outer_src: a,
            outer_dst: b,
            teid: 1,
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

/// `--pair` mode: the flags, and what to write where.
struct PairArgs {
    cfg: PairConfig,
    prefix: String,
    format: CaptureFormat,
    encap: Encap,
    rs_encap: Encap,
}

/// A decimal number ("-2.5") times `scale` (a power of ten), exactly.
fn scaled(s: &str, scale: i64) -> Result<i64, String> {
    let bad = || format!("not a number: {s}");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut v: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    v = v.checked_mul(scale).ok_or_else(bad)?;
    let mut unit = scale;
    for c in frac.chars() {
        unit /= 10;
        let d = c.to_digit(10).ok_or_else(bad)? as i64;
        if unit == 0 {
            break;
        }
        v += d * unit;
    }
    Ok(if neg { -v } else { v })
}

fn range_flag(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').ok_or(format!("need LO-HI, got {s}"))?;
    let n = |x: &str| x.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    Ok((n(a)?, n(b)?))
}

fn parse_pair() -> Result<PairArgs, String> {
    let mut cfg = PairConfig::default();
    let mut prefix = None;
    let (mut ng, mut nanos) = (false, false);
    let (mut encap, mut rs_encap) = (Encap::Ethernet, Encap::Ethernet);
    let (mut step_at, mut step) = (None, None);
    let mut it = std::env::args().skip(1).filter(|a| a != "--pair");
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--attempts" => cfg.attempts = num(value()?)?,
            "--packets" => cfg.attempts = num(value()?)? / 14,
            "--seed" => cfg.seed = num(value()?)?,
            "--anomaly-rate" | "--reuse-rate" | "--first-syn-loss-rate" => {
                let ppm = scaled(&value()?, 1_000_000)?;
                if !(0..=1_000_000).contains(&ppm) {
                    return Err(format!("{flag} must be within 0..1"));
                }
                let field = match flag.as_str() {
                    "--anomaly-rate" => &mut cfg.anomaly_ppm,
                    "--reuse-rate" => &mut cfg.reuse_ppm,
                    _ => &mut cfg.first_syn_loss_ppm,
                };
                *field = ppm as u32;
            }
            "--exhaustion-weight" => cfg.weights.snat_port_exhaustion = num(value()?)? as u32,
            "--script" => {
                cfg.script = value()?
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(|k| k.parse::<PairKind>())
                    .collect::<Result<_, _>>()?
            }
            "--offset-ms" => cfg.clock.offset_ns = scaled(&value()?, 1_000_000)?,
            "--skew-ppm" => cfg.clock.skew_ppb = scaled(&value()?, 1_000)?,
            "--step-at-s" => step_at = Some(num(value()?)?),
            "--step-ms" => step = Some(scaled(&value()?, 1_000_000)?),
            "--snat-ports" => {
                let (lo, hi) = range_flag(&value()?)?;
                if lo == 0 || lo > hi || hi > 65535 {
                    return Err("--snat-ports needs 1 <= LO <= HI <= 65535".into());
                }
                cfg.snat_ports = (lo as u16, hi as u16);
            }
            "--nat-timewait-s" => cfg.nat_timewait_ns = num(value()?)? * 1_000_000_000,
            "--rs-capture" => {
                let (a, b) = range_flag(&value()?)?;
                cfg.rs_capture = Some((a * 1_000_000_000, b * 1_000_000_000));
            }
            "--no-lb-reuse-drop" => cfg.lb_reuse_drop = false,
            "--random-fully" => cfg.random_snat = true,
            "--nat-evicts-closing" => cfg.nat_evicts_closing = true,
            "--clients" => cfg.clients = num(value()?)? as u32,
            "--gap-us" => cfg.mean_gap_ns = num(value()?)?.max(1) * 1_000,
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
            "--format" => {
                ng = match value()?.as_str() {
                    "pcap" => false,
                    "pcapng" => true,
                    v => return Err(format!("unknown format {v}")),
                }
            }
            "--nanos" => nanos = true,
            "--encap" => encap = parse_encap(&value()?)?,
            "--rs-encap" => rs_encap = parse_encap(&value()?)?,
            "-o" | "--output" => prefix = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            f => return Err(format!("unknown flag {f}")),
        }
    }
    match (step_at, step) {
        (Some(at), Some(s)) => cfg.clock.step = Some((cfg.start_ns + at * 1_000_000_000, s)),
        (None, None) => {}
        _ => return Err("--step-at-s and --step-ms go together".into()),
    }
    cfg.validate()?;
    let format = if ng {
        CaptureFormat::Pcapng {
            tsresol: if nanos { 9 } else { 6 },
        }
    } else {
        CaptureFormat::Pcap { nanos }
    };
    Ok(PairArgs {
        cfg,
        prefix: prefix.ok_or("missing -o PREFIX")?,
        format,
        encap,
        rs_encap,
    })
}

fn run_pair(args: PairArgs) -> std::io::Result<()> {
    let started = Instant::now();
    let ext = match args.format {
        CaptureFormat::Pcap { .. } => "pcap",
        CaptureFormat::Pcapng { .. } => "pcapng",
    };
    let create = |suffix: &str| -> std::io::Result<BufWriter<File>> {
        let path = format!("{}.{suffix}", args.prefix);
        Ok(BufWriter::with_capacity(1 << 20, File::create(path)?))
    };
    let s = pair::generate_pair(&args.cfg);
    let mut out = create(&format!("client.{ext}"))?;
    pair::write_packets(&args.encap, args.format, &s.client, &mut out)?;
    out.flush()?;
    let mut out = create(&format!("rs.{ext}"))?;
    pair::write_packets(&args.rs_encap, args.format, &s.rs, &mut out)?;
    out.flush()?;
    let mut out = create("truth.tsv")?;
    pair::write_truth(&s, &mut out)?;
    out.flush()?;
    let mut out = create("nat.tsv")?;
    s.nat.write_tsv(&mut out)?;
    out.flush()?;
    let mut causes: Vec<(&str, u64)> = Vec::new();
    for t in &s.truth {
        match causes.iter_mut().find(|v| v.0 == t.cause.code()) {
            Some(v) => v.1 += 1,
            None => causes.push((t.cause.code(), 1)),
        }
    }
    let causes: Vec<String> = causes.iter().map(|(c, n)| format!("{c}={n}")).collect();
    eprintln!(
        "wrote {} client and {} RS packets, {} attempts ({}) to {}.* in {} ms",
        s.client.len(),
        s.rs.len(),
        s.truth.len(),
        causes.join(" "),
        args.prefix,
        started.elapsed().as_millis()
    );
    Ok(())
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--pair") {
        return match parse_pair() {
            Err(msg) => {
                if !msg.is_empty() {
                    eprintln!("gen: {msg}");
                }
                eprintln!("{USAGE}");
                ExitCode::from(2)
            }
            Ok(args) => match run_pair(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gen: {e}");
                    ExitCode::FAILURE
                }
            },
        };
    }
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
