//! The event-driven simulation behind [`super::generate_pair`].
//!
//! Attempts and their setups (predecessors, fillers, race partners) are laid out first;
//! then events run in true-time order: an attempt starts, each client SYN goes through the
//! one NAT table and the one RS socket table. Once the RS answers a SYN the rest of that
//! connection is planned whole, and its close times fix how long the NAT holds its SNAT
//! tuple and the RS its TIME_WAIT. A later SYN only ever sees state that earlier events
//! created, so whatever happens to it is consistent with everything before.

use super::*;
use crate::frame::ControlBits;
use crate::rng::Rng;
use crate::scenario::Closer;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The clients' ephemeral ports (`ip_local_port_range`).
const PORT_LO: u16 = 32768;
const PORT_HI: u16 = 60999;
/// conntrack's SYN_SENT and CLOSE timeouts.
const SYN_SENT_TIMEOUT: u64 = 120 * SEC;
const CLOSE_TIMEOUT: u64 = 10 * SEC;
const CLIENT_TIMEWAIT: u64 = 60 * SEC;
/// Two SYNs this close at the NAT can both be handed one SNAT tuple.
const RACE_WINDOW: u64 = MS;
/// How long before a port reuse the predecessor closed.
const LB_GAP: (u64, u64) = (SEC, 10 * SEC);
const NONE: u32 = u32::MAX;

pub(super) fn run(cfg: &PairConfig) -> PairScenario {
    let mut sim = Sim::new(cfg);
    sim.layout();
    while let Some(Reverse((t, _, ev))) = sim.events.pop() {
        match ev {
            Ev::Start(a) => sim.start(a, t),
            Ev::Syn(a, k) => sim.syn(a, k, t),
            Ev::Fill(rs, linger) => {
                let off = sim.rng.below(u64::from(sim.nat.n)) as u32;
                if sim.nat.search(rs, off, t + cfg.delay_ns.1).is_some() {
                    sim.filler(rs, t, linger, Closer::Server);
                }
            }
            Ev::Burst(rs, linger) => {
                // An evicting NAT also hands out the tuples of closed connections.
                let at = t + cfg.delay_ns.1;
                let mut free = sim.nat.count_free(rs, at);
                if cfg.nat_evicts_closing {
                    free += sim.nat.count_evictable(rs, at);
                }
                let step = (20 * US).min(15 * MS / free.max(1));
                for i in 0..free {
                    sim.filler(rs, t + i * step, linger, Closer::Server);
                }
            }
        }
    }
    sim.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// An attempt's first SYN.
    Start(u32),
    /// A client SYN retry (index from 0).
    Syn(u32, u8),
    /// Start one filler toward this RS if a SNAT tuple toward it is free; it stays open
    /// until the given time (0: closes once answered).
    Fill(u8, u64),
    /// Start one filler per free SNAT tuple toward this RS (with an evicting NAT, also per
    /// tuple of a closed connection), open until the given time.
    Burst(u8, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostReq {
    Any,
    Ts,
    NoTs,
}

#[derive(Clone, Copy, Debug)]
enum PortReq {
    Any,
    /// The same client 4-tuple as that attempt.
    TupleOf(u32),
    /// The same port number as that attempt, on another host.
    PortOf(u32),
    /// A client 4-tuple closed recently (see [`PairConfig::reuse_ppm`]), if one is free.
    Recent,
}

/// How an attempt is steered; everything else is drawn as it happens.
#[derive(Clone, Copy, Debug)]
struct Plan {
    start: u64,
    role: Role,
    intent: PairKind,
    host: HostReq,
    avoid_host_of: Option<u32>,
    port: PortReq,
    /// DNAT choice for every new mapping of this attempt.
    rs: Option<u8>,
    /// SYN k is mapped onto that attempt's SNAT tuple (its RS still in TIME_WAIT on it),
    /// evicting the NAT's own finished entry (Linux ≥ 6.5 does so when short of ports).
    evict: [Option<u32>; 2],
    /// SYN 0 loses the conntrack insertion race to that attempt.
    race_with: Option<u32>,
    lb_drop: bool,
    lost: u8,
    /// SYN 0 is dropped between the NAT and the RS (an unrelated drop rule).
    lose_first: bool,
    /// The lost SYNs (`lost`, `lose_first`) leave the NAT box and are lost on the network
    /// before the RS, rather than inside the box.
    lost_after_nat: bool,
    synack_lost: bool,
    slow_ns: u64,
    refuse: bool,
    resend: StaleResend,
    check: Option<TwCheck>,
    closer: Closer,
    /// Small request and response (fillers).
    small: bool,
    /// The connection stays open, idle after its response, until this time (0: it closes
    /// once answered).
    linger_until: u64,
}

impl Plan {
    fn new(start: u64, role: Role, intent: PairKind, resend: StaleResend, closer: Closer) -> Plan {
        Plan {
            start,
            role,
            intent,
            host: HostReq::Any,
            avoid_host_of: None,
            port: PortReq::Any,
            rs: None,
            evict: [None; 2],
            race_with: None,
            lb_drop: false,
            lost: 0,
            lose_first: false,
            lost_after_nat: false,
            synack_lost: false,
            slow_ns: 0,
            refuse: false,
            resend,
            check: None,
            closer,
            small: false,
            linger_until: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    SynSent,
    /// The RS answered but its SYN-ACK was lost.
    SynRecv,
    Done,
}

/// An attempt in progress.
#[derive(Clone, Debug)]
struct Run {
    host: u32,
    c_addr: SocketAddr,
    ts_on: bool,
    ts_base: u32,
    isn: u32,
    d_f: u64,
    d_b: u64,
    c_ip_id: u16,
    /// Retry k is sent at `timer_base + retry_offset(k)`.
    timer_base: u64,
    syns: Vec<SynTruth>,
    /// True arrival time at the RS of each SYN that reached it.
    rs_true: Vec<Option<u64>>,
    lost: u8,
    synack_lost: bool,
    entry: Option<u32>,
    phase: Phase,
    rs_isn: Option<u32>,
    rs_ts_base: u32,
    rs_ip_id: u16,
    /// The SNAT tuple (RS index, port) of the connection the RS answered.
    tuple: Option<(u8, u16)>,
    /// Resolved collision targets: (their attempt, RS index, SNAT port).
    evict: [Option<(u32, u8, u16)>; 2],
    setup_latency: Option<u64>,
    /// When the first answer from the server side (SYN-ACK, RST, stale ACK) reached the
    /// client capture point.
    answered_at: Option<u64>,
    slow_ns: u64,
    last_client: u64,
}

/// An RS TIME_WAIT socket.
#[derive(Clone, Copy, Debug)]
struct Tw {
    aid: u32,
    closed_at: u64,
    until: u64,
    rcv_nxt: u32,
    snd_nxt: u32,
    ts_recent: Option<u32>,
    rs_ts_base: u32,
    client: SocketAddr,
    client_isn: u32,
}

/// Linux `tcp_timewait_state_process` on a SYN: accepted if its TSval is newer, or (equal
/// or no timestamps) its ISN is after the old `rcv_nxt`; PAWS rejects an older TSval.
fn tw_check(tw: &Tw, isn: u32, tsval: Option<u32>) -> Result<(), TwCheck> {
    if let (Some(v), Some(recent)) = (tsval, tw.ts_recent) {
        let d = recent.wrapping_sub(v) as i32;
        if d > 0 {
            return Err(TwCheck::Paws);
        }
        if d < 0 {
            return Ok(());
        }
    }
    if isn.wrapping_sub(tw.rcv_nxt) as i32 > 0 {
        Ok(())
    } else {
        Err(TwCheck::IsnNotAfter)
    }
}

/// A conntrack entry: holds its SNAT tuple until `until`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    aid: u32,
    rs: u8,
    sport: u16,
    created: u64,
    until: u64,
    closed_at: Option<u64>,
    /// Closed by the client's RST: a new SYN opens a new entry.
    reset: bool,
}

struct Nat {
    lo: u16,
    n: u32,
    entries: Vec<Entry>,
    by_client: FxHashMap<(u32, u16), u32>,
    /// Holder of each (RS, SNAT port), dense.
    by_tuple: Vec<u32>,
    /// No tuple toward the RS is free before this time (a failed full scan's finding).
    full_until: Vec<u64>,
}

impl Nat {
    fn slot(&self, rs: u8, sport: u16) -> usize {
        usize::from(rs) * self.n as usize + usize::from(sport - self.lo)
    }

    fn alive(&self, e: u32, t: u64) -> bool {
        self.entries[e as usize].until > t
    }

    fn holder(&self, rs: u8, sport: u16, t: u64) -> Option<u32> {
        let e = self.by_tuple[self.slot(rs, sport)];
        (e != NONE && self.alive(e, t)).then_some(e)
    }

    fn insert(&mut self, aid: u32, key: (u32, u16), rs: u8, sport: u16, t: u64) -> u32 {
        let e = self.entries.len() as u32;
        self.entries.push(Entry {
            aid,
            rs,
            sport,
            created: t,
            until: t + SYN_SENT_TIMEOUT,
            closed_at: None,
            reset: false,
        });
        self.by_client.insert(key, e);
        let s = self.slot(rs, sport);
        self.by_tuple[s] = e;
        e
    }

    fn set_until(&mut self, e: u32, until: u64) {
        let en = &mut self.entries[e as usize];
        if until < en.until {
            self.full_until[usize::from(en.rs)] = 0;
        }
        en.until = until;
    }

    fn kill(&mut self, e: u32, t: u64) {
        let until = self.entries[e as usize].until.min(t);
        self.set_until(e, until);
    }

    fn close(&mut self, e: u32, at: u64, hold: u64, reset: bool) {
        let en = &mut self.entries[e as usize];
        en.closed_at = Some(at);
        en.reset = reset;
        self.set_until(e, at + hold);
    }

    /// The first free SNAT port toward `rs` from offset `off`, wrapping (Linux
    /// `nf_nat_l4proto_unique_tuple`, without its cap on attempts).
    fn search(&mut self, rs: u8, off: u32, t: u64) -> Option<u16> {
        if t < self.full_until[usize::from(rs)] {
            return None;
        }
        let base = usize::from(rs) * self.n as usize;
        let mut min_until = u64::MAX;
        for i in 0..self.n {
            let o = (off + i) % self.n;
            let e = self.by_tuple[base + o as usize];
            if e == NONE {
                return Some(self.lo + o as u16);
            }
            let until = self.entries[e as usize].until;
            if until <= t {
                return Some(self.lo + o as u16);
            }
            min_until = min_until.min(until);
        }
        self.full_until[usize::from(rs)] = min_until;
        None
    }

    /// Whether entry `e` is a closed connection's, held in conntrack's TIME_WAIT at `t`
    /// (not one a RST closed, nor a live one).
    fn closing(&self, e: u32, t: u64) -> bool {
        let en = &self.entries[e as usize];
        en.until > t && !en.reset && en.closed_at.is_some_and(|c| c <= t)
    }

    /// With every SNAT tuple toward `rs` taken, the first from offset `off` held by a
    /// closed connection, whose entry is evicted (Linux ≥ 6.5 `nf_nat_used_tuple_harder`;
    /// the kernel also wants the new SYN's sequence past the old connection's, which is
    /// not modelled: any TIME_WAIT entry may go).
    fn evict_closing(&mut self, rs: u8, off: u32, t: u64) -> Option<u16> {
        let base = usize::from(rs) * self.n as usize;
        let o = (0..self.n).map(|i| (off + i) % self.n).find(|&o| {
            let e = self.by_tuple[base + o as usize];
            e != NONE && self.closing(e, t)
        })?;
        let e = self.by_tuple[base + o as usize];
        self.kill(e, t);
        Some(self.lo + o as u16)
    }

    fn count_evictable(&self, rs: u8, t: u64) -> u64 {
        let base = usize::from(rs) * self.n as usize;
        self.by_tuple[base..base + self.n as usize]
            .iter()
            .filter(|&&e| e != NONE && self.closing(e, t))
            .count() as u64
    }

    fn count_free(&self, rs: u8, t: u64) -> u64 {
        let base = usize::from(rs) * self.n as usize;
        self.by_tuple[base..base + self.n as usize]
            .iter()
            .filter(|&&e| e == NONE || self.entries[e as usize].until <= t)
            .count() as u64
    }
}

/// Addresses and one-way delays of one attempt's packets.
#[derive(Clone, Copy, Debug)]
struct Leg {
    c: SocketAddr,
    vip: SocketAddr,
    snat: SocketAddr,
    rip: SocketAddr,
    d_f: u64,
    d_b: u64,
}

/// Whether a segment shows on the post-NAT leg (SNAT address <-> RS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PostNat {
    /// Not there: client side only.
    No,
    /// Between the NAT box and the RS: in the RS capture and the node's view.
    Yes,
    /// A SYN that left the NAT box and was lost on the network before the RS: only in the
    /// node's view.
    LostOnWire,
}

/// A packet on the post-NAT leg.
#[derive(Clone, Copy, Debug)]
struct Post {
    /// When it reached (or left, or would have reached) the RS, true time.
    rs_t: u64,
    /// When it left (toward the RS) or reached (from it) the NAT box, true time.
    nat_t: u64,
    /// Whether the RS capture point saw it.
    at_rs: bool,
    spec: TcpSpec,
}

/// A segment before addressing.
#[derive(Clone, Copy, Debug)]
struct Seg {
    seq: u32,
    ack: u32,
    flags: ControlBits,
    win: u16,
    syn_opts: bool,
    ts: Option<(u32, u32)>,
    len: usize,
    ip_id: u16,
}

/// One endpoint of an established connection.
#[derive(Clone, Copy, Debug)]
struct Ep {
    nxt: u32,
    ts_base: u32,
    ip_id: u16,
    win: u16,
}

struct Conn {
    leg: Leg,
    ts_on: bool,
    c: Ep,
    s: Ep,
}

fn tsval_at(base: u32, t: u64) -> u32 {
    base.wrapping_add((t / MS) as u32)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A keyed hash of a client 4-tuple, as the kernel's siphash of it.
fn tuple_hash(seed: u64, host: u32, port: u16, salt: u64) -> u32 {
    let k = (u64::from(host) << 24) ^ (u64::from(port) << 4) ^ salt;
    (mix(seed ^ mix(k)) >> 32) as u32
}

/// Linux `secure_tcp_seq`: a per-4-tuple hash plus a 64 ns clock, so a reused 4-tuple's
/// ISN is after its predecessor's.
fn isn_of(seed: u64, host: u32, port: u16, t: u64) -> u32 {
    tuple_hash(seed, host, port, 1).wrapping_add((t >> 6) as u32)
}

/// The per-4-tuple TSval offset.
fn ts_base_of(seed: u64, host: u32, port: u16) -> u32 {
    tuple_hash(seed, host, port, 2)
}

/// HTTP response sizes: mostly small API answers, some pages.
fn response_len(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0..=5 => rng.range(150, 1400) as usize,
        6..=8 => rng.range(1500, 8000) as usize,
        _ => rng.range(8000, 30000) as usize,
    }
}

struct Sim<'a> {
    cfg: &'a PairConfig,
    rng: Rng,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    order: u64,
    plans: Vec<Plan>,
    runs: Vec<Option<Run>>,
    nat: Nat,
    tw: FxHashMap<(u8, u16), Tw>,
    /// Client 4-tuple (host, port) → in use until.
    busy: FxHashMap<(u32, u16), u64>,
    /// (closed at, host, port) of every connection the client completed, in the order
    /// planned: the tuples a recycling client re-uses.
    closed: Vec<(u64, u32, u16)>,
    /// Where a scripted `capture_ended` cuts the client and the RS capture (true time).
    client_end: Option<u64>,
    rs_end: Option<u64>,
    cursor: Vec<u16>,
    client: Vec<(u64, TcpSpec)>,
    /// Every packet on the post-NAT leg, in emission order.
    post: Vec<Post>,
    /// Where the RS capture starts unless configured: after the scripted `unmatched`.
    origin: u64,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a PairConfig) -> Sim<'a> {
        let mut rng = Rng::new(cfg.seed ^ 0x7061_6972); // "pair"
        let n = u32::from(cfg.snat_ports.1 - cfg.snat_ports.0) + 1;
        let span = u64::from(PORT_HI - PORT_LO) + 1;
        let cursor = (0..cfg.clients)
            .map(|_| PORT_LO + rng.below(span) as u16)
            .collect();
        Sim {
            cfg,
            rng,
            events: BinaryHeap::new(),
            order: 0,
            plans: Vec::new(),
            runs: Vec::new(),
            nat: Nat {
                lo: cfg.snat_ports.0,
                n,
                entries: Vec::new(),
                by_client: FxHashMap::default(),
                by_tuple: vec![NONE; n as usize * cfg.rss.len()],
                full_until: vec![0; cfg.rss.len()],
            },
            tw: FxHashMap::default(),
            busy: FxHashMap::default(),
            closed: Vec::new(),
            client_end: None,
            rs_end: None,
            cursor,
            client: Vec::new(),
            post: Vec::new(),
            origin: cfg.start_ns,
        }
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.order += 1;
        self.events.push(Reverse((t, self.order, ev)));
    }

    fn add(&mut self, p: Plan) -> u32 {
        let id = self.plans.len() as u32;
        self.plans.push(p);
        self.runs.push(None);
        self.push(p.start, Ev::Start(id));
        id
    }

    fn small(&mut self) -> u64 {
        self.rng.range(8 * US, 40 * US)
    }

    fn offset(&self, k: usize) -> u64 {
        if k == 0 {
            0
        } else {
            self.cfg.syn_schedule.retry_offset_ns(k)
        }
    }

    fn rs_clock(&self, t: u64) -> u64 {
        self.cfg.clock.rs_ns(t, self.cfg.start_ns)
    }

    fn is_ts(&self, host: u32) -> bool {
        host < self.cfg.clients - self.cfg.no_ts_clients
    }

    fn draw_resend(&mut self) -> StaleResend {
        self.cfg.stale_resend.unwrap_or_else(|| {
            if self.rng.chance_ppm(500_000) {
                StaleResend::Fast
            } else {
                StaleResend::Slow
            }
        })
    }

    fn max_collision_gap(&self) -> u64 {
        (30 * SEC).min(self.cfg.rs_timewait_ns / 2)
    }

    /// How long before its first SYN a kind's setup may start.
    fn lead_ns(&self, kind: PairKind) -> u64 {
        match kind {
            PairKind::LbSynDropPortReuse => LB_GAP.1 + 100 * MS,
            PairKind::RsTimewaitCollision { .. } => self.max_collision_gap() + 100 * MS,
            PairKind::SnatPortExhaustion { .. } => self.fill_lead_ns() + 100 * MS,
            PairKind::ConntrackInsertRace => MS,
            _ => 0,
        }
    }

    /// How long before an exhaustion its fillers may start: one NAT TIME_WAIT (the first
    /// close that long before, so that their tuples come free on time); with an evicting
    /// NAT, every filler stays open and they start within the last minute.
    fn fill_lead_ns(&self) -> u64 {
        if self.cfg.nat_evicts_closing {
            56 * SEC
        } else {
            self.cfg.nat_timewait_ns
        }
    }

    /// How long after its first SYN a kind's effects may last.
    fn tail_ns(&self, kind: PairKind) -> u64 {
        match kind {
            PairKind::SnatPortExhaustion { tries } => {
                self.cfg.nat_timewait_ns + self.offset(usize::from(tries)) + 2 * SEC
            }
            PairKind::SynLostBeforeRs { lost } => self.offset(usize::from(lost) + 1) + SEC,
            _ => self.offset(3) + SEC,
        }
    }

    fn layout(&mut self) {
        let cfg = self.cfg;
        let mut t = cfg.start_ns;
        for _ in cfg.script.iter().filter(|k| **k == PairKind::Unmatched) {
            self.plan_kind(PairKind::Unmatched, t, Role::Script);
            t += cfg.script_gap_ns.max(100 * MS);
        }
        self.origin = t;
        let mut cursor = t;
        let last = |k: &PairKind| matches!(k, PairKind::CaptureEnded { .. });
        for &k in cfg
            .script
            .iter()
            .filter(|k| **k != PairKind::Unmatched && !last(k))
        {
            let at = cursor + self.lead_ns(k);
            self.plan_kind(k, at, Role::Script);
            cursor = at + self.tail_ns(k) + cfg.script_gap_ns;
        }
        // The background starts once the longest setup the mix may draw fits before it.
        let w = cfg.weights;
        let drawable = [
            (w.lb_syn_drop_port_reuse, PairKind::LbSynDropPortReuse),
            (
                w.rs_timewait_collision,
                PairKind::RsTimewaitCollision {
                    resend: StaleResend::Fast,
                    again: false,
                    check: None,
                },
            ),
            (
                w.snat_port_exhaustion,
                PairKind::SnatPortExhaustion { tries: 3 },
            ),
            (w.conntrack_insert_race, PairKind::ConntrackInsertRace),
        ];
        let lead = drawable
            .iter()
            .filter(|(weight, _)| *weight > 0 && cfg.anomaly_ppm > 0 && cfg.attempts > 0)
            .map(|&(_, k)| self.lead_ns(k))
            .max()
            .unwrap_or(0);
        let mut t = self.origin + lead;
        for _ in 0..cfg.attempts {
            let mut k = self.draw_kind();
            // The knobs of an unrelated drop rule and of a recycling client; drawn only when
            // set, so that other configs keep their bytes.
            let lose = k == PairKind::Ok
                && cfg.first_syn_loss_ppm > 0
                && self.rng.chance_ppm(cfg.first_syn_loss_ppm);
            let reuse =
                k == PairKind::Ok && cfg.reuse_ppm > 0 && self.rng.chance_ppm(cfg.reuse_ppm);
            if lose {
                k = PairKind::SynLostBeforeRs { lost: 1 };
            }
            let id = self.plan_kind(k, t, Role::Background);
            let p = &mut self.plans[id as usize];
            if lose {
                p.lost = 0;
                p.lose_first = true;
            }
            if reuse {
                p.port = PortReq::Recent;
            }
            t += self.rng.range(1, 2 * cfg.mean_gap_ns.max(1));
        }
        // A scripted `capture_ended` comes after everything else, and the captures end
        // before its retry is due.
        if let Some(&k) = cfg.script.iter().find(|k| last(k)) {
            let at = if cfg.attempts > 0 {
                t.max(cursor)
            } else {
                cursor
            };
            self.plan_kind(k, at, Role::Script);
            let first = at + self.rng.range(300 * MS, 600 * MS);
            let second = first + self.rng.range(50 * MS, 300 * MS);
            let (c, r) = match k {
                PairKind::CaptureEnded { rs: true } => (second, first),
                _ => (first, second),
            };
            self.client_end = Some(c);
            self.rs_end = Some(r);
        }
    }

    fn draw_kind(&mut self) -> PairKind {
        if !self.rng.chance_ppm(self.cfg.anomaly_ppm) {
            return PairKind::Ok;
        }
        let w = self.cfg.weights;
        let table = [
            w.lb_syn_drop_port_reuse,
            w.rs_timewait_collision,
            w.snat_port_exhaustion,
            w.conntrack_insert_race,
            w.syn_lost_before_rs,
            w.synack_lost_after_rs,
            w.rs_slow_synack,
            w.rs_refused,
        ];
        let Some(i) = self.rng.weighted(&table) else {
            return PairKind::Ok;
        };
        let few = if self.rng.chance_ppm(750_000) { 1 } else { 2 };
        match i {
            0 => PairKind::LbSynDropPortReuse,
            1 => PairKind::RsTimewaitCollision {
                resend: self.draw_resend(),
                again: self.rng.chance_ppm(200_000),
                check: None,
            },
            2 => PairKind::SnatPortExhaustion { tries: few + 1 },
            3 => PairKind::ConntrackInsertRace,
            4 => PairKind::SynLostBeforeRs { lost: few },
            5 => PairKind::SynackLostAfterRs,
            6 => PairKind::RsSlowSynack {
                delay_ms: self.rng.range(200, 900) as u16,
            },
            _ => PairKind::RsRefused,
        }
    }

    /// Plans an attempt of `kind` with its first SYN at `t`, and its setup. A random draw
    /// whose setup does not fit between the origin and `t` becomes `ok`. Returns the id of
    /// the attempt itself.
    fn plan_kind(&mut self, mut kind: PairKind, t: u64, role: Role) -> u32 {
        let cfg = self.cfg;
        let room = t.saturating_sub(self.origin);
        let fits = match kind {
            PairKind::LbSynDropPortReuse => room >= LB_GAP.0 + 100 * MS,
            PairKind::RsTimewaitCollision { .. } => room >= SEC + 100 * MS && cfg.clients >= 2,
            PairKind::SnatPortExhaustion { tries } => {
                room >= self.fill_lead_ns() + 100 * MS
                    && self.offset(usize::from(tries) - 1) + 2 * SEC <= cfg.nat_timewait_ns
            }
            PairKind::ConntrackInsertRace => room >= MS && cfg.clients >= 2,
            _ => true,
        };
        if !fits {
            kind = PairKind::Ok;
        }
        let closer = if role != Role::Predecessor && self.rng.chance_ppm(cfg.client_close_ppm) {
            Closer::Client
        } else {
            Closer::Server
        };
        let resend = self.draw_resend();
        let mut main = Plan::new(t, role, kind, resend, closer);
        let any_ts = cfg.clients > cfg.no_ts_clients;
        let pred = |start: u64| Plan {
            host: if any_ts { HostReq::Ts } else { HostReq::Any },
            ..Plan::new(
                start,
                Role::Predecessor,
                PairKind::Ok,
                resend,
                Closer::Server,
            )
        };
        match kind {
            PairKind::Ok | PairKind::Unmatched | PairKind::SnatPortExhaustion { tries: 0..=1 } => {}
            PairKind::LbSynDropPortReuse => {
                let gap = self.rng.range(LB_GAP.0, LB_GAP.1.min(room - 100 * MS));
                let p = self.add(pred(t - gap - 50 * MS));
                main.port = PortReq::TupleOf(p);
                main.lb_drop = true;
            }
            PairKind::RsTimewaitCollision {
                resend,
                again,
                check,
            } => {
                let hi = self.max_collision_gap().min(room - 100 * MS);
                let gap = self.rng.range(SEC, hi);
                let p = self.add(pred(t - gap - 50 * MS));
                let p2 = again.then(|| {
                    let gap = self.rng.range(SEC, hi);
                    self.add(pred(t - gap - 50 * MS))
                });
                main.evict = [Some(p), p2];
                main.resend = resend;
                main.check = check;
                main.avoid_host_of = Some(p);
            }
            PairKind::SnatPortExhaustion { tries } => {
                let rs = self.rng.below(cfg.rss.len() as u64) as u8;
                let n = u64::from(self.nat.n);
                // A few ports free up between the last failing SYN and the one that passes:
                // those of fillers that closed one NAT TIME_WAIT before.
                let lo = self.offset(usize::from(tries) - 2);
                let hi = self.offset(usize::from(tries) - 1);
                let d = lo + (hi - lo) * self.rng.range(30, 70) / 100;
                // The rest of the range is taken in the last minute, so the RS capture
                // shows it in use.
                let window = (55 * SEC)
                    .min(cfg.nat_timewait_ns.saturating_sub(d) / 2)
                    .max(100 * MS);
                let (from, to) = (t - window, t - 30 * MS);
                let mut linger = 0;
                if cfg.nat_evicts_closing {
                    // An evicting NAT takes a closed connection's tuple: exhaustion needs
                    // every tuple held by a live one. A few close (the client first, so
                    // the RS holds no TIME_WAIT on them) between the last failing SYN and
                    // the one that passes; the rest stay open until after it.
                    for i in 0..(n / 20).max(1) {
                        self.filler(rs, from + i * 10 * US, t + d, Closer::Client);
                    }
                    linger = t + self.offset(usize::from(tries)) + SEC;
                } else {
                    // Those of fillers that closed one NAT TIME_WAIT before.
                    let early = (t + d).saturating_sub(cfg.nat_timewait_ns + 3 * MS);
                    for i in 0..(n / 20).max(1) {
                        self.filler(rs, early + i * 10 * US, 0, Closer::Server);
                    }
                }
                let step = ((to - from) / n).max(1);
                for i in 0..n {
                    self.push(from + i * step, Ev::Fill(rs, linger));
                }
                self.push(t - 20 * MS, Ev::Burst(rs, linger));
                main.rs = Some(rs);
            }
            PairKind::ConntrackInsertRace => {
                let w = Plan::new(
                    t - self.rng.range(100 * US, 500 * US),
                    Role::RacePartner,
                    PairKind::Ok,
                    resend,
                    Closer::Server,
                );
                let w = self.add(w);
                main.race_with = Some(w);
                // Without random SNAT the two share a SNAT port by keeping one client port
                // number; with it, by the random draw.
                if !cfg.random_snat {
                    main.port = PortReq::PortOf(w);
                }
                main.avoid_host_of = Some(w);
            }
            PairKind::SynLostBeforeRs { lost } => {
                main.lost = lost;
                // Drawn only when set, so that other configs keep their bytes.
                let ppm = cfg.syn_loss_after_nat_ppm;
                main.lost_after_nat = ppm > 0 && self.rng.chance_ppm(ppm);
            }
            PairKind::CaptureEnded { .. } => main.lost = u8::MAX,
            PairKind::SynackLostAfterRs => main.synack_lost = true,
            PairKind::RsSlowSynack { delay_ms } => main.slow_ns = u64::from(delay_ms) * MS,
            PairKind::RsRefused => main.refuse = true,
        }
        self.add(main)
    }

    fn filler(&mut self, rs: u8, t: u64, linger_until: u64, closer: Closer) {
        let p = Plan {
            rs: Some(rs),
            small: true,
            linger_until,
            ..Plan::new(t, Role::Filler, PairKind::Ok, StaleResend::Fast, closer)
        };
        self.add(p);
    }

    fn pick_host(&mut self, req: HostReq, avoid: Option<u32>) -> u32 {
        let cfg = self.cfg;
        let ts_n = cfg.clients - cfg.no_ts_clients;
        let (lo, n) = match req {
            HostReq::Ts if ts_n > 0 => (0, ts_n),
            HostReq::NoTs if cfg.no_ts_clients > 0 => (ts_n, cfg.no_ts_clients),
            _ => (0, cfg.clients),
        };
        let h = lo + self.rng.below(u64::from(n)) as u32;
        if Some(h) == avoid && n > 1 {
            lo + (h - lo + 1) % n
        } else {
            h
        }
    }

    /// A free ephemeral port of `host` at `t` that `want` accepts (if one is found soon),
    /// walking the range in small steps as Linux does. Ports used within one NAT TIME_WAIT
    /// are skipped while others are left: Linux cycles its range far slower than the
    /// scripted port choices (race, reuse) jump around, and only those should reuse.
    fn alloc_port(&mut self, host: u32, t: u64, want: &dyn Fn(u16) -> bool) -> u16 {
        let span = u32::from(PORT_HI - PORT_LO) + 1;
        let guard = self.cfg.nat_timewait_ns + SEC;
        let (mut first_rested, mut first_free) = (None, None);
        for i in 0..span {
            let step = self.rng.range(1, 2) as u32;
            let h = host as usize;
            let p = self.cursor[h];
            self.cursor[h] = PORT_LO + ((u32::from(p - PORT_LO) + step) % span) as u16;
            let busy = self.busy.get(&(host, p)).copied();
            if busy.is_none_or(|b| b <= t) {
                first_free.get_or_insert(p);
                if busy.is_none_or(|b| b.saturating_add(guard) <= t) {
                    if want(p) {
                        return p;
                    }
                    first_rested.get_or_insert(p);
                }
                if i >= 4096 && first_rested.is_some() {
                    break;
                }
            }
        }
        // Out of rested ports: reuse a recent one anyway (the LB will see the reuse).
        first_rested
            .or(first_free)
            .unwrap_or(self.cursor[host as usize])
    }

    /// A client 4-tuple free at `t` whose connection closed 100 ms to 110 s before: one of
    /// the 64 closed most recently, at random.
    fn recent_tuple(&mut self, t: u64) -> Option<(u32, u16)> {
        let mut found = Vec::new();
        for &(at, host, port) in self.closed.iter().rev() {
            if at + 110 * SEC < t || found.len() == 64 {
                break;
            }
            let free = self.busy.get(&(host, port)).is_none_or(|&b| b <= t);
            if at + 100 * MS <= t && free && !found.contains(&(host, port)) {
                found.push((host, port));
            }
        }
        if found.is_empty() {
            return None;
        }
        Some(found[self.rng.below(found.len() as u64) as usize])
    }

    /// The RS TIME_WAIT that attempt `p` left, if still there at `t`.
    fn tw_of(&self, p: u32, t: u64) -> Option<(u8, u16, Tw)> {
        let (rs, sport) = self.runs[p as usize].as_ref()?.tuple?;
        let tw = self.tw.get(&(rs, sport))?;
        (tw.aid == p && tw.closed_at < t && tw.until > t + SEC).then_some((rs, sport, *tw))
    }

    fn start(&mut self, a: u32, t: u64) {
        let cfg = self.cfg;
        let plan = self.plans[a as usize];
        let d_f = self.rng.range(cfg.delay_ns.0, cfg.delay_ns.1);
        let d_b = self.rng.range(cfg.delay_ns.0, cfg.delay_ns.1);
        if plan.role == Role::Filler {
            let rs = plan.rs.expect("a filler has its RS");
            let at = t + d_f / 2;
            if self.nat.search(rs, 0, at).is_none()
                && !(cfg.nat_evicts_closing && self.nat.count_evictable(rs, at) > 0)
            {
                return; // the range is full already: this filler never existed
            }
        }
        // A collision's targets, and the check its SYN is to fail.
        let mut targets = [None; 2];
        for (k, slot) in targets.iter_mut().enumerate() {
            *slot = plan.evict[k].and_then(|p| self.tw_of(p, t).map(|x| (p, x)));
        }
        let avoid = plan
            .avoid_host_of
            .and_then(|p| self.runs[p as usize].as_ref().map(|r| r.host));
        let ts_n = cfg.clients - cfg.no_ts_clients;
        let ts_others = ts_n - u32::from(avoid.is_some_and(|h| self.is_ts(h)));
        let check = targets[0].map(|_| {
            plan.check
                .unwrap_or(if ts_others > 0 || cfg.no_ts_clients == 0 {
                    TwCheck::Paws
                } else {
                    TwCheck::IsnNotAfter
                })
        });
        let host_req = match check {
            Some(TwCheck::Paws) => HostReq::Ts,
            Some(TwCheck::IsnNotAfter) => HostReq::NoTs,
            None => plan.host,
        };
        let free = |s: &Self, key: (u32, u16)| s.busy.get(&key).is_none_or(|&b| b <= t);
        let chosen = match plan.port {
            PortReq::TupleOf(p) => self.runs[p as usize]
                .as_ref()
                .map(|r| (r.host, r.c_addr.port()))
                .filter(|&key| free(self, key)),
            PortReq::PortOf(w) => match self.runs[w as usize].as_ref() {
                Some(wr) => {
                    let (wh, wp) = (wr.host, wr.c_addr.port());
                    let h = self.pick_host(host_req, Some(wh));
                    let guard = cfg.nat_timewait_ns + SEC;
                    let rested = self
                        .busy
                        .get(&(h, wp))
                        .is_none_or(|&b| b.saturating_add(guard) <= t);
                    Some((h, wp)).filter(|_| h != wh && rested)
                }
                None => None,
            },
            PortReq::Recent => self.recent_tuple(t),
            PortReq::Any => None,
        };
        let (host, port) = match chosen {
            Some(key) => key,
            None => {
                let host = self.pick_host(host_req, avoid);
                let ts_on = self.is_ts(host);
                let seed = cfg.seed;
                // The retry's TSval is estimated; the margin keeps the outcome certain.
                let t1 = t + match plan.resend {
                    StaleResend::Fast => 10 * MS,
                    StaleResend::Slow => SEC + 2 * MS,
                };
                let want = |port: u16| {
                    let Some(check) = check else { return true };
                    let isn = isn_of(seed, host, port, t);
                    let base = ts_base_of(seed, host, port);
                    targets.iter().zip([t, t1]).all(|(target, ts)| {
                        let Some((_, (_, _, tw))) = target else {
                            return true;
                        };
                        let tsval = ts_on.then(|| tsval_at(base, ts));
                        match (check, tsval, tw.ts_recent) {
                            (TwCheck::Paws, Some(v), Some(r)) => r.wrapping_sub(v) as i32 > 2000,
                            (TwCheck::Paws, ..) => false,
                            (TwCheck::IsnNotAfter, ..) => {
                                tw_check(tw, isn, tsval) == Err(TwCheck::IsnNotAfter)
                            }
                        }
                    })
                };
                let port = self.alloc_port(host, t, &want);
                (host, port)
            }
        };
        self.busy.insert((host, port), u64::MAX);
        let run = Run {
            host,
            c_addr: SocketAddr::new(cfg.client_ip(host), port),
            ts_on: self.is_ts(host),
            ts_base: ts_base_of(cfg.seed, host, port),
            isn: isn_of(cfg.seed, host, port, t),
            d_f,
            d_b,
            c_ip_id: self.rng.next_u32() as u16,
            timer_base: t,
            syns: Vec::new(),
            rs_true: Vec::new(),
            lost: 0,
            synack_lost: false,
            entry: None,
            phase: Phase::SynSent,
            rs_isn: None,
            rs_ts_base: 0,
            rs_ip_id: 0,
            tuple: None,
            evict: targets.map(|x| x.map(|(p, (rs, sport, _))| (p, rs, sport))),
            setup_latency: None,
            answered_at: None,
            slow_ns: 0,
            last_client: t,
        };
        self.runs[a as usize] = Some(run);
        self.syn(a, 0, t);
    }

    fn syn(&mut self, a: u32, k: u8, t: u64) {
        let plan = self.plans[a as usize];
        let Some(mut r) = self.runs[a as usize].take() else {
            return;
        };
        self.syn_run(a, &plan, &mut r, k, t);
        self.runs[a as usize] = Some(r);
    }

    fn push_syn(r: &mut Run, st: SynTruth, rs_true: Option<u64>) {
        r.syns.push(st);
        r.rs_true.push(rs_true);
    }

    /// Client SYN `k` of attempt `a`, sent at `t`: through the NAT, maybe to the RS.
    fn syn_run(&mut self, a: u32, plan: &Plan, r: &mut Run, k: u8, t: u64) {
        let cfg = self.cfg;
        let tsval = r.ts_on.then(|| tsval_at(r.ts_base, t));
        let syn = Seg {
            seq: r.isn,
            ack: 0,
            flags: ControlBits::SYN,
            win: 64240,
            syn_opts: true,
            ts: tsval.map(|v| (v, 0)),
            len: 0,
            ip_id: r.c_ip_id,
        };
        r.c_ip_id = r.c_ip_id.wrapping_add(1);
        let mut leg = Leg {
            c: r.c_addr,
            vip: cfg.vip,
            snat: SocketAddr::new(cfg.snat_ip, 0),
            rip: cfg.rss[0],
            d_f: r.d_f,
            d_b: r.d_b,
        };
        self.emit(&leg, true, t, &syn, true, PostNat::No);
        r.last_client = t;
        let mut st = SynTruth {
            client_ns: t,
            tsval,
            fate: SynFate::Lost,
            rip: None,
            snat: None,
            rs_ns: None,
            prev: None,
            nat_out_ns: None,
        };
        let t_nat = t + r.d_f / 2;
        let t_rs = t + r.d_f;
        let key = (r.host, r.c_addr.port());

        // --- NAT: the conntrack entry of this client 4-tuple, or a new mapping. ---
        let mut mapping = None;
        if let Some(&e) = self.nat.by_client.get(&key)
            && self.nat.alive(e, t_nat)
        {
            let en = self.nat.entries[e as usize];
            let finished = en.closed_at.is_some_and(|c| c <= t_nat);
            if en.aid == a && !en.reset {
                // A retransmission of this attempt's SYN follows its mapping.
                mapping = Some((en.rs, en.sport));
                self.nat
                    .set_until(e, en.until.max(t_nat + SYN_SENT_TIMEOUT));
            } else if en.aid != a && finished && (cfg.lb_reuse_drop || (plan.lb_drop && k == 0)) {
                // IPVS conn_reuse_mode=1 with conntrack: drop, so the old entry expires.
                self.nat.kill(e, t_nat);
                st.fate = SynFate::LbDrop;
                Self::push_syn(r, st, None);
                self.retry(a, r, k);
                return;
            } else {
                // A SYN on a closed entry reopens the tuple: a new entry, a new mapping.
                self.nat.kill(e, t_nat);
            }
        }
        if mapping.is_none() {
            if k == 0
                && let Some((rs, sport)) = plan.race_with.and_then(|w| self.race_tuple(w, t_nat))
            {
                // Both SYNs were handed this tuple; the other was confirmed first.
                st.fate = SynFate::RaceDrop;
                st.rip = Some(cfg.rss[usize::from(rs)]);
                st.snat = Some(SocketAddr::new(cfg.snat_ip, sport));
                Self::push_syn(r, st, None);
                self.retry(a, r, k);
                return;
            }
            let evict = r.evict.get(usize::from(k)).copied().flatten();
            let rs = match (evict, plan.rs) {
                (Some((_, rs, _)), _) | (None, Some(rs)) => rs,
                (None, None) => self.rng.below(cfg.rss.len() as u64) as u8,
            };
            st.rip = Some(cfg.rss[usize::from(rs)]);
            let mut sport = None;
            if let Some((p, ers, esport)) = evict {
                match self.nat.holder(ers, esport, t_nat) {
                    None => sport = Some(esport),
                    Some(h) => {
                        let en = self.nat.entries[h as usize];
                        if en.aid == p && en.closed_at.is_some_and(|c| c <= t_nat) {
                            self.nat.kill(h, t_nat);
                            sport = Some(esport);
                        }
                    }
                }
            }
            if sport.is_none() {
                let (lo, hi) = cfg.snat_ports;
                let cport = key.1;
                let off = if !cfg.random_snat && (lo..=hi).contains(&cport) {
                    u32::from(cport - lo)
                } else {
                    self.rng.below(u64::from(self.nat.n)) as u32
                };
                sport = self.nat.search(rs, off, t_nat);
                if sport.is_none() && cfg.nat_evicts_closing {
                    sport = self.nat.evict_closing(rs, off, t_nat);
                }
            }
            let Some(sport) = sport else {
                st.fate = SynFate::NoPort;
                Self::push_syn(r, st, None);
                self.retry(a, r, k);
                return;
            };
            r.entry = Some(self.nat.insert(a, key, rs, sport, t_nat));
            mapping = Some((rs, sport));
        }
        let (rs, sport) = mapping.expect("mapped above");
        leg.rip = cfg.rss[usize::from(rs)];
        leg.snat = SocketAddr::new(cfg.snat_ip, sport);
        st.rip = Some(leg.rip);
        st.snat = Some(leg.snat);
        let lose = if k == 0 && plan.lose_first {
            true
        } else if r.lost < plan.lost {
            r.lost += 1;
            true
        } else {
            false
        };
        if lose {
            if plan.lost_after_nat {
                // Out of the box, then lost on the wire: only a node capture shows it.
                self.emit(&leg, true, t, &syn, false, PostNat::LostOnWire);
                st.fate = SynFate::LostAfterNat;
                st.nat_out_ns = Some(t_nat);
            } else {
                st.fate = SynFate::Lost;
            }
            Self::push_syn(r, st, None);
            self.retry(a, r, k);
            return;
        }

        // --- The RS. ---
        self.emit(&leg, true, t, &syn, false, PostNat::Yes);
        st.nat_out_ns = Some(t_nat);
        st.rs_ns = Some(self.rs_clock(t_rs));
        if r.phase == Phase::SynRecv {
            // A retransmitted SYN on a half-open connection: the RS answers it again.
            self.answer(a, plan, r, &leg, (rs, sport), k, t_rs, tsval, st);
            return;
        }
        if let Some(tw) = self.tw.get(&(rs, sport)).copied()
            && tw.closed_at <= t_rs
            && tw.until > t_rs
        {
            match tw_check(&tw, r.isn, tsval) {
                Err(check) => {
                    self.stale_ack(a, plan, r, &leg, (rs, sport), k, t_rs, tw, check, st);
                    return;
                }
                // A newer SYN recycles the TIME_WAIT socket.
                Ok(()) => {
                    self.tw.remove(&(rs, sport));
                }
            }
        }
        if plan.refuse {
            let t_x = t_rs + self.small();
            let rst = Seg {
                seq: 0,
                ack: r.isn.wrapping_add(1),
                flags: ControlBits::RST | ControlBits::ACK,
                win: 0,
                syn_opts: false,
                ts: None,
                len: 0,
                ip_id: 0,
            };
            let t_c = self.emit(&leg, false, t_x, &rst, true, PostNat::Yes);
            r.answered_at.get_or_insert(t_c);
            if let Some(e) = r.entry {
                self.nat.close(e, t_x + r.d_b / 2, CLOSE_TIMEOUT, true);
            }
            st.fate = SynFate::Refused;
            Self::push_syn(r, st, Some(t_rs));
            r.phase = Phase::Done;
            r.last_client = t_c;
            self.busy.insert(key, t_c);
            return;
        }
        r.rs_isn = Some(self.rng.next_u32());
        r.rs_ts_base = self.rng.next_u32();
        r.rs_ip_id = self.rng.next_u32() as u16;
        self.answer(a, plan, r, &leg, (rs, sport), k, t_rs, tsval, st);
    }

    /// The other side of a race: `w`'s SNAT tuple if it was mapped within the race window.
    fn race_tuple(&self, w: u32, t_nat: u64) -> Option<(u8, u16)> {
        let e = self.runs[w as usize].as_ref()?.entry?;
        let en = self.nat.entries[e as usize];
        (en.aid == w && en.until > t_nat && t_nat.abs_diff(en.created) <= RACE_WINDOW)
            .then_some((en.rs, en.sport))
    }

    /// The next SYN at the retry timer, or the attempt gives up.
    fn retry(&mut self, a: u32, r: &mut Run, k: u8) {
        let sched = self.cfg.syn_schedule;
        let next = usize::from(k) + 1;
        if next >= usize::from(sched.max_tries()) {
            r.phase = Phase::Done;
            self.busy
                .insert((r.host, r.c_addr.port()), r.last_client + SEC);
            return;
        }
        // Kernel timers fire on jiffies: a few ms late, never early.
        let t = r.timer_base + sched.retry_offset_ns(next) + self.rng.range(0, 4 * MS);
        self.push(t, Ev::Syn(a, next as u8));
    }

    /// The RS's TIME_WAIT socket answers with the old connection's ACK; the client resets
    /// it (which kills the TIME_WAIT and closes the NAT entry) and re-sends its SYN.
    #[allow(clippy::too_many_arguments)]
    fn stale_ack(
        &mut self,
        a: u32,
        plan: &Plan,
        r: &mut Run,
        leg: &Leg,
        tuple: (u8, u16),
        k: u8,
        t_rs: u64,
        tw: Tw,
        check: TwCheck,
        mut st: SynTruth,
    ) {
        let t_ack = t_rs + self.small();
        let ack = Seg {
            seq: tw.snd_nxt,
            ack: tw.rcv_nxt,
            flags: ControlBits::ACK,
            win: 509,
            syn_opts: false,
            ts: tw
                .ts_recent
                .map(|recent| (tsval_at(tw.rs_ts_base, t_ack), recent)),
            len: 0,
            ip_id: self.rng.next_u32() as u16,
        };
        let t_ack_c = self.emit(leg, false, t_ack, &ack, true, PostNat::Yes);
        r.answered_at.get_or_insert(t_ack_c);
        // The reset carries the ACK's ack number as seq, no ACK bit, no options.
        let t_rst = t_ack_c + self.small();
        let rst = Seg {
            seq: tw.rcv_nxt,
            ack: 0,
            flags: ControlBits::RST,
            win: 0,
            syn_opts: false,
            ts: None,
            len: 0,
            ip_id: r.c_ip_id,
        };
        r.c_ip_id = r.c_ip_id.wrapping_add(1);
        let t_rst_rs = self.emit(leg, true, t_rst, &rst, true, PostNat::Yes);
        // seq == rcv_nxt is in window: TIME_WAIT assassination (tcp_rfc1337=0).
        if t_rst_rs < tw.until {
            self.tw.remove(&tuple);
        }
        if let Some(e) = r.entry {
            self.nat.close(e, t_rst + r.d_f / 2, CLOSE_TIMEOUT, true);
        }
        st.fate = SynFate::StaleAck(check);
        st.prev = Some(PrevConn {
            attempt: tw.aid,
            client: tw.client,
            client_isn: tw.client_isn,
            rs_close_ns: self.rs_clock(tw.closed_at),
            check,
        });
        Self::push_syn(r, st, Some(t_rs));
        r.last_client = t_rst;
        if k == 0 && plan.resend == StaleResend::Fast {
            // Linux ≥ 5.6 re-arms the SYN timer at its minimum on an unacceptable ACK,
            // but only before the first retransmission.
            let t_next = t_ack_c + self.rng.range(2 * MS, 8 * MS);
            r.timer_base = t_next - self.offset(1);
            self.push(t_next, Ev::Syn(a, 1));
        } else {
            self.retry(a, r, k);
        }
    }

    /// The RS's SYN-ACK to SYN `k` (lost if so planned), then the whole connection.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        a: u32,
        plan: &Plan,
        r: &mut Run,
        leg: &Leg,
        tuple: (u8, u16),
        k: u8,
        t_rs: u64,
        tsval: Option<u32>,
        mut st: SynTruth,
    ) {
        let slow = if r.phase == Phase::SynSent {
            plan.slow_ns
        } else {
            0
        };
        r.slow_ns += slow;
        let t_sa = t_rs + self.rng.range(5 * US, 30 * US) + slow;
        let rs_isn = r.rs_isn.expect("accepted");
        let seg = Seg {
            seq: rs_isn,
            ack: r.isn.wrapping_add(1),
            flags: ControlBits::SYN | ControlBits::ACK,
            win: 65160,
            syn_opts: true,
            ts: tsval.map(|v| (tsval_at(r.rs_ts_base, t_sa), v)),
            len: 0,
            ip_id: r.rs_ip_id,
        };
        r.rs_ip_id = r.rs_ip_id.wrapping_add(1);
        r.tuple = Some(tuple);
        if plan.synack_lost && !r.synack_lost {
            r.synack_lost = true;
            r.phase = Phase::SynRecv;
            self.emit(leg, false, t_sa, &seg, false, PostNat::Yes);
            st.fate = SynFate::SynAckLost;
            Self::push_syn(r, st, Some(t_rs));
            self.retry(a, r, k);
            return;
        }
        let t_c = self.emit(leg, false, t_sa, &seg, true, PostNat::Yes);
        r.answered_at.get_or_insert(t_c);
        st.fate = SynFate::SynAck;
        Self::push_syn(r, st, Some(t_rs));
        r.setup_latency = Some(t_c - r.syns[0].client_ns);
        self.complete(a, plan, r, *leg, tuple, t_c, t_sa);
    }

    /// Handshake ACK, request, response, close; the NAT and RS hold the tuple afterwards.
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        a: u32,
        plan: &Plan,
        r: &mut Run,
        leg: Leg,
        tuple: (u8, u16),
        t_c: u64,
        t_sa: u64,
    ) {
        let cfg = self.cfg;
        let (c_base, s_base) = (r.ts_base, r.rs_ts_base);
        let mut k = Conn {
            leg,
            ts_on: r.ts_on,
            c: Ep {
                nxt: r.isn.wrapping_add(1),
                ts_base: c_base,
                ip_id: r.c_ip_id,
                win: 502,
            },
            s: Ep {
                nxt: r.rs_isn.expect("accepted").wrapping_add(1),
                ts_base: s_base,
                ip_id: r.rs_ip_id,
                win: 509,
            },
        };
        let sa_ts = tsval_at(s_base, t_sa);
        let mut tc = t_c + self.small();
        let ack = k.s.nxt;
        self.send(&mut k, true, tc, ControlBits::ACK, 0, ack, sa_ts);
        tc += self.rng.range(5 * US, 30 * US);
        let req = if plan.small {
            self.rng.range(80, 200)
        } else {
            self.rng.range(80, 600)
        } as usize;
        let t_req_rs = self.send(
            &mut k,
            true,
            tc,
            ControlBits::PSH | ControlBits::ACK,
            req,
            ack,
            sa_ts,
        );
        let req_ts = tsval_at(c_base, tc);

        // Response segments back to back (~1 Gb/s); the client ACKs every second one.
        let resp = if plan.small {
            self.rng.range(150, 600) as usize
        } else {
            response_len(&mut self.rng)
        };
        let mss: usize = if leg.c.is_ipv6() { 1440 } else { 1460 };
        let per = mss - if r.ts_on { 12 } else { 0 };
        let nseg = resp.div_ceil(per);
        let mut t_s = t_req_rs + self.rng.range(50 * US, 2 * MS);
        let mut acks = Vec::new();
        let mut last_arr = t_s;
        for i in 0..nseg {
            let len = per.min(resp - i * per);
            if i > 0 {
                t_s += (per as u64 + 66) * 8;
            }
            let flags = if i + 1 == nseg {
                ControlBits::PSH | ControlBits::ACK
            } else {
                ControlBits::ACK
            };
            let ack = k.c.nxt;
            last_arr = self.send(&mut k, false, t_s, flags, len, ack, req_ts);
            if i % 2 == 1 || i + 1 == nseg {
                acks.push((last_arr, k.s.nxt, tsval_at(s_base, t_s)));
            }
        }
        let mut c_last = tc;
        for (arr, ack, ecr) in acks {
            let t = (arr + self.small()).max(c_last + 1);
            self.send(&mut k, true, t, ControlBits::ACK, 0, ack, ecr);
            c_last = t;
        }

        let key = (r.host, r.c_addr.port());
        let (nat_close, client_end, busy_until);
        match plan.closer {
            Closer::Server => {
                // HTTP/1.0-style close: the RS's FIN follows its last segment (or the
                // end of an idle period).
                let t_fin = (t_s + self.rng.range(3 * US, 15 * US)).max(plan.linger_until);
                let ack = k.c.nxt;
                let fin_arr = self.send(
                    &mut k,
                    false,
                    t_fin,
                    ControlBits::FIN | ControlBits::ACK,
                    0,
                    ack,
                    req_ts,
                );
                let fin_ts = tsval_at(s_base, t_fin);
                let t1 = fin_arr.max(c_last) + self.small();
                let ack = k.s.nxt;
                self.send(&mut k, true, t1, ControlBits::ACK, 0, ack, fin_ts);
                let t2 = t1 + self.rng.range(20 * US, 200 * US);
                let cfin_rs = self.send(
                    &mut k,
                    true,
                    t2,
                    ControlBits::FIN | ControlBits::ACK,
                    0,
                    ack,
                    fin_ts,
                );
                let t3 = cfin_rs + self.small();
                let ack = k.c.nxt;
                let cfin_ts = tsval_at(c_base, t2);
                let last = self.send(&mut k, false, t3, ControlBits::ACK, 0, ack, cfin_ts);
                self.tw.insert(
                    tuple,
                    Tw {
                        aid: a,
                        closed_at: cfin_rs,
                        until: cfin_rs + cfg.rs_timewait_ns,
                        rcv_nxt: k.c.nxt,
                        snd_nxt: k.s.nxt,
                        ts_recent: r.ts_on.then_some(cfin_ts),
                        rs_ts_base: s_base,
                        client: r.c_addr,
                        client_isn: r.isn,
                    },
                );
                nat_close = t3 + leg.d_b / 2;
                client_end = last;
                busy_until = last;
            }
            Closer::Client => {
                let t1 = (last_arr.max(c_last) + self.rng.range(20 * US, 200 * US))
                    .max(plan.linger_until);
                let (ack, ecr) = (k.s.nxt, tsval_at(s_base, t_s));
                let cfin_rs = self.send(
                    &mut k,
                    true,
                    t1,
                    ControlBits::FIN | ControlBits::ACK,
                    0,
                    ack,
                    ecr,
                );
                let t2 = cfin_rs + self.small();
                let ack = k.c.nxt;
                let ecr = tsval_at(c_base, t1);
                let sfin_arr = self.send(
                    &mut k,
                    false,
                    t2,
                    ControlBits::FIN | ControlBits::ACK,
                    0,
                    ack,
                    ecr,
                );
                let t3 = sfin_arr + self.small();
                let ack = k.s.nxt;
                self.send(
                    &mut k,
                    true,
                    t3,
                    ControlBits::ACK,
                    0,
                    ack,
                    tsval_at(s_base, t2),
                );
                nat_close = t3 + leg.d_f / 2;
                client_end = t3;
                busy_until = t3 + CLIENT_TIMEWAIT;
            }
        }
        if let Some(e) = r.entry {
            self.nat.close(e, nat_close, cfg.nat_timewait_ns, false);
        }
        self.busy.insert(key, busy_until);
        self.closed.push((client_end, r.host, r.c_addr.port()));
        r.last_client = client_end;
        r.phase = Phase::Done;
    }

    /// Sends `len` bytes (plus FIN) from one end of an established connection.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        k: &mut Conn,
        from_client: bool,
        t: u64,
        flags: ControlBits,
        len: usize,
        ack: u32,
        ecr: u32,
    ) -> u64 {
        let me = if from_client { &mut k.c } else { &mut k.s };
        let seg = Seg {
            seq: me.nxt,
            ack,
            flags,
            win: me.win,
            syn_opts: false,
            ts: k.ts_on.then(|| (tsval_at(me.ts_base, t), ecr)),
            len,
            ip_id: me.ip_id,
        };
        me.ip_id = me.ip_id.wrapping_add(1);
        me.nxt = me.nxt.wrapping_add(len as u32 + u32::from(flags.fin()));
        let leg = k.leg;
        self.emit(&leg, from_client, t, &seg, true, PostNat::Yes)
    }

    /// Puts a segment sent at true time `t` into the client capture (addresses as the
    /// client sees them) and/or on the post-NAT leg (the RS capture and the node's view,
    /// or the node's alone). Returns its arrival time at the other end.
    fn emit(
        &mut self,
        leg: &Leg,
        from_client: bool,
        t: u64,
        s: &Seg,
        on_client: bool,
        post: PostNat,
    ) -> u64 {
        let mss = if leg.c.is_ipv6() { 1440 } else { 1460 };
        let spec = TcpSpec {
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: s.win,
            mss: s.syn_opts.then_some(mss),
            wscale: s.syn_opts.then_some(7),
            sack_perm: s.syn_opts,
            ts: s.ts,
            payload_len: s.len,
            ip_id: s.ip_id,
            ..TcpSpec::default()
        };
        let addr = |src: SocketAddr, dst: SocketAddr, ttl: u8| TcpSpec {
            src: src.ip(),
            dst: dst.ip(),
            sport: src.port(),
            dport: dst.port(),
            ttl,
            ..spec
        };
        // The NAT sits between the two capture points and decrements the TTL.
        let (t_c, t_r) = if from_client {
            (t, t + leg.d_f)
        } else {
            (t + leg.d_b, t)
        };
        if on_client {
            let p = if from_client {
                addr(leg.c, leg.vip, 64)
            } else {
                addr(leg.vip, leg.c, 63)
            };
            self.client.push((t_c, p));
        }
        if post != PostNat::No {
            let p = if from_client {
                addr(leg.snat, leg.rip, 63)
            } else {
                addr(leg.rip, leg.snat, 64)
            };
            // The NAT box is halfway along the one-way delay (as `syn_run`'s `t_nat`).
            let nat_t = if from_client {
                t + leg.d_f / 2
            } else {
                t + leg.d_b / 2
            };
            self.post.push(Post {
                rs_t: t_r,
                nat_t,
                at_rs: post == PostNat::Yes,
                spec: p,
            });
        }
        if from_client { t_r } else { t_c }
    }

    fn finish(mut self) -> PairScenario {
        let cfg = self.cfg;
        let epoch = cfg.start_ns;
        let span = match cfg.rs_capture {
            Some((from, to)) => (epoch + from, epoch + to),
            None => (self.origin, u64::MAX),
        };
        let span = (span.0, span.1.min(self.rs_end.unwrap_or(u64::MAX)));
        let client_cut = self.client_end.unwrap_or(u64::MAX);
        let inside = |t: u64| t >= span.0 && t < span.1;
        self.client.sort_by_key(|p| p.0);
        self.post.sort_by_key(|p| p.rs_t);
        self.client.retain(|p| p.0 < client_cut);
        // Where each capture ends: its last packet (true time).
        let c_last = self.client.last().map(|p| p.0);
        let r_last = self
            .post
            .iter()
            .rev()
            .find(|p| p.at_rs && inside(p.rs_t))
            .map(|p| p.rs_t);
        let mut truth = Vec::new();
        for (i, run) in self.runs.iter().enumerate() {
            let Some(r) = run else { continue };
            let plan = &self.plans[i];
            let first = r.syns[0].client_ns;
            if first >= client_cut {
                continue;
            }
            // What the client capture shows of the attempt.
            let vis = r
                .syns
                .iter()
                .take_while(|s| s.client_ns < client_cut)
                .count();
            let syns = &r.syns[..vis];
            let last = syns[vis - 1].client_ns;
            let gap = if vis >= 2 {
                last - syns[vis - 2].client_ns
            } else {
                0
            };
            let due = last + gap.max(SEC);
            let ended = r.answered_at.is_none_or(|t| t >= client_cut)
                && (c_last.is_none_or(|e| e < due) || r_last.is_some_and(|e| e < due));
            let mut cause = TrueCause::Ok;
            for s in syns {
                cause = match s.fate {
                    SynFate::LbDrop => TrueCause::LbSynDropPortReuse,
                    SynFate::RaceDrop => TrueCause::ConntrackInsertRace,
                    SynFate::NoPort => TrueCause::SnatPortExhaustion,
                    SynFate::Lost | SynFate::LostAfterNat => TrueCause::SynLostBeforeRs,
                    SynFate::StaleAck(_) => TrueCause::RsTimewaitCollision,
                    SynFate::SynAckLost => TrueCause::SynackLostAfterRs,
                    SynFate::Refused => TrueCause::RsRefused,
                    SynFate::SynAck if r.slow_ns >= 200 * MS => TrueCause::RsSlowSynack,
                    SynFate::SynAck => TrueCause::Ok,
                };
                if cause != TrueCause::Ok {
                    break;
                }
            }
            let reached: Vec<u64> = r.rs_true[..vis].iter().flatten().copied().collect();
            if !reached.is_empty() && !reached.iter().any(|&t| inside(t)) {
                cause = TrueCause::Unmatched;
            }
            if ended {
                cause = TrueCause::CaptureEnded;
            }
            let end = match syns
                .iter()
                .find(|s| matches!(s.fate, SynFate::SynAck | SynFate::Refused))
            {
                Some(s) if !ended => s,
                _ => &syns[vis - 1],
            };
            let extra = if end.fate == SynFate::SynAck && !ended {
                r.slow_ns
            } else {
                0
            };
            truth.push(PairTruth {
                id: i as u32,
                role: plan.role,
                intent: plan.intent,
                client: r.c_addr,
                vip: cfg.vip,
                isn: r.isn,
                first_tsval: r.syns[0].tsval,
                first_syn_ns: first,
                syns: syns.to_vec(),
                setup_latency_ns: r.setup_latency.filter(|l| first + l < client_cut),
                cause,
                delay_ns: end.client_ns - first + extra,
                rs_isn: r.rs_isn,
                fwd_delay_ns: r.d_f,
                back_delay_ns: r.d_b,
                offset_at_syn_ns: cfg.clock.offset_at(first, epoch),
                last_ns: r.last_client.min(client_cut - 1),
            });
        }
        truth.sort_by_key(|t| (t.first_syn_ns, t.id));
        let rs = self
            .post
            .iter()
            .filter(|p| p.at_rs && inside(p.rs_t))
            .map(|p| (cfg.clock.rs_ns(p.rs_t, epoch), p.spec))
            .collect();
        let mut node: Vec<(u64, TcpSpec)> = self
            .post
            .iter()
            .filter(|p| inside(p.rs_t))
            .map(|p| (p.nat_t, p.spec))
            .collect();
        node.sort_by_key(|p| p.0);
        PairScenario {
            client: self.client,
            rs,
            node,
            truth,
            nat: NatTruth {
                vip: cfg.vip,
                rss: cfg.rss.clone(),
                snat_ip: cfg.snat_ip,
                snat_ports: cfg.snat_ports,
                clock: cfg.clock,
                epoch_ns: epoch,
                delay_ns: cfg.delay_ns,
                rs_capture: span,
                client_capture_end: self.client_end,
            },
        }
    }
}
