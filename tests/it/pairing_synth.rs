//! Pairing, clock estimate and verdicts against generated capture pairs whose truth is
//! known (`synth::pair`, in `synth/`): a client side and a real-server side through DNAT
//! and SNAT, with a clock offset, skew and step between them, and every verdict made on
//! purpose. Across seeds: every attempt gets its true verdict, every pair is right, and
//! the offset error is under 1 ms.

use crate::util::{Succeed, pcapdiag};
use pcapdiag::correlate::Hints;
use pcapdiag::run::Layout;
use pcapdiag::verdict::Cause;
use std::collections::HashMap;
use std::net::SocketAddr;
use synth::{CaptureFormat, Encap, PairConfig, PairKind, RsClock, TrueCause};

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

fn check(label: &str, cfg: PairConfig) {
    let dir = tempfile::tempdir().unwrap();
    let (cp, rp) = (dir.path().join("c.pcap"), dir.path().join("r.pcap"));
    let scenario = synth::generate_pair(&cfg);
    let format = CaptureFormat::Pcap { nanos: true };
    synth::pair::write_packets(
        &Encap::Ethernet,
        format,
        &scenario.client,
        std::fs::File::create(&cp).unwrap(),
    )
    .unwrap();
    synth::pair::write_packets(
        &Encap::Sll2,
        format,
        &scenario.rs,
        std::fs::File::create(&rp).unwrap(),
    )
    .unwrap();
    let client = pcapdiag::capture::analyze_file(&cp, &Default::default()).unwrap();
    let rs = pcapdiag::capture::analyze_file(&rp, &Default::default()).unwrap();
    // A set, the real-server side first: which capture is which comes from the traffic.
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
    let (pairing, verdicts) = (
        pair.pairing.as_ref().unwrap(),
        pair.verdicts.as_ref().unwrap(),
    );

    let ours: HashMap<(SocketAddr, u32), &pcapdiag::verdict::AttemptVerdict> = verdicts
        .attempts
        .iter()
        .map(|v| ((SocketAddr::new(v.client.ip, v.client.port), v.isn.0), v))
        .collect();
    assert_eq!(ours.len(), scenario.truth.len(), "{label}: attempts");
    let mut seen: HashMap<TrueCause, usize> = HashMap::new();
    let mut worst_offset_err = 0i64;
    for t in &scenario.truth {
        let v = ours
            .get(&(t.client, t.isn))
            .unwrap_or_else(|| panic!("{label}: no attempt for {t:?}"));
        *seen.entry(t.cause).or_default() += 1;
        // The true cause in the analyzer's vocabulary: the codes are the same
        // (test_every_true_cause_is_an_analyzer_cause).
        let cause = Cause::from_code(t.cause.code()).expect("an analyzer cause");
        // The verdict: the true cause when it made the setup slow or fail; `ok` with the
        // cause as signature when it cost less than the threshold.
        let failed = t.setup_latency_ns.is_none();
        let expect = if t.cause == TrueCause::Unmatched || failed || t.delay_ns as i64 >= SLOW_NS {
            cause
        } else {
            Cause::Ok
        };
        assert_eq!(v.verdict, expect, "{label}: {}\ntruth {t:?}", v.explanation);
        if expect == Cause::Ok && t.cause != TrueCause::Ok {
            assert_eq!(
                v.signature,
                Some(cause),
                "{label}: {}\ntruth {t:?}",
                v.explanation
            );
        }
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
    let rs_clock = report.vantage_points[0]
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
    // Every scripted kind happened: every cause but `ok` and `unexplained` (which the
    // generator never leaves).
    let scripted = TrueCause::ALL
        .into_iter()
        .filter(|k| !matches!(k, TrueCause::Ok | TrueCause::Unexplained));
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
    let write = |path: &std::path::Path, packets: &[(u64, synth::TcpSpec)]| {
        let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        synth::pair::write_packets(
            &Encap::Sll2,
            CaptureFormat::Pcap { nanos: true },
            packets,
            f,
        )
        .unwrap();
    };
    for seed in [21, 22, 23] {
        let base = PairConfig::default();
        let cfg = PairConfig {
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
        };
        let s = synth::generate_pair(&cfg);
        let dir = tempfile::tempdir().unwrap();
        let third = s.client.len().div_ceil(3);
        for (i, part) in s.client.chunks(third).enumerate() {
            write(&dir.path().join(format!("client.pcap{i}")), part);
        }
        for (k, rip) in cfg.rss.iter().enumerate() {
            let host: Vec<(u64, synth::TcpSpec)> =
                s.rs.iter()
                    .filter(|(_, p)| {
                        (p.dst, p.dport) == (rip.ip(), rip.port())
                            || (p.src, p.sport) == (rip.ip(), rip.port())
                    })
                    .copied()
                    .collect();
            write(
                &dir.path().join(format!("rs-{k}.pcap")),
                &shift(&host, k as i64 * 1_500_000_000),
            );
        }
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
        write(&dir.path().join("node.pcap"), &shift(&node, -700_000_000));

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
            let failed = t.setup_latency_ns.is_none();
            let want = if t.cause == TrueCause::Unmatched || failed || t.delay_ns as i64 >= SLOW_NS
            {
                cause
            } else {
                "ok"
            };
            assert_eq!(
                a["verdict"], want,
                "{label}: {}\ntruth {t:?}",
                a["explanation"]
            );
        }
    }
}
