//! Per-packet findings: Wireshark's `tcp.analysis.*` conditions under their Wireshark
//! names, and the handshake findings pcapdiag adds where Wireshark is silent.
//!
//! A packet's findings are one [`Flags`] bit set; codes are stable snake_case.

use serde::{Serialize, Serializer};

/// One finding about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Flag {
    // --- Wireshark's tcp.analysis.* (same names, same conditions) ---
    ReusedPorts,
    AckLostSegment,
    LostSegment,
    Retransmission,
    SpuriousRetransmission,
    FastRetransmission,
    OutOfOrder,
    DuplicateAck,
    KeepAlive,
    KeepAliveAck,
    ZeroWindow,
    ZeroWindowProbe,
    ZeroWindowProbeAck,
    WindowUpdate,
    WindowFull,
    // --- pcapdiag's own ---
    /// A SYN with the ISN of an earlier SYN of the same attempt.
    SynRetry,
    /// An ACK answering a SYN whose ack is not ISN + 1: a TIME_WAIT (or otherwise stale)
    /// socket acknowledging its old connection.
    StaleAck,
    /// The originator's RST answering a stale ACK (seq = the stale ack number).
    RstStaleReply,
    /// RST answering a SYN: the port refused the connection.
    RstRefused,
    /// RST after the connection was established: an abort.
    RstAbort,
    /// Any other RST (before establishment, not answering a SYN).
    RstOther,
}

impl Flag {
    pub const ALL: [Flag; 21] = [
        Flag::ReusedPorts,
        Flag::AckLostSegment,
        Flag::LostSegment,
        Flag::Retransmission,
        Flag::SpuriousRetransmission,
        Flag::FastRetransmission,
        Flag::OutOfOrder,
        Flag::DuplicateAck,
        Flag::KeepAlive,
        Flag::KeepAliveAck,
        Flag::ZeroWindow,
        Flag::ZeroWindowProbe,
        Flag::ZeroWindowProbeAck,
        Flag::WindowUpdate,
        Flag::WindowFull,
        Flag::SynRetry,
        Flag::StaleAck,
        Flag::RstStaleReply,
        Flag::RstRefused,
        Flag::RstAbort,
        Flag::RstOther,
    ];

    /// Stable snake_case code; for Wireshark's flags, the field name after `tcp.analysis.`.
    pub fn code(self) -> &'static str {
        match self {
            Flag::ReusedPorts => "reused_ports",
            Flag::AckLostSegment => "ack_lost_segment",
            Flag::LostSegment => "lost_segment",
            Flag::Retransmission => "retransmission",
            Flag::SpuriousRetransmission => "spurious_retransmission",
            Flag::FastRetransmission => "fast_retransmission",
            Flag::OutOfOrder => "out_of_order",
            Flag::DuplicateAck => "duplicate_ack",
            Flag::KeepAlive => "keep_alive",
            Flag::KeepAliveAck => "keep_alive_ack",
            Flag::ZeroWindow => "zero_window",
            Flag::ZeroWindowProbe => "zero_window_probe",
            Flag::ZeroWindowProbeAck => "zero_window_probe_ack",
            Flag::WindowUpdate => "window_update",
            Flag::WindowFull => "window_full",
            Flag::SynRetry => "syn_retry",
            Flag::StaleAck => "stale_ack",
            Flag::RstStaleReply => "rst_stale_reply",
            Flag::RstRefused => "rst_refused",
            Flag::RstAbort => "rst_abort",
            Flag::RstOther => "rst_other",
        }
    }

    /// Whether Wireshark defines this flag (`tcp.analysis.<code>`).
    pub fn is_wireshark(self) -> bool {
        (self as u8) < Flag::SynRetry as u8
    }

    pub fn from_code(code: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.code() == code)
    }

    /// One line for humans.
    pub fn text(self) -> &'static str {
        match self {
            Flag::ReusedPorts => "SYN on a 4-tuple already used by an earlier connection",
            Flag::AckLostSegment => "ACKs data the other side was not seen to send",
            Flag::LostSegment => "sequence gap: previous segment(s) not captured",
            Flag::Retransmission => "data (or SYN/FIN) sent again",
            Flag::SpuriousRetransmission => "retransmission of data already acknowledged",
            Flag::FastRetransmission => "retransmission after duplicate ACKs",
            Flag::OutOfOrder => "segment arrived before an earlier one",
            Flag::DuplicateAck => "ACK repeating the previous one",
            Flag::KeepAlive => "TCP keep-alive",
            Flag::KeepAliveAck => "ACK of a keep-alive",
            Flag::ZeroWindow => "receive window is zero",
            Flag::ZeroWindowProbe => "probe of a zero window",
            Flag::ZeroWindowProbeAck => "ACK of a zero-window probe",
            Flag::WindowUpdate => "window opened, nothing else changed",
            Flag::WindowFull => "segment fills the peer's window",
            Flag::SynRetry => "SYN sent again with the same ISN",
            Flag::StaleAck => "SYN answered by an ACK of an older connection (TIME_WAIT)",
            Flag::RstStaleReply => "client reset answering a stale ACK",
            Flag::RstRefused => "connection refused (RST answering a SYN)",
            Flag::RstAbort => "established connection aborted by RST",
            Flag::RstOther => "RST before establishment",
        }
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

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
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
