//! The real binary on generated captures whose ground truth is known (the `synth` crate,
//! `synth/`): every link type and tunnel, IPv4 and IPv6, pcap and pcapng, and every
//! attempt's SYN tries, setup latency and outcome as the generator made them.

use crate::util::*;
use serde_json::Value;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use synth::{AttemptTruth, CaptureFormat, Encap, Kind, ScenarioConfig};

struct Generated {
    _dir: tempfile::TempDir,
    path: PathBuf,
    packets: u64,
    truth: Vec<AttemptTruth>,
}

fn generate(cfg: &ScenarioConfig, encap: Encap, format: CaptureFormat) -> Generated {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.pcap");
    let file = BufWriter::new(std::fs::File::create(&path).unwrap());
    let stats = synth::write_capture(cfg, &encap, format, file, None).unwrap();
    let truth = synth::generate(cfg).truth;
    Generated {
        _dir: dir,
        path,
        packets: stats.packets,
        truth,
    }
}

/// Checks every truth attempt against pcapdiag's report of the capture.
fn check_truth(label: &str, rep: &Value, truth: &[AttemptTruth]) {
    let attempts = rep["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), truth.len(), "{label}: attempts");
    for t in truth {
        let a = attempts
            .iter()
            .find(|a| {
                a["client"]["port"].as_u64() == Some(t.client.port() as u64)
                    && a["isn"].as_u64() == Some(t.isn as u64)
            })
            .unwrap_or_else(|| panic!("{label}: no attempt for {t:?}"));
        let syns = a["syns"].as_array().unwrap();
        assert_eq!(syns.len(), t.syn_tries as usize, "{label}: tries of {t:?}");
        assert_eq!(
            syns[0]["ts"].as_i64().unwrap(),
            t.first_syn_ns as i64,
            "{label}: first SYN of {t:?}"
        );
        assert_eq!(
            a["setup_ns"].as_i64(),
            t.setup_latency_ns.map(|v| v as i64),
            "{label}: setup of {t:?}"
        );
        let outcome = a["outcome"].as_str().unwrap();
        match t.kind {
            Kind::Refused => assert_eq!(outcome, "refused", "{label}: {t:?}"),
            Kind::SynTimeout { .. } => assert_eq!(outcome, "no_answer", "{label}: {t:?}"),
            Kind::StaleAck { .. } => {
                assert!(
                    a["stale_ack"].is_object() && a["stale_rst"].is_object(),
                    "{label}: {t:?} {a}"
                );
                assert_eq!(outcome, "established");
            }
            _ => assert_eq!(outcome, "established", "{label}: {t:?}"),
        }
        if let Some(prev) = t.prev_close_ns {
            let conn = &rep["connections"][a["conn"].as_u64().unwrap() as usize];
            let p = &conn["predecessor"];
            assert!(p.is_object(), "{label}: predecessor of {t:?}");
            assert_eq!(
                p["since_last_packet_ns"].as_i64().unwrap(),
                t.first_syn_ns as i64 - prev as i64,
                "{label}: reuse age of {t:?}"
            );
        }
    }
}

fn encaps() -> Vec<(&'static str, Encap)> {
    let (a, b) = (Ipv4Addr::new(192, 168, 0, 1), Ipv4Addr::new(192, 168, 0, 2));
    vec![
        ("ethernet", Encap::Ethernet),
        ("vlan", Encap::Vlan(42)),
        ("qinq", Encap::QinQ(100, 42)),
        ("sll", Encap::Sll),
        ("sll2", Encap::Sll2),
        ("raw_ip", Encap::RawIp),
        ("null", Encap::Null),
        (
            "ipip",
            Encap::IpIp {
                outer_src: a,
                outer_dst: b,
            },
        ),
        (
            "vxlan",
            Encap::Vxlan {
                outer_src: a,
                outer_dst: b,
                vni: 7,
            },
        ),
        (
            "geneve",
            Encap::Geneve {
                outer_src: a,
                outer_dst: b,
                vni: 7,
            },
        ),
        ("mpls", Encap::Mpls(1000)),
        ("pppoe", Encap::Pppoe(0x1234)),
        ("fabricpath", Encap::FabricPath),
        (
            "gre",
            Encap::Gre {
                outer_src: a,
                outer_dst: b,
            },
        ),
        (
            "erspan_ii",
            Encap::ErspanII {
                outer_src: a,
                outer_dst: b,
            },
        ),
        (
            "gtpu",
            Encap::GtpU {
                outer_src: a,
                outer_dst: b,
                teid: 0xdead_beef,
            },
        ),
    ]
}

/// Every link type and tunnel, over IPv4 and IPv6: every frame decoded, every attempt right.
#[test]
fn test_every_encapsulation_ipv4_and_ipv6() {
    for (name, encap) in encaps() {
        for ipv6 in [false, true] {
            let cfg = ScenarioConfig {
                seed: 7,
                attempts: 120,
                ipv6,
                anomaly_ppm: 300_000,
                ..Default::default()
            };
            let g = generate(&cfg, encap, CaptureFormat::Pcap { nanos: true });
            let label = format!("{name} ipv6={ipv6}");
            let rep = report(&g.path);
            assert_eq!(rep["frames"]["read"].as_u64(), Some(g.packets), "{label}");
            assert_eq!(
                rep["frames"]["analysed"].as_u64(),
                Some(g.packets),
                "{label}: {}",
                rep["skipped_by_reason"]
            );
            check_truth(&label, &rep, &g.truth);
        }
    }
}

/// Across seeds, both SYN schedules and pcapng at several resolutions, the setup latency
/// and tries of every attempt are exactly what the generator simulated.
#[test]
fn test_attempt_truth_across_seeds_and_formats() {
    let formats = [
        CaptureFormat::Pcap { nanos: false },
        CaptureFormat::Pcapng { tsresol: 9 },
        CaptureFormat::Pcapng { tsresol: 6 },
    ];
    for seed in 1..=6u64 {
        let format = formats[seed as usize % formats.len()];
        let schedule = if seed % 2 == 0 {
            synth::SynSchedule::Linear
        } else {
            synth::SynSchedule::Classic
        };
        let cfg = ScenarioConfig {
            seed,
            attempts: 400,
            anomaly_ppm: 250_000,
            syn_schedule: schedule,
            ..Default::default()
        };
        let g = generate(&cfg, Encap::Ethernet, format);
        let mut truth = g.truth.clone();
        if format == (CaptureFormat::Pcap { nanos: false })
            || format == (CaptureFormat::Pcapng { tsresol: 6 })
        {
            // Microsecond files: compare at microsecond precision.
            let rep = report(&g.path);
            for t in &mut truth {
                t.first_syn_ns -= t.first_syn_ns % 1000;
            }
            let attempts = rep["attempts"].as_array().unwrap();
            assert_eq!(attempts.len(), truth.len(), "seed {seed}");
            for t in &truth {
                let a = attempts
                    .iter()
                    .find(|a| {
                        a["isn"].as_u64() == Some(t.isn as u64)
                            && a["client"]["port"].as_u64() == Some(t.client.port() as u64)
                    })
                    .unwrap();
                assert_eq!(
                    a["syns"].as_array().unwrap().len(),
                    t.syn_tries as usize,
                    "seed {seed} {t:?}"
                );
                assert_eq!(
                    a["syns"][0]["ts"].as_i64().unwrap(),
                    t.first_syn_ns as i64,
                    "seed {seed} {t:?}"
                );
                if let (Some(got), Some(want)) = (a["setup_ns"].as_i64(), t.setup_latency_ns) {
                    assert!(
                        (got - want as i64).abs() <= 1000,
                        "seed {seed} {t:?}: {got}"
                    );
                } else {
                    assert_eq!(
                        a["setup_ns"].as_i64().is_some(),
                        t.setup_latency_ns.is_some(),
                        "seed {seed} {t:?}"
                    );
                }
            }
        } else {
            check_truth(&format!("seed {seed}"), &report(&g.path), &truth);
        }
    }
}

/// Non-TCP frames and frames cut by the snapshot length are counted under their reason.
#[test]
fn test_skip_reasons_counted() {
    use synth::{OtherSpec, PcapOptions, PcapWriter, TcpSpec};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.pcap");
    let mut w = PcapWriter::new(
        std::fs::File::create(&path).unwrap(),
        PcapOptions::default(),
    )
    .unwrap();
    let syn = TcpSpec {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.0.0.2".parse().unwrap(),
        sport: 40000,
        dport: 80,
        seq: 1,
        flags: synth::ControlBits::SYN,
        window: 64240,
        mss: Some(1460),
        ..Default::default()
    };
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut next = || {
        ts += 1000;
        ts
    };
    w.write(next(), &synth::frame(&Encap::Ethernet, &syn))
        .unwrap();
    let others = [
        OtherSpec::Udp {
            src: syn.src,
            dst: syn.dst,
            sport: 5353,
            dport: 53,
            payload_len: 20,
        },
        OtherSpec::IcmpEcho {
            src: syn.src,
            dst: syn.dst,
            id: 1,
            seq: 1,
        },
        OtherSpec::Arp {
            sender: Ipv4Addr::new(10, 0, 0, 1),
            target: Ipv4Addr::new(10, 0, 0, 2),
        },
    ];
    for o in &others {
        w.write(next(), &synth::other_frame(&Encap::Ethernet, o).unwrap())
            .unwrap();
    }
    // A frame cut inside the TCP header by a 40-byte snaplen.
    let full = synth::frame(&Encap::Ethernet, &syn);
    w.write_raw(next(), 40, full.len() as u32, &full[..40])
        .unwrap();
    // A frame with a data payload cut by a 70-byte snaplen: analysed, real length kept.
    let data = TcpSpec {
        flags: synth::ControlBits::ACK | synth::ControlBits::PSH,
        payload_len: 500,
        seq: 2,
        ack: 9,
        ..syn
    };
    let full = synth::frame(&Encap::Ethernet, &data);
    w.write_raw(next(), 70, full.len() as u32, &full[..70])
        .unwrap();
    drop(w);
    let rep = report(&path);
    let reasons: std::collections::HashMap<String, u64> = rep["skipped_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reason"].as_str().unwrap().to_string(),
                r["frames"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rep["frames"]["read"], 6);
    assert_eq!(rep["frames"]["analysed"], 2);
    assert_eq!(reasons.get("not_tcp"), Some(&2), "{reasons:?}");
    assert_eq!(reasons.get("not_ip"), Some(&1), "{reasons:?}");
    assert_eq!(reasons.get("truncated_headers"), Some(&1), "{reasons:?}");
    let conn = &rep["connections"][0];
    assert_eq!(
        conn["bytes"][0], 500,
        "payload length from the IP header, not the snaplen"
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `-` reads standard input, and gzip is recognised by its magic bytes.
#[test]
fn test_stdin_and_gzip() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let cfg = ScenarioConfig {
        seed: 3,
        attempts: 50,
        ..Default::default()
    };
    let g = generate(&cfg, Encap::Ethernet, CaptureFormat::Pcap { nanos: true });
    let bytes = std::fs::read(&g.path).unwrap();
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(&bytes).unwrap();
    let gz = g.path.with_extension("pcap.gz");
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let plain = report(&g.path);
    let zipped = report(&gz);
    assert_eq!(zipped["gzip"], true);
    assert_eq!(zipped["attempts"], plain["attempts"]);

    let mut child = pcapdiag()
        .args(["analyze", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&gz).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["captures"][0]["attempts"], plain["attempts"]);
    assert_eq!(v["captures"][0]["file"], "-");
    let _ = path_str(&g.path);
}

/// `tcpdump -i any` on a node records a packet on each interface it crosses: a SYN seen
/// twice within microseconds is one packet (counted as a copy), not a retry.
#[test]
fn test_same_packet_on_two_interfaces_counted_once() {
    use synth::PcapngWriter;
    let cfg = ScenarioConfig {
        seed: 21,
        attempts: 150,
        anomaly_ppm: 300_000,
        ..Default::default()
    };
    let sc = synth::generate(&cfg);
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    let veth = w.add_interface(276, 262_144, 9, None).unwrap();
    let eth = w.add_interface(276, 262_144, 9, None).unwrap();
    for (ts, spec) in &sc.packets {
        let f = synth::frame(&Encap::Sll2, spec);
        w.write(veth, *ts, &f).unwrap();
        if spec.flags.syn() && !spec.flags.ack() {
            w.write(eth, ts + 20_000, &f).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("any.pcapng");
    std::fs::write(&path, w.into_inner()).unwrap();
    let rep = report(&path);
    let truth_syns: u64 = sc.truth.iter().map(|t| t.syn_tries as u64).sum();
    let copies: u64 = rep["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["copies"].as_u64().unwrap())
        .sum();
    assert_eq!(copies, truth_syns);
    check_truth("two interfaces", &rep, &sc.truth);
}
