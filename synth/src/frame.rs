//! Frame builders: one TCP segment, described by a typed [`TcpSpec`], rendered as the bytes
//! a capture would hold under a chosen link layer or tunnel ([`Encap`]).
//!
//! The bytes are written by hand rather than with etherparse's builder so that the tests,
//! which read them back with etherparse, check an independent implementation. Invariants: IPv4 header and TCP/ICMP checksums are correct; TCP options
//! are laid out exactly as Linux writes them; `src` and `dst` of a spec are of the same IP
//! family (mixing them is a bug in the caller and panics).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::BitOr;

/// TCP control bits, as the flags byte of the header (CWR..FIN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ControlBits(pub u8);

impl ControlBits {
    pub const FIN: ControlBits = ControlBits(0x01);
    pub const SYN: ControlBits = ControlBits(0x02);
    pub const RST: ControlBits = ControlBits(0x04);
    pub const PSH: ControlBits = ControlBits(0x08);
    pub const ACK: ControlBits = ControlBits(0x10);
    pub const URG: ControlBits = ControlBits(0x20);
    pub const ECE: ControlBits = ControlBits(0x40);
    pub const CWR: ControlBits = ControlBits(0x80);
    pub const NONE: ControlBits = ControlBits(0);

    pub fn has(self, f: ControlBits) -> bool {
        self.0 & f.0 == f.0
    }
    pub fn syn(self) -> bool {
        self.has(ControlBits::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(ControlBits::ACK)
    }
    pub fn fin(self) -> bool {
        self.has(ControlBits::FIN)
    }
    pub fn rst(self) -> bool {
        self.has(ControlBits::RST)
    }
    pub fn psh(self) -> bool {
        self.has(ControlBits::PSH)
    }
}

impl BitOr for ControlBits {
    type Output = ControlBits;
    fn bitor(self, rhs: ControlBits) -> ControlBits {
        ControlBits(self.0 | rhs.0)
    }
}

/// One TCP segment as the capture should show it. Payload bytes are zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: ControlBits,
    /// The raw 16-bit field (unscaled).
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    /// One SACK block (left, right), as a receiver sends with a duplicate ACK.
    pub sack: Option<(u32, u32)>,
    pub payload_len: usize,
    /// IPv4 identification; unused for IPv6.
    pub ip_id: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

impl Default for TcpSpec {
    fn default() -> Self {
        TcpSpec {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            sport: 0,
            dport: 0,
            seq: 0,
            ack: 0,
            flags: ControlBits::NONE,
            window: 0,
            mss: None,
            wscale: None,
            sack_perm: false,
            ts: None,
            sack: None,
            payload_len: 0,
            ip_id: 0,
            ttl: 64,
        }
    }
}

impl TcpSpec {
    /// Sequence space the segment occupies (payload plus one for SYN and for FIN).
    pub fn seq_len(&self) -> u32 {
        self.payload_len as u32 + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }

    /// Bytes of TCP options in Linux's layout (always a multiple of 4).
    pub fn options_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.ts.is_some() || self.sack_perm {
            // SACK_PERM+TS share 12 bytes; either alone is padded with two NOPs.
            n += if self.ts.is_some() { 12 } else { 4 };
        }
        if self.wscale.is_some() {
            n += 4;
        }
        if self.sack.is_some() {
            n += 12;
        }
        n
    }
}

/// How the IP packet is wrapped in the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    Ethernet,
    /// 802.1Q tag with this VLAN id.
    Vlan(u16),
    /// 802.1ad outer (S-tag) and inner (C-tag) VLAN ids.
    QinQ(u16, u16),
    /// Linux cooked v1 (`tcpdump -i any` before libpcap 1.10).
    Sll,
    /// Linux cooked v2 (`tcpdump -i any` since libpcap 1.10).
    Sll2,
    /// No link header; the IP version nibble tells v4 from v6.
    RawIp,
    /// BSD loopback: a 4-byte address family in the capturing host's byte order (here
    /// little-endian, as on x86 and arm hosts); AF_INET6 is macOS's 30.
    Null,
    /// Ethernet / outer IPv4 (protocol 4, or 41 for an IPv6 inner packet) / inner IP, as on
    /// calico's `tunl0` seen from the underlay.
    IpIp {
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
    },
    /// Ethernet / IPv4 / UDP 4789 / VXLAN / Ethernet / inner IP (flannel, cilium).
    Vxlan {
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
        vni: u32,
    },
    /// Ethernet / IPv4 / UDP 6081 / Geneve (no options) / Ethernet / inner IP (OVN).
    Geneve {
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
        vni: u32,
    },
    /// Ethernet / one MPLS label (bottom of stack) / IP.
    Mpls(u32),
    /// Ethernet / PPPoE session / PPP / IP.
    Pppoe(u16),
    /// Cisco FabricPath: an outer Ethernet header with EtherType 0x8903 and its tag, then
    /// the original Ethernet frame.
    FabricPath,
    /// Ethernet / IPv4 / GRE (no options) / IP.
    Gre {
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
    },
    /// Port mirroring: Ethernet / IPv4 / GRE with a sequence number / ERSPAN type II /
    /// the mirrored Ethernet frame.
    ErspanII {
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
    },
    /// Ethernet / IPv4 / UDP 2152 / GTP-U G-PDU (8-byte header) / IP.
    GtpU {
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
        teid: u32,
    },
}

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// The LINKTYPE_* number a capture of these frames carries.
pub fn linktype(encap: &Encap) -> u32 {
    match encap {
        Encap::Sll => LINKTYPE_LINUX_SLL,
        Encap::Sll2 => LINKTYPE_LINUX_SLL2,
        Encap::RawIp => LINKTYPE_RAW,
        Encap::Null => LINKTYPE_NULL,
        Encap::Ethernet
        | Encap::Vlan(_)
        | Encap::QinQ(..)
        | Encap::IpIp { .. }
        | Encap::Vxlan { .. }
        | Encap::Geneve { .. }
        | Encap::Mpls(_)
        | Encap::Pppoe(_)
        | Encap::FabricPath
        | Encap::Gre { .. }
        | Encap::ErspanII { .. }
        | Encap::GtpU { .. } => LINKTYPE_ETHERNET,
    }
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Geneve's protocol type for an Ethernet payload ("transparent Ethernet bridging").
const ETHERTYPE_TEB: u16 = 0x6558;

pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
pub const GTPU_PORT: u16 = 2152;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_FABRICPATH: u16 = 0x8903;
const ETHERTYPE_ERSPAN_II: u16 = 0x88be;
const PROTO_GRE: u8 = 47;

const PROTO_IPIP: u8 = 4;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_IPV6_IN_IP: u8 = 41;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// A locally administered MAC derived from an address, so each host keeps one MAC and a
/// reader can tell directions apart at layer 2 too.
pub fn mac_of(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let s = a.octets();
            [s[12], s[13], s[14], s[15]]
        }
    };
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// The frame of one TCP segment.
pub fn frame(encap: &Encap, tcp: &TcpSpec) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + tcp.payload_len);
    frame_into(encap, tcp, &mut out);
    out
}

/// [`frame`] into a reused buffer (cleared first), for writing millions of frames.
pub fn frame_into(encap: &Encap, tcp: &TcpSpec, out: &mut Vec<u8>) {
    out.clear();
    let l3 = L3::Ip {
        src: tcp.src,
        dst: tcp.dst,
        proto: PROTO_TCP,
        ip_id: tcp.ip_id,
        ttl: tcp.ttl,
    };
    wrap(encap, l3, out, |out| push_tcp(out, tcp));
}

/// A non-TCP frame, for skip-reason tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherSpec {
    Udp {
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        payload_len: usize,
    },
    /// ICMP (or ICMPv6) echo request.
    IcmpEcho {
        src: IpAddr,
        dst: IpAddr,
        id: u16,
        seq: u16,
    },
    /// ARP who-has `target` from `sender`.
    Arp { sender: Ipv4Addr, target: Ipv4Addr },
}

/// The frame of a non-TCP packet; `None` for ARP under an encapsulation that has no
/// Ethernet type (raw IP, BSD loopback, IP-in-IP).
pub fn other_frame(encap: &Encap, spec: &OtherSpec) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    match *spec {
        OtherSpec::Udp {
            src,
            dst,
            sport,
            dport,
            payload_len,
        } => {
            let l3 = L3::Ip {
                src,
                dst,
                proto: PROTO_UDP,
                ip_id: 1,
                ttl: 64,
            };
            wrap(encap, l3, &mut out, |out| {
                let off = out.len();
                push_udp(out, sport, dport);
                out.resize(out.len() + payload_len, 0);
                finish_udp(out, off, Some((src, dst)));
            });
        }
        OtherSpec::IcmpEcho { src, dst, id, seq } => {
            let proto = if src.is_ipv4() {
                PROTO_ICMP
            } else {
                PROTO_ICMPV6
            };
            let l3 = L3::Ip {
                src,
                dst,
                proto,
                ip_id: 1,
                ttl: 64,
            };
            wrap(encap, l3, &mut out, |out| {
                let off = out.len();
                out.push(if src.is_ipv4() { 8 } else { 128 });
                out.push(0);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(b"pcapdiag");
                // ICMPv4 sums the message alone; ICMPv6 adds the pseudo-header.
                let pseudo = if src.is_ipv4() {
                    None
                } else {
                    Some((src, dst))
                };
                let c = l4_checksum(&out[off..], pseudo, PROTO_ICMPV6);
                out[off + 2..off + 4].copy_from_slice(&c.to_be_bytes());
            });
        }
        OtherSpec::Arp { sender, target } => {
            if matches!(
                encap,
                Encap::RawIp
                    | Encap::Null
                    | Encap::IpIp { .. }
                    | Encap::Mpls(_)
                    | Encap::Pppoe(_)
                    | Encap::Gre { .. }
                    | Encap::GtpU { .. }
            ) {
                return None;
            }
            wrap(encap, L3::Arp, &mut out, |out| {
                out.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
                out.extend_from_slice(&mac_of(IpAddr::V4(sender)));
                out.extend_from_slice(&sender.octets());
                out.extend_from_slice(&[0; 6]);
                out.extend_from_slice(&target.octets());
            });
        }
    }
    Some(out)
}

/// The network layer a link layer wraps.
#[derive(Clone, Copy)]
enum L3 {
    Ip {
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        ip_id: u16,
        ttl: u8,
    },
    Arp,
}

impl L3 {
    fn ethertype(&self) -> u16 {
        match self {
            L3::Ip {
                src: IpAddr::V4(_), ..
            } => ETHERTYPE_IPV4,
            L3::Ip {
                src: IpAddr::V6(_), ..
            } => ETHERTYPE_IPV6,
            L3::Arp => ETHERTYPE_ARP,
        }
    }
    /// (source, destination) for the link header's MACs.
    fn hosts(&self) -> (IpAddr, IpAddr) {
        match *self {
            L3::Ip { src, dst, .. } => (src, dst),
            L3::Arp => (
                IpAddr::V4(Ipv4Addr::new(0, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::BROADCAST),
            ),
        }
    }
}

/// Writes link/tunnel headers, the network header and the transport (via `l4`), then
/// patches lengths and checksums from the inside out.
fn wrap(encap: &Encap, l3: L3, out: &mut Vec<u8>, l4: impl FnOnce(&mut Vec<u8>)) {
    let et = l3.ethertype();
    let (h_src, h_dst) = l3.hosts();
    match *encap {
        Encap::Ethernet => push_eth(out, h_src, h_dst, et),
        Encap::Vlan(id) => {
            push_eth(out, h_src, h_dst, ETHERTYPE_VLAN);
            push_tag(out, id, et);
        }
        Encap::QinQ(outer, inner) => {
            push_eth(out, h_src, h_dst, ETHERTYPE_QINQ);
            push_tag(out, outer, ETHERTYPE_VLAN);
            push_tag(out, inner, et);
        }
        Encap::Sll => {
            out.extend_from_slice(&0u16.to_be_bytes()); // PACKET_HOST
            out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
            out.extend_from_slice(&6u16.to_be_bytes());
            out.extend_from_slice(&mac_of(h_src));
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&et.to_be_bytes());
        }
        Encap::Sll2 => {
            out.extend_from_slice(&et.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&2u32.to_be_bytes()); // ifindex: eth0 on most hosts
            out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
            out.push(0); // PACKET_HOST
            out.push(6);
            out.extend_from_slice(&mac_of(h_src));
            out.extend_from_slice(&[0, 0]);
        }
        Encap::RawIp => {}
        Encap::Null => {
            let af: u32 = if et == ETHERTYPE_IPV6 { 30 } else { 2 };
            out.extend_from_slice(&af.to_le_bytes());
        }
        Encap::IpIp {
            outer_src,
            outer_dst,
        } => {
            let (o_src, o_dst) = (IpAddr::V4(outer_src), IpAddr::V4(outer_dst));
            push_eth(out, o_src, o_dst, ETHERTYPE_IPV4);
            let proto = if et == ETHERTYPE_IPV6 {
                PROTO_IPV6_IN_IP
            } else {
                PROTO_IPIP
            };
            let outer = push_ipv4(out, outer_src, outer_dst, proto, 0, 64);
            push_l3(out, l3, l4);
            finish_ipv4(out, outer);
            return;
        }
        Encap::Vxlan {
            outer_src,
            outer_dst,
            vni,
        }
        | Encap::Geneve {
            outer_src,
            outer_dst,
            vni,
        } => {
            let vxlan = matches!(encap, Encap::Vxlan { .. });
            let (o_src, o_dst) = (IpAddr::V4(outer_src), IpAddr::V4(outer_dst));
            push_eth(out, o_src, o_dst, ETHERTYPE_IPV4);
            let outer = push_ipv4(out, outer_src, outer_dst, PROTO_UDP, 0, 64);
            // Tunnels derive the UDP source port from the inner flow for ECMP entropy.
            let sport = 49152 | (flow_hash(h_src, h_dst) & 0x3fff);
            let udp = out.len();
            push_udp(out, sport, if vxlan { VXLAN_PORT } else { GENEVE_PORT });
            let vni = (vni & 0x00ff_ffff) << 8;
            if vxlan {
                out.extend_from_slice(&[0x08, 0, 0, 0]); // I flag: VNI valid
            } else {
                out.extend_from_slice(&[0, 0]); // version 0, no options, O=C=0
                out.extend_from_slice(&ETHERTYPE_TEB.to_be_bytes());
            }
            out.extend_from_slice(&vni.to_be_bytes());
            push_eth(out, h_src, h_dst, et);
            push_l3(out, l3, l4);
            // Zero UDP checksum over IPv4, as the Linux tunnel drivers send by default.
            finish_udp(out, udp, None);
            finish_ipv4(out, outer);
            return;
        }
        Encap::Mpls(label) => {
            push_eth(out, h_src, h_dst, ETHERTYPE_MPLS);
            // Label, traffic class 0, bottom of stack, TTL 64.
            out.extend_from_slice(&(((label & 0xf_ffff) << 12) | (1 << 8) | 64).to_be_bytes());
        }
        Encap::Pppoe(session) => {
            push_eth(out, h_src, h_dst, ETHERTYPE_PPPOE_SESSION);
            out.extend_from_slice(&[0x11, 0x00]); // version 1, type 1, session data
            out.extend_from_slice(&session.to_be_bytes());
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            let ppp: u16 = if et == ETHERTYPE_IPV6 { 0x0057 } else { 0x0021 };
            out.extend_from_slice(&ppp.to_be_bytes());
            push_l3(out, l3, l4);
            // The PPPoE length counts the PPP protocol field and what follows.
            let len = (out.len() - len_at - 2) as u16;
            out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
            return;
        }
        Encap::FabricPath => {
            push_eth(out, h_src, h_dst, ETHERTYPE_FABRICPATH);
            out.extend_from_slice(&[0x00, 0x3f]); // FTag 0, TTL 63
            push_eth(out, h_src, h_dst, et);
        }
        Encap::Gre {
            outer_src,
            outer_dst,
        }
        | Encap::ErspanII {
            outer_src,
            outer_dst,
        } => {
            let erspan = matches!(encap, Encap::ErspanII { .. });
            let (o_src, o_dst) = (IpAddr::V4(outer_src), IpAddr::V4(outer_dst));
            push_eth(out, o_src, o_dst, ETHERTYPE_IPV4);
            let outer = push_ipv4(out, outer_src, outer_dst, PROTO_GRE, 0, 64);
            if erspan {
                out.extend_from_slice(&[0x10, 0x00]); // S: a sequence number follows
                out.extend_from_slice(&ETHERTYPE_ERSPAN_II.to_be_bytes());
                out.extend_from_slice(&1u32.to_be_bytes());
                // ERSPAN II: version 1, VLAN 0, COS 0, encapsulation 0, session 1, index 0.
                out.extend_from_slice(&[0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]);
                push_eth(out, h_src, h_dst, et);
            } else {
                out.extend_from_slice(&[0x00, 0x00]);
                out.extend_from_slice(&et.to_be_bytes());
            }
            push_l3(out, l3, l4);
            finish_ipv4(out, outer);
            return;
        }
        Encap::GtpU {
            outer_src,
            outer_dst,
            teid,
        } => {
            let (o_src, o_dst) = (IpAddr::V4(outer_src), IpAddr::V4(outer_dst));
            push_eth(out, o_src, o_dst, ETHERTYPE_IPV4);
            let outer = push_ipv4(out, outer_src, outer_dst, PROTO_UDP, 0, 64);
            let udp = out.len();
            push_udp(out, GTPU_PORT, GTPU_PORT);
            // Version 1, protocol type GTP, no optional fields; message type G-PDU.
            out.extend_from_slice(&[0x30, 0xff]);
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&teid.to_be_bytes());
            push_l3(out, l3, l4);
            let len = (out.len() - len_at - 6) as u16;
            out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
            finish_udp(out, udp, None);
            finish_ipv4(out, outer);
            return;
        }
    }
    push_l3(out, l3, l4);
}

fn push_l3(out: &mut Vec<u8>, l3: L3, l4: impl FnOnce(&mut Vec<u8>)) {
    match l3 {
        L3::Ip {
            src: IpAddr::V4(s),
            dst: IpAddr::V4(d),
            proto,
            ip_id,
            ttl,
        } => {
            let off = push_ipv4(out, s, d, proto, ip_id, ttl);
            l4(out);
            finish_l4_checksum(out, off + 20, proto, (IpAddr::V4(s), IpAddr::V4(d)));
            finish_ipv4(out, off);
        }
        L3::Ip {
            src: IpAddr::V6(s),
            dst: IpAddr::V6(d),
            proto,
            ttl,
            ..
        } => {
            let off = push_ipv6(out, s, d, proto, ttl);
            l4(out);
            finish_l4_checksum(out, off + 40, proto, (IpAddr::V6(s), IpAddr::V6(d)));
            finish_ipv6(out, off);
        }
        L3::Ip { .. } => panic!("TcpSpec/OtherSpec with mixed IPv4 and IPv6 addresses"),
        L3::Arp => l4(out),
    }
}

/// TCP's checksum needs the final length, so it is computed after the payload is in.
fn finish_l4_checksum(out: &mut [u8], off: usize, proto: u8, addrs: (IpAddr, IpAddr)) {
    let at = match proto {
        PROTO_TCP => 16,
        // UDP and ICMP fill in their own.
        _ => return,
    };
    out[off + at..off + at + 2].copy_from_slice(&[0, 0]);
    let c = l4_checksum(&out[off..], Some(addrs), proto);
    out[off + at..off + at + 2].copy_from_slice(&c.to_be_bytes());
}

fn flow_hash(a: IpAddr, b: IpAddr) -> u16 {
    let (x, y) = (mac_of(a), mac_of(b));
    let mut h: u32 = 2_166_136_261;
    for byte in x.iter().chain(y.iter()) {
        h = (h ^ u32::from(*byte)).wrapping_mul(16_777_619);
    }
    (h ^ (h >> 16)) as u16
}

fn push_eth(out: &mut Vec<u8>, src: IpAddr, dst: IpAddr, ethertype: u16) {
    out.extend_from_slice(&mac_of(dst));
    out.extend_from_slice(&mac_of(src));
    out.extend_from_slice(&ethertype.to_be_bytes());
}

fn push_tag(out: &mut Vec<u8>, vid: u16, next: u16) {
    out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    out.extend_from_slice(&next.to_be_bytes());
}

/// Returns the header's offset; length and checksum are patched by [`finish_ipv4`].
fn push_ipv4(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    ttl: u8,
) -> usize {
    let off = out.len();
    out.extend_from_slice(&[0x45, 0, 0, 0]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, as Linux sets for TCP
    out.extend_from_slice(&[ttl, proto, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    off
}

fn finish_ipv4(out: &mut [u8], off: usize) {
    let total = (out.len() - off) as u16;
    out[off + 2..off + 4].copy_from_slice(&total.to_be_bytes());
    out[off + 10..off + 12].copy_from_slice(&[0, 0]);
    let c = !fold(sum16(&out[off..off + 20], 0));
    out[off + 10..off + 12].copy_from_slice(&c.to_be_bytes());
}

fn push_ipv6(out: &mut Vec<u8>, src: Ipv6Addr, dst: Ipv6Addr, next: u8, hops: u8) -> usize {
    let off = out.len();
    out.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, next, hops]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    off
}

fn finish_ipv6(out: &mut [u8], off: usize) {
    let payload = (out.len() - off - 40) as u16;
    out[off + 4..off + 6].copy_from_slice(&payload.to_be_bytes());
}

fn push_udp(out: &mut Vec<u8>, sport: u16, dport: u16) {
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
}

/// Patches the UDP length, and the checksum when given the addresses.
fn finish_udp(out: &mut [u8], off: usize, addrs: Option<(IpAddr, IpAddr)>) {
    let len = (out.len() - off) as u16;
    out[off + 4..off + 6].copy_from_slice(&len.to_be_bytes());
    if let Some(a) = addrs {
        let c = l4_checksum(&out[off..], Some(a), PROTO_UDP);
        // A computed zero is sent as all ones (RFC 768).
        let c = if c == 0 { 0xffff } else { c };
        out[off + 6..off + 8].copy_from_slice(&c.to_be_bytes());
    }
}

/// The TCP header with options in Linux's order (`tcp_options_write`), then the payload.
fn push_tcp(out: &mut Vec<u8>, t: &TcpSpec) {
    let hdr_len = 20 + t.options_len();
    out.extend_from_slice(&t.sport.to_be_bytes());
    out.extend_from_slice(&t.dport.to_be_bytes());
    out.extend_from_slice(&t.seq.to_be_bytes());
    out.extend_from_slice(&t.ack.to_be_bytes());
    out.push(((hdr_len / 4) as u8) << 4);
    out.push(t.flags.0);
    out.extend_from_slice(&t.window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    if let Some(mss) = t.mss {
        out.extend_from_slice(&[2, 4]);
        out.extend_from_slice(&mss.to_be_bytes());
    }
    match (t.ts, t.sack_perm) {
        (Some((val, ecr)), sack_perm) => {
            out.extend_from_slice(if sack_perm { &[4, 2] } else { &[1, 1] });
            out.extend_from_slice(&[8, 10]);
            out.extend_from_slice(&val.to_be_bytes());
            out.extend_from_slice(&ecr.to_be_bytes());
        }
        (None, true) => out.extend_from_slice(&[1, 1, 4, 2]),
        (None, false) => {}
    }
    if let Some(ws) = t.wscale {
        out.extend_from_slice(&[1, 3, 3, ws]);
    }
    if let Some((left, right)) = t.sack {
        out.extend_from_slice(&[1, 1, 5, 10]);
        out.extend_from_slice(&left.to_be_bytes());
        out.extend_from_slice(&right.to_be_bytes());
    }
    out.resize(out.len() + t.payload_len, 0);
}

/// Ones' complement sum of 16-bit words, unfolded.
fn sum16(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Internet checksum of a transport segment, with the IPv4/IPv6 pseudo-header if given.
fn l4_checksum(seg: &[u8], pseudo: Option<(IpAddr, IpAddr)>, proto: u8) -> u16 {
    let mut acc = 0u64;
    match pseudo {
        Some((IpAddr::V4(s), IpAddr::V4(d))) => {
            acc = sum16(&s.octets(), acc);
            acc = sum16(&d.octets(), acc);
            acc += u64::from(proto) + seg.len() as u64;
        }
        Some((IpAddr::V6(s), IpAddr::V6(d))) => {
            acc = sum16(&s.octets(), acc);
            acc = sum16(&d.octets(), acc);
            acc += seg.len() as u64 + u64::from(proto);
        }
        Some(_) => panic!("mixed IPv4 and IPv6 addresses"),
        None => {}
    }
    !fold(sum16(seg, acc))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use etherparse::{
        EtherType, LinkSlice, NetSlice, SlicedPacket, TcpOptionElement, TransportSlice,
    };

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn syn_v4() -> TcpSpec {
        TcpSpec {
            src: v4(10, 244, 1, 7),
            dst: v4(10, 96, 0, 10),
            sport: 51865,
            dport: 80,
            seq: 0xfffffff0,
            ack: 0,
            flags: ControlBits::SYN,
            window: 64240,
            mss: Some(1460),
            wscale: Some(7),
            sack_perm: true,
            ts: Some((0xdead_beef, 0)),
            ip_id: 0x1234,
            ttl: 64,
            ..TcpSpec::default()
        }
    }

    fn data_v6() -> TcpSpec {
        TcpSpec {
            src: "fd00:10:96::a".parse().unwrap(),
            dst: "fd00:10:244::7".parse().unwrap(),
            sport: 80,
            dport: 40000,
            seq: 7,
            ack: 9,
            flags: ControlBits::ACK | ControlBits::PSH,
            window: 509,
            ts: Some((1, 2)),
            sack: Some((100, 200)),
            payload_len: 1000,
            ttl: 63,
            ..TcpSpec::default()
        }
    }

    fn tunnels() -> Vec<Encap> {
        let (o1, o2) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        vec![
            Encap::IpIp {
                outer_src: o1,
                outer_dst: o2,
            },
            Encap::Vxlan {
                outer_src: o1,
                outer_dst: o2,
                vni: 0x123456,
            },
            Encap::Geneve {
                outer_src: o1,
                outer_dst: o2,
                vni: 77,
            },
        ]
    }

    pub(crate) fn all_encaps() -> Vec<Encap> {
        let mut v = vec![
            Encap::Ethernet,
            Encap::Vlan(100),
            Encap::QinQ(200, 300),
            Encap::Sll,
            Encap::Sll2,
            Encap::RawIp,
            Encap::Null,
        ];
        v.extend(tunnels());
        v
    }

    /// Peels the link layer (and any tunnel) with etherparse, by hand where it has no
    /// helpers, returning the innermost sliced IP packet.
    pub(crate) fn inner<'a>(encap: &Encap, bytes: &'a [u8]) -> SlicedPacket<'a> {
        let outer = match encap {
            Encap::Ethernet | Encap::Vlan(_) | Encap::QinQ(..) => {
                let p = SlicedPacket::from_ethernet(bytes).unwrap();
                let want: &[u16] = match encap {
                    Encap::Vlan(id) => &[*id],
                    Encap::QinQ(a, b) => &[*a, *b],
                    _ => &[],
                };
                let got: Vec<u16> = p.vlan_ids().iter().map(|v| v.value()).collect();
                assert_eq!(got, want);
                return p;
            }
            Encap::Sll => {
                let p = SlicedPacket::from_linux_sll(bytes).unwrap();
                assert!(matches!(p.link, Some(LinkSlice::LinuxSll(_))));
                return p;
            }
            Encap::Sll2 => {
                // etherparse has no SLL2 slicer: read the 20-byte header by its spec.
                assert_eq!(&bytes[8..10], &[0, 1], "ARPHRD_ETHER");
                assert_eq!(bytes[11], 6, "address length");
                let et = u16::from_be_bytes([bytes[0], bytes[1]]);
                return SlicedPacket::from_ether_type(EtherType(et), &bytes[20..]).unwrap();
            }
            Encap::Null => {
                let af = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                assert!(af == 2 || af == 30, "AF_INET or macOS AF_INET6");
                return SlicedPacket::from_ip(&bytes[4..]).unwrap();
            }
            Encap::RawIp => return SlicedPacket::from_ip(bytes).unwrap(),
            _ => SlicedPacket::from_ethernet(bytes).unwrap(),
        };
        let Some(NetSlice::Ipv4(ip)) = &outer.net else {
            panic!("outer IPv4")
        };
        assert_eq!(ip.header().source_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert!(ip.header().header_checksum() == ip.header().to_header().calc_header_checksum());
        let rest = ip.payload().payload;
        match encap {
            Encap::IpIp { .. } => SlicedPacket::from_ip(rest).unwrap(),
            Encap::Vxlan { vni, .. } | Encap::Geneve { vni, .. } => {
                let Some(TransportSlice::Udp(u)) = &outer.transport else {
                    panic!("UDP")
                };
                let port = if matches!(encap, Encap::Vxlan { .. }) {
                    4789
                } else {
                    6081
                };
                assert_eq!(u.destination_port(), port);
                assert_eq!(usize::from(u.length()), u.slice().len());
                let p = u.payload();
                let got_vni = u32::from_be_bytes([0, p[4], p[5], p[6]]);
                assert_eq!(got_vni, *vni);
                SlicedPacket::from_ethernet(&p[8..]).unwrap()
            }
            _ => unreachable!(),
        }
    }

    /// Asserts every field of `t` survived, checksums included.
    pub(crate) fn check_tcp(p: &SlicedPacket<'_>, t: &TcpSpec) {
        let (src, dst, ttl, checksum_ok) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(h.identification(), t.ip_id);
                assert!(h.dont_fragment());
                let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
                    panic!("tcp")
                };
                let ok =
                    tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap() == tcp.checksum();
                assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    h.ttl(),
                    ok,
                )
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
                    panic!("tcp")
                };
                let ok =
                    tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap() == tcp.checksum();
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    h.hop_limit(),
                    ok,
                )
            }
            _ => panic!("no IP layer"),
        };
        assert!(checksum_ok, "TCP checksum");
        assert_eq!((src, dst, ttl), (t.src, t.dst, t.ttl));
        let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
            panic!("tcp")
        };
        assert_eq!(
            (tcp.source_port(), tcp.destination_port()),
            (t.sport, t.dport)
        );
        assert_eq!(
            (tcp.sequence_number(), tcp.acknowledgment_number()),
            (t.seq, t.ack)
        );
        assert_eq!(tcp.slice()[13], t.flags.0);
        assert_eq!(tcp.window_size(), t.window);
        assert_eq!(tcp.payload().len(), t.payload_len);
        let mut want = Vec::new();
        if let Some(m) = t.mss {
            want.push(TcpOptionElement::MaximumSegmentSize(m));
        }
        match (t.ts, t.sack_perm) {
            (Some((a, b)), true) => {
                want.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
                want.push(TcpOptionElement::Timestamp(a, b));
            }
            (Some((a, b)), false) => {
                want.extend([TcpOptionElement::Noop, TcpOptionElement::Noop]);
                want.push(TcpOptionElement::Timestamp(a, b));
            }
            (None, true) => {
                want.extend([TcpOptionElement::Noop, TcpOptionElement::Noop]);
                want.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
            }
            (None, false) => {}
        }
        if let Some(w) = t.wscale {
            want.extend([TcpOptionElement::Noop, TcpOptionElement::WindowScale(w)]);
        }
        if let Some(b) = t.sack {
            want.extend([TcpOptionElement::Noop, TcpOptionElement::Noop]);
            want.push(TcpOptionElement::SelectiveAcknowledgement(b, [None; 3]));
        }
        let got: Vec<_> = tcp.options_iterator().map(|o| o.unwrap()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn test_syn_options_are_in_linux_order() {
        let bytes = frame(&Encap::RawIp, &syn_v4());
        // MSS, SACK_PERM, TS, NOP, WS: the layout of every Linux SYN.
        assert_eq!(
            &bytes[40..60],
            &[
                2, 4, 5, 180, 4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1, 3, 3, 7
            ]
        );
    }

    #[test]
    fn test_every_encap_round_trips_ipv4_syn() {
        for e in all_encaps() {
            let t = syn_v4();
            let bytes = frame(&e, &t);
            check_tcp(&inner(&e, &bytes), &t);
        }
    }

    #[test]
    fn test_every_encap_round_trips_ipv6_data_with_sack() {
        for e in all_encaps() {
            let t = data_v6();
            let bytes = frame(&e, &t);
            check_tcp(&inner(&e, &bytes), &t);
        }
    }

    #[test]
    fn test_option_subsets_round_trip() {
        let base = syn_v4();
        let variants = [
            TcpSpec { ts: None, ..base },
            TcpSpec {
                sack_perm: false,
                ..base
            },
            TcpSpec {
                ts: None,
                sack_perm: false,
                wscale: None,
                ..base
            },
            TcpSpec {
                mss: None,
                ts: None,
                ..base
            },
        ];
        for t in variants {
            let bytes = frame(&Encap::Ethernet, &t);
            check_tcp(&inner(&Encap::Ethernet, &bytes), &t);
        }
    }

    #[test]
    fn test_frame_into_reuses_and_clears_buffer() {
        let mut buf = vec![0xaa; 3000];
        frame_into(&Encap::Ethernet, &syn_v4(), &mut buf);
        assert_eq!(buf, frame(&Encap::Ethernet, &syn_v4()));
    }

    #[test]
    fn test_linktypes() {
        assert_eq!(linktype(&Encap::Ethernet), 1);
        assert_eq!(linktype(&Encap::Sll), 113);
        assert_eq!(linktype(&Encap::Sll2), 276);
        assert_eq!(linktype(&Encap::RawIp), 101);
        assert_eq!(linktype(&Encap::Null), 0);
        for e in tunnels() {
            assert_eq!(linktype(&e), 1);
        }
    }

    #[test]
    fn test_other_frames_are_not_tcp() {
        let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
        let udp = OtherSpec::Udp {
            src: a,
            dst: b,
            sport: 5353,
            dport: 53,
            payload_len: 30,
        };
        let p = other_frame(&Encap::Ethernet, &udp).unwrap();
        let s = SlicedPacket::from_ethernet(&p).unwrap();
        let Some(TransportSlice::Udp(u)) = &s.transport else {
            panic!("udp")
        };
        assert_eq!((u.destination_port(), u.payload().len()), (53, 30));
        let Some(NetSlice::Ipv4(ip)) = &s.net else {
            panic!("ipv4")
        };
        let h = ip.header().to_header();
        assert_eq!(
            u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap(),
            u.checksum()
        );

        let icmp = OtherSpec::IcmpEcho {
            src: a,
            dst: b,
            id: 1,
            seq: 2,
        };
        let p = other_frame(&Encap::Sll, &icmp).unwrap();
        let s = SlicedPacket::from_linux_sll(&p).unwrap();
        assert!(matches!(s.transport, Some(TransportSlice::Icmpv4(_))));

        let (x, y): (IpAddr, IpAddr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let icmp6 = OtherSpec::IcmpEcho {
            src: x,
            dst: y,
            id: 1,
            seq: 2,
        };
        let p = other_frame(&Encap::RawIp, &icmp6).unwrap();
        let s = SlicedPacket::from_ip(&p).unwrap();
        let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
            panic!("icmpv6")
        };
        let (IpAddr::V6(xs), IpAddr::V6(ys)) = (x, y) else {
            unreachable!()
        };
        assert_eq!(
            i.header()
                .icmp_type
                .calc_checksum(xs.octets(), ys.octets(), i.payload())
                .unwrap(),
            i.checksum()
        );

        let arp = OtherSpec::Arp {
            sender: Ipv4Addr::new(10, 0, 0, 1),
            target: Ipv4Addr::new(10, 0, 0, 2),
        };
        let p = other_frame(&Encap::Vlan(5), &arp).unwrap();
        let s = SlicedPacket::from_ethernet(&p).unwrap();
        assert!(matches!(s.net, Some(NetSlice::Arp(_))));
        assert!(other_frame(&Encap::RawIp, &arp).is_none());
    }
}
