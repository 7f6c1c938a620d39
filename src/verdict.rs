//! Attribute: why each client connection attempt was slow, with the evidence from both
//! captures and the remedies the evidence supports.
//!
//! Each attempt gets a *signature*, the anomaly the captures show (stale ACK from a
//! TIME_WAIT socket, first SYN missing on the RS side, ...), and a *verdict*: the signature
//! when the attempt was slow (setup ≥ the slow threshold) or failed, else `ok`. A quick
//! collision (stale ACK, RST, SYN again 10 ms later) is thus visible as a signature without
//! counting as a slow setup. With one capture only, the verdicts the client side supports
//! are given and marked as inferred from one side.

use crate::capture::CaptureReport;
use crate::clock::ClockModel;
use crate::correlate::{NAT_HOLD_NS, Pairing, RsIds};
use crate::flows::{Attempt, GapClass, Outcome};
use crate::records::Records;
use crate::seq::Seq;
use crate::units::codes;
use crate::units::{Endpoint, NS_PER_MS, NS_PER_S, Tuple};
use crate::vantage::{Hop, Path, Selection};
use serde::Serialize;
use smallvec::SmallVec;
use std::net::IpAddr;

/// A client tuple reused within this time of its previous connection's close can still have
/// an IPVS entry in TIME_WAIT (IPVS keeps them 120 s).
const LB_REUSE_WINDOW_NS: i64 = 120 * NS_PER_S;
/// Share of the SNAT port range in use from which exhaustion is the explanation; in a range
/// of under ten ports, all but one (the count is seen at the real server, a packet's delay
/// and the clock error away from the NAT's table).
const EXHAUSTED_PERMILLE: u64 = 900;

/// Whether `in_use` of `range` SNAT ports is exhaustion ([`EXHAUSTED_PERMILLE`]).
fn exhausted(in_use: u64, range: u64) -> bool {
    range > 0 && (in_use * 1000 >= range * EXHAUSTED_PERMILLE || in_use + 1 >= range)
}
/// Another SYN on the same SNAT address and port within this of when the lost one would
/// have arrived at the RS (one-way delay and clock error included): a conntrack clash.
const RACE_BEFORE_NS: i64 = NS_PER_MS;
const RACE_AFTER_NS: i64 = 3 * NS_PER_MS;
/// A SYN-ACK the client never saw: the client's SYN-ACK is later than the RS's by this much.
const SYNACK_LOST_NS: i64 = 100 * NS_PER_MS;

codes! {
    /// The cause of an attempt's setup delay. Codes are stable snake_case.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Cause {
        Ok = ("ok", "no setup delay worth naming"),
        LbSynDropPortReuse = ("lb_syn_drop_port_reuse", "client reused a recently closed 4-tuple; the load balancer dropped the first SYN (IPVS conn_reuse_mode=1)"),
        RsTimewaitCollision = ("rs_timewait_collision", "SNAT mapped the SYN onto a tuple the real server held in TIME_WAIT; it answered with a stale ACK"),
        SnatPortExhaustion = ("snat_port_exhaustion", "SYN dropped before the real server: the SNAT ports toward it were nearly all in use"),
        ConntrackInsertRace = ("conntrack_insert_race", "another client's SYN took the same SNAT tuple within milliseconds; this SYN lost the conntrack insert race"),
        SynLostBeforeRs = ("syn_lost_before_rs", "SYN lost before the real server, for no reason the captures show"),
        /// A node capture saw the SYN enter the NAT box and never leave it.
        DroppedInNat = ("dropped_in_nat", "SYN seen entering the NAT box and never leaving it, for no reason the captures show"),
        SynackLostAfterRs = ("synack_lost_after_rs", "the real server sent a SYN-ACK the client never saw"),
        RsSlowSynack = ("rs_slow_synack", "the real server saw the SYN and answered late"),
        RsRefused = ("rs_refused", "the real server refused the connection (RST)"),
        Unmatched = ("unmatched", "no counterpart in the real-server capture"),
        /// Unanswered, and a capture ended before the client's next SYN was due: nothing
        /// says the SYN was lost.
        CaptureEnded = ("capture_ended", "unanswered when a capture ended, before the client's next SYN was due"),
        /// Slow, and neither capture shows why.
        Unexplained = ("unexplained", "slow, and neither capture shows why"),
    }
}

/// A fix people apply, and what it costs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Remedy {
    pub fix: &'static str,
    pub side_effect: &'static str,
    /// When the evidence supports it.
    #[serde(skip)]
    pub when: When,
}

/// The evidence a remedy needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// The client waited a retransmission timeout (not milliseconds) to re-send its SYN
    /// after a stale ACK: an old or non-Linux client.
    SlowResendAfterStaleAck,
    /// The SNAT kept the client's source port on some of these attempts (or no capture
    /// showed the rewritten side): `--random-fully` changes that. Where the NAT visibly
    /// rewrote every port already, port preservation is not what collided.
    SnatKeptPorts,
}

impl Remedy {
    /// Whether the verdicts of this cause support the remedy.
    pub fn applies(&self, verdicts: &[&AttemptVerdict]) -> bool {
        match self.when {
            When::Always => true,
            When::SlowResendAfterStaleAck => verdicts.iter().any(|v| {
                v.resend_after_stale
                    .is_some_and(|g| g != GapClass::AfterReset && g != GapClass::Immediate)
            }),
            When::SnatKeptPorts => {
                verdicts.iter().all(|v| v.rs_tuples.is_empty())
                    || verdicts
                        .iter()
                        .any(|v| v.rs_tuples.iter().any(|t| t.client.port == v.client.port))
            }
        }
    }
}

/// A `Remedy` literal (a struct literal, so the tables below are promoted to `'static`).
macro_rules! r {
    ($fix:expr, $side_effect:expr $(,)?) => {
        Remedy {
            fix: $fix,
            side_effect: $side_effect,
            when: When::Always,
        }
    };
    ($fix:expr, $side_effect:expr, $when:expr $(,)?) => {
        Remedy {
            fix: $fix,
            side_effect: $side_effect,
            when: $when,
        }
    };
}

/// A command to run on a host to confirm (or refute) a cause, and what to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Where: `client`, `nat node`, `real server`.
    pub on: &'static str,
    pub command: &'static str,
    pub look_for: &'static str,
}

/// A `Check` literal (a struct literal, so the tables below are promoted to `'static`).
macro_rules! check {
    ($on:expr, $command:expr, $look_for:expr $(,)?) => {
        Check {
            on: $on,
            command: $command,
            look_for: $look_for,
        }
    };
}

impl Cause {
    /// How to confirm or refute this cause on the hosts, beyond the captures.
    pub fn checks(self) -> &'static [Check] {
        match self {
            Cause::Ok | Cause::Unmatched | Cause::Unexplained | Cause::CaptureEnded => &[],
            Cause::LbSynDropPortReuse => &[
                check!(
                    "nat node",
                    "sysctl net.ipv4.vs.conn_reuse_mode net.ipv4.vs.conntrack; uname -r",
                    "conn_reuse_mode = 1 with conntrack = 1 on a kernel before 5.9: IPVS drops the first SYN of a reused tuple",
                ),
                check!(
                    "nat node",
                    "ipvsadm -lnc | grep TIME_WAIT",
                    "entries in TIME_WAIT for the client's address and port when the SYN was dropped",
                ),
            ],
            Cause::RsTimewaitCollision => &[
                check!(
                    "real server",
                    "nstat -az TcpExtPAWSTimewait TcpExtTWRecycled",
                    "PAWSTimewait rising with the collisions (the SYN's TSval was not newer)",
                ),
                check!(
                    "real server",
                    "ss -tan state time-wait",
                    "TIME_WAIT sockets on the SNAT address's ports toward the service port",
                ),
                check!(
                    "nat node",
                    "iptables-save | grep -i -e masquerade -e snat",
                    "whether the rule has --random-fully (without it, SNAT ports follow client ports)",
                ),
            ],
            Cause::SnatPortExhaustion => &[
                check!(
                    "nat node",
                    "conntrack -S",
                    "insert_failed and drop rising while the SYNs go missing",
                ),
                check!(
                    "nat node",
                    "conntrack -L -p tcp --dport PORT -d REAL_SERVER | wc -l; sysctl net.ipv4.ip_local_port_range",
                    "entries toward the real server close to the size of the port range",
                ),
            ],
            Cause::ConntrackInsertRace => &[check!(
                "nat node",
                "conntrack -S; conntrack -C; sysctl net.netfilter.nf_conntrack_max",
                "insert_failed rising while the table is far from full",
            )],
            Cause::SynLostBeforeRs => &[
                check!(
                    "nat node",
                    "conntrack -S; iptables -L -v -n",
                    "drop or insert_failed rising, or a DROP rule's counter rising with the losses",
                ),
                check!(
                    "real server",
                    "nstat -az TcpExtListenDrops TcpExtListenOverflows",
                    "drops at the listener (a SYN seen by the host but not by the capture point)",
                ),
            ],
            Cause::DroppedInNat => &[check!(
                "nat node",
                "conntrack -S; nft list ruleset (or iptables -L -v -n); nstat -az",
                "a DROP rule's counter, conntrack drop/insert_failed or an interface drop counter rising with the losses",
            )],
            Cause::SynackLostAfterRs => &[check!(
                "real server",
                "ip route get CLIENT_OR_SNAT_ADDRESS; sysctl net.ipv4.conf.all.rp_filter",
                "a route back that bypasses the NAT, or reverse-path filtering dropping the reply",
            )],
            Cause::RsSlowSynack => &[check!(
                "real server",
                "nstat -az TcpExtListenOverflows TcpExtSyncookiesSent; ss -ltn",
                "a full accept queue: Recv-Q at Send-Q on the listener, overflows or SYN cookies rising",
            )],
            Cause::RsRefused => &[check!(
                "real server",
                "ss -ltn",
                "no listener on the service's target port (or the pod not ready yet)",
            )],
        }
    }

    /// Fixes that apply to this cause, with their side effects.
    pub fn remedies(self) -> &'static [Remedy] {
        match self {
            Cause::Ok | Cause::Unmatched | Cause::Unexplained => &[],
            Cause::CaptureEnded => &[r!(
                "capture for longer (or start the capture earlier than the traffic to judge)",
                "none",
            )],
            Cause::LbSynDropPortReuse => &[
                r!(
                    "sysctl net.ipv4.vs.conn_reuse_mode=0 on the nodes",
                    "reused connections stick to the old real server, including terminating pods (no rescheduling)",
                ),
                r!(
                    "kernel >= 5.9 on the nodes (IPVS no longer drops the SYN unless the old conntrack entry is confirmed)",
                    "a node upgrade"
                ),
                r!(
                    "keep-alive / connection pooling in the client",
                    "long-lived connections balance less evenly"
                ),
                r!(
                    "wider net.ipv4.ip_local_port_range on the client, so tuples are reused less often",
                    "none worth naming"
                ),
            ],
            Cause::RsTimewaitCollision => &[
                r!(
                    "--random-fully on the MASQUERADE/SNAT rule (kube-proxy/CNI setting)",
                    "SNAT ports no longer follow client ports",
                    When::SnatKeptPorts,
                ),
                r!(
                    "more SNAT addresses or a wider SNAT port range toward the real server",
                    "more addresses to manage"
                ),
                r!(
                    "keep-alive / connection pooling in the client",
                    "long-lived connections balance less evenly"
                ),
                r!(
                    "clients on Linux >= 5.6 re-send the SYN within milliseconds of the stale ACK instead of after 1 s",
                    "a client upgrade",
                    When::SlowResendAfterStaleAck,
                ),
            ],
            Cause::SnatPortExhaustion => &[
                r!(
                    "keep-alive / connection pooling in the client: fewer new connections, fewer ports held in TIME_WAIT",
                    "long-lived connections balance less evenly"
                ),
                r!(
                    "more SNAT addresses or a wider port range (ip_local_port_range on the node for MASQUERADE)",
                    "more addresses to manage"
                ),
                r!(
                    "lower nf_conntrack_tcp_timeout_time_wait on the NAT box",
                    "late packets of closed connections are no longer tracked"
                ),
            ],
            Cause::ConntrackInsertRace => &[
                r!(
                    "--random-fully on the MASQUERADE/SNAT rule",
                    "SNAT ports no longer follow client ports",
                    When::SnatKeptPorts,
                ),
                r!(
                    "kernel with the conntrack clash-resolution fixes (>= 5.0 for TCP on one CPU, later for UDP)",
                    "a node upgrade"
                ),
            ],
            Cause::SynLostBeforeRs => &[r!(
                "look for drops on the path: conntrack -S (insert_failed, drop), nstat TcpExtListenDrops, firewall counters",
                "none",
            )],
            Cause::DroppedInNat => &[r!(
                "find what drops inside the NAT box: its firewall rules' counters, conntrack -S (drop, insert_failed), nf_conntrack_max",
                "none",
            )],
            Cause::SynackLostAfterRs => &[r!(
                "check the return path: asymmetric routing, rp_filter, the RS's route back through the NAT (masquerade-all)",
                "none",
            )],
            Cause::RsSlowSynack => &[r!(
                "check the real server's accept backlog (somaxconn, listen backlog, SYN cookies) and load",
                "none",
            )],
            Cause::RsRefused => &[r!(
                "check that the real server listens on the port and is ready (readiness probe)",
                "none"
            )],
        }
    }
}

codes! {
    /// Which capture a piece of evidence is in.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Side {
        Client = ("client", "the client-side capture"),
        Rs = ("rs", "the real-server-side capture"),
        /// Another capture of the set (a node's, a copy), named by `Evidence::capture`.
        Other = ("other", "another capture of the set"),
    }
}

codes! {
    /// Why a TIME_WAIT socket answered a new SYN with an ACK of its old connection: Linux
    /// accepts the SYN only when its TSval is newer than the old connection's, or (without
    /// timestamps) its ISN is after the old `rcv_nxt`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum TimewaitCheck {
        Paws = ("paws", "the SYN's TSval was not newer than the old connection's (PAWS)"),
        IsnNotAfter = ("isn_not_after", "the SYN's ISN was not after the old connection's rcv_nxt"),
    }
}

/// A packet that supports a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub side: Side,
    pub frame: u64,
    /// On the client's clock.
    pub ts: i64,
    pub what: &'static str,
    /// For [`Side::Other`]: which capture (an index into the report's `captures`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<u32>,
}

impl Evidence {
    /// Which TCP packet of the handshake this is, the same whichever capture saw it: the
    /// copies of one packet at two places have the same kind (and nearly the same time).
    /// `None` for evidence that is not a packet of this attempt (a previous connection's
    /// close, another client's SYN).
    pub fn packet(&self) -> Option<&'static str> {
        match self.what {
            "SYN" | "SYN retry" | "SYN on the RS side" => Some("SYN"),
            w if Hop::ALL.iter().any(|h| h.evidence() == w) => Some("SYN"),
            "stale ACK" | "stale ACK sent by RS" => Some("stale ACK"),
            "client RST" | "client RST at RS" => Some("client RST"),
            "RST (refused)" | "RST sent by RS" => Some("refusing RST"),
            "SYN-ACK" | "SYN-ACK sent by RS" => Some("SYN-ACK"),
            _ => None,
        }
    }
}

/// The connection that held a reused tuple before this attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Previous {
    pub side: Side,
    /// Index into that capture's `connections`.
    pub conn: u32,
    /// When it closed (first FIN/RST), client clock.
    pub closed_ts: Option<i64>,
    /// From its close (or its last packet) to this attempt's SYN.
    pub age_ns: i64,
}

/// The verdict on one client attempt.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptVerdict {
    pub attempt: u32,
    pub client: Endpoint,
    pub server: Endpoint,
    pub isn: Seq,
    pub first_syn_ts: i64,
    pub tries: usize,
    pub setup_ns: Option<i64>,
    pub verdict: Cause,
    /// The anomaly the captures show, even when it cost too little to be the verdict.
    pub signature: Option<Cause>,
    /// The delay this attempt suffered: setup latency, or the time spent without an answer.
    pub delay_ns: i64,
    /// Judged from the client capture alone.
    pub one_sided: bool,
    /// The same attempt in the RS capture (index into its `attempts`), and its tuples.
    pub rs_attempts: RsIds,
    pub rs_tuples: SmallVec<[Tuple; 1]>,
    /// The class of the longest SYN retry gap: what the delay looked like to the client.
    pub retry: Option<GapClass>,
    /// After a stale ACK: how soon the client re-sent its SYN (`after_reset` on Linux ≥ 5.6,
    /// `initial_rto_1s` on older clients).
    pub resend_after_stale: Option<GapClass>,
    /// What an attempt with something to explain carries; `None` for a clean `ok` attempt
    /// (read it with [`AttemptVerdict::notes`]). In the JSON its fields are the verdict's
    /// own, empty for a clean attempt.
    #[serde(flatten, serialize_with = "notes_or_empty")]
    pub notes: Option<Box<Notes>>,
}

/// What a verdict with something to explain carries beside its code: the evidence, what
/// the captures showed, the base rates weighed, the causes left open and one sentence.
/// Most attempts are clean and have none of it, so it is kept apart from the verdict
/// record: a clean attempt's verdict is about half the size.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Notes {
    /// The packets that support the verdict.
    pub evidence: Vec<Evidence>,
    /// For a reused tuple: the previous connection on it.
    pub previous: Option<Previous>,
    /// For a TIME_WAIT collision: the check of the real server's TIME_WAIT socket that the
    /// SYN failed.
    pub check_failed: Option<TimewaitCheck>,
    /// For exhaustion: SNAT ports toward that real server in use, and the range seen.
    pub snat_ports_in_use: Option<(u64, u64)>,
    /// For an unmatched attempt: whether it falls outside the RS capture's time span.
    pub outside_rs_span: Option<bool>,
    /// For a lost first SYN with a pattern a cause rests on (a reused tuple, a concurrent
    /// SYN): the pair's base rate of such losses with and without it ([`BaseRate`]), which
    /// decides whether the pattern is the cause.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub base_rates: Vec<BaseRate>,
    /// The causes the captures cannot rule out beside the verdict ([`not_ruled_out`]):
    /// each has its host check ([`Cause::checks`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ruled_out: Vec<Cause>,
    /// One sentence with the numbers.
    pub explanation: String,
    /// Where each SYN try was seen (client, into and out of the NAT box, real server), when
    /// a capture set showed it in more than one place.
    #[serde(skip_serializing_if = "Path::is_empty")]
    pub path: Path,
}

/// The notes of a clean attempt: nothing.
static NO_NOTES: std::sync::LazyLock<Notes> = std::sync::LazyLock::new(Notes::default);

/// Serializes a verdict's notes, or empty notes for a clean attempt, so that every verdict
/// has the same fields.
fn notes_or_empty<S: serde::Serializer>(
    notes: &Option<Box<Notes>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    notes.as_deref().unwrap_or(&NO_NOTES).serialize(s)
}

impl AttemptVerdict {
    /// What the verdict carries beside its code (empty for a clean attempt).
    pub fn notes(&self) -> &Notes {
        self.notes.as_deref().unwrap_or(&NO_NOTES)
    }

    /// The client's tuple.
    pub fn tuple(&self) -> Tuple {
        Tuple::new(self.client, self.server)
    }
}

/// Count, share and delay per verdict.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictRow {
    pub verdict: Cause,
    pub text: &'static str,
    pub attempts: u64,
    /// Per mille of the judged attempts.
    pub share_permille: u64,
    pub delay_total_ns: i64,
    pub delay_max_ns: i64,
    /// The fixes the evidence of these attempts supports.
    pub remedies: Vec<Remedy>,
    /// How to confirm the cause on the hosts ([`Cause::checks`]).
    pub checks: &'static [Check],
}

/// What the verdict stage needs besides the two reports.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub client: &'a CaptureReport,
    pub rs: Option<&'a CaptureReport>,
    pub pairing: Option<&'a Pairing>,
    /// Which attempts each side takes, and where each SYN was seen.
    pub sel: &'a Selection,
    pub slow_ns: i64,
    /// The RS capture's index among the report's captures: how the verdicts of the client
    /// capture's other pairs name its packets ([`judge_group`]).
    pub rs_at: Option<u32>,
}

/// Another real-server side of the client capture being judged (a backend on another
/// host): where a lost SYN's cause can show too, since a retry is balanced anew.
struct Beside<'a> {
    rs: &'a CaptureReport,
    pairing: &'a Pairing,
    index: &'a RsIndex<'a>,
    at: Option<u32>,
}

codes! {
    /// A circumstance of an attempt's first SYN that a cause rests on, and that is common
    /// enough without the cause to need a base rate ([`BaseRate`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Pattern {
        /// The client's 4-tuple closed less than [`LB_REUSE_WINDOW_NS`] before: the
        /// pattern of `lb_syn_drop_port_reuse`.
        ReusedTuple = ("reused_tuple", "the client's 4-tuple closed less than 120 s before"),
        /// Another attempt's SYN reached the real server within 1 ms before to 3 ms after
        /// this one would have: the pattern of `conntrack_insert_race` where the SNAT port
        /// a lost SYN was given is not visible (the NAT rewrites ports).
        ConcurrentSyn = ("concurrent_syn", "another attempt's SYN reached the real server within milliseconds"),
    }
}

impl Pattern {
    /// The attempts with and without the pattern, in the words of [`BaseRate::text`].
    fn nouns(self) -> (&'static str, &'static str) {
        match self {
            Pattern::ReusedTuple => ("reused tuples", "fresh"),
            Pattern::ConcurrentSyn => ("attempts with a concurrent SYN", "without"),
        }
    }
}

/// How often the first SYN was lost with a pattern and without it, in one pair's judged
/// attempts: the base rate a cause resting on the pattern needs. A client that reuses its
/// ports constantly loses first SYNs to an unrelated drop on reused tuples as often as on
/// fresh ones, and on a busy server every SYN has a concurrent one; the pattern is a cause
/// only where it raises the loss rate beyond chance.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BaseRate {
    pub pattern: Pattern,
    pub with: u64,
    pub with_lost: u64,
    pub without: u64,
    pub without_lost: u64,
    /// One-sided Fisher exact test: the chance of at least `with_lost` losses with the
    /// pattern were the pattern unrelated to loss.
    pub p_value: f64,
}

codes! {
    /// What a base rate says of a pattern and lost first SYNs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Association {
        /// First SYNs were lost with the pattern more often than without, beyond chance.
        Associated = ("associated", "beyond chance"),
        /// With the pattern no more often than without.
        NotAssociated = ("not_associated", "no more than chance"),
        /// Too few lost first SYNs with the pattern to tell.
        TooFew = ("too_few", "too few to tell"),
    }
}

impl BaseRate {
    /// Losses with the pattern needed before it can be named a cause.
    pub const MIN_LOST: u64 = 3;
    /// The p-value below which the pattern is associated with loss.
    pub const ALPHA: f64 = 0.01;

    /// From (has the pattern, first SYN lost) per attempt.
    fn of(pattern: Pattern, attempts: impl Iterator<Item = (bool, bool)>) -> BaseRate {
        let mut r = BaseRate {
            pattern,
            with: 0,
            with_lost: 0,
            without: 0,
            without_lost: 0,
            p_value: 1.0,
        };
        for (with, lost) in attempts {
            let (n, l) = match with {
                true => (&mut r.with, &mut r.with_lost),
                false => (&mut r.without, &mut r.without_lost),
            };
            *n += 1;
            *l += u64::from(lost);
        }
        r.p_value = fisher_greater(r.with_lost, r.with, r.without_lost, r.without);
        r
    }

    pub fn association(&self) -> Association {
        if self.with_lost < Self::MIN_LOST {
            Association::TooFew
        } else if self.p_value < Self::ALPHA {
            Association::Associated
        } else {
            Association::NotAssociated
        }
    }

    /// In words, with the counts: `first SYN lost on 5 of 5 reused tuples, 0 of 35 fresh
    /// (p 0.00002): associated`.
    pub fn text(&self) -> String {
        let (with, without) = self.pattern.nouns();
        format!(
            "first SYN lost on {} of {} {with}, {} of {} {without} (p {:.5}): {}",
            self.with_lost,
            self.with,
            self.without_lost,
            self.without,
            self.p_value,
            self.association().text(),
        )
    }
}

/// The base rates of a pair's judged attempts, computed once before any attempt is judged.
struct BaseRates {
    reused: BaseRate,
    /// With a real-server capture.
    concurrent: Option<BaseRate>,
}

impl BaseRates {
    /// Over every attempt the pairs of one client capture judge (`sides`: each pair's
    /// real-server side, where it has one).
    fn of(ctxs: &[Context<'_>], sides: &[Option<Beside<'_>>]) -> BaseRates {
        let judged = || {
            ctxs.iter().zip(sides).flat_map(|(ctx, side)| {
                ctx.client
                    .attempts
                    .iter()
                    .filter(|c| ctx.pairing.is_none_or(|p| p.selected[c.id as usize]))
                    .map(move |c| (c, side.as_ref()))
            })
        };
        let client = ctxs.first().map(|c| c.client);
        let reused = BaseRate::of(
            Pattern::ReusedTuple,
            judged().map(|(c, _)| {
                let reused = client.and_then(|cl| reused_recently(cl, c)).is_some();
                (reused, first_syn_lost(c))
            }),
        );
        // Only attempts a real-server capture watched: outside its span nothing is seen
        // to be concurrent.
        let concurrent = sides.iter().any(Option::is_some).then(|| {
            BaseRate::of(
                Pattern::ConcurrentSyn,
                judged()
                    .filter(|(c, own)| {
                        own.is_some_and(|s| outside_rs_span(s.pairing, c) == Some(false))
                    })
                    .map(|(c, _)| {
                        (
                            concurrent_syn(sides.iter().flatten(), c).is_some(),
                            first_syn_lost(c),
                        )
                    }),
            )
        });
        BaseRates { reused, concurrent }
    }

    fn list(&self) -> Vec<BaseRate> {
        std::iter::once(self.reused)
            .chain(self.concurrent)
            .collect()
    }
}

/// Whether the attempt's first SYN falls outside the real-server capture's span (with 1 s
/// of slack before it for the one-way delay and the clock error); `None` without a span.
fn outside_rs_span(p: &Pairing, c: &Attempt) -> Option<bool> {
    let t = c.first_syn().ts;
    p.rs_span
        .map(|(a, b)| t < a.saturating_sub(NS_PER_S) || t > b)
}

/// Another attempt's SYN at a real server within [`RACE_BEFORE_NS`] before to
/// [`RACE_AFTER_NS`] after the client's first SYN (on that server's capture's clock):
/// which of `sides` (its place among them), and the RS attempt's id there.
fn concurrent_syn<'s, 'a: 's>(
    sides: impl IntoIterator<Item = &'s Beside<'a>>,
    c: &Attempt,
) -> Option<(usize, u32)> {
    sides.into_iter().enumerate().find_map(|(i, s)| {
        let t = s.pairing.clock.to_rs(c.first_syn().ts);
        s.index
            .around(t, RACE_BEFORE_NS, RACE_AFTER_NS)
            .find(|&rid| s.pairing.client_of[rid as usize] != Some(c.id))
            .map(|rid| (i, rid))
    })
}

/// Whether an attempt's first SYN went unanswered: the client sent it again, and not
/// because a stale ACK or a refusal answered it (one answering a later SYN does not
/// count: the first was lost all the same).
fn first_syn_lost(c: &Attempt) -> bool {
    let Some(second) = c.syns.get(1) else {
        return false;
    };
    let before_retry = |p: Option<crate::flows::Pkt>| p.is_some_and(|p| p.ts < second.pkt.ts);
    !before_retry(c.stale_ack()) && !before_retry(c.refused())
}

/// One-sided Fisher exact test on the 2×2 table (a of n lost with the pattern, c of m
/// without): P(at least a losses with the pattern) when the pattern is unrelated to loss
/// (hypergeometric). A statistic, so in `f64`.
fn fisher_greater(a: u64, n: u64, c: u64, m: u64) -> f64 {
    let (total, lost) = (n + m, a + c);
    let ln_choose = |n: u64, k: u64| ln_fact(n) - ln_fact(k) - ln_fact(n - k);
    let denom = ln_choose(total, n);
    let top = lost.min(n);
    let mut p = 0.0;
    // x losses with the pattern: lost − x without, which needs lost − x ≤ m.
    for x in a..=top {
        if lost - x > m {
            continue;
        }
        p += (ln_choose(lost, x) + ln_choose(total - lost, n - x) - denom).exp();
    }
    p.min(1.0)
}

/// ln(n!): exact below 256, Stirling's series above (relative error below 1e-12).
fn ln_fact(n: u64) -> f64 {
    if n < 256 {
        return (2..=n).map(|k| (k as f64).ln()).sum();
    }
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x * x * x)
}

/// Judges every selected client attempt.
fn judge_all(
    ctx: &Context<'_>,
    own: Option<&Beside<'_>>,
    others: &[&Beside<'_>],
    rates: &BaseRates,
) -> Records<AttemptVerdict> {
    // Each attempt is judged on its own, in parallel: the captures are read by then, so
    // the cores are free.
    Records::par_filter_map(&ctx.client.attempts, |a| {
        ctx.pairing
            .is_none_or(|p| p.selected[a.id as usize])
            .then(|| judge_one(ctx, own, others, rates, a))
    })
}

codes! {
    /// Which captures the verdicts of a pair were judged from.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Sides {
        Both = ("both", "both captures"),
        /// The client capture alone: the verdicts are inferred from one side.
        ClientOnly = ("client_only", "the client capture alone (inferred from one side)"),
    }
}

/// Verdicts and their summary.
#[derive(Debug, Serialize)]
pub struct VerdictReport {
    pub sides: Sides,
    pub by_verdict: Vec<VerdictRow>,
    /// Lost first SYNs with and without each pattern a cause rests on: whether the
    /// pattern is a cause here (reused tuples always; concurrent SYNs with an RS capture).
    pub base_rates: Vec<BaseRate>,
    pub attempts: Records<AttemptVerdict>,
}

/// Judges every selected client attempt and summarizes the verdicts.
pub fn judge(ctx: &Context<'_>) -> VerdictReport {
    judge_group(std::slice::from_ref(ctx))
        .pop()
        .expect("one report per pair")
}

/// Judges the pairs of one client capture together (`ctxs`, all with the same client
/// capture, each its attempts against one real-server capture: backends on several
/// hosts): the base rates are counted over all of them, and a lost SYN's cause is looked
/// for at every real server, since its retry is balanced anew. A report per pair.
pub fn judge_group(ctxs: &[Context<'_>]) -> Vec<VerdictReport> {
    // How long the NAT holds a closed tuple: conntrack's TIME_WAIT, or less where the
    // captures showed it re-using one sooner.
    let indexes: Vec<Option<RsIndex>> = ctxs
        .iter()
        .map(|ctx| {
            let hold = ctx.pairing.map_or(NAT_HOLD_NS, |p| p.nat.hold_ns());
            ctx.rs.map(|rs| RsIndex::new(rs, ctx.sel, hold))
        })
        .collect();
    let sides: Vec<Option<Beside>> = ctxs
        .iter()
        .zip(&indexes)
        .map(|(ctx, index)| match (ctx.rs, ctx.pairing, index) {
            (Some(rs), Some(pairing), Some(index)) => Some(Beside {
                rs,
                pairing,
                index,
                at: ctx.rs_at,
            }),
            _ => None,
        })
        .collect();
    let rates = BaseRates::of(ctxs, &sides);
    ctxs.iter()
        .enumerate()
        .map(|(i, ctx)| {
            let others: Vec<&Beside> = sides
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .filter_map(|(_, s)| s.as_ref())
                .collect();
            let attempts = judge_all(ctx, sides[i].as_ref(), &others, &rates);
            VerdictReport {
                base_rates: rates.list(),
                sides: if ctx.rs.is_some() {
                    Sides::Both
                } else {
                    Sides::ClientOnly
                },
                by_verdict: summarize(&attempts),
                attempts,
            }
        })
        .collect()
}

/// Counts, shares and delays per verdict, most frequent first.
pub fn summarize<'a>(verdicts: impl IntoIterator<Item = &'a AttemptVerdict>) -> Vec<VerdictRow> {
    let mut by_cause: Vec<Vec<&AttemptVerdict>> = vec![Vec::new(); Cause::ALL.len()];
    for v in verdicts {
        by_cause[v.verdict as usize].push(v);
    }
    let total = by_cause.iter().map(Vec::len).sum::<usize>().max(1) as u64;
    let mut rows: Vec<VerdictRow> = Cause::ALL
        .iter()
        .zip(&by_cause)
        .filter(|(_, v)| !v.is_empty())
        .map(|(&cause, v)| VerdictRow {
            verdict: cause,
            text: cause.text(),
            attempts: v.len() as u64,
            share_permille: v.len() as u64 * 1000 / total,
            // Saturating: a hostile capture's delays can add up past i64 (fuzzing).
            delay_total_ns: v.iter().fold(0i64, |t, v| t.saturating_add(v.delay_ns)),
            delay_max_ns: v.iter().map(|v| v.delay_ns).max().unwrap_or(0),
            remedies: cause
                .remedies()
                .iter()
                .filter(|r| r.applies(v))
                .copied()
                .collect(),
            checks: cause.checks(),
        })
        .collect();
    rows.sort_by(|a, b| b.attempts.cmp(&a.attempts).then(a.verdict.cmp(&b.verdict)));
    rows
}

/// RS attempts in time order, for "what else happened on the RS at that moment".
struct RsIndex<'a> {
    rs: &'a CaptureReport,
    sel: &'a Selection,
    /// (first SYN time on the RS clock, attempt id), sorted.
    by_time: Vec<(i64, u32)>,
    /// Built on the first lost SYN: most pairs have none.
    ports: std::sync::OnceLock<PortUse>,
    /// How long the NAT holds a tuple after its last packet.
    hold_ns: i64,
}

impl<'a> RsIndex<'a> {
    fn new(rs: &'a CaptureReport, sel: &'a Selection, hold_ns: i64) -> RsIndex<'a> {
        let mut by_time: Vec<(i64, u32)> = rs
            .attempts
            .iter()
            .filter(|a| sel.rs_ok(a.id))
            .map(|a| (a.first_syn().ts, a.id))
            .collect();
        by_time.sort_unstable();
        RsIndex {
            rs,
            sel,
            by_time,
            ports: std::sync::OnceLock::new(),
            hold_ns,
        }
    }
    fn ports(&self) -> &PortUse {
        self.ports
            .get_or_init(|| PortUse::new(self.rs, self.sel, self.hold_ns))
    }
    fn around(&self, t: i64, before: i64, after: i64) -> impl Iterator<Item = u32> + '_ {
        // Saturating: `t` is a frame time plus a clock offset, which together can pass the
        // end of the i64 range (found by fuzzing).
        let (from, to) = (t.saturating_sub(before), t.saturating_add(after));
        let lo = self.by_time.partition_point(|&(ts, _)| ts < from);
        self.by_time[lo..]
            .iter()
            .take_while(move |&&(ts, _)| ts <= to)
            .map(|&(_, id)| id)
    }
}

fn judge_one(
    ctx: &Context<'_>,
    own: Option<&Beside<'_>>,
    others: &[&Beside<'_>],
    rates: &BaseRates,
    c: &Attempt,
) -> AttemptVerdict {
    let rs_ids: RsIds = ctx
        .pairing
        .map(|p| p.rs_of[c.id as usize].clone())
        .unwrap_or_default();
    let rs_atts: Vec<&Attempt> = match ctx.rs {
        Some(rs) => rs_ids.iter().map(|&i| &rs.attempts[i as usize]).collect(),
        None => Vec::new(),
    };
    let delay = c.delay_ns();
    let mut v = AttemptVerdict {
        attempt: c.id,
        client: c.client,
        server: c.server,
        isn: c.isn,
        first_syn_ts: c.first_syn().ts,
        tries: c.tries(),
        setup_ns: c.setup_ns(),
        verdict: Cause::Ok,
        signature: None,
        delay_ns: delay,
        one_sided: ctx.rs.is_none(),
        rs_attempts: rs_ids.clone(),
        rs_tuples: rs_atts.iter().map(|a| a.tuple()).collect(),
        // The retry that cost the most time.
        retry: (1..c.tries())
            .max_by_key(|&i| c.gap_ns(i))
            .and_then(|i| c.syns[i].gap_class),
        resend_after_stale: c
            .stale_ack()
            .and_then(|st| c.syns.iter().find(|s| s.pkt.ts > st.ts))
            .and_then(|s| s.gap_class),
        notes: None,
    };
    // Filled while judging, kept only for an attempt with something to explain; its
    // packets are added then.
    let mut n = Notes {
        path: ctx.sel.path(c.id).into(),
        ..Notes::default()
    };
    // The RS capture's clock, when the attempt is judged against it.
    let mut rs_clock = None;
    // A reused tuple whose first SYN was lost: what the base rate says of reuse.
    let reuse_cause = match reused_recently(ctx.client, c) {
        Some(p) if first_syn_lost(c) => {
            n.base_rates.push(rates.reused);
            (rates.reused.association() == Association::Associated).then_some(p)
        }
        _ => None,
    };

    let signature = match own {
        _ if ended_before_next_try(ctx, c) => Some(Cause::CaptureEnded),
        Some(own) => {
            rs_clock = Some(&own.pairing.clock);
            two_sided(ctx, own, others, rates, c, &rs_atts, reuse_cause, &mut n)
        }
        None => one_sided(c, reuse_cause, ctx.slow_ns, &mut n),
    };
    v.signature = signature;
    // Without a counterpart there is nothing to judge: that is the verdict, slow or not.
    v.verdict = if signature == Some(Cause::Unmatched) {
        Cause::Unmatched
    } else if c.is_slow(ctx.slow_ns) {
        signature.unwrap_or(if ctx.rs.is_some() {
            Cause::Unexplained
        } else {
            Cause::SynLostBeforeRs
        })
    } else {
        Cause::Ok
    };
    if v.verdict == Cause::Ok {
        v.signature = signature.filter(|&s| s != Cause::Ok);
    }
    // A clean attempt needs no evidence or explanation beyond its attempt record: keeping
    // notes only where there is something to explain keeps the report small.
    if v.verdict != Cause::Ok || v.signature.is_some() {
        // The attempt's packets in every capture: the client's, the RS's, and where the
        // other captures of the set saw the same SYNs (a node, a copy).
        // (In this order before the sort, which keeps it among equal times.)
        let judged = std::mem::replace(&mut n.evidence, attempt_evidence(c));
        if let Some(clock) = rs_clock {
            for a in &rs_atts {
                n.evidence.extend(rs_evidence(a, clock));
            }
        }
        n.evidence.extend(judged);
        n.evidence
            .extend(ctx.sel.sightings(c.id).iter().map(|s| Evidence {
                side: Side::Other,
                frame: s.frame,
                ts: s.ts,
                what: s.hop.evidence(),
                capture: Some(s.capture),
            }));
        n.evidence.sort_by_key(|e| (e.ts, e.side == Side::Rs));
        v.notes = Some(Box::new(n));
        let open = not_ruled_out(&v);
        v.notes.as_mut().expect("set above").not_ruled_out = open;
        let explanation = explain(&v);
        v.notes.as_mut().expect("set above").explanation = explanation;
    }
    v
}

/// The causes the captures cannot rule out beside an attempt's verdict: what its evidence
/// leaves open. A SYN lost with nobody watching inside the NAT may have died there for any
/// NAT-side reason; exhaustion and a clash both end in conntrack's insert failing; a
/// drop rule can coincide with anything. None where the evidence is direct (a stale ACK, a
/// refusal, a SYN a node saw leave the NAT box and the server never saw).
pub fn not_ruled_out(v: &AttemptVerdict) -> Vec<Cause> {
    use Cause::*;
    let first = v.notes().path.first();
    let seen_leaving = first.is_some_and(|h| h.has(Hop::NatOut));
    let seen_in_nat = first.is_some_and(|h| h.has(Hop::NatIn));
    let mut open = match v.verdict {
        SynLostBeforeRs if seen_leaving => Vec::new(),
        SynLostBeforeRs if v.one_sided => vec![
            SnatPortExhaustion,
            ConntrackInsertRace,
            LbSynDropPortReuse,
            DroppedInNat,
        ],
        // Both sides, nobody inside the NAT: a drop there, or a race whose other SYN the
        // captures cannot show (random SNAT hides the port it was given).
        SynLostBeforeRs if !seen_in_nat => vec![DroppedInNat, ConntrackInsertRace],
        SynLostBeforeRs => vec![ConntrackInsertRace],
        DroppedInNat => vec![ConntrackInsertRace, SnatPortExhaustion],
        SnatPortExhaustion => vec![ConntrackInsertRace],
        ConntrackInsertRace => vec![DroppedInNat],
        LbSynDropPortReuse => vec![SynLostBeforeRs],
        RsSlowSynack if v.one_sided => vec![SynLostBeforeRs, SynackLostAfterRs],
        _ => Vec::new(),
    };
    // The SNAT ports were counted and not nearly all held: exhaustion is ruled out.
    if v.notes().snat_ports_in_use.is_some() && v.verdict != SnatPortExhaustion {
        open.retain(|&c| c != SnatPortExhaustion);
    }
    open
}

/// Whether the attempt is unanswered and the client capture, or the real-server capture,
/// ended before the client's next SYN was due (1 s after the last one, or the last gap if
/// longer): the captures cannot tell a lost SYN from one they stopped watching.
fn ended_before_next_try(ctx: &Context<'_>, c: &Attempt) -> bool {
    if c.outcome != Outcome::NoAnswer {
        return false;
    }
    let last = c.syns.last().expect("an attempt has a SYN");
    let last_gap = c.gap_ns(c.tries() - 1).unwrap_or(0);
    let due = last.pkt.ts.saturating_add(last_gap.max(NS_PER_S));
    let rs_end = ctx.pairing.and_then(|p| p.rs_span).map(|(_, end)| end);
    let ends = [ctx.client.last_ts, rs_end];
    ends.into_iter().flatten().any(|end| end < due)
}

/// The previous connection on the client's own 4-tuple, if it closed less than
/// [`LB_REUSE_WINDOW_NS`] before.
fn reused_recently(client: &CaptureReport, c: &Attempt) -> Option<Previous> {
    client_previous(client, c).filter(|p| p.age_ns <= LB_REUSE_WINDOW_NS)
}

/// The previous connection on the client's own 4-tuple and how long ago it closed.
fn client_previous(client: &CaptureReport, c: &Attempt) -> Option<Previous> {
    let conn = &client.connections[c.conn as usize];
    let p = conn.predecessor?;
    let prev = &client.connections[p.conn as usize];
    Some(Previous {
        side: Side::Client,
        conn: p.conn,
        closed_ts: prev.closed.map(|x| x.ts),
        age_ns: p.since_close_ns.unwrap_or(p.since_last_packet_ns),
    })
}

/// The client-side packets of an attempt, in time order: every SYN try, the stale ACK and
/// the client's RST after it, a refusing RST, the SYN-ACK.
pub fn attempt_evidence(c: &Attempt) -> Vec<Evidence> {
    let mut ev = Vec::new();
    let mut push = |p: Option<crate::flows::Pkt>, what| {
        if let Some(p) = p {
            ev.push(Evidence {
                side: Side::Client,
                frame: p.frame(),
                ts: p.ts,
                what,
                capture: None,
            });
        }
    };
    for (i, s) in c.syns.iter().enumerate() {
        push(Some(s.pkt), if i == 0 { "SYN" } else { "SYN retry" });
    }
    push(c.stale_ack(), "stale ACK");
    push(c.stale_rst(), "client RST");
    push(c.refused(), "RST (refused)");
    push(c.synack, "SYN-ACK");
    ev.sort_by_key(|e| (e.ts, e.frame));
    ev
}

/// A packet of the real-server capture as evidence, on the client's clock.
fn rs_packet(p: crate::flows::Pkt, clock: &ClockModel, what: &'static str) -> Evidence {
    Evidence {
        side: Side::Rs,
        frame: p.frame(),
        ts: clock.to_client(p.ts),
        what,
        capture: None,
    }
}

/// A packet of a real-server side: of the pair's own (`own`), or of another real-server
/// capture of the client capture's, named as another capture of the set.
fn side_packet(side: &Beside<'_>, own: bool, p: crate::flows::Pkt, what: &'static str) -> Evidence {
    let mut e = rs_packet(p, &side.pairing.clock, what);
    if !own {
        e.side = Side::Other;
        e.capture = side.at;
    }
    e
}

fn rs_evidence(a: &Attempt, clock: &ClockModel) -> Vec<Evidence> {
    let mut ev = Vec::new();
    let mut push = |p: Option<crate::flows::Pkt>, what| {
        ev.extend(p.map(|p| rs_packet(p, clock, what)));
    };
    for s in &a.syns {
        push(Some(s.pkt), "SYN on the RS side");
    }
    push(a.stale_ack(), "stale ACK sent by RS");
    push(a.stale_rst(), "client RST at RS");
    push(a.refused(), "RST sent by RS");
    push(a.synack, "SYN-ACK sent by RS");
    ev
}

#[allow(clippy::too_many_arguments)]
fn two_sided(
    ctx: &Context<'_>,
    own: &Beside<'_>,
    others: &[&Beside<'_>],
    rates: &BaseRates,
    c: &Attempt,
    rs_atts: &[&Attempt],
    reuse_cause: Option<Previous>,
    n: &mut Notes,
) -> Option<Cause> {
    let (rs, pairing) = (own.rs, own.pairing);
    if rs_atts.is_empty() {
        let outside = outside_rs_span(pairing, c);
        n.outside_rs_span = outside;
        if outside == Some(true) || c.outcome == Outcome::Established {
            // Outside the RS capture, or answered although the RS capture has no trace of
            // it: nothing to compare with.
            return Some(Cause::Unmatched);
        }
        // No SYN ever reached the real server.
        return Some(lost_syn_cause(own, others, rates, c, None, reuse_cause, n));
    }
    // The first thing that went wrong is the verdict: a refusal of the SYN, the first SYN
    // not reaching the RS, then a stale ACK from a TIME_WAIT socket on the SNAT tuple.
    if rs_atts.iter().any(|a| a.refused().is_some()) || c.refused().is_some() {
        return Some(Cause::RsRefused);
    }
    // Whether the first SYN reached the real server. A packet is told by its TSval, or
    // without timestamps by its IP ID (NAT keeps both); where a later try has the same
    // (IPv6 has no IP ID), only by counting tries on both sides. Where a real server's
    // own capture saw a try of this attempt, the path says (whichever capture is the
    // pair's RS side: a node's leg saw it leave the NAT box, not arrive); else the RS
    // side's SYNs do.
    let first = c.syns[0];
    let same = |s: &crate::flows::SynTry| match first.tsval {
        Some(t) => s.tsval == Some(t),
        None => s.ip_id == first.ip_id,
    };
    let first_reached = if c.syns[1..].iter().any(same) {
        rs_atts.iter().map(|a| a.tries()).sum::<usize>() >= c.tries()
    } else if n.path.iter().any(|h| h.has(Hop::Rs)) {
        n.path[0].has(Hop::Rs)
    } else {
        rs_atts.iter().any(|a| a.syns.iter().any(same))
    };
    if !first_reached {
        return Some(lost_syn_cause(
            own,
            others,
            rates,
            c,
            Some(rs_atts[0]),
            reuse_cause,
            n,
        ));
    }
    if let Some(a) = rs_atts.iter().find(|a| a.stale_ack().is_some()) {
        collision_details(rs, &pairing.clock, a, n);
        return Some(Cause::RsTimewaitCollision);
    }
    if c.stale_ack().is_some() {
        return Some(Cause::RsTimewaitCollision);
    }
    // The RS answered: late, or its SYN-ACK was lost on the way back.
    let rs_first = rs_atts[0];
    if let Some(rsa) = rs_first.synack {
        let sent = pairing.clock.to_client(rsa.ts);
        let seen = c.synack.map(|p| p.ts);
        if seen.is_none_or(|s| s - sent > SYNACK_LOST_NS) {
            return Some(Cause::SynackLostAfterRs);
        }
        if rsa.ts - rs_first.first_syn().ts >= ctx.slow_ns {
            return Some(Cause::RsSlowSynack);
        }
    } else if c.synack.is_none() {
        // The RS saw the SYN and never answered.
        return Some(Cause::RsSlowSynack);
    } else if let (Some(sa), Some((_, end))) = (c.synack, pairing.rs_span)
        && sa.ts > end
    {
        // The RS saw the SYN, and its capture ended before the client got the answer:
        // it answered after that, as late as the client saw.
        return Some(Cause::RsSlowSynack);
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn lost_syn_cause(
    own: &Beside<'_>,
    others: &[&Beside<'_>],
    rates: &BaseRates,
    c: &Attempt,
    reached: Option<&Attempt>,
    reuse_cause: Option<Previous>,
    n: &mut Notes,
) -> Cause {
    let (pairing, index) = (own.pairing, own.index);
    let clock = &pairing.clock;
    // The order of evidence (README, "Which cause"): where the SYN died, then occupancy,
    // then coincidence.
    // 1. A node saw it leave the NAT box: nothing inside the NAT lost it.
    if n.path
        .first()
        .is_some_and(|h| h.has(Hop::NatOut) && !h.has(Hop::Rs))
    {
        return Cause::SynLostBeforeRs;
    }
    // 2. The SNAT ports toward the real server nearly all held. Which server the lost SYN
    //    was sent to is not known: a SYN dropped for want of a port leaves no conntrack
    //    entry, so its retry is balanced anew. So every backend of the service counts,
    //    the retry's first (its count is the one given when none is exhausted).
    let lost_at = clock.to_rs(c.first_syn().ts);
    let backends = pairing
        .nat
        .services
        .iter()
        .filter(|s| s.vip == c.server)
        .flat_map(|s| s.backends.iter().map(|b| b.0));
    let servers: Vec<Option<Endpoint>> = match reached {
        Some(r) => std::iter::once(r.server)
            .chain(backends.filter(|&b| b != r.server))
            .map(Some)
            .collect(),
        None => vec![None],
    };
    let counts = servers
        .into_iter()
        .filter_map(|s| index.ports().at(lost_at, s));
    for (i, (in_use, range)) in counts.enumerate() {
        if i == 0 || exhausted(in_use, range) {
            n.snat_ports_in_use = Some((in_use, range));
        }
        if exhausted(in_use, range) {
            return Cause::SnatPortExhaustion;
        }
    }
    // 3. With ports free, another attempt's SYN on the same SNAT tuple within milliseconds
    //    of when the lost SYN would have reached a real server (this one, or a backend
    //    on another host: the retry is balanced anew): it took the tuple first.
    let ports = [Some(c.client.port), reached.map(|a| a.client.port)];
    // This pair's real-server side first, then the client capture's others.
    let sides = || std::iter::once(own).chain(others.iter().copied());
    for (i, side) in sides().enumerate() {
        let at = side.pairing.clock.to_rs(c.first_syn().ts);
        for rid in side.index.around(at, RACE_BEFORE_NS, RACE_AFTER_NS) {
            let other = &side.rs.attempts[rid as usize];
            let mine = side.pairing.client_of[rid as usize] == Some(c.id);
            // The same SNAT address and port; the real server may differ (the retry is
            // scheduled anew by DNAT).
            if !mine
                && ports.contains(&Some(other.client.port))
                && reached.is_none_or(|r| r.client.ip == other.client.ip)
            {
                n.evidence.push(side_packet(
                    side,
                    i == 0,
                    other.first_syn(),
                    "another client's SYN on the same SNAT tuple",
                ));
                return Cause::ConntrackInsertRace;
            }
        }
    }
    // 3b. Where the NAT rewrites ports, the tuple the lost SYN was given is not visible: a
    //     concurrent SYN is a race only where concurrent SYNs go with lost first SYNs in
    //     this capture beyond chance.
    let port_hidden = match reached {
        Some(r) => r.client.port != c.client.port,
        None => pairing.nat.ports_rewritten > pairing.nat.ports_kept,
    };
    if port_hidden
        && let (Some(rate), Some((i, rid))) = (rates.concurrent, concurrent_syn(sides(), c))
    {
        n.base_rates.push(rate);
        if rate.association() == Association::Associated {
            let side = sides().nth(i).expect("found among the sides");
            n.evidence.push(side_packet(
                side,
                i == 0,
                side.rs.attempts[rid as usize].first_syn(),
                "another attempt's SYN at the same moment (the lost SYN's SNAT port is not visible)",
            ));
            return Cause::ConntrackInsertRace;
        }
    }
    // 4. The client reused its tuple shortly after closing it, the retry got through, and
    //    reuse goes with lost first SYNs in this capture beyond chance.
    if let (Some(prev), Some(_)) = (reuse_cause, reached) {
        n.previous = Some(prev);
        return Cause::LbSynDropPortReuse;
    }
    // No cause shows; a node capture may show where the SYN died.
    if n.path.first().is_some_and(|h| h.dropped_in_nat()) {
        Cause::DroppedInNat
    } else {
        Cause::SynLostBeforeRs
    }
}

/// SNAT tuples held toward each real server over time, for "were the SNAT ports nearly all
/// in use when this SYN was lost". A port is held at RS time `t` when one of its
/// connections started at or before `t` and its last packet is less than the NAT's
/// TIME_WAIT before `t`. Each port's hold intervals are merged into disjoint ones, so the
/// ports held at `t` are the merged intervals started by `t` less those ended before it:
/// two binary searches per query, where scanning every RS connection per lost SYN was
/// the largest cost of a pair's analysis (21 % of a 1.9 M-packet run).
struct PortUse {
    /// Sorted by (SNAT address, real server), so that ties resolve the same way every run.
    groups: Vec<((IpAddr, Endpoint), PortGroup)>,
}

struct PortGroup {
    /// The lowest and highest SNAT port seen toward the server in the whole capture.
    lo: u16,
    hi: u16,
    /// Starts and ends of the merged hold intervals of every port, each sorted.
    starts: Vec<i64>,
    ends: Vec<i64>,
}

impl PortUse {
    fn new(rs: &CaptureReport, sel: &Selection, hold_ns: i64) -> PortUse {
        // The real-server side's connections: with a selection, those of its attempts.
        let rs_side: Option<rustc_hash::FxHashSet<u32>> = sel.rs.as_ref().map(|_| {
            rs.attempts
                .iter()
                .filter(|a| sel.rs_ok(a.id))
                .map(|a| a.conn)
                .collect()
        });
        PortUse::from_spans(
            rs.connections
                .iter()
                .enumerate()
                .filter(|(i, _)| rs_side.as_ref().is_none_or(|s| s.contains(&(*i as u32))))
                .map(|(_, c)| {
                    let end = c.last.ts.saturating_add(hold_ns);
                    ((c.client.ip, c.server), c.client.port, c.first.ts, end)
                })
                .collect(),
        )
    }

    /// From (SNAT address and server, SNAT port, held from, held to) per connection.
    fn from_spans(mut spans: Vec<((IpAddr, Endpoint), u16, i64, i64)>) -> PortUse {
        spans.sort_unstable_by_key(|s| (s.0, s.1, s.2));
        let mut groups: Vec<((IpAddr, Endpoint), PortGroup)> = Vec::new();
        let mut i = 0;
        while i < spans.len() {
            let key = spans[i].0;
            let mut g = PortGroup {
                lo: u16::MAX,
                hi: 0,
                starts: Vec::new(),
                ends: Vec::new(),
            };
            while i < spans.len() && spans[i].0 == key {
                let port = spans[i].1;
                g.lo = g.lo.min(port);
                g.hi = g.hi.max(port);
                // This port's intervals, sorted by start: merge the overlapping ones.
                let (mut s, mut e) = (spans[i].2, spans[i].3);
                i += 1;
                while i < spans.len() && spans[i].0 == key && spans[i].1 == port {
                    if spans[i].2 <= e {
                        e = e.max(spans[i].3);
                    } else {
                        g.starts.push(s);
                        g.ends.push(e);
                        (s, e) = (spans[i].2, spans[i].3);
                    }
                    i += 1;
                }
                g.starts.push(s);
                g.ends.push(e);
            }
            g.starts.sort_unstable();
            g.ends.sort_unstable();
            groups.push((key, g));
        }
        PortUse { groups }
    }

    /// SNAT ports held toward `server` at RS time `t`, and the port range seen toward it
    /// in the whole capture. Without a server, the busiest (SNAT address, server) pair.
    fn at(&self, t: i64, server: Option<Endpoint>) -> Option<(u64, u64)> {
        self.groups
            .iter()
            .filter(|((_, s), _)| server.is_none_or(|want| want == *s))
            .map(|(_, g)| {
                let started = g.starts.partition_point(|&s| s <= t);
                let ended = g.ends.partition_point(|&e| e < t);
                let used = started.saturating_sub(ended) as u64;
                (used, (g.hi as u64).saturating_sub(g.lo as u64) + 1)
            })
            .max_by_key(|&(used, range)| used * 1000 / range.max(1))
    }
}

/// For a collision: the previous connection on the RS tuple and which check failed.
fn collision_details(rs: &CaptureReport, clock: &ClockModel, a: &Attempt, n: &mut Notes) {
    let conn = &rs.connections[a.conn as usize];
    if let Some(p) = conn.predecessor {
        let prev = &rs.connections[p.conn as usize];
        n.previous = Some(Previous {
            side: Side::Rs,
            conn: p.conn,
            closed_ts: prev.closed.map(|x| clock.to_client(x.ts)),
            age_ns: p.since_close_ns.unwrap_or(p.since_last_packet_ns),
        });
        if let Some(x) = prev.closed {
            n.evidence.push(Evidence {
                side: Side::Rs,
                frame: x.frame(),
                ts: clock.to_client(x.ts),
                what: "previous connection on the tuple closed",
                capture: None,
            });
        }
        // Linux accepts a SYN on a TIME_WAIT socket when its TSval is newer than the old
        // connection's, or (no timestamps) its ISN is after the old rcv_nxt.
        let syn_tsval = a
            .syns
            .iter()
            .find(|s| a.stale_ack().is_none_or(|st| s.pkt.ts < st.ts))
            .and_then(|s| s.tsval);
        n.check_failed = match (syn_tsval, prev.last_tsval[0]) {
            (Some(new), Some(old)) if (new.wrapping_sub(old) as i32) <= 0 => {
                Some(TimewaitCheck::Paws)
            }
            _ => match a.stale_ack_number() {
                Some(rcv_nxt) if !a.isn.gt(rcv_nxt) => Some(TimewaitCheck::IsnNotAfter),
                _ => None,
            },
        };
    }
}

fn one_sided(
    c: &Attempt,
    reuse_cause: Option<Previous>,
    slow_ns: i64,
    n: &mut Notes,
) -> Option<Cause> {
    if c.stale_ack().is_some() {
        return Some(Cause::RsTimewaitCollision);
    }
    if c.refused().is_some() {
        return Some(Cause::RsRefused);
    }
    if c.tries() > 1 {
        if let Some(prev) = reuse_cause {
            n.previous = Some(prev);
            return Some(Cause::LbSynDropPortReuse);
        }
        return Some(Cause::SynLostBeforeRs);
    }
    // One SYN, answered: late is the server's doing; on time is no anomaly at all.
    if c.setup_ns().is_some() && c.is_slow(slow_ns) {
        return Some(Cause::RsSlowSynack);
    }
    None
}

fn explain(v: &AttemptVerdict) -> String {
    use crate::units::ms;
    let mut s = format!(
        "{} -> {}: {} {}, {}",
        v.client,
        v.server,
        v.tries,
        if v.tries == 1 { "try" } else { "tries" },
        match v.setup_ns {
            Some(x) => format!("set up in {}", ms(x)),
            None => format!("no SYN-ACK after {}", ms(v.delay_ns)),
        }
    );
    let cause = if v.verdict == Cause::Ok {
        v.signature
    } else {
        Some(v.verdict)
    };
    if let Some(cause) = cause {
        s.push_str(&format!("; {}", cause.text()));
    }
    for f in findings(v) {
        s.push_str("; ");
        s.push_str(&f);
    }
    if v.one_sided {
        s.push_str(" (inferred from one side)");
    }
    s
}

/// What the captures showed of an attempt beyond its tuple, tries and cause, a phrase
/// each: the previous connection on the tuple, the TIME_WAIT check failed, the retry
/// class, the SNAT ports in use, where a lost SYN was last seen.
pub fn findings(v: &AttemptVerdict) -> Vec<String> {
    use crate::units::ms;
    let n = v.notes();
    let mut f = Vec::new();
    if let Some(p) = n.previous {
        let side = match p.side {
            Side::Client => "client",
            Side::Rs => "RS",
            Side::Other => "another capture",
        };
        f.push(format!(
            "previous connection on the tuple ({side} conn {}) closed {} earlier",
            p.conn,
            ms(p.age_ns)
        ));
    }
    if let Some(check) = n.check_failed {
        f.push(check.text().to_string());
    }
    if let Some(r) = v.retry {
        f.push(format!("retry class {}", r.code()));
    }
    if let Some((used, range)) = n.snat_ports_in_use {
        f.push(format!("{used} of {range} SNAT ports toward the RS in use"));
    }
    if n.outside_rs_span == Some(true) {
        f.push("outside the RS capture's time span".into());
    }
    for r in &n.base_rates {
        f.push(format!("{}; {}", r.pattern.text(), r.text()));
    }
    if !n.not_ruled_out.is_empty() {
        let codes: Vec<&str> = n.not_ruled_out.iter().map(|c| c.code()).collect();
        f.push(format!("not ruled out: {}", codes.join(", ")));
    }
    // A lost SYN a node saw leave the NAT box: lost on the network after it.
    if v.verdict == Cause::SynLostBeforeRs
        && n.path
            .first()
            .is_some_and(|h| h.has(Hop::NatOut) && !h.has(Hop::Rs))
    {
        f.push(
            "the node saw it leave the NAT box and the real server never saw it: lost on the network between them".into(),
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use synth::Rng;

    type Span = ((IpAddr, Endpoint), u16, i64, i64);

    /// What [`PortUse::at`] must equal: the distinct ports with a span holding `t`.
    fn brute(spans: &[Span], t: i64, server: Option<Endpoint>) -> Option<(u64, u64)> {
        let mut keys: Vec<(IpAddr, Endpoint)> = spans.iter().map(|s| s.0).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .filter(|k| server.is_none_or(|s| s == k.1))
            .map(|k| {
                let of_key = || spans.iter().filter(move |s| s.0 == k);
                let mut used: Vec<u16> = of_key()
                    .filter(|s| s.2 <= t && s.3 >= t)
                    .map(|s| s.1)
                    .collect();
                used.sort_unstable();
                used.dedup();
                let lo = of_key().map(|s| s.1).min().unwrap();
                let hi = of_key().map(|s| s.1).max().unwrap();
                (used.len() as u64, u64::from(hi - lo) + 1)
            })
            .max_by_key(|&(used, range)| used * 1000 / range.max(1))
    }

    #[test]
    fn test_port_use_equals_a_scan_of_every_connection() {
        let server = |i: u8| Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 2, i)),
            port: 8080,
        };
        for seed in 1..40 {
            let mut rng = Rng::new(seed);
            let spans: Vec<Span> = (0..rng.range(1, 300))
                .map(|_| {
                    let snat = IpAddr::V4(Ipv4Addr::new(10, 0, 1, rng.range(1, 2) as u8));
                    let start = rng.below(1_000) as i64;
                    // Overlapping and touching holds on one port, as a reused tuple has.
                    let end = start + rng.below(300) as i64;
                    let port = 40_000 + rng.below(20) as u16;
                    ((snat, server(rng.range(1, 2) as u8)), port, start, end)
                })
                .collect();
            let index = PortUse::from_spans(spans.clone());
            for t in (-10..1_400).step_by(7) {
                for s in [None, Some(server(1)), Some(server(2)), Some(server(3))] {
                    assert_eq!(
                        index.at(t, s),
                        brute(&spans, t, s),
                        "seed {seed} t {t} {s:?}"
                    );
                }
            }
        }
    }
}

/// The verdict rules by situation, on hand-built client captures judged alone (one side):
/// each test is one sequence of packets an SRE would recognise.
#[cfg(test)]
mod situations {
    use super::*;
    use crate::capture::{self, DEFAULT_SLOW_NS};
    use crate::decode::{Segment, TcpFlags};

    const MS: i64 = NS_PER_MS;
    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const RST: u8 = TcpFlags::RST;
    const FIN_ACK: u8 = TcpFlags::FIN | TcpFlags::ACK;
    const ISN: u32 = 1_000;
    const SERVER_ISN: u32 = 9_000;

    fn client() -> Endpoint {
        Endpoint {
            ip: "10.0.0.1".parse().unwrap(),
            port: 51865,
        }
    }
    fn vip() -> Endpoint {
        Endpoint {
            ip: "10.96.0.10".parse().unwrap(),
            port: 80,
        }
    }

    /// A packet from the client (`up`) or to it, `ms` after the start.
    fn pkt(up: bool, ms: i64, seq: u32, ack: u32, flags: u8) -> (bool, i64, u32, u32, u8) {
        (up, ms, seq, ack, flags)
    }

    /// The client capture of these packets, judged alone.
    fn judge_client_capture(packets: &[(bool, i64, u32, u32, u8)]) -> AttemptVerdict {
        judge_with(packets, &Selection::default())
    }

    /// The same, with what a capture set knows of the attempts (`sel`).
    fn judge_with(packets: &[(bool, i64, u32, u32, u8)], sel: &Selection) -> AttemptVerdict {
        let segments: Vec<Segment> = packets
            .iter()
            .enumerate()
            .map(|(i, &(up, ms, seq, ack, flags))| {
                let (src, dst) = if up {
                    (client(), vip())
                } else {
                    (vip(), client())
                };
                let ts = 1_700_000_000 * NS_PER_S + ms * MS;
                Segment::bare(i as u64 + 1, ts, src, dst, seq, ack, flags)
            })
            .collect();
        let cap = capture::of_segments("client.pcap", &segments);
        let report = judge(&Context {
            client: &cap,
            rs: None,
            pairing: None,
            sel,
            slow_ns: DEFAULT_SLOW_NS,
            rs_at: None,
        });
        assert_eq!(report.sides, Sides::ClientOnly);
        report.attempts.iter().last().expect("an attempt").clone()
    }

    fn handshake(at: i64, syn_to_synack: i64) -> Vec<(bool, i64, u32, u32, u8)> {
        vec![
            pkt(true, at, ISN, 0, SYN),
            pkt(false, at + syn_to_synack, SERVER_ISN, ISN + 1, SYNACK),
            pkt(true, at + syn_to_synack + 1, ISN + 1, SERVER_ISN + 1, ACK),
        ]
    }

    #[test]
    fn test_quick_handshake_is_ok_without_evidence() {
        let v = judge_client_capture(&handshake(0, 1));
        assert_eq!(v.verdict, Cause::Ok);
        assert_eq!(v.signature, None);
        assert!(v.notes().evidence.is_empty() && v.notes().explanation.is_empty());
        assert_eq!(v.delay_ns, MS);
    }

    #[test]
    fn test_single_syn_answered_late_is_rs_slow_synack() {
        let v = judge_client_capture(&handshake(0, 300));
        assert_eq!(v.verdict, Cause::RsSlowSynack);
        assert_eq!(v.delay_ns, 300 * MS);
        assert!(v.one_sided);
    }

    #[test]
    fn test_stale_ack_then_resend_within_ms_is_a_signature_not_a_slow_verdict() {
        let v = judge_client_capture(&[
            pkt(true, 0, ISN, 0, SYN),
            pkt(false, 1, 77_777, 5_555, ACK),
            pkt(true, 2, 5_555, 0, RST),
            pkt(true, 11, ISN, 0, SYN),
            pkt(false, 12, SERVER_ISN, ISN + 1, SYNACK),
        ]);
        assert_eq!(v.verdict, Cause::Ok);
        assert_eq!(v.signature, Some(Cause::RsTimewaitCollision));
        assert_eq!(v.resend_after_stale, Some(GapClass::AfterReset));
        let whats: Vec<&str> = v.notes().evidence.iter().map(|e| e.what).collect();
        assert_eq!(
            whats,
            ["SYN", "stale ACK", "client RST", "SYN retry", "SYN-ACK"]
        );
    }

    #[test]
    fn test_stale_ack_then_resend_after_1s_is_rs_timewait_collision() {
        let v = judge_client_capture(&[
            pkt(true, 0, ISN, 0, SYN),
            pkt(false, 1, 77_777, 5_555, ACK),
            pkt(true, 2, 5_555, 0, RST),
            pkt(true, 1_000, ISN, 0, SYN),
            pkt(false, 1_001, SERVER_ISN, ISN + 1, SYNACK),
        ]);
        assert_eq!(v.verdict, Cause::RsTimewaitCollision);
        assert_eq!(v.delay_ns, 1_001 * MS);
        assert_eq!(v.resend_after_stale, Some(GapClass::InitialRto1s));
    }

    #[test]
    fn test_random_fully_only_where_the_snat_kept_client_ports() {
        let mut v = judge_client_capture(&[
            pkt(true, 0, ISN, 0, SYN),
            pkt(false, 1, 77_777, 5_555, ACK),
            pkt(true, 2, 5_555, 0, RST),
            pkt(true, 1_000, ISN, 0, SYN),
            pkt(false, 1_001, SERVER_ISN, ISN + 1, SYNACK),
        ]);
        let random_fully = Cause::RsTimewaitCollision.remedies()[0];
        assert!(random_fully.fix.starts_with("--random-fully"));
        // The client capture alone: nothing says the ports were rewritten.
        assert!(random_fully.applies(&[&v]));
        let rs_side = |port: u16| {
            let snat = Endpoint {
                ip: "10.0.0.9".parse().unwrap(),
                port,
            };
            Tuple::new(snat, v.server)
        };
        // Every port rewritten: not port preservation that collided.
        v.rs_tuples = smallvec::smallvec![rs_side(40_000)];
        assert!(!random_fully.applies(&[&v]));
        // The client's port kept on the real-server side.
        v.rs_tuples = smallvec::smallvec![rs_side(v.client.port)];
        assert!(random_fully.applies(&[&v]));
    }

    #[test]
    fn test_syn_retry_after_1s_on_fresh_tuple_is_syn_lost_before_rs() {
        let mut p = vec![pkt(true, 0, ISN, 0, SYN)];
        p.extend(handshake(1_000, 1));
        let v = judge_client_capture(&p);
        assert_eq!(v.verdict, Cause::SynLostBeforeRs);
        assert_eq!(v.tries, 2);
        assert_eq!(v.retry, Some(GapClass::InitialRto1s));
        assert_eq!(v.notes().previous, None);
        // From the client side alone, any NAT-side loss is still possible.
        assert_eq!(
            v.notes().not_ruled_out,
            [
                Cause::SnatPortExhaustion,
                Cause::ConntrackInsertRace,
                Cause::LbSynDropPortReuse,
                Cause::DroppedInNat
            ]
        );
        assert!(
            v.notes()
                .explanation
                .contains("not ruled out: snat_port_exhaustion")
        );
    }

    #[test]
    fn test_syn_lost_after_leaving_the_nat_box_says_where() {
        use crate::vantage::{Hop, Hops};
        let mut p = vec![pkt(true, 0, ISN, 0, SYN)];
        p.extend(handshake(1_000, 1));
        // A node saw both SYNs leave the NAT box; the real server only the second.
        let out = Hops::of(&[Hop::Client, Hop::NatIn, Hop::NatOut]);
        let all = Hops::of(&[Hop::Client, Hop::NatIn, Hop::NatOut, Hop::Rs]);
        let sel = Selection {
            paths: vec![[out, all].into_iter().collect()],
            ..Selection::default()
        };
        let v = judge_with(&p, &sel);
        assert_eq!(v.verdict, Cause::SynLostBeforeRs);
        assert!(
            v.notes()
                .explanation
                .contains("lost on the network between them"),
            "{}",
            v.notes().explanation
        );
        // Seen leaving the NAT box: nothing inside the NAT is left to suspect.
        assert!(
            v.notes().not_ruled_out.is_empty(),
            "{:?}",
            v.notes().not_ruled_out
        );
        // Without the node's sighting the sentence says nothing of where.
        let v = judge_client_capture(&p);
        assert!(
            !v.notes().explanation.contains("between them"),
            "{}",
            v.notes().explanation
        );
    }

    #[test]
    fn test_fisher_exact_matches_hand_computed_tables() {
        // All 3 reused tuples lost their first SYN, none of 10 fresh: 1 / C(13, 3).
        let p = fisher_greater(3, 3, 0, 10);
        assert!((p - 1.0 / 286.0).abs() < 1e-12, "{p}");
        // Lost as often either way: nowhere near significant.
        assert!(fisher_greater(3, 30, 3, 30) > 0.5);
        // No loss at all, or none on reused tuples: p is 1.
        assert_eq!(fisher_greater(0, 10, 0, 10), 1.0);
        assert!((fisher_greater(0, 10, 5, 10) - 1.0).abs() < 1e-12);
        // Large counts (Stirling's series): 50 of 100 reused lost against 5 of 10 000 fresh.
        assert!(fisher_greater(50, 100, 5, 10_000) < 1e-50);
        assert!((ln_fact(300) - (1..=300).map(|k| (k as f64).ln()).sum::<f64>()).abs() < 1e-9);
    }

    #[test]
    fn test_association_needs_a_minimum_count_and_a_low_p() {
        // (with the pattern, lost) per attempt, from the counts of a 2×2 table.
        let r = |with_lost: usize, with: usize, without_lost: usize, without: usize| {
            let rows = (0..with)
                .map(|i| (true, i < with_lost))
                .chain((0..without).map(|i| (false, i < without_lost)));
            BaseRate::of(Pattern::ReusedTuple, rows).association()
        };
        assert_eq!(r(5, 5, 0, 35), Association::Associated);
        assert_eq!(r(2, 2, 0, 1000), Association::TooFew);
        // The hard negative: a client reusing its ports constantly, losing first SYNs to
        // an unrelated drop at the same rate on reused and fresh tuples.
        assert_eq!(r(22, 220, 12, 120), Association::NotAssociated);
        // On a busy server every SYN has a concurrent one: races can't be told from loss.
        assert_eq!(r(6, 990, 0, 10), Association::NotAssociated);
    }

    #[test]
    fn test_lone_reused_tuple_with_a_lost_syn_is_too_few_to_blame_reuse() {
        // An earlier connection on the same tuple, closed 5 s before the new SYN: the only
        // reused tuple of the capture, so reuse cannot be told from chance.
        let old = 4_000_000;
        let mut p = vec![
            pkt(true, 0, old, 0, SYN),
            pkt(false, 1, 8_000, old + 1, SYNACK),
            pkt(true, 2, old + 1, 8_001, ACK),
            pkt(true, 3, old + 1, 8_001, FIN_ACK),
            pkt(false, 4, 8_001, old + 2, FIN_ACK),
            pkt(true, 5, old + 2, 8_002, ACK),
        ];
        p.push(pkt(true, 5_005, ISN, 0, SYN));
        p.extend(handshake(6_005, 1));
        let v = judge_client_capture(&p);
        assert_eq!(v.verdict, Cause::SynLostBeforeRs);
        let [r] = v.notes().base_rates[..] else {
            panic!("one base rate, in the evidence: {:?}", v.notes().base_rates)
        };
        assert_eq!(r.pattern, Pattern::ReusedTuple);
        assert_eq!((r.with, r.with_lost), (1, 1));
        assert_eq!(r.association(), Association::TooFew);
        assert!(
            v.notes().explanation.contains(
                "first SYN lost on 1 of 1 reused tuples, 0 of 1 fresh (p 0.50000): too few to tell"
            ),
            "{}",
            v.notes().explanation
        );
    }

    #[test]
    fn test_refused_is_rs_refused_timed_to_the_rst() {
        let v = judge_client_capture(&[
            pkt(true, 0, ISN, 0, SYN),
            pkt(false, 3, 0, ISN + 1, RST | ACK),
        ]);
        assert_eq!(v.verdict, Cause::RsRefused);
        assert_eq!(v.setup_ns, None);
        assert_eq!(v.delay_ns, 3 * MS);
    }

    #[test]
    fn test_unanswered_syn_when_the_capture_ends_is_capture_ended_not_a_loss() {
        // The capture ends 0.5 s after the SYN, before a retry was due.
        let v = judge_client_capture(&[pkt(true, 0, ISN, 0, SYN), pkt(true, 500, ISN + 1, 1, ACK)]);
        assert_eq!(v.verdict, Cause::CaptureEnded);
    }

    #[test]
    fn test_unanswered_syn_with_retries_due_and_missing_is_a_loss() {
        // Retries at 1 s and 3 s, then the capture goes on 10 s without the next one.
        let v = judge_client_capture(&[
            pkt(true, 0, ISN, 0, SYN),
            pkt(true, 1_000, ISN, 0, SYN),
            pkt(true, 3_000, ISN, 0, SYN),
            pkt(true, 13_000, ISN + 1, 1, ACK),
        ]);
        assert_eq!(v.verdict, Cause::SynLostBeforeRs);
        assert_eq!(v.delay_ns, 3_000 * MS);
    }
}
