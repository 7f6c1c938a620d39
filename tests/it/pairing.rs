//! Pairing the two sides of the VIP and the verdicts, on the real lab captures: the
//! verdicts must be the ones the lab caused (testdata/lab/README.md), checked against the
//! client's own record of each attempt.

use crate::util::*;
use serde_json::Value;

fn diagnose(scenario: &str, extra: &[&str]) -> Value {
    let (c, r) = lab_pair(scenario);
    let out = pcapdiag()
        .args(["analyze", "--json"])
        .args(extra)
        .arg(&c)
        .arg(&r)
        .succeed();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The verdict counts of the first (only) pair.
fn pair_verdict_counts(v: &Value) -> std::collections::BTreeMap<String, u64> {
    verdict_counts(&v["pairs"][0]["verdicts"]["by_verdict"])
}

/// Every lab attempt is found on the RS side; the NAT mapping is the lab's; the clocks
/// (one kernel clock in the lab) agree within the estimate's own error bound.
#[test]
fn test_lab_pairing_nat_mapping_and_clock() {
    for scenario in LAB_PAIRS {
        let v = diagnose(scenario, &[]);
        let p = &v["pairs"][0]["pairing"];
        assert_eq!(p["matched_attempts"], p["client_attempts"], "{scenario}");
        // The lab's DNAT: 10.77.100.100:80 -> 10.77.2.2:8080, and :81 -> :8081 (rs_reset).
        let svc = p["nat"]["services"].as_array().unwrap();
        let expect = if scenario == "rs_reset" { 2 } else { 1 };
        assert_eq!(svc.len(), expect, "{scenario}: {svc:?}");
        for s in svc {
            assert_eq!(s["vip"]["ip"], "10.77.100.100");
            let backends = s["backends"].as_array().unwrap();
            assert_eq!(backends.len(), 1, "{scenario}: {s}");
            assert_eq!(backends[0][0]["ip"], "10.77.2.2");
            assert_eq!(
                backends[0][0]["port"].as_u64().unwrap(),
                s["vip"]["port"].as_u64().unwrap() + 8000
            );
        }
        assert_eq!(p["nat"]["snat"][0][0], "10.77.1.2");
        assert_eq!(p["nat"]["snat"][0][1], "10.77.2.1");
        let seg = &p["clock"]["segments"][0];
        let (offset, error) = (
            seg["offset_ns"].as_i64().unwrap(),
            seg["error_ns"].as_i64().unwrap(),
        );
        assert!(
            offset.abs() <= error.max(50_000),
            "{scenario}: offset {offset} error {error}"
        );
    }
}

/// rs_timewait: the attempts that took over the slow threshold are TIME_WAIT collisions,
/// proven on the RS side (the RS sent the stale ACK, the previous connection on the SNAT
/// tuple is named), and they are exactly the attempts the client measured as slow.
#[test]
fn test_lab_rs_timewait_verdicts() {
    let v = diagnose("rs_timewait", &[]);
    let truth = read_tsv(&testdata("lab/rs_timewait.truth.tsv"));
    let slow_ports: std::collections::BTreeSet<u64> = truth
        .iter()
        .filter(|r| r["connect_ns"].parse::<i64>().unwrap() >= 200_000_000)
        .map(|r| r["local_port"].parse().unwrap())
        .collect();
    assert!(!slow_ports.is_empty());
    let attempts = v["pairs"][0]["verdicts"]["attempts"].as_array().unwrap();
    let judged_slow: std::collections::BTreeSet<u64> = attempts
        .iter()
        .filter(|a| a["verdict"] != "ok")
        .map(|a| a["client"]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(judged_slow, slow_ports);
    for a in attempts.iter().filter(|a| a["verdict"] != "ok") {
        assert_eq!(a["verdict"], "rs_timewait_collision", "{a}");
        assert!(
            a["previous"]["side"] == "rs" && a["previous"]["age_ns"].as_i64().unwrap() > 0,
            "{a}"
        );
        assert!(a["check_failed"].is_string(), "{a}");
        assert!(
            a["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["side"] == "rs" && e["what"] == "stale ACK sent by RS")
        );
        // The retry after the stale ACK was quick (Linux >= 5.6), so the client-upgrade
        // remedy is not offered.
        assert_eq!(a["resend_after_stale"], "after_reset");
    }
    let row = v["pairs"][0]["verdicts"]["by_verdict"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["verdict"] == "rs_timewait_collision")
        .unwrap();
    assert!(
        !row["remedies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["fix"].as_str().unwrap().contains("5.6"))
    );
    // The quick collisions are signatures on ok attempts.
    let quick = attempts
        .iter()
        .filter(|a| a["verdict"] == "ok" && a["signature"] == "rs_timewait_collision")
        .count();
    let stale_total = attempts
        .iter()
        .filter(|a| {
            a["signature"] == "rs_timewait_collision" || a["verdict"] == "rs_timewait_collision"
        })
        .count();
    assert!(quick > 0 && stale_total == quick + slow_ports.len());
}

/// syn_drop: the SYNs dropped on the NAT box never reached the RS; nothing in the captures
/// explains it (the drop rule is invisible), which is what the verdict says.
#[test]
fn test_lab_syn_drop_and_rs_reset_verdicts() {
    let v = diagnose("syn_drop", &[]);
    let truth = read_tsv(&testdata("lab/syn_drop.truth.tsv"));
    let slow = truth
        .iter()
        .filter(|r| r["connect_ns"].parse::<i64>().unwrap() >= 200_000_000)
        .count() as u64;
    let counts = pair_verdict_counts(&v);
    assert_eq!(counts.get("syn_lost_before_rs"), Some(&slow), "{counts:?}");
    assert_eq!(counts.values().sum::<u64>(), truth.len() as u64);

    let v = diagnose("rs_reset", &[]);
    let truth = read_tsv(&testdata("lab/rs_reset.truth.tsv"));
    let refused = truth.iter().filter(|r| r["outcome"] == "refused").count() as u64;
    let counts = pair_verdict_counts(&v);
    assert_eq!(counts.get("rs_refused"), Some(&refused), "{counts:?}");
    assert_eq!(
        counts.get("ok"),
        Some(&(truth.len() as u64 - refused)),
        "{counts:?}"
    );

    for scenario in ["baseline", "client_port_reuse"] {
        let counts = pair_verdict_counts(&diagnose(scenario, &[]));
        assert_eq!(
            counts.keys().collect::<Vec<_>>(),
            vec!["ok"],
            "{scenario}: {counts:?}"
        );
    }
}

/// The hints narrow the pairing: a VIP that is not in the capture selects nothing.
#[test]
fn test_hints_filter() {
    let v = diagnose(
        "baseline",
        &["--vip", "10.77.100.100:80", "--rs-port", "8080"],
    );
    assert_eq!(v["pairs"][0]["pairing"]["matched_attempts"], 50);
    let v = diagnose("baseline", &["--vip", "10.1.1.1"]);
    assert_eq!(v["pairs"][0]["pairing"]["client_attempts"], 0);
    assert_eq!(
        v["pairs"][0]["verdicts"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// One capture only: the verdicts the client side supports, marked as one-sided.
#[test]
fn test_one_sided_verdicts() {
    let out = pcapdiag()
        .args(["analyze", "--json"])
        .arg(testdata("lab/rs_timewait.client.pcap"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pairs"][0]["verdicts"]["sides"], "client_only");
    assert!(v["pairs"][0]["pairing"].is_null());
    let counts = pair_verdict_counts(&v);
    assert_eq!(counts.get("rs_timewait_collision"), Some(&3), "{counts:?}");
    assert!(
        v["pairs"][0]["verdicts"]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["one_sided"] == true)
    );
}
