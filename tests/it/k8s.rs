//! `--k8s FILE`: Kubernetes names on the addresses of every output, from kubectl's JSON
//! (testdata/k8s/cluster.json names the lab's addresses).

use crate::util::{Succeed, pcapdiag, testdata};
use serde_json::Value;

const SET: [&str; 4] = [
    "lab/two_backends.client.pcap",
    "lab/two_backends.nat-any.pcap",
    "lab/two_backends.rs.pcap",
    "lab/two_backends.rs2.pcap",
];

fn analyze(extra: &[&str]) -> std::process::Output {
    pcapdiag()
        .args(["analyze", "-q", "--k8s"])
        .arg(testdata("k8s/cluster.json"))
        .args(extra)
        .args(SET.iter().map(|f| testdata(f)))
        .succeed()
}

/// The JSON names each address the report shows, by the cluster's objects: the client
/// pod, the service's VIP, both backends on their nodes, the node's SNAT addresses.
#[test]
fn test_json_names_every_address_of_the_report() {
    let v: Value = serde_json::from_slice(&analyze(&["--json"]).stdout).unwrap();
    let names = &v["names"];
    let label = |ip: &str| {
        let n = &names[ip];
        format!(
            "{} {}/{} {}",
            n["kind"].as_str().unwrap_or("?"),
            n["namespace"].as_str().unwrap_or("-"),
            n["name"].as_str().unwrap_or("?"),
            n["node"].as_str().unwrap_or("-")
        )
    };
    assert_eq!(label("10.77.1.2"), "pod default/web-7d9f8 node-1");
    assert_eq!(label("10.77.100.100"), "service default/api -");
    assert_eq!(label("10.77.2.2"), "pod default/api-5f2c1 node-2");
    assert_eq!(label("10.77.3.2"), "pod default/api-7b4d2 node-3");
    assert_eq!(label("10.77.2.1"), "node -/node-1 -");
    assert_eq!(names["10.77.2.2"]["service"], "api");
    // Without --k8s there is no names field at all.
    let plain = pcapdiag()
        .args(["analyze", "-q", "--json"])
        .args(SET.iter().map(|f| testdata(f)))
        .succeed();
    let plain: Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(plain.get("names").is_none());
}

/// The screen reads each worst attempt by name, pod to service to pod on its node, and
/// names the NAT mapping's addresses; the CSV carries the names in columns of their own.
#[test]
fn test_screen_and_csv_read_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(&["--width", "200", "--csv", dir.path().to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("pod default/web-7d9f8 on node-1 -> svc default/api -> pod default/api-"),
        "{text}"
    );
    assert!(
        text.contains("VIP 10.77.100.100:80 (svc default/api) -> real server 10.77.3.2:8080 (pod default/api-7b4d2)"),
        "{text}"
    );
    let csv = crate::exports::read_csv(&dir.path().join("attempts.csv"));
    let col = |name: &str| -> Vec<Option<String>> {
        csv.column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    };
    let (client, server, rs) = (
        col("client_name"),
        col("server_name"),
        col("rs_server_name"),
    );
    assert!(!client.is_empty());
    for i in 0..client.len() {
        assert_eq!(client[i].as_deref(), Some("pod default/web-7d9f8"));
        assert_eq!(server[i].as_deref(), Some("svc default/api"));
        let rs = rs[i].as_deref().unwrap_or("");
        assert!(rs.starts_with("pod default/api-"), "{rs}");
    }
}

/// A file that is not kubectl's JSON stops the run before any capture is read, naming
/// the file, the line and the column.
#[test]
fn test_bad_k8s_file_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cluster.json");
    std::fs::write(&bad, "{\"kind\": \"List\",\n \"items\": [}\n").unwrap();
    let out = pcapdiag()
        .args(["analyze", "-q", "--k8s"])
        .arg(&bad)
        .arg(testdata(SET[0]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("{}: line 2, column", bad.display())),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
