//! Vantage: what each capture of a set saw of the NAT, worked out from the traffic, and
//! from that the plan of which attempts are judged against which.
//!
//! NAT rewrites addresses and ports, never a SYN's ISN, option layout, TSval or IP ID: the
//! same SYN packet (same ISN and options, same TSval and IP ID) seen on two 4-tuples is one
//! packet seen before and after a NAT. Every attempt of every capture is grouped with the
//! other observations of its SYNs, and within a group the 4-tuples are ordered along the
//! path:
//! - where one capture saw the same packet on two tuples (a node's `tcpdump -i any`), the
//!   one it saw first is upstream (ingress before egress, on one clock);
//! - else, across two captures, the capture whose SYN → SYN-ACK time is the longer is
//!   nearer the client (the client's round trip contains the real server's), by a vote
//!   over every handshake the two captures share;
//! - else the command line's order.
//!
//! The tuples nothing is upstream of are the pre-NAT leg; the others are post-NAT legs (a
//! retry the NAT remapped to another SNAT port is a second post-NAT tuple). A capture that
//! saw only pre-NAT legs is on the client side, only post-NAT legs on the real-server side,
//! both: a node. Of the observations of one leg, one is of record: the client's attempt is
//! judged once, where it was seen nearest the client; its real-server counterpart is read
//! from the capture nearest the real server; every other observation is a copy. Each SYN
//! try's path (client, into the NAT, out of it, real server) is recorded.

use crate::capture::CaptureReport;
use crate::clock::{self, ClockModel, Exchange};
use crate::flows::Attempt;
use crate::units::{Endpoint, Tuple, codes};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use smallvec::SmallVec;
use std::cmp::Ordering;

codes! {
    /// Where a capture was taken, relative to the NAT.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Vantage {
        Client = ("client", "client side of the NAT: connections to the VIP"),
        Rs = ("rs", "real-server side of the NAT: connections after DNAT/SNAT"),
        Node = ("node", "both sides of the NAT (e.g. `tcpdump -i any` on the node)"),
        /// No SYN seen on two legs: taken as the client side, as a single capture is.
        Unknown = ("unknown", "no SYN seen on both sides of a NAT; read as the client side"),
    }
}

codes! {
    /// Which side of the NAT an attempt was seen on.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Leg {
        PreNat = ("pre_nat", "before the NAT: the client's own tuple, toward the VIP"),
        PostNat = ("post_nat", "after the NAT: toward the real server"),
    }
}

codes! {
    /// A point on a SYN's path where a capture saw it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Hop {
        Client = ("client", "seen on the client side"),
        NatIn = ("nat_in", "seen entering the NAT box (node capture, before the NAT)"),
        NatOut = ("nat_out", "seen leaving the NAT box (node capture, after the NAT)"),
        Rs = ("rs", "seen on the real-server side"),
    }
}

impl Hop {
    /// What a sighting of a SYN at this hop is, as evidence.
    pub fn evidence(self) -> &'static str {
        match self {
            Hop::Client => "SYN (the same packet, another client-side capture)",
            Hop::NatIn => "SYN entering the NAT box",
            Hop::NatOut => "SYN leaving the NAT box",
            Hop::Rs => "SYN at a real server (another capture)",
        }
    }

    fn of(v: Vantage, leg: Leg) -> Hop {
        match (v, leg) {
            (Vantage::Node, Leg::PreNat) => Hop::NatIn,
            (Vantage::Node, Leg::PostNat) => Hop::NatOut,
            (_, Leg::PreNat) => Hop::Client,
            (_, Leg::PostNat) => Hop::Rs,
        }
    }
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The hops one SYN was seen at, as a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hops(u8);

impl Hops {
    /// The set of these hops.
    pub fn of(hops: &[Hop]) -> Hops {
        let mut s = Hops::default();
        hops.iter().for_each(|&h| s.add(h));
        s
    }
    pub fn has(self, h: Hop) -> bool {
        self.0 & h.bit() != 0
    }
    fn add(&mut self, h: Hop) {
        self.0 |= h.bit();
    }
    /// Entered a NAT box whose both legs were captured, and never left it.
    pub fn dropped_in_nat(self) -> bool {
        self.has(Hop::NatIn) && !self.has(Hop::NatOut)
    }
}

impl Serialize for Hops {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(Hop::ALL.iter().filter(|h| self.has(**h)).map(|h| h.code()))
    }
}

/// Every SYN try's hops, first try first (empty when the attempt was seen only once).
pub type Path = SmallVec<[Hops; 2]>;

/// What one capture of the set saw, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct VantagePoint {
    pub file: String,
    pub vantage: Vantage,
    /// Attempts on the pre-NAT and post-NAT legs.
    pub pre_nat_attempts: u64,
    pub post_nat_attempts: u64,
    /// Client attempts judged from this capture (its pre-NAT observations of record).
    pub judged: u64,
    /// Observations also seen nearer their end of the path, left to that capture.
    pub copies: u64,
    /// SYN tries on each leg.
    pub pre_nat_syns: u64,
    pub post_nat_syns: u64,
    /// This capture's clock against the set's reference clock; `None` when it shares no
    /// handshake with the captures on the reference clock (its times are its own).
    pub clock: Option<ClockToReference>,
    /// What each interface of the capture saw, when it has several (`tcpdump -i any`: the
    /// pod's veth before the NAT, the uplink after it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceSeen>,
}

/// The SYN tries one interface of a capture saw on each leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterfaceSeen {
    /// The SLL2 interface index, or the pcapng interface id.
    pub iface: u32,
    pub pre_nat_syns: u64,
    pub post_nat_syns: u64,
}

/// A capture's clock against the reference capture's, estimated over the graph of
/// captures that saw the same handshakes (each edge an NTP-style estimate, [`clock`]).
#[derive(Clone, Debug, Serialize)]
pub struct ClockToReference {
    /// The reference capture (the client-side capture with the most judged attempts).
    pub reference: String,
    /// This clock − the reference clock, at `at_ns`.
    pub offset_ns: i64,
    /// The reference capture's first frame (reference clock), where `offset_ns` holds.
    pub at_ns: i64,
    pub skew_ppb: i64,
    /// The sum of the error bounds along the path.
    pub error_ns: i64,
    /// The captures the estimate went through, from the reference to this one (only the
    /// reference: this is it).
    pub path: Vec<String>,
    /// Handshakes seen by both ends of each step of the path.
    pub exchanges: Vec<usize>,
}

impl ClockToReference {
    /// The skew's part of this clock − the reference clock, `since` after `at_ns`.
    fn drift(&self, since: i64) -> i64 {
        let d = i128::from(since) * i128::from(self.skew_ppb) / 1_000_000_000;
        i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
    }

    /// A time of the reference clock on this capture's clock.
    pub fn from_reference(&self, t: i64) -> i64 {
        let drift = self.drift(t.saturating_sub(self.at_ns));
        t.saturating_add(self.offset_ns).saturating_add(drift)
    }

    /// A time of this capture on the reference clock (the inverse of
    /// [`ClockToReference::from_reference`], in one step: exact to well under a nanosecond
    /// for any sane skew).
    pub fn to_reference(&self, t: i64) -> i64 {
        let near = t.saturating_sub(self.offset_ns).saturating_sub(self.at_ns);
        t.saturating_sub(self.offset_ns)
            .saturating_sub(self.drift(near))
    }
}

/// One pair of the plan: the client capture's attempts judged against the real-server
/// capture's (both may be the same node capture), and which attempts each side takes.
#[derive(Clone, Debug)]
pub struct PlannedPair {
    pub client: usize,
    pub rs: Option<usize>,
    pub selection: Selection,
}

/// A SYN of a judged attempt seen in a capture other than the pair's two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Index of the capture (in the order given to [`plan`]).
    pub capture: u32,
    pub frame: u64,
    /// On the judged attempt's capture's clock (through the set's clocks; as recorded
    /// when either capture's clock is unknown).
    pub ts: i64,
    pub hop: Hop,
}

/// The attempts a pair uses. `None`: all of them (an explicit `--pair`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Per client-capture attempt: judged in this pair.
    pub client: Option<Vec<bool>>,
    /// Per RS-capture attempt: a real-server-side candidate.
    pub rs: Option<Vec<bool>>,
    /// Per client-capture attempt: each try's path (empty: seen once).
    pub paths: Vec<Path>,
    /// Per client-capture attempt seen elsewhere: its SYNs in the set's other captures.
    pub sightings: FxHashMap<u32, Vec<Sighting>>,
}

impl Selection {
    pub fn client_ok(&self, id: u32) -> bool {
        self.client.as_ref().is_none_or(|m| m[id as usize])
    }
    pub fn rs_ok(&self, id: u32) -> bool {
        self.rs.as_ref().is_none_or(|m| m[id as usize])
    }
    pub fn path(&self, id: u32) -> &[Hops] {
        self.paths.get(id as usize).map_or(&[], |p| p.as_slice())
    }
    pub fn sightings(&self, id: u32) -> &[Sighting] {
        self.sightings.get(&id).map_or(&[], Vec::as_slice)
    }
}

/// The set's vantage points and pairs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Each capture's: its clock once [`Plan::place_clocks`] has placed it.
    pub points: Vec<VantagePoint>,
    pub pairs: Vec<PlannedPair>,
    /// Per capture, per attempt: each SYN try's path (empty for copies and RS-side
    /// attempts).
    pub paths: Vec<Vec<Path>>,
    /// Handshakes two captures both saw, by (upstream capture, downstream capture).
    exchanges: FxHashMap<(u32, u32), Vec<Exchange>>,
    /// The reference clock's capture: the client-side capture with the most judged
    /// attempts.
    reference: Option<usize>,
}

impl Plan {
    /// Places every capture on the reference clock ([`clock_graph`]) and each sighting on
    /// its judged attempt's capture's clock. `pair_clocks` holds, per planned pair, the
    /// clock its pairing estimated (`to − from` of its real-server capture against its
    /// client capture; `None` without one): that is the estimate between those two
    /// captures. Captures not paired with each other are related by the handshakes they
    /// share, estimated here.
    pub fn place_clocks(
        &mut self,
        captures: &[&CaptureReport],
        pair_clocks: &[Option<&ClockModel>],
    ) {
        let Some(reference) = self.reference else {
            return;
        };
        let mut edges: Vec<Edge> = Vec::new();
        for (p, m) in self.pairs.iter().zip(pair_clocks) {
            if let (Some(rs), Some(m)) = (p.rs, m)
                && rs != p.client
                && !m.segments.is_empty()
            {
                edges.push((p.client as u32, rs as u32, (*m).clone()));
            }
        }
        // Two captures a pairing's clock relates (one with nothing to estimate from
        // leaves them to the handshakes the plan saw).
        let paired = |a: u32, b: u32| {
            edges
                .iter()
                .any(|&(c, r, _)| (c, r) == (a, b) || (c, r) == (b, a))
        };
        let mut keys: Vec<(u32, u32)> = self
            .exchanges
            .keys()
            .copied()
            .filter(|&(a, b)| !paired(a, b))
            .collect();
        keys.sort_unstable();
        for (up, down) in keys {
            let m = clock::estimate(&self.exchanges[&(up, down)]);
            if !m.segments.is_empty() {
                edges.push((up, down, m));
            }
        }
        let clocks = clock_graph(captures, reference, &edges);
        // Sightings onto the judged capture's clock, through the reference clock (as
        // --annotate's merge puts every capture on it).
        let clock = |c: u32| clocks[c as usize].as_ref();
        for p in &mut self.pairs {
            for list in p.selection.sightings.values_mut() {
                for s in list.iter_mut() {
                    if let (Some(from), Some(to)) = (clock(s.capture), clock(p.client as u32)) {
                        s.ts = to.from_reference(from.to_reference(s.ts));
                    }
                }
                list.sort_by_key(|s| (s.ts, s.capture, s.frame));
            }
        }
        for (point, clock) in self.points.iter_mut().zip(clocks) {
            point.clock = clock;
        }
    }
}

/// A clock estimate between two captures: (upstream, downstream, the model of
/// `downstream − upstream` as seen from upstream's clock).
type Edge = (u32, u32, ClockModel);

/// The most observations one client attempt can have: captures × tuples (a SYN re-mapped
/// to other SNAT ports) stays far below it.
const MAX_GROUP: usize = 64;

/// Groups whose outcomes are worked out (on every core) and applied at a time.
const OUTCOME_BLOCK: usize = 4096;

/// The observations of one client attempt (indexes into the observations): two or three
/// for nearly every attempt, kept inline.
type Group = SmallVec<[u32; 4]>;

/// One observation: an attempt of one capture.
#[derive(Clone, Copy, Debug)]
struct Obs {
    capture: u32,
    attempt: u32,
}

/// A SYN packet's identity across NAT: TSval (when the SYN has timestamps) and IP ID.
type PacketKey = (Option<u32>, u16);

/// A SYN's identity across NAT, with its attempt's: ISN, option layout, window scale,
/// SACK permitted, and the packet's.
type SynKey = (u32, u64, Option<u8>, bool, PacketKey);

fn keys(a: &Attempt) -> impl Iterator<Item = PacketKey> + '_ {
    a.syns.iter().map(|s| (s.tsval, s.ip_id))
}

/// Two tallies by key added together (what each core counted).
fn add_counts<K: std::hash::Hash + Eq, V: std::ops::AddAssign + Default>(
    mut a: FxHashMap<K, V>,
    b: FxHashMap<K, V>,
) -> FxHashMap<K, V> {
    for (k, v) in b {
        *a.entry(k).or_default() += v;
    }
    a
}

/// Disjoint sets over observations.
struct Groups(Vec<u32>);

impl Groups {
    fn find(&mut self, mut i: u32) -> u32 {
        while self.0[i as usize] != i {
            let up = self.0[self.0[i as usize] as usize];
            self.0[i as usize] = up;
            i = up;
        }
        i
    }
    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[a.max(b) as usize] = a.min(b);
        }
    }
}

/// Works out each capture's vantage and the plan of pairs, `captures` in command-line order.
/// `sides` gives a capture's side where the user said it (`--client`, `--rs`: all its
/// attempts on that leg); the traffic decides for the others (and for all when empty).
pub fn plan(captures: &[&CaptureReport], sides: &[Option<Vantage>]) -> Plan {
    let attempt = |o: Obs| &captures[o.capture as usize].attempts[o.attempt as usize];
    let obs: Vec<Obs> = captures
        .iter()
        .enumerate()
        .flat_map(|(c, cap)| {
            cap.attempts.iter().map(move |a| Obs {
                capture: c as u32,
                attempt: a.id,
            })
        })
        .collect();

    // Same ISN and options, and one SYN packet in common: one client attempt. Every SYN
    // by that identity, sorted (on every core), each run of equal identities joined.
    let mut groups = Groups((0..obs.len() as u32).collect());
    let mut index: Vec<(SynKey, u32)> = obs
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, &o)| {
            let a = attempt(o);
            keys(a).map(move |k| ((a.isn.0, a.opt_layout, a.wscale, a.sack_perm, k), i as u32))
        })
        .collect();
    index.par_sort_unstable();
    for run in index.chunk_by(|a, b| a.0 == b.0) {
        for w in run.windows(2) {
            groups.union(w[0].1, w[1].1);
        }
    }
    drop(index);
    // The groups, each in observation order, ordered by their first observation (a root
    // is its group's smallest index). A group past MAX_GROUP is not one client attempt
    // (hostile or degenerate input: one ISN on every SYN, no TSval, no IP ID): its members
    // stay apart.
    let mut by_root: Vec<(u32, u32)> = (0..obs.len() as u32).map(|i| (groups.find(i), i)).collect();
    by_root.par_sort_unstable();
    let members: Vec<Group> = by_root
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1 && run.len() <= MAX_GROUP)
        .map(|run| run.iter().map(|&(_, i)| i).collect())
        .collect();
    drop(by_root);

    // Within one capture: the same packet on two tuples, the first seen is upstream.
    // Across captures: a vote per capture pair on whose round trip is the longer.
    // The graphs are built twice rather than kept: one per client attempt would be most of
    // the plan's memory.
    let graph = |m: &Group| {
        TupleGraph::new(
            m.iter()
                .map(|&i| (obs[i as usize], attempt(obs[i as usize]))),
        )
    };
    let votes: FxHashMap<(u32, u32), i64> = members
        .par_iter()
        .fold(FxHashMap::default, |mut votes, m| {
            graph(m).vote(&mut votes);
            votes
        })
        .reduce(FxHashMap::default, add_counts);

    // Each attempt seen on two legs gets its leg; the server endpoints are noted as a VIP
    // (pre-NAT) or a real server (post-NAT).
    let n = captures.len();
    let mut leg: Vec<Vec<Option<Leg>>> = captures
        .iter()
        .map(|c| vec![None; c.attempts.len()])
        .collect();
    let (mut pre_n, mut post_n) = (vec![0u64; n], vec![0u64; n]);
    // Per group seen on both legs (worked out on every core): its server endpoints, and
    // its observations each with whether it is on the pre-NAT leg.
    #[derive(Default)]
    struct Settled {
        front: FxHashSet<Endpoint>,
        back: FxHashSet<Endpoint>,
        on: Vec<(Obs, bool)>,
    }
    let settled = members
        .par_iter()
        .fold(Settled::default, |mut acc, m| {
            let mut g = graph(m);
            g.settle(&votes);
            if g.has_post() {
                for (t, &pre) in g.tuples.iter().zip(&g.pre) {
                    let set = if pre { &mut acc.front } else { &mut acc.back };
                    set.insert(t.server);
                }
                acc.on.extend(m.iter().map(|&i| {
                    let o = obs[i as usize];
                    (o, g.pre[g.index(attempt(o).tuple())])
                }));
            }
            acc
        })
        .reduce(Settled::default, |mut a, b| {
            a.front.extend(b.front);
            a.back.extend(b.back);
            a.on.extend(b.on);
            a
        });
    let (front, back) = (settled.front, settled.back);
    for (o, pre) in settled.on {
        leg[o.capture as usize][o.attempt as usize] =
            Some(if pre { Leg::PreNat } else { Leg::PostNat });
        let count = if pre { &mut pre_n } else { &mut post_n };
        count[o.capture as usize] += 1;
    }
    // The sides the user gave.
    for (c, side) in sides.iter().enumerate().take(n) {
        let l = match side {
            Some(Vantage::Client) => Leg::PreNat,
            Some(Vantage::Rs) => Leg::PostNat,
            _ => continue,
        };
        leg[c].iter_mut().for_each(|x| *x = Some(l));
        let all = captures[c].attempts.len() as u64;
        (pre_n[c], post_n[c]) = if l == Leg::PreNat { (all, 0) } else { (0, all) };
    }
    let vantage: Vec<Vantage> = (0..n)
        .map(|c| match (pre_n[c] > 0, post_n[c] > 0) {
            (true, true) => Vantage::Node,
            (true, false) => Vantage::Client,
            (false, true) => Vantage::Rs,
            (false, false) => Vantage::Unknown,
        })
        .collect();
    // Attempts seen on one tuple only: by their server (a VIP, a real server), else by
    // where their capture was taken.
    for (c, legs) in leg.iter_mut().enumerate() {
        for (a, l) in captures[c].attempts.iter().zip(legs.iter_mut()) {
            if l.is_none() {
                let post = back.contains(&a.server) && !front.contains(&a.server)
                    || vantage[c] == Vantage::Rs && !front.contains(&a.server);
                *l = Some(if post { Leg::PostNat } else { Leg::PreNat });
            }
        }
    }
    let leg_of = |o: Obs| leg[o.capture as usize][o.attempt as usize].expect("every leg set");

    // Of record: the pre-NAT observation nearest the client, the post-NAT capture nearest
    // the real server; every other observation is a copy.
    let near_client = |c: u32| {
        let rank = match vantage[c as usize] {
            Vantage::Client => 0,
            Vantage::Unknown => 1,
            Vantage::Node => 2,
            Vantage::Rs => 3,
        };
        (rank, c)
    };
    let near_rs = |c: u32| {
        let rank = match vantage[c as usize] {
            Vantage::Rs => 0,
            Vantage::Node => 1,
            Vantage::Unknown => 2,
            Vantage::Client => 3,
        };
        (rank, c)
    };
    let mut of_record: Vec<Vec<bool>> = captures
        .iter()
        .map(|c| vec![true; c.attempts.len()])
        .collect();
    let mut paths: Vec<Vec<Path>> = captures
        .iter()
        .map(|c| vec![Path::new(); c.attempts.len()])
        .collect();
    // Per judged attempt: the capture holding its real-server side, and its SYNs elsewhere.
    let mut rs_capture: Vec<Vec<Option<u32>>> = captures
        .iter()
        .map(|c| vec![None; c.attempts.len()])
        .collect();
    let mut sightings: FxHashMap<(u32, u32), Vec<Sighting>> = FxHashMap::default();
    // Handshakes two captures both saw, by (upstream capture, downstream capture).
    let mut exchanges: FxHashMap<(u32, u32), Vec<Exchange>> = FxHashMap::default();
    // Each group's judged observation: the pre-NAT one nearest the client.
    let judged_of: Vec<Option<Obs>> = members
        .par_iter()
        .map(|m| {
            m.iter()
                .map(|&i| obs[i as usize])
                .filter(|&o| leg_of(o) == Leg::PreNat)
                .min_by_key(|o| (near_client(o.capture), attempt(*o).first_syn().ts))
        })
        .collect();
    // How many of a client capture's judged attempts each capture saw after the NAT: the
    // real-server view that saw the most of them is the one they are judged against (a
    // node's uplinks see every backend; one real server's capture, its own).
    let coverage: FxHashMap<(u32, u32), u64> = members
        .par_iter()
        .zip(&judged_of)
        .fold(FxHashMap::default, |mut coverage, (m, judged)| {
            let Some(j) = judged else { return coverage };
            let mut seen: SmallVec<[u32; 4]> = m
                .iter()
                .map(|&i| obs[i as usize])
                .filter(|&o| leg_of(o) == Leg::PostNat)
                .map(|o| o.capture)
                .collect();
            seen.sort_unstable();
            seen.dedup();
            for c in seen {
                *coverage.entry((j.capture, c)).or_default() += 1;
            }
            coverage
        })
        .reduce(FxHashMap::default, add_counts);
    // What each group settles, worked out on every core and applied in order below.
    let settle = |(m, judged): (&Group, &Option<Obs>)| {
        let mut out = Outcome::default();
        let ms: SmallVec<[Obs; 4]> = m.iter().map(|&i| obs[i as usize]).collect();
        for (i, &a) in ms.iter().enumerate() {
            for &b in &ms[i + 1..] {
                if a.capture != b.capture
                    && let Some(e) = exchange(a, attempt(a), b, attempt(b))
                {
                    out.exchanges.push(e);
                }
            }
        }
        let judged = *judged;
        // The real-server side: the capture that saw most of this client capture's
        // attempts after the NAT (real servers' captures counted as one: each sees its
        // own backends); then the nearest the real server (a real server's own capture
        // over a node's uplink, which also saw the SYNs lost after it); then the one
        // that saw the earliest of this attempt's tries to get through (a retry
        // re-DNATed to a server on another host is seen elsewhere, and the first try's
        // fate is where it arrived); then the one that saw most.
        let first_try = |o: Obs| {
            judged.map_or(0, |j| {
                keys(attempt(j))
                    .position(|k| keys(attempt(o)).any(|x| x == k))
                    .unwrap_or(usize::MAX)
            })
        };
        let covered =
            |c: u32| judged.map_or(0, |j| coverage.get(&(j.capture, c)).copied().unwrap_or(0));
        let post = || ms.iter().filter(|&&o| leg_of(o) == Leg::PostNat);
        let rs_covered = post()
            .filter(|o| vantage[o.capture as usize] == Vantage::Rs)
            .map(|o| covered(o.capture))
            .max()
            .unwrap_or(0);
        let rs_cap = post()
            .min_by_key(|&&o| {
                let (rank, c) = near_rs(o.capture);
                let side = match vantage[c as usize] {
                    Vantage::Rs => rs_covered,
                    _ => covered(c),
                };
                let cov = std::cmp::Reverse;
                (cov(side), rank, first_try(o), cov(covered(c)), c)
            })
            .map(|o| o.capture);
        for &o in &ms {
            let record = match leg_of(o) {
                Leg::PreNat => {
                    judged.is_some_and(|j| j.capture == o.capture && j.attempt == o.attempt)
                }
                Leg::PostNat => Some(o.capture) == rs_cap,
            };
            out.records.push((o, record));
        }
        let Some(j) = judged else { return out };
        out.rs_cap = rs_cap;
        // Where each of the judged attempt's SYNs was seen.
        let mine = attempt(j);
        let mut path: Path = keys(mine).map(|_| Hops::default()).collect();
        for &o in &ms {
            let hop = Hop::of(vantage[o.capture as usize], leg_of(o));
            let a = attempt(o);
            for (k, hops) in keys(mine).zip(path.iter_mut()) {
                if keys(a).any(|x| x == k) {
                    hops.add(hop);
                }
            }
        }
        out.path = path;
        // Its SYNs seen elsewhere than in its own capture and its real-server side (the
        // node's client leg when the node is that side).
        for &o in ms.iter().filter(|&&o| {
            o.capture != j.capture && !(Some(o.capture) == rs_cap && leg_of(o) == Leg::PostNat)
        }) {
            let hop = Hop::of(vantage[o.capture as usize], leg_of(o));
            for s in &attempt(o).syns {
                if keys(mine).any(|k| k == (s.tsval, s.ip_id)) {
                    out.sightings.push(Sighting {
                        capture: o.capture,
                        frame: s.pkt.frame(),
                        ts: s.pkt.ts,
                        hop,
                    });
                }
            }
        }
        out
    };
    // A block of groups at a time: the outcomes of every group at once would be the
    // plan's largest allocation (about 200 bytes a group), held only to be applied.
    for (ms, js) in members
        .chunks(OUTCOME_BLOCK)
        .zip(judged_of.chunks(OUTCOME_BLOCK))
    {
        let outcomes: Vec<Outcome> = ms.par_iter().zip(js).map(settle).collect();
        for (out, judged) in outcomes.into_iter().zip(js) {
            for (up, down, e) in out.exchanges {
                exchanges.entry((up, down)).or_default().push(e);
            }
            for (o, record) in out.records {
                of_record[o.capture as usize][o.attempt as usize] = record;
            }
            let Some(j) = judged else { continue };
            rs_capture[j.capture as usize][j.attempt as usize] = out.rs_cap;
            paths[j.capture as usize][j.attempt as usize] = out.path;
            if !out.sightings.is_empty() {
                sightings.insert((j.capture, j.attempt), out.sightings);
            }
        }
    }

    let roles = Roles {
        leg: leg
            .into_iter()
            .map(|l| l.into_iter().map(|l| l.expect("every leg set")).collect())
            .collect(),
        of_record,
    };

    // An attempt seen once, on its own leg only: each try was seen there and nowhere else.
    for (c, cap) in captures.iter().enumerate() {
        if vantage[c] == Vantage::Unknown {
            continue;
        }
        for a in &cap.attempts {
            let i = a.id as usize;
            if roles.judged(c, a.id) && paths[c][i].is_empty() {
                let mut h = Hops::default();
                h.add(Hop::of(vantage[c], Leg::PreNat));
                paths[c][i] = a.syns.iter().map(|_| h).collect();
            }
        }
    }

    // The reference: the client-side capture with the most judged attempts.
    let judged_in = |c: usize| {
        captures[c]
            .attempts
            .iter()
            .filter(|a| roles.judged(c, a.id))
            .count()
    };
    let reference = (0..n).max_by_key(|&c| (judged_in(c), std::cmp::Reverse(c)));

    let (points, pairs) = rayon::join(
        || {
            (0..n)
                .into_par_iter()
                .map(|c| vantage_point(captures[c], vantage[c], &roles.leg[c], &roles.of_record[c]))
                .collect()
        },
        || planned_pairs(captures, &roles, &rs_capture, &paths, &sightings),
    );
    Plan {
        points,
        pairs,
        paths,
        exchanges,
        reference,
    }
}

/// What one group of observations settles: the handshakes two captures both saw, which
/// observation is of record, and for its judged attempt the real-server side's capture,
/// each try's path and its SYNs seen elsewhere.
#[derive(Default)]
struct Outcome {
    exchanges: SmallVec<[(u32, u32, Exchange); 1]>,
    records: SmallVec<[(Obs, bool); 4]>,
    rs_cap: Option<u32>,
    path: Path,
    sightings: Vec<Sighting>,
}

/// Every attempt's leg, and whether it is the observation of record, per capture.
struct Roles {
    leg: Vec<Vec<Leg>>,
    of_record: Vec<Vec<bool>>,
}

impl Roles {
    /// A client attempt judged from this capture.
    fn judged(&self, c: usize, a: u32) -> bool {
        self.leg[c][a as usize] == Leg::PreNat && self.of_record[c][a as usize]
    }
    /// A real-server side attempt this capture holds for a pair.
    fn rs_side(&self, c: usize, a: u32) -> bool {
        self.leg[c][a as usize] == Leg::PostNat && self.of_record[c][a as usize]
    }
}

/// What one capture saw: its attempts and SYN tries on each leg (and on each interface),
/// the attempts judged from it and its copies.
fn vantage_point(
    cap: &CaptureReport,
    vantage: Vantage,
    leg: &[Leg],
    of_record: &[bool],
) -> VantagePoint {
    let mut p = VantagePoint {
        file: cap.file.clone(),
        vantage,
        pre_nat_attempts: 0,
        post_nat_attempts: 0,
        judged: 0,
        copies: 0,
        pre_nat_syns: 0,
        post_nat_syns: 0,
        clock: None,
        interfaces: Vec::new(),
    };
    for a in &cap.attempts {
        let (l, record) = (leg[a.id as usize], of_record[a.id as usize]);
        let syns = a.tries() as u64;
        match l {
            Leg::PreNat => (p.pre_nat_attempts += 1, p.pre_nat_syns += syns),
            Leg::PostNat => (p.post_nat_attempts += 1, p.post_nat_syns += syns),
        };
        for s in &a.syns {
            let i = match p.interfaces.iter().position(|i| i.iface == s.iface) {
                Some(i) => i,
                None => {
                    p.interfaces.push(InterfaceSeen {
                        iface: s.iface,
                        pre_nat_syns: 0,
                        post_nat_syns: 0,
                    });
                    p.interfaces.len() - 1
                }
            };
            match l {
                Leg::PreNat => p.interfaces[i].pre_nat_syns += 1,
                Leg::PostNat => p.interfaces[i].post_nat_syns += 1,
            }
        }
        match (l, record) {
            (_, false) => p.copies += 1,
            (Leg::PreNat, true) => p.judged += 1,
            _ => {}
        }
    }
    if p.interfaces.len() < 2 {
        p.interfaces.clear();
    }
    p.interfaces.sort_by_key(|i| i.iface);
    p
}

/// The pairs: each capture with judged attempts, against the capture holding their
/// real-server side (one pair per such capture); attempts seen on no real-server side go
/// to the pair most of the capture's attempts are in.
fn planned_pairs(
    captures: &[&CaptureReport],
    roles: &Roles,
    rs_capture: &[Vec<Option<u32>>],
    paths: &[Vec<Path>],
    sightings: &FxHashMap<(u32, u32), Vec<Sighting>>,
) -> Vec<PlannedPair> {
    let mut pairs = Vec::new();
    for (c, cap) in captures.iter().enumerate() {
        let judged: Vec<u32> = cap
            .attempts
            .iter()
            .filter(|a| roles.judged(c, a.id))
            .map(|a| a.id)
            .collect();
        if judged.is_empty() {
            continue;
        }
        let mut count: FxHashMap<u32, u64> = FxHashMap::default();
        for &a in &judged {
            if let Some(r) = rs_capture[c][a as usize] {
                *count.entry(r).or_default() += 1;
            }
        }
        let main = count
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(&r, _)| r);
        let mut targets: Vec<Option<u32>> = count.keys().map(|&r| Some(r)).collect();
        if targets.is_empty() {
            targets.push(None);
        }
        targets.sort_unstable();
        for t in targets {
            let mut client = vec![false; cap.attempts.len()];
            for &a in &judged {
                let r = rs_capture[c][a as usize].or(main);
                client[a as usize] = r == t;
            }
            let rs = t.map(|r| {
                let r = r as usize;
                captures[r]
                    .attempts
                    .iter()
                    .map(|a| roles.rs_side(r, a.id))
                    .collect()
            });
            // Its attempts' SYNs seen elsewhere in the set.
            let mine = sightings
                .iter()
                .filter(|((sc, a), _)| *sc == c as u32 && client[*a as usize])
                .map(|(&(_, a), list)| (a, list.clone()))
                .collect();
            pairs.push(PlannedPair {
                client: c,
                rs: t.map(|r| r as usize),
                selection: Selection {
                    client: Some(client),
                    rs,
                    paths: paths[c].clone(),
                    sightings: mine,
                },
            });
        }
    }
    pairs
}

/// The same handshake seen in two captures: the same answered SYN and the same SYN-ACK.
/// The capture with the longer SYN → SYN-ACK time is upstream (nearer the client), and
/// the four times are an NTP exchange between the two clocks.
fn exchange(a: Obs, x: &Attempt, b: Obs, y: &Attempt) -> Option<(u32, u32, Exchange)> {
    let (sx, lx) = (x.synack?, x.syns.last()?);
    let (sy, ly) = (y.synack?, y.syns.last()?);
    let same = (lx.tsval, lx.ip_id) == (ly.tsval, ly.ip_id)
        && x.server_isn == y.server_isn
        && x.synack_tsval == y.synack_tsval;
    let (rx, ry) = (
        sx.ts.saturating_sub(lx.pkt.ts),
        sy.ts.saturating_sub(ly.pkt.ts),
    );
    if !same || rx == ry {
        return None;
    }
    let ((up, su, lu), (down, sd, ld)) = if rx > ry {
        ((a, sx, lx), (b, sy, ly))
    } else {
        ((b, sy, ly), (a, sx, lx))
    };
    Some((
        up.capture,
        down.capture,
        Exchange {
            t1: lu.pkt.ts,
            t2: ld.pkt.ts,
            t3: sd.ts,
            t4: su.ts,
        },
    ))
}

/// How the clock search reached a capture: (summed error, offset to the reference at its
/// first frame, skew, previous capture, model used).
type Reached = (i64, i64, i64, usize, usize);

/// Every capture's clock against `reference`'s, from an estimate per pair of captures
/// that share handshakes (`models`): for each capture the path from the reference with
/// the smallest summed error bound (Dijkstra over at most as many captures as were given).
fn clock_graph(
    captures: &[&CaptureReport],
    reference: usize,
    models: &[Edge],
) -> Vec<Option<ClockToReference>> {
    let n = captures.len();
    // Per capture: (the other capture, model, whether the model runs from this one).
    let mut edges: Vec<Vec<(usize, usize, bool)>> = vec![Vec::new(); n];
    for (id, &(up, down, _)) in models.iter().enumerate() {
        edges[up as usize].push((down as usize, id, true));
        edges[down as usize].push((up as usize, id, false));
    }
    let t0 = captures[reference].first_ts.unwrap_or(0);
    // Per capture: (summed error, offset to the reference at t0, skew, previous, model).
    let mut best: Vec<Option<Reached>> = vec![None; n];
    let mut done = vec![false; n];
    best[reference] = Some((0, 0, 0, reference, usize::MAX));
    loop {
        let next = (0..n)
            .filter(|&c| !done[c] && best[c].is_some())
            .min_by_key(|&c| (best[c].map_or(i64::MAX, |b| b.0), c));
        let Some(c) = next else { break };
        done[c] = true;
        let (err, off, skew, _, _) = best[c].expect("reached");
        // Time t0 of the reference on this capture's clock.
        let t = t0.saturating_add(off);
        for &(to, id, forward) in &edges[c] {
            let m = &models[id].2;
            let (step, step_skew) = if forward {
                (m.offset_at(t), m.segments[0].skew_ppb)
            } else {
                (m.to_client(t).saturating_sub(t), -m.segments[0].skew_ppb)
            };
            let cand = (
                err.saturating_add(m.error_at(t)),
                off.saturating_add(step),
                skew.saturating_add(step_skew),
                c,
                id,
            );
            if !done[to] && best[to].is_none_or(|b| cand.0 < b.0) {
                best[to] = Some(cand);
            }
        }
    }
    let name = |c: usize| captures[c].file.clone();
    (0..n)
        .map(|c| {
            let (error_ns, offset_ns, skew_ppb, _, _) = best[c]?;
            let (mut path, mut used) = (vec![c], Vec::new());
            let mut at = c;
            while at != reference {
                let (_, _, _, prev, id) = best[at].expect("on the path");
                used.push(models[id].2.exchanges);
                path.push(prev);
                at = prev;
            }
            path.reverse();
            used.reverse();
            Some(ClockToReference {
                reference: name(reference),
                offset_ns,
                at_ns: t0,
                skew_ppb,
                error_ns,
                path: path.into_iter().map(name).collect(),
                exchanges: used,
            })
        })
        .collect()
}

/// The distinct 4-tuples one client attempt was seen on, and what is upstream of what.
struct TupleGraph {
    tuples: SmallVec<[Tuple; 3]>,
    /// (upstream, downstream) tuple indexes.
    edges: SmallVec<[(usize, usize); 2]>,
    /// Per tuple: nothing is upstream of it (the pre-NAT leg).
    pre: SmallVec<[bool; 3]>,
    seen: SmallVec<[Seen; 4]>,
}

/// One observation in a [`TupleGraph`].
struct Seen {
    capture: u32,
    tuple: usize,
    /// The SYN the SYN-ACK answered, and the time between them.
    answered: Option<(PacketKey, i64)>,
}

/// Where a capture saw one SYN packet first: (time, frame, tuple index).
type FirstSeen = (i64, u64, usize);

impl TupleGraph {
    fn new<'a>(members: impl Iterator<Item = (Obs, &'a Attempt)>) -> TupleGraph {
        let mut g = TupleGraph {
            tuples: SmallVec::new(),
            edges: SmallVec::new(),
            pre: SmallVec::new(),
            seen: SmallVec::new(),
        };
        // (capture, packet) -> its first sighting (time, frame, tuple); a group holds a few
        // SYNs, so a list searched in place.
        let mut first: SmallVec<[((u32, PacketKey), FirstSeen); 8]> = SmallVec::new();
        let mut later: SmallVec<[((u32, PacketKey), FirstSeen); 4]> = SmallVec::new();
        for (o, a) in members {
            let t = match g.tuples.iter().position(|&x| x == a.tuple()) {
                Some(i) => i,
                None => {
                    g.tuples.push(a.tuple());
                    g.tuples.len() - 1
                }
            };
            let answered = a
                .synack
                .zip(a.syns.last())
                .map(|(sa, last)| ((last.tsval, last.ip_id), sa.ts.saturating_sub(last.pkt.ts)));
            g.seen.push(Seen {
                capture: o.capture,
                tuple: t,
                answered,
            });
            for s in &a.syns {
                let key = (o.capture, (s.tsval, s.ip_id));
                let here = (s.pkt.ts, s.pkt.frame(), t);
                match first.iter().find(|(k, _)| *k == key) {
                    Some(&(_, f)) if f.2 != t => later.push((key, here)),
                    Some(_) => {}
                    None => first.push((key, here)),
                }
            }
        }
        for (key, here) in later {
            let f = first
                .iter()
                .find(|(k, _)| *k == key)
                .map(|&(_, f)| f)
                .expect("seen first");
            let (up, down) = if (f.0, f.1) <= (here.0, here.1) {
                (f.2, here.2)
            } else {
                (here.2, f.2)
            };
            g.edge(up, down);
        }
        g
    }

    fn edge(&mut self, up: usize, down: usize) {
        if up != down && !self.edges.contains(&(up, down)) {
            self.edges.push((up, down));
        }
    }

    fn related(&self, a: usize, b: usize) -> bool {
        self.edges.contains(&(a, b)) || self.edges.contains(&(b, a))
    }

    /// Pairs of observations in two captures, on two tuples no capture relates.
    fn unrelated(&self) -> impl Iterator<Item = (&Seen, &Seen)> {
        self.seen.iter().enumerate().flat_map(move |(i, a)| {
            self.seen[i + 1..].iter().filter_map(move |b| {
                let skip =
                    a.capture == b.capture || a.tuple == b.tuple || self.related(a.tuple, b.tuple);
                // In command-line order.
                (!skip).then_some(if a.capture < b.capture {
                    (a, b)
                } else {
                    (b, a)
                })
            })
        })
    }

    /// Round-trip votes between captures that saw the same answered SYN on two tuples
    /// nothing in one capture relates: positive when the first capture is nearer the client.
    fn vote(&self, votes: &mut FxHashMap<(u32, u32), i64>) {
        for (a, b) in self.unrelated() {
            if let (Some((ka, ra)), Some((kb, rb))) = (a.answered, b.answered)
                && ka == kb
            {
                *votes.entry((a.capture, b.capture)).or_default() += match ra.cmp(&rb) {
                    Ordering::Greater => 1,
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                };
            }
        }
    }

    /// Orders the tuples no capture related, by the votes (else the command line's order),
    /// and marks the pre-NAT leg.
    fn settle(&mut self, votes: &FxHashMap<(u32, u32), i64>) {
        let extra: Vec<(usize, usize)> = self
            .unrelated()
            .map(|(a, b)| {
                let v = votes.get(&(a.capture, b.capture)).copied().unwrap_or(0);
                if v >= 0 {
                    (a.tuple, b.tuple)
                } else {
                    (b.tuple, a.tuple)
                }
            })
            .collect();
        for (up, down) in extra {
            if !self.related(up, down) {
                self.edge(up, down);
            }
        }
        self.pre = (0..self.tuples.len())
            .map(|t| !self.edges.iter().any(|&(_, d)| d == t))
            .collect();
        if !self.pre.iter().any(|&p| p) {
            // A cycle (contradicting captures): no order can be trusted.
            self.pre.iter_mut().for_each(|p| *p = true);
        }
    }

    fn has_post(&self) -> bool {
        self.pre.iter().any(|&p| !p)
    }

    fn index(&self, t: Tuple) -> usize {
        self.tuples
            .iter()
            .position(|&x| x == t)
            .expect("a member's tuple")
    }
}

/// The plan by situation, on hand-built captures of one client (10.0.0.1) reaching a VIP
/// (10.96.0.10:80) through DNAT + SNAT (192.168.0.5) to real servers.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture;
    use crate::decode::{Segment, TcpFlags};
    use crate::units::{NS_PER_MS, NS_PER_S, NS_PER_US};

    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const T0: i64 = 1_700_000_000 * NS_PER_S;

    fn ep(ip: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port,
        }
    }
    fn client(port: u16) -> Endpoint {
        ep("10.0.0.1", port)
    }
    fn vip() -> Endpoint {
        ep("10.96.0.10", 80)
    }
    fn snat(port: u16) -> Endpoint {
        ep("192.168.0.5", port)
    }
    fn rs(n: u8) -> Endpoint {
        ep(&format!("10.244.{n}.7"), 8080)
    }

    /// A packet `us` microseconds after T0; a SYN's IP ID follows its TSval, so the same
    /// SYN has the same identity in every capture.
    fn pkt(
        us: i64,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
        ts: u32,
    ) -> Segment {
        let mut s = Segment::bare(0, T0 + us * NS_PER_US, src, dst, seq, ack, flags);
        s.opts.ts = Some((ts, 0));
        s.ip_id = ts as u16;
        s
    }

    /// One answered try of connection `isn`: SYN at `us`, the SYN-ACK `rtt` µs later.
    fn handshake(us: i64, rtt: i64, c: Endpoint, s: Endpoint, isn: u32) -> Vec<Segment> {
        vec![
            pkt(us, c, s, isn, 0, SYN, isn),
            pkt(us + rtt, s, c, isn + 7, isn + 1, SYNACK, 1),
            pkt(us + rtt + 5, c, s, isn + 1, isn + 8, ACK, isn),
        ]
    }

    fn capture(name: &str, mut packets: Vec<Segment>) -> CaptureReport {
        packets.sort_by_key(|p| p.ts);
        for (i, p) in packets.iter_mut().enumerate() {
            p.frame = i as u64 + 1;
        }
        capture::of_segments(name, &packets)
    }

    /// Ten requests from client ports 40000.. through the NAT to real server 1, 50 µs a hop
    /// each way: the client side (SYN → SYN-ACK 260 µs), the node's two legs (the
    /// rewritten SYN 10 µs after the original) and the real-server side (50 µs).
    fn legs(n: u32) -> (Vec<Segment>, Vec<Segment>, Vec<Segment>) {
        let (mut c, mut node, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let (t, isn) = (i as i64 * 100 * NS_PER_MS / NS_PER_US, 1_000 + i * 100);
            let (cl, sn) = (client(40_000 + i as u16), snat(61_000 + i as u16));
            c.extend(handshake(t, 260, cl, vip(), isn));
            node.extend(handshake(t + 50, 160, cl, vip(), isn));
            node.extend(handshake(t + 60, 140, sn, rs(1), isn));
            r.extend(handshake(t + 100, 50, sn, rs(1), isn));
        }
        (c, node, r)
    }

    /// The plan of these captures, placed on one clock as a run places it: each pair's
    /// clock from its pairing.
    fn plan_of(captures: &[CaptureReport]) -> Plan {
        let all: Vec<&CaptureReport> = captures.iter().collect();
        let mut p = plan(&all, &[]);
        let pairings: Vec<Option<crate::correlate::Pairing>> = p
            .pairs
            .iter()
            .map(|q| {
                let hints = crate::correlate::Hints::default();
                q.rs.map(|r| crate::correlate::pair(all[q.client], all[r], &hints, &q.selection))
            })
            .collect();
        let clocks: Vec<Option<&ClockModel>> = pairings
            .iter()
            .map(|q| q.as_ref().map(|q| &q.clock))
            .collect();
        p.place_clocks(&all, &clocks);
        p
    }

    fn kinds(p: &Plan) -> Vec<Vantage> {
        p.points.iter().map(|v| v.vantage).collect()
    }

    fn judged(p: &PlannedPair) -> usize {
        p.selection
            .client
            .as_ref()
            .unwrap()
            .iter()
            .filter(|&&j| j)
            .count()
    }

    #[test]
    fn test_node_capture_alone_is_both_sides_of_its_own_pair() {
        let (_, node, _) = legs(10);
        let p = plan_of(&[capture("node.pcap", node)]);
        assert_eq!(kinds(&p), [Vantage::Node]);
        let v = &p.points[0];
        assert_eq!(
            (v.pre_nat_attempts, v.post_nat_attempts, v.judged),
            (10, 10, 10)
        );
        assert_eq!(p.pairs.len(), 1);
        assert_eq!((p.pairs[0].client, p.pairs[0].rs), (0, Some(0)));
        let sel = &p.pairs[0].selection;
        // The first-seen tuple (toward the VIP) is judged; the rewritten one is its RS side.
        let c = sel.client.as_ref().unwrap();
        let r = sel.rs.as_ref().unwrap();
        assert!(c.iter().zip(r).all(|(c, r)| c != r));
        let hops = sel.paths.iter().find(|p| !p.is_empty()).unwrap()[0];
        assert!(hops.has(Hop::NatIn) && hops.has(Hop::NatOut) && !hops.dropped_in_nat());
    }

    #[test]
    fn test_rs_capture_first_is_still_the_rs_side_by_round_trip() {
        let (c, _, r) = legs(10);
        let p = plan_of(&[capture("rs.pcap", r), capture("client.pcap", c)]);
        assert_eq!(kinds(&p), [Vantage::Rs, Vantage::Client]);
        assert_eq!(p.pairs.len(), 1);
        assert_eq!((p.pairs[0].client, p.pairs[0].rs), (1, Some(0)));
        assert_eq!(judged(&p.pairs[0]), 10);
    }

    #[test]
    fn test_node_copies_are_left_to_the_captures_nearest_each_end() {
        let (c, node, r) = legs(10);
        let p = plan_of(&[
            capture("node.pcap", node),
            capture("rs.pcap", r),
            capture("client.pcap", c),
        ]);
        assert_eq!(kinds(&p), [Vantage::Node, Vantage::Rs, Vantage::Client]);
        assert_eq!((p.points[0].judged, p.points[0].copies), (0, 20));
        assert_eq!(p.points[2].judged, 10);
        assert_eq!(p.pairs.len(), 1);
        assert_eq!((p.pairs[0].client, p.pairs[0].rs), (2, Some(1)));
        let path = &p.pairs[0].selection.paths[0];
        let all = [Hop::Client, Hop::NatIn, Hop::NatOut, Hop::Rs];
        assert!(all.iter().all(|&h| path[0].has(h)), "{path:?}");
    }

    #[test]
    fn test_retry_remapped_to_another_snat_port_is_two_post_nat_tuples() {
        // The first SYN gets a stale ACK on SNAT port 61000; the retry leaves on 61001.
        let (cl, isn) = (client(40_000), 5_000);
        let c = vec![
            pkt(0, cl, vip(), isn, 0, SYN, 10),
            pkt(10_000, cl, vip(), isn, 0, SYN, 20),
            pkt(10_300, vip(), cl, 9, isn + 1, SYNACK, 1),
        ];
        let r = vec![
            pkt(100, snat(61_000), rs(1), isn, 0, SYN, 10),
            pkt(10_100, snat(61_001), rs(1), isn, 0, SYN, 20),
            pkt(10_200, rs(1), snat(61_001), 9, isn + 1, SYNACK, 1),
        ];
        let p = plan_of(&[capture("client.pcap", c), capture("rs.pcap", r)]);
        assert_eq!(kinds(&p), [Vantage::Client, Vantage::Rs]);
        assert_eq!(p.points[1].post_nat_attempts, 2);
        assert_eq!(p.pairs[0].selection.rs, Some(vec![true, true]));
    }

    #[test]
    fn test_syn_seen_entering_the_nat_and_never_leaving_is_dropped_in_nat() {
        let (_, mut node, _) = legs(3);
        // A fourth request whose only SYN the NAT box dropped: its client leg only.
        let cl = client(50_000);
        node.push(pkt(900_000, cl, vip(), 77, 0, SYN, 77));
        let p = plan_of(&[capture("node.pcap", node)]);
        let sel = &p.pairs[0].selection;
        let id = sel
            .client
            .as_ref()
            .unwrap()
            .iter()
            .enumerate()
            .rev()
            .find(|&(_, &j)| j)
            .map(|(i, _)| i)
            .unwrap();
        assert!(sel.paths[id][0].dropped_in_nat(), "{:?}", sel.paths[id]);
        assert_eq!(judged(&p.pairs[0]), 4);
    }

    #[test]
    fn test_backends_on_two_nodes_give_a_pair_per_real_server_capture() {
        let (c, _, r) = legs(10);
        // Even requests went to real server 1, odd ones to real server 2 (another node).
        let (mut r1, mut r2) = (Vec::new(), Vec::new());
        for (i, chunk) in r.chunks(3).enumerate() {
            if i % 2 == 0 {
                r1.extend_from_slice(chunk);
            } else {
                r2.extend(chunk.iter().map(|s| {
                    let mut s = *s;
                    if s.dst == rs(1) {
                        s.dst = rs(2);
                    } else {
                        s.src = rs(2);
                    }
                    s
                }));
            }
        }
        let p = plan_of(&[
            capture("client.pcap", c),
            capture("rs1.pcap", r1),
            capture("rs2.pcap", r2),
        ]);
        assert_eq!(kinds(&p), [Vantage::Client, Vantage::Rs, Vantage::Rs]);
        let pairs: Vec<(usize, Option<usize>, usize)> = p
            .pairs
            .iter()
            .map(|x| (x.client, x.rs, judged(x)))
            .collect();
        assert_eq!(pairs, [(0, Some(1), 5), (0, Some(2), 5)]);
    }

    /// Shifts a capture's packets onto a clock `offset_us` ahead.
    fn shifted(mut segs: Vec<Segment>, offset_us: i64) -> Vec<Segment> {
        for s in &mut segs {
            s.ts += offset_us * NS_PER_US;
        }
        segs
    }

    #[test]
    fn test_clock_of_a_capture_sharing_no_handshake_with_the_reference_goes_via_the_node() {
        // 20 requests; the client capture holds the first ten, the real server's the last
        // ten, the node all of them. Node clock +2 s, real server's +5 s.
        let (c, node, r) = legs(20);
        let c: Vec<Segment> = c.into_iter().take(30).collect();
        let r: Vec<Segment> = r.into_iter().skip(30).collect();
        let p = plan_of(&[
            capture("client.pcap", c),
            capture("node.pcap", shifted(node, 2_000_000)),
            capture("rs.pcap", shifted(r, 5_000_000)),
            capture(
                "other.pcap",
                legs(3)
                    .0
                    .into_iter()
                    .map(|mut s| {
                        s.seq.0 += 1_000_000;
                        s.ack.0 += 1_000_000;
                        s
                    })
                    .collect(),
            ),
        ]);
        let clock = |i: usize| p.points[i].clock.clone();
        let reference = clock(0).unwrap();
        assert_eq!((reference.offset_ns, reference.path.len()), (0, 1));
        let node = clock(1).unwrap();
        assert!(
            (node.offset_ns - 2 * NS_PER_S).abs() <= node.error_ns,
            "{node:?}"
        );
        let rs = clock(2).unwrap();
        assert_eq!(rs.path, ["client.pcap", "node.pcap", "rs.pcap"]);
        assert!((rs.offset_ns - 5 * NS_PER_S).abs() <= rs.error_ns, "{rs:?}");
        // Three requests of another client nobody else saw: its own clock.
        assert!(clock(3).is_none());
    }

    #[test]
    fn test_one_capture_without_nat_is_judged_alone() {
        let (c, _, _) = legs(4);
        let p = plan_of(&[capture("client.pcap", c)]);
        assert_eq!(kinds(&p), [Vantage::Unknown]);
        assert_eq!((p.pairs[0].client, p.pairs[0].rs), (0, None));
        assert_eq!(judged(&p.pairs[0]), 4);
    }

    #[test]
    fn test_the_same_file_twice_is_judged_once() {
        let (c, _, _) = legs(4);
        let p = plan_of(&[capture("a.pcap", c.clone()), capture("b.pcap", c)]);
        assert_eq!(p.pairs.len(), 1);
        assert_eq!(judged(&p.pairs[0]), 4);
        assert_eq!(p.points[1].copies, 4);
    }

    #[test]
    fn test_one_isn_on_thousands_of_syns_is_not_one_attempt() {
        // Degenerate input: every SYN with ISN 0, no timestamps, IP ID 0. Planning stays
        // linear and every attempt is judged on its own.
        let segs: Vec<Segment> = (0..5_000u16)
            .map(|i| {
                let mut s = pkt(i as i64 * 1_000, client(i), vip(), 0, 0, SYN, 0);
                s.opts.ts = None;
                s.ip_id = 0;
                s
            })
            .collect();
        let p = plan_of(&[
            capture("flood.pcap", segs.clone()),
            capture("again.pcap", segs),
        ]);
        let total: usize = p.pairs.iter().map(judged).sum();
        assert_eq!(total, 10_000);
    }
}
