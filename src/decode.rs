//! Decode: a frame's bytes become a small, copyable [`Segment`], once.
//!
//! Link layers: Ethernet (with 802.1Q / QinQ tags), Linux cooked SLL and SLL2
//! (`tcpdump -i any`), raw IPv4/IPv6, BSD loopback (NULL and LOOP). Then IPv4 or IPv6 and
//! TCP, unwrapping IP-in-IP (IPv4 or IPv6 inside), VXLAN (UDP 4789) and Geneve (UDP 6081)
//! to reach the inner TCP. Parsing is etherparse's lax slicer, which keeps what it can of a
//! packet cut by the snapshot length: the TCP payload length is taken from the IP header's
//! length field (never past the packet's end on the wire, as Wireshark does), so a
//! snaplen-truncated segment still counts its real bytes, and a segment whose options were
//! cut still decodes from its fixed header.
//!
//! Nothing after this module touches packet bytes. A frame that is not a TCP segment comes
//! back as the [`SkipReason`] the report counts it under.

use crate::read::Frame;
use crate::seq::Seq;
use crate::skip::SkipReason;
use crate::units::Endpoint;
use etherparse::{
    EtherType, IpNumber, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TransportSlice,
    err::Layer,
};
use serde::Serialize;
use std::net::IpAddr;

/// LINKTYPE_ values (tcpdump.org/linktypes.html) that pcapdiag decodes.
pub mod linktype {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    pub const RAW: u16 = 101;
    /// DLT_RAW as some BSDs number it in classic pcap headers.
    pub const RAW_BSD_12: u16 = 12;
    pub const RAW_BSD_14: u16 = 14;
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const LINUX_SLL2: u16 = 276;
    /// ARCnet as Linux captures it (tcpdump's test suite has it; Wireshark decodes it).
    pub const ARCNET_LINUX: u16 = 129;
}

/// Tunnels are unwrapped at most this deep (an attacker's capture could nest forever).
const MAX_TUNNEL_DEPTH: u8 = 4;
const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;
/// EtherType of "transparent Ethernet bridging", Geneve's marker for an inner Ethernet frame.
const ETHERTYPE_TEB: u16 = 0x6558;
/// EtherTypes of MPLS unicast and multicast.
const ETHERTYPE_MPLS: [u16; 2] = [0x8847, 0x8848];
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_FABRICPATH: u16 = 0x8903;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// GRE protocol types: ERSPAN type I/II, ERSPAN type III, WCCP redirection.
const GRE_ERSPAN_II: u16 = 0x88be;
const GRE_ERSPAN_III: u16 = 0x22eb;
const GRE_WCCP: u16 = 0x883e;
const GTPU_PORT: u16 = 2152;
/// MPLS labels are unwrapped at most this deep.
const MAX_MPLS_LABELS: usize = 8;

/// TCP control bits, as on the wire (FIN = 0x01 ... CWR = 0x80).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    #[inline]
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
}

impl std::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [(u8, &str); 8] = [
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
        ];
        let mut first = true;
        for (bit, name) in NAMES {
            if self.has(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The TCP options that matter for diagnosis and for pairing through NAT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct TcpOpts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// (TSval, TSecr)
    pub ts: Option<(u32, u32)>,
    /// The option kinds in wire order, one byte each, first eight options: NAT leaves the
    /// layout alone, so it is part of a SYN's fingerprint.
    pub layout: u64,
}

/// How the TCP segment was carried, outermost tunnel only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tunnel {
    #[default]
    None,
    IpInIp,
    Vxlan,
    Geneve,
    /// Under an MPLS label stack.
    Mpls,
    /// In a PPPoE session.
    Pppoe,
    /// In Cisco FabricPath.
    FabricPath,
    /// In GRE: IP over GRE, transparent Ethernet bridging, ERSPAN mirroring, WCCP.
    Gre,
    /// In GTP-U (mobile core user plane).
    GtpU,
}

/// One decoded TCP segment. Small and `Copy`; carries its frame number so every finding
/// points back into the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub frame: u64,
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// The interface: the SLL2 header's interface index, else the pcapng interface id.
    pub iface: u32,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: Seq,
    pub ack: Seq,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    /// TCP payload bytes on the wire (from the IP length, not the captured length).
    pub payload_len: u32,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    pub opts: TcpOpts,
    pub tunnel: Tunnel,
    /// The capture's snapshot length cut the payload.
    pub truncated: bool,
}

#[cfg(test)]
impl Segment {
    /// A hand-built segment without options or payload, for the tests of later stages.
    pub(crate) fn bare(
        frame: u64,
        ts: i64,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
    ) -> Segment {
        Segment {
            frame,
            ts,
            iface: 0,
            src,
            dst,
            seq: Seq(seq),
            ack: Seq(ack),
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: 0,
            ip_id: frame as u16,
            ttl: 64,
            opts: TcpOpts::default(),
            tunnel: Tunnel::None,
            truncated: false,
        }
    }
}

/// Decodes one frame into a TCP segment, or the reason it is not one.
///
/// Most frames of a capture are plain TCP over IPv4 or IPv6 on Ethernet, Linux cooked or
/// raw IP: [`decode_common`] reads those straight from the bytes. Anything else (tags,
/// tunnels, fragments, cut or odd headers) goes through etherparse's lax slicer
/// ([`decode_lax`]), which knows every layer and every way a header can be damaged.
/// Both give the same segment for every frame the first accepts (a differential test
/// and the fuzz harness check it).
#[inline]
pub fn decode(frame: &Frame<'_>) -> Result<Segment, SkipReason> {
    match decode_common(frame) {
        Some(seg) => Ok(seg),
        None => decode_lax(frame),
    }
}

/// The general decoder: every link type, tag and tunnel, through etherparse's lax slicer.
pub fn decode_lax(frame: &Frame<'_>) -> Result<Segment, SkipReason> {
    let d = frame.data;
    let pkt = sliced(frame)?;
    // The bytes of the packet on the wire that the snapshot length left out.
    let uncaptured = (frame.orig_len as usize).saturating_sub(d.len());
    let mut seg = match link_payload(&pkt)? {
        Some((kind, inner)) => {
            let mut seg = tcp_of(&inner, 0, uncaptured)?;
            if seg.tunnel == Tunnel::None {
                seg.tunnel = kind;
            }
            seg
        }
        None => tcp_of(&pkt, 0, uncaptured)?,
    };
    seg.frame = frame.number;
    seg.ts = frame.ts;
    seg.iface = interface(frame);
    seg.truncated |= (frame.data.len() as u32) < frame.orig_len;
    Ok(seg)
}

/// The frame through etherparse's lax slicer, from its link layer on.
fn sliced<'a>(frame: &Frame<'a>) -> Result<LaxSlicedPacket<'a>, SkipReason> {
    let d = frame.data;
    Ok(match frame.linktype {
        linktype::ETHERNET => {
            LaxSlicedPacket::from_ethernet(d).map_err(|_| SkipReason::TruncatedHeaders)?
        }
        linktype::LINUX_SLL => {
            let proto = be16(d, 14).ok_or(SkipReason::TruncatedHeaders)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), &d[16..])
        }
        linktype::LINUX_SLL2 => {
            let proto = be16(d, 0).ok_or(SkipReason::TruncatedHeaders)?;
            let body = d.get(20..).ok_or(SkipReason::TruncatedHeaders)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), body)
        }
        linktype::RAW
        | linktype::RAW_BSD_12
        | linktype::RAW_BSD_14
        | linktype::IPV4
        | linktype::IPV6 => from_ip(d)?,
        linktype::NULL | linktype::LOOP => {
            let af = d.get(..4).ok_or(SkipReason::TruncatedHeaders)?;
            // NULL stores the address family in the writer's byte order, LOOP in network
            // order: accept either reading.
            let le = u32::from_le_bytes([af[0], af[1], af[2], af[3]]);
            let be = u32::from_be_bytes([af[0], af[1], af[2], af[3]]);
            let is_af = |v: u32| matches!(v, 2 | 24 | 28 | 30);
            if !is_af(le) && !is_af(be) {
                return Err(SkipReason::NotIp);
            }
            from_ip(&d[4..])?
        }
        linktype::ARCNET_LINUX => from_ip(arcnet_linux_payload(d)?)?,
        _ => return Err(SkipReason::UnsupportedLinktype),
    })
}

/// One fragment of a fragmented IP datagram that carries TCP ([`fragment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub key: FragmentKey,
    /// Where its data goes in the datagram's payload, in bytes.
    pub offset: u32,
    /// Its data's length on the wire (from the IP length).
    pub len: u32,
    /// More fragments follow (the MF flag).
    pub more: bool,
    /// Its data as captured: at most `len` bytes.
    pub data: &'a [u8],
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The outermost tunnel it came through.
    pub tunnel: Tunnel,
}

/// The fragments of one datagram share this: addresses and identification (TCP only), and
/// the interface, so that copies of a datagram on two interfaces of a `tcpdump -i any`
/// are reassembled each on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IPv4 identification, or the IPv6 fragment header's.
    pub id: u32,
    pub iface: u32,
}

/// The TCP-carrying IP fragment in a frame that [`decode`] skipped as
/// [`SkipReason::IpFragment`]: the outermost fragmented IP layer, inside any tunnel
/// pcapdiag unwraps. `None` when the frame holds no such fragment (one of a datagram
/// carrying something else, or a header too damaged to say).
pub fn fragment<'a>(frame: &Frame<'a>) -> Option<Fragment<'a>> {
    let pkt = sliced(frame).ok()?;
    let mut f = match link_payload(&pkt).ok()? {
        Some((kind, inner)) => fragment_in(&inner, 0).map(|mut f| {
            if f.tunnel == Tunnel::None {
                f.tunnel = kind;
            }
            f
        })?,
        None => fragment_in(&pkt, 0)?,
    };
    f.key.iface = interface(frame);
    Some(f)
}

fn fragment_in<'a>(pkt: &LaxSlicedPacket<'a>, depth: u8) -> Option<Fragment<'a>> {
    let net = pkt.net.as_ref()?;
    let payload = match net {
        LaxNetSlice::Ipv4(v4) => v4.payload().clone(),
        LaxNetSlice::Ipv6(v6) => v6.payload().clone(),
        LaxNetSlice::Arp(_) => return None,
    };
    if !payload.fragmented {
        let (kind, inner) = match tunnel_payload(pkt, &payload) {
            Some(Ok(t)) if depth < MAX_TUNNEL_DEPTH => t,
            _ => return None,
        };
        let mut f = fragment_in(&inner, depth + 1)?;
        if f.tunnel == Tunnel::None {
            f.tunnel = kind;
        }
        return Some(f);
    }
    if payload.ip_number != IpNumber::TCP {
        return None;
    }
    let data = payload.payload;
    let (key, offset, more, stated, ttl) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let stated = (h.total_len() as usize).saturating_sub(h.slice().len());
            let key = FragmentKey {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                id: u32::from(h.identification()),
                iface: 0,
            };
            let offset = u32::from(h.fragments_offset().byte_offset());
            (key, offset, h.more_fragments(), stated, h.ttl())
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            // The fragment header must come right before TCP: a fragment's offset counts
            // from the end of the headers before the fragment header.
            let frag = v6.extensions().clone().into_iter().find_map(|e| match e {
                etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
                _ => None,
            })?;
            if frag.next_header() != IpNumber::TCP {
                return None;
            }
            let stated =
                (h.payload_length() as usize).saturating_sub(v6.extensions().slice().len());
            let key = FragmentKey {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                id: frag.identification(),
                iface: 0,
            };
            let offset = u32::from(frag.fragment_offset().byte_offset());
            (key, offset, frag.more_fragments(), stated, h.hop_limit())
        }
        LaxNetSlice::Arp(_) => return None,
    };
    // A zero stated length (TSO) means the captured length.
    let len = if stated == 0 { data.len() } else { stated };
    Some(Fragment {
        key,
        offset,
        len: len as u32,
        more,
        data: &data[..data.len().min(len)],
        ttl,
        tunnel: Tunnel::None,
    })
}

/// The segment of a reassembled datagram: `head` holds the first bytes of its TCP
/// header as captured (20 to 60), `wire_len` is the datagram's payload length.
pub(crate) fn reassembled(
    head: &[u8],
    key: &FragmentKey,
    ttl: u8,
    wire_len: u32,
    truncated: bool,
) -> Result<Segment, SkipReason> {
    if head.len() < 20 {
        return Err(SkipReason::TruncatedHeaders);
    }
    let header_len = u32::from(head[12] >> 4) * 4;
    if header_len < 20 || header_len > wire_len {
        return Err(SkipReason::Malformed);
    }
    let ip_id = if key.src.is_ipv4() { key.id as u16 } else { 0 };
    let payload_len = wire_len - header_len;
    let short = (head.len() as u32) < header_len;
    Ok(tcp_segment(
        head,
        key.src,
        key.dst,
        ip_id,
        ttl,
        payload_len,
        truncated || short,
    ))
}

/// The common case, read straight from the bytes: an untagged Ethernet, Linux cooked
/// (SLL, SLL2) or raw-IP frame carrying unfragmented IPv4 (any options) or IPv6 (no
/// extension headers) with a non-zero length, and a complete TCP header. `None` for
/// anything else, which [`decode_lax`] then decodes.
///
/// Profiling showed the lax slicer at about 80 ns a frame, most of it building and
/// copying its `LaxSlicedPacket` (a few hundred bytes for every layer it might hold); the
/// fields pcapdiag needs are a few loads.
pub fn decode_common(frame: &Frame<'_>) -> Option<Segment> {
    let d = frame.data;
    // The EtherType the link layer names (`None`: raw IP, either version).
    let (ethertype, ip) = match frame.linktype {
        linktype::ETHERNET => (Some(be16(d, 12)?), d.get(14..)?),
        linktype::LINUX_SLL => (Some(be16(d, 14)?), d.get(16..)?),
        linktype::LINUX_SLL2 => (Some(be16(d, 0)?), d.get(20..)?),
        linktype::RAW | linktype::RAW_BSD_12 | linktype::RAW_BSD_14 => (None, d),
        linktype::IPV4 => (Some(0x0800), d),
        linktype::IPV6 => (Some(0x86dd), d),
        _ => return None,
    };
    let version = ip.first()? >> 4;
    match (ethertype, version) {
        (Some(0x0800) | None, 4) | (Some(0x86dd) | None, 6) => {}
        _ => return None,
    }
    // (source, destination, IP id, TTL, the IP payload as captured, its stated length)
    let (src, dst, ip_id, ttl, payload, stated) = if version == 4 {
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(be16(ip, 2)?);
        let frag = be16(ip, 6)?;
        // Fragments, tunnels, a bad or zero (TSO) length: the general path.
        if ihl < 20 || ip.len() < ihl || total < ihl || frag & 0x3fff != 0 || ip[9] != 6 {
            return None;
        }
        let addr = |at: usize| IpAddr::from([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
        let payload = &ip[ihl..total.min(ip.len())];
        (
            addr(12),
            addr(16),
            be16(ip, 4)?,
            ip[8],
            payload,
            total - ihl,
        )
    } else {
        let stated = usize::from(be16(ip, 4)?);
        if ip.len() < 40 || ip[6] != 6 || stated == 0 {
            return None;
        }
        let addr = |at: usize| {
            let b: [u8; 16] = ip[at..at + 16].try_into().expect("16 bytes");
            IpAddr::from(b)
        };
        let payload = &ip[40..(40 + stated).min(ip.len())];
        (addr(8), addr(24), 0, ip[7], payload, stated)
    };
    let hdr = payload;
    let header_len = usize::from(*hdr.get(12)? >> 4) * 4;
    if header_len < 20 || hdr.len() < header_len {
        return None;
    }
    // As in `tcp_of`: the stated IP payload length, never past the packet's end on the wire.
    let uncaptured = (frame.orig_len as usize).saturating_sub(d.len());
    let wire = stated.min(payload.len() + uncaptured);
    let payload_len = wire.saturating_sub(header_len) as u32;
    let captured_payload = (payload.len() - header_len) as u32;
    let truncated = captured_payload < payload_len || (d.len() as u32) < frame.orig_len;
    Some(Segment {
        frame: frame.number,
        ts: frame.ts,
        iface: interface(frame),
        ..tcp_segment(hdr, src, dst, ip_id, ttl, payload_len, truncated)
    })
}

/// The interface a frame was captured on: the SLL2 header's interface index (`tcpdump -i
/// any` records each packet's), else the pcapng interface id (0 in classic pcap).
fn interface(frame: &Frame<'_>) -> u32 {
    match (frame.linktype, frame.data.get(4..8)) {
        (linktype::LINUX_SLL2, Some(b)) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        _ => frame.iface,
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// The IP packet in a Linux ARCnet frame: source, destination, a 2-byte offset, then the
/// protocol (RFC 1051: 240, the IP packet follows; RFC 1201: 212, then a split flag and a
/// 2-byte sequence number, or an exception packet's 4 extra bytes first when the flag is
/// 0xff). A later fragment of a split packet carries no IP header.
fn arcnet_linux_payload(d: &[u8]) -> Result<&[u8], SkipReason> {
    const IP_RFC1051: u8 = 240;
    const IP_RFC1201: u8 = 212;
    let short = SkipReason::TruncatedHeaders;
    match *d.get(4).ok_or(short)? {
        IP_RFC1051 => Ok(&d[5..]),
        IP_RFC1201 => {
            let mut h = &d[4..];
            if *h.get(1).ok_or(short)? == 0xff {
                h = h.get(4..).ok_or(short)?;
            }
            match *h.get(1).ok_or(short)? {
                0 => h.get(4..).ok_or(short),
                // Split: the first piece has an odd flag; only an unsplit packet is whole.
                _ => Err(SkipReason::IpFragment),
            }
        }
        _ => Err(SkipReason::NotIp),
    }
}

/// The packet inside a link-layer encapsulation etherparse does not decode, when the
/// link layer (after any VLAN tags) carries one: an MPLS label stack (up to 8 labels, then
/// IPv4 or IPv6 by its version; not a pseudowire), a PPPoE session (PPP carrying IPv4 or
/// IPv6), or Cisco FabricPath (a 2-byte tag, then the original Ethernet frame).
fn link_payload<'a>(
    pkt: &LaxSlicedPacket<'a>,
) -> Result<Option<(Tunnel, LaxSlicedPacket<'a>)>, SkipReason> {
    if pkt.net.is_some() {
        return Ok(None);
    }
    let Some(p) = pkt.ether_payload() else {
        return Ok(None);
    };
    let d = p.payload;
    let short = SkipReason::TruncatedHeaders;
    Ok(match p.ether_type.0 {
        t if ETHERTYPE_MPLS.contains(&t) => {
            let mut rest = d;
            let mut ip = None;
            for _ in 0..MAX_MPLS_LABELS {
                let bottom = rest.get(2).ok_or(short)? & 1 == 1;
                rest = rest.get(4..).ok_or(short)?;
                if bottom {
                    ip = matches!(rest.first().ok_or(short)? >> 4, 4 | 6).then_some(rest);
                    break;
                }
            }
            match ip {
                Some(ip) => Some((Tunnel::Mpls, from_ip(ip)?)),
                None => return Err(SkipReason::NotIp),
            }
        }
        ETHERTYPE_PPPOE_SESSION => {
            // Version and type 1, code 0 (session data), session id, length; PPP protocol.
            if d.get(..2).ok_or(short)? != [0x11, 0x00] {
                return Err(SkipReason::Malformed);
            }
            match be16(d, 6).ok_or(short)? {
                0x0021 | 0x0057 => Some((Tunnel::Pppoe, from_ip(&d[8..])?)),
                _ => return Err(SkipReason::NotIp),
            }
        }
        ETHERTYPE_FABRICPATH => {
            let inner = d.get(2..).ok_or(short)?;
            let inner = LaxSlicedPacket::from_ethernet(inner).map_err(|_| short)?;
            Some((Tunnel::FabricPath, inner))
        }
        _ => None,
    })
}

/// The packet a GRE header carries: IPv4 or IPv6, an Ethernet frame (transparent
/// bridging; ERSPAN I, II and III port mirroring), or WCCP's redirected IP packet.
/// Optional checksum, key and sequence number fields are skipped; only version 0.
fn gre_payload<'a>(d: &'a [u8]) -> Result<(Tunnel, LaxSlicedPacket<'a>), SkipReason> {
    let short = SkipReason::TruncatedHeaders;
    let (flags, version) = (*d.first().ok_or(short)?, d.get(1).ok_or(short)? & 0x07);
    if version != 0 {
        return Err(SkipReason::NotTcp);
    }
    let has = |bit: u8| usize::from(flags & bit != 0) * 4;
    let seq = flags & 0x10 != 0;
    let body = d
        .get(4 + has(0x80) + has(0x20) + has(0x10)..)
        .ok_or(short)?;
    let ethernet = |inner: &'a [u8]| LaxSlicedPacket::from_ethernet(inner).map_err(|_| short);
    let inner = match be16(d, 2).ok_or(short)? {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => from_ip(body)?,
        ETHERTYPE_TEB => ethernet(body)?,
        // ERSPAN II carries a sequence number and an 8-byte header; type I neither.
        GRE_ERSPAN_II if seq => ethernet(body.get(8..).ok_or(short)?)?,
        GRE_ERSPAN_II => ethernet(body)?,
        // ERSPAN III: a 12-byte header, and an 8-byte platform sub-header when O is set.
        GRE_ERSPAN_III => {
            let o = body.get(11).ok_or(short)? & 0x01 != 0;
            ethernet(body.get(12 + usize::from(o) * 8..).ok_or(short)?)?
        }
        // WCCP: a 4-byte redirect header, then the IP packet.
        GRE_WCCP => from_ip(body.get(4..).ok_or(short)?)?,
        _ => return Err(SkipReason::NotTcp),
    };
    Ok((Tunnel::Gre, inner))
}

/// The IP packet of a GTP-U G-PDU: an 8-byte header, 4 more when a sequence number,
/// N-PDU number or extension header is flagged, then each extension header (its length in
/// 4-byte units first, the next one's type last).
fn gtpu_payload(d: &[u8]) -> Result<(Tunnel, LaxSlicedPacket<'_>), SkipReason> {
    let short = SkipReason::TruncatedHeaders;
    let flags = *d.first().ok_or(short)?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || *d.get(1).ok_or(short)? != 0xff {
        // Not GTP-U version 1, or not a G-PDU (echo, error indication, ...).
        return Err(SkipReason::NotTcp);
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        let mut next = *d.get(11).ok_or(short)?;
        off = 12;
        while next != 0 {
            let len = usize::from(*d.get(off).ok_or(short)?) * 4;
            if len == 0 {
                return Err(SkipReason::Malformed);
            }
            next = *d.get(off + len - 1).ok_or(short)?;
            off += len;
        }
    }
    Ok((Tunnel::GtpU, from_ip(d.get(off..).ok_or(short)?)?))
}

fn from_ip(d: &[u8]) -> Result<LaxSlicedPacket<'_>, SkipReason> {
    match LaxSlicedPacket::from_ip(d) {
        Ok(p) => Ok(p),
        Err(etherparse::err::ip::LaxHeaderSliceError::Len(_)) => Err(SkipReason::TruncatedHeaders),
        Err(etherparse::err::ip::LaxHeaderSliceError::Content(_)) => {
            // Not a valid IP header: a non-IP payload on a raw-IP link is malformed,
            // anything else is not IP at all.
            if d.first().is_some_and(|b| b >> 4 == 4 || b >> 4 == 6) {
                Err(SkipReason::Malformed)
            } else {
                Err(SkipReason::NotIp)
            }
        }
    }
}

/// Finds the TCP segment in a sliced packet, unwrapping tunnels. `uncaptured`: how many
/// bytes of the packet on the wire follow the end of `pkt`'s bytes (the snaplen cut).
fn tcp_of(pkt: &LaxSlicedPacket<'_>, depth: u8, uncaptured: usize) -> Result<Segment, SkipReason> {
    let Some(net) = &pkt.net else {
        return Err(match &pkt.stop_err {
            Some((_, Layer::Ethernet2Header | Layer::VlanHeader | Layer::LinuxSllHeader)) => {
                SkipReason::TruncatedHeaders
            }
            Some((e, _)) if is_len_error(e) => SkipReason::TruncatedHeaders,
            Some(_) => SkipReason::Malformed,
            None => SkipReason::NotIp,
        });
    };
    let (src_ip, dst_ip, ip_id, ttl, payload, wire_payload_len) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let p = v4.payload();
            // The IP payload length the header states, but never past the end of the packet
            // on the wire: Wireshark keeps the shorter (docs/wireshark-tcp-analysis.md §4.1),
            // so a bogus total length cannot invent payload. TSO super-segments carry 0
            // there; then the wire length is the truth.
            let stated = (h.total_len() as usize).saturating_sub(h.slice().len());
            let on_wire = p.payload.len() + uncaptured;
            let wire = if h.total_len() == 0 {
                on_wire
            } else {
                stated.min(on_wire)
            };
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.identification(),
                h.ttl(),
                p,
                wire,
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let p = v6.payload();
            let ext_len = v6.extensions().slice().len();
            // As for IPv4 (§4.1): the stated length, cut at the end of the packet on the
            // wire; 0 (BIG TCP, TSO) means the wire length.
            let stated = (h.payload_length() as usize).saturating_sub(ext_len);
            let on_wire = p.payload.len() + uncaptured;
            let wire = if h.payload_length() == 0 {
                on_wire
            } else {
                stated.min(on_wire)
            };
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                0,
                h.hop_limit(),
                p,
                wire,
            )
        }
        LaxNetSlice::Arp(_) => return Err(SkipReason::NotIp),
    };
    if payload.fragmented {
        return Err(SkipReason::IpFragment);
    }
    if depth < MAX_TUNNEL_DEPTH
        && let Some(inner) = tunnel_payload(pkt, payload)
    {
        let (kind, inner_pkt) = inner?;
        // The inner packet reaches the end of the frame only if the outer one was cut.
        let inner_uncaptured = if payload.incomplete { uncaptured } else { 0 };
        let mut seg = tcp_of(&inner_pkt, depth + 1, inner_uncaptured)?;
        if seg.tunnel == Tunnel::None {
            seg.tunnel = kind;
        }
        return Ok(seg);
    }
    if payload.ip_number != IpNumber::TCP {
        return Err(SkipReason::NotTcp);
    }
    // The TCP header (with its options, or as much of them as was captured) and the
    // captured payload bytes.
    let claims_too_much = payload
        .payload
        .get(12)
        .is_some_and(|&b| usize::from(b >> 4) * 4 > wire_payload_len);
    let (hdr, captured_payload) = match &pkt.transport {
        Some(TransportSlice::Tcp(t)) => (t.header_slice(), t.payload().len()),
        // The snapshot length cut the options: Wireshark still analyses the segment when
        // the 20-byte fixed header is there (§4.1, §4.5), and so do we. A header longer
        // than the IP payload on the wire is another matter: Wireshark calls it malformed
        // and analyses nothing of it (its sequence numbers would mislead the next flags).
        _ if matches!(&pkt.stop_err, Some((e, Layer::TcpHeader)) if is_len_error(e))
            && payload.payload.len() >= 20
            && payload.payload[12] >> 4 >= 5
            && !claims_too_much =>
        {
            (payload.payload, 0)
        }
        _ => {
            return Err(match &pkt.stop_err {
                Some((e, _)) if is_len_error(e) && !claims_too_much => SkipReason::TruncatedHeaders,
                _ => SkipReason::Malformed,
            });
        }
    };
    let header_len = usize::from(hdr[12] >> 4) * 4;
    let payload_len = wire_payload_len.saturating_sub(header_len) as u32;
    let truncated = hdr.len() < header_len || (captured_payload as u32) < payload_len;
    Ok(tcp_segment(
        hdr,
        src_ip,
        dst_ip,
        ip_id,
        ttl,
        payload_len,
        truncated,
    ))
}

/// The segment a TCP header describes, for both decoders. `hdr` holds at least the 20-byte
/// fixed header, then as many of the option bytes as were captured. The frame's number,
/// time and interface are left 0 for the caller.
#[inline(always)]
fn tcp_segment(
    hdr: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ip_id: u16,
    ttl: u8,
    payload_len: u32,
    truncated: bool,
) -> Segment {
    let header_len = usize::from(hdr[12] >> 4) * 4;
    let u16_at = |at: usize| u16::from_be_bytes([hdr[at], hdr[at + 1]]);
    let u32_at = |at: usize| u32::from_be_bytes([hdr[at], hdr[at + 1], hdr[at + 2], hdr[at + 3]]);
    Segment {
        frame: 0,
        ts: 0,
        iface: 0,
        src: Endpoint {
            ip: src,
            port: u16_at(0),
        },
        dst: Endpoint {
            ip: dst,
            port: u16_at(2),
        },
        seq: Seq(u32_at(4)),
        ack: Seq(u32_at(8)),
        flags: TcpFlags(hdr[13]),
        window: u16_at(14),
        payload_len,
        ip_id,
        ttl,
        opts: options(&hdr[20..header_len.min(hdr.len())]),
        tunnel: Tunnel::None,
        truncated,
    }
}

fn is_len_error(e: &etherparse::err::packet::SliceError) -> bool {
    matches!(e, etherparse::err::packet::SliceError::Len(_))
}

/// If the IP payload is a tunnel pcapdiag unwraps, the inner packet.
fn tunnel_payload<'a>(
    pkt: &LaxSlicedPacket<'a>,
    payload: &LaxIpPayloadSlice<'a>,
) -> Option<Result<(Tunnel, LaxSlicedPacket<'a>), SkipReason>> {
    match payload.ip_number {
        IpNumber::IPV4 | IpNumber::IPV6 => {
            Some(from_ip(payload.payload).map(|p| (Tunnel::IpInIp, p)))
        }
        IpNumber::GRE => Some(gre_payload(payload.payload)),
        IpNumber::UDP => {
            let Some(TransportSlice::Udp(udp)) = &pkt.transport else {
                return None;
            };
            let body = udp.payload();
            match udp.destination_port() {
                VXLAN_PORT => {
                    // 8-byte VXLAN header, then an Ethernet frame.
                    let inner = body.get(8..)?;
                    Some(
                        LaxSlicedPacket::from_ethernet(inner)
                            .map(|p| (Tunnel::Vxlan, p))
                            .map_err(|_| SkipReason::TruncatedHeaders),
                    )
                }
                GENEVE_PORT => {
                    // 8-byte header plus options (length in 4-byte words), then the
                    // protocol the header names.
                    let opt_len = (*body.first()? & 0x3f) as usize * 4;
                    let proto = be16(body, 2)?;
                    let inner = body.get(8 + opt_len..)?;
                    Some(if proto == ETHERTYPE_TEB {
                        LaxSlicedPacket::from_ethernet(inner)
                            .map(|p| (Tunnel::Geneve, p))
                            .map_err(|_| SkipReason::TruncatedHeaders)
                    } else {
                        Ok((
                            Tunnel::Geneve,
                            LaxSlicedPacket::from_ether_type(EtherType(proto), inner),
                        ))
                    })
                }
                GTPU_PORT => Some(gtpu_payload(body)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The options of interest from the option bytes of a TCP header (all of them, or as many
/// as were captured), in one walk over the bytes that serves two readings:
/// - the layout: the kinds of the first eight options, followed by their length bytes
///   whatever the kind (an unknown or malformed option still has a kind), up to an end
///   option or a length that cannot be followed;
/// - the values, read as etherparse's `TcpOptionsIterator` reads them (the decoders agreed
///   with it when it did this part): the known kinds with their exact lengths, and nothing
///   after the first option it cannot read (an end option, an unknown kind, a wrong
///   length, or one cut by the snapshot length).
///
/// Where the layout walk stops, the values have stopped too: an end option ends both, and
/// a length byte missing or below 2 is wrong for every kind the values read.
fn options(raw: &[u8]) -> TcpOpts {
    let mut o = TcpOpts::default();
    let (mut i, mut n) = (0usize, 0u32);
    let mut values = true;
    while i < raw.len() && (n < 8 || values) {
        let kind = raw[i];
        if n < 8 {
            o.layout |= (kind as u64) << (8 * n);
            n += 1;
        }
        let rest = &raw[i..];
        let len = match kind {
            0 => break,
            1 => 1,
            _ => match rest.get(1) {
                Some(&len) if len >= 2 => usize::from(len),
                _ => break,
            },
        };
        if values {
            values = rest.len() >= len
                && match (kind, len) {
                    (1, _) | (5, 10 | 18 | 26 | 34) => true,
                    (2, 4) => {
                        o.mss = Some(u16::from_be_bytes([rest[2], rest[3]]));
                        true
                    }
                    (3, 3) => {
                        o.wscale = Some(rest[2]);
                        true
                    }
                    (4, 2) => {
                        o.sack_perm = true;
                        true
                    }
                    (8, 10) => {
                        let u32_at = |at: usize| {
                            u32::from_be_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]])
                        };
                        o.ts = Some((u32_at(2), u32_at(6)));
                        true
                    }
                    _ => false,
                };
        }
        i += len;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{TcpOptionElement, TcpOptionsIterator};

    /// The two walks `options` made before it made one (the layout by hand, the values by
    /// etherparse's iterator): the oracle its result must equal.
    fn options_two_walks(raw: &[u8]) -> TcpOpts {
        let mut o = TcpOpts::default();
        // The kinds, straight from the bytes (etherparse's iterator stops at an unknown kind).
        let (mut i, mut n) = (0usize, 0u32);
        while i < raw.len() && n < 8 {
            let kind = raw[i];
            o.layout |= (kind as u64) << (8 * n);
            n += 1;
            match kind {
                0 => break,
                1 => i += 1,
                _ => match raw.get(i + 1) {
                    Some(&len) if len >= 2 => i += len as usize,
                    _ => break,
                },
            }
        }
        for opt in TcpOptionsIterator::from_slice(raw) {
            match opt {
                Ok(TcpOptionElement::MaximumSegmentSize(v)) => o.mss = Some(v),
                Ok(TcpOptionElement::WindowScale(v)) => o.wscale = Some(v),
                Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => o.sack_perm = true,
                Ok(TcpOptionElement::Timestamp(val, ecr)) => o.ts = Some((val, ecr)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        o
    }

    /// One walk over the option bytes gives what the two walks gave (the layout by hand,
    /// the values by etherparse), on every byte string of up to 3 bytes and on a million
    /// random ones of up to 44 bytes, weighted toward the kinds and lengths that matter.
    #[test]
    fn test_options_in_one_walk_equal_the_two_walks() {
        let check =
            |raw: &[u8]| assert_eq!(options(raw), options_two_walks(raw), "options {raw:?}");
        check(&[]);
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
                for c in [0u8, 1, 2, 3, 4, 5, 8, 10, 255] {
                    check(&[a, b, c]);
                }
            }
        }
        const BYTES: [u8; 16] = [0, 1, 2, 3, 4, 5, 8, 10, 18, 26, 34, 6, 30, 254, 9, 0x80];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut raw = Vec::with_capacity(44);
        for _ in 0..1_000_000 {
            raw.clear();
            let len = (next() % 45) as usize;
            for _ in 0..len {
                let r = next();
                raw.push(if r & 3 == 0 {
                    (r >> 8) as u8
                } else {
                    BYTES[((r >> 8) & 15) as usize]
                });
            }
            check(&raw);
        }
        // The real ones: a Linux SYN, its SYN-ACK's, and an ACK's with timestamps.
        check(&[
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        check(&[1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0]);
        check(&[
            1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9, 1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0,
        ]);
    }

    /// A TCP header: ports 40000 → 80, seq 1000, ack 2000, window 512, `flags`, `opts`
    /// (padded to 4 bytes).
    fn tcp_header(flags: u8, opts: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&40000u16.to_be_bytes());
        h.extend_from_slice(&80u16.to_be_bytes());
        h.extend_from_slice(&1000u32.to_be_bytes());
        h.extend_from_slice(&2000u32.to_be_bytes());
        let len = 20 + opts.len().div_ceil(4) * 4;
        h.push(((len / 4) as u8) << 4);
        h.push(flags);
        h.extend_from_slice(&512u16.to_be_bytes());
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(opts);
        h.resize(len, 0);
        h
    }

    /// A raw-IP frame: an IPv4 header stating `total_len`, then `rest`.
    fn ipv4(total_len: u16, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&total_len.to_be_bytes());
        v.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        v.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend_from_slice(rest);
        v
    }

    fn decode_raw(data: &[u8], orig_len: usize) -> Result<Segment, SkipReason> {
        decode(&Frame {
            number: 1,
            offset: 0,
            ts: 0,
            iface: 0,
            linktype: linktype::RAW,
            data,
            orig_len: orig_len as u32,
        })
    }

    /// tcpdump's kday4.pcap frame 10: a bare ACK whose IPv4 total length (820) runs past
    /// the 52-byte packet. Wireshark takes the packet's end (§4.1): no payload, so the ACK
    /// is a duplicate ACK, not a data segment.
    #[test]
    fn test_ip_total_length_past_the_packet_end_is_cut_there() {
        let tcp = tcp_header(TcpFlags::ACK, &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        let data = ipv4(820, &tcp);
        assert_eq!(data.len(), 52);
        let seg = decode_raw(&data, 52).unwrap();
        assert_eq!(seg.payload_len, 0);
        assert!(!seg.truncated);
        // The same packet cut by the snapshot length at 52 of 1000 bytes: the stated
        // length is within the wire length and counts.
        let seg = decode_raw(&data, 1000).unwrap();
        assert_eq!(seg.payload_len, 820 - 20 - 32);
        assert!(seg.truncated);
    }

    /// tcpdump's heapoverflow-tcp_print.pcap and beep-oobr.pcap: the snapshot length cut the
    /// TCP options. The fixed header is there, so the segment is decoded (Wireshark analyses
    /// it) with the options that were captured whole.
    #[test]
    fn test_tcp_options_cut_by_snaplen_still_decode() {
        // SYN with MSS 1460, SACK permitted, timestamps, window scale: a 40-byte header.
        let opts = [
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let tcp = tcp_header(TcpFlags::SYN, &opts);
        assert_eq!(tcp.len(), 40);
        let full = ipv4(20 + 40 + 32, &tcp);
        // Captured: IP header, the fixed TCP header and the first 6 option bytes.
        let cut = &full[..20 + 26];
        let seg = decode_raw(cut, 20 + 40 + 32).unwrap();
        assert_eq!((seg.src.port, seg.dst.port), (40000, 80));
        assert_eq!((seg.seq, seg.ack), (Seq(1000), Seq(2000)));
        assert_eq!(seg.flags, TcpFlags(TcpFlags::SYN));
        assert_eq!(seg.window, 512);
        assert_eq!(seg.payload_len, 32);
        assert!(seg.truncated);
        assert_eq!(seg.opts.mss, Some(1460));
        assert!(seg.opts.sack_perm);
        assert_eq!(seg.opts.ts, None);
        // Less than the fixed header: still not decodable.
        assert_eq!(
            decode_raw(&full[..20 + 19], 92),
            Err(SkipReason::TruncatedHeaders)
        );
    }

    /// A TSO super-segment (IPv4 total length 0) cut by the snapshot length: its length is
    /// the wire length, not the captured one (§4.1).
    #[test]
    fn test_tso_zero_total_length_counts_uncaptured_bytes() {
        let mut data = ipv4(0, &tcp_header(TcpFlags::ACK, &[]));
        data.extend_from_slice(&[0xab; 10]);
        let seg = decode_raw(&data, 20 + 20 + 5000).unwrap();
        assert_eq!(seg.payload_len, 5000);
        assert!(seg.truncated);
        let seg = decode_raw(&data, data.len()).unwrap();
        assert_eq!(seg.payload_len, 10);
        assert!(!seg.truncated);
    }

    /// A TCP header whose data offset claims more bytes than the IP packet holds (here 32
    /// in a 20-byte IP payload, all of it captured): Wireshark reports it malformed and
    /// runs no analysis, so it is skipped as `malformed`, not decoded as if snaplen-cut.
    #[test]
    fn test_tcp_header_longer_than_the_ip_payload_is_malformed() {
        let mut tcp = tcp_header(TcpFlags::ACK, &[]);
        tcp[12] = 8 << 4;
        let data = ipv4(40, &tcp);
        assert_eq!(decode_raw(&data, data.len()), Err(SkipReason::Malformed));
        // With Ethernet-style padding after the IP packet: still malformed.
        let mut padded = data.clone();
        padded.extend_from_slice(&[0; 12]);
        assert_eq!(
            decode_raw(&padded, padded.len()),
            Err(SkipReason::Malformed)
        );
    }

    /// Ethernet, two MPLS labels (the second with the bottom-of-stack bit), then IPv4 and
    /// TCP: the segment under the stack is decoded (zeek's mixed-vlan-mpls.pcap).
    #[test]
    fn test_tcp_under_an_mpls_label_stack_decodes() {
        let ip = ipv4(40, &tcp_header(TcpFlags::ACK, &[]));
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x88, 0x47]);
        frame.extend_from_slice(&[0x00, 0x06, 0x40, 0x40]); // label 100, not bottom
        frame.extend_from_slice(&[0x00, 0x06, 0x51, 0x40]); // label 101, bottom
        frame.extend_from_slice(&ip);
        let seg = decode_ethernet(&frame).unwrap();
        assert_eq!((seg.src.port, seg.dst.port), (40000, 80));
        assert_eq!(seg.tunnel, Tunnel::Mpls);
        // A stack that never ends, or ends on something else than IP: not IP.
        let mut endless = frame[..14].to_vec();
        endless.extend_from_slice(&[0x00, 0x06, 0x40, 0x40].repeat(9));
        assert_eq!(decode_ethernet(&endless), Err(SkipReason::NotIp));
        let mut pseudowire = frame[..22].to_vec();
        pseudowire.extend_from_slice(&[0; 40]);
        assert_eq!(decode_ethernet(&pseudowire), Err(SkipReason::NotIp));
    }

    /// An Ethernet frame carrying `payload` in an outer IPv4 packet of protocol `proto`
    /// (192.0.2.1 → 192.0.2.2).
    fn outer_ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        f.extend_from_slice(payload);
        f
    }

    fn decode_ethernet(data: &[u8]) -> Result<Segment, SkipReason> {
        decode(&Frame {
            number: 1,
            offset: 0,
            ts: 0,
            iface: 0,
            linktype: linktype::ETHERNET,
            data,
            orig_len: data.len() as u32,
        })
    }

    /// The inner Ethernet frame of the port-mirroring tests: IPv4 and TCP.
    fn mirrored() -> Vec<u8> {
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ipv4(40, &tcp_header(TcpFlags::SYN, &[])));
        eth
    }

    /// ERSPAN type III with the platform sub-header (O flag), and type I (GRE without a
    /// sequence number, the frame right after the GRE header): the mirrored TCP decodes.
    #[test]
    fn test_erspan_iii_and_type_i_mirrored_tcp_decodes() {
        let mut gre = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 9];
        let mut erspan3 = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01];
        erspan3.extend_from_slice(&[0; 8]); // platform-specific sub-header
        gre.extend_from_slice(&erspan3);
        gre.extend_from_slice(&mirrored());
        let seg = decode_ethernet(&outer_ipv4(47, &gre)).unwrap();
        assert_eq!((seg.src.port, seg.tunnel), (40000, Tunnel::Gre));
        let mut type1 = vec![0x00, 0x00, 0x88, 0xbe];
        type1.extend_from_slice(&mirrored());
        let seg = decode_ethernet(&outer_ipv4(47, &type1)).unwrap();
        assert_eq!(seg.dst.port, 80);
        // GRE version 1 (PPTP) carries PPP, not a packet pcapdiag reads.
        assert_eq!(
            decode_ethernet(&outer_ipv4(47, &[0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0])),
            Err(SkipReason::NotTcp)
        );
    }

    /// GTP-U with a sequence number and one extension header (PDU session container,
    /// 4 bytes): the user's TCP decodes; an echo request is not TCP.
    #[test]
    fn test_gtpu_with_an_extension_header_decodes() {
        let inner = ipv4(40, &tcp_header(TcpFlags::SYN, &[]));
        let mut gtp = vec![0x36, 0xff, 0, 0, 0, 0, 0, 1, 0, 7, 0, 0x85];
        gtp.extend_from_slice(&[1, 0x10, 9, 0]); // length 1 (4 bytes), next type 0
        gtp.extend_from_slice(&inner);
        let mut udp = Vec::new();
        udp.extend_from_slice(&2152u16.to_be_bytes());
        udp.extend_from_slice(&2152u16.to_be_bytes());
        udp.extend_from_slice(&(8 + gtp.len() as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&gtp);
        let seg = decode_ethernet(&outer_ipv4(17, &udp)).unwrap();
        assert_eq!((seg.src.port, seg.tunnel), (40000, Tunnel::GtpU));
        let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
        let mut udp = vec![0x08, 0x68, 0x08, 0x68, 0, 20, 0, 0];
        udp.extend_from_slice(&echo);
        assert_eq!(
            decode_ethernet(&outer_ipv4(17, &udp)),
            Err(SkipReason::NotTcp)
        );
    }
}
