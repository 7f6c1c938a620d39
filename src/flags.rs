//! Per-packet findings: Wireshark's `tcp.analysis.*` conditions under their Wireshark
//! names, and the handshake findings pcapdiag adds where Wireshark is silent.
//!
//! A packet's findings are one [`Flags`] bit set; codes are stable snake_case.

use crate::units::codes;
use serde::{Serialize, Serializer};

codes! {
    /// One finding about one packet.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[repr(u8)]
    pub enum Flag {
        // --- Wireshark's tcp.analysis.* (same names, same conditions) ---
        ReusedPorts = ("reused_ports", "SYN on a 4-tuple already used by an earlier connection"),
        AckLostSegment = ("ack_lost_segment", "ACKs data the other side was not seen to send"),
        LostSegment = ("lost_segment", "sequence gap: previous segment(s) not captured"),
        Retransmission = ("retransmission", "data (or SYN/FIN) sent again"),
        SpuriousRetransmission = ("spurious_retransmission", "retransmission of data already acknowledged"),
        FastRetransmission = ("fast_retransmission", "retransmission after duplicate ACKs"),
        OutOfOrder = ("out_of_order", "segment arrived before an earlier one"),
        DuplicateAck = ("duplicate_ack", "ACK repeating the previous one"),
        KeepAlive = ("keep_alive", "TCP keep-alive"),
        KeepAliveAck = ("keep_alive_ack", "ACK of a keep-alive"),
        ZeroWindow = ("zero_window", "receive window is zero"),
        ZeroWindowProbe = ("zero_window_probe", "probe of a zero window"),
        ZeroWindowProbeAck = ("zero_window_probe_ack", "ACK of a zero-window probe"),
        WindowUpdate = ("window_update", "window opened, nothing else changed"),
        WindowFull = ("window_full", "segment fills the peer's window"),
        // --- pcapdiag's own ---
        /// A SYN with the ISN of an earlier SYN of the same attempt.
        SynRetry = ("syn_retry", "SYN sent again with the same ISN"),
        /// An ACK answering a SYN whose ack is not ISN + 1: a TIME_WAIT (or otherwise stale)
        /// socket acknowledging its old connection.
        StaleAck = ("stale_ack", "SYN answered by an ACK of an older connection (TIME_WAIT)"),
        /// The originator's RST answering a stale ACK (seq = the stale ack number).
        RstStaleReply = ("rst_stale_reply", "client reset answering a stale ACK"),
        /// RST answering a SYN: the port refused the connection.
        RstRefused = ("rst_refused", "connection refused (RST answering a SYN)"),
        /// RST after the connection was established: an abort.
        RstAbort = ("rst_abort", "established connection aborted by RST"),
        /// Any other RST (before establishment, not answering a SYN).
        RstOther = ("rst_other", "RST before establishment"),
    }
}

impl Flag {
    /// Whether Wireshark defines this flag (`tcp.analysis.<code>`).
    pub fn is_wireshark(self) -> bool {
        (self as u8) < Flag::SynRetry as u8
    }
}

/// A set of [`Flag`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u32);

impl Flags {
    #[inline]
    pub fn set(&mut self, f: Flag) {
        self.0 |= 1 << f as u8;
    }
    #[inline]
    pub fn has(self, f: Flag) -> bool {
        self.0 & (1 << f as u8) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |&f| self.has(f))
    }
    /// Only the flags Wireshark defines.
    pub fn wireshark(self) -> Flags {
        Flags(self.0 & ((1 << Flag::SynRetry as u8) - 1))
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Flag::code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_all_in_discriminant_order_and_codes_round_trip() {
        for (i, f) in Flag::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Flag::from_code(f.code()), Some(*f));
        }
    }

    #[test]
    fn test_wireshark_mask() {
        let mut s = Flags::default();
        s.set(Flag::Retransmission);
        s.set(Flag::StaleAck);
        assert_eq!(
            s.wireshark().iter().collect::<Vec<_>>(),
            vec![Flag::Retransmission]
        );
        assert!(Flag::WindowFull.is_wireshark() && !Flag::SynRetry.is_wireshark());
    }
}
