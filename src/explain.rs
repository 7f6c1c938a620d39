//! Explain: what a code in the report means, and for a verdict what to do about it.
//!
//! Every vocabulary of the report in one lookup: verdicts, packet flags, SYN gap classes,
//! Zeek connection states, skip reasons.

use crate::flags::Flag;
use crate::flows::{ConnState, GapClass};
use crate::skip::SkipReason;
use crate::verdict::Cause;
use std::fmt::Write;

/// The explanation of `code`, or `None` if no vocabulary has it.
pub fn explain(code: &str) -> Option<String> {
    let mut out = String::new();
    if let Some(c) = Cause::from_code(code) {
        let _ = writeln!(out, "{code} (verdict): {}", c.text());
        for r in c.remedies() {
            let _ = writeln!(
                out,
                "  fix: {}\n       side effect: {}",
                r.fix, r.side_effect
            );
        }
        for k in c.checks() {
            let _ = writeln!(
                out,
                "  confirm on the {}: {}\n       look for: {}",
                k.on, k.command, k.look_for
            );
        }
    }
    if let Some(f) = Flag::from_code(code) {
        let origin = if f.is_wireshark() {
            format!("Wireshark's tcp.analysis.{code}")
        } else {
            "pcapdiag's own".to_string()
        };
        let _ = writeln!(out, "{code} (packet flag, {origin}): {}", f.text());
    }
    if let Some(g) = GapClass::from_code(code) {
        let _ = writeln!(out, "{code} (SYN retry gap): {}", g.text());
    }
    if let Some(s) = ConnState::from_code(code) {
        let _ = writeln!(out, "{code} (Zeek conn_state): {}", s.text());
    }
    if let Some(r) = SkipReason::from_code(code) {
        let _ = writeln!(out, "{code} (skipped frames): {}", r.text());
    }
    (!out.is_empty()).then_some(out)
}

/// Every code `explain` knows, for the error message of an unknown one.
pub fn codes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Cause::ALL.iter().map(|c| c.code()).collect();
    v.extend(Flag::ALL.iter().map(|f| f.code()));
    v.extend(GapClass::ALL.iter().map(|g| g.code()));
    v.extend(ConnState::ALL.iter().map(|s| s.code()));
    v.extend(SkipReason::ALL.iter().map(|r| r.code()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_every_code_is_explained() {
        for code in codes() {
            assert!(explain(code).is_some(), "{code}");
        }
        assert!(explain("no_such_code").is_none());
        assert!(
            explain("rs_timewait_collision")
                .unwrap()
                .contains("random-fully")
        );
        // Every cause that names a fault says how to confirm it on a host.
        for c in Cause::ALL {
            let named = !matches!(
                c,
                Cause::Ok | Cause::Unmatched | Cause::Unexplained | Cause::CaptureEnded
            );
            assert_eq!(!c.checks().is_empty(), named, "{}", c.code());
            if named {
                assert!(explain(c.code()).unwrap().contains("confirm on the"));
            }
        }
    }
}
