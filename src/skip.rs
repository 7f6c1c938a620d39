//! Why a frame was not analysed. Every frame read is either decoded into a TCP segment
//! or counted under exactly one of these reasons, so `analysed + skipped == read` holds
//! for every capture and the report can show where each frame went.

use serde::Serialize;

/// The reason a frame was not analysed. Codes are stable snake_case (JSON, CSV).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A link type pcapdiag does not decode (e.g. 802.11, USB).
    UnsupportedLinktype,
    /// The link layer carries something other than IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...), after unwrapping any tunnel.
    NotTcp,
    /// A fragment of a fragmented IP datagram (its TCP header is not in this frame).
    IpFragment,
    /// The capture's snapshot length cut the frame inside its headers.
    TruncatedHeaders,
    /// A header that cannot be parsed (bad IP header length, bad TCP data offset, ...).
    Malformed,
    /// A pcapng packet for an interface that no Interface Description Block declared.
    UnknownInterface,
    /// A pcapng Simple Packet Block: it carries no timestamp.
    NoTimestamp,
    /// Left out by `--port`, `--since` or `--until`.
    Filtered,
    /// A segment that would have started a connection after `--max-records` connection
    /// records were held (memory is bounded; the connections before it are complete).
    RecordCap,
}

impl SkipReason {
    /// Every reason, in report order.
    pub const ALL: [SkipReason; 10] = [
        SkipReason::UnsupportedLinktype,
        SkipReason::NotIp,
        SkipReason::NotTcp,
        SkipReason::IpFragment,
        SkipReason::TruncatedHeaders,
        SkipReason::Malformed,
        SkipReason::UnknownInterface,
        SkipReason::NoTimestamp,
        SkipReason::Filtered,
        SkipReason::RecordCap,
    ];

    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinktype => "unsupported_linktype",
            SkipReason::NotIp => "not_ip",
            SkipReason::NotTcp => "not_tcp",
            SkipReason::IpFragment => "ip_fragment",
            SkipReason::TruncatedHeaders => "truncated_headers",
            SkipReason::Malformed => "malformed",
            SkipReason::UnknownInterface => "unknown_interface",
            SkipReason::NoTimestamp => "no_timestamp",
            SkipReason::Filtered => "filtered",
            SkipReason::RecordCap => "record_cap",
        }
    }

    /// One line for humans.
    pub fn text(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinktype => "link type not decoded",
            SkipReason::NotIp => "not IPv4/IPv6 (ARP, LLDP, ...)",
            SkipReason::NotTcp => "IP but not TCP (UDP, ICMP, ...)",
            SkipReason::IpFragment => "IP fragment",
            SkipReason::TruncatedHeaders => "cut by snaplen inside the headers",
            SkipReason::Malformed => "malformed header",
            SkipReason::UnknownInterface => "pcapng packet for an undeclared interface",
            SkipReason::NoTimestamp => "pcapng simple packet block (no timestamp)",
            SkipReason::Filtered => "left out by --port/--since/--until",
            SkipReason::RecordCap => {
                "would start a connection past --max-records (not analysed, to bound memory)"
            }
        }
    }
}

/// Frame counts per skip reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipCounts([u64; SkipReason::ALL.len()]);

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason) {
        self.0[reason as usize] += 1;
    }
    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0[reason as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// The non-zero counts, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (SkipReason, u64)> + '_ {
        SkipReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_all_is_in_discriminant_order() {
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
    }

    #[test]
    fn test_counts_total_and_iter() {
        let mut c = SkipCounts::default();
        c.add(SkipReason::NotTcp);
        c.add(SkipReason::NotTcp);
        c.add(SkipReason::Malformed);
        assert_eq!(c.total(), 3);
        let v: Vec<_> = c.iter().collect();
        assert_eq!(v, vec![(SkipReason::NotTcp, 2), (SkipReason::Malformed, 1)]);
    }
}
