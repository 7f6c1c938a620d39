//! Why a frame was not analysed. Every frame read is either decoded into a TCP segment
//! or counted under exactly one of these reasons, so `analysed + skipped == read` holds
//! for every capture and the report can show where each frame went.

use crate::units::codes;

codes! {
    /// The reason a frame was not analysed. Codes are stable snake_case (JSON, CSV).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum SkipReason {
        /// A link type pcapdiag does not decode (e.g. 802.11, USB).
        UnsupportedLinktype = ("unsupported_linktype", "link type not decoded"),
        /// The link layer carries something other than IPv4/IPv6 (ARP, LLDP, ...).
        NotIp = ("not_ip", "not IPv4/IPv6 (ARP, LLDP, ...)"),
        /// IP, but not TCP (UDP, ICMP, ...), after unwrapping any tunnel.
        NotTcp = ("not_tcp", "IP but not TCP (UDP, ICMP, ...)"),
        /// A fragment of a fragmented IP datagram: the datagram's TCP segment is analysed
        /// at the fragment that completes it ([`crate::defrag`]), the others are counted
        /// here, as are fragments of datagrams that never completed or carry no TCP.
        IpFragment = ("ip_fragment", "IP fragment (its datagram is analysed at the fragment completing it)"),
        /// The capture's snapshot length cut the frame inside its headers.
        TruncatedHeaders = ("truncated_headers", "cut by snaplen inside the headers"),
        /// A header that cannot be parsed (bad IP header length, bad TCP data offset, ...).
        Malformed = ("malformed", "malformed header"),
        /// A pcapng packet for an interface that no Interface Description Block declared.
        UnknownInterface = ("unknown_interface", "pcapng packet for an undeclared interface"),
        /// A pcapng Simple Packet Block: it carries no timestamp.
        NoTimestamp = ("no_timestamp", "pcapng simple packet block (no timestamp)"),
        /// Left out by `--port`, `--since` or `--until`.
        Filtered = ("filtered", "left out by --port/--since/--until"),
        /// A segment that would have started a connection after `--max-records` connection
        /// records were held (memory is bounded; the connections before it are complete).
        RecordCap = ("record_cap", "would start a connection past --max-records (not analysed, to bound memory)"),
    }
}

/// Frame counts per skip reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipCounts([u64; SkipReason::ALL.len()]);

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason) {
        self.0[reason as usize] += 1;
    }
    /// Adds another count of other frames.
    pub fn merge(&mut self, other: &SkipCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
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
