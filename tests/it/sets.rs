//! Capture sets on the lab's real captures: the NAT box's own `tcpdump -i any` (both legs
//! of the NAT in one file), alone and with the client and real-server captures, in any
//! order. Checked against the lab's client, which timed every request itself
//! (`<scenario>.truth.tsv`) and against what the lab did (`testdata/lab/README.md`).

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The lab scenarios with a node capture, the cause the lab made of their slow setups,
/// and their real-server captures.
const NODE_SCENARIOS: [(&str, &str, &[&str]); 3] = [
    ("rs_timewait", "rs_timewait_collision", &["rs"]),
    ("syn_drop", "dropped_in_nat", &["rs"]),
    ("two_backends", "dropped_in_nat", &["rs", "rs2"]),
];

fn file(scenario: &str, side: &str) -> PathBuf {
    testdata(&format!("lab/{scenario}.{side}.pcap"))
}

fn analyze(files: &[PathBuf]) -> Value {
    let out = pcapdiag()
        .args(["analyze", "--json", "-q"])
        .args(files)
        .succeed();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every verdict of the report (every pair), by the client's local port.
fn verdicts_by_port(v: &Value) -> BTreeMap<u64, &Value> {
    let mut by_port = BTreeMap::new();
    for p in v["pairs"].as_array().unwrap() {
        for a in p["verdicts"]["attempts"].as_array().unwrap() {
            let port = a["client"]["port"].as_u64().unwrap();
            assert!(
                by_port.insert(port, a).is_none(),
                "port {port} judged twice"
            );
        }
    }
    by_port
}

/// The truth rows by local port: (connect time, outcome).
fn truth(scenario: &str) -> BTreeMap<u64, i64> {
    read_tsv(&testdata(&format!("lab/{scenario}.truth.tsv")))
        .iter()
        .map(|r| {
            (
                r["local_port"].parse().unwrap(),
                r["connect_ns"].parse().unwrap(),
            )
        })
        .collect()
}

fn vantages(v: &Value) -> Vec<String> {
    v["vantage_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["vantage"].as_str().unwrap().to_string())
        .collect()
}

/// The NAT box's capture alone: each request the client made is exactly one judged attempt
/// (not one per leg), the slow ones are exactly those the client timed as slow, with the
/// cause the lab caused, judged from both legs of the NAT.
#[test]
fn test_node_capture_alone_one_verdict_per_request() {
    for (scenario, cause, _) in NODE_SCENARIOS {
        let v = analyze(&[file(scenario, "nat-any")]);
        assert_eq!(vantages(&v), ["node"], "{scenario}");
        // tcpdump -i any's interfaces (testdata/lab/README.md): ifindex 2 is the client's
        // side of the NAT box, the others lead to the real servers.
        let point = &v["vantage_points"][0];
        for i in point["interfaces"].as_array().unwrap() {
            let (pre, post) = (
                i["pre_nat_syns"].as_u64().unwrap(),
                i["post_nat_syns"].as_u64().unwrap(),
            );
            if i["iface"] == 2 {
                assert_eq!(
                    (pre, post),
                    (point["pre_nat_syns"].as_u64().unwrap(), 0),
                    "{scenario}"
                );
            } else {
                assert!(pre == 0 && post > 0, "{scenario}: {i}");
            }
        }
        let pairs = v["pairs"].as_array().unwrap();
        assert_eq!(pairs.len(), 1, "{scenario}");
        assert_eq!(
            pairs[0]["client_capture"], pairs[0]["rs_capture"],
            "{scenario}"
        );
        assert_eq!(pairs[0]["verdicts"]["sides"], "both", "{scenario}");
        let truth = truth(scenario);
        let ours = verdicts_by_port(&v);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            truth.keys().collect::<Vec<_>>(),
            "{scenario}: one judged attempt per request"
        );
        for (port, connect) in &truth {
            let a = ours[port];
            let slow = *connect >= 200_000_000;
            let want = if slow { cause } else { "ok" };
            assert_eq!(a["verdict"], want, "{scenario} port {port}: {a}");
            // The setup the node saw on the client's leg is the client's own timer, less
            // what the timer adds: the client-to-node hop and the client process being
            // scheduled (up to 3.5 ms in two_backends, recorded on a busy machine).
            let setup = a["setup_ns"].as_i64().unwrap();
            assert!(
                setup <= connect + 1_000_000 && connect - setup < 5_000_000,
                "{scenario} {port}: {setup} vs {connect}"
            );
        }
    }
}

/// syn_drop: each lost SYN was seen entering the NAT box and never leaving it. The path of
/// every try says so, and the SYN counts per leg are the client's tries and the SYNs the
/// real server received.
#[test]
fn test_syns_dropped_inside_the_nat_are_named_by_their_path() {
    let v = analyze(&[file("syn_drop", "nat-any")]);
    let client = report(&file("syn_drop", "client"));
    let rs = report(&file("syn_drop", "rs"));
    let syns = |r: &Value| -> u64 {
        r["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["syns"].as_array().unwrap().len() as u64)
            .sum()
    };
    let point = &v["vantage_points"][0];
    assert_eq!(point["pre_nat_syns"].as_u64().unwrap(), syns(&client));
    assert_eq!(point["post_nat_syns"].as_u64().unwrap(), syns(&rs));
    let mut dropped = 0;
    for a in verdicts_by_port(&v).values() {
        if a["verdict"] != "dropped_in_nat" {
            continue;
        }
        let path = a["path"].as_array().unwrap();
        assert_eq!(path.len() as u64, a["tries"].as_u64().unwrap(), "{a}");
        assert_eq!(path[0], serde_json::json!(["nat_in"]), "{a}");
        assert_eq!(
            path.last().unwrap(),
            &serde_json::json!(["nat_in", "nat_out"]),
            "the try that got through: {a}"
        );
        dropped += path.len() as u64 - 1;
    }
    assert_eq!(dropped, syns(&client) - syns(&rs));
}

/// Client, node and real-server captures together, in every order: the same one verdict
/// per request as the node capture alone, judged from the client capture (nearest the
/// client) against the view after the NAT that saw them all (the real server's, or with
/// two real servers the node's uplinks); the other observations are copies, and the path of
/// each try runs client → into the NAT → (out of it → real server).
#[test]
fn test_client_node_rs_in_any_order_give_the_node_verdicts() {
    for (scenario, _, rs_sides) in NODE_SCENARIOS {
        let alone = analyze(&[file(scenario, "nat-any")]);
        let want: BTreeMap<u64, String> = verdicts_by_port(&alone)
            .into_iter()
            .map(|(p, a)| (p, a["verdict"].as_str().unwrap().to_string()))
            .collect();
        let mut files = vec![file(scenario, "client"), file(scenario, "nat-any")];
        files.extend(rs_sides.iter().map(|side| file(scenario, side)));
        let n = files.len();
        let orders: Vec<Vec<usize>> = vec![
            (0..n).collect(),
            (0..n).rev().collect(),
            (1..n).chain([0]).collect(),
            [n - 1].into_iter().chain(0..n - 1).collect(),
        ];
        for order in orders {
            let set: Vec<PathBuf> = order.iter().map(|&i| files[i].clone()).collect();
            let v = analyze(&set);
            let label = format!("{scenario} {order:?}");
            let kinds: Vec<String> = vantages(&v);
            let kind_of = |name: &str| {
                let i = set.iter().position(|f| f.ends_with(name)).unwrap();
                kinds[i].clone()
            };
            assert_eq!(
                kind_of(&format!("{scenario}.client.pcap")),
                "client",
                "{label}"
            );
            assert_eq!(
                kind_of(&format!("{scenario}.nat-any.pcap")),
                "node",
                "{label}"
            );
            for side in rs_sides {
                assert_eq!(kind_of(&format!("{scenario}.{side}.pcap")), "rs", "{label}");
            }
            // One pair: against the real server's capture when it saw every attempt, else
            // against the node, whose uplinks saw them all.
            let pairs = v["pairs"].as_array().unwrap();
            assert_eq!(pairs.len(), 1, "{label}");
            assert!(
                pairs[0]["client_file"]
                    .as_str()
                    .unwrap()
                    .ends_with(".client.pcap")
            );
            let rs_view = if rs_sides.len() == 1 { "rs" } else { "nat-any" };
            let rs = pairs[0]["rs_file"].as_str().unwrap();
            assert!(rs.ends_with(&format!(".{rs_view}.pcap")), "{label}: {rs}");
            let got: BTreeMap<u64, String> = verdicts_by_port(&v)
                .into_iter()
                .map(|(p, a)| (p, a["verdict"].as_str().unwrap().to_string()))
                .collect();
            assert_eq!(got, want, "{label}");
            // One kernel clock in the lab: every capture is on the client's clock, within
            // the error bound of the path that put it there.
            for p in v["vantage_points"].as_array().unwrap() {
                let c = &p["clock"];
                assert!(
                    c["reference"].as_str().unwrap().ends_with(".client.pcap"),
                    "{c}"
                );
                let (off, err) = (
                    c["offset_ns"].as_i64().unwrap(),
                    c["error_ns"].as_i64().unwrap(),
                );
                assert!(off.abs() <= err, "{label}: {c}");
            }
            let mut paths_seen = 0;
            for a in verdicts_by_port(&v).values() {
                // A SYN dropped in the NAT: the node's frame of it is evidence, by file.
                if a["verdict"] == "dropped_in_nat" {
                    let entering =
                        a["evidence"].as_array().unwrap().iter().find(|e| {
                            e["side"] == "other" && e["what"] == "SYN entering the NAT box"
                        });
                    let e = entering.unwrap_or_else(|| panic!("{label}: {a}"));
                    let file = &v["captures"][e["capture"].as_u64().unwrap() as usize]["file"];
                    assert!(
                        file.as_str().unwrap().ends_with(".nat-any.pcap"),
                        "{label}: {e}"
                    );
                }
                for hops in a["path"].as_array().into_iter().flatten() {
                    paths_seen += 1;
                    let hops: Vec<&str> = hops
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| h.as_str().unwrap())
                        .collect();
                    assert!(hops.starts_with(&["client", "nat_in"]), "{label}: {a}");
                    assert!(
                        hops.len() == 2 || hops == ["client", "nat_in", "nat_out", "rs"],
                        "{label}: {a}"
                    );
                }
            }
            // Every slow attempt carries its path: the loop above is not vacuous.
            assert!(paths_seen > 0, "{label}: no path checked");
        }
    }
}

/// Every lab pair given as a set, the real-server capture first: the same pair, with the
/// same verdicts, as `--pair CLIENT RS`.
#[test]
fn test_client_and_rs_in_either_order_are_todays_pair() {
    for scenario in LAB_PAIRS {
        let (c, r) = lab_pair(scenario);
        let given = pcapdiag()
            .args(["analyze", "--json", "-q", "--pair"])
            .args([&c, &r])
            .succeed();
        let given: Value = serde_json::from_slice(&given.stdout).unwrap();
        let set = analyze(&[r.clone(), c.clone()]);
        assert_eq!(vantages(&set), ["rs", "client"], "{scenario}");
        let (a, b) = (&given["pairs"][0], &set["pairs"][0]);
        assert_eq!(a["verdicts"], b["verdicts"], "{scenario}");
        assert_eq!(a["pairing"]["nat"], b["pairing"]["nat"], "{scenario}");
        assert_eq!(a["name"], b["name"], "{scenario}");
    }
}

/// Two real servers behind the VIP, each captured on its own host: the client's attempts
/// are split between the two pairs by where their SYN was answered, each attempt judged
/// once, and each pair's real servers are the one its capture holds. Without the node
/// capture, the SYNs the NAT box dropped are lost before the real server, for no reason
/// the captures show; they are exactly the slow connects the lab's client timed.
#[test]
fn test_backends_on_two_hosts_split_into_a_pair_each() {
    let files = [
        file("two_backends", "rs2"),
        file("two_backends", "client"),
        file("two_backends", "rs"),
    ];
    let v = analyze(&files);
    assert_eq!(vantages(&v), ["rs", "client", "rs"]);
    let truth = truth("two_backends");
    let ours = verdicts_by_port(&v);
    assert_eq!(ours.len(), truth.len(), "one verdict per request");
    for p in v["pairs"].as_array().unwrap() {
        let rs_capture = &v["captures"][p["rs_capture"].as_u64().unwrap() as usize];
        let servers: std::collections::BTreeSet<String> = rs_capture["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["server"]["ip"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(servers.len(), 1, "{servers:?}");
        for a in p["verdicts"]["attempts"].as_array().unwrap() {
            for t in a["rs_tuples"].as_array().unwrap() {
                assert!(servers.contains(t[1]["ip"].as_str().unwrap()), "{a}");
            }
        }
    }
    for (port, connect) in &truth {
        let want = if *connect >= 200_000_000 {
            "syn_lost_before_rs"
        } else {
            "ok"
        };
        assert_eq!(ours[port]["verdict"], want, "port {port}");
    }
}

/// The client side rotated by `tcpdump -G 2` into seven files (one of them empty), given as
/// their directory: one capture read as one stream, so an attempt straddling two files is
/// one attempt, with exactly the verdicts, evidence frames and frame counts of the same
/// packets captured into one file.
#[test]
fn test_rotated_files_are_one_capture() {
    let rotated = testdata("lab/two_backends.client-rotated");
    let rs = [file("two_backends", "rs"), file("two_backends", "rs2")];
    let one = analyze(&[file("two_backends", "client"), rs[0].clone(), rs[1].clone()]);
    let many = analyze(&[rs[1].clone(), rotated, rs[0].clone()]);
    let client = |v: &Value| {
        v["captures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["file"].as_str().unwrap().contains("client"))
            .unwrap()
            .clone()
    };
    let (c1, cn) = (client(&one), client(&many));
    let parts = cn["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 7);
    let part_frames: u64 = parts.iter().map(|p| p["frames"].as_u64().unwrap()).sum();
    assert_eq!(part_frames, cn["frames"]["read"].as_u64().unwrap());
    assert_eq!(cn["frames"], c1["frames"]);
    // The two tcpdumps stamped each packet on their own (a few µs apart): compare what
    // does not depend on the time.
    let shape = |c: &Value| -> Vec<String> {
        c["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let frames: Vec<u64> = a["syns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["frame"].as_u64().unwrap())
                    .collect();
                format!(
                    "{} {} {frames:?} {} {}",
                    a["client"], a["isn"], a["synack"]["frame"], a["outcome"]
                )
            })
            .collect()
    };
    assert_eq!(shape(&cn), shape(&c1));
    let part_of = |frame: u64| {
        parts
            .iter()
            .rposition(|p| p["first_frame"].as_u64().unwrap() <= frame)
            .unwrap()
    };
    let straddling = cn["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            let syns = a["syns"].as_array().unwrap();
            let first = syns[0]["frame"].as_u64().unwrap();
            let last = syns.last().unwrap()["frame"].as_u64().unwrap();
            part_of(first) != part_of(last)
        })
        .count();
    assert!(straddling > 0, "no attempt straddles two files");
    for p in parts.windows(2) {
        assert_eq!(
            p[1]["first_frame"].as_u64().unwrap(),
            p[0]["first_frame"].as_u64().unwrap() + p[0]["frames"].as_u64().unwrap()
        );
    }
    let verdicts = |v: &Value| -> BTreeMap<u64, String> {
        verdicts_by_port(v)
            .into_iter()
            .map(|(p, a)| {
                let ev: Vec<String> = a["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| format!("{}#{} {}", e["side"], e["frame"], e["what"]))
                    .collect();
                (p, format!("{} {} {ev:?}", a["verdict"], a["tries"]))
            })
            .collect()
    };
    assert_eq!(verdicts(&many), verdicts(&one));
}

/// Two files named as one rotation whose times overlap (the same capture twice, as
/// `x.pcap0` and `x.pcap1`): read as one stream, every frame counted, and the overlap
/// reported as a negative gap.
#[test]
fn test_rotation_overlap_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = file("rs_timewait", "client");
    for n in ["x.pcap0", "x.pcap1"] {
        std::fs::copy(&src, dir.path().join(n)).unwrap();
    }
    let v = analyze(&[dir.path().to_path_buf()]);
    let cap = &v["captures"][0];
    let once = report(&src)["frames"]["read"].as_u64().unwrap();
    assert_eq!(cap["frames"]["read"].as_u64().unwrap(), 2 * once);
    let span = cap["parts"][0]["last_ts"].as_i64().unwrap()
        - cap["parts"][0]["first_ts"].as_i64().unwrap();
    assert_eq!(cap["parts"][1]["gap_ns"].as_i64().unwrap(), -span);
    let text = pcapdiag().args(["analyze", "-q"]).arg(dir.path()).succeed();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("2 rotated files"), "{text}");
    assert!(text.contains("OVERLAP"), "{text}");
}

/// Where the traffic cannot tell the sides (no NAT between two captures: the same 4-tuples
/// on both), the set reads the second as a copy of the first; `--client` and `--rs` say
/// which is which, and the two are paired as client and real-server side.
#[test]
fn test_client_and_rs_hints_settle_captures_without_nat() {
    let dir = tempfile::tempdir().unwrap();
    let (c, r) = (dir.path().join("c.pcap"), dir.path().join("r.pcap"));
    std::fs::copy(file("rs_reset", "client"), &c).unwrap();
    std::fs::copy(file("rs_reset", "client"), &r).unwrap();
    let plain = analyze(&[c.clone(), r.clone()]);
    assert_eq!(vantages(&plain), ["unknown", "unknown"]);
    assert_eq!(plain["vantage_points"][1]["copies"], 24);
    assert!(plain["pairs"][0]["rs_file"].is_null());

    let out = pcapdiag()
        .args(["analyze", "--json", "-q", "--rs"])
        .arg(&r)
        .arg("--client")
        .arg(&c)
        .succeed();
    let hinted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(vantages(&hinted), ["client", "rs"]);
    let pair = &hinted["pairs"][0];
    assert_eq!(pair["rs_file"], r.display().to_string());
    assert_eq!(pair["verdicts"]["sides"], "both");
    assert_eq!(pair["pairing"]["matched_attempts"], 24);
    // The refusals are now the real server's own RSTs.
    assert_eq!(
        verdict_counts(&pair["verdicts"]["by_verdict"])["rs_refused"],
        6
    );
}
