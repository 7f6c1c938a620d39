//! The flows' closed vocabularies: Zeek's connection states, how an attempt ended, the
//! classes of the gap before a re-sent SYN, and Zeek-style history letters.

use crate::units::codes;
use serde::Serialize;

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

/// Zeek-style history: each letter once per direction, in order of first appearance;
/// upper case from the originator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    letters: [u8; 16],
    len: u8,
}

impl History {
    pub(super) fn push(&mut self, letter: u8) {
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
