//! The flows' records: a packet reference, an attempt with its SYN tries, a connection
//! incarnation, a flagged packet. Compact, kept for the report; no live state.

use super::vocab::{ConnState, GapClass, History, Outcome};
use crate::classify::Dir;
use crate::decode::Segment;
use crate::flags::Flags;
use crate::seq::Seq;
use crate::units::{Endpoint, Tuple};
use serde::Serialize;
use smallvec::SmallVec;
use std::num::NonZeroU64;

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
    pub(crate) fn of(seg: &Segment) -> Pkt {
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

/// One SYN of an attempt. The gap before it is its time less the previous try's
/// ([`Attempt::gap_ns`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynTry {
    pub pkt: Pkt,
    pub tsval: Option<u32>,
    pub ip_id: u16,
    /// The interface it was captured on ([`crate::decode::Segment::iface`]).
    pub iface: u32,
    pub gap_class: Option<GapClass>,
}

/// One client connection attempt: one ISN from one client 4-tuple.
///
/// Kept for every attempt of every capture, so compact (168 bytes): what only an attempt
/// that met a stale ACK or a RST has is boxed apart ([`Trouble`]), and what follows from
/// the packets (the setup time, the gaps between tries) is computed when asked.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub id: u32,
    pub client: Endpoint,
    pub server: Endpoint,
    pub isn: Seq,
    /// The SYN's TCP option layout and values (the first SYN's).
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
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
    pub outcome: Outcome,
    /// The connection incarnation this attempt belongs to (a same-ISN retry never leaves
    /// its incarnation: Wireshark 4.0 splits only on a new ISN).
    pub conn: u32,
    /// Stale ACKs and RSTs; none for nearly every attempt.
    pub(super) trouble: Option<Box<Trouble>>,
}

/// What an attempt answered by a stale ACK or a RST carries besides.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Trouble {
    pub(super) stale_ack: Option<Pkt>,
    pub(super) stale_ack_number: Option<Seq>,
    pub(super) stale_acks: u32,
    pub(super) last_stale_ack: Option<Seq>,
    pub(super) stale_rst: Option<Pkt>,
    pub(super) refused: Option<Pkt>,
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
    /// First SYN → SYN-ACK, nanoseconds.
    pub fn setup_ns(&self) -> Option<i64> {
        self.synack.map(|s| s.ts - self.first_syn().ts)
    }
    /// Time since the previous SYN try (absent on the first).
    pub fn gap_ns(&self, try_index: usize) -> Option<i64> {
        let prev = self.syns.get(try_index.checked_sub(1)?)?;
        Some(self.syns.get(try_index)?.pkt.ts - prev.pkt.ts)
    }
    /// The first stale ACK answering one of the SYNs.
    pub fn stale_ack(&self) -> Option<Pkt> {
        self.trouble.as_ref()?.stale_ack
    }
    /// The ack number that first stale ACK carried.
    pub fn stale_ack_number(&self) -> Option<Seq> {
        self.trouble.as_ref()?.stale_ack_number
    }
    /// Stale ACKs in all (a retried SYN can be mapped onto another stale tuple).
    pub fn stale_acks(&self) -> u32 {
        self.trouble.as_ref().map_or(0, |t| t.stale_acks)
    }
    /// The originator's RST after the stale ACK.
    pub fn stale_rst(&self) -> Option<Pkt> {
        self.trouble.as_ref()?.stale_rst
    }
    /// The responder's RST answering a SYN.
    pub fn refused(&self) -> Option<Pkt> {
        self.trouble.as_ref()?.refused
    }
    pub(super) fn trouble_mut(&mut self) -> &mut Trouble {
        self.trouble.get_or_insert_with(Box::default)
    }
    /// The delay this attempt suffered, the one definition every stage and renderer uses:
    /// its setup latency when answered; unanswered, the time from the first SYN to the
    /// refusing RST, or to the last SYN try.
    pub fn delay_ns(&self) -> i64 {
        match (self.setup_ns(), self.refused()) {
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

/// An attempt as the JSON report and `flows --json` have always written it: the fields
/// computed when asked written in their places.
impl Serialize for Attempt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Try {
            #[serde(flatten)]
            pkt: Pkt,
            tsval: Option<u32>,
            ip_id: u16,
            iface: u32,
            gap_ns: Option<i64>,
            gap_class: Option<GapClass>,
        }
        #[derive(Serialize)]
        struct Out<'a> {
            id: u32,
            client: Endpoint,
            server: Endpoint,
            isn: Seq,
            mss: Option<u16>,
            wscale: Option<u8>,
            sack_perm: bool,
            ip_id: u16,
            ttl: u8,
            syns: Tries<'a>,
            copies: u32,
            synack: Option<Pkt>,
            server_isn: Option<Seq>,
            synack_tsval: Option<u32>,
            first_ack: Option<Pkt>,
            stale_ack: Option<Pkt>,
            stale_ack_number: Option<Seq>,
            stale_acks: u32,
            stale_rst: Option<Pkt>,
            refused: Option<Pkt>,
            setup_ns: Option<i64>,
            outcome: Outcome,
            conn: u32,
        }
        struct Tries<'a>(&'a Attempt);
        impl Serialize for Tries<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let a = self.0;
                s.collect_seq(a.syns.iter().enumerate().map(|(i, t)| Try {
                    pkt: t.pkt,
                    tsval: t.tsval,
                    ip_id: t.ip_id,
                    iface: t.iface,
                    gap_ns: a.gap_ns(i),
                    gap_class: t.gap_class,
                }))
            }
        }
        Out {
            id: self.id,
            client: self.client,
            server: self.server,
            isn: self.isn,
            mss: self.mss,
            wscale: self.wscale,
            sack_perm: self.sack_perm,
            ip_id: self.ip_id,
            ttl: self.ttl,
            syns: Tries(self),
            copies: self.copies,
            synack: self.synack,
            server_isn: self.server_isn,
            synack_tsval: self.synack_tsval,
            first_ack: self.first_ack,
            stale_ack: self.stale_ack(),
            stale_ack_number: self.stale_ack_number(),
            stale_acks: self.stale_acks(),
            stale_rst: self.stale_rst(),
            refused: self.refused(),
            setup_ns: self.setup_ns(),
            outcome: self.outcome,
            conn: self.conn,
        }
        .serialize(s)
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
    pub(super) seen: Seen,
}

/// What the state summary needs to know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) syn: bool,
    pub(super) synack: bool,
    pub(super) established: bool,
    pub(super) fin: [bool; 2],
    pub(super) rst: [bool; 2],
}

impl Conn {
    /// The connection's tuple, originator first.
    pub fn tuple(&self) -> Tuple {
        Tuple::new(self.client, self.server)
    }
    pub(super) fn conn_state(&self) -> ConnState {
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
