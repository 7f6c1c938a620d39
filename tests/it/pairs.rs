//! Several capture pairs in one run (`--pair`, `--pairs-dir`), through the real binary on
//! the lab's pairs: each pair's result is exactly that of the same files analysed alone,
//! the overall verdicts are the pairs' summed, an unreadable file stops only its own pair,
//! and the usage errors exit 2.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const SCENARIOS: [&str; 3] = ["rs_timewait", "syn_drop", "rs_reset"];

/// `pcapdiag analyze -q ARGS`.
fn analyze(args: &[&Path]) -> Output {
    pcapdiag()
        .args(["analyze", "-q"])
        .args(args)
        .output()
        .expect("pcapdiag runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `--pair C R` for each scenario, then `extra`.
fn pair_args(scenarios: &[&str], extra: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = extra.iter().map(PathBuf::from).collect();
    for s in scenarios {
        let (c, r) = lab_pair(s);
        v.extend([PathBuf::from("--pair"), c, r]);
    }
    v
}

fn refs(v: &[PathBuf]) -> Vec<&Path> {
    v.iter().map(PathBuf::as_path).collect()
}

/// `analyze --json CLIENT RS` of one scenario, the single-pair form.
fn alone(scenario: &str) -> Value {
    let (c, r) = lab_pair(scenario);
    let out = analyze(&[Path::new("--json"), &c, &r]);
    assert!(out.status.success(), "{scenario}");
    json(&out)
}

/// Asserts two pairs' verdicts are equal, showing only the counts when they are not.
fn same_verdicts(a: &Value, b: &Value, what: &str) {
    assert!(
        a == b,
        "{what}: verdicts differ: {:?} vs {:?}",
        verdict_counts(&a["by_verdict"]),
        verdict_counts(&b["by_verdict"])
    );
}

/// Each pair of a three-pair run has exactly the verdicts, pairing and captures of the same
/// two files analysed alone; pairs and captures come in command-line order.
#[test]
fn test_each_pair_equals_its_single_run() {
    let out = analyze(&refs(&pair_args(&SCENARIOS, &["--json"])));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = json(&out);
    assert_eq!(all["schema_version"], 5);
    let pairs = all["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), SCENARIOS.len());
    assert_eq!(
        all["captures"].as_array().unwrap().len(),
        2 * SCENARIOS.len()
    );
    for (i, scenario) in SCENARIOS.iter().enumerate() {
        let one = alone(scenario);
        let (p, q) = (&pairs[i], &one["pairs"][0]);
        assert_eq!(p["name"], *scenario);
        assert_eq!(p["name"], q["name"], "a pair is named the same either way");
        assert!(
            !p["verdicts"]["attempts"].as_array().unwrap().is_empty(),
            "{scenario}"
        );
        same_verdicts(&p["verdicts"], &q["verdicts"], scenario);
        assert!(p["pairing"] == q["pairing"], "{scenario}: pairing differs");
        // Its captures, by index.
        let c = p["client_capture"].as_u64().unwrap() as usize;
        let r = p["rs_capture"].as_u64().unwrap() as usize;
        assert_eq!((c, r), (2 * i, 2 * i + 1));
        assert!(
            all["captures"][c] == one["captures"][0],
            "{scenario}: client capture differs"
        );
        assert!(
            all["captures"][r] == one["captures"][1],
            "{scenario}: rs capture differs"
        );
    }
    // The scenarios differ, so a mix-up between pairs would show.
    assert_ne!(pairs[0]["verdicts"], pairs[1]["verdicts"]);
    assert_ne!(
        verdict_counts(&pairs[1]["verdicts"]["by_verdict"]),
        verdict_counts(&pairs[2]["verdicts"]["by_verdict"])
    );
}

/// The overall verdicts are the pairs' summed: counts, delays, maxima, and the share out of
/// every judged attempt; the terminal summary shows a section per pair and that total.
#[test]
fn test_overall_is_the_sum_of_the_pairs() {
    let out = analyze(&refs(&pair_args(&SCENARIOS, &["--json"])));
    assert!(out.status.success());
    let all = json(&out);
    let pairs = all["pairs"].as_array().unwrap();
    let o = &all["overall"];
    assert_eq!(o["pairs"], 3);
    assert_eq!(o["pairs_judged"], 3);
    let total: u64 = pairs
        .iter()
        .map(|p| p["verdicts"]["attempts"].as_array().unwrap().len() as u64)
        .sum();
    assert_eq!(o["attempts"].as_u64(), Some(total));
    let mut want: BTreeMap<String, (u64, i64, i64)> = BTreeMap::new();
    for p in pairs {
        for r in p["verdicts"]["by_verdict"].as_array().unwrap() {
            let e = want
                .entry(r["verdict"].as_str().unwrap().to_string())
                .or_default();
            e.0 += r["attempts"].as_u64().unwrap();
            e.1 += r["delay_total_ns"].as_i64().unwrap();
            e.2 = e.2.max(r["delay_max_ns"].as_i64().unwrap());
        }
    }
    let rows = o["by_verdict"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    assert!(want.len() >= 3, "{want:?}");
    for r in rows {
        let (n, total_ns, max_ns) = want[r["verdict"].as_str().unwrap()];
        assert_eq!(r["attempts"].as_u64(), Some(n), "{r}");
        assert_eq!(r["delay_total_ns"].as_i64(), Some(total_ns), "{r}");
        assert_eq!(r["delay_max_ns"].as_i64(), Some(max_ns), "{r}");
        assert_eq!(r["share_permille"].as_u64(), Some(n * 1000 / total), "{r}");
    }
    // Most attempts first.
    let counts: Vec<u64> = rows
        .iter()
        .map(|r| r["attempts"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");

    // The terminal: the causes over all pairs with each pair's count first, then (with
    // --verbose) a section per pair, in order. Wide, so that no line wraps.
    let out = analyze(&refs(&pair_args(
        &SCENARIOS,
        &["--verbose", "--width", "400"],
    )));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (screen, detail) = text.split_once("\n== ").unwrap();
    assert!(
        screen.starts_with(&format!("{total} connection attempts, ")),
        "{screen}"
    );
    let causes = screen
        .split_once("\nCauses\n")
        .unwrap_or_else(|| panic!("no causes in:\n{screen}"))
        .1;
    for (verdict, (n, _, _)) in want.iter().filter(|(v, _)| v.as_str() != "ok") {
        let s = if *n == 1 { "" } else { "s" };
        let line = causes
            .lines()
            .find(|l| l.starts_with(&format!("  {verdict}: ")))
            .unwrap_or_else(|| panic!("no {verdict} line in:\n{causes}"));
        assert!(line.contains(&format!(": {n} attempt{s}, ")), "{line}");
        // Each pair's count is its single run's.
        for p in SCENARIOS {
            let one = alone(p);
            for (v, k) in verdict_counts(&one["pairs"][0]["verdicts"]["by_verdict"]) {
                if &v == verdict {
                    assert!(line.contains(&format!("{p} {k}")), "{p} {k} not in {line}");
                }
            }
        }
    }
    let mut at = 0;
    for s in SCENARIOS {
        let head = format!("=== pair {s}: ");
        let i = detail[at..]
            .find(&head)
            .unwrap_or_else(|| panic!("no {head:?} in order in:\n{detail}"));
        at += i + head.len();
    }
}

/// A file that cannot be read stops its own pair only: the others are judged as alone, the
/// report names the file, and the exit status is 1.
#[test]
fn test_unreadable_file_stops_only_its_pair() {
    let missing = testdata("lab/no_such.rs.pcap");
    let (c0, r0) = lab_pair("rs_timewait");
    let (c1, _) = lab_pair("syn_drop");
    let (c2, r2) = lab_pair("rs_reset");
    let args: Vec<&Path> = vec![
        Path::new("--json"),
        Path::new("--pair"),
        &c0,
        &r0,
        Path::new("--pair"),
        &c1,
        &missing,
        Path::new("--pair"),
        &missing,
        &r2,
        Path::new("--pair"),
        &c2,
        &r2,
    ];
    let out = analyze(&args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such.rs.pcap"), "{stderr}");
    let all = json(&out);
    let pairs = all["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 4);
    same_verdicts(
        &pairs[0]["verdicts"],
        &alone("rs_timewait")["pairs"][0]["verdicts"],
        "rs_timewait",
    );
    same_verdicts(
        &pairs[3]["verdicts"],
        &alone("rs_reset")["pairs"][0]["verdicts"],
        "rs_reset",
    );
    // RS side missing: the client capture is read, the pair not judged.
    assert!(pairs[1]["verdicts"].is_null() && pairs[1]["pairing"].is_null());
    assert!(pairs[1]["client_capture"].is_u64());
    assert!(pairs[1]["rs_capture"].is_null());
    assert_eq!(pairs[1]["rs_file"], missing.display().to_string());
    // Client side missing.
    assert!(pairs[2]["verdicts"].is_null() && pairs[2]["client_capture"].is_null());
    assert_eq!(all["unreadable"].as_array().unwrap().len(), 2);
    for e in all["unreadable"].as_array().unwrap() {
        assert_eq!(e["file"], missing.display().to_string());
    }
    assert_eq!(all["captures"].as_array().unwrap().len(), 6);
    assert_eq!(all["overall"]["pairs"], 4);
    assert_eq!(all["overall"]["pairs_judged"], 2);

    // The terminal summary says so, and still ends with the total.
    let out = analyze(&args[1..]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("not judged (a capture could not be read): syn_drop, no_such"),
        "{text}"
    );
    assert!(text.contains("Causes\n"), "{text}");
}

fn usage_error(args: &[&Path]) -> String {
    let out = analyze(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn test_usage_errors_exit_2() {
    let (c, r) = lab_pair("syn_drop");
    let pair = Path::new("--pair");
    // No capture at all.
    usage_error(&[]);
    // The positional form mixed with --pair or --pairs-dir, either order.
    let err = usage_error(&[&c, pair, &c, &r]);
    assert!(err.contains("cannot be used with"), "{err}");
    usage_error(&[pair, &c, &r, &c]);
    usage_error(&[&c, Path::new("--pairs-dir"), &testdata("lab")]);
    // --pair takes exactly two files.
    usage_error(&[pair, &c]);
    // Standard input only once.
    let err = usage_error(&[pair, Path::new("-"), &r, pair, Path::new("-"), &r]);
    assert!(err.contains("standard input"), "{err}");
    // --pairs-dir: missing, without pairs, ambiguous, one-sided.
    let err = usage_error(&[Path::new("--pairs-dir"), Path::new("/nonexistent-dir")]);
    assert!(err.contains("/nonexistent-dir"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = usage_error(&[Path::new("--pairs-dir"), dir.path()]);
    assert!(err.contains("no NAME.client.pcap"), "{err}");
    // testdata/lab has rs_timewait.client.pcap and rs_timewait.client.pcapng.
    let err = usage_error(&[Path::new("--pairs-dir"), &testdata("lab")]);
    assert!(err.contains("rs_timewait is ambiguous"), "{err}");
    std::fs::copy(&c, dir.path().join("x.client.pcap")).unwrap();
    let err = usage_error(&[Path::new("--pairs-dir"), dir.path()]);
    assert!(err.contains("has no x.rs.* beside it"), "{err}");
}

/// `--pairs-dir` finds NAME.client.* with NAME.rs.* (any capture extension), names each
/// pair NAME, orders them by name, ignores other files, and judges them as `--pair` does.
#[test]
fn test_pairs_dir_is_the_same_as_pair() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (s, name, ext) in [
        ("syn_drop", "b-drops", "pcap"),
        ("rs_timewait", "a-timewait", "pcap"),
    ] {
        let (c, r) = lab_pair(s);
        std::fs::copy(&c, d.join(format!("{name}.client.{ext}"))).unwrap();
        std::fs::copy(&r, d.join(format!("{name}.rs.{ext}"))).unwrap();
    }
    std::fs::write(d.join("notes.txt"), "not a capture").unwrap();
    std::fs::copy(
        testdata("lab/rs_timewait.nat-any.pcap"),
        d.join("other.nat-any.pcap"),
    )
    .unwrap();
    let out = analyze(&[Path::new("--json"), Path::new("--pairs-dir"), d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let pairs = v["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0]["name"], "a-timewait");
    assert_eq!(pairs[1]["name"], "b-drops");
    assert_eq!(
        pairs[0]["rs_file"],
        d.join("a-timewait.rs.pcap").display().to_string()
    );
    let by_pair = analyze(&refs(&pair_args(&["rs_timewait", "syn_drop"], &["--json"])));
    let by_pair = json(&by_pair);
    for i in 0..2 {
        same_verdicts(
            &pairs[i]["verdicts"],
            &by_pair["pairs"][i]["verdicts"],
            &format!("pair {i}"),
        );
    }
}

/// One pair given with --pair prints what the positional form prints, but for the
/// positional form's table of what each capture saw; a name used twice is made unique.
#[test]
fn test_one_pair_either_form_and_unique_names() {
    let (c, r) = lab_pair("rs_timewait");
    let positional = analyze(&[&c, &r]);
    let flagged = analyze(&[Path::new("--pair"), &c, &r]);
    assert!(positional.status.success() && flagged.status.success());
    let text = String::from_utf8(positional.stdout).unwrap();
    let flagged = String::from_utf8(flagged.stdout).unwrap();
    // The same answer; the captures section says what the set's captures were.
    let answer = |t: &str| t.split_once("\nCaptures").unwrap().0.to_string();
    assert_eq!(answer(&text), answer(&flagged));
    let captures = text.split_once("\nCaptures").unwrap().1;
    assert!(captures.contains("client side, judged 40;"), "{captures}");
    assert!(captures.contains("real-server side;"), "{captures}");
    assert!(!text.contains("=== "), "one pair has no pair sections");

    let out = analyze(&refs(&pair_args(
        &["rs_timewait", "rs_timewait", "rs_timewait"],
        &["--json"],
    )));
    assert!(out.status.success());
    let v = json(&out);
    let names: Vec<&str> = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rs_timewait", "rs_timewait#2", "rs_timewait#3"]);
}

/// The tables name each row's pair: the attempts pair by pair, the events by capture, and
/// the summary per pair, then over every pair with a null pair.
#[test]
fn test_csv_has_the_pair_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    let mut args = pair_args(&SCENARIOS, &["--csv"]);
    args.insert(1, csv.clone());
    args.insert(0, PathBuf::from("--json"));
    let out = analyze(&refs(&args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let read = |name: &str| std::fs::read_to_string(csv.join(name)).unwrap();
    let first_fields = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };

    let attempts = read("attempts.csv");
    assert!(attempts.starts_with("pair,attempt,"), "{attempts:.200}");
    let mut want = Vec::new();
    for p in v["pairs"].as_array().unwrap() {
        let n = p["verdicts"]["attempts"].as_array().unwrap().len();
        want.extend(std::iter::repeat_n(
            p["name"].as_str().unwrap().to_string(),
            n,
        ));
    }
    assert_eq!(first_fields(&attempts), want);

    let events = read("events.csv");
    assert!(events.starts_with("pair,file,"), "{events:.200}");
    for line in events.lines().skip(1) {
        let mut f = line.split(',');
        let (pair, file) = (f.next().unwrap(), f.next().unwrap());
        assert!(file.contains(&format!("lab/{pair}.")), "{line}");
    }
    for s in SCENARIOS {
        assert!(first_fields(&events).iter().any(|p| p == s), "{s}");
    }

    // summary: pair,summary,key,key_ns,attempts,...
    let summary = read("summary.csv");
    assert!(summary.starts_with("pair,summary,key,key_ns,attempts,"));
    let all_rows: Vec<(String, u64)> = summary
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == "all")
        .map(|f| (f[0].to_string(), f[4].parse().unwrap()))
        .collect();
    let mut expect: Vec<(String, u64)> = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["verdicts"]["attempts"].as_array().unwrap().len() as u64,
            )
        })
        .collect();
    expect.push((String::new(), v["overall"]["attempts"].as_u64().unwrap()));
    assert_eq!(all_rows, expect);
}
