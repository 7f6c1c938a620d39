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
use crate::units::Endpoint;
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
pub fn pair(client: &CaptureReport, rs: &CaptureReport, hints: &Hints) -> Pairing {
    let mut by_isn: FxHashMap<u32, RsIds> = FxHashMap::default();
    let mut pre_nat_copies = 0;
    let client_tuples: rustc_hash::FxHashSet<(Endpoint, Endpoint)> = client
        .attempts
        .iter()
        .map(|a| (a.client, a.server))
        .collect();
    for r in &rs.attempts {
        if !hints.rs_ok(r) {
            continue;
        }
        if client_tuples.contains(&(r.client, r.server)) {
            pre_nat_copies += 1;
            continue;
        }
        by_isn.entry(r.isn.0).or_default().push(r.id);
    }

    let n = client.attempts.len();
    let mut rs_of: Vec<RsIds> = vec![RsIds::new(); n];
    let selected: Vec<bool> = client.attempts.iter().map(|a| hints.client_ok(a)).collect();
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
