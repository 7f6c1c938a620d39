//! The truth of a generated pair checked against the packets of both captures: the two
//! sides agree, the clocks are as configured, and every cause's evidence is there.

use super::*;
use crate::CaptureFormat;
use crate::frame::ControlBits;
use std::collections::{HashMap, HashSet};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

fn every_kind() -> Vec<PairKind> {
    [
        "ok",
        "lb_syn_drop_port_reuse",
        "rs_timewait_collision:fast:paws",
        "rs_timewait_collision:slow:isn_not_after",
        "rs_timewait_collision:fast:again",
        "rs_timewait_collision:slow:again:paws",
        "snat_port_exhaustion",
        "snat_port_exhaustion:3",
        "conntrack_insert_race",
        "syn_lost_before_rs:2",
        "synack_lost_after_rs",
        "rs_slow_synack:450",
        "rs_refused",
        "unmatched",
        "ok",
    ]
    .iter()
    .map(|k| k.parse().unwrap())
    .collect()
}

/// Every scripted kind once, no background, a 64-port SNAT range.
fn scripted_cfg() -> PairConfig {
    PairConfig {
        attempts: 0,
        snat_ports: (40000, 40063),
        script: every_kind(),
        ..PairConfig::default()
    }
}

/// A busy random mix on awkward clocks: negative offset, drift, a step mid-way.
fn mixed_cfg(seed: u64) -> PairConfig {
    let start = PairConfig::default().start_ns;
    PairConfig {
        seed,
        attempts: 1500,
        anomaly_ppm: 300_000,
        clock: RsClock {
            offset_ns: -7_300_000,
            skew_ppb: 50_000,
            step: Some((start + 20 * SEC, -4_000_000)),
        },
        weights: PairWeights {
            snat_port_exhaustion: 1,
            ..PairWeights::default()
        },
        snat_ports: (50000, 50199),
        mean_gap_ns: 100 * MS,
        ..PairConfig::default()
    }
}

type Pk = (u64, TcpSpec);
type ByConn<'a> = HashMap<(SocketAddr, SocketAddr), Vec<&'a Pk>>;

/// The captures indexed for lookups by the checks below.
struct Ix<'a> {
    s: &'a PairScenario,
    /// SYNs by ISN.
    rs_syns: HashMap<u32, Vec<(u64, &'a TcpSpec)>>,
    client_syns: HashMap<u32, Vec<(u64, &'a TcpSpec)>>,
    /// Client-side SYN-ACKs by ack number.
    client_synacks: HashMap<u32, Vec<&'a Pk>>,
    client_conns: ByConn<'a>,
    rs_conns: ByConn<'a>,
}

fn conn_key(p: &TcpSpec) -> (SocketAddr, SocketAddr) {
    let (a, b) = (
        SocketAddr::new(p.src, p.sport),
        SocketAddr::new(p.dst, p.dport),
    );
    if a < b { (a, b) } else { (b, a) }
}

impl<'a> Ix<'a> {
    fn new(s: &'a PairScenario) -> Ix<'a> {
        let syns = |v: &'a [Pk]| {
            let mut m: HashMap<u32, Vec<(u64, &TcpSpec)>> = HashMap::new();
            for (t, p) in v {
                if p.flags == ControlBits::SYN {
                    m.entry(p.seq).or_default().push((*t, p));
                }
            }
            m
        };
        let conns = |v: &'a [Pk]| {
            let mut m: ByConn = HashMap::new();
            for pk in v {
                m.entry(conn_key(&pk.1)).or_default().push(pk);
            }
            m
        };
        let mut client_synacks: HashMap<u32, Vec<&Pk>> = HashMap::new();
        for pk in s
            .client
            .iter()
            .filter(|pk| pk.1.flags == ControlBits::SYN | ControlBits::ACK)
        {
            client_synacks.entry(pk.1.ack).or_default().push(pk);
        }
        Ix {
            s,
            rs_syns: syns(&s.rs),
            client_syns: syns(&s.client),
            client_synacks,
            client_conns: conns(&s.client),
            rs_conns: conns(&s.rs),
        }
    }

    fn rs_clock(&self, t: u64) -> u64 {
        self.s.nat.clock.rs_ns(t, self.s.nat.epoch_ns)
    }

    /// Packets of one 4-tuple (either direction) in `[from, to]`, in capture order.
    fn conn(m: &ByConn<'a>, a: SocketAddr, b: SocketAddr, from: u64, to: u64) -> Vec<&'a Pk> {
        let key = if a < b { (a, b) } else { (b, a) };
        m.get(&key)
            .map(|v| {
                v.iter()
                    .filter(|(t, _)| *t >= from && *t <= to)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn client_conn(&self, a: SocketAddr, b: SocketAddr, from: u64, to: u64) -> Vec<&'a Pk> {
        Self::conn(&self.client_conns, a, b, from, to)
    }

    fn rs_conn(&self, a: SocketAddr, b: SocketAddr, from: u64, to: u64) -> Vec<&'a Pk> {
        Self::conn(&self.rs_conns, a, b, from, to)
    }
}

fn same_but_addresses(c: &TcpSpec, r: &TcpSpec) -> bool {
    (
        c.seq,
        c.ack,
        c.flags,
        c.window,
        c.ts,
        c.ip_id,
        c.payload_len,
    ) == (
        r.seq,
        r.ack,
        r.flags,
        r.window,
        r.ts,
        r.ip_id,
        r.payload_len,
    ) && (c.mss, c.wscale, c.sack_perm, c.sack) == (r.mss, r.wscale, r.sack_perm, r.sack)
}

/// Every claim of every truth row, checked against the two captures.
fn assert_consistent(s: &PairScenario) {
    let ix = Ix::new(s);
    assert!(
        s.client.windows(2).all(|w| w[0].0 <= w[1].0),
        "client time order"
    );
    let ids: HashSet<u32> = s.truth.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), s.truth.len());
    let span = s.nat.rs_capture;
    let in_span = |rs_ns: u64, a: &PairTruth, i: usize| {
        let t_true = a.syns[i].client_ns + a.fwd_delay_ns;
        assert_eq!(rs_ns, ix.rs_clock(t_true));
        t_true >= span.0 && t_true < span.1
    };
    for a in &s.truth {
        let c_syns = &ix.client_syns[&a.isn];
        let mine: Vec<_> = c_syns
            .iter()
            .filter(|(t, p)| SocketAddr::new(p.src, p.sport) == a.client && *t >= a.first_syn_ns)
            .collect();
        assert!(mine.len() >= a.syns.len(), "{a:?}");
        for (st, (t, p)) in a.syns.iter().zip(&mine) {
            assert_eq!(st.client_ns, *t);
            assert_eq!(p.ts.map(|x| x.0), st.tsval);
            assert_eq!(p.ttl, 64);
        }
        assert_eq!(a.first_syn_ns, a.syns[0].client_ns);
        assert_eq!(
            a.offset_at_syn_ns,
            ix.rs_clock(a.first_syn_ns) as i64 - a.first_syn_ns as i64
        );
        // Each SYN is on the RS side exactly when it reached the RS inside the capture,
        // with the same ISN, TSval, options and IP ID, at the client time moved by the
        // delay and the clock.
        let rs_syns = ix.rs_syns.get(&a.isn).map(Vec::as_slice).unwrap_or(&[]);
        let mut seen_in_span = false;
        for (i, st) in a.syns.iter().enumerate() {
            assert_eq!(st.fate.reached_rs(), st.rs_ns.is_some(), "{a:?}");
            let Some(rs_ns) = st.rs_ns else {
                let would = ix.rs_clock(st.client_ns + a.fwd_delay_ns);
                assert!(!rs_syns.iter().any(|(t, _)| *t == would), "{a:?}");
                continue;
            };
            let inside = in_span(rs_ns, a, i);
            seen_in_span |= inside;
            let hit = rs_syns
                .iter()
                .find(|(t, p)| *t == rs_ns && Some(SocketAddr::new(p.src, p.sport)) == st.snat);
            assert_eq!(hit.is_some(), inside, "{a:?} SYN {i}");
            if let Some((_, p)) = hit {
                assert!(same_but_addresses(mine[i].1, p));
                assert_eq!(SocketAddr::new(p.dst, p.dport), st.rip.unwrap());
                assert_eq!(p.ttl, 63);
            }
        }
        let reached = a.syns.iter().any(|s| s.rs_ns.is_some());
        // Unmatched exactly when the SYNs reached the RS outside its capture, unless a
        // capture ended before the attempt's next SYN was due (which comes first).
        if a.cause != TrueCause::CaptureEnded {
            assert_eq!(
                a.cause == TrueCause::Unmatched,
                reached && !seen_in_span,
                "{a:?}"
            );
        }
        // Setup latency: the first SYN-ACK acknowledging the ISN at the client.
        let synack = ix
            .client_synacks
            .get(&a.isn.wrapping_add(1))
            .into_iter()
            .flatten()
            .find(|(t, p)| *t >= a.first_syn_ns && SocketAddr::new(p.dst, p.dport) == a.client)
            .map(|(t, p)| {
                assert_eq!(Some(p.seq), a.rs_isn);
                assert_eq!(p.ttl, 63);
                t - a.first_syn_ns
            });
        assert_eq!(synack, a.setup_latency_ns, "{a:?}");
        let answered = a.syns.iter().find(|s| s.fate == SynFate::SynAck);
        assert_eq!(answered.is_some(), a.setup_latency_ns.is_some());
    }
}

/// For clean attempts, every packet has its twin on the other side, at the right time.
fn assert_sides_agree(s: &PairScenario) {
    let ix = Ix::new(s);
    let mut checked = 0;
    for a in s
        .truth
        .iter()
        .filter(|a| a.cause == TrueCause::Ok && a.syns.len() == 1)
    {
        let st = a.syns[0];
        let (snat, rip) = (st.snat.unwrap(), st.rip.unwrap());
        let c = ix.client_conn(a.client, a.vip, a.first_syn_ns, a.last_ns);
        let rs_from = ix.rs_clock(a.first_syn_ns).saturating_sub(10 * MS);
        let rs_to = ix.rs_clock(a.last_ns) + 10 * MS;
        let r = ix.rs_conn(snat, rip, rs_from, rs_to);
        assert_eq!(c.len(), r.len(), "{a:?}");
        for (tc, pc) in c {
            let from_client = SocketAddr::new(pc.src, pc.sport) == a.client;
            let want_t = if from_client {
                ix.rs_clock(tc + a.fwd_delay_ns)
            } else {
                ix.rs_clock(tc - a.back_delay_ns)
            };
            let twin = r
                .iter()
                .find(|(t, p)| *t == want_t && same_but_addresses(pc, p));
            let (_, pr) = twin.unwrap_or_else(|| panic!("no RS twin of {pc:?} for {a:?}"));
            assert_eq!(pc.ttl, if from_client { 64 } else { 63 });
            assert_eq!(pr.ttl, if from_client { 63 } else { 64 });
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

/// The evidence of each cause, as the captures show it.
fn assert_signatures(s: &PairScenario) -> HashSet<TrueCause> {
    let ix = Ix::new(s);
    let by_id: HashMap<u32, &PairTruth> = s.truth.iter().map(|a| (a.id, a)).collect();
    let mut seen = HashSet::new();
    for a in &s.truth {
        seen.insert(a.cause);
        let rs_syns = ix.rs_syns.get(&a.isn).map(Vec::as_slice).unwrap_or(&[]);
        let first = a.syns[0];
        match a.cause {
            TrueCause::Ok => {
                assert_eq!(a.syns.len(), 1);
                assert_eq!(rs_syns.len(), 1, "{a:?}");
                assert_eq!(a.delay_ns, 0);
            }
            TrueCause::LbSynDropPortReuse => {
                // Two SYNs with one ISN at the client, only the second at the RS, and an
                // earlier connection on the same client 4-tuple that closed seconds before.
                assert_eq!(first.fate, SynFate::LbDrop);
                assert!(a.syns.len() >= 2);
                assert!(
                    rs_syns
                        .iter()
                        .all(|(t, _)| *t > ix.rs_clock(first.client_ns))
                );
                if let Some(t1) = a.syns[1].rs_ns {
                    assert!(rs_syns.iter().any(|(t, _)| *t == t1));
                }
                assert!(a.delay_ns >= SEC, "{a:?}");
                let before = ix.client_conn(a.client, a.vip, 0, a.first_syn_ns - 1);
                let last_fin = before.iter().rev().find(|(_, p)| p.flags.fin()).unwrap();
                assert!(a.first_syn_ns - last_fin.0 < 11 * SEC);
            }
            TrueCause::RsTimewaitCollision => {
                let (i, st) = a
                    .syns
                    .iter()
                    .enumerate()
                    .find(|(_, s)| matches!(s.fate, SynFate::StaleAck(_)))
                    .unwrap();
                let prev = st.prev.unwrap();
                let SynFate::StaleAck(check) = st.fate else {
                    unreachable!()
                };
                assert_eq!(check, prev.check);
                let (snat, rip) = (st.snat.unwrap(), st.rip.unwrap());
                let rs_syn_t = st.rs_ns.unwrap();
                // The earlier connection on this SNAT tuple, closed by the RS first.
                let old = ix.rs_conn(snat, rip, 0, rs_syn_t - 1);
                let old_syn = old
                    .iter()
                    .rev()
                    .find(|(_, p)| p.flags == ControlBits::SYN)
                    .unwrap();
                assert_eq!(old_syn.1.seq, prev.client_isn);
                let fins: Vec<_> = old
                    .iter()
                    .filter(|(t, p)| p.flags.fin() && *t > old_syn.0)
                    .collect();
                assert_eq!(fins.len(), 2);
                assert_eq!(SocketAddr::new(fins[0].1.src, fins[0].1.sport), rip);
                assert!(prev.rs_close_ns < rs_syn_t && rs_syn_t - prev.rs_close_ns < 60 * SEC);
                assert_eq!(by_id[&prev.attempt].isn, prev.client_isn);
                // The stale ACK answers the SYN on both sides, and the client resets.
                let after = ix.rs_conn(snat, rip, rs_syn_t, rs_syn_t + 50 * MS);
                let stale = after
                    .iter()
                    .find(|(_, p)| p.flags == ControlBits::ACK)
                    .unwrap()
                    .1;
                assert_ne!(stale.ack, a.isn.wrapping_add(1));
                let rst = after
                    .iter()
                    .find(|(_, p)| p.flags == ControlBits::RST)
                    .unwrap()
                    .1;
                assert_eq!(rst.seq, stale.ack);
                let c_after = ix.client_conn(a.client, a.vip, st.client_ns, a.last_ns);
                let c_stale = c_after
                    .iter()
                    .find(|(_, p)| p.flags == ControlBits::ACK)
                    .unwrap();
                assert!(same_but_addresses(&c_stale.1, &stale));
                if let (Some(v), Some((_, recent))) = (st.tsval, stale.ts) {
                    assert_eq!(check == TwCheck::Paws, (recent.wrapping_sub(v) as i32) > 0);
                } else {
                    assert_eq!(check, TwCheck::IsnNotAfter);
                }
                // The re-sent SYN: a few ms after the stale ACK, or at the 1 s timer.
                let next = a.syns[i + 1];
                let gap = next.client_ns - c_stale.0;
                if next.client_ns - st.client_ns < 500 * MS {
                    assert!((2 * MS..=8 * MS).contains(&gap), "{gap}");
                    assert_eq!(i, 0);
                } else {
                    assert!(next.client_ns - a.first_syn_ns >= SEC);
                }
            }
            TrueCause::SnatPortExhaustion => {
                assert_eq!(first.fate, SynFate::NoPort);
                assert!(
                    rs_syns
                        .iter()
                        .all(|(t, _)| *t > ix.rs_clock(first.client_ns))
                );
                // Nearly the whole SNAT range toward that RS in use within one NAT
                // TIME_WAIT; within the last minute when the attempt built its own fill
                // (in a random mix, an RS may still be full from an earlier one).
                let rip = first.rip.unwrap();
                let t_end = ix.rs_clock(first.client_ns);
                let used = |window: u64| {
                    s.rs.iter()
                        .filter(|(t, p)| {
                            *t + window >= t_end
                                && *t <= t_end
                                && p.flags == ControlBits::SYN
                                && SocketAddr::new(p.dst, p.dport) == rip
                        })
                        .map(|(_, p)| p.sport)
                        .collect::<HashSet<u16>>()
                        .len() as u32
                };
                let n = u32::from(s.nat.snat_ports.1 - s.nat.snat_ports.0) + 1;
                assert!(used(120 * SEC) * 10 >= n * 9, "{a:?}");
                if a.role == Role::Script {
                    assert!(used(60 * SEC) * 10 >= n * 9, "{} of {n}", used(60 * SEC));
                }
                assert!(a.delay_ns >= SEC - 10 * MS);
            }
            TrueCause::ConntrackInsertRace => {
                // The other client's SYN on the contested tuple, within a millisecond of
                // when this one would have arrived.
                assert_eq!(first.fate, SynFate::RaceDrop);
                let would = ix.rs_clock(first.client_ns + a.fwd_delay_ns);
                let (snat, rip) = (first.snat.unwrap(), first.rip.unwrap());
                let other = s.rs.iter().find(|(t, p)| {
                    p.flags == ControlBits::SYN
                        && t.abs_diff(would) <= MS
                        && SocketAddr::new(p.src, p.sport) == snat
                        && SocketAddr::new(p.dst, p.dport) == rip
                });
                let (_, other) = other.unwrap_or_else(|| panic!("{a:?}"));
                assert_ne!(other.seq, a.isn);
                assert!(rs_syns.iter().all(|(t, _)| *t > would + 900 * MS));
            }
            TrueCause::SynLostBeforeRs => {
                // Inside the NAT box or after it, each attempt's losses in one place.
                assert!(
                    matches!(first.fate, SynFate::Lost | SynFate::LostAfterNat),
                    "{a:?}"
                );
                let lost = a.syns.iter().take_while(|s| s.fate == first.fate).count();
                assert_eq!(rs_syns.len(), a.syns.len() - lost);
                assert!(a.delay_ns >= SEC);
            }
            TrueCause::SynackLostAfterRs => {
                assert_eq!(first.fate, SynFate::SynAckLost);
                let synacks = |v: &[(u64, TcpSpec)]| {
                    v.iter()
                        .filter(|(_, p)| {
                            p.flags == ControlBits::SYN | ControlBits::ACK
                                && p.ack == a.isn.wrapping_add(1)
                        })
                        .count()
                };
                assert_eq!(rs_syns.len(), 2);
                assert_eq!(synacks(&s.rs), 2);
                assert_eq!(synacks(&s.client), 1);
            }
            TrueCause::RsSlowSynack => {
                let t_syn = rs_syns[0].0;
                let sa = s
                    .rs
                    .iter()
                    .find(|(t, p)| *t >= t_syn && p.flags.syn() && p.ack == a.isn.wrapping_add(1))
                    .unwrap();
                assert!(sa.0 - t_syn >= 200 * MS);
                assert!(a.delay_ns >= 200 * MS);
            }
            TrueCause::RsRefused => {
                assert_eq!(a.syns.last().unwrap().fate, SynFate::Refused);
                let rst = |v: &[(u64, TcpSpec)]| {
                    v.iter().any(|(_, p)| {
                        p.flags == ControlBits::RST | ControlBits::ACK
                            && p.ack == a.isn.wrapping_add(1)
                    })
                };
                assert!(rst(&s.rs) && rst(&s.client));
                assert_eq!(a.setup_latency_ns, None);
            }
            TrueCause::Unmatched => {
                assert!(rs_syns.is_empty());
                let t = a.syns.iter().find_map(|s| s.rs_ns).unwrap();
                assert!(
                    s.rs.first().is_none_or(|(first, _)| t < *first) || {
                        let true_t = a.first_syn_ns + a.fwd_delay_ns;
                        true_t < s.nat.rs_capture.0 || true_t >= s.nat.rs_capture.1
                    }
                );
            }
            TrueCause::CaptureEnded => {
                // No answer in the client capture, and a capture's last packet before the
                // client's next SYN was due.
                assert_eq!(a.setup_latency_ns, None);
                let answers = ix.client_conn(a.client, a.vip, a.first_syn_ns, u64::MAX);
                assert!(
                    answers.iter().all(|(_, p)| p.flags == ControlBits::SYN),
                    "{a:?}"
                );
                let n = a.syns.len();
                let last = a.syns[n - 1].client_ns;
                let gap = if n >= 2 {
                    last - a.syns[n - 2].client_ns
                } else {
                    0
                };
                let due = last + gap.max(SEC);
                let client_end = s.client.last().unwrap().0;
                let rs_end = s.rs.last().map(|(t, _)| true_time(s, *t));
                assert!(client_end < due || rs_end.is_some_and(|e| e < due), "{a:?}");
            }
            TrueCause::Unexplained => {
                panic!("the generator never leaves a cause unexplained: {a:?}")
            }
        }
    }
    seen
}

/// The true time of an RS capture timestamp (the inverse of the RS clock, to the ns).
fn true_time(s: &PairScenario, rs: u64) -> u64 {
    let mut t = rs;
    for _ in 0..4 {
        t = rs.saturating_add_signed(-s.nat.clock.offset_at(t, s.nat.epoch_ns));
    }
    t
}

#[test]
fn test_scripted_every_cause_happens_as_built() {
    let cfg = scripted_cfg();
    let s = generate_pair(&cfg);
    let mains: Vec<_> = s.truth.iter().filter(|a| a.role == Role::Script).collect();
    assert_eq!(mains.len(), cfg.script.len());
    for a in &mains {
        assert_eq!(a.cause, a.intent.cause(), "{a:?}");
        if let PairKind::RsTimewaitCollision { again, check, .. } = a.intent {
            let stale: Vec<_> = a.syns.iter().filter_map(|s| s.prev).collect();
            assert_eq!(stale.len(), 1 + usize::from(again), "{a:?}");
            if let Some(c) = check {
                assert!(stale.iter().all(|p| p.check == c));
            }
            if again {
                // The re-sent SYN went to another tuple, which the RS also held.
                assert_ne!(
                    (a.syns[0].snat, a.syns[0].rip),
                    (a.syns[1].snat, a.syns[1].rip)
                );
                assert!(a.delay_ns >= SEC);
            }
        }
        if let PairKind::SnatPortExhaustion { tries } = a.intent {
            assert_eq!(a.syns.len(), usize::from(tries));
        }
    }
    // The helpers are what they should be: nothing else suffered.
    for a in s.truth.iter().filter(|a| a.role != Role::Script) {
        assert_eq!(a.cause, TrueCause::Ok, "{a:?}");
    }
    assert_consistent(&s);
    let seen = assert_signatures(&s);
    assert_eq!(seen.len(), 10, "{seen:?}");
}

#[test]
fn test_random_mix_truth_matches_both_captures() {
    for seed in [1, 2] {
        let s = generate_pair(&mixed_cfg(seed));
        assert_consistent(&s);
        assert_sides_agree(&s);
        let seen = assert_signatures(&s);
        assert!(seen.len() >= 8, "{seen:?}");
        // A draw happens as drawn unless another attempt's aftermath struck first (a
        // tuple an LB drop freed early while the RS still held it, a range an exhaustion
        // filled), or struck its setup (a predecessor or race partner that never connected),
        // or the captures ended while it was still unanswered (a bystander of a full range
        // that gave up near the end).
        let mut disturbed = 0;
        for a in s.truth.iter().filter(|a| a.role == Role::Background) {
            if a.cause != a.intent.cause() {
                let setup = matches!(
                    a.intent,
                    PairKind::LbSynDropPortReuse
                        | PairKind::RsTimewaitCollision { .. }
                        | PairKind::ConntrackInsertRace
                );
                assert!(
                    matches!(
                        a.cause,
                        TrueCause::RsTimewaitCollision
                            | TrueCause::SnatPortExhaustion
                            | TrueCause::CaptureEnded
                    ) || (setup && a.cause == TrueCause::Ok),
                    "{a:?}"
                );
                // Bystanders of a full port range are expected (also those that gave up
                // less than a retry gap before the captures ended); count the rest.
                let bystander = a.cause == TrueCause::SnatPortExhaustion
                    || (a.cause == TrueCause::CaptureEnded && a.syns[0].fate == SynFate::NoPort);
                disturbed += u32::from(!bystander);
            }
        }
        assert!(disturbed as usize * 20 < s.truth.len(), "{disturbed}");
    }
}

#[test]
fn test_rs_capture_span_cuts_and_marks_unmatched() {
    let cfg = PairConfig {
        attempts: 400,
        mean_gap_ns: 50 * MS,
        rs_capture: Some((35 * SEC, 45 * SEC)),
        ..PairConfig::default()
    };
    let s = generate_pair(&cfg);
    assert_consistent(&s);
    let (from, to) = s.nat.rs_capture;
    assert_eq!(
        (from, to),
        (cfg.start_ns + 35 * SEC, cfg.start_ns + 45 * SEC)
    );
    let clock = |t| cfg.clock.rs_ns(t, cfg.start_ns);
    assert!(
        s.rs.iter()
            .all(|(t, _)| *t >= clock(from) && *t < clock(to))
    );
    let unmatched = s
        .truth
        .iter()
        .filter(|a| a.cause == TrueCause::Unmatched)
        .count();
    let inside = s.truth.len() - unmatched;
    assert!(unmatched > 100 && inside > 100, "{unmatched} {inside}");
}

#[test]
fn test_classic_schedule_and_ipv6() {
    let v6 = |s: &str| s.parse::<SocketAddr>().unwrap();
    let cfg = PairConfig {
        vip: v6("[fd00:10:96::a]:80"),
        rss: vec![v6("[fd00:10:244:2::b]:8080"), v6("[fd00:10:244:3::c]:8080")],
        snat_ip: "fd00:10:244:1::1".parse().unwrap(),
        syn_schedule: SynSchedule::Classic,
        no_ts_clients: 4,
        ..scripted_cfg()
    };
    let s = generate_pair(&cfg);
    for a in s.truth.iter().filter(|a| a.role == Role::Script) {
        assert_eq!(a.cause, a.intent.cause(), "{a:?}");
        if let PairKind::SynLostBeforeRs { lost: 2 } = a.intent {
            // Classic backoff: retries at 1 s and 3 s.
            let d: Vec<u64> = a
                .syns
                .iter()
                .map(|s| s.client_ns - a.first_syn_ns)
                .collect();
            assert!(
                d[1] >= SEC && d[1] < SEC + 5 * MS && d[2] >= 3 * SEC,
                "{d:?}"
            );
        }
    }
    assert!(s.client.iter().all(|(_, p)| p.src.is_ipv6()));
    assert_consistent(&s);
    assert_signatures(&s);
}

#[test]
fn test_same_seed_same_bytes_other_seed_differs() {
    let bytes = |seed| {
        let cfg = PairConfig {
            seed,
            attempts: 200,
            script: every_kind(),
            snat_ports: (40000, 40063),
            ..PairConfig::default()
        };
        let (mut c, mut r, mut t) = (Vec::new(), Vec::new(), Vec::new());
        let fmt = CaptureFormat::Pcapng { tsresol: 9 };
        let stats = write_pair(
            &cfg,
            &Encap::Ethernet,
            &Encap::Sll2,
            fmt,
            &mut c,
            &mut r,
            Some(&mut t),
        )
        .unwrap();
        assert!(stats.client_packets > 0 && stats.rs_packets > 0);
        let tsv = String::from_utf8(t.clone()).unwrap();
        let mut lines = tsv.lines();
        let cols = lines.next().unwrap().split('\t').count();
        assert_eq!(cols, PairTruth::TSV_HEADER.split('\t').count());
        let rows: Vec<_> = lines.collect();
        assert_eq!(rows.len() as u64, stats.attempts);
        assert!(rows.iter().all(|r| r.split('\t').count() == cols));
        (c, r, t)
    };
    assert!(bytes(5) == bytes(5));
    assert!(bytes(5).0 != bytes(6).0);
}

#[test]
fn test_pair_kind_codes_round_trip() {
    for k in every_kind() {
        assert_eq!(k.to_string().parse::<PairKind>(), Ok(k));
    }
    assert!("rs_slow_synack:100".parse::<PairKind>().is_err());
    assert!("nonsense".parse::<PairKind>().is_err());
    assert!("rs_refused:1".parse::<PairKind>().is_err());
    let bad = PairConfig {
        clients: 3,
        no_ts_clients: 0,
        script: vec!["rs_timewait_collision:isn_not_after".parse().unwrap()],
        ..PairConfig::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn test_clock_model_offset_skew_step() {
    let epoch = 1_000 * SEC;
    let c = RsClock {
        offset_ns: -5 * MS as i64,
        skew_ppb: 20_000,
        step: Some((epoch + 10 * SEC, 3 * MS as i64)),
    };
    assert_eq!(c.rs_ns(epoch, epoch), epoch - 5 * MS);
    // 20 ppm over 5 s is 100 µs.
    assert_eq!(c.offset_at(epoch + 5 * SEC, epoch), -5_000_000 + 100_000);
    assert_eq!(
        c.offset_at(epoch + 10 * SEC, epoch),
        -5_000_000 + 200_000 + 3_000_000
    );
    assert_eq!(c.offset_at(epoch - SEC, epoch), -5_000_000 - 20_000);
}

#[test]
fn test_capture_ended_kind_codes_round_trip_and_must_be_last() {
    for s in ["capture_ended", "capture_ended:rs"] {
        let k: PairKind = s.parse().unwrap();
        assert_eq!(k.to_string(), s);
        assert_eq!(k.cause(), TrueCause::CaptureEnded);
    }
    assert_eq!(
        "capture_ended:client".parse::<PairKind>(),
        Ok(PairKind::CaptureEnded { rs: false })
    );
    assert!("capture_ended:both".parse::<PairKind>().is_err());
    let bad = PairConfig {
        script: vec![PairKind::CaptureEnded { rs: false }, PairKind::Ok],
        ..PairConfig::default()
    };
    assert!(bad.validate().is_err());
}

/// A scripted `capture_ended`, last: its SYN is lost and both captures stop before the
/// retry, the client's or the RS's first; everything before it is as usual.
#[test]
fn test_capture_ended_cuts_both_captures_before_the_retry() {
    for rs_first in [false, true] {
        let mut script = every_kind();
        script.retain(|k| *k != PairKind::Unmatched);
        script.push(PairKind::CaptureEnded { rs: rs_first });
        // A background light enough for the 64-port range.
        let cfg = PairConfig {
            attempts: 60,
            mean_gap_ns: 200 * MS,
            script,
            ..scripted_cfg()
        };
        let s = generate_pair(&cfg);
        assert_consistent(&s);
        assert_signatures(&s);
        let a = s
            .truth
            .iter()
            .find(|a| matches!(a.intent, PairKind::CaptureEnded { .. }))
            .unwrap();
        assert_eq!(a.cause, TrueCause::CaptureEnded, "{a:?}");
        assert_eq!(a.syns.len(), 1);
        assert_eq!(a.syns[0].fate, SynFate::Lost);
        let client_end = s.nat.client_capture_end.unwrap();
        let rs_end = s.nat.rs_capture.1;
        assert_eq!(rs_first, rs_end < client_end);
        for end in [client_end, rs_end] {
            assert!(end > a.first_syn_ns + 300 * MS && end < a.first_syn_ns + 900 * MS);
        }
        assert!(s.client.iter().all(|(t, _)| *t < client_end));
        assert!(s.client.last().unwrap().0 >= a.first_syn_ns);
        // It came last: every other attempt began before it, and the scripted ones are
        // as built.
        assert!(s.truth.iter().all(|b| b.first_syn_ns <= a.first_syn_ns));
        for b in s.truth.iter().filter(|b| b.role == Role::Script) {
            assert_eq!(b.cause, b.intent.cause(), "{b:?}");
        }
        let ended = s
            .truth
            .iter()
            .filter(|b| b.cause == TrueCause::CaptureEnded)
            .count();
        assert!(ended <= 3, "{ended}");
    }
}

/// A client that recycles its ports while an unrelated rule drops first SYNs: reused and
/// fresh tuples lose them at the same rate, and with `lb_reuse_drop` off none is the LB's.
/// With it on, the LB drops every first SYN on a recycled tuple.
#[test]
fn test_recycling_client_with_unrelated_first_syn_loss() {
    for lb in [false, true] {
        let cfg = PairConfig {
            attempts: 600,
            mean_gap_ns: 50 * MS,
            anomaly_ppm: 0,
            reuse_ppm: 700_000,
            first_syn_loss_ppm: 60_000,
            lb_reuse_drop: lb,
            ..PairConfig::default()
        };
        let s = generate_pair(&cfg);
        assert_consistent(&s);
        assert_signatures(&s);
        // Reused: the client closed the same 4-tuple less than 110 s before.
        let mut closed: HashMap<SocketAddr, u64> = HashMap::new();
        let (mut reused, mut reused_lost, mut fresh, mut fresh_lost) = (0, 0, 0, 0);
        for a in &s.truth {
            let r = closed
                .get(&a.client)
                .is_some_and(|&c| c < a.first_syn_ns && a.first_syn_ns - c < 110 * SEC);
            let lost = a.syns.len() > 1;
            if r {
                reused += 1;
                reused_lost += u32::from(lost);
                let want = if lb {
                    TrueCause::LbSynDropPortReuse
                } else if lost {
                    TrueCause::SynLostBeforeRs
                } else {
                    TrueCause::Ok
                };
                assert_eq!(a.cause, want, "{a:?}");
            } else {
                fresh += 1;
                fresh_lost += u32::from(lost);
                assert_ne!(a.cause, TrueCause::LbSynDropPortReuse, "{a:?}");
            }
            if a.setup_latency_ns.is_some() {
                closed.insert(a.client, a.last_ns);
            }
        }
        assert!(reused * 10 >= (reused + fresh) * 6, "{reused} {fresh}");
        if !lb {
            // About 6 % each.
            assert!(reused_lost >= 15, "{reused_lost} of {reused}");
            assert!(fresh_lost >= 3, "{fresh_lost} of {fresh}");
            let (r, f) = (
                f64::from(reused_lost) / f64::from(reused),
                f64::from(fresh_lost) / f64::from(fresh),
            );
            assert!(r < 0.12 && f < 0.15, "{r} {f}");
        }
    }
}

/// `--random-fully`: the NAT draws its ports, so the RS side almost never shows the
/// client's; a race victim's retry gets a port of its own, and no SYN on the RS side has
/// the victim's client port or the contested one after the race.
#[test]
fn test_random_snat_hides_the_race_victims_port() {
    let cfg = PairConfig {
        attempts: 200,
        mean_gap_ns: 100 * MS,
        random_snat: true,
        script: vec![PairKind::ConntrackInsertRace; 6],
        ..PairConfig::default()
    };
    let s = generate_pair(&cfg);
    assert_consistent(&s);
    assert_signatures(&s);
    let kept = s
        .truth
        .iter()
        .filter(|a| a.final_syn().and_then(|f| f.snat).map(|x| x.port()) == Some(a.client.port()))
        .count();
    assert!(kept * 50 < s.truth.len(), "{kept} kept their port");
    let victims: Vec<_> = s
        .truth
        .iter()
        .filter(|a| a.cause == TrueCause::ConntrackInsertRace)
        .collect();
    assert_eq!(victims.len(), 6);
    for a in victims {
        let lost = a.syns[0].snat.unwrap().port();
        let retry = a.syns[1].snat.unwrap().port();
        assert_ne!(lost, retry, "{a:?}");
        assert_ne!(a.client.port(), retry, "{a:?}");
        let rs =
            s.rs.iter()
                .filter(|(_, p)| p.seq == a.isn && p.flags == ControlBits::SYN);
        assert!(rs.clone().count() >= 1);
        assert!(rs.clone().all(|(_, p)| p.sport == retry), "{a:?}");
    }
}

/// A NAT that evicts closed connections' entries (Linux ≥ 6.5): a small range busy with
/// short connections never runs out, re-using tuples well within conntrack's TIME_WAIT,
/// where the same traffic through a holding NAT does run out. A scripted exhaustion then
/// needs live connections: its fillers stay open across the SYNs that fail.
#[test]
fn test_evicting_nat_reuses_closed_tuples_and_exhausts_only_with_live_ones() {
    let busy = |evict: bool| PairConfig {
        attempts: 600,
        mean_gap_ns: 20 * MS,
        anomaly_ppm: 0,
        snat_ports: (40000, 40031),
        nat_evicts_closing: evict,
        stale_resend: Some(StaleResend::Fast),
        ..PairConfig::default()
    };
    let no_port = |s: &PairScenario| {
        s.truth
            .iter()
            .filter(|a| a.syns.iter().any(|x| x.fate == SynFate::NoPort))
            .count()
    };
    let held = generate_pair(&busy(false));
    assert!(no_port(&held) > 100, "{}", no_port(&held));
    let s = generate_pair(&busy(true));
    assert_consistent(&s);
    assert_signatures(&s);
    assert_eq!(no_port(&s), 0);
    // RS-side SYNs on a tuple whose previous connection ended less than 120 s before.
    let mut last: HashMap<(SocketAddr, SocketAddr), u64> = HashMap::new();
    let mut reused = 0;
    for (t, p) in &s.rs {
        let key = conn_key(p);
        if p.flags == ControlBits::SYN && last.get(&key).is_some_and(|&l| *t - l < 120 * SEC) {
            reused += 1;
        }
        last.insert(key, *t);
    }
    assert!(reused * 2 > s.truth.len(), "{reused}");

    for tries in [2, 3] {
        let cfg = PairConfig {
            script: vec![PairKind::SnatPortExhaustion { tries }],
            ..busy(true)
        };
        let s = generate_pair(&cfg);
        assert_consistent(&s);
        assert_signatures(&s);
        let a = s.truth.iter().find(|a| a.role == Role::Script).unwrap();
        assert_eq!(a.cause, TrueCause::SnatPortExhaustion, "{a:?}");
        assert_eq!(a.syns.len(), usize::from(tries), "{a:?}");
        // Every filler toward that RS was open (SYN before, FIN after) at the first SYN.
        let rip = a.syns[0].rip.unwrap();
        let t0 = s.nat.clock.rs_ns(a.first_syn_ns, s.nat.epoch_ns);
        let ix = Ix::new(&s);
        let fillers: Vec<_> = s
            .truth
            .iter()
            .filter(|f| f.role == Role::Filler && f.final_syn().and_then(|x| x.rip) == Some(rip))
            .collect();
        let n = u64::from(cfg.snat_ports.1 - cfg.snat_ports.0) + 1;
        let open = fillers
            .iter()
            .filter(|f| {
                let snat = f.final_syn().unwrap().snat.unwrap();
                let pk = ix.rs_conn(snat, rip, 0, u64::MAX);
                let syn = pk
                    .iter()
                    .find(|(_, p)| p.flags == ControlBits::SYN && p.seq == f.isn);
                let fin = pk.iter().rev().find(|(_, p)| p.flags.fin());
                syn.is_some_and(|x| x.0 < t0) && fin.is_some_and(|x| x.0 > t0)
            })
            .count() as u64;
        assert!(open >= n, "{open} of {n} open");
    }
}

/// Lost SYNs split between the NAT box and the network after it
/// (`syn_loss_after_nat_ppm`): the node's post-NAT view holds each SYN lost after the NAT,
/// as it left the box (its SNAT tuple, at `nat_out_ns`, before it would have reached the
/// RS), and the RS capture does not; a SYN lost inside the box is in neither. Everything
/// else in the node's view is the RS capture's packets, none missing. With the knob off,
/// no SYN is lost after the NAT and the node's view is exactly the RS capture's packets.
#[test]
fn test_syn_lost_after_the_nat_is_in_the_node_view_only() {
    let as_set = |v: &[(u64, TcpSpec)]| {
        let mut d: Vec<String> = v.iter().map(|(_, p)| format!("{p:?}")).collect();
        d.sort_unstable();
        d
    };
    for (seed, after_ppm) in [(1, 0), (1, 500_000), (2, 500_000), (3, 300_000)] {
        let cfg = PairConfig {
            seed,
            attempts: 600,
            mean_gap_ns: 20 * MS,
            anomaly_ppm: 0,
            first_syn_loss_ppm: 80_000,
            syn_loss_after_nat_ppm: after_ppm,
            clock: RsClock {
                offset_ns: -40 * MS as i64,
                skew_ppb: 30_000,
                step: None,
            },
            // `unmatched` puts the RS capture's start (and the node view's) after it.
            script: ["unmatched", "syn_lost_before_rs:2", "syn_lost_before_rs:3"]
                .iter()
                .map(|k| k.parse().unwrap())
                .collect(),
            ..PairConfig::default()
        };
        let label = format!("seed {seed}, {after_ppm} ppm after the NAT");
        let s = generate_pair(&cfg);
        assert_consistent(&s);
        assert_signatures(&s);
        assert!(
            s.node.windows(2).all(|w| w[0].0 <= w[1].0),
            "{label}: node time order"
        );
        let ix = Ix::new(&s);
        let syns_in = |v: &[(u64, TcpSpec)], isn: u32, from: u64, to: u64| -> Vec<(u64, TcpSpec)> {
            v.iter()
                .filter(|(_, p)| p.flags == ControlBits::SYN && p.seq == isn)
                .filter(|(t, _)| (from..=to).contains(t))
                .copied()
                .collect()
        };
        let span = s.nat.rs_capture;
        let (mut inside, mut after, mut after_in_span) = (0, 0, 0);
        for a in &s.truth {
            let lost = |f: SynFate| a.syns.iter().any(|x| x.fate == f);
            assert!(
                !(lost(SynFate::Lost) && lost(SynFate::LostAfterNat)),
                "{label}: losses in two places: {a:?}"
            );
            for (i, st) in a.syns.iter().enumerate() {
                // Where it would have reached the RS: true time, and on the RS clock.
                let would = st.client_ns + a.fwd_delay_ns;
                let rs_near = syns_in(
                    &s.rs,
                    a.isn,
                    ix.rs_clock(st.client_ns),
                    ix.rs_clock(would) + MS,
                );
                let node_near = syns_in(&s.node, a.isn, st.client_ns, would);
                match st.fate {
                    SynFate::LostAfterNat => {
                        after += 1;
                        assert_eq!(a.cause, TrueCause::SynLostBeforeRs, "{label}: {a:?}");
                        assert!(rs_near.is_empty(), "{label}: SYN {i} at the RS: {a:?}");
                        assert_eq!(st.rs_ns, None, "{label}: {a:?}");
                        let out = st.nat_out_ns.expect("left the NAT box");
                        assert!(
                            st.client_ns < out && out < would,
                            "{label}: left the box at {out}: {a:?}"
                        );
                        if !(span.0..span.1).contains(&would) {
                            assert!(node_near.is_empty(), "{label}: {a:?}");
                            continue;
                        }
                        after_in_span += 1;
                        let [(t, p)] = node_near[..] else {
                            panic!("{label}: SYN {i} {node_near:?} in the node view: {a:?}");
                        };
                        assert_eq!(t, out, "{label}: {a:?}");
                        assert_eq!(Some(SocketAddr::new(p.src, p.sport)), st.snat);
                        assert_eq!(Some(SocketAddr::new(p.dst, p.dport)), st.rip);
                        assert_eq!(p.ttl, 63);
                        let client = ix.client_syns[&a.isn]
                            .iter()
                            .find(|(t, _)| *t == st.client_ns)
                            .expect("the client sent it");
                        assert!(same_but_addresses(client.1, &p), "{label}: {a:?}");
                    }
                    SynFate::Lost => {
                        inside += 1;
                        assert!(rs_near.is_empty(), "{label}: SYN {i} at the RS: {a:?}");
                        assert!(node_near.is_empty(), "{label}: SYN {i} left the box: {a:?}");
                        assert_eq!(st.nat_out_ns, None, "{label}: {a:?}");
                    }
                    f if f.reached_rs() => {
                        // Out of the box before it reached the RS, and in both views
                        // when in the capture's span.
                        let out = st.nat_out_ns.expect("left the NAT box");
                        assert!(st.client_ns < out && out < would, "{label}: {a:?}");
                        if (span.0..span.1).contains(&would) {
                            assert_eq!(rs_near.len(), 1, "{label}: SYN {i}: {a:?}");
                            assert!(node_near.iter().any(|x| x.0 == out), "{label}: {a:?}");
                        }
                    }
                    _ => assert_eq!(st.nat_out_ns, None, "{label}: {a:?}"),
                }
            }
        }
        // The node's view: the RS capture's packets and the SYNs lost after the NAT.
        let lost_after: Vec<(u64, TcpSpec)> = s
            .node
            .iter()
            .filter(|(t, p)| {
                p.flags == ControlBits::SYN
                    && s.truth.iter().any(|a| {
                        a.isn == p.seq
                            && a.syns.iter().any(|x| {
                                x.fate == SynFate::LostAfterNat && x.nat_out_ns == Some(*t)
                            })
                    })
            })
            .copied()
            .collect();
        assert_eq!(lost_after.len(), after_in_span, "{label}");
        let mut want = as_set(&s.rs);
        want.extend(as_set(&lost_after));
        want.sort_unstable();
        assert_eq!(as_set(&s.node), want, "{label}");
        eprintln!("{label}: {inside} lost inside, {after} after ({after_in_span} in span)");
        if after_ppm == 0 {
            assert_eq!(after, 0, "{label}");
            assert!(inside >= 20, "{label}: {inside} lost inside");
        } else {
            // Each about its share of some 50 attempts' losses.
            assert!(
                inside >= 10 && after_in_span >= 10,
                "{label}: {inside} lost inside, {after} after ({after_in_span} in span)"
            );
        }
    }
}
