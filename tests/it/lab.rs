//! The real binary on the real captures of the namespace lab (`lab/lab.sh`, described in
//! `testdata/lab/README.md`): what the kernel did, measured independently by the lab's
//! client, and what tshark 4.0 flagged (the `*.tshark.tsv` golden files).

use crate::util::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

fn lab(name: &str) -> std::path::PathBuf {
    testdata(&format!("lab/{name}"))
}

/// Every attempt the lab's client measured (connect() time, by local port and start time)
/// is in the client capture with the same outcome, and pcapdiag's setup latency (first SYN
/// → SYN-ACK on the wire) is within 2 ms of the client's own measurement.
#[test]
fn test_lab_setup_latency_matches_client_measurement() {
    for scenario in LAB_PAIRS {
        let rep = report(&lab(&format!("{scenario}.client.pcap")));
        let truth = read_tsv(&lab(&format!("{scenario}.truth.tsv")));
        assert!(!truth.is_empty(), "{scenario}: no truth rows");
        for row in &truth {
            let port: u64 = row["local_port"].parse().unwrap();
            let start: i64 = row["start_unix_ns"].parse().unwrap();
            let connect: i64 = row["connect_ns"].parse().unwrap();
            // The attempt whose first SYN is closest after the client started connect().
            let attempt = attempts_on_port(&rep, port)
                .into_iter()
                .filter(|a| a["syns"][0]["ts"].as_i64().unwrap() >= start - 1_000_000)
                .min_by_key(|a| a["syns"][0]["ts"].as_i64().unwrap() - start)
                .unwrap_or_else(|| panic!("{scenario}: no attempt for truth row {row:?}"));
            let outcome = attempt["outcome"].as_str().unwrap();
            match row["outcome"].as_str() {
                "ok" | "reset" => {
                    // "reset": connected, then the server aborted the connection.
                    assert_eq!(outcome, "established", "{scenario} {row:?}");
                    let setup = attempt["setup_ns"].as_i64().unwrap();
                    assert!(
                        (setup - connect).abs() < 2_000_000,
                        "{scenario} port {port}: pcapdiag {setup} ns, client measured {connect} ns"
                    );
                }
                "refused" => assert_eq!(outcome, "refused", "{scenario} {row:?}"),
                other => panic!("{scenario}: unexpected truth outcome {other}"),
            }
        }
    }
}

fn tshark_flags(golden: &Path) -> BTreeMap<u64, HashSet<String>> {
    read_tsv(golden)
        .into_iter()
        .filter(|r| !r["stream"].is_empty())
        .map(|r| {
            let flags = r["flags"]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            (r["frame"].parse().unwrap(), flags)
        })
        .collect()
}

/// For every capture with a tshark golden file and every flag both tools define, the
/// frames pcapdiag flags and the frames tshark flags are the same set (≥ 99.9 % overlap,
/// intersection over union), and every TCP frame tshark saw was analysed.
#[test]
fn test_tshark_agreement_per_flag() {
    // The public corpora's goldens are parity.rs's: their captures are not in testdata/.
    let corpus = testdata("golden/corpus");
    let goldens: Vec<_> = captures_with(".tshark.tsv")
        .into_iter()
        .filter(|g| !g.starts_with(&corpus))
        .collect();
    assert!(goldens.len() >= 10, "golden files missing: {goldens:?}");
    let mut per_flag: BTreeMap<String, (u64, u64)> = BTreeMap::new(); // (both, either)
    for golden in goldens {
        let cap = Path::new(
            golden
                .to_str()
                .unwrap()
                .strip_suffix(".tshark.tsv")
                .unwrap(),
        );
        let rep = report(cap);
        let ours = flags_by_frame(&rep);
        let theirs = tshark_flags(&golden);
        assert_eq!(
            rep["frames"]["analysed"].as_u64().unwrap(),
            theirs.len() as u64,
            "{}: TCP frames analysed vs seen by tshark",
            cap.display()
        );
        for (frame, ws) in &theirs {
            let mine: HashSet<String> = ours
                .get(frame)
                .into_iter()
                .flatten()
                .filter(|f| pcapdiag::flags::Flag::from_code(f).is_some_and(|f| f.is_wireshark()))
                .cloned()
                .collect();
            for flag in ws.union(&mine) {
                let e = per_flag.entry(flag.clone()).or_default();
                e.1 += 1;
                if ws.contains(flag) && mine.contains(flag) {
                    e.0 += 1;
                }
            }
        }
    }
    assert!(per_flag.len() >= 4, "too few flags exercised: {per_flag:?}");
    for (flag, (both, either)) in per_flag {
        let agreement = both as f64 / either as f64;
        assert!(
            agreement >= 0.999,
            "{flag}: {both} of {either} frames agree ({agreement:.4})"
        );
    }
}

/// Every frame is accounted for: analysed + skipped = read, the reasons add up, and the
/// connections and attempts reported are the ones reconstructed.
#[test]
fn test_every_frame_accounted_for() {
    let caps: Vec<_> = captures_with(".pcap")
        .into_iter()
        .chain(captures_with(".pcapng"))
        .collect();
    assert!(caps.len() >= 10, "captures missing: {caps:?}");
    for cap in caps {
        let rep = report(&cap);
        let f = &rep["frames"];
        let (read, analysed, skipped) = (
            f["read"].as_u64().unwrap(),
            f["analysed"].as_u64().unwrap(),
            f["skipped"].as_u64().unwrap(),
        );
        assert_eq!(analysed + skipped, read, "{}", cap.display());
        let by_reason: u64 = rep["skipped_by_reason"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["frames"].as_u64().unwrap())
            .sum();
        assert_eq!(by_reason, skipped, "{}", cap.display());
        let states: u64 = rep["connection_states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_u64().unwrap())
            .sum();
        assert_eq!(
            states,
            rep["connections"].as_array().unwrap().len() as u64,
            "{}",
            cap.display()
        );
        assert_eq!(
            rep["setup"]["attempts"].as_u64().unwrap(),
            rep["attempts"].as_array().unwrap().len() as u64
        );
    }
}

fn count_flag(rep: &Value, flag: &str) -> usize {
    flags_by_frame(rep)
        .values()
        .filter(|v| v.iter().any(|f| f == flag))
        .count()
}

/// The SNATed SYN hit a TIME_WAIT socket on the RS: every stale ACK is answered by the
/// client's RST (seq = the stale ack number) and the same ISN is sent again within
/// milliseconds; a 1 s wait appears only when the re-sent SYN collided again.
#[test]
fn test_rs_timewait_stale_ack_rst_and_quick_retry() {
    let rep = report(&lab("rs_timewait.client.pcap"));
    let stale = count_flag(&rep, "stale_ack");
    assert!(stale >= 3, "stale ACKs: {stale}");
    assert_eq!(count_flag(&rep, "rst_stale_reply"), stale);
    for a in rep["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["stale_acks"].as_u64().unwrap() > 0)
    {
        let syns = a["syns"].as_array().unwrap();
        assert!(syns.len() >= 2, "{a}");
        assert_eq!(syns[1]["gap_class"], "after_reset", "{a}");
        assert!(syns[1]["gap_ns"].as_i64().unwrap() < 50_000_000, "{a}");
        assert!(a["stale_rst"].is_object(), "{a}");
        // A second stale ACK (the retry mapped onto another stale tuple) is what costs 1 s.
        if a["stale_acks"].as_u64().unwrap() >= 2 {
            assert_eq!(syns.last().unwrap()["gap_class"], "initial_rto_1s", "{a}");
            assert!(a["setup_ns"].as_i64().unwrap() > 1_000_000_000, "{a}");
        }
        // The whole story is one attempt on one incarnation: the connection closed normally.
        let conn = &rep["connections"][a["conn"].as_u64().unwrap() as usize];
        assert_eq!(conn["state"], "SF", "{a}");
    }
    // The same traffic seen on the RS side: the RS sent the stale ACKs.
    let rs = report(&lab("rs_timewait.rs.pcap"));
    assert_eq!(count_flag(&rs, "stale_ack"), stale);
}

/// SYNs dropped on the NAT box: the client retries with the same ISN after ≈ 1 s, then
/// linearly (tcp_syn_linear_timeouts) or with back-off, and the RS never sees the lost SYNs.
#[test]
fn test_syn_drop_retries_classed_and_missing_on_rs() {
    let client = report(&lab("syn_drop.client.pcap"));
    let rs = report(&lab("syn_drop.rs.pcap"));
    let retried: Vec<&Value> = client["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["syns"].as_array().unwrap().len() > 1)
        .collect();
    assert!(!retried.is_empty());
    for a in &retried {
        let syns = a["syns"].as_array().unwrap();
        assert_eq!(syns[1]["gap_class"], "initial_rto_1s", "{a}");
        for s in &syns[2..] {
            let class = s["gap_class"].as_str().unwrap();
            assert!(class == "linear" || class == "backoff", "{a}");
        }
    }
    let client_syns: usize = client["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["syns"].as_array().unwrap().len())
        .sum();
    let rs_syns: usize = rs["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["syns"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        client_syns - rs_syns,
        retried
            .iter()
            .map(|a| a["syns"].as_array().unwrap().len() - 1)
            .sum::<usize>()
    );
}

/// The RS refused some attempts (RST,ACK to the SYN) and aborted some established ones.
#[test]
fn test_rs_reset_refused_and_abort_classes() {
    let rep = report(&lab("rs_reset.client.pcap"));
    let truth = read_tsv(&lab("rs_reset.truth.tsv"));
    let refused = truth.iter().filter(|r| r["outcome"] == "refused").count();
    let reset = truth.iter().filter(|r| r["outcome"] == "reset").count();
    assert!(refused > 0 && reset > 0);
    assert_eq!(count_flag(&rep, "rst_refused"), refused);
    assert_eq!(count_flag(&rep, "rst_abort"), reset);
    let states = &rep["connection_states"];
    let n = |code: &str| {
        states
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["code"] == code)
            .map_or(0, |s| s["count"].as_u64().unwrap())
    };
    assert_eq!(n("REJ") as usize, refused);
    assert_eq!(n("RSTR") as usize, reset);
}

/// The client reused its own 4-tuple: each reuse is a new incarnation that names its
/// predecessor and how long ago it closed (Wireshark's reuse flag has no notion of time).
#[test]
fn test_client_port_reuse_names_predecessor_and_age() {
    let rep = report(&lab("client_port_reuse.client.pcap"));
    let conns = rep["connections"].as_array().unwrap();
    let reused: Vec<&Value> = conns
        .iter()
        .filter(|c| c["predecessor"].is_object())
        .collect();
    assert!(reused.len() >= 5, "{}", reused.len());
    assert_eq!(count_flag(&rep, "reused_ports"), reused.len());
    for c in reused {
        let p = &c["predecessor"];
        let prev = &conns[p["conn"].as_u64().unwrap() as usize];
        assert_eq!(prev["client"], c["client"]);
        assert_eq!(prev["server"], c["server"]);
        let since_close = p["since_close_ns"].as_i64().unwrap();
        let expect = c["first"]["ts"].as_i64().unwrap() - prev["closed"]["ts"].as_i64().unwrap();
        assert_eq!(since_close, expect);
        assert!(since_close > 0);
    }
}

/// `tcpdump -i any` (Linux cooked v2) inside the NAT box, the same traffic as pcap,
/// nanosecond pcap and pcapng: every format decodes every TCP frame and finds the same
/// attempts at the same times.
#[test]
fn test_formats_and_sll2_agree() {
    let base = report(&lab("rs_timewait.client.pcap"));
    for other in ["rs_timewait.client.nano.pcap", "rs_timewait.client.pcapng"] {
        let rep = report(&lab(other));
        assert_eq!(rep["frames"], base["frames"], "{other}");
        let times = |r: &Value| -> Vec<i64> {
            r["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["syns"][0]["ts"].as_i64().unwrap() / 1000)
                .collect()
        };
        assert_eq!(times(&rep), times(&base), "{other}");
    }
    let any = report(&lab("rs_timewait.nat-any.pcap"));
    // Each packet is seen twice in the NAT box: before and after NAT.
    assert_eq!(
        any["frames"]["analysed"],
        2 * base["frames"]["analysed"].as_u64().unwrap()
    );
    // Only ARP is not analysed.
    for r in any["skipped_by_reason"].as_array().unwrap() {
        assert_eq!(r["reason"], "not_ip", "{r}");
    }
}

/// What the NAT was seen to do, learned from the captures: the lab's SNAT re-used its two
/// ports toward the real server within a second of their last packet, far inside
/// conntrack's 120 s TIME_WAIT; the pairing reports the shortest re-use, which is the
/// shortest gap between two connections on one real-server-side tuple.
#[test]
fn test_nat_tuple_reuse_is_learned_from_the_real_server_side() {
    let (c, r) = lab_pair("rs_timewait");
    let out = pcapdiag()
        .args(["analyze", "--json", "-q"])
        .arg(&c)
        .arg(&r)
        .succeed();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nat = &v["pairs"][0]["pairing"]["nat"];
    let learned = nat["tuple_reused_after_ns"].as_i64().expect("re-use seen");
    let rs = &v["captures"][1];
    let shortest = rs["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["predecessor"]["since_last_packet_ns"].as_i64())
        .min()
        .unwrap();
    assert_eq!(learned, shortest);
    assert!(learned < 2_000_000_000, "{learned}");
    // Ports all rewritten: the SNAT does not keep client ports here.
    assert_eq!(nat["ports_kept"], 0);
}

/// The verdicts that name what the lab did to a request (the `cause` column of the truth,
/// attributed from the NAT's own records: conntrack events and statistics, nft logs).
fn expected_verdicts(cause: &str) -> &'static [&'static str] {
    match cause {
        "none" => &["ok"],
        "snat_port_exhaustion" => &["snat_port_exhaustion"],
        "conntrack_insert_race" => &["conntrack_insert_race"],
        // A rule dropped the SYN for a reason no capture shows: lost before the RS (a
        // pair), or seen entering the NAT box and never leaving it (with the node's).
        "nft_random_syn_drop" => &["syn_lost_before_rs", "dropped_in_nat"],
        "unanswered_at_capture_end" => &["capture_ended"],
        other => panic!("truth cause {other:?} has no expected verdict"),
    }
}

/// A lab scenario's `<scenario>.records.txt`: the NAT box's own counts, by name.
fn records(scenario: &str) -> BTreeMap<String, i64> {
    let path = lab(&format!("{scenario}.records.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

/// On the lab's lost-SYN scenarios, every request gets the verdict of what the kernel did
/// to it, given as a pair, as the NAT box's `tcpdump -i any` alone and as client + node +
/// real server: exhaustion (every SNAT port held), an insert race with ports free, a
/// random SYN drop under heavy client port reuse (reuse not blamed: it did not raise the
/// loss rate), and SYNs unanswered when the captures stopped. Each request is exactly one
/// judged attempt, the slow ones are as many as the client's timers counted, and no clean
/// request gets a cause. Joined as lab/check_truth.py joins: client address and port,
/// first SYN within 1 ms before to 500 ms after connect().
#[test]
fn test_lost_syn_causes_match_the_kernels_records() {
    for scenario in [
        "snat_exhaustion",
        "insert_race",
        "drop_under_reuse",
        "capture_cut",
    ] {
        let truth = read_tsv(&lab(&format!("{scenario}.truth.tsv")));
        assert!(truth.len() >= 20, "{scenario}: {} truth rows", truth.len());
        let files = |names: &[&str]| -> Vec<std::path::PathBuf> {
            names
                .iter()
                .map(|n| lab(&format!("{scenario}.{n}.pcap")))
                .collect()
        };
        let counts = records(scenario);
        assert_eq!(counts["requests"], truth.len() as i64, "{scenario}");
        for (how, inputs) in [
            ("pair", files(&["client", "rs"])),
            ("node", files(&["nat-any"])),
            ("set", files(&["client", "nat-any", "rs"])),
        ] {
            let out = pcapdiag()
                .args(["analyze", "--json", "-q"])
                .args(&inputs)
                .succeed();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let attempts: Vec<&Value> = v["pairs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["verdicts"]["attempts"].as_array().unwrap())
                .collect();
            assert_eq!(
                attempts.len(),
                truth.len(),
                "{scenario} ({how}): one per request"
            );
            let slow = attempts.iter().filter(|a| a["verdict"] != "ok").count();
            assert_eq!(
                slow as i64, counts["requests_slow_or_failed_by_client_timer"],
                "{scenario} ({how})"
            );
            // The node's SYNs on each leg are the NAT's nft counters: every SYN that came
            // in from the client, every SYN sent on to the real server (up to when the
            // captures stopped: the counters ran on).
            if how == "node" {
                let p = &v["vantage_points"][0];
                let seen = |k: &str| p[k].as_i64().unwrap();
                let (fwd, at_rs) = (
                    counts["nft_counter_syns_forwarded"],
                    counts["nft_counter_syns_at_rs"],
                );
                if counts.contains_key("captures_stopped_unix_ns") {
                    assert!(seen("pre_nat_syns") <= fwd, "{scenario}: {p}");
                    assert!(seen("post_nat_syns") <= at_rs, "{scenario}: {p}");
                    assert!(
                        seen("post_nat_syns") < seen("pre_nat_syns"),
                        "{scenario}: {p}"
                    );
                } else {
                    assert_eq!(seen("pre_nat_syns"), fwd, "{scenario}: {p}");
                    assert_eq!(seen("post_nat_syns"), at_rs, "{scenario}: {p}");
                }
            }
            // A cause the captures did rule out is never offered as an alternative: with
            // the SNAT ports counted and free, exhaustion.
            for a in &attempts {
                let open = a["not_ruled_out"].as_array().cloned().unwrap_or_default();
                if a["snat_ports_in_use"].is_array() && a["verdict"] != "snat_port_exhaustion" {
                    assert!(
                        !open.iter().any(|c| c == "snat_port_exhaustion"),
                        "{scenario} ({how}): {}",
                        a["explanation"]
                    );
                }
            }
            let mut causes = BTreeMap::<String, usize>::new();
            for row in &truth {
                let port: u64 = row["local_port"].parse().unwrap();
                let start: i64 = row["start_unix_ns"].parse().unwrap();
                let ip = row["local_ip"].as_str();
                let at = attempts
                    .iter()
                    .filter(|a| a["client"]["port"] == port && a["client"]["ip"] == ip)
                    .filter(|a| {
                        let t = a["first_syn_ts"].as_i64().unwrap();
                        (start - 1_000_000..=start + 500_000_000).contains(&t)
                    })
                    .min_by_key(|a| a["first_syn_ts"].as_i64())
                    .unwrap_or_else(|| panic!("{scenario} {how}: no attempt for {row:?}"));
                let cause = row["cause"].as_str();
                let verdict = at["verdict"].as_str().unwrap();
                assert!(
                    expected_verdicts(cause).contains(&verdict),
                    "{scenario} ({how}): request {} on port {port}: {cause} called {verdict}: {}",
                    row["attempt"],
                    at["explanation"]
                );
                *causes.entry(cause.to_string()).or_default() += 1;
            }
            // Each scenario has its cause, and clean requests beside it.
            assert!(causes.len() >= 2, "{scenario}: {causes:?}");
        }
    }
}
