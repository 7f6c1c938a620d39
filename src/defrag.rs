//! Defrag: the fragments of an IP datagram carrying TCP become one segment, analysed at
//! the frame that completes the datagram, as Wireshark does.
//!
//! Only what the analysis needs is kept: which byte ranges of the datagram have arrived,
//! where it ends, and the first [`HEAD`] bytes (the TCP header). Overlaps are handled as
//! Linux handles them (since 4.19 for IPv4, RFC 5722 for IPv6): an exact duplicate is
//! ignored, any other overlap discards the whole datagram. Memory is bounded: a datagram
//! not completed within [`TIMEOUT_NS`] of its first fragment (Linux's `ipfrag_time`) is
//! dropped, and at most [`MAX_PENDING`] are held at once (the oldest goes first). Each
//! of these ends is counted ([`DefragCounts`]); the fragments' frames are counted as
//! skipped (`ip_fragment`) except the completing one, which is analysed.

use crate::decode::{self, Fragment, FragmentKey, Segment};
use crate::read::Frame;
use crate::skip::SkipReason;
use crate::units::NS_PER_S;
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;
use std::collections::VecDeque;

/// Bytes kept from the start of a datagram's payload: the longest TCP header.
const HEAD: usize = 60;
/// A datagram not complete this long after its first fragment is dropped (Linux's
/// `net.ipv4.ipfrag_time`).
pub const TIMEOUT_NS: i64 = 30 * NS_PER_S;
/// Most datagrams reassembled at once.
pub const MAX_PENDING: usize = 4096;
/// An IP datagram's payload is at most this long.
const MAX_DATAGRAM: u32 = 65_535;

/// What became of the fragmented datagrams of one capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DefragCounts {
    /// Completed: their TCP segment was analysed at the last fragment's frame.
    pub reassembled: u64,
    /// Not completed within [`TIMEOUT_NS`].
    pub timed_out: u64,
    /// Dropped to make room ([`MAX_PENDING`]).
    pub evicted: u64,
    /// Discarded: two fragments overlapped without being the same bytes (Linux drops such
    /// a datagram).
    pub overlapping: u64,
    /// Discarded: a fragment past the end, a second different end, or past 65,535 bytes.
    pub invalid: u64,
    /// Still incomplete when the capture ended.
    pub unfinished: u64,
    /// First fragments cut by the snapshot length: not reassembled, their TCP segment
    /// analysed alone (as Wireshark does); later fragments cut so are only skipped.
    pub cut_first: u64,
}

impl DefragCounts {
    pub fn is_empty(&self) -> bool {
        *self == DefragCounts::default()
    }
}

/// A datagram being put together.
struct Pending {
    first_ts: i64,
    /// Byte ranges `[start, end)` received, sorted and disjoint.
    ranges: SmallVec<[(u32, u32); 4]>,
    /// The payload's length, once the last fragment (no MF flag) arrived.
    end: Option<u32>,
    /// The first bytes of the payload, and which of them were captured (bit i: byte i).
    head: [u8; HEAD],
    head_known: u64,
    /// The first fragment's TTL (the datagram's own).
    ttl: u8,
}

/// How a fragment fits the ranges received so far.
enum Fit {
    New(usize),
    Duplicate,
    Overlap,
}

impl Pending {
    fn fit(&self, start: u32, end: u32) -> Fit {
        let at = self.ranges.partition_point(|&(_, e)| e <= start);
        match self.ranges.get(at) {
            Some(&r) if r == (start, end) => Fit::Duplicate,
            Some(&(s, _)) if s < end => Fit::Overlap,
            _ => Fit::New(at),
        }
    }

    fn complete(&self) -> bool {
        let Some(end) = self.end else { return false };
        let mut at = 0;
        for &(s, e) in &self.ranges {
            if s != at {
                return false;
            }
            at = e;
        }
        at == end
    }

    /// The captured bytes from the payload's start, up to the first gap.
    fn head(&self) -> &[u8] {
        &self.head[..self.head_known.trailing_ones().min(HEAD as u32) as usize]
    }
}

/// The reassembly state of one capture.
#[derive(Default)]
pub struct Defrag {
    pending: FxHashMap<FragmentKey, Pending>,
    /// (first fragment's time, datagram) in arrival order, for timeouts and eviction; an
    /// entry whose datagram is gone or was started anew is skipped.
    order: VecDeque<(i64, FragmentKey)>,
    counts: DefragCounts,
}

impl Defrag {
    /// Takes a frame that [`decode::decode`] skipped as a fragment. `Some` when it
    /// completes a datagram: its segment, or why the datagram is no segment.
    pub fn push(&mut self, frame: &Frame<'_>) -> Option<Result<Segment, SkipReason>> {
        let f = decode::fragment(frame)?;
        self.expire(frame.ts);
        if (f.data.len() as u32) < f.len {
            // Cut by the snapshot length: not reassembled. A first fragment is analysed
            // alone, as Wireshark does when it cannot reassemble; a later one is skipped.
            if f.offset != 0 {
                return None;
            }
            self.counts.cut_first += 1;
            let head = &f.data[..f.data.len().min(HEAD)];
            return Some(Defrag::segment(frame, &f, head, f.ttl, f.len, true));
        }
        let done = self.add(frame.ts, &f)?;
        self.counts.reassembled += 1;
        let end = done.end.expect("a complete datagram has its end");
        Some(Defrag::segment(
            frame,
            &f,
            done.head(),
            done.ttl,
            end,
            false,
        ))
    }

    /// The segment of a datagram (or of a first fragment analysed alone) at `frame`.
    fn segment(
        frame: &Frame<'_>,
        f: &Fragment<'_>,
        head: &[u8],
        ttl: u8,
        len: u32,
        truncated: bool,
    ) -> Result<Segment, SkipReason> {
        let mut seg = decode::reassembled(head, &f.key, ttl, len, truncated)?;
        seg.frame = frame.number;
        seg.ts = frame.ts;
        seg.iface = f.key.iface;
        seg.tunnel = f.tunnel;
        Ok(seg)
    }

    /// Adds a fragment; the datagram when it is complete.
    fn add(&mut self, ts: i64, f: &Fragment<'_>) -> Option<Pending> {
        let (start, end) = (f.offset, f.offset.saturating_add(f.len));
        if !self.pending.contains_key(&f.key) {
            if self.pending.len() >= MAX_PENDING {
                self.evict_oldest();
            }
            // Entries of finished datagrams wait for their timeout in `order`: compact it
            // now and then, so that it is bounded by the datagrams held, not those seen.
            if self.order.len() >= 4 * MAX_PENDING {
                let pending = &self.pending;
                self.order
                    .retain(|(ts, k)| pending.get(k).is_some_and(|p| p.first_ts == *ts));
            }
            self.order.push_back((ts, f.key));
            self.pending.insert(
                f.key,
                Pending {
                    first_ts: ts,
                    ranges: SmallVec::new(),
                    end: None,
                    head: [0; HEAD],
                    head_known: 0,
                    ttl: f.ttl,
                },
            );
        }
        let p = self.pending.get_mut(&f.key).expect("inserted above");
        let last = !f.more;
        let bad = end > MAX_DATAGRAM
            || p.end.is_some_and(|e| end > e || (last && end != e))
            || (last && p.ranges.last().is_some_and(|&(_, e)| e > end));
        if bad {
            self.pending.remove(&f.key);
            self.counts.invalid += 1;
            return None;
        }
        let at = match p.fit(start, end) {
            // An empty fragment holds nothing: only a last one's end counts.
            _ if start == end && !last => return None,
            Fit::Duplicate => return None,
            Fit::Overlap => {
                self.pending.remove(&f.key);
                self.counts.overlapping += 1;
                return None;
            }
            Fit::New(at) => at,
        };
        if start < end {
            p.ranges.insert(at, (start, end));
        }
        if last {
            p.end = Some(end);
        }
        if start == 0 {
            p.ttl = f.ttl;
        }
        for (i, &b) in f.data.iter().enumerate() {
            let pos = start as usize + i;
            if pos >= HEAD {
                break;
            }
            p.head[pos] = b;
            p.head_known |= 1 << pos;
        }
        if p.complete() {
            return self.pending.remove(&f.key);
        }
        None
    }

    /// Drops the datagrams started more than [`TIMEOUT_NS`] before `now`.
    fn expire(&mut self, now: i64) {
        while let Some(&(ts, key)) = self.order.front() {
            if now.saturating_sub(ts) <= TIMEOUT_NS {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&key).is_some_and(|p| p.first_ts == ts) {
                self.pending.remove(&key);
                self.counts.timed_out += 1;
            }
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((ts, key)) = self.order.pop_front() {
            if self.pending.get(&key).is_some_and(|p| p.first_ts == ts) {
                self.pending.remove(&key);
                self.counts.evicted += 1;
                return;
            }
        }
    }

    /// The counts, the datagrams still incomplete counted as unfinished.
    pub fn finish(mut self) -> DefragCounts {
        self.counts.unfinished += self.pending.len() as u64;
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            id,
            iface: 0,
        }
    }

    /// A fragment of `len` bytes at `offset` of datagram `id`.
    fn frag(id: u32, offset: u32, len: u32, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            len,
            more,
            data,
            ttl: 64,
            tunnel: crate::decode::Tunnel::None,
        }
    }

    #[test]
    fn test_datagram_completes_in_any_order_and_keeps_its_header_bytes() {
        let bytes: Vec<u8> = (0..40).collect();
        let mut d = Defrag::default();
        assert!(d.add(0, &frag(1, 24, 16, false, &bytes[24..])).is_none());
        assert!(d.add(0, &frag(1, 0, 8, true, &bytes[..8])).is_none());
        // An exact duplicate is ignored, as Linux ignores it.
        assert!(d.add(0, &frag(1, 0, 8, true, &bytes[..8])).is_none());
        let done = d
            .add(0, &frag(1, 8, 16, true, &bytes[8..24]))
            .expect("complete");
        assert_eq!(done.end, Some(40));
        assert_eq!(done.head(), &bytes[..]);
        assert!(d.pending.is_empty());
    }

    #[test]
    fn test_conflicting_ends_and_overlaps_drop_the_datagram() {
        let b = [0u8; 64];
        let mut d = Defrag::default();
        d.add(0, &frag(1, 0, 16, true, &b[..16]));
        d.add(0, &frag(1, 8, 16, true, &b[..16]));
        d.add(0, &frag(2, 32, 8, false, &b[..8]));
        d.add(0, &frag(2, 16, 8, false, &b[..8]));
        d.add(0, &frag(3, 65_528, 16, false, &b[..16]));
        let c = d.finish();
        assert_eq!((c.overlapping, c.invalid, c.unfinished), (1, 2, 0), "{c:?}");
    }

    #[test]
    fn test_old_datagrams_time_out_and_the_oldest_makes_room() {
        let b = [0u8; 8];
        let mut d = Defrag::default();
        d.add(0, &frag(1, 0, 8, true, &b));
        d.expire(TIMEOUT_NS);
        assert_eq!(d.pending.len(), 1, "not yet: 30 s exactly");
        d.expire(TIMEOUT_NS + 1);
        assert!(d.pending.is_empty());
        for id in 0..=MAX_PENDING as u32 {
            d.add(TIMEOUT_NS + 2, &frag(id + 10, 0, 8, true, &b));
        }
        assert_eq!(d.pending.len(), MAX_PENDING);
        assert!(!d.pending.contains_key(&key(10)), "the oldest went first");
        let c = d.finish();
        assert_eq!(
            (c.timed_out, c.evicted, c.unfinished),
            (1, 1, MAX_PENDING as u64)
        );
    }

    #[test]
    fn test_arrival_list_is_bounded_by_the_datagrams_held_not_those_seen() {
        // Five times as many datagrams as can be held, each completed at once (within the
        // timeout, so none leaves the list by age): without the compaction the list would
        // hold an entry for every one of them.
        let b = [0u8; 8];
        let mut d = Defrag::default();
        let seen = 5 * MAX_PENDING as u32;
        for id in 0..seen {
            d.add(0, &frag(id, 0, 8, true, &b));
            assert!(
                d.add(0, &frag(id, 8, 8, false, &b)).is_some(),
                "{id} complete"
            );
        }
        assert!(d.pending.is_empty());
        assert!(
            d.order.len() <= 4 * MAX_PENDING,
            "{} entries for {seen} datagrams seen, none held",
            d.order.len()
        );
    }
}
