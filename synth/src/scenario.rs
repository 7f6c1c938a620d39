//! A seeded simulator of short TCP connections from clients to one server, as a capture on
//! the client side records them, with the ground truth of every connection attempt.
//!
//! Each attempt is planned whole when it starts (all its packets, with absolute integer-ns
//! times) and pushed into a time-ordered heap; a packet leaves the heap only once no attempt
//! starting later can put an earlier packet in front of it. So the stream is in time order
//! and memory stays bounded by the attempts in flight (plus one small entry per 4-tuple
//! used), whatever the capture size.
//! Invariants the tests pin: a retransmitted SYN carries its attempt's ISN; the truth's
//! first-SYN time, SYN count and setup latency are exactly those of the emitted packets; no
//! 4-tuple is reused while a previous use is in flight, and every reuse is recorded in the
//! truth (`prev_close_ns`); the same config gives the same packets.

use super::frame::{ControlBits, TcpSpec};
use super::rng::Rng;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// Ephemeral ports Linux hands out by default (`ip_local_port_range`).
const PORT_LO: u16 = 32768;
const PORT_HI: u16 = 60999;

/// When a client retransmits an unanswered SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynSchedule {
    /// `tcp_syn_linear_timeouts` (Linux 6.x default 4): retries at 1, 2, 3, 4, 5, 7, 11, 19 s.
    Linear,
    /// Exponential backoff from 1 s: retries at 1, 3, 7, 15, 31, 63 s.
    Classic,
}

impl SynSchedule {
    /// Time of retry k (1-based) after the first SYN.
    pub fn retry_offset_ns(self, k: usize) -> u64 {
        const LINEAR: [u64; 10] = [1, 2, 3, 4, 5, 7, 11, 19, 35, 67];
        const CLASSIC: [u64; 6] = [1, 3, 7, 15, 31, 63];
        let table: &[u64] = match self {
            SynSchedule::Linear => &LINEAR,
            SynSchedule::Classic => &CLASSIC,
        };
        assert!(k >= 1 && k <= table.len(), "no SYN retry #{k} in {self:?}");
        table[k - 1] * SEC
    }

    /// Most SYNs an attempt may send under this schedule.
    pub fn max_tries(self) -> u8 {
        match self {
            SynSchedule::Linear => 11,
            SynSchedule::Classic => 7,
        }
    }
}

/// How soon a client re-sends its SYN after answering a stale ACK with a RST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleResend {
    /// 2–8 ms after the stale ACK (Linux ≥ 5.6 re-sends at once on that ACK).
    Fast,
    /// At the SYN retransmission timer, ~1 s after the first SYN (older or non-Linux clients).
    Slow,
}

/// Which side sent the first FIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closer {
    Client,
    Server,
}

/// What happens to one connection attempt. Parameters say exactly what was simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Handshake, request, response, FIN exchange.
    Normal,
    /// The first `tries - 1` SYNs are lost (beyond the capture point); the last is answered.
    SynRetransmit { tries: u8 },
    /// `tries` SYNs, none answered; the client gives up.
    SynTimeout { tries: u8 },
    /// The server answers the first SYN with an ACK of the previous connection on the tuple
    /// (still in TIME_WAIT on the server); the client RSTs and re-sends the same SYN.
    StaleAck { resend: StaleResend },
    /// RST,ACK answers the SYN.
    Refused,
    /// A RST after the request, from the client or the server.
    Abort { by_client: bool },
    /// A normal connection on a 4-tuple a previous connection used and closed.
    PortReuse,
    /// The request is lost beyond the capture point and re-sent at the RTO (~200 ms).
    DataRetransmit,
    /// One response segment is lost before the capture point: duplicate ACKs with SACK,
    /// then the server's fast retransmission.
    FastRetransmit,
    /// Two response segments arrive swapped.
    OutOfOrder,
    /// The client advertises a zero window mid-response, then a window update.
    ZeroWindow,
    /// After the response the connection idles 1 s; one keep-alive and its ACK.
    KeepAlive,
}

impl Kind {
    /// Stable snake_case code (the truth TSV's `kind` column).
    pub fn code(&self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::SynRetransmit { .. } => "syn_retransmit",
            Kind::SynTimeout { .. } => "syn_timeout",
            Kind::StaleAck { .. } => "stale_ack",
            Kind::Refused => "refused",
            Kind::Abort { .. } => "abort",
            Kind::PortReuse => "port_reuse",
            Kind::DataRetransmit => "data_retransmit",
            Kind::FastRetransmit => "fast_retransmit",
            Kind::OutOfOrder => "out_of_order",
            Kind::ZeroWindow => "zero_window",
            Kind::KeepAlive => "keep_alive",
        }
    }

    /// The parameter, as text ("" when none).
    pub fn detail(&self) -> &'static str {
        match self {
            Kind::StaleAck {
                resend: StaleResend::Fast,
            } => "fast",
            Kind::StaleAck {
                resend: StaleResend::Slow,
            } => "slow",
            Kind::Abort { by_client: true } => "client",
            Kind::Abort { by_client: false } => "server",
            _ => "",
        }
    }

    fn reuses_tuple(&self) -> bool {
        matches!(self, Kind::StaleAck { .. } | Kind::PortReuse)
    }
}

/// Relative weights of the anomalies drawn when an attempt is anomalous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights {
    pub syn_retransmit: u32,
    pub syn_timeout: u32,
    pub stale_ack: u32,
    pub refused: u32,
    pub abort: u32,
    pub port_reuse: u32,
    pub data_retransmit: u32,
    pub fast_retransmit: u32,
    pub out_of_order: u32,
    pub zero_window: u32,
    pub keep_alive: u32,
}

impl Default for Weights {
    /// Setup anomalies (the tool's subject) dominate; the rest exercise the flags.
    fn default() -> Self {
        Weights {
            syn_retransmit: 20,
            syn_timeout: 4,
            stale_ack: 20,
            refused: 5,
            abort: 5,
            port_reuse: 15,
            data_retransmit: 5,
            fast_retransmit: 5,
            out_of_order: 5,
            zero_window: 5,
            keep_alive: 5,
        }
    }
}

/// Everything that shapes a generated capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioConfig {
    pub seed: u64,
    /// Upper bound on attempts (truth rows); a reuse kind's predecessor counts as one.
    pub attempts: u64,
    /// Stop starting attempts once this many packets are planned (the total ends a little
    /// above: attempts in flight finish).
    pub max_packets: Option<u64>,
    /// Time of the first SYN, ns since the Unix epoch.
    pub start_ns: u64,
    /// Mean gap between attempt starts; gaps are uniform in `1..=2 * mean`.
    pub mean_gap_ns: u64,
    /// Number of client hosts (at most 62 500).
    pub clients: u32,
    pub ipv6: bool,
    pub server_port: u16,
    /// Round-trip time range (client capture point ↔ server), drawn per connection.
    pub rtt_ns: (u64, u64),
    /// Clients send TCP timestamps (and so the server does).
    pub timestamps: bool,
    pub syn_schedule: SynSchedule,
    /// `None`: each stale-ACK attempt draws fast or slow.
    pub stale_resend: Option<StaleResend>,
    /// Gap between the end of a connection and the next one on its tuple (reuse kinds).
    /// Keep it under 60 s for stale ACKs: the server's TIME_WAIT would be over.
    pub reuse_gap_ns: (u64, u64),
    /// Share of attempts that are anomalous, parts per million.
    pub anomaly_ppm: u32,
    pub weights: Weights,
    /// Share of ISNs and TSval bases drawn near 2^32 so they wrap mid-connection.
    pub wrap_ppm: u32,
    /// If not empty, the attempts follow this list (one entry per attempt, plus the
    /// predecessor a reuse kind creates) instead of random draws, then stop.
    pub script: Vec<Kind>,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 1,
            attempts: 100,
            max_packets: None,
            start_ns: 1_700_000_000 * SEC,
            mean_gap_ns: 500 * US,
            clients: 16,
            ipv6: false,
            server_port: 80,
            rtt_ns: (150 * US, 600 * US),
            timestamps: true,
            syn_schedule: SynSchedule::Linear,
            stale_resend: None,
            reuse_gap_ns: (20 * MS, 5 * SEC),
            anomaly_ppm: 30_000,
            weights: Weights::default(),
            wrap_ppm: 20_000,
            script: Vec::new(),
        }
    }
}

impl ScenarioConfig {
    /// The address of client host `i`.
    pub fn client_ip(&self, i: u32) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x10, 0x244, 0, 0, 0, 0, 2 + i as u16))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                10,
                244,
                1 + (i / 250) as u8,
                2 + (i % 250) as u8,
            ))
        }
    }

    /// The service address (a ClusterIP-like VIP).
    pub fn server_ip(&self) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x10, 0x96, 0, 0, 0, 0, 0xa))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10))
        }
    }
}

/// The ground truth of one connection attempt (one client ISN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptTruth {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub isn: u32,
    pub first_syn_ns: u64,
    /// SYNs the client sent (1 if the first was answered).
    pub syn_tries: u8,
    /// First SYN → the SYN-ACK's arrival at the capture point; `None` if none came.
    pub setup_latency_ns: Option<u64>,
    pub kind: Kind,
    /// TSval of the first SYN, if timestamps are on.
    pub first_tsval: Option<u32>,
    pub server_isn: Option<u32>,
    /// Last packet of the previous connection on this 4-tuple, if any: the authority on
    /// reuse. Set for every [`Kind::PortReuse`] and [`Kind::StaleAck`], and for any attempt
    /// whose client wrapped its port range (long runs with few clients).
    pub prev_close_ns: Option<u64>,
    /// Who sent the first FIN (None: no FIN exchange).
    pub closer: Option<Closer>,
    /// Time of this attempt's last packet.
    pub last_ns: u64,
}

impl AttemptTruth {
    /// Column names of [`AttemptTruth::write_tsv`]; a stable schema.
    pub const TSV_HEADER: &'static str = "client_ip\tclient_port\tserver_ip\tserver_port\tisn\t\
first_syn_ns\tsyn_tries\tsetup_latency_ns\tkind\tdetail\tfirst_tsval\tserver_isn\t\
prev_close_ns\tcloser\tlast_ns";

    /// One TSV line (with newline); absent values are empty fields.
    pub fn write_tsv(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        fn opt<T: fmt::Display>(v: Option<T>) -> String {
            v.map(|x| x.to_string()).unwrap_or_default()
        }
        let closer = match self.closer {
            Some(Closer::Client) => "client",
            Some(Closer::Server) => "server",
            None => "",
        };
        writeln!(
            w,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.client.ip(),
            self.client.port(),
            self.server.ip(),
            self.server.port(),
            self.isn,
            self.first_syn_ns,
            self.syn_tries,
            opt(self.setup_latency_ns),
            self.kind.code(),
            self.kind.detail(),
            opt(self.first_tsval),
            opt(self.server_isn),
            opt(self.prev_close_ns),
            closer,
            self.last_ns
        )
    }
}

/// A whole generated capture, in time order, with its truth sorted by first SYN.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub packets: Vec<(u64, TcpSpec)>,
    pub truth: Vec<AttemptTruth>,
}

/// Generates the whole scenario in memory (tests, small captures).
pub fn generate(cfg: &ScenarioConfig) -> Scenario {
    let mut g = Generator::new(cfg);
    let packets: Vec<_> = g.by_ref().collect();
    let truth = g.drain_truth();
    Scenario { packets, truth }
}

/// A heap entry ordered by (time, planning order): equal times keep planning order, which
/// keeps each connection's own packets in causal order.
struct Timed<T> {
    t: u64,
    order: u64,
    item: T,
}

impl<T> PartialEq for Timed<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.order) == (o.t, o.order)
    }
}
impl<T> Eq for Timed<T> {}
impl<T> PartialOrd for Timed<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Timed<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.t, self.order).cmp(&(o.t, o.order))
    }
}

/// The streaming generator: an iterator of `(ts_ns, TcpSpec)` in time order.
/// [`Generator::drain_truth`] hands out the truth of attempts whose first SYN has been
/// emitted, so a writer can stream both.
pub struct Generator {
    cfg: ScenarioConfig,
    rng: Rng,
    packets: BinaryHeap<Reverse<Timed<TcpSpec>>>,
    truth: BinaryHeap<Reverse<Timed<AttemptTruth>>>,
    order: u64,
    next_start: u64,
    attempts: u64,
    planned_packets: u64,
    script_pos: usize,
    exhausted: bool,
    last_emitted: u64,
    /// Per client host, the next ephemeral port to try.
    next_port: Vec<u16>,
    /// Per (client host, port): end of the last (or reserved future) use of the tuple.
    tuples: HashMap<(u32, u16), u64>,
    scratch: Vec<(u64, TcpSpec)>,
}

impl Generator {
    pub fn new(cfg: &ScenarioConfig) -> Self {
        assert!(
            cfg.clients >= 1 && cfg.clients <= 62_500,
            "clients must be 1..=62500"
        );
        assert!(
            cfg.rtt_ns.0 >= 2 * US && cfg.rtt_ns.0 <= cfg.rtt_ns.1,
            "bad rtt range"
        );
        assert!(cfg.rtt_ns.1 < 500 * MS, "rtt must stay below the SYN timer");
        let mut rng = Rng::new(cfg.seed);
        let next_port = (0..cfg.clients)
            .map(|_| rng.range(u64::from(PORT_LO), u64::from(PORT_HI)) as u16)
            .collect();
        Generator {
            cfg: cfg.clone(),
            rng,
            packets: BinaryHeap::new(),
            truth: BinaryHeap::new(),
            order: 0,
            next_start: cfg.start_ns,
            attempts: 0,
            planned_packets: 0,
            script_pos: 0,
            exhausted: false,
            last_emitted: 0,
            next_port,
            tuples: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// Truth rows whose first SYN is already emitted (all of them once the iterator is
    /// done), sorted by first-SYN time.
    pub fn drain_truth(&mut self) -> Vec<AttemptTruth> {
        let mut out = Vec::new();
        while let Some(Reverse(top)) = self.truth.peek() {
            if !(self.exhausted && self.packets.is_empty()) && top.t > self.last_emitted {
                break;
            }
            out.push(self.truth.pop().expect("peeked").0.item);
        }
        out
    }

    fn done_starting(&self) -> bool {
        if !self.cfg.script.is_empty() {
            return self.script_pos >= self.cfg.script.len();
        }
        self.attempts >= self.cfg.attempts
            || self
                .cfg
                .max_packets
                .is_some_and(|m| self.planned_packets >= m)
    }

    fn next_kind(&mut self) -> Kind {
        if !self.cfg.script.is_empty() {
            let k = self.cfg.script[self.script_pos];
            self.script_pos += 1;
            return k;
        }
        if !self.rng.chance_ppm(self.cfg.anomaly_ppm) {
            return Kind::Normal;
        }
        let w = self.cfg.weights;
        let table = [
            w.syn_retransmit,
            w.syn_timeout,
            w.stale_ack,
            w.refused,
            w.abort,
            w.port_reuse,
            w.data_retransmit,
            w.fast_retransmit,
            w.out_of_order,
            w.zero_window,
            w.keep_alive,
        ];
        let Some(i) = self.rng.weighted(&table) else {
            return Kind::Normal;
        };
        // Two or three tries: most real retransmitted setups succeed at the first retry.
        let tries = if self.rng.chance_ppm(750_000) { 2 } else { 3 };
        match i {
            0 => Kind::SynRetransmit { tries },
            1 => Kind::SynTimeout { tries: tries + 1 },
            2 => Kind::StaleAck {
                resend: self
                    .cfg
                    .stale_resend
                    .unwrap_or(if self.rng.chance_ppm(500_000) {
                        StaleResend::Fast
                    } else {
                        StaleResend::Slow
                    }),
            },
            3 => Kind::Refused,
            4 => Kind::Abort {
                by_client: self.rng.chance_ppm(500_000),
            },
            5 => Kind::PortReuse,
            6 => Kind::DataRetransmit,
            7 => Kind::FastRetransmit,
            8 => Kind::OutOfOrder,
            9 => Kind::ZeroWindow,
            _ => Kind::KeepAlive,
        }
    }

    /// A free ephemeral port of client `c` at time `t`, as Linux walks its port range.
    fn alloc_port(&mut self, c: u32, t: u64) -> u16 {
        let span = u64::from(PORT_HI - PORT_LO) + 1;
        for _ in 0..span {
            // Small steps: a client wraps its port range only after ~18 000 attempts.
            let step = self.rng.range(1, 2) as u16;
            let p = self.next_port[c as usize];
            let next = u64::from(p - PORT_LO) + u64::from(step);
            self.next_port[c as usize] = PORT_LO + (next % span) as u16;
            if self.tuples.get(&(c, p)).is_none_or(|&end| end < t) {
                return p;
            }
        }
        panic!("client {c} has no free port at {t} ns");
    }

    /// Plans the next attempt (and a reuse kind's predecessor) at `next_start`.
    fn plan_next(&mut self) {
        let t = self.next_start;
        let kind = self.next_kind();
        let client = self.rng.below(u64::from(self.cfg.clients)) as u32;
        let port = self.alloc_port(client, t);
        let prev = self.tuples.get(&(client, port)).copied();
        let end = if kind.reuses_tuple() {
            // The predecessor closes so that the reuse hits the TIME_WAIT side: the server
            // for a stale ACK, the client otherwise.
            let closer = if matches!(kind, Kind::StaleAck { .. }) {
                Closer::Server
            } else {
                Closer::Client
            };
            let pred = self.plan_attempt(t, client, port, Kind::Normal, prev, Some(closer), None);
            let gap = self
                .rng
                .range(self.cfg.reuse_gap_ns.0, self.cfg.reuse_gap_ns.1);
            let f = self.plan_attempt(
                pred.last_ns + gap,
                client,
                port,
                kind,
                Some(pred.last_ns),
                None,
                Some(pred),
            );
            f.last_ns
        } else {
            self.plan_attempt(t, client, port, kind, prev, None, None)
                .last_ns
        };
        self.tuples.insert((client, port), end);
        let gap = self.rng.range(1, 2 * self.cfg.mean_gap_ns.max(1));
        self.next_start = t + gap;
    }

    /// Plans one attempt, queues its packets and truth; returns its final state.
    #[allow(clippy::too_many_arguments)]
    fn plan_attempt(
        &mut self,
        t0: u64,
        client: u32,
        port: u16,
        kind: Kind,
        prev_close_ns: Option<u64>,
        closer: Option<Closer>,
        pred: Option<ConnEnd>,
    ) -> ConnEnd {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let cfg = &self.cfg;
        let rng = &mut self.rng;
        let c_addr = SocketAddr::new(cfg.client_ip(client), port);
        let s_addr = SocketAddr::new(cfg.server_ip(), cfg.server_port);
        let (truth, end) = simulate(cfg, rng, &mut out, t0, c_addr, s_addr, kind, closer, pred);
        let truth = AttemptTruth {
            prev_close_ns,
            ..truth
        };
        for (t, spec) in out.drain(..) {
            self.order += 1;
            self.planned_packets += 1;
            self.packets.push(Reverse(Timed {
                t,
                order: self.order,
                item: spec,
            }));
        }
        self.order += 1;
        self.attempts += 1;
        self.truth.push(Reverse(Timed {
            t: truth.first_syn_ns,
            order: self.order,
            item: truth,
        }));
        self.scratch = out;
        end
    }
}

impl Iterator for Generator {
    type Item = (u64, TcpSpec);

    fn next(&mut self) -> Option<(u64, TcpSpec)> {
        loop {
            // Every attempt not yet planned starts at or after `next_start`, so nothing
            // earlier can still arrive.
            if let Some(Reverse(top)) = self.packets.peek()
                && (self.exhausted || top.t <= self.next_start)
            {
                let Reverse(p) = self.packets.pop().expect("peeked");
                self.last_emitted = p.t;
                return Some((p.t, p.item));
            }
            if self.exhausted {
                return None;
            }
            if self.done_starting() {
                self.exhausted = true;
            } else {
                self.plan_next();
            }
        }
    }
}

/// Where a connection ended: what a later stale ACK on the same tuple echoes.
#[derive(Clone, Copy, Debug)]
struct ConnEnd {
    last_ns: u64,
    c_nxt: u32,
    s_nxt: u32,
    c_last_tsval: u32,
    s_ts_off: u32,
    s_ip_id: u16,
    half_rtt: u64,
}

/// One side of a connection being simulated.
#[derive(Clone, Copy, Debug)]
struct Ep {
    addr: SocketAddr,
    /// Next sequence number to send.
    nxt: u32,
    /// Next sequence number expected from the peer (what it ACKs).
    rcv: u32,
    /// Per-connection random TSval offset (Linux ≥ 4.10), added to a 1 kHz clock.
    ts_off: u32,
    last_tsval: u32,
    ip_id: u16,
    ttl: u8,
    /// Unscaled window it advertises after the handshake.
    win: u16,
}

/// Builds one connection's packets as seen at the client's capture point: client packets
/// at their send time, server packets at their arrival (sent half an RTT earlier).
struct Conn<'a> {
    c: Ep,
    s: Ep,
    half_rtt: u64,
    ts: bool,
    mss: u16,
    out: &'a mut Vec<(u64, TcpSpec)>,
}

/// What to put in the option space besides timestamps.
#[derive(Clone, Copy, Default)]
struct Opts {
    syn: bool,
    no_ts: bool,
    sack: Option<(u32, u32)>,
}

impl Conn<'_> {
    fn ep(&mut self, client: bool) -> (&mut Ep, &mut Ep) {
        if client {
            (&mut self.c, &mut self.s)
        } else {
            (&mut self.s, &mut self.c)
        }
    }

    fn tsval(&self, client: bool, t: u64) -> u32 {
        if client {
            self.c.ts_off.wrapping_add((t / MS) as u32)
        } else {
            self.s
                .ts_off
                .wrapping_add((t.saturating_sub(self.half_rtt) / MS) as u32)
        }
    }

    /// Emits a segment with explicit seq/ack; advances nothing but IP id and TS state.
    #[allow(clippy::too_many_arguments)]
    fn raw(
        &mut self,
        t: u64,
        client: bool,
        flags: ControlBits,
        seq: u32,
        ack: u32,
        len: usize,
        win: u16,
        o: Opts,
    ) {
        let tsval = self.tsval(client, t);
        let use_ts = self.ts && !o.no_ts;
        let mss = self.mss;
        let (me, peer) = self.ep(client);
        let ts = use_ts.then(|| {
            // The SYN has nothing to echo yet.
            let ecr = if flags.ack() { peer.last_tsval } else { 0 };
            (tsval, ecr)
        });
        if use_ts {
            me.last_tsval = tsval;
        }
        let spec = TcpSpec {
            src: me.addr.ip(),
            dst: peer.addr.ip(),
            sport: me.addr.port(),
            dport: peer.addr.port(),
            seq,
            ack: if flags.ack() { ack } else { 0 },
            flags,
            window: win,
            mss: o.syn.then_some(mss),
            wscale: o.syn.then_some(7),
            sack_perm: o.syn,
            ts,
            sack: o.sack,
            payload_len: len,
            ip_id: me.ip_id,
            ttl: me.ttl,
        };
        me.ip_id = me.ip_id.wrapping_add(1);
        self.out.push((t, spec));
    }

    /// Sends `len` bytes (plus SYN/FIN) in order; the peer receives it.
    fn send(&mut self, t: u64, client: bool, flags: ControlBits, len: usize) {
        let (me, _) = self.ep(client);
        let (seq, ack, win) = (me.nxt, me.rcv, me.win);
        self.raw(t, client, flags, seq, ack, len, win, Opts::default());
        let adv = len as u32 + u32::from(flags.syn()) + u32::from(flags.fin());
        let (me, peer) = self.ep(client);
        me.nxt = me.nxt.wrapping_add(adv);
        peer.rcv = me.nxt;
    }

    fn payload_per_segment(&self) -> u32 {
        u32::from(self.mss) - if self.ts { 12 } else { 0 }
    }

    fn last_t(&self) -> u64 {
        self.out.last().map_or(0, |p| p.0)
    }
}

/// Response sizes of an HTTP service: mostly small API answers, some pages.
fn response_len(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0..=5 => rng.range(150, 1400) as usize,
        6..=8 => rng.range(1500, 8000) as usize,
        _ => rng.range(8000, 30000) as usize,
    }
}

/// An ISN or TSval base; sometimes just below 2^32 so it wraps during the connection.
fn wrapping_u32(rng: &mut Rng, wrap_ppm: u32, near: u32) -> u32 {
    if rng.chance_ppm(wrap_ppm) {
        0u32.wrapping_sub(rng.range(1, u64::from(near)) as u32)
    } else {
        rng.next_u32()
    }
}

/// Simulates one attempt from its first SYN at `t0`. Returns the truth (without
/// `prev_close_ns`) and the final state.
#[allow(clippy::too_many_arguments)]
fn simulate(
    cfg: &ScenarioConfig,
    rng: &mut Rng,
    out: &mut Vec<(u64, TcpSpec)>,
    t0: u64,
    c_addr: SocketAddr,
    s_addr: SocketAddr,
    kind: Kind,
    closer: Option<Closer>,
    pred: Option<ConnEnd>,
) -> (AttemptTruth, ConnEnd) {
    let rtt = rng.range(cfg.rtt_ns.0, cfg.rtt_ns.1);
    let half_rtt = rtt / 2;
    let isn = wrapping_u32(rng, cfg.wrap_ppm, 4000);
    let sisn = wrapping_u32(rng, cfg.wrap_ppm, 20000);
    let now_ms = (t0 / MS) as u32;
    // TS bases chosen so the TSval itself is near 2^32 at t0 when a wrap is drawn.
    let c_ts_off = wrapping_u32(rng, cfg.wrap_ppm, 3000).wrapping_sub(now_ms);
    let s_ts_off = wrapping_u32(rng, cfg.wrap_ppm, 3000).wrapping_sub(now_ms);
    let mss: u16 = if cfg.ipv6 { 1440 } else { 1460 };
    let ep = |addr, nxt, ts_off, ip_id, ttl, win| Ep {
        addr,
        nxt,
        rcv: 0,
        ts_off,
        last_tsval: 0,
        ip_id,
        ttl,
        win,
    };
    let mut b = Conn {
        c: ep(c_addr, isn, c_ts_off, rng.next_u32() as u16, 64, 502),
        // Server packets were routed once (node → pod network) before the capture point.
        s: ep(s_addr, sisn, s_ts_off, rng.next_u32() as u16, 63, 509),
        half_rtt,
        ts: cfg.timestamps,
        mss,
        out,
    };
    let syn_opts = Opts {
        syn: true,
        ..Opts::default()
    };
    let small = |rng: &mut Rng| rng.range(8 * US, 40 * US);

    let mut truth = AttemptTruth {
        client: c_addr,
        server: s_addr,
        isn,
        first_syn_ns: t0,
        syn_tries: 1,
        setup_latency_ns: None,
        kind,
        first_tsval: cfg.timestamps.then(|| b.tsval(true, t0)),
        server_isn: None,
        prev_close_ns: None,
        closer: None,
        last_ns: t0,
    };

    // --- SYN phase: every SYN carries the same ISN; only the timer (and TSval) moves. ---
    let syn = |b: &mut Conn, t: u64| b.raw(t, true, ControlBits::SYN, isn, 0, 0, 64240, syn_opts);
    let (last_syn, answered) = match kind {
        Kind::SynRetransmit { tries } | Kind::SynTimeout { tries } => {
            let tries = tries.clamp(1, cfg.syn_schedule.max_tries());
            truth.syn_tries = tries;
            let mut t = t0;
            syn(&mut b, t0);
            for k in 1..usize::from(tries) {
                // Kernel timers fire on jiffies: a few ms late, never early.
                t = t0 + cfg.syn_schedule.retry_offset_ns(k) + rng.range(0, 4 * MS);
                syn(&mut b, t);
            }
            (t, matches!(kind, Kind::SynRetransmit { .. }))
        }
        Kind::StaleAck { resend } => {
            let p = pred.expect("a stale ACK needs the previous connection on its tuple");
            syn(&mut b, t0);
            // The server's TIME_WAIT socket answers with the old connection's numbers.
            let t_ack = t0 + rtt + rng.range(0, 20 * US);
            let old_ts = p
                .s_ts_off
                .wrapping_add((t_ack.saturating_sub(p.half_rtt) / MS) as u32);
            let stale = TcpSpec {
                src: s_addr.ip(),
                dst: c_addr.ip(),
                sport: s_addr.port(),
                dport: c_addr.port(),
                seq: p.s_nxt,
                ack: p.c_nxt,
                flags: ControlBits::ACK,
                window: 509,
                ts: cfg.timestamps.then_some((old_ts, p.c_last_tsval)),
                ip_id: p.s_ip_id,
                ttl: 63,
                ..TcpSpec::default()
            };
            b.out.push((t_ack, stale));
            // The client's reset carries the ACK's ack number as seq, no ACK bit, no options.
            let t_rst = t_ack + small(rng);
            b.raw(
                t_rst,
                true,
                ControlBits::RST,
                p.c_nxt,
                0,
                0,
                0,
                Opts {
                    no_ts: true,
                    ..Opts::default()
                },
            );
            let t_resend = match resend {
                StaleResend::Fast => t_ack + rng.range(2 * MS, 8 * MS),
                StaleResend::Slow => (t0 + SEC + rng.range(0, 4 * MS)).max(t_rst + MS),
            };
            syn(&mut b, t_resend);
            truth.syn_tries = 2;
            (t_resend, true)
        }
        _ => {
            syn(&mut b, t0);
            (t0, !matches!(kind, Kind::Refused))
        }
    };
    b.c.nxt = isn.wrapping_add(1);
    b.s.rcv = b.c.nxt;

    if kind == Kind::Refused {
        let t = t0 + rtt + rng.range(0, 20 * US);
        // A reset from the stack (no listener): seq 0, ACK of the SYN, no options.
        b.raw(
            t,
            false,
            ControlBits::RST | ControlBits::ACK,
            0,
            b.c.nxt,
            0,
            0,
            Opts {
                no_ts: true,
                ..Opts::default()
            },
        );
    }
    if !answered {
        truth.last_ns = b.last_t();
        return (truth, end_of(&b));
    }

    // --- Handshake completes. ---
    let t_sa = last_syn + rtt + rng.range(0, 20 * US);
    b.raw(
        t_sa,
        false,
        ControlBits::SYN | ControlBits::ACK,
        sisn,
        b.s.rcv,
        0,
        65160,
        syn_opts,
    );
    b.s.nxt = sisn.wrapping_add(1);
    b.c.rcv = b.s.nxt;
    truth.setup_latency_ns = Some(t_sa - t0);
    truth.server_isn = Some(sisn);
    let mut t = t_sa + small(rng);
    b.send(t, true, ControlBits::ACK, 0);

    // --- Request. ---
    let req = rng.range(80, 600) as usize;
    t += rng.range(5 * US, 30 * US);
    b.send(t, true, ControlBits::PSH | ControlBits::ACK, req);
    let t_req = t;
    match kind {
        Kind::Abort { by_client: true } => {
            // The client gives up before the answer; an active reset carries TS and ACK.
            let t = t_req + rng.range(10 * US, half_rtt.max(11 * US));
            b.send(t, true, ControlBits::RST | ControlBits::ACK, 0);
            truth.last_ns = b.last_t();
            return (truth, end_of(&b));
        }
        Kind::Abort { by_client: false } => {
            let t = t_req + rtt + rng.range(50 * US, 2 * MS);
            b.send(t, false, ControlBits::RST | ControlBits::ACK, 0);
            truth.last_ns = b.last_t();
            return (truth, end_of(&b));
        }
        _ => {}
    }
    let mut t_resp = t_req + rtt + rng.range(50 * US, 2 * MS);
    if kind == Kind::DataRetransmit {
        // Lost beyond the capture point: the capture shows the same bytes twice.
        let t_retx = t_req + 200 * MS + rtt + rng.range(0, 4 * MS);
        let seq = b.c.nxt.wrapping_sub(req as u32);
        let (ack, win) = (b.c.rcv, b.c.win);
        b.raw(
            t_retx,
            true,
            ControlBits::PSH | ControlBits::ACK,
            seq,
            ack,
            req,
            win,
            Opts::default(),
        );
        t_resp = t_retx + rtt + rng.range(50 * US, 2 * MS);
    }

    // --- Response. ---
    let per = b.payload_per_segment() as usize;
    let min_segs = match kind {
        Kind::FastRetransmit => 5,
        Kind::ZeroWindow => 4,
        Kind::OutOfOrder => 3,
        _ => 1,
    };
    let resp = response_len(rng).max(min_segs * per - per / 2);
    let segs: Vec<usize> = (0..resp.div_ceil(per))
        .map(|i| per.min(resp - i * per))
        .collect();
    let base = b.s.nxt;
    let seg_seq = |i: usize| base.wrapping_add((i * per) as u32);
    let seg_flags = |i: usize| {
        if i + 1 == segs.len() {
            ControlBits::PSH | ControlBits::ACK
        } else {
            ControlBits::ACK
        }
    };
    // ~1 Gb/s between back-to-back segments.
    let spacing = |len: usize| (len as u64 + 66) * 8;
    let mut t = t_resp;
    let mut unacked = 0;
    let mut i = 0;
    while i < segs.len() {
        match (kind, i) {
            (Kind::FastRetransmit, 1) => {
                // Segment 1 never reaches the capture point; every later one draws a
                // duplicate ACK with a growing SACK block. Quick-ack mode has already
                // acknowledged segment 0, so all of them count as duplicates.
                let hole = seg_seq(1);
                if unacked > 0 {
                    t += small(rng);
                    b.send(t, true, ControlBits::ACK, 0);
                }
                for j in 2..segs.len() {
                    t += spacing(segs[j - 1]);
                    let (ack, win) = (b.s.rcv, b.s.win);
                    b.raw(
                        t,
                        false,
                        seg_flags(j),
                        seg_seq(j),
                        ack,
                        segs[j],
                        win,
                        Opts::default(),
                    );
                    let right = seg_seq(j).wrapping_add(segs[j] as u32);
                    let t_dup = t + small(rng);
                    let (ack, win) = (b.c.rcv, b.c.win);
                    b.raw(
                        t_dup,
                        true,
                        ControlBits::ACK,
                        b.c.nxt,
                        ack,
                        0,
                        win,
                        Opts {
                            sack: Some((seg_seq(2), right)),
                            ..Opts::default()
                        },
                    );
                    t = t_dup;
                }
                // The third duplicate ACK triggers the retransmission, one RTT later here.
                let t_retx = t.max(b.last_t()) + rtt;
                let (ack, win) = (b.s.rcv, b.s.win);
                b.raw(
                    t_retx,
                    false,
                    ControlBits::ACK,
                    hole,
                    ack,
                    segs[1],
                    win,
                    Opts::default(),
                );
                b.s.nxt = base.wrapping_add(resp as u32);
                b.c.rcv = b.s.nxt;
                t = t_retx + small(rng);
                b.send(t, true, ControlBits::ACK, 0);
                unacked = 0;
                i = segs.len();
                continue;
            }
            (Kind::OutOfOrder, 1) => {
                // Segment 2 overtakes segment 1: one duplicate ACK, then the hole fills.
                t += spacing(segs[0]);
                let (ack, win) = (b.s.rcv, b.s.win);
                b.raw(
                    t,
                    false,
                    seg_flags(2),
                    seg_seq(2),
                    ack,
                    segs[2],
                    win,
                    Opts::default(),
                );
                let right = seg_seq(2).wrapping_add(segs[2] as u32);
                t += small(rng);
                let (ack, win) = (b.c.rcv, b.c.win);
                b.raw(
                    t,
                    true,
                    ControlBits::ACK,
                    b.c.nxt,
                    ack,
                    0,
                    win,
                    Opts {
                        sack: Some((seg_seq(2), right)),
                        ..Opts::default()
                    },
                );
                t += rng.range(5 * US, 30 * US);
                let (ack, win) = (b.s.rcv, b.s.win);
                b.raw(
                    t,
                    false,
                    ControlBits::ACK,
                    seg_seq(1),
                    ack,
                    segs[1],
                    win,
                    Opts::default(),
                );
                b.s.nxt = right;
                b.c.rcv = right;
                t += small(rng);
                b.send(t, true, ControlBits::ACK, 0);
                unacked = 0;
                i = 3;
                continue;
            }
            _ => {
                if i > 0 {
                    t += spacing(segs[i - 1]);
                }
            }
        }
        b.send(t, false, seg_flags(i), segs[i]);
        unacked += 1;
        // Quick-ack mode at connection start: an ACK every second segment.
        if unacked == 2 {
            t += small(rng);
            if kind == Kind::ZeroWindow && i == 1 {
                // The reader stalls: this ACK closes the window, a window update reopens
                // it later, and the server resumes one RTT after that.
                let (nxt, ack) = (b.c.nxt, b.c.rcv);
                b.raw(t, true, ControlBits::ACK, nxt, ack, 0, 0, Opts::default());
                t += rng.range(5 * MS, 50 * MS);
                b.raw(
                    t,
                    true,
                    ControlBits::ACK,
                    nxt,
                    ack,
                    0,
                    b.c.win,
                    Opts::default(),
                );
                t += rtt;
            } else {
                b.send(t, true, ControlBits::ACK, 0);
            }
            unacked = 0;
        }
        i += 1;
    }
    t = t.max(b.last_t());

    // --- Close. ---
    let closer = closer.unwrap_or(match kind {
        Kind::KeepAlive => Closer::Client,
        _ if rng.chance_ppm(500_000) => Closer::Client,
        _ => Closer::Server,
    });
    if kind == Kind::KeepAlive {
        if unacked > 0 {
            t += small(rng);
            b.send(t, true, ControlBits::ACK, 0);
            unacked = 0;
        }
        // A keep-alive probe re-sends the last byte's sequence number with no data.
        t += SEC + rng.range(0, 4 * MS);
        let (seq, ack, win) = (b.c.nxt.wrapping_sub(1), b.c.rcv, b.c.win);
        b.raw(t, true, ControlBits::ACK, seq, ack, 0, win, Opts::default());
        t += rtt;
        let (seq, ack, win) = (b.s.nxt, b.s.rcv, b.s.win);
        b.raw(
            t,
            false,
            ControlBits::ACK,
            seq,
            ack,
            0,
            win,
            Opts::default(),
        );
    }
    truth.closer = Some(closer);
    match closer {
        Closer::Server => {
            // HTTP/1.0-style close: the FIN follows the last segment; the client ACKs both.
            t += rng.range(3 * US, 15 * US);
            b.send(t, false, ControlBits::FIN | ControlBits::ACK, 0);
            t += small(rng);
            b.send(t, true, ControlBits::ACK, 0);
            t += rng.range(20 * US, 200 * US);
            b.send(t, true, ControlBits::FIN | ControlBits::ACK, 0);
            t += rtt;
            b.send(t, false, ControlBits::ACK, 0);
        }
        Closer::Client => {
            if unacked > 0 {
                t += small(rng);
                b.send(t, true, ControlBits::ACK, 0);
            }
            t += rng.range(20 * US, 200 * US);
            b.send(t, true, ControlBits::FIN | ControlBits::ACK, 0);
            t += rtt;
            b.send(t, false, ControlBits::FIN | ControlBits::ACK, 0);
            t += small(rng);
            b.send(t, true, ControlBits::ACK, 0);
        }
    }
    truth.last_ns = b.last_t();
    (truth, end_of(&b))
}

fn end_of(b: &Conn) -> ConnEnd {
    ConnEnd {
        last_ns: b.last_t(),
        c_nxt: b.c.nxt,
        s_nxt: b.s.nxt,
        c_last_tsval: b.c.last_tsval,
        s_ts_off: b.s.ts_off,
        s_ip_id: b.s.ip_id,
        half_rtt: b.half_rtt,
    }
}
