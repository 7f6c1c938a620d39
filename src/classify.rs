//! Classify: Wireshark's per-packet TCP analysis (`tcp.analysis.*`), reimplemented.
//!
//! This follows `tcp_analyze_sequence_number()` and the surrounding steps of `dissect_tcp()`
//! in Wireshark 4.0's `packet-tcp.c`: the same per-direction state with the same sentinels
//! (0 means "unset" for `nextseq`, `maxseqtobeacked`, `lastack`), raw windows, the same
//! checks in the same order and the same `goto`s, down to its quirks (the numbers in
//! comments, §5.x, are the sections of `docs/wireshark-tcp-analysis.md`). Its flags are the
//! vocabulary SREs know, not ground truth: their blind spots (reuse has no notion of time,
//! the initial RTT is timed from the last SYN) are why [`flows`](crate::flows) adds its own
//! handshake findings.
//!
//! State is per connection incarnation (one Wireshark `tcp.stream`): two [`Half`]s.

use crate::decode::{Segment, TcpFlags};
use crate::flags::{Flag, Flags};
use crate::seq::Seq;
use std::collections::VecDeque;

/// Direction of a segment within its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the originator (the client).
    Orig = 0,
    /// From the responder (the server).
    Resp = 1,
}

impl Dir {
    pub fn other(self) -> Dir {
        match self {
            Dir::Orig => Dir::Resp,
            Dir::Resp => Dir::Orig,
        }
    }
}

/// Wireshark's fast-retransmission window after duplicate ACKs.
const FAST_RETRANS_NS: u64 = 20_000_000;
/// Wireshark's out-of-order threshold while the initial RTT is unknown.
const OOO_DEFAULT_NS: u64 = 3_000_000;
/// Wireshark stops recording unacknowledged segments past this many (`TCP_MAX_UNACKED_SEGMENTS`).
const MAX_UNACKED: usize = 10_000;
/// `win_scale` values as Wireshark keeps them.
const WS_UNKNOWN: i16 = -1;
const WS_NONE: i16 = -2;

/// One direction's state (Wireshark's `tcp_flow_t` with its sequence-analysis info).
#[derive(Clone, Debug)]
pub struct Half {
    base_seq: Option<u32>,
    /// Raw 16-bit window of the last segment; starts at 0xFFFFFFFF so that the first segment
    /// never repeats it.
    window: u32,
    win_scale: i16,
    is_first_ack: bool,
    lastsegmentflags: Flags,
    /// `nextseq` of the unacknowledged segments, newest last.
    unacked: VecDeque<u32>,
    lastack: u32,
    lastacktime: i64,
    /// Wireshark's `u32` counter, which it sets to -1 on an ACK of unseen data (§6 Q1).
    dupacknum: u32,
    nextseq: u32,
    maxseqtobeacked: u32,
    nextseqtime: i64,
}

impl Default for Half {
    fn default() -> Half {
        Half {
            base_seq: None,
            window: u32::MAX,
            win_scale: WS_UNKNOWN,
            is_first_ack: false,
            lastsegmentflags: Flags::default(),
            unacked: VecDeque::new(),
            lastack: 0,
            lastacktime: 0,
            dupacknum: 0,
            nextseq: 0,
            maxseqtobeacked: 0,
            nextseqtime: 0,
        }
    }
}

/// The analysis state of one connection incarnation (Wireshark's `struct tcp_analysis`).
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    half: [Half; 2],
    /// Time of the most recent pure SYN (0: none).
    ts_mru_syn: i64,
    /// Initial RTT, SYN → first non-SYN ACK (0: unknown).
    ts_first_rtt: i64,
}

/// `GT_SEQ(x, y)`.
#[inline]
fn gt(x: u32, y: u32) -> bool {
    Seq(x).gt(Seq(y))
}
/// `LT_SEQ(x, y)`.
#[inline]
fn lt(x: u32, y: u32) -> bool {
    Seq(x).lt(Seq(y))
}
/// `LE_SEQ(x, y)`.
#[inline]
fn le(x: u32, y: u32) -> bool {
    Seq(x).le(Seq(y))
}
/// Wireshark's time difference: a signed difference read as `u64`, so a negative one is huge.
#[inline]
fn since(now: i64, then: i64) -> u64 {
    now.wrapping_sub(then) as u64
}

impl Analysis {
    /// The base sequence number of each direction: all that [`Analysis::starts_new_stream`]
    /// needs once the connection is over.
    pub fn base_seqs(&self) -> [Option<u32>; 2] {
        [self.half[0].base_seq, self.half[1].base_seq]
    }

    /// Fresh state for a connection whose state was dropped, keeping its base sequence
    /// numbers so that a later SYN is judged as Wireshark would.
    pub fn resumed(base: [Option<u32>; 2]) -> Analysis {
        let mut a = Analysis::default();
        a.half[0].base_seq = base[0];
        a.half[1].base_seq = base[1];
        a
    }

    /// §4.3: a pure SYN whose sequence number differs from the one this direction started
    /// with starts a new stream ("TCP Port numbers reused"). Nothing else does in 4.0:
    /// not a FIN, not a RST, not time.
    pub fn starts_new_stream(&self, dir: Dir, seg: &Segment) -> bool {
        let pure_syn = seg.flags.0 & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN;
        pure_syn
            && self.half[dir as usize]
                .base_seq
                .is_some_and(|b| b != seg.seq.0)
    }

    /// Analyses one segment of this incarnation; returns Wireshark's flags for it.
    /// A new incarnation's first SYN gets `reused_ports` from the caller, not from here.
    pub fn analyze(&mut self, dir: Dir, seg: &Segment) -> Flags {
        let (fi, ri) = (dir as usize, dir.other() as usize);
        let flags = seg.flags.0;
        let (seq, ack, seglen, now) = (seg.seq.0, seg.ack.0, seg.payload_len, seg.ts);
        let window = seg.window as u32;
        let syn_ack = flags & (TcpFlags::SYN | TcpFlags::ACK);
        let sfr = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST;
        let mut ta = Flags::default();

        // §4.3: a retransmitted pure SYN rewinds nextseq; a SYN-ACK with a new ISN is
        // flagged reused but keeps its stream and state.
        if syn_ack == TcpFlags::SYN {
            let f = &mut self.half[fi];
            if f.base_seq == Some(seq) {
                f.nextseq = f.maxseqtobeacked;
            }
        } else if syn_ack == TcpFlags::SYN | TcpFlags::ACK {
            let f = &mut self.half[fi];
            if f.base_seq.is_some_and(|b| b != seq) {
                f.base_seq = Some(seq);
                ta.set(Flag::ReusedPorts);
            }
        }
        // §4.4: base sequence numbers (only whether they are set matters below).
        if self.half[fi].base_seq.is_none() {
            self.half[fi].base_seq = Some(if flags & TcpFlags::SYN != 0 {
                seq
            } else {
                seq.wrapping_sub(1)
            });
        }
        if self.half[ri].base_seq.is_none() && flags & TcpFlags::ACK != 0 {
            self.half[ri].base_seq = Some(ack.wrapping_sub(1));
        }

        // §5: the analysis proper.
        let (f, r) = (&self.half[fi], &self.half[ri]);
        'fwd: {
            // 5.1 zero window probe: one byte at the next expected seq into a zero window.
            if seglen == 1 && seq == f.nextseq && r.window == 0 {
                ta.set(Flag::ZeroWindowProbe);
                break 'fwd;
            }
            // 5.2 zero window.
            if window == 0 && flags & sfr == 0 {
                ta.set(Flag::ZeroWindow);
            }
            // 5.3 lost segment: beyond the next expected seq (not for RST).
            if f.nextseq != 0 && gt(seq, f.nextseq) && flags & TcpFlags::RST == 0 {
                ta.set(Flag::LostSegment);
            }
            // 5.4 keep-alive: 0 or 1 byte, one before the next expected seq.
            if (seglen == 0 || seglen == 1) && seq == f.nextseq.wrapping_sub(1) && flags & sfr == 0
            {
                ta.set(Flag::KeepAlive);
            }
            // 5.5 window update: no data, same seq/ack, a new non-zero window.
            if seglen == 0
                && window != 0
                && window != f.window
                && seq == f.nextseq
                && ack == f.lastack
                && flags & sfr == 0
            {
                ta.set(Flag::WindowUpdate);
            }
            // 5.6 window full: data reaching exactly the edge of the receiver's window.
            if seglen > 0 && r.win_scale != WS_UNKNOWN && flags & sfr == 0 {
                let shift = if r.is_first_ack || r.win_scale == WS_NONE {
                    0
                } else {
                    r.win_scale as u32
                };
                if seq.wrapping_add(seglen) == r.lastack.wrapping_add(r.window.wrapping_shl(shift))
                {
                    ta.set(Flag::WindowFull);
                }
            }
            let repeats = seglen == 0 && window == f.window && seq == f.nextseq && flags & sfr == 0;
            // 5.7 keep-alive ACK: repeats the previous ACK after the peer's keep-alive.
            if repeats && window != 0 && ack == f.lastack && r.lastsegmentflags.has(Flag::KeepAlive)
            {
                ta.set(Flag::KeepAliveAck);
                break 'fwd;
            }
            // 5.8 zero window probe ACK: repeats the zero window after the peer's probe.
            if repeats
                && window == 0
                && ack == f.lastack
                && r.lastsegmentflags.has(Flag::ZeroWindowProbe)
            {
                ta.set(Flag::ZeroWindowProbeAck);
                break 'fwd;
            }
            // 5.9 duplicate ACK: no data, same window, seq and ack as before.
            if repeats && window != 0 && ack == f.lastack {
                let f = &mut self.half[fi];
                f.dupacknum = if f.dupacknum == u32::MAX {
                    1
                } else {
                    f.dupacknum + 1
                };
                ta.set(Flag::DuplicateAck);
            }
        }
        // 5.10 finished_fwd: a changed ack value resets the duplicate count.
        if ack != self.half[fi].lastack {
            self.half[fi].dupacknum = 0;
        }

        // 5.11 ACKed unseen segment: acknowledges beyond what the peer was seen to send.
        let r = &mut self.half[ri];
        if r.maxseqtobeacked != 0 && gt(ack, r.maxseqtobeacked) && flags & TcpFlags::ACK != 0 {
            if lt(r.maxseqtobeacked, r.nextseq) {
                r.maxseqtobeacked = r.nextseq;
                ta.set(Flag::AckLostSegment);
            } else {
                if r.dupacknum == 0 {
                    ta.set(Flag::AckLostSegment);
                }
                r.dupacknum = u32::MAX;
            }
        }

        // 5.12 retransmission, in Wireshark's order: spurious, fast, out-of-order, plain.
        let (f, r) = (&self.half[fi], &self.half[ri]);
        if (seglen > 0 || flags & (TcpFlags::SYN | TcpFlags::FIN) != 0) && !ta.has(Flag::KeepAlive)
        {
            let mut not_advanced = f.nextseq != 0 && lt(seq, f.nextseq);
            // "The previous segment may have been a zero window probe."
            if seglen > 1 && f.nextseq.wrapping_sub(1) == seq {
                not_advanced = false;
            }
            let syn_fin = u32::from(flags & (TcpFlags::SYN | TcpFlags::FIN) != 0);
            let ooo_thres = if self.ts_first_rtt == 0 {
                OOO_DEFAULT_NS
            } else {
                self.ts_first_rtt as u64
            };
            // Wireshark shows `retransmission` on fast and spurious retransmissions too; so
            // do we, so that filtering on it finds the same packets.
            if seglen > 0 && r.lastack != 0 && le(seq.wrapping_add(seglen), r.lastack) {
                ta.set(Flag::SpuriousRetransmission);
                ta.set(Flag::Retransmission);
            } else if not_advanced
                && r.dupacknum >= 2
                && r.lastack == seq
                && since(now, r.lastacktime) < FAST_RETRANS_NS
            {
                ta.set(Flag::FastRetransmission);
                ta.set(Flag::Retransmission);
            } else if not_advanced
                && since(now, f.nextseqtime) < ooo_thres
                && f.nextseq != seq.wrapping_add(seglen).wrapping_add(syn_fin)
            {
                ta.set(Flag::OutOfOrder);
            } else if not_advanced {
                ta.set(Flag::Retransmission);
            }
        }

        // 5.13 record the segment; SYN and FIN count one only when recorded (§6 Q6).
        let f = &mut self.half[fi];
        let mut nextseq = seq.wrapping_add(seglen);
        if (seglen != 0 || flags & (TcpFlags::SYN | TcpFlags::FIN) != 0)
            && f.unacked.len() < MAX_UNACKED
        {
            if flags & (TcpFlags::SYN | TcpFlags::FIN) != 0 {
                nextseq = nextseq.wrapping_add(1);
            }
            f.unacked.push_back(nextseq);
        }
        let zwp = ta.has(Flag::ZeroWindowProbe);
        // 5.14 highest next sequence number.
        if (gt(nextseq, f.nextseq) || f.nextseq == 0) && !zwp {
            f.nextseq = nextseq;
            f.nextseqtime = now;
        }
        // 5.15 highest contiguous sequence number.
        if (seq == f.maxseqtobeacked || f.maxseqtobeacked == 0) && !zwp {
            f.maxseqtobeacked = f.nextseq;
        }
        // 5.16 what the next segments compare with.
        f.window = window;
        f.lastack = ack;
        f.lastacktime = now;
        f.lastsegmentflags = ta;
        // 5.17 drop what this segment acknowledges from the peer's unacked list.
        let peer = &mut self.half[ri].unacked;
        if !peer.is_empty() {
            peer.retain(|&n| (ack.wrapping_sub(n) as i32) < 0);
        }

        // §4.6 after the analysis: SYN time, initial RTT, window scaling.
        if flags & TcpFlags::SYN != 0 {
            if flags & TcpFlags::ACK == 0 {
                self.ts_mru_syn = now;
            }
            self.half[fi].is_first_ack = true;
        }
        if syn_ack == TcpFlags::ACK {
            if self.ts_mru_syn != 0 && self.ts_first_rtt == 0 {
                self.ts_first_rtt = now - self.ts_mru_syn;
            }
            self.half[fi].is_first_ack = false;
        }
        if let Some(ws) = seg.opts.wscale {
            self.half[fi].win_scale = ws.min(14) as i16;
        }
        if flags & TcpFlags::SYN != 0 {
            if self.half[fi].win_scale == WS_UNKNOWN {
                self.half[fi].win_scale = WS_NONE;
                self.half[ri].win_scale = WS_NONE;
            } else if flags & TcpFlags::ACK != 0 && self.half[ri].win_scale == WS_NONE {
                self.half[fi].win_scale = WS_NONE;
            }
        }
        ta
    }
}
