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
use smallvec::SmallVec;

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
    /// `nextseq` of the unacknowledged segments, newest last (inline: a short connection's
    /// few never take an allocation of their own).
    unacked: SmallVec<[u32; 4]>,
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
            unacked: SmallVec::new(),
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
            f.unacked.push(nextseq);
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
            peer.retain(|n| (ack.wrapping_sub(*n) as i32) < 0);
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

#[cfg(test)]
mod tests {
    //! Sequences of segments through one connection's [`Analysis`], grouped by situation.
    //! Each case states the rule it checks with its section of
    //! `docs/wireshark-tcp-analysis.md`.
    //!
    //! Fixtures: the client (`C`) starts at ISN 1000, the server (`S`) at ISN 5000; windows
    //! are 1000 (raw), payloads 100 bytes unless said otherwise. A fixture segment's `ts`
    //! holds the gap since the previous packet (100 ms unless `.after(..)` says otherwise);
    //! [`run`] turns it into absolute time.

    use super::*;
    use crate::decode::{TcpOpts, Tunnel};
    use crate::flags::Flag::*;
    use crate::units::Endpoint;
    use Dir::{Orig as C, Resp as S};
    use std::net::{IpAddr, Ipv4Addr};

    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    /// Absolute time of the (virtual) packet before the first one: any non-zero instant,
    /// since Wireshark reads a zero SYN time as "no SYN seen".
    const T0: i64 = 1_700_000_000 * 1_000_000_000;
    const GAP: i64 = 100 * MS;

    fn seg(flags: u8, seq: u32, ack: u32) -> Segment {
        let ep = |last: u8, port: u16| Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            port,
        };
        Segment {
            frame: 0,
            ts: GAP,
            iface: 0,
            src: ep(1, 40000),
            dst: ep(2, 80),
            seq: Seq(seq),
            ack: Seq(ack),
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: 0,
            ip_id: 0,
            ttl: 64,
            opts: TcpOpts::default(),
            tunnel: Tunnel::None,
            truncated: false,
        }
    }
    /// A pure SYN (ack field 0).
    fn syn(seq: u32) -> Segment {
        seg(TcpFlags::SYN, seq, 0)
    }
    fn synack(seq: u32, ack: u32) -> Segment {
        seg(TcpFlags::SYN | TcpFlags::ACK, seq, ack)
    }
    fn ack(seq: u32, ack: u32) -> Segment {
        seg(TcpFlags::ACK, seq, ack)
    }
    /// `len` bytes of data with PSH+ACK.
    fn data(seq: u32, ack: u32, len: u32) -> Segment {
        seg(TcpFlags::PSH | TcpFlags::ACK, seq, ack).len(len)
    }
    fn fin(seq: u32, ack: u32) -> Segment {
        seg(TcpFlags::FIN | TcpFlags::ACK, seq, ack)
    }
    /// A bare RST (no ACK), window 0 as stacks send it.
    fn rst(seq: u32) -> Segment {
        seg(TcpFlags::RST, seq, 0).win(0)
    }

    trait With {
        fn len(self, n: u32) -> Self;
        fn win(self, w: u16) -> Self;
        fn ws(self, shift: u8) -> Self;
        /// Sent this long after the previous packet (may be negative).
        fn after(self, gap: i64) -> Self;
        fn flags(self, f: u8) -> Self;
    }
    impl With for Segment {
        fn len(mut self, n: u32) -> Self {
            self.payload_len = n;
            self
        }
        fn win(mut self, w: u16) -> Self {
            self.window = w;
            self
        }
        fn ws(mut self, shift: u8) -> Self {
            self.opts.wscale = Some(shift);
            self
        }
        fn after(mut self, gap: i64) -> Self {
            self.ts = gap;
            self
        }
        fn flags(mut self, f: u8) -> Self {
            self.flags = TcpFlags(f);
            self
        }
    }

    /// Feeds the packets to `a` as [`crate::flows`] does (a pure SYN with a new ISN starts a
    /// fresh incarnation flagged `reused_ports`, §4.3) and returns each packet's flags.
    fn run_on(a: &mut Analysis, pkts: &[(Dir, Segment)]) -> Vec<Vec<Flag>> {
        let mut now = T0;
        pkts.iter()
            .map(|&(dir, mut s)| {
                now += s.ts;
                s.ts = now;
                let mut f = Flags::default();
                if a.starts_new_stream(dir, &s) {
                    *a = Analysis::default();
                    f.set(ReusedPorts);
                }
                f.0 |= a.analyze(dir, &s).0;
                f.iter().collect()
            })
            .collect()
    }
    fn run(pkts: &[(Dir, Segment)]) -> Vec<Vec<Flag>> {
        run_on(&mut Analysis::default(), pkts)
    }

    /// SYN, SYN-ACK, ACK with an initial RTT of `rtt` (the SYN 100 ms after T0).
    fn handshake_rtt(rtt: i64) -> Vec<(Dir, Segment)> {
        vec![
            (C, syn(1000)),
            (S, synack(5000, 1001).after(rtt / 2)),
            (C, ack(1001, 5001).after(rtt - rtt / 2)),
        ]
    }
    /// The handshake with a 1 ms initial RTT: a resend 100 ms later is never out of order.
    fn handshake() -> Vec<(Dir, Segment)> {
        handshake_rtt(MS)
    }
    /// `then` after `hs`, checking that the handshake itself is unflagged; the flags of `then`.
    fn after_handshake(
        a: &mut Analysis,
        hs: Vec<(Dir, Segment)>,
        then: &[(Dir, Segment)],
    ) -> Vec<Vec<Flag>> {
        let n = hs.len();
        let all = run_on(a, &[hs, then.to_vec()].concat());
        assert!(all[..n].iter().all(Vec::is_empty), "handshake: {all:?}");
        all[n..].to_vec()
    }
    /// `then` after [`handshake`].
    fn established(then: &[(Dir, Segment)]) -> Vec<Vec<Flag>> {
        after_handshake(&mut Analysis::default(), handshake(), then)
    }

    /// Compares per-packet flags, each expected list in any order.
    #[track_caller]
    fn check(got: Vec<Vec<Flag>>, want: &[&[Flag]]) {
        let want: Vec<Vec<Flag>> = want
            .iter()
            .map(|w| {
                let mut w = w.to_vec();
                w.sort_by_key(|&f| f as u8);
                w
            })
            .collect();
        assert_eq!(got, want);
    }

    // --- handshake ---

    #[test]
    fn test_handshake_clean_exchange_has_no_flags() {
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (C, ack(1001, 5101)),
            (C, data(1001, 5101, 50)),
            (S, ack(5101, 1051)),
            (C, fin(1051, 5101)),
            (S, fin(5101, 1052)),
            (C, ack(1052, 5102)),
        ]);
        check(got, &[&[], &[], &[], &[], &[], &[], &[]]);
    }

    #[test]
    fn test_handshake_syn_retransmitted_same_isn() {
        // §4.3/Q12: the same ISN rewinds nextseq to ISN+1, so the SYN is behind it: 5.12.
        let got = run(&[(C, syn(1000)), (C, syn(1000).after(1000 * MS))]);
        check(got, &[&[], &[Retransmission]]);
    }

    #[test]
    fn test_handshake_syn_retransmitted_quickly_not_out_of_order() {
        // Q12: a bare SYN ends at nextseq (ISN+1), so even within 3 ms it is not OOO.
        let got = run(&[(C, syn(1000)), (C, syn(1000).after(MS))]);
        check(got, &[&[], &[Retransmission]]);
    }

    #[test]
    fn test_handshake_synack_retransmitted_same_isn() {
        // §4.3: a SYN-ACK with the base ISN is left to 5.12 (retransmission).
        let got = run(&[
            (C, syn(1000)),
            (S, synack(5000, 1001)),
            (S, synack(5000, 1001).after(1000 * MS)),
        ]);
        check(got, &[&[], &[], &[Retransmission]]);
    }

    #[test]
    fn test_synack_new_isn_reused_ports_same_stream() {
        // §4.3: a SYN-ACK with a new ISN is flagged but keeps the stream and its state, so
        // it also lands beyond nextseq (5.3).
        let mut a = Analysis::default();
        let got = run_on(
            &mut a,
            &[
                (C, syn(1000)),
                (S, synack(5000, 1001)),
                (S, synack(7000, 1001)),
            ],
        );
        check(got, &[&[], &[], &[ReusedPorts, LostSegment]]);
        assert_eq!(a.base_seqs(), [Some(1000), Some(7000)]);
    }

    #[test]
    fn test_handshake_syn_ack_field_counts_as_lastack_quirk() {
        // Q9/5.16: lastack is the raw ack field, ACK flag or not; a SYN carrying garbage
        // there makes the peer's data "already acknowledged" (5.12 spurious).
        let got = run(&[
            (C, seg(TcpFlags::SYN, 1000, 9000)),
            (S, data(5001, 1001, 100)),
        ]);
        check(got, &[&[], &[SpuriousRetransmission, Retransmission]]);
    }

    // --- reused ports: when a new stream starts ---

    #[test]
    fn test_starts_new_stream_only_on_pure_syn_new_isn() {
        // §4.3: only a pure SYN (FIN/RST/PSH ignored) whose seq differs from the sender's
        // base_seq splits the stream; FIN, RST, a SYN-ACK or time never do.
        let mut a = Analysis::default();
        run_on(
            &mut a,
            &[
                handshake(),
                vec![
                    (C, fin(1001, 5001)),
                    (S, fin(5001, 1002)),
                    (C, ack(1002, 5002)),
                ],
            ]
            .concat(),
        );
        assert!(a.starts_new_stream(C, &syn(2000)));
        assert!(a.starts_new_stream(C, &syn(2000).flags(TcpFlags::SYN | TcpFlags::FIN)));
        assert!(!a.starts_new_stream(C, &syn(1000)));
        assert!(!a.starts_new_stream(S, &synack(9000, 2001)));
        assert!(!a.starts_new_stream(C, &ack(2000, 5002)));
        assert!(!a.starts_new_stream(C, &rst(2000)));
        // No base_seq in that direction yet: a first SYN never splits.
        assert!(!Analysis::default().starts_new_stream(C, &syn(1)));
    }

    #[test]
    fn test_starts_new_stream_base_seq_from_peer_ack() {
        // §4.4: the peer's first ACK sets this direction's base_seq (ack-1), so even this
        // side's first SYN can split the stream.
        let mut a = Analysis::default();
        run_on(&mut a, &[(C, ack(1001, 5001))]);
        assert_eq!(a.base_seqs(), [Some(1000), Some(5000)]);
        assert!(a.starts_new_stream(S, &syn(6000)));
        assert!(!a.starts_new_stream(S, &syn(5000)));
    }

    #[test]
    fn test_reused_ports_new_stream_starts_fresh() {
        // §4.3: the split creates a fresh conversation: the new SYN-ACK is neither reused
        // nor lost, although its ISN is far from the old stream's.
        let got = run(&[
            handshake(),
            vec![
                (C, fin(1001, 5001)),
                (S, fin(5001, 1002)),
                (C, ack(1002, 5002)),
                (C, syn(2000)),
                (S, synack(8000, 2001)),
                (C, ack(2001, 8001)),
            ],
        ]
        .concat());
        check(
            got[3..].to_vec(),
            &[&[], &[], &[], &[ReusedPorts], &[], &[]],
        );
    }

    #[test]
    fn test_resumed_keeps_base_seqs_for_reuse() {
        // Dropped state keeps base_seq, so a later SYN is still judged as §4.3 would.
        let a = Analysis::resumed([Some(1000), Some(5000)]);
        assert!(a.starts_new_stream(C, &syn(2000)));
        assert!(!a.starts_new_stream(C, &syn(1000)));
    }

    // --- established: ACKs and windows ---

    #[test]
    fn test_established_duplicate_ack_after_data() {
        // 5.9: no data, same window, seq and ack as the previous segment; counted (5.10).
        let mut a = Analysis::default();
        let got = after_handshake(
            &mut a,
            handshake(),
            &[
                (S, data(5001, 1001, 100)),
                (C, ack(1001, 5101)),
                (C, ack(1001, 5101)),
                (C, ack(1001, 5101)),
            ],
        );
        check(got, &[&[], &[], &[DuplicateAck], &[DuplicateAck]]);
        assert_eq!(a.half[C as usize].dupacknum, 2);
    }

    #[test]
    fn test_established_same_ack_new_window_is_window_update() {
        // 5.5 vs 5.9 (Q13): a changed window makes it an update, the repeat a dup ACK.
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (C, ack(1001, 5101)),
            (C, ack(1001, 5101).win(2000)),
            (C, ack(1001, 5101).win(2000)),
        ]);
        check(got, &[&[], &[], &[WindowUpdate], &[DuplicateAck]]);
    }

    #[test]
    fn test_established_duplicate_ack_without_ack_flag() {
        // 5.9: the ACK flag is not required; the ack field is compared as is.
        let got = established(&[(C, seg(0, 1001, 5001))]);
        check(got, &[&[DuplicateAck]]);
    }

    #[test]
    fn test_first_packet_never_duplicate_ack() {
        // §5 notes: a flow's window starts at 0xFFFFFFFF, so its first packet repeats nothing.
        check(run(&[(C, ack(1001, 5001))]), &[&[]]);
    }

    #[test]
    fn test_window_update_first_packet_seq_zero_quirk() {
        // §5 notes: with nextseq and lastack unset (0), a first packet with seq 0, ack 0 and
        // a window "changes" only the window.
        check(run(&[(C, ack(0, 0))]), &[&[WindowUpdate]]);
    }

    // --- established: gaps and unseen segments ---

    #[test]
    fn test_established_lost_segment_then_ack_lost_segment() {
        // 5.3: data beyond nextseq; 5.11: its ACK covers the gap the capture missed, which
        // moves maxseqtobeacked up to nextseq.
        let got = established(&[(S, data(5101, 1001, 100)), (C, ack(1001, 5201))]);
        check(got, &[&[LostSegment], &[AckLostSegment]]);
    }

    #[test]
    fn test_established_rst_beyond_nextseq_not_lost_segment() {
        // 5.3: RSTs are never checked for gaps; 5.11 needs the ACK flag.
        check(established(&[(C, rst(1501))]), &[&[]]);
    }

    #[test]
    fn test_ack_lost_segment_when_ack_beyond_seen_data() {
        // 5.11 else-branch: nothing unseen below nextseq, but the ack is beyond it.
        let got = established(&[(S, data(5001, 1001, 100)), (C, ack(1001, 5201))]);
        check(got, &[&[], &[AckLostSegment]]);
    }

    #[test]
    fn test_ack_lost_segment_sets_dupacknum_quirk() {
        // Q1 (5.11): the data sender's dupacknum becomes 0xFFFFFFFF: (a) a further ack
        // beyond is not flagged, (b) the sender's next dup ACK is number 1.
        let mut a = Analysis::default();
        let got = after_handshake(
            &mut a,
            handshake(),
            &[
                (S, data(5001, 1001, 100)),
                (C, ack(1001, 5201)),
                (C, ack(1001, 5301)),
            ],
        );
        check(got, &[&[], &[AckLostSegment], &[]]);
        assert_eq!(a.half[S as usize].dupacknum, u32::MAX);
        let got = run_on(&mut a, &[(S, ack(5101, 1001))]);
        check(got, &[&[DuplicateAck]]);
        assert_eq!(a.half[S as usize].dupacknum, 1);
    }

    #[test]
    fn test_ack_lost_segment_makes_quick_resend_fast_quirk() {
        // Q1(c): with dupacknum 0xFFFFFFFF, the `>= 2` of 5.12 passes: a resend of the peer's
        // last ack within 20 ms is "fast" without any duplicate ACK.
        let got = run(&[
            (S, ack(5001, 1100)),
            (C, data(1000, 5001, 100).after(MS)),
            (S, ack(5001, 1500).after(MS)),
            (S, data(5001, 1500, 100).after(MS)),
            (S, data(5001, 1500, 100).after(MS)),
        ]);
        check(
            got,
            &[
                &[],
                &[SpuriousRetransmission, Retransmission],
                &[AckLostSegment],
                &[],
                &[FastRetransmission, Retransmission],
            ],
        );
    }

    #[test]
    fn test_nextseq_zero_is_unset_quirk() {
        // Q7: a nextseq that wraps to exactly 0 reads as "unset": neither the resend nor
        // the gap after it is noticed.
        let got = run(&[
            (C, data(0xFFFF_FF9C, 1, 100)),
            (C, data(0xFFFF_FF9C, 1, 100)),
            (C, data(50, 1, 10)),
        ]);
        check(got, &[&[], &[], &[]]);
    }

    // --- retransmissions ---

    #[test]
    fn test_established_retransmission_after_rto() {
        // 5.12: behind nextseq, not acknowledged, not within the OOO threshold.
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (S, data(5001, 1001, 100).after(200 * MS)),
        ]);
        check(got, &[&[], &[Retransmission]]);
    }

    #[test]
    fn test_established_spurious_retransmission_of_acked_data() {
        // 5.12 spurious: the peer already acknowledged everything in the segment.
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (C, ack(1001, 5101)),
            (S, data(5001, 1001, 100)),
        ]);
        check(got, &[&[], &[], &[SpuriousRetransmission, Retransmission]]);
    }

    #[test]
    fn test_midstream_start_spurious_retransmission() {
        // Q2: spurious does not need seq_not_advanced: new data the peer already acked (we
        // missed the original) is spurious, even as this flow's first packet.
        let got = run(&[(S, ack(5001, 1100)), (C, data(1000, 5001, 100))]);
        check(got, &[&[], &[SpuriousRetransmission, Retransmission]]);
    }

    #[test]
    fn test_spurious_needs_nonzero_peer_lastack_quirk() {
        // Q9: the SYN's ack field 0 leaves the peer's lastack "unset", so data that ends
        // before 0 (mod 2^32) is not spurious.
        let got = run(&[(C, syn(1000)), (S, data(0xFFFF_FF00, 1001, 16))]);
        check(got, &[&[], &[]]);
    }

    #[test]
    fn test_closing_fin_retransmitted_after_ack_not_spurious() {
        // Q5: a FIN without payload enters 5.12 but can never be spurious (seglen > 0).
        let got = established(&[
            (C, fin(1001, 5001)),
            (S, ack(5001, 1002)),
            (C, fin(1001, 5001)),
        ]);
        check(got, &[&[], &[], &[Retransmission]]);
    }

    #[test]
    fn test_rst_retransmission_only_with_payload() {
        // Q5: a RST without payload never enters 5.12; one with payload does.
        let rst_ack = TcpFlags::RST | TcpFlags::ACK;
        let got = established(&[
            (C, data(1001, 5001, 100)),
            (C, seg(rst_ack, 1001, 5001)),
            (C, seg(rst_ack, 1001, 5001).len(10)),
        ]);
        check(got, &[&[], &[], &[Retransmission]]);
    }

    #[test]
    fn test_established_segment_from_nextseq_minus_one_not_retransmission() {
        // 5.12: more than one byte starting one before nextseq (after a probe byte) adds
        // new data: not a retransmission.
        let got = established(&[(C, data(1001, 5001, 1)), (C, data(1001, 5001, 100))]);
        check(got, &[&[], &[]]);
    }

    #[test]
    fn test_fin_with_10000_unacked_segments_does_not_count_quirk() {
        // Q6 (5.13): past 10 000 unacked segments a FIN is not recorded, so it does not
        // advance nextseq and its resend is not a retransmission.
        let mut pkts = handshake();
        let mut seq = 1001u32;
        for _ in 0..MAX_UNACKED {
            pkts.push((C, data(seq, 5001, 10).after(US)));
            seq += 10;
        }
        let mut a = Analysis::default();
        run_on(&mut a, &pkts);
        assert_eq!(a.half[C as usize].unacked.len(), MAX_UNACKED);
        let got = run_on(&mut a, &[(C, fin(seq, 5001)), (C, fin(seq, 5001))]);
        check(got, &[&[], &[]]);
        assert_eq!(a.half[C as usize].nextseq, seq);
        // Once the peer acks, the list empties and a FIN counts again.
        let got = run_on(
            &mut a,
            &[
                (S, ack(5001, seq)),
                (C, fin(seq, 5001)),
                (C, fin(seq, 5001)),
            ],
        );
        check(got, &[&[], &[], &[Retransmission]]);
    }

    // --- fast retransmission ---

    #[test]
    fn test_fast_retransmission_after_two_dupacks() {
        // 5.12: >= 2 dup ACKs from the peer, seq == their ack, within 20 ms of the last.
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (S, data(5101, 1001, 100)),
            (C, ack(1001, 5001)),
            (C, ack(1001, 5001)),
            (S, data(5001, 1001, 100).after(5 * MS)),
        ]);
        check(
            got,
            &[
                &[],
                &[],
                &[DuplicateAck],
                &[DuplicateAck],
                &[FastRetransmission, Retransmission],
            ],
        );
    }

    #[test]
    fn test_fast_retransmission_only_within_20ms() {
        // 5.12: 25 ms after the last dup ACK it is a plain retransmission.
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (S, data(5101, 1001, 100)),
            (C, ack(1001, 5001)),
            (C, ack(1001, 5001)),
            (S, data(5001, 1001, 100).after(25 * MS)),
        ]);
        check(got[4..].to_vec(), &[&[Retransmission]]);
    }

    #[test]
    fn test_fast_retransmission_precedes_out_of_order() {
        // §2 tcp.fastrt_supersedes_ooo: 5 ms < iRTT 50 ms would be OOO, but fast wins.
        let got = after_handshake(
            &mut Analysis::default(),
            handshake_rtt(50 * MS),
            &[
                (S, data(5001, 1001, 100)),
                (S, data(5101, 1001, 100)),
                (C, ack(1001, 5001)),
                (C, ack(1001, 5001)),
                (S, data(5001, 1001, 100).after(5 * MS)),
            ],
        );
        check(got[4..].to_vec(), &[&[FastRetransmission, Retransmission]]);
    }

    // --- out of order ---

    #[test]
    fn test_out_of_order_within_initial_rtt() {
        // 5.12/Q4: behind nextseq, within the iRTT (SYN -> first ACK) of the highest segment.
        let got = after_handshake(
            &mut Analysis::default(),
            handshake_rtt(50 * MS),
            &[
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after(10 * MS)),
            ],
        );
        check(got, &[&[LostSegment], &[OutOfOrder]]);
    }

    #[test]
    fn test_out_of_order_after_initial_rtt_is_retransmission() {
        // 5.12: past the iRTT the same segment is a retransmission.
        let got = after_handshake(
            &mut Analysis::default(),
            handshake_rtt(50 * MS),
            &[
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after(60 * MS)),
            ],
        );
        check(got, &[&[LostSegment], &[Retransmission]]);
    }

    #[test]
    fn test_out_of_order_default_threshold_without_syn() {
        // Q4: no SYN seen, so no iRTT: the threshold is 3 ms.
        let swap = |gap| {
            run(&[
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after(gap)),
            ])
        };
        check(swap(2 * MS), &[&[], &[OutOfOrder]]);
        check(swap(4 * MS), &[&[], &[Retransmission]]);
    }

    #[test]
    fn test_out_of_order_not_when_segment_ends_at_nextseq() {
        // 5.12: a quick resend of the highest segment is a retransmission, not OOO.
        let got = after_handshake(
            &mut Analysis::default(),
            handshake_rtt(50 * MS),
            &[
                (S, data(5001, 1001, 100)),
                (S, data(5001, 1001, 100).after(10 * MS)),
            ],
        );
        check(got, &[&[], &[Retransmission]]);
    }

    #[test]
    fn test_out_of_order_negative_time_delta_quirk() {
        // Q3: a timestamp going backwards gives a huge u64 delta: never within a threshold.
        let got = after_handshake(
            &mut Analysis::default(),
            handshake_rtt(50 * MS),
            &[
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after(-10 * MS)),
            ],
        );
        check(got, &[&[LostSegment], &[Retransmission]]);
    }

    #[test]
    fn test_out_of_order_negative_initial_rtt_quirk() {
        // Q4: an ACK stamped before its SYN gives a negative iRTT, read as a huge threshold:
        // a resend 10 s later is still "out of order".
        let hs = vec![
            (C, syn(1000)),
            (S, synack(5000, 1001).after(MS)),
            (C, ack(1001, 5001).after(-5 * MS)),
        ];
        let got = after_handshake(
            &mut Analysis::default(),
            hs,
            &[
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after(10_000 * MS)),
            ],
        );
        check(got, &[&[LostSegment], &[OutOfOrder]]);
    }

    #[test]
    fn test_out_of_order_syn_at_time_zero_gives_no_initial_rtt_quirk() {
        // §4.6.2-3: a SYN stamped at the epoch reads as "no SYN seen", so no iRTT is taken
        // and the threshold stays 3 ms: a 10 ms swap is a retransmission.
        let hs = vec![
            (C, syn(1000).after(-T0)),
            (S, synack(5000, 1001).after(25 * MS)),
            (C, ack(1001, 5001).after(25 * MS)),
        ];
        let mut a = Analysis::default();
        let got = after_handshake(
            &mut a,
            hs,
            &[
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after(10 * MS)),
            ],
        );
        check(got, &[&[LostSegment], &[Retransmission]]);
        assert_eq!(a.ts_first_rtt, 0);
    }

    // --- keep-alive ---

    #[test]
    fn test_keep_alive_and_ack_repeated() {
        // 5.4: seq = nextseq-1 with 0 bytes; 5.7/Q10: every repeat of the peer's ACK after
        // it is a keep-alive ACK (not a dup ACK) until the keep-alive sender sends again.
        let got = established(&[
            (C, ack(1000, 5001)),
            (S, ack(5001, 1001)),
            (S, ack(5001, 1001)),
            (C, ack(1000, 5001)),
            (S, ack(5001, 1001)),
        ]);
        check(
            got,
            &[
                &[KeepAlive],
                &[KeepAliveAck],
                &[KeepAliveAck],
                &[KeepAlive],
                &[KeepAliveAck],
            ],
        );
    }

    #[test]
    fn test_keep_alive_one_byte_not_retransmission() {
        // 5.4 then 5.12: a 1-byte keep-alive skips the retransmission checks, spurious
        // included (Q2: keep-alive comes first).
        check(established(&[(C, data(1000, 5001, 1))]), &[&[KeepAlive]]);
    }

    #[test]
    fn test_keep_alive_at_capture_start_seq_ffffffff_quirk() {
        // 5.4: with nextseq unset (0), seq 0xFFFFFFFF is "nextseq - 1".
        check(run(&[(C, ack(0xFFFF_FFFF, 5001))]), &[&[KeepAlive]]);
    }

    // --- zero window ---

    #[test]
    fn test_zero_window_advertised_then_opened() {
        // 5.2: window 0 (not on SYN/FIN/RST); a repeat is not a dup ACK (window must be
        // non-zero, 5.9); reopening is a window update (5.5).
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (C, ack(1001, 5101).win(0)),
            (C, ack(1001, 5101).win(0)),
            (C, fin(1001, 5101).win(0)),
        ]);
        check(got, &[&[], &[ZeroWindow], &[ZeroWindow], &[]]);
        let got = established(&[(C, ack(1001, 5001).win(0)), (C, ack(1001, 5001).win(1000))]);
        check(got, &[&[ZeroWindow], &[WindowUpdate]]);
    }

    #[test]
    fn test_zero_window_probe_and_ack() {
        // 5.1: one byte at nextseq into a zero window; 5.8: the repeated zero-window ACK
        // after it (with 5.2's zero_window, Q13); Q11: the probe does not advance nextseq,
        // so the next probe is a probe again and the data after it is not a retransmission.
        let got = established(&[
            (S, data(5001, 1001, 100)),
            (C, ack(1001, 5101).win(0)),
            (S, data(5101, 1001, 1)),
            (C, ack(1001, 5101).win(0)),
            (S, data(5101, 1001, 1)),
            (C, ack(1001, 5101).win(0)),
            (C, ack(1001, 5101).win(1000)),
            (S, data(5101, 1001, 100)),
        ]);
        check(
            got,
            &[
                &[],
                &[ZeroWindow],
                &[ZeroWindowProbe],
                &[ZeroWindow, ZeroWindowProbeAck],
                &[ZeroWindowProbe],
                &[ZeroWindow, ZeroWindowProbeAck],
                &[WindowUpdate],
                &[],
            ],
        );
    }

    #[test]
    fn test_zero_window_probe_skips_zero_window_flag() {
        // Q11: 5.1 jumps past 5.2, so a probe advertising window 0 itself is only a probe.
        let got = established(&[(C, ack(1001, 5001).win(0)), (S, data(5001, 1001, 1).win(0))]);
        check(got, &[&[ZeroWindow], &[ZeroWindowProbe]]);
    }

    #[test]
    fn test_zero_window_with_keep_alive_both_flags() {
        // Q13: zero_window and keep_alive can co-occur.
        check(
            established(&[(C, ack(1000, 5001).win(0))]),
            &[&[ZeroWindow, KeepAlive]],
        );
    }

    // --- window full ---

    /// A handshake where both sides offer window scale `shift`; the client's ACK
    /// advertises `client_win` (raw).
    fn handshake_ws(shift: u8, client_win: u16) -> Vec<(Dir, Segment)> {
        vec![
            (C, syn(1000).win(64240).ws(shift)),
            (S, synack(5000, 1001).win(300).ws(shift).after(MS / 2)),
            (C, ack(1001, 5001).win(client_win).after(MS / 2)),
        ]
    }

    #[test]
    fn test_window_full_uses_receiver_scale_after_first_ack() {
        // 5.6: data reaching lastack + (window << scale) of the receiver, whose first
        // non-SYN ACK has been seen; 10 << 7 = 1280.
        let full = |len| {
            after_handshake(
                &mut Analysis::default(),
                handshake_ws(7, 10),
                &[(S, data(5001, 1001, len))],
            )
        };
        check(full(1280), &[&[WindowFull]]);
        check(full(10), &[&[]]);
    }

    #[test]
    fn test_window_full_unscaled_while_receiver_is_first_ack() {
        // 5.6/Q8: until the receiver sends a non-SYN ACK (is_first_ack), its SYN-ACK window
        // is taken unscaled: 300, not 300 << 7.
        let got = after_handshake(
            &mut Analysis::default(),
            handshake_ws(7, 10),
            &[(C, data(1001, 5001, 300))],
        );
        check(got, &[&[WindowFull]]);
    }

    #[test]
    fn test_window_full_no_scaling_when_synack_lacks_ws() {
        // §4.6.7: a SYN-ACK without the option turns scaling off for both sides (-2):
        // shift 0 even after the first ACK.
        let hs = vec![
            (C, syn(1000).ws(7)),
            (S, synack(5000, 1001).after(MS / 2)),
            (C, ack(1001, 5001).win(8).after(MS / 2)),
        ];
        let got = after_handshake(&mut Analysis::default(), hs, &[(S, data(5001, 1001, 8))]);
        check(got, &[&[WindowFull]]);
    }

    #[test]
    fn test_window_full_skipped_while_receiver_scale_unknown() {
        // Q8: no SYN seen, no option: the receiver's scale is unknown (-1), 5.6 is skipped.
        let got = run(&[(S, ack(5001, 1001).win(100)), (C, data(1001, 5001, 100))]);
        check(got, &[&[], &[]]);
    }

    #[test]
    fn test_window_full_scale_from_ws_option_on_any_packet_quirk() {
        // §4.6.5: a window scale option on any packet (here a mid-stream ACK) sets the
        // sender's scale, after that packet's own analysis; 10 << 3 = 80.
        let got = run(&[
            (S, ack(5001, 1001).win(10).ws(3)),
            (C, data(1001, 5001, 80)),
        ]);
        check(got, &[&[], &[WindowFull]]);
    }

    #[test]
    fn test_window_full_initial_peer_window_quirk() {
        // 5.6/§4.6.7: a SYN without the option sets the silent peer's scale to -2 while its
        // window is still the initial 0xFFFFFFFF and its lastack 0: data ending at
        // 0xFFFFFFFF "fills" it.
        let got = run(&[
            (C, syn(0xFFFF_FE00)),
            (C, data(0xFFFF_FE01, 0, 0x1FE).after(MS)),
        ]);
        check(got, &[&[], &[WindowFull]]);
    }

    #[test]
    fn test_window_full_never_on_fin() {
        // 5.6: SYN/FIN/RST segments are never window-full.
        let fin_data = seg(TcpFlags::FIN | TcpFlags::ACK, 1001, 5001).len(1000);
        check(established(&[(C, fin_data)]), &[&[]]);
        check(
            established(&[(C, data(1001, 5001, 1000))]),
            &[&[WindowFull]],
        );
    }
}
