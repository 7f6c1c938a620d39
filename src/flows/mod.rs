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
//!
//! This file is the connection table; [`handshake`] is the handshake state machine, `conn`
//! the records and `vocab` the code vocabularies.

mod conn;
mod handshake;
mod vocab;

use conn::Seen;
pub use conn::{Attempt, Conn, Flagged, Pkt, Predecessor, SynTry};
pub use vocab::{ConnState, GapClass, History, Outcome};

use crate::classify::{Analysis, Dir};
use crate::decode::Segment;
use crate::flags::{Flag, Flags};
use crate::records::Records;
use crate::skip::SkipReason;
use crate::units::Endpoint;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::hash_map::Entry;

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

        handshake::step(
            &mut self.attempts,
            &mut self.conns,
            conn_id,
            dir,
            seg,
            &mut flags,
        );
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
    use crate::decode::TcpFlags;

    const S: i64 = 1_000_000_000;

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: std::net::IpAddr::from([10, 0, 0, last]),
            port,
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
            f.push(&Segment::bare(
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
        f.push(&Segment::bare(1, 0, c, s, 100, 0, syn)).unwrap();
        f.push(&Segment::bare(2, 1000, s, c, 500, 101, syn | ack))
            .unwrap();
        f.push(&Segment::bare(3, 2000, c, s, 101, 501, ack))
            .unwrap();
        f.push(&Segment::bare(4, 3000, s, c, 501, 101, fin | ack))
            .unwrap();
        f.push(&Segment::bare(5, 4000, c, s, 101, 502, fin | ack))
            .unwrap();
        f.push(&Segment::bare(6, 5000, s, c, 502, 102, ack))
            .unwrap();
        // Other traffic 70 s later: the sweep sees the first connection closed and quiet.
        for i in 0..4 {
            f.push(&Segment::bare(
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
        f.push(&Segment::bare(11, 71 * S, c, s, 102, 503, ack))
            .unwrap();
        assert_eq!(f.memory.revived, 1);
        // A new connection on the tuple: reuse, as Wireshark would flag it.
        let flags = f
            .push(&Segment::bare(12, 72 * S, c, s, 9000, 0, syn))
            .unwrap();
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
            f.push(&Segment::bare(
                u64::from(i) + 1,
                10,
                client(i),
                s,
                100,
                0,
                syn,
            ))
            .unwrap();
        }
        assert_eq!(f.memory.record_cap_frame, None);
        // A fourth connection: no room.
        assert_eq!(
            f.push(&Segment::bare(4, 20, client(3), s, 100, 0, syn)),
            Err(SkipReason::RecordCap)
        );
        assert_eq!(f.memory.record_cap_frame, Some(4));
        // The first three are still followed: SYN-ACK and ACK.
        f.push(&Segment::bare(5, 30, s, client(0), 500, 101, syn | ack))
            .unwrap();
        f.push(&Segment::bare(6, 40, client(0), s, 101, 501, ack))
            .unwrap();
        // Its later packets are skipped too (the tuple has no record).
        assert_eq!(
            f.push(&Segment::bare(7, 50, s, client(3), 700, 101, syn | ack)),
            Err(SkipReason::RecordCap)
        );
        // A new ISN on a recorded tuple would open a fourth record: skipped, and so is
        // what follows on that tuple.
        assert_eq!(
            f.push(&Segment::bare(8, 60, client(1), s, 9000, 0, syn)),
            Err(SkipReason::RecordCap)
        );
        assert_eq!(
            f.push(&Segment::bare(9, 70, s, client(1), 800, 9001, syn | ack)),
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
            f.push(&Segment::bare(
                i + 1,
                i as i64 * S,
                c,
                s,
                100,
                0,
                TcpFlags::SYN,
            ))
            .unwrap();
        }
        let rec = f.finish();
        assert_eq!(rec.flagged.len(), 2);
        let flagged: u64 = rec.flagged.len() as u64 + rec.memory.flagged_not_listed;
        assert_eq!(rec.memory.flagged_not_listed, 2, "{:?}", rec.memory);
        assert_eq!(flagged, 4);
    }
}
