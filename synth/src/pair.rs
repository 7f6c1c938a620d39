//! Two captures of the same connections, one on each side of a NAT, with the truth of
//! every client connection attempt: the test bench of pairing, clock estimation and verdicts.
//!
//! Clients connect to `VIP:vport`; the NAT box DNATs each new connection to one of several
//! `RIP:rport` and masquerades its source to `SNATIP` with a port from a range (the client's
//! port if that SNAT tuple is free, else the next free one, as Linux does; with
//! [`PairConfig::random_snat`], a random one, as `--random-fully` does). The client
//! capture holds `CIP:cport <-> VIP:vport` on the client clock (the reference); the real
//! server (RS) capture holds `SNATIP:sport <-> RIP:rport` on the RS clock ([`RsClock`]).
//! [`PairScenario::node`] is that leg as the NAT box's own capture sees it (true clock),
//! which also holds the SYNs that left the box and were lost before the RS.
//! Either capture may end early: the RS capture's span is configured
//! ([`PairConfig::rs_capture`]), and a scripted [`PairKind::CaptureEnded`] stops both
//! while its SYN is unanswered; the truth then describes what the captures hold.
//! The NAT rewrites addresses and ports only and decrements the TTL: a segment's seq, ack,
//! options, TSval/TSecr, window and IP ID are the same in both files.
//!
//! Every SYN goes through one NAT table (entries held while the connection lives, then
//! `nat_timewait_ns`) and one RS socket table (TIME_WAIT held `rs_timewait_ns` after the RS
//! closes first), in time order. So a truth row's cause is what happened to its packets;
//! a scripted [`PairKind`] only builds the conditions that make it happen (a predecessor on
//! a tuple, a filled port range, a racing client) and steers the choices real systems make
//! at random (which RS, where the port search starts, which ISN/TSval a port hashes to).
//! Two knobs shape the background without a scripted cause: a client that recycles its
//! 4-tuples ([`PairConfig::reuse_ppm`]) and a drop rule unrelated to anything else
//! ([`PairConfig::first_syn_loss_ppm`]), the hard negatives of the causes that need a
//! base rate.
//! Invariants the tests pin: both sides of every packet agree except for addresses, ports
//! and TTL; RS times are client times plus the one-way delays, through the clock model;
//! each cause's evidence is in the captures; the same config gives the same bytes.

mod sim;
#[cfg(test)]
mod tests;

use super::CaptureFormat;
use super::frame::{Encap, TcpSpec, frame_into, linktype};
use super::scenario::{StaleResend, SynSchedule};
use super::writer::{PcapOptions, PcapWriter, PcapngWriter};
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// The RS clock as a function of true time (the client clock):
/// `rs = t + offset_ns + skew_ppb * (t - epoch) / 1e9 (+ step_ns once t >= at)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RsClock {
    pub offset_ns: i64,
    /// Drift in parts per billion, counted from the scenario's `start_ns`.
    pub skew_ppb: i64,
    /// `(at, step_ns)`: from true time `at` on, the RS clock reads `step_ns` more.
    pub step: Option<(u64, i64)>,
}

impl RsClock {
    /// The RS clock's reading at true time `t` (skew term rounded toward zero).
    pub fn rs_ns(&self, t: u64, epoch_ns: u64) -> u64 {
        let dt = i128::from(t) - i128::from(epoch_ns);
        let mut v = i128::from(t)
            + i128::from(self.offset_ns)
            + dt * i128::from(self.skew_ppb) / 1_000_000_000;
        if let Some((at, step)) = self.step
            && t >= at
        {
            v += i128::from(step);
        }
        v.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// RS clock minus client clock at true time `t`.
    pub fn offset_at(&self, t: u64, epoch_ns: u64) -> i64 {
        (i128::from(self.rs_ns(t, epoch_ns)) - i128::from(t)) as i64
    }
}

/// Which check of the RS's TIME_WAIT socket a colliding SYN failed (Linux
/// `tcp_timewait_state_process`): a SYN is accepted only if its TSval is newer than the old
/// connection's last one, or (without timestamps) its ISN is after the old `rcv_nxt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwCheck {
    IsnNotAfter,
    Paws,
}

impl TwCheck {
    pub fn code(self) -> &'static str {
        match self {
            TwCheck::IsnNotAfter => "isn_not_after",
            TwCheck::Paws => "paws",
        }
    }
}

/// What a scripted (or randomly drawn) attempt is built to suffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairKind {
    Ok,
    /// A predecessor on the same client 4-tuple closed 1–10 s earlier; the LB drops SYN#1.
    LbSynDropPortReuse,
    /// A predecessor from another client, closed by the RS 1–30 s earlier on the SNAT tuple
    /// this SYN is mapped to; with `again`, the re-sent SYN meets a second one.
    RsTimewaitCollision {
        resend: StaleResend,
        again: bool,
        /// `None`: paws when a timestamp client is available, else isn_not_after.
        check: Option<TwCheck>,
    },
    /// Every SNAT tuple toward one RS is held; SYN number `tries` is the first to pass.
    SnatPortExhaustion {
        tries: u8,
    },
    ConntrackInsertRace,
    /// The first `lost` SYNs are dropped before the RS: inside the NAT box, or (with
    /// [`PairConfig::syn_loss_after_nat_ppm`]) on the network after leaving it.
    SynLostBeforeRs {
        lost: u8,
    },
    SynackLostAfterRs,
    /// The RS answers this long after the SYN (200–950 ms).
    RsSlowSynack {
        delay_ms: u16,
    },
    RsRefused,
    /// A normal attempt placed before the RS capture starts.
    Unmatched,
    /// The last attempt of the run: its SYN is lost, and both captures end before its
    /// retry is due (300–900 ms after it); with `rs`, the RS capture ends first, else the
    /// client capture. Always the last entry of a script (it ends the captures).
    CaptureEnded {
        rs: bool,
    },
}

impl PairKind {
    /// The cause this kind is built to produce.
    pub fn cause(&self) -> TrueCause {
        match self {
            PairKind::Ok => TrueCause::Ok,
            PairKind::LbSynDropPortReuse => TrueCause::LbSynDropPortReuse,
            PairKind::RsTimewaitCollision { .. } => TrueCause::RsTimewaitCollision,
            PairKind::SnatPortExhaustion { .. } => TrueCause::SnatPortExhaustion,
            PairKind::ConntrackInsertRace => TrueCause::ConntrackInsertRace,
            PairKind::SynLostBeforeRs { .. } => TrueCause::SynLostBeforeRs,
            PairKind::SynackLostAfterRs => TrueCause::SynackLostAfterRs,
            PairKind::RsSlowSynack { .. } => TrueCause::RsSlowSynack,
            PairKind::RsRefused => TrueCause::RsRefused,
            PairKind::Unmatched => TrueCause::Unmatched,
            PairKind::CaptureEnded { .. } => TrueCause::CaptureEnded,
        }
    }
}

/// `code[:param...]`, the form [`PairKind::from_str`] reads.
impl fmt::Display for PairKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cause().code())?;
        match *self {
            PairKind::RsTimewaitCollision {
                resend,
                again,
                check,
            } => {
                let r = match resend {
                    StaleResend::Fast => "fast",
                    StaleResend::Slow => "slow",
                };
                write!(f, ":{r}")?;
                if again {
                    f.write_str(":again")?;
                }
                if let Some(c) = check {
                    write!(f, ":{}", c.code())?;
                }
                Ok(())
            }
            PairKind::SnatPortExhaustion { tries } => write!(f, ":{tries}"),
            PairKind::SynLostBeforeRs { lost } => write!(f, ":{lost}"),
            PairKind::RsSlowSynack { delay_ms } => write!(f, ":{delay_ms}"),
            PairKind::CaptureEnded { rs: true } => f.write_str(":rs"),
            _ => Ok(()),
        }
    }
}

/// Reads `code[:param...]`: `rs_timewait_collision[:fast|slow][:again][:paws|isn_not_after]`,
/// `snat_port_exhaustion[:TRIES]`, `syn_lost_before_rs[:LOST]`, `rs_slow_synack[:MS]`,
/// `capture_ended[:client|rs]` (which capture ends first).
impl FromStr for PairKind {
    type Err = String;

    fn from_str(s: &str) -> Result<PairKind, String> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let params: Vec<&str> = parts.collect();
        let one = |default: u64, lo: u64, hi: u64| -> Result<u64, String> {
            match params.as_slice() {
                [] => Ok(default),
                [p] => match p.parse::<u64>() {
                    Ok(v) if (lo..=hi).contains(&v) => Ok(v),
                    _ => Err(format!("{s}: parameter must be {lo}..={hi}")),
                },
                _ => Err(format!("{s}: too many parameters")),
            }
        };
        let none = |k: PairKind| {
            if params.is_empty() {
                Ok(k)
            } else {
                Err(format!("{name} takes no parameter"))
            }
        };
        match name {
            "ok" => none(PairKind::Ok),
            "lb_syn_drop_port_reuse" => none(PairKind::LbSynDropPortReuse),
            "conntrack_insert_race" => none(PairKind::ConntrackInsertRace),
            "synack_lost_after_rs" => none(PairKind::SynackLostAfterRs),
            "rs_refused" => none(PairKind::RsRefused),
            "unmatched" => none(PairKind::Unmatched),
            "rs_timewait_collision" => {
                let (mut resend, mut again, mut check) = (StaleResend::Fast, false, None);
                for p in &params {
                    match *p {
                        "fast" => resend = StaleResend::Fast,
                        "slow" => resend = StaleResend::Slow,
                        "again" => again = true,
                        "paws" => check = Some(TwCheck::Paws),
                        "isn_not_after" => check = Some(TwCheck::IsnNotAfter),
                        _ => return Err(format!("{s}: unknown parameter {p}")),
                    }
                }
                Ok(PairKind::RsTimewaitCollision {
                    resend,
                    again,
                    check,
                })
            }
            "snat_port_exhaustion" => Ok(PairKind::SnatPortExhaustion {
                tries: one(2, 2, 6)? as u8,
            }),
            "syn_lost_before_rs" => Ok(PairKind::SynLostBeforeRs {
                lost: one(1, 1, 5)? as u8,
            }),
            "rs_slow_synack" => Ok(PairKind::RsSlowSynack {
                delay_ms: one(300, 200, 950)? as u16,
            }),
            "capture_ended" => match params.as_slice() {
                [] | ["client"] => Ok(PairKind::CaptureEnded { rs: false }),
                ["rs"] => Ok(PairKind::CaptureEnded { rs: true }),
                _ => Err(format!("{s}: the parameter is client or rs")),
            },
            _ => Err(format!("unknown pair kind {name}")),
        }
    }
}

/// The true cause of an attempt's setup delay (the first thing that went wrong).
///
/// The same list, with the same codes, as pcapdiag's `verdict::Cause`, so a test compares
/// a verdict with the truth by code; pcapdiag's tests check that every code here is one
/// of its own. The generator never produces `Unexplained`. `Unmatched`: its SYNs reached
/// the RS outside the RS capture's span, whatever else happened. `CaptureEnded`: no answer
/// in the client capture, and a capture's last packet came before the client's next SYN
/// was due (its last visible SYN plus the gap before it, at least 1 s), whatever else
/// happened (it takes precedence over `Unmatched`, as the analyzer's rule does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrueCause {
    Ok,
    LbSynDropPortReuse,
    RsTimewaitCollision,
    SnatPortExhaustion,
    ConntrackInsertRace,
    SynLostBeforeRs,
    SynackLostAfterRs,
    RsSlowSynack,
    RsRefused,
    Unmatched,
    /// Slow, and neither capture shows why.
    Unexplained,
    CaptureEnded,
}

impl TrueCause {
    pub const ALL: [TrueCause; 12] = [
        TrueCause::Ok,
        TrueCause::LbSynDropPortReuse,
        TrueCause::RsTimewaitCollision,
        TrueCause::SnatPortExhaustion,
        TrueCause::ConntrackInsertRace,
        TrueCause::SynLostBeforeRs,
        TrueCause::SynackLostAfterRs,
        TrueCause::RsSlowSynack,
        TrueCause::RsRefused,
        TrueCause::Unmatched,
        TrueCause::Unexplained,
        TrueCause::CaptureEnded,
    ];

    /// Stable snake_case code, the same as pcapdiag's for its cause of that name.
    pub fn code(self) -> &'static str {
        match self {
            TrueCause::Ok => "ok",
            TrueCause::LbSynDropPortReuse => "lb_syn_drop_port_reuse",
            TrueCause::RsTimewaitCollision => "rs_timewait_collision",
            TrueCause::SnatPortExhaustion => "snat_port_exhaustion",
            TrueCause::ConntrackInsertRace => "conntrack_insert_race",
            TrueCause::SynLostBeforeRs => "syn_lost_before_rs",
            TrueCause::SynackLostAfterRs => "synack_lost_after_rs",
            TrueCause::RsSlowSynack => "rs_slow_synack",
            TrueCause::RsRefused => "rs_refused",
            TrueCause::Unmatched => "unmatched",
            TrueCause::Unexplained => "unexplained",
            TrueCause::CaptureEnded => "capture_ended",
        }
    }
}

/// Why an attempt exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Drawn by the random mix (its intent may be an anomaly).
    Background,
    /// An entry of [`PairConfig::script`].
    Script,
    /// The earlier connection a reuse or collision needs.
    Predecessor,
    /// A connection that fills the SNAT port range before an exhaustion.
    Filler,
    /// The other client of a conntrack insert race (the winner).
    RacePartner,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Background => "background",
            Role::Script => "script",
            Role::Predecessor => "predecessor",
            Role::Filler => "filler",
            Role::RacePartner => "race_partner",
        }
    }
}

/// What became of one client SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynFate {
    /// Dropped by the LB: the client 4-tuple's previous connection was still in TIME_WAIT.
    LbDrop,
    /// Lost the conntrack insertion race for its SNAT tuple.
    RaceDrop,
    /// No free SNAT tuple toward the chosen RS.
    NoPort,
    /// Dropped inside the NAT box after its mapping: it never left the box (a node
    /// capture sees it enter and not leave).
    Lost,
    /// Left the NAT box toward the RS, SNAT'd, and was lost on the network before the RS
    /// (a node capture sees it leave; the RS capture does not have it). Only with
    /// [`PairConfig::syn_loss_after_nat_ppm`].
    LostAfterNat,
    /// Reached the RS, answered by a TIME_WAIT socket with the old connection's ACK.
    StaleAck(TwCheck),
    /// Reached the RS; its SYN-ACK reached the client.
    SynAck,
    /// Reached the RS; its SYN-ACK was lost after the RS.
    SynAckLost,
    /// Reached the RS; RST,ACK.
    Refused,
}

impl SynFate {
    pub fn code(self) -> &'static str {
        match self {
            SynFate::LbDrop => "lb_drop",
            SynFate::RaceDrop => "race_drop",
            SynFate::NoPort => "no_port",
            SynFate::Lost => "lost",
            SynFate::LostAfterNat => "lost_after_nat",
            SynFate::StaleAck(_) => "stale_ack",
            SynFate::SynAck => "synack",
            SynFate::SynAckLost => "synack_lost",
            SynFate::Refused => "refused",
        }
    }

    /// Whether the SYN reached the RS host.
    pub fn reached_rs(self) -> bool {
        matches!(
            self,
            SynFate::StaleAck(_) | SynFate::SynAck | SynFate::SynAckLost | SynFate::Refused
        )
    }
}

/// The connection an RS TIME_WAIT socket remembered when a SYN collided with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrevConn {
    /// Its truth row id.
    pub attempt: u32,
    pub client: SocketAddr,
    pub client_isn: u32,
    /// When the RS closed it (received the client's FIN), RS clock.
    pub rs_close_ns: u64,
    pub check: TwCheck,
}

/// One client SYN of an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynTruth {
    /// Sent, client clock (= client capture time).
    pub client_ns: u64,
    pub tsval: Option<u32>,
    pub fate: SynFate,
    /// The RS the DNAT chose (`None`: dropped before DNAT).
    pub rip: Option<SocketAddr>,
    /// The SNAT source it got (`None`: none was free, or dropped before SNAT).
    pub snat: Option<SocketAddr>,
    /// Arrival at the RS capture point, RS clock, if it reached the RS (even when the RS
    /// capture does not cover that time).
    pub rs_ns: Option<u64>,
    pub prev: Option<PrevConn>,
    /// When it left the NAT box toward the RS (SNAT'd), true time, if it did: every SYN
    /// that reached the RS and every [`SynFate::LostAfterNat`], none dropped inside the
    /// box. Its copy in [`PairScenario::node`] has this time (when within the RS
    /// capture's span). Not in the truth TSV.
    pub nat_out_ns: Option<u64>,
}

/// The truth of one client connection attempt (one ISN from one client 4-tuple).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairTruth {
    pub id: u32,
    pub role: Role,
    pub intent: PairKind,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub isn: u32,
    /// TSval of the first SYN (None: this client sends no timestamps).
    pub first_tsval: Option<u32>,
    pub first_syn_ns: u64,
    pub syns: Vec<SynTruth>,
    /// First SYN → SYN-ACK at the client capture point; None if none arrived.
    pub setup_latency_ns: Option<u64>,
    pub cause: TrueCause,
    /// Setup time lost: answered SYN's send time − first SYN + the RS's extra answer delay
    /// (0 for ok and refused; last SYN − first SYN when none was answered).
    pub delay_ns: u64,
    pub rs_isn: Option<u32>,
    /// One-way delays client capture → RS capture and back, true ns (constant per attempt).
    pub fwd_delay_ns: u64,
    pub back_delay_ns: u64,
    /// RS clock − client clock at the first SYN.
    pub offset_at_syn_ns: i64,
    /// Last client-side packet, client clock.
    pub last_ns: u64,
}

impl PairTruth {
    /// The SYN that was answered with a SYN-ACK the client saw, else the last that reached
    /// the RS, else the last with a SNAT tuple.
    pub fn final_syn(&self) -> Option<&SynTruth> {
        self.syns
            .iter()
            .rev()
            .find(|s| s.fate == SynFate::SynAck)
            .or_else(|| self.syns.iter().rev().find(|s| s.fate.reached_rs()))
            .or_else(|| self.syns.iter().rev().find(|s| s.snat.is_some()))
    }

    /// The first TIME_WAIT collision, if any.
    pub fn first_collision(&self) -> Option<&PrevConn> {
        self.syns.iter().find_map(|s| s.prev.as_ref())
    }

    /// Column names of [`PairTruth::write_tsv`]; a stable schema. `rip`/`snat` are those of
    /// [`PairTruth::final_syn`]; `prev_*` and `check` those of the first collision; `syns`
    /// lists every SYN as `client_ns/fate/snat_port/rip_ip/rip_port/rs_ns`, `;`-separated.
    pub const TSV_HEADER: &'static str = "id\trole\tintent\tclient_ip\tclient_port\tvip_ip\t\
vip_port\tisn\tfirst_tsval\tfirst_syn_ns\tsyn_count\tsetup_latency_ns\tcause\tdelay_ns\t\
rip_ip\trip_port\tsnat_ip\tsnat_port\tcheck\tprev_attempt\tprev_client_isn\tprev_rs_close_ns\t\
rs_isn\tfwd_delay_ns\tback_delay_ns\toffset_at_syn_ns\tclock_offset_ns\tclock_skew_ppb\t\
clock_step_at_ns\tclock_step_ns\tsyns";

    /// One TSV line (with newline); absent values are empty fields.
    pub fn write_tsv(&self, clock: &RsClock, w: &mut dyn Write) -> io::Result<()> {
        fn opt<T: fmt::Display>(v: Option<T>) -> String {
            v.map(|x| x.to_string()).unwrap_or_default()
        }
        let fin = self.final_syn();
        let rip = fin.and_then(|s| s.rip);
        let snat = fin.and_then(|s| s.snat);
        let prev = self.first_collision();
        let syns: Vec<String> = self
            .syns
            .iter()
            .map(|s| {
                format!(
                    "{}/{}/{}/{}/{}/{}",
                    s.client_ns,
                    s.fate.code(),
                    opt(s.snat.map(|a| a.port())),
                    opt(s.rip.map(|a| a.ip())),
                    opt(s.rip.map(|a| a.port())),
                    opt(s.rs_ns)
                )
            })
            .collect();
        writeln!(
            w,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t\
{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.id,
            self.role.code(),
            self.intent,
            self.client.ip(),
            self.client.port(),
            self.vip.ip(),
            self.vip.port(),
            self.isn,
            opt(self.first_tsval),
            self.first_syn_ns,
            self.syns.len(),
            opt(self.setup_latency_ns),
            self.cause.code(),
            self.delay_ns,
            opt(rip.map(|a| a.ip())),
            opt(rip.map(|a| a.port())),
            opt(snat.map(|a| a.ip())),
            opt(snat.map(|a| a.port())),
            opt(prev.map(|p| p.check.code())),
            opt(prev.map(|p| p.attempt)),
            opt(prev.map(|p| p.client_isn)),
            opt(prev.map(|p| p.rs_close_ns)),
            opt(self.rs_isn),
            self.fwd_delay_ns,
            self.back_delay_ns,
            self.offset_at_syn_ns,
            clock.offset_ns,
            clock.skew_ppb,
            opt(clock.step.map(|s| s.0)),
            opt(clock.step.map(|s| s.1)),
            syns.join(";")
        )
    }
}

/// The pair-level truth: the NAT's configuration, the clocks, the RS capture's span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatTruth {
    pub vip: SocketAddr,
    pub rss: Vec<SocketAddr>,
    pub snat_ip: IpAddr,
    pub snat_ports: (u16, u16),
    pub clock: RsClock,
    /// The clock's skew epoch (`start_ns`).
    pub epoch_ns: u64,
    /// One-way delay range, true ns: |offset error| of a SYN/SYN-ACK pair is at most half
    /// its width.
    pub delay_ns: (u64, u64),
    /// True-time span `[from, to)` of the RS capture (packets arriving outside are cut).
    pub rs_capture: (u64, u64),
    /// True time at which the client capture ends (packets from then on are cut), if a
    /// scripted `capture_ended` cut it.
    pub client_capture_end: Option<u64>,
}

impl NatTruth {
    /// `key<TAB>value` lines.
    pub fn write_tsv(&self, w: &mut dyn Write) -> io::Result<()> {
        let rss: Vec<String> = self.rss.iter().map(|a| a.to_string()).collect();
        let step = self.clock.step.map(|(a, s)| format!("{a}\t{s}"));
        writeln!(w, "key\tvalue")?;
        writeln!(w, "vip\t{}", self.vip)?;
        writeln!(w, "rss\t{}", rss.join(","))?;
        writeln!(w, "snat_ip\t{}", self.snat_ip)?;
        writeln!(w, "snat_ports\t{}-{}", self.snat_ports.0, self.snat_ports.1)?;
        writeln!(w, "clock_offset_ns\t{}", self.clock.offset_ns)?;
        writeln!(w, "clock_skew_ppb\t{}", self.clock.skew_ppb)?;
        writeln!(w, "clock_step\t{}", step.unwrap_or_default())?;
        writeln!(w, "clock_epoch_ns\t{}", self.epoch_ns)?;
        writeln!(w, "delay_ns\t{}-{}", self.delay_ns.0, self.delay_ns.1)?;
        writeln!(
            w,
            "rs_capture_ns\t{}-{}",
            self.rs_capture.0, self.rs_capture.1
        )?;
        let end = self.client_capture_end.map(|e| e.to_string());
        writeln!(w, "client_capture_end_ns\t{}", end.unwrap_or_default())
    }
}

/// Relative weights of the anomalies the random mix draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairWeights {
    pub lb_syn_drop_port_reuse: u32,
    pub rs_timewait_collision: u32,
    /// 0 by default: each one fills the whole SNAT range toward an RS (one connection per
    /// port over two minutes). Use with a small `snat_ports` range.
    pub snat_port_exhaustion: u32,
    pub conntrack_insert_race: u32,
    pub syn_lost_before_rs: u32,
    pub synack_lost_after_rs: u32,
    pub rs_slow_synack: u32,
    pub rs_refused: u32,
}

impl Default for PairWeights {
    fn default() -> Self {
        PairWeights {
            lb_syn_drop_port_reuse: 20,
            rs_timewait_collision: 25,
            snat_port_exhaustion: 0,
            conntrack_insert_race: 10,
            syn_lost_before_rs: 15,
            synack_lost_after_rs: 10,
            rs_slow_synack: 10,
            rs_refused: 5,
        }
    }
}

/// Everything that shapes a generated pair of captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairConfig {
    pub seed: u64,
    /// Background attempts (each anomalous with `anomaly_ppm`), besides the script's.
    pub attempts: u64,
    /// True time where the run begins, ns since the Unix epoch (scripted `unmatched`
    /// attempts, then setups, the script, and the background: the latter begins once the
    /// longest setup the random mix may draw fits before it, e.g. 30 s). Also the skew epoch.
    pub start_ns: u64,
    /// Mean gap between background attempts; gaps are uniform in `1..=2 * mean`.
    pub mean_gap_ns: u64,
    /// Client hosts (at most 62 500); the last `no_ts_clients` send no TCP timestamps.
    pub clients: u32,
    pub no_ts_clients: u32,
    pub vip: SocketAddr,
    pub rss: Vec<SocketAddr>,
    pub snat_ip: IpAddr,
    /// Inclusive SNAT port range.
    pub snat_ports: (u16, u16),
    pub clock: RsClock,
    /// One-way delay client capture point → RS capture point (and back), drawn per attempt
    /// and direction.
    pub delay_ns: (u64, u64),
    pub rs_timewait_ns: u64,
    /// How long the NAT holds a closed connection's entry (conntrack TIME_WAIT).
    pub nat_timewait_ns: u64,
    /// The LB drops a SYN on a client 4-tuple whose previous connection it still holds
    /// closed (IPVS `conn_reuse_mode=1` with `conntrack=1`); else it maps it anew.
    pub lb_reuse_drop: bool,
    /// The NAT draws every SNAT port at random (`MASQUERADE --random-fully`) instead of
    /// keeping the client's port when that tuple is free. A SYN that lost a conntrack
    /// insert race is then retried on a new random port: neither capture shows the port
    /// it lost.
    pub random_snat: bool,
    /// The NAT, short of SNAT tuples, evicts a closed connection's entry in conntrack's
    /// TIME_WAIT and hands its tuple to the new connection (Linux ≥ 6.5), although the RS
    /// may still hold that tuple in TIME_WAIT. So only live connections exhaust a port
    /// range (a scripted exhaustion keeps its fillers open), and a busy small range
    /// re-uses tuples well within `nat_timewait_ns`.
    pub nat_evicts_closing: bool,
    /// Share of background attempts drawn `ok` that re-use a client 4-tuple the client
    /// closed less than 110 s before (a client that recycles its ports); the rest take
    /// fresh ports. With `lb_reuse_drop`, the LB drops their first SYN.
    pub reuse_ppm: u32,
    /// Share of background attempts drawn `ok` whose first SYN is dropped between the NAT
    /// and the RS, drawn independently of everything else (an unrelated drop rule):
    /// truth `syn_lost_before_rs`, unless the LB dropped it first.
    pub first_syn_loss_ppm: u32,
    /// Share of `syn_lost_before_rs` attempts (scripted, drawn, or from
    /// `first_syn_loss_ppm`) whose lost SYNs leave the NAT box and are lost on the network
    /// before the RS ([`SynFate::LostAfterNat`]); the others' are dropped inside the box
    /// ([`SynFate::Lost`]). Drawn once per attempt, only when set: 0 (the default) keeps
    /// every other config's bytes. `capture_ended`'s lost SYN always dies inside the box.
    pub syn_loss_after_nat_ppm: u32,
    /// True-time span `[from, to)` of the RS capture, as offsets from `start_ns`. `None`:
    /// from `start_ns` to the end.
    pub rs_capture: Option<(u64, u64)>,
    pub syn_schedule: SynSchedule,
    /// `None`: each collision draws a fast (Linux ≥ 5.6) or slow re-send.
    pub stale_resend: Option<StaleResend>,
    /// Share of background connections the client closes first (else the server does).
    pub client_close_ppm: u32,
    pub anomaly_ppm: u32,
    pub weights: PairWeights,
    /// Attempts built to suffer these, in this order, one after another (each with its own
    /// setup), alongside the background.
    pub script: Vec<PairKind>,
    /// Gap between one scripted attempt's aftermath and the next one's setup.
    pub script_gap_ns: u64,
}

impl Default for PairConfig {
    fn default() -> Self {
        let v4 = |a, b, c, d, port| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port);
        PairConfig {
            seed: 1,
            attempts: 1000,
            start_ns: 1_700_000_000 * SEC,
            mean_gap_ns: 2 * MS,
            clients: 16,
            no_ts_clients: 2,
            vip: v4(10, 96, 0, 10, 80),
            rss: vec![
                v4(10, 244, 2, 11, 8080),
                v4(10, 244, 3, 12, 8080),
                v4(10, 244, 4, 13, 8080),
            ],
            snat_ip: IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2)),
            snat_ports: (32768, 60999),
            clock: RsClock {
                offset_ns: 2_500_000,
                skew_ppb: 0,
                step: None,
            },
            delay_ns: (100 * US, 400 * US),
            rs_timewait_ns: 60 * SEC,
            nat_timewait_ns: 120 * SEC,
            lb_reuse_drop: true,
            random_snat: false,
            nat_evicts_closing: false,
            reuse_ppm: 0,
            first_syn_loss_ppm: 0,
            syn_loss_after_nat_ppm: 0,
            rs_capture: None,
            syn_schedule: SynSchedule::Linear,
            stale_resend: None,
            client_close_ppm: 0,
            anomaly_ppm: 30_000,
            weights: PairWeights::default(),
            script: Vec::new(),
            script_gap_ns: SEC,
        }
    }
}

impl PairConfig {
    /// The address of client host `i` (IPv6 when the VIP is).
    pub fn client_ip(&self, i: u32) -> IpAddr {
        if self.vip.is_ipv6() {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, i as u16 + 2))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                10,
                244,
                1 + (i / 250) as u8,
                2 + (i % 250) as u8,
            ))
        }
    }

    /// Checks what the generator relies on; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let v6 = self.vip.is_ipv6();
        if self.rss.is_empty() || self.rss.len() > 200 {
            return Err("rss: need 1..=200 real servers".into());
        }
        if self.rss.iter().any(|r| r.is_ipv6() != v6) || self.snat_ip.is_ipv6() != v6 {
            return Err("vip, rss and snat_ip must be of one IP family".into());
        }
        if self.snat_ports.0 == 0 || self.snat_ports.0 > self.snat_ports.1 {
            return Err("snat_ports: need 1 <= lo <= hi".into());
        }
        if !(1..=62_500).contains(&self.clients) || self.no_ts_clients > self.clients {
            return Err("clients must be 1..=62500, no_ts_clients at most clients".into());
        }
        if self.delay_ns.0 > self.delay_ns.1 || self.delay_ns.0 < 2 * US {
            return Err("delay_ns: need 2 µs <= lo <= hi".into());
        }
        if self.rs_timewait_ns < 4 * SEC || self.nat_timewait_ns < 4 * SEC {
            return Err("rs_timewait_ns and nat_timewait_ns must be at least 4 s".into());
        }
        if let Some((a, b)) = self.rs_capture
            && a >= b
        {
            return Err("rs_capture: need from < to".into());
        }
        if self.reuse_ppm > 1_000_000
            || self.first_syn_loss_ppm > 1_000_000
            || self.syn_loss_after_nat_ppm > 1_000_000
        {
            return Err(
                "reuse_ppm, first_syn_loss_ppm and syn_loss_after_nat_ppm must be at most 1000000"
                    .into(),
            );
        }
        let ts_hosts = self.clients - self.no_ts_clients;
        let max_tries = self.syn_schedule.max_tries();
        for (i, k) in self.script.iter().enumerate() {
            match *k {
                PairKind::CaptureEnded { .. } if i + 1 != self.script.len() => {
                    return Err(format!("{k}: must be the last entry of the script"));
                }
                PairKind::RsTimewaitCollision { check, .. } => {
                    if self.clients < 2 {
                        return Err(format!("{k}: needs 2 client hosts"));
                    }
                    if check == Some(TwCheck::Paws) && ts_hosts < 2 {
                        return Err(format!("{k}: needs 2 clients with timestamps"));
                    }
                    if check == Some(TwCheck::IsnNotAfter) && self.no_ts_clients == 0 {
                        return Err(format!("{k}: needs a client without timestamps"));
                    }
                }
                PairKind::ConntrackInsertRace if self.clients < 2 => {
                    return Err(format!("{k}: needs 2 client hosts"));
                }
                PairKind::SnatPortExhaustion { tries } if tries < 2 || tries >= max_tries => {
                    return Err(format!("{k}: tries must be 2..{max_tries}"));
                }
                PairKind::SnatPortExhaustion { tries }
                    if self.syn_schedule.retry_offset_ns(usize::from(tries) - 1) + 2 * SEC
                        > self.nat_timewait_ns =>
                {
                    return Err(format!("{k}: nat_timewait_ns too short for {tries} tries"));
                }
                PairKind::SynLostBeforeRs { lost } if lost == 0 || lost + 1 >= max_tries => {
                    return Err(format!("{k}: lost must be 1..{}", max_tries - 1));
                }
                PairKind::RsSlowSynack { delay_ms } if !(200..=950).contains(&delay_ms) => {
                    return Err(format!("{k}: delay must be 200..=950 ms"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A whole generated pair: both captures in capture order, the truth sorted by first SYN.
#[derive(Clone, Debug)]
pub struct PairScenario {
    /// Client capture: (client clock ns, packet).
    pub client: Vec<(u64, TcpSpec)>,
    /// RS capture: (RS clock ns, packet), in true-time order (so a backward clock step
    /// shows as timestamps going back, as tcpdump would record it).
    pub rs: Vec<(u64, TcpSpec)>,
    /// The post-NAT leg as the NAT box itself sees it (its `tcpdump -i any`, the
    /// `SNATIP:sport <-> RIP:rport` side): (true time ns, packet), in time order, encoded
    /// as `rs` is. Packets toward the RS at the moment they leave the box, packets from
    /// the RS at the moment they reach it. It holds every packet of `rs` (the same
    /// specs, in the same relative order unless the delays reorder them), plus each
    /// [`SynFate::LostAfterNat`] SYN, which left the box and never reached the RS; a SYN
    /// dropped inside the box ([`SynFate::Lost`], a race or an exhaustion) is not in it.
    /// Cut to the RS capture's span by when each packet reached (or would have reached,
    /// or left) the RS, so that it and `rs` cover the same connections. The pre-NAT leg
    /// of a node capture is `client` (client clock = true time).
    pub node: Vec<(u64, TcpSpec)>,
    pub truth: Vec<PairTruth>,
    pub nat: NatTruth,
}

/// Simulates the whole pair in memory. Panics if `cfg` fails [`PairConfig::validate`].
pub fn generate_pair(cfg: &PairConfig) -> PairScenario {
    if let Err(e) = cfg.validate() {
        panic!("invalid PairConfig: {e}");
    }
    sim::run(cfg)
}

/// What [`write_pair`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairStats {
    pub client_packets: u64,
    pub rs_packets: u64,
    pub attempts: u64,
}

/// Generates the pair of `cfg` and writes the client capture, the RS capture (each under
/// its own encapsulation) and the truth TSV (with a header line) if given. Outputs should
/// be buffered.
#[allow(clippy::too_many_arguments)]
pub fn write_pair<W1: Write, W2: Write>(
    cfg: &PairConfig,
    encap_client: &Encap,
    encap_rs: &Encap,
    format: CaptureFormat,
    client_out: W1,
    rs_out: W2,
    truth: Option<&mut dyn Write>,
) -> io::Result<PairStats> {
    let s = generate_pair(cfg);
    write_packets(encap_client, format, &s.client, client_out)?;
    write_packets(encap_rs, format, &s.rs, rs_out)?;
    if let Some(t) = truth {
        write_truth(&s, t)?;
    }
    Ok(PairStats {
        client_packets: s.client.len() as u64,
        rs_packets: s.rs.len() as u64,
        attempts: s.truth.len() as u64,
    })
}

/// The truth TSV of a scenario: header line, then one row per attempt.
pub fn write_truth(s: &PairScenario, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "{}", PairTruth::TSV_HEADER)?;
    for row in &s.truth {
        row.write_tsv(&s.nat.clock, w)?;
    }
    Ok(())
}

/// Writes packets as one capture file.
pub fn write_packets<W: Write>(
    encap: &Encap,
    format: CaptureFormat,
    packets: &[(u64, TcpSpec)],
    out: W,
) -> io::Result<()> {
    let lt = linktype(encap);
    let mut buf = Vec::with_capacity(2048);
    match format {
        CaptureFormat::Pcap { nanos } => {
            let opts = PcapOptions {
                linktype: lt,
                nanos,
                ..PcapOptions::default()
            };
            let mut w = PcapWriter::new(out, opts)?;
            for (ts, spec) in packets {
                frame_into(encap, spec, &mut buf);
                w.write(*ts, &buf)?;
            }
            w.into_inner().flush()
        }
        CaptureFormat::Pcapng { tsresol } => {
            let mut w = PcapngWriter::new(out)?;
            w.add_interface(lt, 262_144, tsresol, None)?;
            for (ts, spec) in packets {
                frame_into(encap, spec, &mut buf);
                w.write(0, *ts, &buf)?;
            }
            w.into_inner().flush()
        }
    }
}
