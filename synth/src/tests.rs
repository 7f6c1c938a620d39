//! Generator truth checked against the packets it emitted, and whole captures read back
//! with pcap-parser and etherparse.

use super::frame::tests::{all_encaps, check_tcp, inner};
use super::*;
use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};
use std::collections::HashMap;
use std::net::SocketAddr;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// A mix with every anomaly frequent, so a few hundred attempts cover them all.
fn busy_cfg(seed: u64) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        attempts: 400,
        anomaly_ppm: 600_000,
        ..ScenarioConfig::default()
    }
}

fn every_kind() -> Vec<Kind> {
    vec![
        Kind::Normal,
        Kind::SynRetransmit { tries: 3 },
        Kind::SynTimeout { tries: 4 },
        Kind::StaleAck {
            resend: StaleResend::Fast,
        },
        Kind::StaleAck {
            resend: StaleResend::Slow,
        },
        Kind::Refused,
        Kind::Abort { by_client: true },
        Kind::Abort { by_client: false },
        Kind::PortReuse,
        Kind::DataRetransmit,
        Kind::FastRetransmit,
        Kind::OutOfOrder,
        Kind::ZeroWindow,
        Kind::KeepAlive,
    ]
}

/// The packets of one attempt: its tuple, from its first SYN to its last packet.
fn packets_of<'a>(s: &'a Scenario, a: &AttemptTruth) -> Vec<&'a (u64, TcpSpec)> {
    s.packets
        .iter()
        .filter(|(t, p)| {
            *t >= a.first_syn_ns
                && *t <= a.last_ns
                && ((SocketAddr::new(p.src, p.sport) == a.client
                    && SocketAddr::new(p.dst, p.dport) == a.server)
                    || (SocketAddr::new(p.dst, p.dport) == a.client
                        && SocketAddr::new(p.src, p.sport) == a.server))
        })
        .collect()
}

fn from_client(a: &AttemptTruth, p: &TcpSpec) -> bool {
    SocketAddr::new(p.src, p.sport) == a.client
}

/// Every claim of every truth row, checked against the emitted packets.
fn assert_truth_consistent(s: &Scenario, cfg: &ScenarioConfig) {
    assert!(s.packets.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
    assert!(
        s.truth
            .windows(2)
            .all(|w| w[0].first_syn_ns <= w[1].first_syn_ns)
    );
    let mut by_tuple: HashMap<SocketAddr, Vec<&AttemptTruth>> = HashMap::new();
    for a in &s.truth {
        by_tuple.entry(a.client).or_default().push(a);
        let pk = packets_of(s, a);
        let syns: Vec<_> = pk
            .iter()
            .filter(|(_, p)| from_client(a, p) && p.flags == ControlBits::SYN)
            .collect();
        assert_eq!(syns.len(), usize::from(a.syn_tries), "{a:?}");
        assert_eq!(syns[0].0, a.first_syn_ns);
        assert!(
            syns.iter().all(|(_, p)| p.seq == a.isn),
            "same ISN on every SYN: {a:?}"
        );
        assert!(
            syns.iter()
                .all(|(_, p)| p.mss.is_some() && p.sack_perm && p.wscale == Some(7))
        );
        assert_eq!(syns[0].1.ts.map(|t| t.0), a.first_tsval);
        // A re-sent SYN carries a newer TSval.
        for w in syns.windows(2) {
            if let (Some((a0, _)), Some((a1, _))) = (w[0].1.ts, w[1].1.ts) {
                assert!((a1.wrapping_sub(a0) as i32) > 0);
            }
        }
        let synack = pk.iter().find(|(_, p)| {
            p.flags == ControlBits::SYN | ControlBits::ACK && p.ack == a.isn.wrapping_add(1)
        });
        assert_eq!(
            synack.map(|(t, _)| t - a.first_syn_ns),
            a.setup_latency_ns,
            "{a:?}"
        );
        assert_eq!(synack.map(|(_, p)| p.seq), a.server_isn);
        if let Some((t, sa)) = synack {
            // The SYN-ACK echoes the TSval of the SYN it answers (the last one).
            let last_syn = syns.last().unwrap();
            assert!(*t > last_syn.0);
            assert_eq!(sa.ts.map(|x| x.1), last_syn.1.ts.map(|x| x.0));
        }
        assert_eq!(pk.last().unwrap().0, a.last_ns);
        match a.kind {
            Kind::SynRetransmit { tries } | Kind::SynTimeout { tries } => {
                for (k, (t, _)) in syns.iter().enumerate().skip(1) {
                    let want = cfg.syn_schedule.retry_offset_ns(k);
                    let got = t - a.first_syn_ns;
                    assert!(got >= want && got < want + 5 * MS, "retry {k}: {got}");
                }
                assert_eq!(a.syn_tries, tries);
                assert_eq!(
                    a.setup_latency_ns.is_some(),
                    matches!(a.kind, Kind::SynRetransmit { .. })
                );
            }
            Kind::StaleAck { resend } => {
                // SYN, stale bare ACK, RST with seq = that ack, the same SYN again.
                let stale = pk[1].1;
                assert!(!from_client(a, &stale));
                assert_eq!(stale.flags, ControlBits::ACK);
                assert_ne!(stale.ack, a.isn.wrapping_add(1));
                let rst = pk[2].1;
                assert_eq!(
                    (rst.flags, rst.seq, rst.ts),
                    (ControlBits::RST, stale.ack, None)
                );
                let gap = syns[1].0 - syns[0].0;
                match resend {
                    StaleResend::Fast => assert!(gap > 2 * MS && gap < 10 * MS),
                    StaleResend::Slow => assert!((SEC..SEC + 5 * MS).contains(&gap)),
                }
                // The stale ACK's numbers are where the previous connection ended.
                let prev = by_tuple[&a.client]
                    .iter()
                    .rev()
                    .nth(1)
                    .expect("predecessor");
                let prev_pk = packets_of(s, prev);
                let last_c = prev_pk
                    .iter()
                    .rev()
                    .find(|(_, p)| from_client(prev, p))
                    .unwrap()
                    .1;
                assert_eq!(stale.ack, last_c.seq.wrapping_add(last_c.seq_len()));
                assert_eq!(stale.ts.map(|t| t.1), last_c.ts.map(|t| t.0));
                assert_eq!(prev.closer, Some(Closer::Server));
            }
            Kind::Refused => {
                let r = pk[1].1;
                assert_eq!(
                    (r.flags, r.ack),
                    (ControlBits::RST | ControlBits::ACK, a.isn.wrapping_add(1))
                );
                assert_eq!(a.setup_latency_ns, None);
            }
            Kind::Abort { by_client } => {
                let last = pk.last().unwrap().1;
                assert!(last.flags.rst());
                assert_eq!(from_client(a, &last), by_client);
                assert_eq!(a.closer, None);
            }
            _ => {}
        }
        if a.kind.code() == "port_reuse" || a.kind.code() == "stale_ack" {
            let prev = by_tuple[&a.client]
                .iter()
                .rev()
                .nth(1)
                .expect("predecessor");
            assert_eq!(a.prev_close_ns, Some(prev.last_ns));
            let gap = a.first_syn_ns - prev.last_ns;
            assert!(gap >= cfg.reuse_gap_ns.0 && gap <= cfg.reuse_gap_ns.1);
            assert_ne!(prev.isn, a.isn);
        }
    }
    // Uses of one tuple never overlap, and each records the one before.
    for uses in by_tuple.values() {
        for w in uses.windows(2) {
            assert!(w[0].last_ns < w[1].first_syn_ns);
            assert_eq!(w[1].prev_close_ns, Some(w[0].last_ns));
        }
        assert_eq!(uses[0].prev_close_ns, None);
    }
    // Every packet belongs to exactly one attempt.
    let claimed: usize = s.truth.iter().map(|a| packets_of(s, a).len()).sum();
    assert_eq!(claimed, s.packets.len());
}

#[test]
fn test_random_mix_truth_matches_packets() {
    for seed in [1, 2, 3] {
        let cfg = busy_cfg(seed);
        let s = generate(&cfg);
        assert_eq!(s.truth.len(), 400);
        assert_truth_consistent(&s, &cfg);
    }
}

#[test]
fn test_every_kind_scripted_truth_matches_packets() {
    for (schedule, ipv6, ts) in [
        (SynSchedule::Linear, false, true),
        (SynSchedule::Classic, true, true),
        (SynSchedule::Linear, false, false),
    ] {
        let cfg = ScenarioConfig {
            script: every_kind(),
            syn_schedule: schedule,
            ipv6,
            timestamps: ts,
            ..ScenarioConfig::default()
        };
        let s = generate(&cfg);
        // Three reuse kinds add a predecessor each.
        assert_eq!(s.truth.len(), every_kind().len() + 3);
        assert_truth_consistent(&s, &cfg);
        let kinds: Vec<_> = s.truth.iter().map(|a| a.kind).collect();
        for k in every_kind() {
            assert!(kinds.contains(&k), "{k:?} missing");
        }
    }
}

#[test]
fn test_wrapping_isns_and_tsvals_stay_consistent() {
    let cfg = ScenarioConfig {
        wrap_ppm: 1_000_000,
        ..busy_cfg(9)
    };
    let s = generate(&cfg);
    assert_truth_consistent(&s, &cfg);
    // Some connection's sequence numbers and TSvals really cross 2^32.
    let crosses = |f: &dyn Fn(&TcpSpec) -> Option<u32>| {
        s.truth.iter().any(|a| {
            let v: Vec<u32> = packets_of(&s, a)
                .iter()
                .filter(|(_, p)| from_client(a, p))
                .filter_map(|(_, p)| f(p))
                .collect();
            v.iter().any(|&x| x > 0xffff_0000) && v.iter().any(|&x| x < 0x1_0000)
        })
    };
    assert!(crosses(&|p| Some(p.seq)));
    assert!(crosses(&|p| p.ts.map(|t| t.0)));
}

/// Wireshark-style flags each data-phase anomaly must be able to raise.
#[test]
fn test_data_phase_anomalies_have_their_signature() {
    let one = |kind: Kind| {
        let cfg = ScenarioConfig {
            script: vec![kind],
            ..ScenarioConfig::default()
        };
        let s = generate(&cfg);
        let a = s.truth[0];
        let pk: Vec<(u64, TcpSpec)> = packets_of(&s, &a).into_iter().copied().collect();
        (a, pk)
    };
    let (a, pk) = one(Kind::DataRetransmit);
    let data: Vec<_> = pk
        .iter()
        .filter(|(_, p)| from_client(&a, p) && p.payload_len > 0)
        .collect();
    assert_eq!(data.len(), 2);
    assert_eq!(
        (data[0].1.seq, data[0].1.payload_len),
        (data[1].1.seq, data[1].1.payload_len)
    );
    assert!(data[1].0 - data[0].0 >= 200 * MS);

    let (a, pk) = one(Kind::FastRetransmit);
    let dups: Vec<_> = pk
        .iter()
        .filter(|(_, p)| from_client(&a, p) && p.sack.is_some())
        .collect();
    assert!(dups.len() >= 3);
    assert!(dups.windows(2).all(|w| w[0].1.ack == w[1].1.ack));
    let hole = dups[0].1.ack;
    let retx = pk
        .iter()
        .find(|(_, p)| !from_client(&a, p) && p.seq == hole && p.payload_len > 0);
    let (t_retx, _) = retx.expect("retransmitted hole");
    assert!(*t_retx > dups[2].0 && *t_retx - dups[2].0 < 20 * MS);

    let (a, pk) = one(Kind::OutOfOrder);
    let srv: Vec<u32> = pk
        .iter()
        .filter(|(_, p)| !from_client(&a, p) && p.payload_len > 0)
        .map(|(_, p)| p.seq)
        .collect();
    assert!(srv.windows(2).any(|w| (w[1].wrapping_sub(w[0]) as i32) < 0));

    let (a, pk) = one(Kind::ZeroWindow);
    let zi = pk
        .iter()
        .position(|(_, p)| from_client(&a, p) && p.window == 0 && !p.flags.rst());
    let zi = zi.expect("zero window");
    let upd = pk[zi + 1].1;
    assert!(from_client(&a, &upd) && upd.window > 0 && upd.ack == pk[zi].1.ack);

    let (a, pk) = one(Kind::KeepAlive);
    // The probe re-sends the byte before the client's next sequence number, with no data.
    let client: Vec<usize> = (0..pk.len())
        .filter(|&i| from_client(&a, &pk[i].1))
        .collect();
    let ka = client.windows(2).find_map(|w| {
        let (prev, p) = (&pk[w[0]].1, &pk[w[1]].1);
        (p.payload_len == 0 && p.flags == ControlBits::ACK && p.seq == prev.seq.wrapping_sub(1))
            .then_some(w[1])
    });
    let ka = ka.expect("keep-alive");
    assert!(pk[ka].0 - pk[ka - 1].0 >= SEC);
    assert_eq!(pk[ka + 1].1.ack, pk[ka].1.seq.wrapping_add(1));
}

#[test]
fn test_same_seed_same_scenario_other_seed_differs() {
    let a = generate(&busy_cfg(5));
    let b = generate(&busy_cfg(5));
    let c = generate(&busy_cfg(6));
    assert_eq!(a.packets, b.packets);
    assert_eq!(a.truth, b.truth);
    assert_ne!(a.packets, c.packets);
}

#[test]
fn test_streaming_drain_gives_the_same_truth() {
    let cfg = busy_cfg(4);
    let whole = generate(&cfg);
    let mut g = Generator::new(&cfg);
    let mut truth = Vec::new();
    let mut n = 0;
    while let Some((t, _)) = g.next() {
        n += 1;
        if n % 97 == 0 {
            let rows = g.drain_truth();
            // Only attempts whose first SYN is already out are released.
            assert!(rows.iter().all(|r| r.first_syn_ns <= t));
            truth.extend(rows);
        }
    }
    truth.extend(g.drain_truth());
    assert_eq!(n, whole.packets.len());
    assert_eq!(truth, whole.truth);
}

#[test]
fn test_max_packets_stops_near_the_target() {
    let cfg = ScenarioConfig {
        attempts: u64::MAX,
        max_packets: Some(5_000),
        ..ScenarioConfig::default()
    };
    let s = generate(&cfg);
    assert!(
        s.packets.len() >= 5_000 && s.packets.len() < 5_200,
        "{}",
        s.packets.len()
    );
}

/// Reads a capture back: (linktype, [(ts_ns, frame)]).
fn read_capture(bytes: &[u8]) -> (u32, Vec<(u64, Vec<u8>)>) {
    let mut r = create_reader(1 << 16, bytes).unwrap();
    let mut lt = None;
    let mut nanos = false;
    let mut res = 1_000_000u64;
    let mut out = Vec::new();
    loop {
        match r.next() {
            Ok((off, b)) => {
                match b {
                    PcapBlockOwned::LegacyHeader(h) => {
                        lt = Some(h.network.0 as u32);
                        nanos = h.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let sub = u64::from(b.ts_usec) * if nanos { 1 } else { 1_000 };
                        out.push((u64::from(b.ts_sec) * SEC + sub, b.data.to_vec()));
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(i)) => {
                        lt = Some(i.linktype.0 as u32);
                        res = i.ts_resolution().unwrap();
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(e)) => {
                        let units = (u64::from(e.ts_high) << 32) | u64::from(e.ts_low);
                        let ns = (u128::from(units) * u128::from(SEC) / u128::from(res)) as u64;
                        out.push((ns, e.data[..e.caplen as usize].to_vec()));
                    }
                    _ => {}
                }
                r.consume(off);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => r.refill().unwrap(),
            Err(e) => panic!("{e:?}"),
        }
    }
    (lt.unwrap(), out)
}

#[test]
fn test_write_capture_round_trips_every_encap() {
    let cfg = ScenarioConfig {
        attempts: 12,
        script: every_kind(),
        ..ScenarioConfig::default()
    };
    let whole = generate(&cfg);
    for (i, encap) in all_encaps().into_iter().enumerate() {
        let cfg = ScenarioConfig {
            ipv6: i % 2 == 1,
            ..cfg.clone()
        };
        let whole = if cfg.ipv6 {
            generate(&cfg)
        } else {
            whole.clone()
        };
        let format = if i % 3 == 0 {
            CaptureFormat::Pcap { nanos: true }
        } else {
            CaptureFormat::Pcapng { tsresol: 9 }
        };
        let mut file = Vec::new();
        let mut tsv = Vec::new();
        let stats = write_capture(&cfg, &encap, format, &mut file, Some(&mut tsv)).unwrap();
        assert_eq!(stats.packets as usize, whole.packets.len());
        assert_eq!(stats.attempts as usize, whole.truth.len());
        let (lt, frames) = read_capture(&file);
        assert_eq!(lt, linktype(&encap));
        assert_eq!(frames.len(), whole.packets.len());
        for ((ts, bytes), (want_ts, spec)) in frames.iter().zip(&whole.packets) {
            assert_eq!(ts, want_ts);
            check_tcp(&inner(&encap, bytes), spec);
        }
        let tsv = String::from_utf8(tsv).unwrap();
        let mut lines = tsv.lines();
        let cols = lines.next().unwrap().split('\t').count();
        let rows: Vec<_> = lines.collect();
        assert_eq!(rows.len(), whole.truth.len());
        assert!(rows.iter().all(|r| r.split('\t').count() == cols));
    }
}

#[test]
fn test_microsecond_capture_truncates_timestamps() {
    let cfg = ScenarioConfig {
        attempts: 5,
        ..ScenarioConfig::default()
    };
    let whole = generate(&cfg);
    let mut file = Vec::new();
    let fmt = CaptureFormat::Pcapng { tsresol: 6 };
    write_capture(&cfg, &Encap::Ethernet, fmt, &mut file, None).unwrap();
    let (_, frames) = read_capture(&file);
    for ((ts, _), (want, _)) in frames.iter().zip(&whole.packets) {
        assert_eq!(*ts, want / 1_000 * 1_000);
    }
}
