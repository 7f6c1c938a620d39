//! Helpers shared by the integration tests: run the real binary, read its JSON, read TSVs,
//! find the captures, and skip (or, under CI, fail) when an input is missing.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether the run is a CI run (`CI=true` or `CI=1`, as CI services set it).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Whether a test has `what`, something outside the repository it needs (a browser, a
/// corpus). When it is missing, a CI run fails here, so that a test cannot pass there
/// without running; elsewhere this prints that the test skips it, and returns false.
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    assert!(
        !in_ci(),
        "{what} is missing, and CI is set: under CI this test must run, not skip"
    );
    println!("skipped: {what} is missing (under CI=true this fails)");
    false
}

/// The public capture corpora beside the repository (`../shared/corpus`, see its README):
/// tcpdump's test-suite captures and the pcapng conformance files. `None` when absent
/// outside CI ([`require`]).
pub fn shared_corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let what = format!("the shared corpus {}", dir.display());
    require(&what, dir.is_dir()).then_some(dir)
}

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

pub fn pcapdiag() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pcapdiag"))
}

/// Runs a command that must exit 0; its output. A failure shows its standard error.
pub trait Succeed {
    fn succeed(&mut self) -> Output;
}

impl Succeed for Command {
    fn succeed(&mut self) -> Output {
        let out = self.output().expect("the command runs");
        assert!(
            out.status.success(),
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

pub fn run(args: &[&str]) -> Output {
    pcapdiag().args(args).output().expect("pcapdiag runs")
}

/// The JSON report of one capture (`analyze --json FILE`), asserting a clean exit.
pub fn report(path: &Path) -> Value {
    let out = pcapdiag()
        .args(["analyze", "--json"])
        .arg(path)
        .output()
        .expect("pcapdiag runs");
    assert!(
        out.status.success(),
        "{}: exit {:?}: {}",
        path.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    v["captures"][0].take()
}

/// A TSV file with a header row, as maps from column name to value.
pub fn read_tsv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The client and RS captures of a lab scenario (`testdata/lab/SCENARIO.{client,rs}.pcap`).
/// The lab scenarios with a client and a real-server capture made the same way (see
/// `testdata/lab/README.md`; two_backends has two real servers and is tested apart).
pub const LAB_PAIRS: [&str; 5] = [
    "baseline",
    "rs_timewait",
    "client_port_reuse",
    "syn_drop",
    "rs_reset",
];

pub fn lab_pair(scenario: &str) -> (PathBuf, PathBuf) {
    (
        testdata(&format!("lab/{scenario}.client.pcap")),
        testdata(&format!("lab/{scenario}.rs.pcap")),
    )
}

/// Every file under `dir` (recursively) whose name ends with one of `suffixes` (every file
/// when `suffixes` is empty), sorted. An unreadable folder adds nothing.
pub fn files_under(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, suffixes: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, suffixes, out);
            } else if suffixes.is_empty()
                || suffixes.iter().any(|s| p.to_string_lossy().ends_with(s))
            {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, suffixes, &mut v);
    v.sort();
    v
}

/// Every capture under `testdata/` (recursively) with a given suffix.
pub fn captures_with(suffix: &str) -> Vec<PathBuf> {
    files_under(&testdata(""), &[suffix])
}

/// A `by_verdict` array of the JSON report as verdict code → attempts.
pub fn verdict_counts(by_verdict: &Value) -> BTreeMap<String, u64> {
    by_verdict
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().unwrap().to_string(),
                r["attempts"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Frame number → the set of flag codes pcapdiag gave it.
pub fn flags_by_frame(report: &Value) -> HashMap<u64, Vec<String>> {
    report["flagged_packets"]
        .as_array()
        .expect("flagged_packets")
        .iter()
        .map(|f| {
            let flags = f["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            (f["frame"].as_u64().unwrap(), flags)
        })
        .collect()
}

/// The attempts of a report whose client port is `port`.
pub fn attempts_on_port(report: &Value, port: u64) -> Vec<&Value> {
    report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["client"]["port"].as_u64() == Some(port))
        .collect()
}
