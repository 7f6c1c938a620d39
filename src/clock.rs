//! Clock: the offset between two captures' clocks, from handshakes seen on both sides.
//!
//! A SYN seen leaving the client (T1) and arriving at the real server (T2), and the SYN-ACK
//! leaving the server (T3) and arriving at the client (T4), are an NTP exchange: the offset
//! is θ = ((T2 − T1) + (T3 − T4)) / 2 with error at most δ / 2, δ = (T4 − T1) − (T3 − T2).
//! Samples with the smallest δ are the most precise, so per time window the minimum-δ sample
//! is kept; a line through them (least squares, integer arithmetic) gives the skew; a jump
//! between windows larger than the error bounds is a clock step, and each side of a step
//! gets its own line. Causality bounds every estimate: the server cannot see the SYN
//! before the client sent it, so θ < T2 − T1 and θ > T3 − T4 for every sample.
//!
//! Offsets are RS clock minus client clock; every time shown in a report is on the client's
//! clock: `t_client = t_rs − offset(t)`.

use serde::Serialize;

/// One NTP-style exchange, all times in ns on their own clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// SYN at the client capture point (client clock).
    pub t1: i64,
    /// Same SYN at the RS capture point (RS clock).
    pub t2: i64,
    /// SYN-ACK at the RS capture point (RS clock).
    pub t3: i64,
    /// Same SYN-ACK at the client capture point (client clock).
    pub t4: i64,
}

impl Exchange {
    /// 2θ: twice the offset estimate (kept doubled so it stays an integer).
    fn theta2(&self) -> i64 {
        // Saturating, here and below: hostile captures put frame times anywhere in ±2^62 ns.
        (self.t2.saturating_sub(self.t1)).saturating_add(self.t3.saturating_sub(self.t4))
    }
    /// δ: the round-trip time outside the server.
    fn delta(&self) -> i64 {
        (self.t4.saturating_sub(self.t1)).saturating_sub(self.t3.saturating_sub(self.t2))
    }
}

/// A straight piece of the clock model, valid from `from_ns` (client clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ClockSegment {
    /// Client-clock time this piece starts at (the first exchange's T1).
    pub from_ns: i64,
    /// Offset at `from_ns`, ns (RS clock − client clock).
    pub offset_ns: i64,
    /// Drift of the offset, in parts per billion (ns of offset per s of client time).
    pub skew_ppb: i64,
    /// The error bound of the piece: the largest, over its samples, of the line's distance
    /// from the sample's θ plus the sample's own bound δ/2. (With a skew fitted to noisy
    /// samples, the line strays from each sample; the bound includes that.)
    pub error_ns: i64,
    /// Exchanges used (one per window).
    pub samples: usize,
}

/// The estimated relation between the two clocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClockModel {
    /// One piece, or several when the clock was stepped.
    pub segments: Vec<ClockSegment>,
    /// Exchanges available in all.
    pub exchanges: usize,
    /// Steps detected: (client time, size of the step in ns).
    pub steps: Vec<(i64, i64)>,
}

impl ClockModel {
    /// The identity: both captures on one clock (or nothing to estimate from).
    pub fn identity() -> ClockModel {
        ClockModel {
            segments: Vec::new(),
            exchanges: 0,
            steps: Vec::new(),
        }
    }

    /// RS clock − client clock at client time `t`.
    pub fn offset_at(&self, t: i64) -> i64 {
        let Some(seg) = self
            .segments
            .iter()
            .rev()
            .find(|s| s.from_ns <= t)
            .or(self.segments.first())
        else {
            return 0;
        };
        // Saturating here and below: frame times are within ±2^62 ns (read::MAX_TS), but an
        // offset between two hostile captures can be as large, and their sum is not.
        seg.offset_ns.saturating_add(mul_div(
            t.saturating_sub(seg.from_ns),
            seg.skew_ppb,
            1_000_000_000,
        ))
    }

    /// An RS-clock time on the client's clock.
    pub fn to_client(&self, t_rs: i64) -> i64 {
        // offset_at wants a client time; the offset changes slowly, so one refinement is exact
        // to well under a nanosecond for any sane skew.
        let guess = t_rs.saturating_sub(self.offset_at(t_rs));
        t_rs.saturating_sub(self.offset_at(guess))
    }

    /// A client-clock time on the RS's clock.
    pub fn to_rs(&self, t_client: i64) -> i64 {
        t_client.saturating_add(self.offset_at(t_client))
    }

    /// The error bound at client time `t` (that of the piece in force).
    pub fn error_at(&self, t: i64) -> i64 {
        self.segments
            .iter()
            .rev()
            .find(|s| s.from_ns <= t)
            .or(self.segments.first())
            .map_or(0, |s| s.error_ns)
    }
}

fn mul_div(a: i64, b: i64, c: i64) -> i64 {
    ((a as i128 * b as i128) / c as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Windows of client time in which the minimum-δ exchange is kept.
const WINDOW_NS: i64 = 1_000_000_000;
/// A jump between neighbouring windows beyond this (and beyond their error bounds) is a step.
const MIN_STEP_NS: i64 = 1_000_000;
/// Below this, a window's round trip is never an outlier.
const OUTLIER_FLOOR_NS: i64 = 5_000_000;
/// Real oscillators drift by at most a few hundred ppm; a fit beyond this is noise.
const MAX_SKEW_PPB: i64 = 1_000_000;

/// Estimates the clock model from exchanges (any order).
pub fn estimate(exchanges: &[Exchange]) -> ClockModel {
    let mut ex: Vec<Exchange> = exchanges
        .iter()
        .copied()
        .filter(|e| e.delta() >= 0)
        .collect();
    if ex.is_empty() {
        return ClockModel {
            segments: Vec::new(),
            exchanges: exchanges.len(),
            steps: Vec::new(),
        };
    }
    ex.sort_by_key(|e| e.t1);
    // The minimum-δ exchange of each window.
    let mut best: Vec<Exchange> = Vec::new();
    for e in ex {
        match best.last_mut() {
            Some(b) if e.t1.div_euclid(WINDOW_NS) == b.t1.div_euclid(WINDOW_NS) => {
                if e.delta() < b.delta() {
                    *b = e;
                }
            }
            _ => best.push(e),
        }
    }
    // A window whose best exchange took far longer than the typical one holds no precise
    // sample (a queue, a retransmission mismatched): leave it out.
    let mut deltas: Vec<i64> = best.iter().map(|e| e.delta()).collect();
    deltas.sort_unstable();
    let typical = deltas[deltas.len() / 2];
    best.retain(|e| e.delta() <= typical.saturating_mul(20).max(OUTLIER_FLOOR_NS));
    // Split at steps: a jump between neighbours larger than both error bounds.
    let mut pieces: Vec<Vec<Exchange>> = vec![Vec::new()];
    let mut steps = Vec::new();
    for w in best.windows(2) {
        pieces.last_mut().expect("non-empty").push(w[0]);
        let jump2 = w[1].theta2().saturating_sub(w[0].theta2());
        let bound2 = w[0]
            .delta()
            .saturating_add(w[1].delta())
            .saturating_add(2 * MIN_STEP_NS);
        // Skew alone moves θ by at most ~0.1 ms per second between neighbouring windows.
        let gap_s = (w[1].t1.saturating_sub(w[0].t1) / 1_000_000_000).max(1);
        // In i128: hostile times make the jump i64::MIN and the bound past i64.
        if i128::from(jump2).abs() > i128::from(bound2) + 200_000 * i128::from(gap_s) {
            steps.push((w[1].t1, jump2 / 2));
            pieces.push(Vec::new());
        }
    }
    pieces
        .last_mut()
        .expect("non-empty")
        .push(*best.last().expect("non-empty"));
    pieces.retain(|p| !p.is_empty());
    let skew_ppb = shared_skew(&pieces);
    let segments = pieces.iter().map(|p| piece(p, skew_ppb)).collect();
    ClockModel {
        segments,
        exchanges: exchanges.len(),
        steps,
    }
}

/// The skew, fitted once over every piece (a step changes the offset, not the rate):
/// pooled least squares of 2θ against time within each piece, in i128.
fn shared_skew(pieces: &[Vec<Exchange>]) -> i64 {
    let (mut sxx, mut sxy, mut span) = (0i128, 0i128, 0i128);
    for p in pieces {
        let n = p.len() as i128;
        let t0 = p[0].t1;
        let xs: Vec<i128> = p.iter().map(|e| e.t1 as i128 - t0 as i128).collect();
        let ys: Vec<i128> = p.iter().map(|e| e.theta2() as i128).collect();
        let mx = xs.iter().sum::<i128>() / n;
        let my = ys.iter().sum::<i128>() / n;
        // Saturating: with hostile times (up to ±2^62 ns apart) the squares and their sums
        // pass i128 (found by fuzzing); the skew is then clamped anyway.
        let sq = |a: i128, b: i128| a.saturating_mul(b);
        sxx = xs
            .iter()
            .fold(sxx, |s, x| s.saturating_add(sq(x - mx, x - mx)));
        sxy = xs
            .iter()
            .zip(&ys)
            .fold(sxy, |s, (x, y)| s.saturating_add(sq(x - mx, y - my)));
        span = span.max(*xs.last().unwrap_or(&0));
    }
    // Skew needs a baseline of a few seconds to mean anything; real clocks drift by at most
    // a few hundred ppm, so anything beyond is noise.
    if sxx == 0 || span < 5 * WINDOW_NS as i128 {
        return 0;
    }
    // The slope of 2θ per ns of t, in ppb: sxy / sxx · 1e9 / 2.
    let ppb = sxy.saturating_mul(1_000_000_000) / sxx / 2;
    ppb.clamp(i128::from(-MAX_SKEW_PPB), i128::from(MAX_SKEW_PPB)) as i64
}

/// One piece: its offset at its first exchange, given the shared skew.
fn piece(samples: &[Exchange], skew_ppb: i64) -> ClockSegment {
    let t0 = samples[0].t1;
    let n = samples.len() as i128;
    let mean_x = samples
        .iter()
        .map(|e| e.t1 as i128 - t0 as i128)
        .sum::<i128>()
        / n;
    let mean_y = samples.iter().map(|e| e.theta2() as i128).sum::<i128>() / n;
    // Intercept at t0: mean θ minus slope × mean x.
    let offset_ns = (mean_y / 2 - mean_x * skew_ppb as i128 / 1_000_000_000) as i64;
    let line = |e: &Exchange| {
        offset_ns as i128 + (e.t1 as i128 - t0 as i128) * skew_ppb as i128 / 1_000_000_000
    };
    let error_ns = samples
        .iter()
        .map(|e| (line(e) - e.theta2() as i128 / 2).abs() + e.delta() as i128 / 2)
        .max()
        .unwrap_or(0)
        .min(i64::MAX as i128) as i64;
    ClockSegment {
        from_ns: t0,
        offset_ns,
        skew_ppb,
        error_ns,
        samples: samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exchange at client time `t` with the RS clock at `offset(t)` and one-way delays.
    fn ex(t: i64, offset: i64, d_out: i64, server: i64, d_back: i64) -> Exchange {
        let t2_true = t + d_out;
        let t3_true = t2_true + server;
        Exchange {
            t1: t,
            t2: t2_true + offset,
            t3: t3_true + offset,
            t4: t3_true + d_back,
        }
    }

    #[test]
    fn test_constant_offset_symmetric_delays_is_exact() {
        let v: Vec<_> = (0..20)
            .map(|i| ex(i * 500_000_000, 7_000_000, 200_000, 50_000, 200_000))
            .collect();
        let m = estimate(&v);
        assert_eq!(m.segments.len(), 1);
        assert_eq!(m.offset_at(3_000_000_000), 7_000_000);
        assert_eq!(m.segments[0].error_ns, 200_000);
        assert!(m.steps.is_empty());
    }

    #[test]
    fn test_asymmetric_delay_error_within_bound_and_min_delta_wins() {
        // One window, two samples: the one with the small delta must be chosen.
        let v = vec![
            ex(0, -3_000_000, 900_000, 10_000, 100_000),
            ex(10_000, -3_000_000, 100_000, 10_000, 120_000),
        ];
        let m = estimate(&v);
        let err = (m.offset_at(0) + 3_000_000).abs();
        assert!(
            err <= m.segments[0].error_ns,
            "err {err} bound {}",
            m.segments[0].error_ns
        );
        assert_eq!(m.segments[0].error_ns, 110_000);
    }

    #[test]
    fn test_skew_is_fitted() {
        // 50 ppm = 50_000 ppb: 50 µs of offset per second.
        let v: Vec<_> = (0..60)
            .map(|i| {
                let t = 1_700_000_000_000_000_000 + i * 1_000_000_000;
                let off = 2_000_000 + i * 50_000;
                ex(t, off, 150_000, 30_000, 150_000)
            })
            .collect();
        let m = estimate(&v);
        assert_eq!(m.segments.len(), 1, "{m:?}");
        assert!((m.segments[0].skew_ppb - 50_000).abs() < 100, "{m:?}");
        let t = 1_700_000_000_000_000_000 + 30 * 1_000_000_000;
        assert!((m.offset_at(t) - (2_000_000 + 30 * 50_000)).abs() < 1000);
        // Round trip through both clocks.
        assert!((m.to_client(m.to_rs(t)) - t).abs() <= 1);
    }

    #[test]
    fn test_step_is_detected_and_split() {
        let v: Vec<_> = (0..40)
            .map(|i| {
                let t = i * 1_000_000_000;
                let off = if i < 20 { 1_000_000 } else { 251_000_000 };
                ex(t, off, 100_000, 10_000, 100_000)
            })
            .collect();
        let m = estimate(&v);
        assert_eq!(m.steps.len(), 1, "{m:?}");
        assert_eq!(m.steps[0], (20_000_000_000, 250_000_000));
        assert_eq!(m.offset_at(5_000_000_000), 1_000_000);
        assert_eq!(m.offset_at(25_000_000_000), 251_000_000);
    }

    #[test]
    fn test_step_with_skew_and_a_short_piece_after_it_keeps_the_skew() {
        // 40 s at -50 ppm, then a +30 ms step and only 4 s of samples.
        let v: Vec<_> = (0..44)
            .map(|i| {
                let t = i * 1_000_000_000;
                let off = -1_250_000_000 - i * 50_000 + if i >= 40 { 30_000_000 } else { 0 };
                ex(t, off, 200_000, 10_000, 200_000)
            })
            .collect();
        let m = estimate(&v);
        assert_eq!(m.segments.len(), 2, "{m:?}");
        assert!((m.segments[1].skew_ppb + 50_000).abs() < 200, "{m:?}");
        let t = 42_500_000_000;
        let truth = -1_250_000_000 - 42_500 * 50 + 30_000_000;
        assert!(
            (m.offset_at(t) - truth).abs() < 10_000,
            "{} vs {truth}",
            m.offset_at(t)
        );
    }

    #[test]
    fn test_hostile_times_far_apart_give_a_clamped_skew_not_a_panic() {
        // Exchanges spread over ±2^62 ns with offsets as large: the regression's squares
        // and sums pass i128 (fuzzing: testdata/fuzz-regressions/clock-skew-sums-past-i128).
        let big = 1i64 << 62;
        let ex: Vec<Exchange> = (0..40)
            .map(|i| {
                let t1 = -big + i * (big / 20);
                let t2 = if i % 2 == 0 { big } else { -big };
                Exchange {
                    t1,
                    t2,
                    t3: t2,
                    t4: t1,
                }
            })
            .collect();
        let m = estimate(&ex);
        for s in &m.segments {
            assert!(s.skew_ppb.abs() <= MAX_SKEW_PPB, "{s:?}");
        }
    }

    #[test]
    fn test_no_exchanges_is_identity() {
        let m = estimate(&[]);
        assert_eq!(m.offset_at(123), 0);
        assert_eq!(m.to_client(5), 5);
    }
}
