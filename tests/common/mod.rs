//! Helpers shared by the integration tests: run the real binary, read its JSON, read TSVs.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

pub fn pcapdiag() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pcapdiag"))
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

/// Every capture under `testdata/` (recursively) with a given suffix.
pub fn captures_with(suffix: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, suffix, out);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&testdata(""), suffix, &mut v);
    v.sort();
    v
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
