//! Flows: TCP connections per 4-tuple, with incarnations, handshake timelines and
//! connection attempts.
//!
//! Three levels, each a compact record kept for the report:
//! - a [`Conn`] is one incarnation of a 4-tuple, split exactly where Wireshark starts a new
//!   `tcp.stream`; it knows its predecessor on the
//!   tuple and how long ago that one went quiet and closed. Wireshark 4.0 splits only on a
//!   pure SYN with a new ISN, so a same-ISN SYN after a stale ACK and RST stays in its
//!   incarnation: it is a retry;
//! - an [`Attempt`] is one client connection attempt: one ISN from one client 4-tuple, all
//!   its SYN tries, and its setup latency timed from the FIRST SYN to the SYN-ACK, which
//!   Wireshark never shows;
//! - each packet gets its [`Flags`] from [`classify`](crate::classify), which holds the
//!   only per-direction sequence state.
//!
//! Live state is one small entry per 4-tuple; everything else is in the records.

use crate::classify::{Analysis, Dir};
use crate::decode::Segment;
use crate::flags::{Flag, Flags};
use crate::records::Records;
use crate::seq::Seq;
use crate::skip::SkipReason;
use crate::units::codes;
use crate::units::{Endpoint, Tuple};
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;
use std::collections::hash_map::Entry;
use std::num::NonZeroU64;

/// Retries closer than this to the previous SYN count as immediate.
const QUICK_RETRY_NS: i64 = 100_000_000;
/// The same SYN (same TSval, or same IP ID without timestamps) again within this is the
/// same packet captured twice (`tcpdump -i any` on several interfaces), not a retry.
const COPY_WINDOW_NS: i64 = 1_000_000;

codes! {
    /// Zeek's `conn_state`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ConnState {
        S0 = ("S0", "SYN seen, no reply"),
        S1 = ("S1", "established, not terminated"),
        SF = ("SF", "established and closed normally"),
        REJ = ("REJ", "attempt rejected (RST)"),
        S2 = ("S2", "established, originator closed, no reply"),
        S3 = ("S3", "established, responder closed, no reply"),
        RSTO = ("RSTO", "established, originator aborted (RST)"),
        RSTR = ("RSTR", "established, responder aborted (RST)"),
        RSTOS0 = ("RSTOS0", "originator sent SYN then RST, no SYN-ACK"),
        RSTRH = ("RSTRH", "responder sent SYN-ACK then RST, no SYN"),
        SH = ("SH", "originator sent SYN then FIN, no SYN-ACK"),
        SHR = ("SHR", "responder sent SYN-ACK then FIN, no SYN"),
        OTH = ("OTH", "no SYN seen (midstream)"),
    }
}

/// Zeek-style history: each letter once per direction, in order of first appearance;
/// upper case from the originator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    letters: [u8; 16],
    len: u8,
}

impl History {
    fn push(&mut self, letter: u8) {
        let len = self.len as usize;
        if len < self.letters.len() && !self.letters[..len].contains(&letter) {
            self.letters[len] = letter;
            self.len += 1;
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.letters[..self.len as usize]).unwrap_or("")
    }
}

impl Serialize for History {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A packet reference: where to find it in the capture, and when it was seen.
///
/// Frame numbers are 1-based, so the frame is a `NonZeroU64` and an `Option<Pkt>` (an
/// attempt holds five) costs no more than a `Pkt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Pkt {
    frame: NonZeroU64,
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
}

impl Pkt {
    fn of(seg: &Segment) -> Pkt {
        Pkt {
            // Only a hand-built segment has frame 0; it is recorded as frame 1.
            frame: NonZeroU64::new(seg.frame).unwrap_or(NonZeroU64::MIN),
            ts: seg.ts,
        }
    }

    /// The frame number (1-based, as Wireshark's `frame.number`).
    pub fn frame(&self) -> u64 {
        self.frame.get()
    }
}

codes! {
    /// Why a SYN was sent again, judged from the gap before it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum GapClass {
        /// Within milliseconds of a stale ACK or RST (Linux ≥ 5.6 re-sends at once).
        AfterReset = ("after_reset", "SYN re-sent within 100 ms of a stale ACK or RST: Linux >= 5.6 re-sends at once"),
        /// Within 100 ms, with no stale ACK or RST before it.
        Immediate = ("immediate", "SYN re-sent within 100 ms, nothing before it (a duplicate or an application retry)"),
        /// ≈ 1 s: the initial retransmission timeout (RFC 6298).
        InitialRto1s = ("initial_rto_1s", "SYN re-sent after ~1 s: the initial retransmission timeout; the first SYN or its answer was lost"),
        /// ≈ 3 s: the old initial RTO (RFC 1122; older kernels, some non-Linux clients).
        InitialRto3s = ("initial_rto_3s", "SYN re-sent after ~3 s: the old initial RTO of older kernels and some non-Linux clients"),
        /// About the same as the previous gap: linear SYN timeouts (`tcp_syn_linear_timeouts`).
        Linear = ("linear", "the same gap as before: linear SYN timeouts (tcp_syn_linear_timeouts)"),
        /// About twice the previous gap: exponential back-off.
        Backoff = ("backoff", "twice the previous gap: exponential back-off"),
        Other = ("other", "a gap that fits no known schedule"),
    }
}

impl GapClass {
    fn of(gap: i64, prev_gap: Option<i64>, after_reset: bool) -> GapClass {
        const S: i64 = 1_000_000_000;
        if gap < QUICK_RETRY_NS {
            return if after_reset {
                GapClass::AfterReset
            } else {
                GapClass::Immediate
            };
        }
        match prev_gap {
            None if (800_000_000..1_600_000_000).contains(&gap) => GapClass::InitialRto1s,
            None if (2_500_000_000..3_600_000_000).contains(&gap) => GapClass::InitialRto3s,
            Some(p) if p >= QUICK_RETRY_NS => {
                // Ratios in tenths: 0.8..1.25 linear, 1.6..2.5 doubling. In i128: a gap
                // between corrupt timestamps can be centuries, and ×10 overflowed (fuzzing).
                let r = i128::from(gap) * 10 / i128::from(p);
                if (8..=12).contains(&r) {
                    GapClass::Linear
                } else if (16..=25).contains(&r) {
                    GapClass::Backoff
                } else {
                    GapClass::Other
                }
            }
            // After a quick retry, the next gap is judged as a first timeout.
            Some(_) if (800_000_000..1_600_000_000).contains(&gap) => GapClass::InitialRto1s,
            Some(_) if (2_500_000_000..3_600_000_000).contains(&gap) => GapClass::InitialRto3s,
            _ if gap >= S => GapClass::Other,
            _ => GapClass::Other,
        }
    }
}

/// One SYN of an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SynTry {
    #[serde(flatten)]
    pub pkt: Pkt,
    pub tsval: Option<u32>,
    pub ip_id: u16,
    /// Time since the previous SYN of the attempt (absent on the first).
    pub gap_ns: Option<i64>,
    pub gap_class: Option<GapClass>,
}

codes! {
    /// How an attempt ended, as far as this capture shows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Outcome {
        /// A SYN-ACK acknowledging the ISN was seen.
        Established = ("established", "SYN-ACK seen"),
        /// The responder answered with RST.
        Refused = ("refused", "refused by the responder (RST)"),
        /// The originator gave up with a RST (after a stale ACK, or otherwise).
        Reset = ("reset", "reset by the originator"),
        /// No answer seen.
        NoAnswer = ("no_answer", "no answer seen"),
    }
}

/// One client connection attempt: one ISN from one client 4-tuple.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub id: u32,
    pub client: Endpoint,
    pub server: Endpoint,
    pub isn: Seq,
    /// The SYN's TCP option layout and values (the first SYN's).
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    #[serde(skip)]
    pub opt_layout: u64,
    pub ip_id: u16,
    pub ttl: u8,
    /// Every SYN with this ISN, first one first (inline: most attempts have one).
    pub syns: SmallVec<[SynTry; 1]>,
    /// SYNs that were the same packet captured again (on another interface), not counted
    /// as tries.
    pub copies: u32,
    /// The first SYN-ACK acknowledging ISN + 1.
    pub synack: Option<Pkt>,
    /// The server's ISN, from that SYN-ACK.
    pub server_isn: Option<Seq>,
    /// The SYN-ACK's TSval.
    pub synack_tsval: Option<u32>,
    /// The originator's first ACK after the SYN-ACK.
    pub first_ack: Option<Pkt>,
    /// The first stale ACK answering one of the SYNs, and the ack number it carried.
    pub stale_ack: Option<Pkt>,
    pub stale_ack_number: Option<Seq>,
    /// Stale ACKs in all (a retried SYN can be mapped onto another stale tuple).
    pub stale_acks: u32,
    /// The ack number of the latest stale ACK: what the originator's RST answers.
    #[serde(skip)]
    last_stale_ack: Option<Seq>,
    /// The originator's RST after the stale ACK.
    pub stale_rst: Option<Pkt>,
    /// The responder's RST answering a SYN.
    pub refused: Option<Pkt>,
    /// First SYN → SYN-ACK, nanoseconds.
    pub setup_ns: Option<i64>,
    pub outcome: Outcome,
    /// The connection incarnation this attempt belongs to (a same-ISN retry never leaves
    /// its incarnation: Wireshark 4.0 splits only on a new ISN).
    pub conn: u32,
}

impl Attempt {
    pub fn first_syn(&self) -> Pkt {
        self.syns[0].pkt
    }
    pub fn tries(&self) -> usize {
        self.syns.len()
    }
    /// The TSval of the first SYN.
    pub fn tsval(&self) -> Option<u32> {
        self.syns[0].tsval
    }
    /// The client's tuple.
    pub fn tuple(&self) -> Tuple {
        Tuple::new(self.client, self.server)
    }
    /// The delay this attempt suffered, the one definition every stage and renderer uses:
    /// its setup latency when answered; unanswered, the time from the first SYN to the
    /// refusing RST, or to the last SYN try.
    pub fn delay_ns(&self) -> i64 {
        match (self.setup_ns, self.refused) {
            (Some(s), _) => s,
            (None, Some(r)) => r.ts - self.first_syn().ts,
            (None, None) => self.syns.last().map_or(0, |s| s.pkt.ts) - self.first_syn().ts,
        }
    }
    /// Whether the attempt was slow, the one definition of "slow": never established, or
    /// delayed by `slow_ns` or more.
    pub fn is_slow(&self, slow_ns: i64) -> bool {
        self.outcome != Outcome::Established || self.delay_ns() >= slow_ns
    }
}

/// The incarnation before this one on the same 4-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Predecessor {
    pub conn: u32,
    /// Time from the predecessor's last packet to this connection's first.
    pub since_last_packet_ns: i64,
    /// Time from the predecessor's first FIN or RST to this connection's first packet.
    pub since_close_ns: Option<i64>,
    pub state: ConnState,
}

/// One incarnation of a 4-tuple (one Wireshark `tcp.stream`).
#[derive(Clone, Debug, Serialize)]
pub struct Conn {
    pub id: u32,
    /// The originator (the side that sent the SYN, or a guess when none was seen).
    pub client: Endpoint,
    pub server: Endpoint,
    pub first: Pkt,
    pub last: Pkt,
    /// First FIN or RST.
    pub closed: Option<Pkt>,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub state: ConnState,
    pub history: History,
    pub predecessor: Option<Predecessor>,
    pub attempt: Option<u32>,
    /// The last TSval each side sent: what a TIME_WAIT socket compares a new SYN with (PAWS).
    pub last_tsval: [Option<u32>; 2],
    #[serde(skip)]
    seen: Seen,
}

/// What the state summary needs to know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    syn: bool,
    synack: bool,
    established: bool,
    fin: [bool; 2],
    rst: [bool; 2],
}

impl Conn {
    /// The connection's tuple, originator first.
    pub fn tuple(&self) -> Tuple {
        Tuple::new(self.client, self.server)
    }
    fn conn_state(&self) -> ConnState {
        let s = self.seen;
        let (o, r) = (Dir::Orig as usize, Dir::Resp as usize);
        match (s.syn, s.synack) {
            (false, false) => ConnState::OTH,
            (true, false) if s.rst[r] => ConnState::REJ,
            (true, false) if s.rst[o] => ConnState::RSTOS0,
            (true, false) if s.fin[o] => ConnState::SH,
            (true, false) => ConnState::S0,
            (false, true) if s.rst[r] => ConnState::RSTRH,
            (false, true) if s.fin[r] => ConnState::SHR,
            (false, true) => ConnState::OTH,
            (true, true) if s.rst[o] => ConnState::RSTO,
            (true, true) if s.rst[r] => ConnState::RSTR,
            (true, true) if s.fin[o] && s.fin[r] => ConnState::SF,
            (true, true) if s.fin[o] => ConnState::S2,
            (true, true) if s.fin[r] => ConnState::S3,
            (true, true) => ConnState::S1,
        }
    }
}

/// A packet with findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Flagged {
    pub frame: u64,
    pub ts: i64,
    pub conn: u32,
    pub flags: Flags,
}

/// A closed connection's classifier state is dropped this long after its last packet.
const CLOSED_IDLE_NS: i64 = 60_000_000_000;
/// An open connection's is dropped after this long without a packet: longer than Linux's
/// default keep-alive interval (2 h), so a keep-alive finds its state (Wireshark flags it
/// against the connection's sequence numbers).
const IDLE_NS: i64 = 4 * 3_600_000_000_000;
/// The tuple itself (for reuse detection) is forgotten after this long without a packet.
const FORGET_NS: i64 = 8 * 3_600_000_000_000;
/// How often (in segments) the table is swept, at least: a large table waits for as many
/// segments as it has tuples.
const SWEEP_EVERY: u64 = 1 << 16;

/// The state of a 4-tuple: its current incarnation and, while the connection can still
/// see packets, the classifier's state; once it has gone quiet, only its base sequence
/// numbers (so that a SYN on the tuple is still recognised as reuse).
struct Live {
    conn: u32,
    /// The time of the tuple's last packet (its connection record's `last`), here so that
    /// a sweep of the table reads only the table.
    last_ts: i64,
    state: TupleState,
}

enum TupleState {
    Active(Box<Analysis>),
    Quiet([Option<u32>; 2]),
}

impl Live {
    fn analysis(&mut self) -> &mut Analysis {
        if let TupleState::Quiet(base) = self.state {
            self.state = TupleState::Active(Box::new(Analysis::resumed(base)));
        }
        match &mut self.state {
            TupleState::Active(a) => a,
            TupleState::Quiet(_) => unreachable!("made active above"),
        }
    }
}

/// The connection table: feed it segments in capture order, then take the records.
#[derive(Default)]
pub struct Flows {
    live: FxHashMap<(Endpoint, Endpoint), Live>,
    conns: Records<Conn>,
    attempts: Records<Attempt>,
    flagged: Records<Flagged>,
    flag_counts: [u64; Flag::ALL.len()],
    segments: u64,
    memory: StateCounts,
    /// Sweep period in segments (0: the default); small in tests.
    sweep_every: u64,
    /// The segment count at which the next sweep runs.
    next_sweep: u64,
    /// Most 4-tuples with state (0: the default, [`DEFAULT_MAX_CONNECTIONS`]).
    max_live: usize,
    /// Most connection records, and most flagged-packet records (0: the default,
    /// [`DEFAULT_MAX_RECORDS`]).
    max_records: usize,
}

/// Default cap on connection records, and separately on flagged-packet records, per
/// capture: a 5 GB capture of short connections has about a million connections. At
/// about 1 KB a connection (its records, its verdict and, while it is live, its state),
/// this bounds a capture's memory at about 1.5 GB with [`DEFAULT_MAX_CONNECTIONS`],
/// whatever it holds.
pub const DEFAULT_MAX_RECORDS: usize = 1 << 20;

/// Default cap on 4-tuples with live state: about 300 MB of state at most, whatever the
/// capture (a SYN flood from millions of ports, connections never closed).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1 << 20;

/// What happened to per-connection state (memory is per live connection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// Connections whose classifier state was dropped after they went quiet.
    pub quieted: u64,
    /// Packets that arrived for a quiet connection (its state was rebuilt; Wireshark's
    /// flags on such a packet may differ).
    pub revived: u64,
    /// Tuples forgotten after 8 hours without a packet.
    pub forgotten: u64,
    /// Most tuples with classifier state at any sweep.
    pub peak_active: u64,
    /// Tuples evicted because the table was full (`--max-connections`): a later packet on
    /// one starts a new connection record, without its history.
    pub evicted: u64,
    /// The frame at which the connection records reached `--max-records`: from there on,
    /// segments that would start a connection are skipped (`record_cap`), and the
    /// connections already recorded are followed to their end.
    pub record_cap_frame: Option<u64>,
    /// Flagged packets past `--max-records` flagged-packet records: counted in the flag
    /// counts, not listed.
    pub flagged_not_listed: u64,
}

/// The records of a finished capture.
pub struct FlowRecords {
    pub conns: Records<Conn>,
    pub attempts: Records<Attempt>,
    pub flagged: Records<Flagged>,
    pub flag_counts: [u64; Flag::ALL.len()],
    pub segments: u64,
    pub memory: StateCounts,
}

fn key(seg: &Segment) -> (Endpoint, Endpoint) {
    if seg.src <= seg.dst {
        (seg.src, seg.dst)
    } else {
        (seg.dst, seg.src)
    }
}

/// Opens the record of a new connection incarnation; `prev` is the one before it on the
/// tuple.
fn new_conn(conns: &mut Records<Conn>, seg: &Segment, prev: Option<u32>) -> u32 {
    let id = conns.len() as u32;
    // The originator: the sender of a SYN, the receiver of a SYN-ACK; midstream, the
    // side on the higher port (clients use ephemeral ports).
    let src_is_client = if seg.flags.syn() {
        !seg.flags.ack()
    } else {
        match prev {
            Some(p) => conns[p as usize].client == seg.src,
            None => seg.src.port >= seg.dst.port,
        }
    };
    let (client, server) = if src_is_client {
        (seg.src, seg.dst)
    } else {
        (seg.dst, seg.src)
    };
    let predecessor = prev.map(|p| {
        let pc = &conns[p as usize];
        Predecessor {
            conn: p,
            since_last_packet_ns: seg.ts - pc.last.ts,
            since_close_ns: pc.closed.map(|c| seg.ts - c.ts),
            state: pc.conn_state(),
        }
    });
    conns.push(Conn {
        id,
        client,
        server,
        first: Pkt::of(seg),
        last: Pkt::of(seg),
        closed: None,
        packets: [0; 2],
        bytes: [0; 2],
        state: ConnState::OTH,
        history: History::default(),
        predecessor,
        attempt: None,
        last_tsval: [None; 2],
        seen: Seen::default(),
    });
    id
}

impl Flows {
    pub fn new() -> Flows {
        Flows::default()
    }

    /// A table holding live state for at most `max_connections` 4-tuples (beyond it the
    /// least recently active tenth is evicted, and counted), and at most `max_records`
    /// connection records and as many flagged-packet records.
    pub fn with_limits(max_connections: usize, max_records: usize) -> Flows {
        Flows {
            max_live: max_connections.max(10),
            max_records: max_records.max(1),
            ..Flows::default()
        }
    }

    fn records_max(&self) -> usize {
        if self.max_records == 0 {
            DEFAULT_MAX_RECORDS
        } else {
            self.max_records
        }
    }

    /// Whether another connection record can be opened; marks where the cap was reached.
    fn room_for_conn(&mut self, seg: &Segment) -> bool {
        if self.conns.len() < self.records_max() {
            return true;
        }
        self.memory.record_cap_frame.get_or_insert(seg.frame);
        false
    }

    /// Evicts the least recently active tenth of the 4-tuples (at least one).
    fn evict_oldest(&mut self) {
        let mut last: Vec<i64> = self.live.values().map(|l| l.last_ts).collect();
        let k = last.len() / 10;
        let (_, &mut cut, _) = last.select_nth_unstable(k);
        let before = self.live.len();
        self.live.retain(|_, l| l.last_ts > cut);
        self.memory.evicted += (before - self.live.len()) as u64;
    }

    /// Adds one segment; returns its findings, or [`SkipReason::RecordCap`] when the
    /// segment would start a connection past `max_records` (it is then not analysed).
    pub fn push(&mut self, seg: &Segment) -> Result<Flags, SkipReason> {
        let k = key(seg);
        let mut flags = Flags::default();
        self.segments += 1;

        let every = if self.sweep_every == 0 {
            SWEEP_EVERY
        } else {
            self.sweep_every
        };
        if self.segments >= self.next_sweep {
            self.sweep(seg.ts);
            // Amortised: the next sweep comes after at least as many segments as the table
            // has tuples, so sweeping visits at most one tuple per segment on average.
            self.next_sweep = self.segments + every.max(self.live.len() as u64);
        }
        let max = if self.max_live == 0 {
            DEFAULT_MAX_CONNECTIONS
        } else {
            self.max_live
        };
        // At a limit, a tuple not in the table needs room first (a second lookup, only
        // then).
        if (self.live.len() >= max || self.conns.len() >= self.records_max())
            && !self.live.contains_key(&k)
        {
            if !self.room_for_conn(seg) {
                self.segments -= 1;
                return Err(SkipReason::RecordCap);
            }
            if self.live.len() >= max {
                self.evict_oldest();
            }
        }
        let records_max = self.records_max();
        // One lookup per segment: the entry, then the records beside it.
        let (live, conn_id) = match self.live.entry(k) {
            Entry::Occupied(mut e) => {
                let live = e.get_mut();
                let conn = &self.conns[live.conn as usize];
                let dir = if seg.src == conn.client {
                    Dir::Orig
                } else {
                    Dir::Resp
                };
                if matches!(live.state, TupleState::Quiet(_)) && !seg.flags.syn() {
                    self.memory.revived += 1;
                }
                if live.analysis().starts_new_stream(dir, seg) {
                    if self.conns.len() >= records_max {
                        // The tuple's old incarnation is over, and its new one gets no
                        // record: its packets are skipped from here on.
                        self.memory.record_cap_frame.get_or_insert(seg.frame);
                        e.remove();
                        self.segments -= 1;
                        return Err(SkipReason::RecordCap);
                    }
                    flags.set(Flag::ReusedPorts);
                    live.conn = new_conn(&mut self.conns, seg, Some(live.conn));
                    live.state = TupleState::Active(Box::default());
                }
                let id = live.conn;
                (e.into_mut(), id)
            }
            Entry::Vacant(e) => {
                let id = new_conn(&mut self.conns, seg, None);
                let live = e.insert(Live {
                    conn: id,
                    last_ts: seg.ts,
                    state: TupleState::Active(Box::default()),
                });
                (live, id)
            }
        };
        let conn = &self.conns[conn_id as usize];
        let dir = if seg.src == conn.client {
            Dir::Orig
        } else {
            Dir::Resp
        };
        flags.0 |= live.analysis().analyze(dir, seg).0;
        live.last_ts = seg.ts;

        self.handshake(conn_id, dir, seg, &mut flags);
        let conn = &mut self.conns[conn_id as usize];
        // Counters and Zeek history.
        let d = dir as usize;
        conn.packets[d] += 1;
        conn.bytes[d] += seg.payload_len as u64;
        conn.last = Pkt::of(seg);
        if let Some((tsval, _)) = seg.opts.ts {
            conn.last_tsval[d] = Some(tsval);
        }
        let up = |c: u8| {
            if dir == Dir::Orig {
                c.to_ascii_uppercase()
            } else {
                c
            }
        };
        let f = seg.flags;
        if f.syn() {
            conn.history.push(if f.ack() { up(b'h') } else { up(b's') });
        }
        if f.fin() {
            conn.history.push(up(b'f'));
            conn.seen.fin[d] = true;
            conn.closed.get_or_insert(Pkt::of(seg));
        }
        // A RST answering a stale ACK is part of the handshake, not an abort.
        if f.rst() && !flags.has(Flag::RstStaleReply) {
            conn.history.push(up(b'r'));
            conn.seen.rst[d] = true;
            conn.closed.get_or_insert(Pkt::of(seg));
        }
        if seg.payload_len > 0 {
            conn.history.push(up(b'd'));
        } else if f.ack() && !f.syn() && !f.fin() && !f.rst() {
            conn.history.push(up(b'a'));
        }
        if flags.has(Flag::Retransmission) {
            conn.history.push(up(b't'));
        }
        if flags.has(Flag::ZeroWindow) {
            conn.history.push(up(b'w'));
        }

        if !flags.is_empty() {
            for fl in flags.iter() {
                self.flag_counts[fl as usize] += 1;
            }
            if self.flagged.len() < self.records_max() {
                self.flagged.push(Flagged {
                    frame: seg.frame,
                    ts: seg.ts,
                    conn: conn_id,
                    flags,
                });
            } else {
                self.memory.flagged_not_listed += 1;
            }
        }
        Ok(flags)
    }

    /// The handshake timeline: SYN tries, SYN-ACK, stale ACKs, RST classes.
    fn handshake(&mut self, conn_id: u32, dir: Dir, seg: &Segment, flags: &mut Flags) {
        let f = seg.flags;
        let conn = &mut self.conns[conn_id as usize];
        match dir {
            Dir::Orig if f.syn() && !f.ack() => {
                conn.seen.syn = true;
                // Same ISN as the attempt this incarnation is working on: a retry. (A SYN
                // with another ISN has already started a new incarnation.)
                let current = conn.attempt;
                match current.filter(|&a| self.attempts[a as usize].isn == seg.seq) {
                    Some(a) => {
                        let att = &mut self.attempts[a as usize];
                        let last = att.syns.last().expect("an attempt has a SYN");
                        let gap = seg.ts - last.pkt.ts;
                        let tsval = seg.opts.ts.map(|t| t.0);
                        let same_packet = match tsval {
                            Some(v) => last.tsval == Some(v),
                            None => last.ip_id == seg.ip_id,
                        };
                        if same_packet && (0..COPY_WINDOW_NS).contains(&gap) {
                            att.copies += 1;
                            return;
                        }
                        let after_reset = att.stale_ack.is_some() || att.stale_rst.is_some();
                        let class = GapClass::of(gap, last.gap_ns, after_reset);
                        att.syns.push(SynTry {
                            pkt: Pkt::of(seg),
                            tsval,
                            ip_id: seg.ip_id,
                            gap_ns: Some(gap),
                            gap_class: Some(class),
                        });
                        flags.set(Flag::SynRetry);
                        self.conns[conn_id as usize].attempt = Some(a);
                    }
                    None => {
                        let id = self.attempts.len() as u32;
                        self.attempts.push(Attempt {
                            id,
                            client: seg.src,
                            server: seg.dst,
                            isn: seg.seq,
                            mss: seg.opts.mss,
                            wscale: seg.opts.wscale,
                            sack_perm: seg.opts.sack_perm,
                            opt_layout: seg.opts.layout,
                            ip_id: seg.ip_id,
                            ttl: seg.ttl,
                            syns: smallvec::smallvec![SynTry {
                                pkt: Pkt::of(seg),
                                tsval: seg.opts.ts.map(|t| t.0),
                                ip_id: seg.ip_id,
                                gap_ns: None,
                                gap_class: None,
                            }],
                            copies: 0,
                            synack: None,
                            server_isn: None,
                            synack_tsval: None,
                            first_ack: None,
                            stale_ack: None,
                            stale_ack_number: None,
                            stale_acks: 0,
                            last_stale_ack: None,
                            stale_rst: None,
                            refused: None,
                            setup_ns: None,
                            outcome: Outcome::NoAnswer,
                            conn: conn_id,
                        });
                        self.conns[conn_id as usize].attempt = Some(id);
                    }
                }
            }
            Dir::Resp if f.syn() && f.ack() => {
                conn.seen.synack = true;
                if let Some(a) = conn.attempt {
                    let att = &mut self.attempts[a as usize];
                    if seg.ack == att.isn + 1 && att.synack.is_none() {
                        att.synack = Some(Pkt::of(seg));
                        att.server_isn = Some(seg.seq);
                        att.synack_tsval = seg.opts.ts.map(|t| t.0);
                        att.setup_ns = Some(seg.ts - att.first_syn().ts);
                        att.outcome = Outcome::Established;
                    }
                }
            }
            Dir::Resp if f.rst() => {
                let att = conn.attempt.map(|a| &mut self.attempts[a as usize]);
                match att {
                    Some(att) if att.synack.is_none() && seg.ack == att.isn + 1 => {
                        flags.set(Flag::RstRefused);
                        att.refused.get_or_insert(Pkt::of(seg));
                        att.outcome = Outcome::Refused;
                    }
                    _ if conn.seen.established => flags.set(Flag::RstAbort),
                    _ => flags.set(Flag::RstOther),
                }
            }
            Dir::Resp if f.ack() && !f.syn() => {
                // An ACK answering our SYN that does not acknowledge ISN + 1: the peer's
                // socket is acknowledging something older.
                if let Some(a) = conn.attempt {
                    let att = &mut self.attempts[a as usize];
                    if att.synack.is_none()
                        && seg.ack != att.isn + 1
                        && att.outcome != Outcome::Refused
                    {
                        flags.set(Flag::StaleAck);
                        att.stale_acks += 1;
                        att.last_stale_ack = Some(seg.ack);
                        if att.stale_ack.is_none() {
                            att.stale_ack = Some(Pkt::of(seg));
                            att.stale_ack_number = Some(seg.ack);
                        }
                    }
                }
            }
            Dir::Orig if f.rst() => {
                let att = conn.attempt.map(|a| &mut self.attempts[a as usize]);
                match att {
                    Some(att) if att.synack.is_none() && att.last_stale_ack == Some(seg.seq) => {
                        flags.set(Flag::RstStaleReply);
                        att.stale_rst.get_or_insert(Pkt::of(seg));
                        if att.outcome == Outcome::NoAnswer {
                            att.outcome = Outcome::Reset;
                        }
                    }
                    _ if conn.seen.established => flags.set(Flag::RstAbort),
                    Some(att) if att.synack.is_none() => {
                        flags.set(Flag::RstOther);
                        if att.outcome == Outcome::NoAnswer {
                            att.outcome = Outcome::Reset;
                        }
                    }
                    _ => flags.set(Flag::RstOther),
                }
            }
            Dir::Orig if f.ack() && !f.syn() => {
                if let Some(a) = conn.attempt {
                    let att = &mut self.attempts[a as usize];
                    if att.synack.is_some() && att.first_ack.is_none() {
                        att.first_ack = Some(Pkt::of(seg));
                        conn.seen.established = true;
                    }
                } else if conn.seen.synack {
                    conn.seen.established = true;
                }
            }
            _ => {}
        }
        if f.rst() && dir == Dir::Resp && !flags.has(Flag::RstRefused) {
            // A responder RST after the handshake completed is an abort even when the
            // originator's ACK was not captured.
            let conn = &self.conns[conn_id as usize];
            if conn.seen.synack && flags.has(Flag::RstOther) {
                flags.0 &= !(1 << Flag::RstOther as u8);
                flags.set(Flag::RstAbort);
            }
        }
    }

    /// Drops the classifier state of connections that have gone quiet, and forgets tuples
    /// unused for 8 hours. `now` is the capture time of the current segment.
    fn sweep(&mut self, now: i64) {
        let conns = &self.conns;
        let mut active = 0;
        let mut m = self.memory;
        self.live.retain(|_, live| {
            let idle = now - live.last_ts;
            if idle > FORGET_NS {
                m.forgotten += 1;
                return false;
            }
            if let TupleState::Active(a) = &live.state {
                // The record is read only for a connection quiet long enough to matter.
                let closed = || conns[live.conn as usize].closed.is_some();
                if idle > IDLE_NS || (idle > CLOSED_IDLE_NS && closed()) {
                    live.state = TupleState::Quiet(a.base_seqs());
                    m.quieted += 1;
                } else {
                    active += 1;
                }
            }
            true
        });
        m.peak_active = m.peak_active.max(active);
        self.memory = m;
    }

    /// Finishes the capture: computes every connection's state and hands over the records.
    pub fn finish(mut self) -> FlowRecords {
        for c in self.conns.iter_mut() {
            c.state = c.conn_state();
        }
        FlowRecords {
            conns: self.conns,
            attempts: self.attempts,
            flagged: self.flagged,
            flag_counts: self.flag_counts,
            segments: self.segments,
            memory: self.memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{TcpFlags, TcpOpts, Tunnel};

    const S: i64 = 1_000_000_000;

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: std::net::IpAddr::from([10, 0, 0, last]),
            port,
        }
    }

    fn seg(
        frame: u64,
        ts: i64,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
    ) -> Segment {
        Segment {
            frame,
            ts,
            iface: 0,
            src,
            dst,
            seq: Seq(seq),
            ack: Seq(ack),
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: 0,
            ip_id: frame as u16,
            ttl: 64,
            opts: TcpOpts::default(),
            tunnel: Tunnel::None,
            truncated: false,
        }
    }

    /// Millions of SYNs from distinct tuples (a SYN flood) keep the live table under its
    /// cap, evicting the least recently active and counting them.
    #[test]
    fn test_syn_flood_live_state_capped() {
        let s = ep(2, 80);
        let mut f = Flows::with_limits(100, DEFAULT_MAX_RECORDS);
        for i in 0..1000u32 {
            let c = Endpoint {
                ip: std::net::IpAddr::from([10, 1, (i >> 8) as u8, i as u8]),
                port: 1024 + i as u16,
            };
            f.push(&seg(
                i as u64 + 1,
                i as i64 * 1000,
                c,
                s,
                i,
                0,
                TcpFlags::SYN,
            ))
            .unwrap();
            assert!(f.live.len() <= 100);
        }
        assert!(f.memory.evicted >= 900, "{:?}", f.memory);
        let rec = f.finish();
        assert_eq!(rec.conns.len(), 1000, "every connection is still reported");
    }

    /// A closed connection's state is dropped once quiet; a late packet rebuilds it (and
    /// is counted), and a SYN with a new ISN on the tuple is still reuse, with its
    /// predecessor named.
    #[test]
    fn test_quiet_connection_state_dropped_reuse_still_seen() {
        let (c, s, other) = (ep(1, 40000), ep(2, 80), ep(3, 50000));
        let (syn, ack, fin) = (TcpFlags::SYN, TcpFlags::ACK, TcpFlags::FIN);
        let mut f = Flows {
            sweep_every: 4,
            ..Flows::default()
        };
        f.push(&seg(1, 0, c, s, 100, 0, syn)).unwrap();
        f.push(&seg(2, 1000, s, c, 500, 101, syn | ack)).unwrap();
        f.push(&seg(3, 2000, c, s, 101, 501, ack)).unwrap();
        f.push(&seg(4, 3000, s, c, 501, 101, fin | ack)).unwrap();
        f.push(&seg(5, 4000, c, s, 101, 502, fin | ack)).unwrap();
        f.push(&seg(6, 5000, s, c, 502, 102, ack)).unwrap();
        // Other traffic 70 s later: the sweep sees the first connection closed and quiet.
        for i in 0..4 {
            f.push(&seg(
                7 + i,
                70 * S + i as i64,
                other,
                s,
                7 + i as u32,
                0,
                ack,
            ))
            .unwrap();
        }
        assert_eq!(f.memory.quieted, 1);
        // A late ACK of the old connection: state rebuilt, counted.
        f.push(&seg(11, 71 * S, c, s, 102, 503, ack)).unwrap();
        assert_eq!(f.memory.revived, 1);
        // A new connection on the tuple: reuse, as Wireshark would flag it.
        let flags = f.push(&seg(12, 72 * S, c, s, 9000, 0, syn)).unwrap();
        assert!(flags.has(Flag::ReusedPorts));
        let rec = f.finish();
        let last = rec.conns.last().unwrap();
        let p = last.predecessor.unwrap();
        assert_eq!(p.conn, 0);
        assert_eq!(p.since_close_ns, Some(72 * S - 3000));
    }

    /// Past `max_records` connection records, a segment that would start a connection is
    /// skipped and counted, the connections already recorded go on to their end, and a
    /// new incarnation on a recorded tuple is skipped with the rest of its packets.
    #[test]
    fn test_record_cap_skips_new_connections_follows_old_ones() {
        let s = ep(2, 80);
        let (syn, ack) = (TcpFlags::SYN, TcpFlags::ACK);
        let mut f = Flows::with_limits(DEFAULT_MAX_CONNECTIONS, 3);
        let client = |i: u16| ep(1, 40000 + i);
        for i in 0..3u16 {
            f.push(&seg(u64::from(i) + 1, 10, client(i), s, 100, 0, syn))
                .unwrap();
        }
        assert_eq!(f.memory.record_cap_frame, None);
        // A fourth connection: no room.
        assert_eq!(
            f.push(&seg(4, 20, client(3), s, 100, 0, syn)),
            Err(SkipReason::RecordCap)
        );
        assert_eq!(f.memory.record_cap_frame, Some(4));
        // The first three are still followed: SYN-ACK and ACK.
        f.push(&seg(5, 30, s, client(0), 500, 101, syn | ack))
            .unwrap();
        f.push(&seg(6, 40, client(0), s, 101, 501, ack)).unwrap();
        // Its later packets are skipped too (the tuple has no record).
        assert_eq!(
            f.push(&seg(7, 50, s, client(3), 700, 101, syn | ack)),
            Err(SkipReason::RecordCap)
        );
        // A new ISN on a recorded tuple would open a fourth record: skipped, and so is
        // what follows on that tuple.
        assert_eq!(
            f.push(&seg(8, 60, client(1), s, 9000, 0, syn)),
            Err(SkipReason::RecordCap)
        );
        assert_eq!(
            f.push(&seg(9, 70, s, client(1), 800, 9001, syn | ack)),
            Err(SkipReason::RecordCap)
        );
        let rec = f.finish();
        assert_eq!(rec.conns.len(), 3);
        assert_eq!(rec.segments, 5, "analysed: 3 SYNs, the SYN-ACK and the ACK");
        assert_eq!(rec.conns[0].state, ConnState::S1);
        assert_eq!(rec.memory.record_cap_frame, Some(4));
    }

    /// Flagged packets past the cap are counted in the flag counts, not listed.
    #[test]
    fn test_record_cap_flagged_packets_counted_not_listed() {
        let (c, s) = (ep(1, 40000), ep(2, 80));
        let mut f = Flows::with_limits(DEFAULT_MAX_CONNECTIONS, 2);
        // The same SYN five times: four retries, each flagged.
        for i in 0..5u64 {
            f.push(&seg(i + 1, i as i64 * S, c, s, 100, 0, TcpFlags::SYN))
                .unwrap();
        }
        let rec = f.finish();
        assert_eq!(rec.flagged.len(), 2);
        let flagged: u64 = rec.flagged.len() as u64 + rec.memory.flagged_not_listed;
        assert_eq!(rec.memory.flagged_not_listed, 2, "{:?}", rec.memory);
        assert_eq!(flagged, 4);
    }
}
