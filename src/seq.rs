//! TCP sequence numbers: a `u32` that compares modulo 2^32 (RFC 793 §3.3).
//!
//! Every comparison of sequence or acknowledgement numbers in the crate goes through
//! [`Seq`], so wraparound is handled in one place.

use serde::Serialize;
use std::fmt;

/// A TCP sequence (or acknowledgement) number; ordering is modulo 2^32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Seq(pub u32);

impl std::ops::Add<u32> for Seq {
    type Output = Seq;
    /// `self + n`, wrapping.
    #[inline]
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl std::ops::Sub<u32> for Seq {
    type Output = Seq;
    /// `self - n`, wrapping.
    #[inline]
    fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
}

impl Seq {
    /// Signed distance from `other` to `self` (positive when `self` is after `other`).
    #[inline]
    pub fn diff(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    /// `self > other` modulo 2^32, as Wireshark's `GT_SEQ` and Linux's `after()` compute
    /// it: `(i32)(other - self) < 0`. Exactly 2^31 apart, both `gt` and `lt` are true.
    #[inline]
    pub fn gt(self, other: Seq) -> bool {
        other.diff(self) < 0
    }
    /// `self < other` modulo 2^32 (Wireshark's `LT_SEQ`: `(i32)(self - other) < 0`).
    #[inline]
    pub fn lt(self, other: Seq) -> bool {
        self.diff(other) < 0
    }
    /// `self >= other` modulo 2^32 (Wireshark's `GE_SEQ`: `(i32)(other - self) <= 0`).
    #[inline]
    pub fn ge(self, other: Seq) -> bool {
        other.diff(self) <= 0
    }
    /// `self <= other` modulo 2^32 (Wireshark's `LE_SEQ`: `(i32)(self - other) <= 0`).
    #[inline]
    pub fn le(self, other: Seq) -> bool {
        self.diff(other) <= 0
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_order_plain() {
        assert!(Seq(10).gt(Seq(5)));
        assert!(Seq(5).lt(Seq(10)));
        assert!(Seq(5).le(Seq(5)) && Seq(5).ge(Seq(5)));
        assert!(!Seq(5).gt(Seq(5)));
    }

    #[test]
    fn test_order_across_wrap() {
        let before = Seq(u32::MAX - 10);
        let after = before + 20;
        assert_eq!(after, Seq(9));
        assert!(after.gt(before));
        assert!(before.lt(after));
        assert_eq!(after.diff(before), 20);
        assert_eq!(before.diff(after), -20);
        assert_eq!(after - 20, before);
    }

    /// Exactly 2^31 apart the order is ambiguous; Wireshark's macros (and Linux's
    /// `before()`/`after()`) then answer "greater" and "less" both, and so must pcapdiag,
    /// or its flags part from Wireshark's there.
    #[test]
    fn test_order_exactly_half_the_space_apart_is_both_ways_as_in_wireshark() {
        let a = Seq(0);
        let b = Seq(1 << 31);
        assert!(a.gt(b) && a.lt(b) && a.ge(b) && a.le(b));
        assert!(b.gt(a) && b.lt(a) && b.ge(a) && b.le(a));
        // One less, and the order is plain again.
        let c = Seq((1 << 31) - 1);
        assert!(c.gt(a) && !c.lt(a) && a.lt(c) && !a.gt(c));
    }
}
