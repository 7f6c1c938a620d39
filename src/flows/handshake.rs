//! The handshake state machine of a connection incarnation: which attempt a SYN belongs
//! to (a new ISN starts one, the same ISN is a retry, the same packet again is a copy),
//! the SYN-ACK that sets it up, the stale ACK of an older connection, and what each RST
//! means. One `match` over (direction, control bits), one rule per arm.

use super::conn::{Attempt, Conn, Pkt, SynTry};
use super::vocab::{GapClass, Outcome};
use crate::classify::Dir;
use crate::decode::Segment;
use crate::flags::{Flag, Flags};
use crate::records::Records;
use crate::units::NS_PER_MS;

/// Retries closer than this to the previous SYN count as immediate.
const QUICK_RETRY_NS: i64 = 100 * NS_PER_MS;
/// The same SYN (same TSval, or same IP ID without timestamps) again within this is the
/// same packet captured twice (`tcpdump -i any` on several interfaces), not a retry.
const COPY_WINDOW_NS: i64 = NS_PER_MS;

impl GapClass {
    /// The class of a SYN re-sent `gap` after the previous one, which came `prev_gap`
    /// after its own predecessor; `after_reset`: a stale ACK or RST came before it.
    fn of(gap: i64, prev_gap: Option<i64>, after_reset: bool) -> GapClass {
        if gap < QUICK_RETRY_NS {
            return if after_reset {
                GapClass::AfterReset
            } else {
                GapClass::Immediate
            };
        }
        match prev_gap {
            None if (800 * NS_PER_MS..1_600 * NS_PER_MS).contains(&gap) => GapClass::InitialRto1s,
            None if (2_500 * NS_PER_MS..3_600 * NS_PER_MS).contains(&gap) => GapClass::InitialRto3s,
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
            Some(_) if (800 * NS_PER_MS..1_600 * NS_PER_MS).contains(&gap) => {
                GapClass::InitialRto1s
            }
            Some(_) if (2_500 * NS_PER_MS..3_600 * NS_PER_MS).contains(&gap) => {
                GapClass::InitialRto3s
            }
            _ => GapClass::Other,
        }
    }
}

/// One segment of connection `conn_id` through the handshake: it adds a SYN try or a new
/// attempt, times the SYN-ACK, records stale ACKs, and classes RSTs, setting the flags the
/// handshake gives the segment.
pub(super) fn step(
    attempts: &mut Records<Attempt>,
    conns: &mut Records<Conn>,
    conn_id: u32,
    dir: Dir,
    seg: &Segment,
    flags: &mut Flags,
) {
    let f = seg.flags;
    let conn = &mut conns[conn_id as usize];
    match dir {
        // SYN: the same ISN again is a retry (or, within 1 ms with the same TSval/IP ID, a
        // copy of the same packet); another ISN starts a new attempt.
        Dir::Orig if f.syn() && !f.ack() => {
            conn.seen.syn = true;
            // Same ISN as the attempt this incarnation is working on: a retry. (A SYN
            // with another ISN has already started a new incarnation.)
            let current = conn.attempt;
            match current.filter(|&a| attempts[a as usize].isn == seg.seq) {
                Some(a) => {
                    let att = &mut attempts[a as usize];
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
                    let after_reset = att.stale_ack().is_some() || att.stale_rst().is_some();
                    let class = GapClass::of(gap, att.gap_ns(att.syns.len() - 1), after_reset);
                    att.syns.push(SynTry {
                        pkt: Pkt::of(seg),
                        tsval,
                        ip_id: seg.ip_id,
                        iface: seg.iface,
                        gap_class: Some(class),
                    });
                    flags.set(Flag::SynRetry);
                    conns[conn_id as usize].attempt = Some(a);
                }
                None => {
                    let id = attempts.len() as u32;
                    attempts.push(Attempt {
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
                            iface: seg.iface,
                            gap_class: None,
                        }],
                        copies: 0,
                        synack: None,
                        server_isn: None,
                        synack_tsval: None,
                        first_ack: None,
                        outcome: Outcome::NoAnswer,
                        conn: conn_id,
                        trouble: None,
                    });
                    conns[conn_id as usize].attempt = Some(id);
                }
            }
        }
        // SYN-ACK acknowledging ISN + 1: the attempt is set up, timed from its first SYN.
        Dir::Resp if f.syn() && f.ack() => {
            conn.seen.synack = true;
            if let Some(a) = conn.attempt {
                let att = &mut attempts[a as usize];
                if seg.ack == att.isn + 1 && att.synack.is_none() {
                    att.synack = Some(Pkt::of(seg));
                    att.server_isn = Some(seg.seq);
                    att.synack_tsval = seg.opts.ts.map(|t| t.0);
                    att.outcome = Outcome::Established;
                }
            }
        }
        // Responder RST: acknowledging ISN + 1 before any SYN-ACK it refuses the attempt;
        // after the handshake it aborts; otherwise it is some other RST.
        Dir::Resp if f.rst() => {
            let att = conn.attempt.map(|a| &mut attempts[a as usize]);
            match att {
                Some(att) if att.synack.is_none() && seg.ack == att.isn + 1 => {
                    flags.set(Flag::RstRefused);
                    att.trouble_mut().refused.get_or_insert(Pkt::of(seg));
                    att.outcome = Outcome::Refused;
                }
                _ if conn.seen.established => flags.set(Flag::RstAbort),
                _ => flags.set(Flag::RstOther),
            }
        }
        // Responder ACK before any SYN-ACK, not acknowledging ISN + 1: a stale ACK (a
        // TIME_WAIT socket acknowledging its old connection).
        Dir::Resp if f.ack() && !f.syn() => {
            // An ACK answering our SYN that does not acknowledge ISN + 1: the peer's
            // socket is acknowledging something older.
            if let Some(a) = conn.attempt {
                let att = &mut attempts[a as usize];
                if att.synack.is_none() && seg.ack != att.isn + 1 && att.outcome != Outcome::Refused
                {
                    flags.set(Flag::StaleAck);
                    let t = att.trouble_mut();
                    t.stale_acks += 1;
                    t.last_stale_ack = Some(seg.ack);
                    if t.stale_ack.is_none() {
                        t.stale_ack = Some(Pkt::of(seg));
                        t.stale_ack_number = Some(seg.ack);
                    }
                }
            }
        }
        // Originator RST with seq = the last stale ACK number: the reply to the stale ACK;
        // after the handshake an abort; before it, the originator giving up.
        Dir::Orig if f.rst() => {
            let att = conn.attempt.map(|a| &mut attempts[a as usize]);
            match att {
                Some(att)
                    if att.synack.is_none()
                        && att.trouble.as_ref().and_then(|t| t.last_stale_ack) == Some(seg.seq) =>
                {
                    flags.set(Flag::RstStaleReply);
                    att.trouble_mut().stale_rst.get_or_insert(Pkt::of(seg));
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
        // Originator ACK after the SYN-ACK: the handshake is complete.
        Dir::Orig if f.ack() && !f.syn() => {
            if let Some(a) = conn.attempt {
                let att = &mut attempts[a as usize];
                if att.synack.is_some() && att.first_ack.is_none() {
                    att.first_ack = Some(Pkt::of(seg));
                    conn.seen.established = true;
                }
            } else if conn.seen.synack {
                conn.seen.established = true;
            }
        }
        // Anything else (data, FIN, a SYN-ACK from the originator) leaves the handshake as is.
        _ => {}
    }
    if f.rst() && dir == Dir::Resp && !flags.has(Flag::RstRefused) {
        // A responder RST after the handshake completed is an abort even when the
        // originator's ACK was not captured.
        let conn = &conns[conn_id as usize];
        if conn.seen.synack && flags.has(Flag::RstOther) {
            flags.0 &= !(1 << Flag::RstOther as u8);
            flags.set(Flag::RstAbort);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use crate::flows::Flows;
    use crate::units::Endpoint;

    const MS: i64 = NS_PER_MS;
    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const RST: u8 = TcpFlags::RST;
    const ISN: u32 = 1_000;

    fn client() -> Endpoint {
        Endpoint {
            ip: "10.0.0.1".parse().unwrap(),
            port: 40_000,
        }
    }
    fn server() -> Endpoint {
        Endpoint {
            ip: "10.0.0.2".parse().unwrap(),
            port: 80,
        }
    }

    /// Feeds (from the client?, ms, seq, ack, flags) packets; returns the single attempt
    /// and each packet's flags.
    fn run(packets: &[(bool, i64, u32, u32, u8)]) -> (Attempt, Vec<Flags>) {
        let mut flows = Flows::new();
        let flags = packets
            .iter()
            .enumerate()
            .map(|(i, &(up, ms, seq, ack, f))| {
                let (src, dst) = if up {
                    (client(), server())
                } else {
                    (server(), client())
                };
                let seg = Segment::bare(i as u64 + 1, ms * MS, src, dst, seq, ack, f);
                flows.push(&seg).expect("analysed")
            })
            .collect();
        let rec = flows.finish();
        assert_eq!(rec.attempts.len(), 1, "one attempt");
        (rec.attempts.iter().next().unwrap().clone(), flags)
    }

    #[test]
    fn test_syn_synack_ack_is_set_up_from_the_first_syn() {
        let (a, _) = run(&[
            (true, 0, ISN, 0, SYN),
            (false, 3, 9, ISN + 1, SYNACK),
            (true, 4, ISN + 1, 10, ACK),
        ]);
        assert_eq!(a.outcome, Outcome::Established);
        assert_eq!(a.setup_ns(), Some(3 * MS));
        assert_eq!(a.first_ack.map(|p| p.frame()), Some(3));
        assert_eq!(a.tries(), 1);
    }

    #[test]
    fn test_same_syn_again_within_1ms_is_a_copy_not_a_try() {
        // `tcpdump -i any`: the same packet on two interfaces, same IP ID.
        let mut flows = Flows::new();
        let syn = Segment::bare(1, 0, client(), server(), ISN, 0, SYN);
        let copy = Segment {
            frame: 2,
            ts: MS / 2,
            ..syn
        };
        flows.push(&syn).unwrap();
        // Wireshark still calls it a retransmission; the handshake does not call it a retry.
        assert!(!flows.push(&copy).unwrap().has(Flag::SynRetry));
        let rec = flows.finish();
        let a = rec.attempts.iter().next().unwrap();
        assert_eq!((a.tries(), a.copies), (1, 1));
    }

    #[test]
    fn test_same_isn_after_1s_is_a_retry_timed_from_the_first_syn() {
        let (a, flags) = run(&[
            (true, 0, ISN, 0, SYN),
            (true, 1_000, ISN, 0, SYN),
            (false, 1_001, 9, ISN + 1, SYNACK),
        ]);
        assert!(flags[1].has(Flag::SynRetry));
        assert_eq!(a.syns[1].gap_class, Some(GapClass::InitialRto1s));
        assert_eq!(a.setup_ns(), Some(1_001 * MS));
    }

    #[test]
    fn test_retries_at_a_constant_gap_are_linear_and_doubling_ones_backoff() {
        let (linear, _) = run(&[
            (true, 0, ISN, 0, SYN),
            (true, 1_000, ISN, 0, SYN),
            (true, 2_000, ISN, 0, SYN),
        ]);
        assert_eq!(linear.syns[2].gap_class, Some(GapClass::Linear));
        let (backoff, _) = run(&[
            (true, 0, ISN, 0, SYN),
            (true, 1_000, ISN, 0, SYN),
            (true, 3_000, ISN, 0, SYN),
        ]);
        assert_eq!(backoff.syns[2].gap_class, Some(GapClass::Backoff));
        assert_eq!(backoff.outcome, Outcome::NoAnswer);
    }

    #[test]
    fn test_stale_ack_rst_and_quick_resend() {
        let (a, flags) = run(&[
            (true, 0, ISN, 0, SYN),
            (false, 1, 777, 5_555, ACK),
            (true, 2, 5_555, 0, RST),
            (true, 10, ISN, 0, SYN),
            (false, 11, 9, ISN + 1, SYNACK),
        ]);
        assert!(flags[1].has(Flag::StaleAck));
        assert!(flags[2].has(Flag::RstStaleReply));
        assert_eq!(a.stale_ack_number().map(|s| s.0), Some(5_555));
        assert_eq!(a.stale_rst().map(|p| p.frame()), Some(3));
        assert_eq!(a.syns[1].gap_class, Some(GapClass::AfterReset));
        assert_eq!(a.outcome, Outcome::Established);
    }

    #[test]
    fn test_rst_acking_the_syn_refuses_and_later_acks_are_not_stale() {
        let (a, flags) = run(&[
            (true, 0, ISN, 0, SYN),
            (false, 2, 0, ISN + 1, RST | ACK),
            (false, 3, 0, 4_242, ACK),
        ]);
        assert!(flags[1].has(Flag::RstRefused));
        assert!(!flags[2].has(Flag::StaleAck));
        assert_eq!(a.outcome, Outcome::Refused);
        assert_eq!(a.refused().map(|p| p.ts), Some(2 * MS));
    }

    #[test]
    fn test_originator_rst_before_any_answer_resets_the_attempt() {
        let (a, flags) = run(&[(true, 0, ISN, 0, SYN), (true, 5, ISN + 1, 0, RST)]);
        assert!(flags[1].has(Flag::RstOther));
        assert_eq!(a.outcome, Outcome::Reset);
    }
}
