//! Pairing, clock estimate and verdicts against generated capture pairs whose truth is
//! known (`synth::pair`, in `synth/`): a client side and a real-server side through DNAT
//! and SNAT, with a clock offset, skew and step between them, and every verdict made on
//! purpose. Across seeds: every attempt gets its true verdict, every pair is right, and
//! the offset error is under 1 ms.

use crate::util::{Succeed, pcapdiag};
use pcapdiag::correlate::Hints;
use pcapdiag::report::Report;
use pcapdiag::run::Layout;
use pcapdiag::verdict::{AttemptVerdict, Cause};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use synth::{
    CaptureFormat, Encap, PairConfig, PairKind, PairScenario, PairTruth, RsClock, TrueCause,
};

const SLOW_NS: i64 = 200_000_000;

fn script() -> Vec<PairKind> {
    [
        "ok",
        "lb_syn_drop_port_reuse",
        "rs_timewait_collision:slow",
        "rs_timewait_collision:fast",
        "rs_timewait_collision:fast:again",
        "rs_timewait_collision:slow:isn_not_after",
        "snat_port_exhaustion:2",
        "conntrack_insert_race",
        "syn_lost_before_rs",
        "syn_lost_before_rs:2",
        "synack_lost_after_rs",
        "rs_slow_synack:400",
        "rs_refused",
        "unmatched",
    ]
    .iter()
    .map(|k| k.parse().unwrap())
    .collect()
}

/// A generated pair, analysed as a set of two captures as the CLI would: the scenario and
/// the report.
struct Judged {
    scenario: PairScenario,
    report: Report,
}

impl Judged {
    fn pair(&self) -> &pcapdiag::report::PairResult {
        &self.report.pairs[0]
    }

    fn verdicts(&self) -> &pcapdiag::verdict::VerdictReport {
        self.pair().verdicts.as_ref().unwrap()
    }

    /// The pair's base rates, in words (`reused_tuple: first SYN lost on ...`).
    fn base_rates(&self) -> String {
        let rates: Vec<String> = self
            .verdicts()
            .base_rates
            .iter()
            .map(|r| format!("{}: {}", r.pattern.code(), r.text()))
            .collect();
        rates.join("; ")
    }

    /// Each true attempt with the analyzer's verdict on it (by client 4-tuple and ISN).
    fn judged(&self, label: &str) -> Vec<(&PairTruth, &AttemptVerdict)> {
        let ours: HashMap<(SocketAddr, u32), &AttemptVerdict> = self
            .verdicts()
            .attempts
            .iter()
            .map(|v| ((SocketAddr::new(v.client.ip, v.client.port), v.isn.0), v))
            .collect();
        assert_eq!(ours.len(), self.scenario.truth.len(), "{label}: attempts");
        self.scenario
            .truth
            .iter()
            .map(|t| {
                let v = ours
                    .get(&(t.client, t.isn))
                    .unwrap_or_else(|| panic!("{label}: no attempt for {t:?}"));
                (t, *v)
            })
            .collect()
    }
}

/// Generates the pair of `cfg`, writes both captures (client side Ethernet, RS side SLL2)
/// and analyses them as one set, the real-server side first: which capture is which comes
/// from the traffic.
fn judge(label: &str, cfg: &PairConfig) -> Judged {
    let dir = tempfile::tempdir().unwrap();
    let (cp, rp) = (dir.path().join("c.pcap"), dir.path().join("r.pcap"));
    let scenario = synth::generate_pair(cfg);
    let format = CaptureFormat::Pcap { nanos: true };
    synth::pair::write_packets(
        &Encap::Ethernet,
        format,
        &scenario.client,
        std::io::BufWriter::new(std::fs::File::create(&cp).unwrap()),
    )
    .unwrap();
    synth::pair::write_packets(
        &Encap::Sll2,
        format,
        &scenario.rs,
        std::io::BufWriter::new(std::fs::File::create(&rp).unwrap()),
    )
    .unwrap();
    let client = pcapdiag::capture::analyze_file(&cp, &Default::default()).unwrap();
    let rs = pcapdiag::capture::analyze_file(&rp, &Default::default()).unwrap();
    let report = pcapdiag::run::assemble(
        vec![Ok(rs), Ok(client)],
        Layout::Set(&[]),
        &Hints::default(),
        SLOW_NS,
    );
    let sides: Vec<&str> = report
        .vantage_points
        .iter()
        .map(|p| p.vantage.code())
        .collect();
    assert_eq!(sides, ["rs", "client"], "{label}");
    assert_eq!(report.pairs.len(), 1, "{label}: one pair");
    let pair = &report.pairs[0];
    assert_eq!((pair.client_capture, pair.rs_capture), (Some(1), Some(0)));
    assert!(pair.pairing.is_some() && pair.verdicts.is_some(), "{label}");
    Judged { scenario, report }
}

/// The verdict a true attempt should get: its true cause when that made the setup slow
/// (delay at least the threshold) or fail, or when it is `unmatched`; else `ok`.
fn expected(t: &PairTruth) -> Cause {
    // The codes are the same (test_every_true_cause_is_an_analyzer_cause).
    let cause = Cause::from_code(t.cause.code()).expect("an analyzer cause");
    let failed = t.setup_latency_ns.is_none();
    if t.cause == TrueCause::Unmatched || failed || t.delay_ns as i64 >= SLOW_NS {
        cause
    } else {
        Cause::Ok
    }
}

/// [`expected`] as a code, the true cause named `cause` (a capture set names a lost SYN by
/// where it was seen to die).
fn expected_code(t: &PairTruth, cause: &'static str) -> &'static str {
    if expected(t) == Cause::Ok {
        "ok"
    } else {
        cause
    }
}

/// The generated incident of the capture-set tests: 200 attempts, 15 % of them anomalous
/// (and the scripted ones), through three backends, the RS clock 250 ms ahead and 10 ppm
/// fast.
fn three_backends(seed: u64) -> PairConfig {
    let base = PairConfig::default();
    PairConfig {
        seed,
        attempts: 200,
        anomaly_ppm: 150_000,
        clock: RsClock {
            offset_ns: 250_000_000,
            skew_ppb: 10_000,
            step: None,
        },
        rss: vec![
            base.rss[0],
            "10.244.2.9:8080".parse().unwrap(),
            "10.244.3.4:8080".parse().unwrap(),
        ],
        script: script(),
        ..base
    }
}

/// Writes a capture per real-server host, `rs-K.pcap`: the packets to and from backend K,
/// on a clock `apart_ns` × K ahead of the RS clock. Returns the file names.
fn write_hosts(
    dir: &std::path::Path,
    cfg: &PairConfig,
    s: &PairScenario,
    apart_ns: i64,
) -> Vec<String> {
    cfg.rss
        .iter()
        .enumerate()
        .map(|(k, rip)| {
            let host: Vec<(u64, synth::TcpSpec)> =
                s.rs.iter()
                    .filter(|(_, p)| {
                        (p.dst, p.dport) == (rip.ip(), rip.port())
                            || (p.src, p.sport) == (rip.ip(), rip.port())
                    })
                    .copied()
                    .collect();
            let name = format!("rs-{k}.pcap");
            write_sll2(&dir.join(&name), &shift(&host, k as i64 * apart_ns));
            name
        })
        .collect()
}

/// Every attempt's verdict is its expected one ([`expected`]); one whose true cause cost
/// less than the threshold has that cause as its signature, and with `clean`, a clean
/// attempt has none. Returns how many attempts had each true cause.
fn assert_verdicts(label: &str, j: &Judged, clean: bool) -> HashMap<TrueCause, usize> {
    let mut seen: HashMap<TrueCause, usize> = HashMap::new();
    for (t, v) in j.judged(label) {
        *seen.entry(t.cause).or_default() += 1;
        let expect = expected(t);
        assert_eq!(
            v.verdict,
            expect,
            "{label}: {}\ntruth {t:?}",
            v.notes().explanation
        );
        if expect == Cause::Ok && t.cause != TrueCause::Ok {
            let cause = Cause::from_code(t.cause.code()).unwrap();
            assert_eq!(
                v.signature,
                Some(cause),
                "{label}: {}\ntruth {t:?}",
                v.notes().explanation
            );
        }
        if clean && t.cause == TrueCause::Ok {
            assert_eq!(
                v.signature,
                None,
                "{label}: a clean attempt with a cause: {}\ntruth {t:?}",
                v.notes().explanation
            );
        }
    }
    seen
}

fn check(label: &str, cfg: PairConfig) {
    let j = judge(label, &cfg);
    let (scenario, pair) = (&j.scenario, j.pair());
    let pairing = pair.pairing.as_ref().unwrap();
    let seen = assert_verdicts(label, &j, false);
    let mut worst_offset_err = 0i64;
    for (t, v) in j.judged(label) {
        // The pair: the SNAT tuple and real server of the answered SYN are among ours.
        if t.cause != TrueCause::Unmatched
            && let Some(fin) = t.final_syn()
            && let (Some(snat), Some(rip), Some(_)) = (fin.snat, fin.rip, fin.rs_ns)
        {
            let found = v.rs_tuples.iter().any(|t| {
                SocketAddr::new(t.client.ip, t.client.port) == snat
                    && SocketAddr::new(t.server.ip, t.server.port) == rip
            });
            assert!(
                found,
                "{label}: pair {snat} -> {rip} not in {:?}\ntruth {t:?}",
                v.rs_tuples
            );
        }
        if t.cause != TrueCause::Unmatched {
            let err = pairing.clock.offset_at(t.first_syn_ns as i64) - t.offset_at_syn_ns;
            worst_offset_err = worst_offset_err.max(err.abs());
        }
    }
    assert!(
        worst_offset_err < 1_000_000,
        "{label}: offset error {worst_offset_err} ns"
    );
    // The set's clock graph puts the RS capture on the client's clock with the offset the
    // generator gave it at the client's first attempt.
    let rs_clock = j.report.vantage_points[0]
        .clock
        .as_ref()
        .expect("a shared handshake");
    assert_eq!(rs_clock.path.len(), 2, "{label}: {rs_clock:?}");
    let first = scenario
        .truth
        .iter()
        .filter(|t| t.cause != TrueCause::Unmatched)
        .min_by_key(|t| t.first_syn_ns)
        .unwrap();
    let err = (rs_clock.offset_ns - first.offset_at_syn_ns).abs();
    assert!(
        err < 1_000_000,
        "{label}: graph offset error {err} ns: {rs_clock:?}"
    );
    // Every scripted kind happened: every cause but `ok`, `unexplained` (which the
    // generator never leaves) and `capture_ended` (not in this script).
    let scripted = TrueCause::ALL.into_iter().filter(|k| {
        !matches!(
            k,
            TrueCause::Ok | TrueCause::Unexplained | TrueCause::CaptureEnded
        )
    });
    for k in scripted {
        assert!(
            seen.contains_key(&k),
            "{label}: no {k:?} generated: {seen:?}"
        );
    }
    // The NAT mapping: the VIP to the real servers, the client addresses to the SNAT address.
    assert!(
        pairing
            .nat
            .services
            .iter()
            .all(|s| SocketAddr::new(s.vip.ip, s.vip.port) == cfg.vip)
    );
    assert!(
        pairing
            .nat
            .snat
            .iter()
            .all(|(_, snat, _)| *snat == cfg.snat_ip)
    );
}

/// The simulator's truth and the analyzer's verdicts share one list of codes: every true
/// cause is an analyzer cause, a distinct one each, so the tests can compare them by code.
#[test]
fn test_every_true_cause_is_an_analyzer_cause() {
    let mut seen = std::collections::HashSet::new();
    for tc in TrueCause::ALL {
        let c = Cause::from_code(tc.code())
            .unwrap_or_else(|| panic!("{tc:?}: code {} is not an analyzer cause", tc.code()));
        assert_eq!(c.code(), tc.code());
        assert!(seen.insert(c), "{tc:?}: {c:?} twice");
    }
}

#[test]
fn test_pairs_verdicts_and_clock_offset_skew() {
    let cfg = PairConfig {
        seed: 11,
        attempts: 400,
        anomaly_ppm: 150_000,
        clock: RsClock {
            offset_ns: 37_500_000,
            skew_ppb: 20_000,
            step: None,
        },
        script: script(),
        ..Default::default()
    };
    check("seed 11, +37.5 ms, 20 ppm", cfg);
}

#[test]
fn test_pairs_verdicts_negative_offset_and_step() {
    let start = PairConfig::default().start_ns;
    let cfg = PairConfig {
        seed: 12,
        attempts: 400,
        anomaly_ppm: 150_000,
        clock: RsClock {
            offset_ns: -1_250_000_000,
            skew_ppb: -50_000,
            step: Some((start + 300_000_000_000, 30_000_000)),
        },
        script: script(),
        ..Default::default()
    };
    check("seed 12, -1.25 s, -50 ppm, +30 ms step", cfg);
}

#[test]
fn test_pairs_verdicts_ipv6_classic_schedule() {
    let base = PairConfig::default();
    let v6 = |s: &str| s.parse::<SocketAddr>().unwrap();
    let cfg = PairConfig {
        seed: 13,
        attempts: 300,
        anomaly_ppm: 200_000,
        vip: v6("[fd00:10:96::a]:80"),
        rss: vec![
            v6("[fd00:10:244:2::11]:8080"),
            v6("[fd00:10:244:3::12]:8080"),
        ],
        snat_ip: "fd00:18::2".parse().unwrap(),
        syn_schedule: synth::SynSchedule::Classic,
        clock: RsClock {
            offset_ns: 2_000_000,
            skew_ppb: 0,
            step: None,
        },
        script: script(),
        ..base
    };
    check("seed 13, IPv6, classic schedule", cfg);
}

/// Shifts a capture onto a clock `by` ns ahead (negative: behind).
fn shift(packets: &[(u64, synth::TcpSpec)], by: i64) -> Vec<(u64, synth::TcpSpec)> {
    packets
        .iter()
        .map(|(t, p)| (t.saturating_add_signed(by), *p))
        .collect()
}

/// A generated incident as SREs collect it, across seeds: the client side rotated into
/// three files, one capture per real-server host (each host's clock its own: the RS clock
/// plus 1.5 s per host), and the NAT box's own capture (both legs, on a clock 0.7 s
/// behind the client's), all in one directory. From the directory alone: one verdict per
/// true attempt, the true cause (a SYN lost before the real server is one the node saw
/// enter the NAT box and never leave: `dropped_in_nat`), and every capture's clock
/// within 1 ms of the truth.
#[test]
fn test_generated_capture_sets_across_seeds() {
    for seed in [21, 22, 23] {
        let cfg = three_backends(seed);
        let s = synth::generate_pair(&cfg);
        let dir = tempfile::tempdir().unwrap();
        let third = s.client.len().div_ceil(3);
        for (i, part) in s.client.chunks(third).enumerate() {
            write_sll2(&dir.path().join(format!("client.pcap{i}")), part);
        }
        write_hosts(dir.path(), &cfg, &s, 1_500_000_000);
        // The node: the client's packets, and the real servers' on the client's clock.
        let true_time = |rs: u64| {
            let mut t = rs;
            for _ in 0..3 {
                t = rs.saturating_add_signed(-cfg.clock.offset_at(t, cfg.start_ns));
            }
            t
        };
        let mut node: Vec<(u64, synth::TcpSpec)> = s.client.clone();
        node.extend(s.rs.iter().map(|(t, p)| (true_time(*t), *p)));
        node.sort_by_key(|(t, _)| *t);
        write_sll2(&dir.path().join("node.pcap"), &shift(&node, -700_000_000));

        let out = pcapdiag()
            .args(["analyze", "--json", "-q"])
            .arg(dir.path())
            .succeed();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let label = format!("seed {seed}");
        let points = v["vantage_points"].as_array().unwrap();
        let kinds: Vec<(&str, &str)> = points
            .iter()
            .map(|p| {
                let file = p["file"].as_str().unwrap();
                (
                    file.rsplit('/').next().unwrap(),
                    p["vantage"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("client.pcap*", "client"),
                ("node.pcap", "node"),
                ("rs-0.pcap", "rs"),
                ("rs-1.pcap", "rs"),
                ("rs-2.pcap", "rs"),
            ],
            "{label}"
        );
        // Clocks: the node 0.7 s behind, each host the RS clock plus its 1.5 s.
        let first = s
            .truth
            .iter()
            .filter(|t| t.cause != TrueCause::Unmatched)
            .min_by_key(|t| t.first_syn_ns)
            .unwrap();
        let want = [
            0,
            -700_000_000,
            first.offset_at_syn_ns,
            first.offset_at_syn_ns + 1_500_000_000,
            first.offset_at_syn_ns + 3_000_000_000,
        ];
        for (p, want) in points.iter().zip(want) {
            let got = p["clock"]["offset_ns"].as_i64().unwrap();
            assert!((got - want).abs() < 1_000_000, "{label}: {p}");
        }
        // One verdict per true attempt, the true cause.
        let mut ours: HashMap<(u64, u32), &serde_json::Value> = HashMap::new();
        for p in v["pairs"].as_array().unwrap() {
            for a in p["verdicts"]["attempts"].as_array().unwrap() {
                let key = (
                    a["client"]["port"].as_u64().unwrap(),
                    a["isn"].as_u64().unwrap() as u32,
                );
                assert!(
                    ours.insert(key, a).is_none(),
                    "{label}: {key:?} judged twice"
                );
            }
        }
        assert_eq!(ours.len(), s.truth.len(), "{label}");
        for t in &s.truth {
            let a = ours[&(t.client.port() as u64, t.isn)];
            let cause = match t.cause {
                TrueCause::SynLostBeforeRs => "dropped_in_nat",
                c => c.code(),
            };
            assert_eq!(
                a["verdict"],
                expected_code(t, cause),
                "{label}: {}\ntruth {t:?}",
                a["explanation"]
            );
        }
    }
}

/// The seeds the situation tests below run on.
const SEEDS: std::ops::RangeInclusive<u64> = 1..=5;

/// Writes packets as one nanosecond pcap file, Linux cooked (v2), as `tcpdump -i any`.
fn write_sll2(path: &std::path::Path, packets: &[(u64, synth::TcpSpec)]) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    synth::pair::write_packets(
        &Encap::Sll2,
        CaptureFormat::Pcap { nanos: true },
        packets,
        f,
    )
    .unwrap();
}

/// Where a truth row's lost SYNs died, if it lost any before the RS: inside the NAT box
/// (`false`) or on the network after it (`true`).
fn lost_after_nat(t: &PairTruth) -> Option<bool> {
    t.syns.iter().find_map(|x| match x.fate {
        synth::SynFate::Lost => Some(false),
        synth::SynFate::LostAfterNat => Some(true),
        _ => None,
    })
}

/// SYNs lost before the real server, some inside the NAT box and some on the network
/// after it, seen by the client, the NAT box's own capture (both legs: the client's
/// packets and the post-NAT leg as they left the box, on a clock 0.7 s behind) and the
/// real servers (odd seeds: one capture of them all; even: one per host). A SYN the node
/// saw leave the box and no real server saw was lost between them: `syn_lost_before_rs`,
/// its first try's path `nat_out` without `rs`, and the explanation says where; only one
/// the node saw enter and never leave is `dropped_in_nat`. Every other attempt keeps its
/// true verdict. (With a capture per host, the node is the real-server side of the
/// client's attempts, as it saw more of them than any one host: its leg is not a sighting
/// of the real server. With one real-server capture, that capture is, not the node.)
#[test]
fn test_syn_lost_between_nat_and_real_server_is_not_dropped_in_nat() {
    for seed in SEEDS {
        let cfg = PairConfig {
            seed,
            attempts: 300,
            mean_gap_ns: 20_000_000,
            anomaly_ppm: 0,
            first_syn_loss_ppm: 60_000,
            syn_loss_after_nat_ppm: 500_000,
            clock: RsClock {
                offset_ns: 250_000_000,
                skew_ppb: 10_000,
                step: None,
            },
            script: vec!["syn_lost_before_rs:2".parse().unwrap(); 4],
            ..Default::default()
        };
        // Odd seeds: one real-server-side capture; even: one per real-server host.
        let per_host = seed % 2 == 0;
        let label =
            format!("seed {seed}, losses inside and after the NAT box, per host {per_host}");
        let s = synth::generate_pair(&cfg);
        // What the scenario claims: both kinds of loss, a few of each.
        let count = |after: bool| {
            s.truth
                .iter()
                .filter(|t| t.cause == TrueCause::SynLostBeforeRs)
                .filter(|t| lost_after_nat(t) == Some(after))
                .count()
        };
        let (inside, after) = (count(false), count(true));
        assert!(
            inside >= 3 && after >= 3,
            "{label}: {inside} lost inside the NAT box, {after} after it"
        );
        let dir = tempfile::tempdir().unwrap();
        write_sll2(&dir.path().join("client.pcap"), &s.client);
        let mut names = vec![
            ("client.pcap".to_string(), "client"),
            ("node.pcap".into(), "node"),
        ];
        if per_host {
            let hosts = write_hosts(dir.path(), &cfg, &s, 0);
            names.extend(hosts.into_iter().map(|name| (name, "rs")));
        } else {
            write_sll2(&dir.path().join("rs.pcap"), &s.rs);
            names.push(("rs.pcap".into(), "rs"));
        }
        let mut node = s.client.clone();
        node.extend(s.node.iter().copied());
        node.sort_by_key(|(t, _)| *t);
        write_sll2(&dir.path().join("node.pcap"), &shift(&node, -700_000_000));

        let out = pcapdiag()
            .args(["analyze", "--json", "-q"])
            .arg(dir.path())
            .succeed();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let kinds: Vec<(String, &str)> = v["vantage_points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let file = p["file"].as_str().unwrap();
                (
                    file.rsplit('/').next().unwrap().to_string(),
                    p["vantage"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(kinds, names, "{label}");
        // With one real-server capture, every attempt is judged against it, whether or
        // not the node saw a try the real server did not (not split off into a pair
        // against the node's leg).
        if !per_host {
            let pairs = v["pairs"].as_array().unwrap();
            assert_eq!(pairs.len(), 1, "{label}");
            let rs = pairs[0]["rs_file"].as_str().unwrap();
            assert!(rs.ends_with("rs.pcap"), "{label}: {rs}");
        }
        let mut ours: HashMap<(String, u64, u32), &serde_json::Value> = HashMap::new();
        for p in v["pairs"].as_array().unwrap() {
            for a in p["verdicts"]["attempts"].as_array().unwrap() {
                let key = (
                    a["client"]["ip"].as_str().unwrap().to_string(),
                    a["client"]["port"].as_u64().unwrap(),
                    a["isn"].as_u64().unwrap() as u32,
                );
                assert!(
                    ours.insert(key.clone(), a).is_none(),
                    "{label}: {key:?} twice"
                );
            }
        }
        assert_eq!(ours.len(), s.truth.len(), "{label}");
        let hops = |a: &serde_json::Value, i: usize| -> Vec<String> {
            a["path"][i]
                .as_array()
                .map(|h| h.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        for t in &s.truth {
            let key = (t.client.ip().to_string(), u64::from(t.client.port()), t.isn);
            let a = ours
                .get(&key)
                .unwrap_or_else(|| panic!("{label}: no verdict for {t:?}"));
            let why = format!(
                "{label}: {}\npath {}\ntruth {t:?}",
                a["explanation"], a["path"]
            );
            let cause = match (t.cause, lost_after_nat(t)) {
                (TrueCause::SynLostBeforeRs, Some(false)) => "dropped_in_nat",
                (c, _) => c.code(),
            };
            assert_eq!(a["verdict"], expected_code(t, cause), "{why}");
            if t.cause != TrueCause::SynLostBeforeRs {
                continue;
            }
            let first = hops(a, 0);
            let has = |h: &str| first.iter().any(|x| x == h);
            if lost_after_nat(t) == Some(true) {
                assert!(has("nat_out") && !has("rs"), "{why}");
                assert!(
                    a["explanation"]
                        .as_str()
                        .unwrap()
                        .contains("lost on the network between them"),
                    "{why}"
                );
            } else {
                assert!(has("nat_in") && !has("nat_out") && !has("rs"), "{why}");
            }
        }
        eprintln!("{label}: {inside} lost inside the NAT box, {after} after it");
    }
}

/// RS-clock arrival times of every SYN that reached the real server, sorted.
fn rs_arrivals(s: &PairScenario) -> Vec<u64> {
    let mut v: Vec<u64> = s
        .truth
        .iter()
        .flat_map(|t| t.syns.iter().filter_map(|x| x.rs_ns))
        .collect();
    v.sort_unstable();
    v
}

/// Whether another attempt's SYN reached the RS within [-1 ms, +3 ms] of when this
/// attempt's first SYN would have (the analyzer's window for a concurrent SYN).
fn concurrent_syn(s: &PairScenario, arrivals: &[u64], t: &PairTruth) -> bool {
    let would = s
        .nat
        .clock
        .rs_ns(t.first_syn_ns + t.fwd_delay_ns, s.nat.epoch_ns);
    let own: Vec<u64> = t.syns.iter().filter_map(|x| x.rs_ns).collect();
    let lo = arrivals.partition_point(|&a| a < would - 1_000_000);
    arrivals[lo..]
        .iter()
        .take_while(|&&a| a <= would + 3_000_000)
        .any(|a| !own.contains(a))
}

/// The capture stopped while an attempt's SYN was unanswered, before its retry was due:
/// `capture_ended`, not a loss, whichever capture stopped first (odd seeds: the client's;
/// even: the RS's). Everything else in the random mix keeps its true verdict.
#[test]
fn test_capture_cut_mid_handshake_is_capture_ended() {
    // Seed 6: the RS capture stops between a SYN it saw and the late SYN-ACK the client
    // got: `rs_slow_synack`, not `unexplained`.
    for seed in 1..=6 {
        let rs_first = seed % 2 == 0;
        let cfg = PairConfig {
            seed,
            attempts: 150,
            mean_gap_ns: 20_000_000,
            anomaly_ppm: 100_000,
            // Not the LB's reuse drops: too few of them in 150 attempts for the base rate
            // to name reuse (the analyzer then rightly says syn_lost_before_rs).
            weights: synth::PairWeights {
                lb_syn_drop_port_reuse: 0,
                ..Default::default()
            },
            script: vec![
                "syn_lost_before_rs".parse().unwrap(),
                PairKind::CaptureEnded { rs: rs_first },
            ],
            ..Default::default()
        };
        let label = format!("seed {seed}, capture_ended rs first: {rs_first}");
        let j = judge(&label, &cfg);
        let seen = assert_verdicts(&label, &j, true);
        let cut: Vec<_> = j
            .judged(&label)
            .into_iter()
            .filter(|(t, _)| matches!(t.intent, PairKind::CaptureEnded { .. }))
            .collect();
        assert_eq!(cut.len(), 1, "{label}");
        let (t, v) = cut[0];
        assert_eq!(t.cause, TrueCause::CaptureEnded, "{label}: {t:?}");
        assert_eq!(
            v.verdict,
            Cause::CaptureEnded,
            "{label}: {}",
            v.notes().explanation
        );
        let nat = &j.scenario.nat;
        assert_eq!(
            rs_first,
            nat.rs_capture.1 < nat.client_capture_end.unwrap(),
            "{label}"
        );
        assert!(seen.len() >= 4, "{label}: a mix expected: {seen:?}");
        eprintln!("{label}: {seen:?}");
    }
}

/// The hard negative of `lb_syn_drop_port_reuse`: a client that re-uses most of its
/// 4-tuples within 110 s of closing them, while an unrelated rule drops first SYNs at the
/// same rate on reused and fresh tuples, and the LB does not drop on reuse. Reuse and loss
/// coincide often (at least 10 times a seed); the base rate says they are unrelated, so
/// each loss is `syn_lost_before_rs`.
#[test]
fn test_reuse_heavy_client_with_unrelated_drops_is_not_called_reuse() {
    for seed in SEEDS {
        let cfg = reuse_cfg(seed, false);
        let label = format!("seed {seed}, recycling client, unrelated drops");
        let j = judge(&label, &cfg);
        let label = format!("{label}: {}", j.base_rates());
        let seen = assert_verdicts(&label, &j, true);
        let (reused, reused_lost, fresh_lost) = reuse_counts(&j.scenario);
        assert!(
            reused_lost >= 10 && fresh_lost >= 2,
            "{label}: {reused_lost} losses on {reused} reused tuples, {fresh_lost} fresh"
        );
        assert!(reused * 2 > j.scenario.truth.len(), "{label}: {reused}");
        assert!(
            !seen.contains_key(&TrueCause::LbSynDropPortReuse),
            "{label}"
        );
        assert!(seen[&TrueCause::SynLostBeforeRs] >= 12, "{label}: {seen:?}");
        eprintln!("{label}: truth {seen:?}");
    }
}

/// The same recycling client and unrelated drops, with an LB that drops a SYN on a tuple
/// it still holds closed (IPVS `conn_reuse_mode=1`): now reused tuples lose their first
/// SYN far more often than fresh ones, and those are `lb_syn_drop_port_reuse` while the
/// fresh tuples' losses stay `syn_lost_before_rs`.
#[test]
fn test_reuse_dropped_by_the_lb_is_called_reuse_beside_unrelated_drops() {
    // Seed 15: a first SYN dropped on reuse whose retry met a TIME_WAIT socket: the loss
    // of the first SYN counts, although a stale ACK answered the second.
    for seed in [1, 2, 3, 15] {
        let cfg = reuse_cfg(seed, true);
        let label = format!("seed {seed}, recycling client, LB drops on reuse");
        let j = judge(&label, &cfg);
        let label = format!("{label}: {}", j.base_rates());
        let seen = assert_verdicts(&label, &j, true);
        assert!(
            seen[&TrueCause::LbSynDropPortReuse] >= 10,
            "{label}: {seen:?}"
        );
        assert!(seen[&TrueCause::SynLostBeforeRs] >= 2, "{label}: {seen:?}");
        eprintln!("{label}: truth {seen:?}");
    }
}

/// A client recycling 4-tuples (60 %, within 110 s of their close; 30 % with the LB
/// dropping) and a rule dropping 6 % of first SYNs regardless of the tuple; `lb` is
/// whether the LB drops on reuse. About 25 unrelated losses on reused tuples.
fn reuse_cfg(seed: u64, lb: bool) -> PairConfig {
    PairConfig {
        seed,
        attempts: 700,
        mean_gap_ns: 40_000_000,
        anomaly_ppm: 0,
        reuse_ppm: if lb { 300_000 } else { 600_000 },
        first_syn_loss_ppm: 60_000,
        lb_reuse_drop: lb,
        ..Default::default()
    }
}

/// From the truth: attempts on a client 4-tuple whose previous connection closed less
/// than 120 s before, how many of those lost their first SYN, and how many fresh ones did.
fn reuse_counts(s: &PairScenario) -> (usize, usize, usize) {
    let mut closed: HashMap<SocketAddr, u64> = HashMap::new();
    let (mut reused, mut reused_lost, mut fresh_lost) = (0, 0, 0);
    for t in &s.truth {
        let lost = t.syns.len() > 1;
        if closed
            .get(&t.client)
            .is_some_and(|&c| c < t.first_syn_ns && t.first_syn_ns - c < 120_000_000_000)
        {
            reused += 1;
            reused_lost += usize::from(lost);
        } else {
            fresh_lost += usize::from(lost);
        }
        if t.setup_latency_ns.is_some() {
            closed.insert(t.client, t.last_ns);
        }
    }
    (reused, reused_lost, fresh_lost)
}

/// `--random-fully`, sparse traffic (150 ms between attempts on average): two clients'
/// SYNs drew the same SNAT tuple within a millisecond, the second was dropped, and its
/// retry drew a new port, so neither capture shows the port it lost. Concurrent SYNs are
/// rare except at the races, so the base rate names the race: `conntrack_insert_race`.
/// Needs the analyzer's base-rate test for a race on a port it cannot see.
#[test]
fn test_random_snat_race_victims_are_conntrack_insert_race() {
    for seed in SEEDS {
        let cfg = PairConfig {
            seed,
            attempts: 200,
            mean_gap_ns: 150_000_000,
            anomaly_ppm: 0,
            random_snat: true,
            script: vec![PairKind::ConntrackInsertRace; 6],
            ..Default::default()
        };
        let label = format!("seed {seed}, random SNAT, sparse, 6 races");
        let j = judge(&label, &cfg);
        let s = &j.scenario;
        // What the scenario claims: at least 5 victims, their lost port never on the RS
        // side, and concurrent SYNs rare elsewhere.
        let arrivals = rs_arrivals(s);
        let victims: Vec<&PairTruth> = s
            .truth
            .iter()
            .filter(|t| t.cause == TrueCause::ConntrackInsertRace)
            .collect();
        assert!(victims.len() >= 5, "{label}: {} victims", victims.len());
        for t in &victims {
            let lost = t.syns[0].snat.unwrap().port();
            assert!(
                t.syns[1..]
                    .iter()
                    .all(|x| x.snat.is_none_or(|a| a.port() != lost)),
                "{label}: {t:?}"
            );
            assert!(concurrent_syn(s, &arrivals, t), "{label}: {t:?}");
        }
        let others = s
            .truth
            .iter()
            .filter(|t| t.cause != TrueCause::ConntrackInsertRace)
            .filter(|t| concurrent_syn(s, &arrivals, t))
            .count();
        assert!(others * 10 < s.truth.len(), "{label}: {others} concurrent");
        let kept = j.pair().pairing.as_ref().unwrap().nat.ports_kept;
        assert!(
            kept * 50 < s.truth.len() as u64,
            "{label}: {kept} ports kept"
        );
        let label = format!("{label}: {}", j.base_rates());
        eprintln!(
            "{label}: {} victims, {others} other attempts with a concurrent SYN",
            victims.len()
        );
        assert_verdicts(&label, &j, true);
    }
}

/// The hard negative of the race on an unseen port: `--random-fully`, dense traffic (a SYN
/// every millisecond on average, so nearly every SYN has another within milliseconds), and
/// a rule dropping 4 % of first SYNs regardless. Lost SYNs have a concurrent SYN no more
/// often than answered ones, so none is called a race: `syn_lost_before_rs`.
#[test]
fn test_dense_random_snat_with_unrelated_drops_is_not_called_race() {
    for seed in SEEDS {
        let cfg = PairConfig {
            seed,
            attempts: 500,
            mean_gap_ns: 1_000_000,
            anomaly_ppm: 0,
            random_snat: true,
            first_syn_loss_ppm: 40_000,
            ..Default::default()
        };
        let label = format!("seed {seed}, random SNAT, dense, unrelated drops");
        let j = judge(&label, &cfg);
        let s = &j.scenario;
        let arrivals = rs_arrivals(s);
        let lost: Vec<&PairTruth> = s
            .truth
            .iter()
            .filter(|t| t.cause == TrueCause::SynLostBeforeRs)
            .collect();
        let with = lost
            .iter()
            .filter(|t| concurrent_syn(s, &arrivals, t))
            .count();
        assert!(
            lost.len() >= 10 && with * 10 >= lost.len() * 7,
            "{label}: {with} of {} losses with a concurrent SYN",
            lost.len()
        );
        let label = format!("{label}: {}", j.base_rates());
        let seen = assert_verdicts(&label, &j, true);
        assert!(
            !seen.contains_key(&TrueCause::ConntrackInsertRace),
            "{label}"
        );
        eprintln!(
            "{label}: {with} of {} losses with a concurrent SYN; truth {seen:?}",
            lost.len()
        );
    }
}

/// A NAT that evicts closed connections' entries (Linux ≥ 6.5) on a small SNAT range kept
/// busy by short connections toward one real server: every tuple was used within the last
/// 120 s, but only live connections hold one, and the NAT re-uses tuples within
/// milliseconds to seconds of their close. Unrelated first-SYN drops there are
/// `syn_lost_before_rs`, not exhaustion (the analyzer must learn the short hold from the
/// captures); in the same traffic, a scripted exhaustion, whose fillers stay open, is
/// `snat_port_exhaustion`. (Two runs a seed: a drop while the range really is nearly all
/// held is exhaustion by the analyzer's rule, whatever dropped it.)
#[test]
fn test_evicting_nat_exhaustion_needs_live_connections() {
    let busy = |seed: u64, drops: bool| PairConfig {
        seed,
        attempts: 1800,
        mean_gap_ns: 40_000_000,
        anomaly_ppm: 0,
        snat_ports: (40000, 40063),
        // One real server, so that exhaustion is the range's, not one backend's (that
        // case is test_exhaustion_toward_one_backend_whichever_backend_the_retry_reached).
        rss: vec!["10.244.2.11:8080".parse().unwrap()],
        nat_evicts_closing: true,
        stale_resend: Some(synth::StaleResend::Fast),
        first_syn_loss_ppm: if drops { 15_000 } else { 0 },
        script: if drops {
            Vec::new()
        } else {
            vec!["snat_port_exhaustion:2".parse().unwrap()]
        },
        ..Default::default()
    };
    for seed in SEEDS {
        for drops in [true, false] {
            let cfg = busy(seed, drops);
            let what = if drops {
                "unrelated drops"
            } else {
                "exhaustion"
            };
            let label = format!("seed {seed}, evicting NAT, 64 SNAT ports, one RS, {what}");
            let j = judge(&label, &cfg);
            let s = &j.scenario;
            let hold = j.pair().pairing.as_ref().unwrap().nat.hold_ns();
            // What the scenario claims: losses while a 120 s hold would count the range
            // as (nearly) all in use; an exhaustion.
            let n = usize::from(cfg.snat_ports.1 - cfg.snat_ports.0) + 1;
            let full_if_held = |t: &PairTruth| {
                let end = s.nat.clock.rs_ns(t.first_syn_ns, s.nat.epoch_ns);
                let used: std::collections::HashSet<u16> =
                    s.rs.iter()
                        .filter(|(ts, p)| {
                            *ts <= end
                                && *ts + 120_000_000_000 >= end
                                && p.flags == synth::ControlBits::SYN
                        })
                        .map(|(_, p)| p.sport)
                        .collect();
                used.len() * 10 >= n * 9
            };
            let count = |c: TrueCause| s.truth.iter().filter(|t| t.cause == c).count();
            let unrelated = s
                .truth
                .iter()
                .filter(|t| t.cause == TrueCause::SynLostBeforeRs && full_if_held(t))
                .count();
            if drops {
                assert!(unrelated >= 10, "{label}: {unrelated} unrelated losses");
                assert_eq!(count(TrueCause::SnatPortExhaustion), 0, "{label}");
            } else {
                assert!(count(TrueCause::SnatPortExhaustion) >= 1, "{label}");
            }
            let label = format!("{label}, learned hold {} ms", hold / 1_000_000);
            let seen = assert_verdicts(&label, &j, true);
            eprintln!("{label}: {unrelated} losses in a busy range; truth {seen:?}");
        }
    }
}

/// Exhaustion toward one of three backends: a SYN the NAT dropped for want of a port
/// leaves no conntrack entry, so its retry is balanced anew and often reaches another
/// backend, whose ports are free. The lost SYN is still exhaustion: the ports toward every
/// backend of the service count, not only toward the retry's.
#[test]
fn test_exhaustion_toward_one_backend_whichever_backend_the_retry_reached() {
    for seed in 1..=3 {
        let cfg = PairConfig {
            seed,
            attempts: 1500,
            mean_gap_ns: 100_000_000,
            anomaly_ppm: 0,
            snat_ports: (40000, 40999),
            stale_resend: Some(synth::StaleResend::Fast),
            script: vec!["snat_port_exhaustion:2".parse().unwrap()],
            ..Default::default()
        };
        let label = format!("seed {seed}, exhaustion toward one of three backends");
        let j = judge(&label, &cfg);
        // What the scenario claims: exhaustion victims whose answered SYN went to another
        // backend than the one whose ports were all held.
        let moved = j
            .scenario
            .truth
            .iter()
            .filter(|t| t.cause == TrueCause::SnatPortExhaustion)
            .filter(|t| {
                let lost = t.syns.iter().find(|s| s.fate == synth::SynFate::NoPort);
                let fin = t.final_syn().and_then(|s| s.rip);
                lost.and_then(|s| s.rip)
                    .zip(fin)
                    .is_some_and(|(a, b)| a != b)
            })
            .count();
        assert!(
            moved >= 10,
            "{label}: {moved} retries moved to another backend"
        );
        let seen = assert_verdicts(&label, &j, true);
        eprintln!("{label}: {moved} moved; truth {seen:?}");
    }
}

/// Backends on three hosts and no node: a client capture and one capture per real-server
/// host (each on its own clock), as an incident without the NAT box's capture gives them.
/// A retry is balanced anew, so an attempt's tries can reach two hosts, and the cause of
/// a lost first SYN can show at another host than the retry's (the rival SYN of a
/// conntrack race) or only over all the client's attempts (reuse's base rate). Across
/// seeds: first the scenario (tries on two hosts, each pattern cause present), then
/// every attempt's true verdict, and a race whose rival is at another host names that
/// host's capture in its evidence.
#[test]
fn test_backends_on_three_hosts_without_a_node_give_the_true_causes() {
    let mut rival_elsewhere = 0;
    for seed in 21..=23 {
        let cfg = three_backends(seed);
        let s = synth::generate_pair(&cfg);
        let label = format!("seed {seed}");
        // The scenario: some attempts' tries reached two hosts; races and reuse drops.
        let two_hosts = s
            .truth
            .iter()
            .filter(|t| {
                let hosts: HashSet<_> = t.syns.iter().filter_map(|x| x.rip).collect();
                hosts.len() > 1
            })
            .count();
        assert!(two_hosts >= 3, "{label}: {two_hosts} attempts on two hosts");
        for cause in [
            TrueCause::ConntrackInsertRace,
            TrueCause::LbSynDropPortReuse,
            TrueCause::RsTimewaitCollision,
        ] {
            assert!(
                s.truth.iter().any(|t| t.cause == cause),
                "{label}: no {cause:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        write_sll2(&dir.path().join("client.pcap"), &s.client);
        write_hosts(dir.path(), &cfg, &s, 1_500_000_000);
        let out = pcapdiag()
            .args(["analyze", "--json", "-q"])
            .arg(dir.path())
            .succeed();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let pairs = v["pairs"].as_array().unwrap();
        assert_eq!(pairs.len(), 3, "{label}: a pair per real-server host");
        let mut ours: HashMap<(u64, u32), &serde_json::Value> = HashMap::new();
        for p in pairs {
            for a in p["verdicts"]["attempts"].as_array().unwrap() {
                let key = (
                    a["client"]["port"].as_u64().unwrap(),
                    a["isn"].as_u64().unwrap() as u32,
                );
                assert!(ours.insert(key, a).is_none(), "{label}: {key:?} twice");
            }
        }
        assert_eq!(ours.len(), s.truth.len(), "{label}");
        for t in &s.truth {
            let a = ours[&(t.client.port() as u64, t.isn)];
            let want = expected_code(t, t.cause.code());
            assert_eq!(
                a["verdict"], want,
                "{label}: {}\ntruth {t:?}",
                a["explanation"]
            );
            if want == "conntrack_insert_race" {
                let ev = a["evidence"].as_array().unwrap();
                rival_elsewhere += ev
                    .iter()
                    .filter(|e| {
                        e["side"] == "other" && e["what"].as_str().unwrap().starts_with("another")
                    })
                    .count();
            }
        }
    }
    // Races whose rival reached another host than the pair's are named at that host.
    assert!(rival_elsewhere >= 3, "{rival_elsewhere}");
}
