//! The command line as people use it: subcommands, filters, help, exit codes.

use crate::util::*;
use serde_json::Value;

fn stdout(args: &[&str]) -> (i32, String, String) {
    let out = run(args);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_explain_known_and_unknown_codes() {
    let (code, out, _) = stdout(&["explain", "rs_timewait_collision"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("TIME_WAIT") && out.contains("random-fully"),
        "{out}"
    );
    for known in [
        "reused_ports",
        "stale_ack",
        "initial_rto_1s",
        "RSTO",
        "truncated_headers",
    ] {
        let (code, out, _) = stdout(&["explain", known]);
        assert_eq!(code, 0, "{known}");
        assert!(out.starts_with(known), "{out}");
    }
    let (code, _, err) = stdout(&["explain", "no_such_thing"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown code no_such_thing") && err.contains("rs_refused"),
        "{err}"
    );
}

#[test]
fn test_flows_lists_every_connection() {
    let cap = testdata("lab/client_port_reuse.client.pcap");
    let (code, out, _) = stdout(&["flows", "--json", cap.to_str().unwrap()]);
    assert_eq!(code, 0);
    let conns: Value = serde_json::from_str(out.trim()).unwrap();
    let analysed = report(&cap)["connections"].as_array().unwrap().len();
    assert_eq!(conns.as_array().unwrap().len(), analysed);
    let (code, out, _) = stdout(&["flows", cap.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("{analysed} connections")) && out.contains("closed"),
        "{out}"
    );
}

/// --port, --since and --until select packets; what they leave out is counted, so every
/// frame is still accounted for.
#[test]
fn test_filters_count_what_they_leave_out() {
    let cap = testdata("lab/rs_timewait.client.pcap");
    let full = report(&cap);
    let first = full["first_ts"].as_i64().unwrap();
    let last = full["last_ts"].as_i64().unwrap();
    let mid = first + (last - first) / 2;
    let since = format!("{}.{:09}", mid / 1_000_000_000, mid % 1_000_000_000);
    let out = pcapdiag()
        .args(["analyze", "--json", "--since", &since])
        .arg(&cap)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["captures"][0];
    let f = &c["frames"];
    assert_eq!(f["read"], full["frames"]["read"]);
    assert_eq!(
        f["analysed"].as_u64().unwrap() + f["skipped"].as_u64().unwrap(),
        f["read"].as_u64().unwrap()
    );
    let filtered = c["skipped_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "filtered")
        .unwrap();
    assert!(filtered["frames"].as_u64().unwrap() > 0);
    assert!(
        c["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["syns"][0]["ts"].as_i64().unwrap() >= mid)
    );
    // A port nobody used leaves every TCP frame out.
    let out = pcapdiag()
        .args(["analyze", "--json", "--port", "9"])
        .arg(&cap)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["captures"][0]["frames"]["analysed"], 0);
    // Bad values are usage errors.
    let (code, _, err) = stdout(&["analyze", "--since", "yesterday", cap.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("--since yesterday"), "{err}");
    let (code, _, _) = stdout(&[
        "analyze",
        "--since",
        "20",
        "--until",
        "10",
        cap.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
}

#[test]
fn test_completions_and_help() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = stdout(&["completions", shell]);
        assert_eq!(code, 0);
        assert!(
            out.contains("pcapdiag") && out.contains("analyze"),
            "{shell}"
        );
    }
    let (code, out, _) = stdout(&["--help"]);
    assert_eq!(code, 0);
    for word in ["analyze", "flows", "explain", "completions", "Exit status:"] {
        assert!(out.contains(word), "{word}: {out}");
    }
    // Every help text fits an 80-column terminal, examples included.
    for cmd in [
        &["--help"][..],
        &["analyze", "--help"],
        &["flows", "--help"],
    ] {
        let out = crate::util::pcapdiag()
            .env("COLUMNS", "80")
            .args(cmd)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{cmd:?}: {line:?}");
        }
    }
}

/// One command on the sample pair writes all five outputs, and they agree with each other.
#[test]
fn test_one_run_writes_every_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = testdata("lab/rs_timewait.client.pcap");
    let r = testdata("lab/rs_timewait.rs.pcap");
    pcapdiag()
        .args(["analyze", "-q", "--csv"])
        .arg(d.join("csv"))
        .arg("--parquet")
        .arg(d.join("pq"))
        .arg("--markdown")
        .arg(d.join("pm.md"))
        .arg("--html")
        .arg(d.join("r.html"))
        .arg("--json-file")
        .arg(d.join("r.json"))
        .arg(&c)
        .arg(&r)
        .succeed();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let attempts = json["pairs"][0]["verdicts"]["attempts"]
        .as_array()
        .unwrap()
        .len();
    let csv = std::fs::read_to_string(d.join("csv/attempts.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        attempts + 1,
        "a header and one row per attempt"
    );
    for f in ["attempts.parquet", "events.parquet", "summary.parquet"] {
        assert!(
            std::fs::metadata(d.join("pq").join(f)).unwrap().len() > 0,
            "{f}"
        );
    }
    let md = std::fs::read_to_string(d.join("pm.md")).unwrap();
    assert!(md.contains("rs_timewait_collision"));
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("rs_timewait_collision"));
    // An unwritable destination is an error that names it.
    let out = pcapdiag()
        .args(["analyze", "-q", "--markdown", "/proc/nope/pm.md"])
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/proc/nope/pm.md"));
}

/// `--list-skipped`: every skipped frame's number under its reason, each frame once, and
/// the list as long as the count. On a lab capture with non-IP frames (ARP), and with a
/// port filter that leaves every frame of the other port out (`filtered`).
#[test]
fn test_list_skipped_names_every_skipped_frame_once() {
    let cap = testdata("lab/rs_timewait.client.pcap");
    let out = pcapdiag()
        .args(["analyze", "-q", "--json", "--list-skipped", "--port", "81"])
        .arg(&cap)
        .succeed();
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &rep["captures"][0];
    let mut seen = std::collections::BTreeSet::new();
    for row in c["skipped_by_reason"].as_array().unwrap() {
        let frames = row["frame_numbers"].as_array().expect("listed");
        assert_eq!(frames.len() as u64, row["frames"].as_u64().unwrap());
        for f in frames {
            assert!(seen.insert(f.as_u64().unwrap()), "frame {f} listed twice");
        }
    }
    assert_eq!(seen.len() as u64, c["frames"]["skipped"].as_u64().unwrap());
    assert_eq!(
        c["frames"]["analysed"], 0,
        "port 81 leaves every segment out"
    );
    assert_eq!(seen.len() as u64, c["frames"]["read"].as_u64().unwrap());
    // Without the flag, no list.
    let out = pcapdiag()
        .args(["analyze", "-q", "--json"])
        .arg(&cap)
        .succeed();
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in rep["captures"][0]["skipped_by_reason"].as_array().unwrap() {
        assert!(row.get("frame_numbers").is_none());
    }
}
