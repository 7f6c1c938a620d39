//! Correlate: pair each client-side attempt with what the real server saw, through
//! DNAT/SNAT, without being told the NAT.
//!
//! NAT rewrites addresses and ports only, so a SYN's ISN, TSval and option layout survive
//! it. Attempts are indexed by ISN (hash, not a quadratic search); a candidate on the RS
//! side must have the same option layout, share a SYN TSval with the client attempt when
//! both carry timestamps, and, when both saw the SYN-ACK, the same server ISN. One client
//! attempt can appear on several RS tuples: the client's RST after a stale ACK makes the NAT
//! treat the re-sent SYN as new, and it may get another SNAT port. Candidates whose
//! 4-tuple is the client's own are the pre-NAT copies a `tcpdump -i any` on the node holds;
//! they are counted and left out.
//!
//! Matched handshakes are NTP exchanges for the [`clock`](crate::clock) model; attempts
//! without timestamps are then matched by time on the client's clock.

use crate::capture::CaptureReport;
use crate::clock::{self, ClockModel, Exchange};
use crate::flows::Attempt;
use crate::units::{Endpoint, Tuple};
use crate::vantage::Selection;
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;
use std::net::IpAddr;

/// Optional hints that narrow the pairing.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// Only client attempts to this address (and port, when given).
    pub vip: Option<(IpAddr, Option<u16>)>,
    /// Only RS attempts to this port.
    pub rs_port: Option<u16>,
}

impl Hints {
    fn client_ok(&self, a: &Attempt) -> bool {
        self.vip
            .is_none_or(|(ip, port)| a.server.ip == ip && port.is_none_or(|p| a.server.port == p))
    }
    fn rs_ok(&self, a: &Attempt) -> bool {
        self.rs_port.is_none_or(|p| a.server.port == p)
    }
}

/// A VIP and the real servers it was seen mapped to.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceMap {
    pub vip: Endpoint,
    /// Real server endpoints with the number of attempts mapped to each.
    pub backends: Vec<(Endpoint, u64)>,
}

/// The NAT as discovered from the matched attempts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NatMap {
    pub services: Vec<ServiceMap>,
    /// (client address, address seen on the RS side, attempts).
    pub snat: Vec<(IpAddr, IpAddr, u64)>,
    /// RS-side tuples that kept the client's port, and those that got another one.
    pub ports_kept: u64,
    pub ports_rewritten: u64,
    /// The shortest time from a real-server-side connection's last packet to a new
    /// connection of the pair's on the same SNAT tuple: the NAT was seen to re-use a closed
    /// tuple that soon (conntrack's TIME_WAIT is 120 s, but since Linux 6.5 nf_nat evicts a
    /// closing entry on a clash). `None`: no re-use seen.
    pub tuple_reused_after_ns: Option<i64>,
    /// The pair's real-server-side attempts on a SNAT tuple re-used within
    /// [`NAT_HOLD_NS`] of its previous connection's last packet.
    pub tuples_reused_within_hold: u64,
}

/// How long after its last packet a NAT holds a closed tuple unless seen to re-use tuples
/// sooner (conntrack's TIME_WAIT).
pub const NAT_HOLD_NS: i64 = 120 * crate::units::NS_PER_S;

impl NatMap {
    /// How long the NAT holds a closed tuple, as seen: [`NAT_HOLD_NS`], or the shortest
    /// re-use where the NAT re-used tuples inside it again and again (at least 3 times,
    /// and on at least a tenth of the attempts), as its normal behaviour rather than an
    /// exception (one TIME_WAIT collision does not make a NAT that never holds a tuple).
    pub fn hold_ns(&self) -> i64 {
        let attempts = self.ports_kept + self.ports_rewritten;
        let usual =
            self.tuples_reused_within_hold >= 3 && self.tuples_reused_within_hold * 10 >= attempts;
        match self.tuple_reused_after_ns {
            Some(seen) if usual => seen.clamp(0, NAT_HOLD_NS),
            _ => NAT_HOLD_NS,
        }
    }
}

/// RS attempt ids: one, for nearly every paired attempt (a retry re-mapped by the NAT
/// can have two or three), kept inline.
pub type RsIds = SmallVec<[u32; 2]>;

/// The result of pairing two captures.
#[derive(Clone, Debug)]
pub struct Pairing {
    /// For each client attempt (by id): the RS attempts that are the same attempt, in time
    /// order; empty when none was found.
    pub rs_of: Vec<RsIds>,
    /// For each client attempt: whether the hints selected it.
    pub selected: Vec<bool>,
    /// For each RS attempt: the client attempt it belongs to.
    pub client_of: Vec<Option<u32>>,
    pub clock: ClockModel,
    pub nat: NatMap,
    /// The RS capture's first and last frame, on the client's clock.
    pub rs_span: Option<(i64, i64)>,
    /// RS attempts on the client's own 4-tuple (pre-NAT copies in an `-i any` capture).
    pub pre_nat_copies: u64,
    /// Matches made on TSval (strong) and on time alone (clients without timestamps).
    pub matched_by_tsval: u64,
    pub matched_by_time: u64,
}

fn tsvals(a: &Attempt) -> impl Iterator<Item = u32> + '_ {
    a.syns.iter().filter_map(|s| s.tsval)
}

/// Whether `r` (RS side) can be `c` (client side) after NAT, before looking at time.
fn compatible(c: &Attempt, r: &Attempt) -> bool {
    c.opt_layout == r.opt_layout
        && c.wscale == r.wscale
        && c.sack_perm == r.sack_perm
        && match (c.server_isn, r.server_isn) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

/// Pairs the attempts of the client capture with those of the RS capture.
///
/// `sel` says which attempts each side takes (a node capture is both sides of its own
/// pair, [`vantage`](crate::vantage)); without a selection on the RS side, RS attempts on
/// a client's own tuple are the pre-NAT copies of a `tcpdump -i any` and are left out.
pub fn pair(client: &CaptureReport, rs: &CaptureReport, hints: &Hints, sel: &Selection) -> Pairing {
    let mut by_isn: FxHashMap<u32, RsIds> = FxHashMap::default();
    let mut pre_nat_copies = 0;
    let client_tuples: rustc_hash::FxHashSet<Tuple> = match sel.rs {
        Some(_) => Default::default(),
        None => client.attempts.iter().map(Attempt::tuple).collect(),
    };
    for r in &rs.attempts {
        if !hints.rs_ok(r) || !sel.rs_ok(r.id) {
            continue;
        }
        if client_tuples.contains(&r.tuple()) {
            pre_nat_copies += 1;
            continue;
        }
        by_isn.entry(r.isn.0).or_default().push(r.id);
    }

    let n = client.attempts.len();
    let mut rs_of: Vec<RsIds> = vec![RsIds::new(); n];
    let selected: Vec<bool> = client
        .attempts
        .iter()
        .map(|a| hints.client_ok(a) && sel.client_ok(a.id))
        .collect();
    let mut weak: Vec<u32> = Vec::new();
    let mut exchanges = Vec::new();
    let (mut by_tsval, mut by_time) = (0, 0);
    for c in client.attempts.iter().filter(|a| selected[a.id as usize]) {
        let Some(cands) = by_isn.get(&c.isn.0) else {
            continue;
        };
        let has_ts = c.syns.iter().any(|s| s.tsval.is_some());
        let mut strong = RsIds::new();
        for &rid in cands {
            let r = &rs.attempts[rid as usize];
            if !compatible(c, r) {
                continue;
            }
            if has_ts {
                if tsvals(r).any(|v| tsvals(c).any(|w| w == v)) {
                    strong.push(rid);
                }
            } else if r.syns.iter().all(|s| s.tsval.is_none()) {
                weak.push(c.id);
                break;
            }
        }
        if strong.is_empty() {
            continue;
        }
        by_tsval += 1;
        strong.sort_by_key(|&r| rs.attempts[r as usize].first_syn().ts);
        // The answered SYN seen on both sides, and the same SYN-ACK on both sides: an
        // exchange. The same packet: equal TSvals, or without timestamps a single SYN on
        // both sides (a lost SYN-ACK makes the client retry).
        for &rid in &strong {
            let r = &rs.attempts[rid as usize];
            let (Some(cs), Some(rsa)) = (c.synack, r.synack) else {
                continue;
            };
            let (Some(clast), Some(rlast)) = (c.syns.last(), r.syns.last()) else {
                continue;
            };
            let same_synack = match (c.synack_tsval, r.synack_tsval) {
                (Some(a), Some(b)) => a == b,
                _ => c.tries() == 1 && r.tries() == 1,
            };
            if c.server_isn == r.server_isn && clast.tsval == rlast.tsval && same_synack {
                exchanges.push(Exchange {
                    t1: clast.pkt.ts,
                    t2: rlast.pkt.ts,
                    t3: rsa.ts,
                    t4: cs.ts,
                });
            }
        }
        rs_of[c.id as usize] = strong;
    }
    let clock = clock::estimate(&exchanges);

    // Without timestamps: the candidates whose first SYN falls within the span of the
    // client's tries plus a second either side (client clock). Several can be right: a
    // retry after a stale ACK may leave on another SNAT port, to another real server.
    weak.sort_unstable();
    weak.dedup();
    for cid in weak {
        let c = &client.attempts[cid as usize];
        let lo = c.first_syn().ts - 1_000_000_000;
        let hi = c.syns.last().map_or(lo, |s| s.pkt.ts) + 1_000_000_000;
        let mut found: RsIds = by_isn
            .get(&c.isn.0)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&rid| {
                let r = &rs.attempts[rid as usize];
                compatible(c, r) && (lo..=hi).contains(&clock.to_client(r.first_syn().ts))
            })
            .collect();
        if !found.is_empty() {
            by_time += 1;
            found.sort_by_key(|&r| rs.attempts[r as usize].first_syn().ts);
            rs_of[cid as usize] = found;
        }
    }

    let mut client_of = vec![None; rs.attempts.len()];
    for (cid, rids) in rs_of.iter().enumerate() {
        for &r in rids {
            client_of[r as usize] = Some(cid as u32);
        }
    }
    let nat = nat_map(client, rs, &rs_of);
    let rs_span = rs
        .first_ts
        .zip(rs.last_ts)
        .map(|(a, b)| (clock.to_client(a), clock.to_client(b)));
    Pairing {
        rs_of,
        selected,
        client_of,
        clock,
        nat,
        rs_span,
        pre_nat_copies,
        matched_by_tsval: by_tsval,
        matched_by_time: by_time,
    }
}

fn nat_map(client: &CaptureReport, rs: &CaptureReport, rs_of: &[RsIds]) -> NatMap {
    let mut services: FxHashMap<Endpoint, FxHashMap<Endpoint, u64>> = FxHashMap::default();
    let mut snat: FxHashMap<(IpAddr, IpAddr), u64> = FxHashMap::default();
    let mut nat = NatMap::default();
    for (cid, rids) in rs_of.iter().enumerate() {
        let c = &client.attempts[cid];
        for &rid in rids {
            let r = &rs.attempts[rid as usize];
            *services
                .entry(c.server)
                .or_default()
                .entry(r.server)
                .or_default() += 1;
            *snat.entry((c.client.ip, r.client.ip)).or_default() += 1;
            if r.client.port == c.client.port {
                nat.ports_kept += 1;
            } else {
                nat.ports_rewritten += 1;
            }
            let reused = rs.connections[r.conn as usize]
                .predecessor
                .map(|p| p.since_last_packet_ns);
            if let Some(age) = reused {
                nat.tuple_reused_after_ns =
                    Some(nat.tuple_reused_after_ns.map_or(age, |m| m.min(age)));
                nat.tuples_reused_within_hold += u64::from(age < NAT_HOLD_NS);
            }
        }
    }
    let mut services: Vec<ServiceMap> = services
        .into_iter()
        .map(|(vip, b)| {
            let mut backends: Vec<(Endpoint, u64)> = b.into_iter().collect();
            backends.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            ServiceMap { vip, backends }
        })
        .collect();
    services.sort_by_key(|s| s.vip);
    let mut snat: Vec<(IpAddr, IpAddr, u64)> =
        snat.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    snat.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    nat.services = services;
    nat.snat = snat;
    nat
}

/// The pairing rules by situation, on hand-built client-side and real-server-side
/// captures of one connection attempt through DNAT + SNAT.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hold_is_learned_only_from_a_nat_that_reuses_tuples_as_a_rule() {
        let nat = |reused_after: Option<i64>, within: u64, attempts: u64| NatMap {
            tuple_reused_after_ns: reused_after,
            tuples_reused_within_hold: within,
            ports_rewritten: attempts,
            ..NatMap::default()
        };
        assert_eq!(nat(None, 0, 50).hold_ns(), NAT_HOLD_NS);
        // One TIME_WAIT collision among many attempts: the exception, not the NAT's rule.
        assert_eq!(nat(Some(NS_PER_S), 1, 100).hold_ns(), NAT_HOLD_NS);
        assert_eq!(nat(Some(NS_PER_S), 9, 100).hold_ns(), NAT_HOLD_NS);
        // The lab's insert race: 144 of 300 attempts on a tuple re-used within 1 s.
        assert_eq!(nat(Some(NS_PER_S), 144, 300).hold_ns(), NS_PER_S);
        // Re-use on nearly every attempt (the lab's two-port SNAT): held that long only.
        assert_eq!(
            nat(Some(600 * NS_PER_MS), 44, 46).hold_ns(),
            600 * NS_PER_MS
        );
        // Seen re-used later than conntrack's TIME_WAIT: still that at most.
        assert_eq!(nat(Some(500 * NS_PER_S), 40, 46).hold_ns(), NAT_HOLD_NS);
    }
    use crate::capture;
    use crate::decode::{Segment, TcpFlags};
    use crate::units::{NS_PER_MS, NS_PER_S};

    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const RST: u8 = TcpFlags::RST;
    const ISN: u32 = 1_000;
    const SERVER_ISN: u32 = 9_000;
    const T0: i64 = 1_700_000_000 * NS_PER_S;

    fn ep(ip: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port,
        }
    }
    fn client() -> Endpoint {
        ep("10.0.0.1", 40_000)
    }
    fn vip() -> Endpoint {
        ep("10.96.0.10", 80)
    }
    fn snat(port: u16) -> Endpoint {
        ep("192.168.0.5", port)
    }
    fn rs() -> Endpoint {
        ep("10.244.1.7", 8080)
    }

    /// A packet `ms` after T0 from `src` to `dst`, with a TSval when given.
    #[allow(clippy::too_many_arguments)]
    fn pkt(
        ms: i64,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
        tsval: Option<u32>,
    ) -> Segment {
        let mut s = Segment::bare(0, T0 + ms * NS_PER_MS, src, dst, seq, ack, flags);
        s.opts.ts = tsval.map(|v| (v, 0));
        s
    }

    /// A capture of these packets, numbered in order.
    fn capture(name: &str, mut packets: Vec<Segment>) -> CaptureReport {
        for (i, p) in packets.iter_mut().enumerate() {
            p.frame = i as u64 + 1;
        }
        capture::of_segments(name, &packets)
    }

    /// One handshake from `c` to `s` at `ms`, answered 1 ms later, with TSvals.
    fn handshake(ms: i64, c: Endpoint, s: Endpoint, ts: Option<u32>) -> Vec<Segment> {
        vec![
            pkt(ms, c, s, ISN, 0, SYN, ts),
            pkt(ms + 1, s, c, SERVER_ISN, ISN + 1, SYNACK, ts.map(|v| v + 7)),
            pkt(ms + 2, c, s, ISN + 1, SERVER_ISN + 1, ACK, ts),
        ]
    }

    fn pair_of(client_side: Vec<Segment>, rs_side: Vec<Segment>) -> Pairing {
        let c = capture("client.pcap", client_side);
        let r = capture("rs.pcap", rs_side);
        pair(&c, &r, &Hints::default(), &Selection::default())
    }

    #[test]
    fn test_same_isn_and_tsval_on_the_rewritten_tuple_is_the_same_attempt() {
        let p = pair_of(
            handshake(0, client(), vip(), Some(500)),
            handshake(0, snat(61_000), rs(), Some(500)),
        );
        assert_eq!(p.rs_of[0].as_slice(), &[0]);
        assert_eq!(p.client_of, vec![Some(0)]);
        assert_eq!((p.matched_by_tsval, p.matched_by_time), (1, 0));
        assert_eq!(p.nat.services[0].vip, vip());
        assert_eq!(p.nat.services[0].backends, vec![(rs(), 1)]);
        assert_eq!(p.nat.snat, vec![(client().ip, snat(0).ip, 1)]);
        assert_eq!((p.nat.ports_kept, p.nat.ports_rewritten), (0, 1));
        // The handshake seen on both sides is a clock sample.
        assert_eq!(p.clock.exchanges, 1);
    }

    #[test]
    fn test_pre_nat_copy_on_the_clients_own_tuple_is_counted_and_left_out() {
        // `tcpdump -i any` on the NAT box: the packet before and after the rewrite.
        let mut rs_side = handshake(0, client(), vip(), Some(500));
        rs_side.extend(handshake(0, snat(61_000), rs(), Some(500)));
        rs_side.sort_by_key(|s| s.ts);
        let p = pair_of(handshake(0, client(), vip(), Some(500)), rs_side);
        assert_eq!(p.pre_nat_copies, 1);
        assert_eq!(p.rs_of[0].len(), 1);
        let kept = p.nat.ports_kept;
        assert_eq!(kept, 0, "the copy is not a NAT mapping");
    }

    #[test]
    fn test_same_isn_with_another_tsval_is_another_attempt() {
        let p = pair_of(
            handshake(0, client(), vip(), Some(500)),
            handshake(0, snat(61_000), rs(), Some(123_456)),
        );
        assert!(p.rs_of[0].is_empty());
        assert_eq!(p.client_of, vec![None]);
    }

    #[test]
    fn test_same_isn_and_tsval_with_another_option_layout_is_another_attempt() {
        let mut rs_side = handshake(0, snat(61_000), rs(), Some(500));
        rs_side[0].opts.layout = 0x0204;
        let p = pair_of(handshake(0, client(), vip(), Some(500)), rs_side);
        assert!(p.rs_of[0].is_empty());
    }

    #[test]
    fn test_retry_remapped_to_another_snat_port_is_one_attempt_on_two_tuples() {
        // Stale ACK on the first SNAT tuple; the client's RST makes the NAT treat the
        // re-sent SYN as new, and it leaves on another port.
        let mut client_side = vec![
            pkt(0, client(), vip(), ISN, 0, SYN, Some(500)),
            pkt(1, vip(), client(), 77, 5_555, ACK, Some(90)),
            pkt(2, client(), vip(), 5_555, 0, RST, None),
        ];
        client_side.extend(handshake(10, client(), vip(), Some(510)));
        let mut rs_side = vec![
            pkt(0, snat(61_000), rs(), ISN, 0, SYN, Some(500)),
            pkt(1, rs(), snat(61_000), 77, 5_555, ACK, Some(90)),
            pkt(2, snat(61_000), rs(), 5_555, 0, RST, None),
        ];
        rs_side.extend(handshake(10, snat(61_001), rs(), Some(510)));
        let p = pair_of(client_side, rs_side);
        assert_eq!(
            p.rs_of[0].as_slice(),
            &[0, 1],
            "both RS tuples, in time order"
        );
        assert_eq!(p.client_of, vec![Some(0), Some(0)]);
    }

    #[test]
    fn test_without_timestamps_matched_by_time_within_a_second_only() {
        let near = pair_of(
            handshake(0, client(), vip(), None),
            handshake(200, snat(61_000), rs(), None),
        );
        assert_eq!(near.rs_of[0].as_slice(), &[0]);
        assert_eq!((near.matched_by_tsval, near.matched_by_time), (0, 1));
        let far = pair_of(
            handshake(0, client(), vip(), None),
            handshake(5_000, snat(61_000), rs(), None),
        );
        assert!(far.rs_of[0].is_empty());
    }

    #[test]
    fn test_vip_hint_leaves_other_services_unpaired() {
        let c = capture("client.pcap", handshake(0, client(), vip(), Some(500)));
        let r = capture("rs.pcap", handshake(0, snat(61_000), rs(), Some(500)));
        let hints = Hints {
            vip: Some((vip().ip, Some(443))),
            rs_port: None,
        };
        let p = pair(&c, &r, &hints, &Selection::default());
        assert_eq!(p.selected, vec![false]);
        assert!(p.rs_of[0].is_empty());
    }
}
