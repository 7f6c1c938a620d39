//! `--annotate DIR`: the captures written again as pcapng with pcapdiag's findings as
//! packet comments, and merged.pcapng on the reference clock. Read back with pcap-parser,
//! and compared with what tshark read from the same files
//! (`lab/tshark-golden-annotate.sh` writes testdata/golden/annotate/).

use crate::util::{Succeed, pcapdiag, testdata};
use pcap_parser::pcapng::{Block, OptionCode, PcapNGOption, parse_block_le};
use serde_json::Value;
use std::path::Path;

/// The syn_drop scenario's set: client, node (`tcpdump -i any`) and real server.
const SET: [&str; 3] = [
    "testdata/lab/syn_drop.client.pcap",
    "testdata/lab/syn_drop.nat-any.pcap",
    "testdata/lab/syn_drop.rs.pcap",
];

/// One packet of a written pcapng file: interface, time (ns), comments.
#[derive(Debug, Clone)]
struct Packet {
    iface: u32,
    ts: u64,
    comments: Vec<String>,
}

/// Every packet of a pcapng file pcapdiag wrote (nanosecond interfaces), and the
/// interfaces' descriptions.
fn read(path: &Path) -> (Vec<Packet>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    let mut rest = &bytes[..];
    let (mut packets, mut descriptions) = (Vec::new(), Vec::new());
    let text = |opts: &[PcapNGOption], code: OptionCode| -> Vec<String> {
        opts.iter()
            .filter(|o| o.code == code)
            .map(|o| o.as_str().unwrap().to_string())
            .collect()
    };
    while !rest.is_empty() {
        let (r, block) = parse_block_le(rest).unwrap();
        match block {
            Block::InterfaceDescription(idb) => {
                assert_eq!(idb.if_tsresol, 9, "nanosecond times");
                descriptions.push(text(&idb.options, OptionCode::IfDescription).join(""));
            }
            Block::EnhancedPacket(epb) => packets.push(Packet {
                iface: epb.if_id,
                ts: (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low),
                comments: text(&epb.options, OptionCode::Comment),
            }),
            _ => {}
        }
        rest = r;
    }
    (packets, descriptions)
}

/// The packets as `tshark -T fields -E aggregator='|' -e frame.number -e frame.time_epoch
/// -e frame.interface_id -e frame.comment` prints them.
fn as_tshark(packets: &[Packet]) -> String {
    packets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{}\t{}.{:09}\t{}\t{}\n",
                i + 1,
                p.ts / 1_000_000_000,
                p.ts % 1_000_000_000,
                p.iface,
                p.comments.join("|")
            )
        })
        .collect()
}

/// Runs `analyze --annotate` on the set; the directory and the JSON report.
fn annotate() -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = pcapdiag()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["analyze", "-q", "--json", "--annotate"])
        .arg(dir.path())
        .args(SET)
        .succeed();
    (dir, serde_json::from_slice(&out.stdout).unwrap())
}

/// tshark reads the merged file and the node's copy with the same times and comments as
/// pcap-parser does.
#[test]
fn test_annotated_files_read_back_as_tshark_read_them() {
    let (dir, _) = annotate();
    for name in ["merged", "syn_drop.nat-any"] {
        let golden = testdata(&format!("golden/annotate/{name}.comments.tsv"));
        let want = std::fs::read_to_string(&golden).unwrap();
        let (packets, _) = read(&dir.path().join(format!("{name}.pcapng")));
        let got = as_tshark(&packets);
        if got != want {
            let line = want
                .lines()
                .zip(got.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{name}: differs from {} at line {}:\n  tshark: {:?}\n  ours:   {:?}\n(lab/tshark-golden-annotate.sh rewrites it)",
                golden.display(),
                line + 1,
                want.lines().nth(line),
                got.lines().nth(line)
            );
        }
    }
}

/// The merged file holds every frame of every capture, in time order on the reference
/// clock: the real server's frames moved by its clock offset, one interface per capture
/// described with its file. Each copy holds its capture's frames.
#[test]
fn test_merged_holds_every_frame_on_the_reference_clock() {
    let (dir, report) = annotate();
    let caps = report["captures"].as_array().unwrap();
    let (merged, descriptions) = read(&dir.path().join("merged.pcapng"));
    let total: u64 = caps
        .iter()
        .map(|c| c["frames"]["read"].as_u64().unwrap())
        .sum();
    assert_eq!(merged.len() as u64, total);
    assert!(merged.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert_eq!(descriptions.len(), 3);
    for (i, file) in SET.iter().enumerate() {
        assert!(descriptions[i].starts_with(file), "{}", descriptions[i]);
        let (copy, _) = read(&dir.path().join(format!(
            "{}.pcapng",
            file.trim_start_matches("testdata/lab/").trim_end_matches(".pcap")
        )));
        assert_eq!(
            copy.len() as u64,
            caps[i]["frames"]["read"].as_u64().unwrap()
        );
        // The copy keeps the capture's own times; the merge moves them onto the reference
        // clock by the capture's offset there: the offset at the reference's first frame
        // plus the skew since.
        let on_ref: Vec<u64> = merged
            .iter()
            .filter(|p| p.iface == i as u32)
            .map(|p| p.ts)
            .collect();
        assert_eq!(on_ref.len(), copy.len());
        let clock = &report["vantage_points"][i]["clock"];
        let (offset, skew, at) = (
            clock["offset_ns"].as_i64().unwrap(),
            clock["skew_ppb"].as_i64().unwrap(),
            clock["at_ns"].as_i64().unwrap(),
        );
        for (own, moved) in copy.iter().zip(&on_ref) {
            let moved_by = own.ts as i64 - *moved as i64;
            let want = offset + (*moved as i64 - at) * skew / 1_000_000_000;
            assert!((moved_by - want).abs() <= 2, "{moved_by} vs {want}");
        }
    }
}

/// Every evidence packet of every slow attempt carries a comment naming its attempt and
/// verdict, in the copy of its capture; a SYN the node saw enter the NAT box names the
/// client's copy of it.
#[test]
fn test_every_evidence_packet_is_commented_with_its_verdict() {
    let (dir, report) = annotate();
    let copies: Vec<Vec<Packet>> = SET
        .iter()
        .map(|f| {
            let stem = f
                .trim_start_matches("testdata/lab/")
                .trim_end_matches(".pcap");
            read(&dir.path().join(format!("{stem}.pcapng"))).0
        })
        .collect();
    let mut checked = 0;
    for pair in report["pairs"].as_array().unwrap() {
        for v in pair["verdicts"]["attempts"].as_array().unwrap() {
            let verdict = v["verdict"].as_str().unwrap();
            if verdict == "ok" {
                continue;
            }
            for e in v["evidence"].as_array().unwrap() {
                let capture = match e["side"].as_str().unwrap() {
                    "client" => pair["client_capture"].as_u64(),
                    "rs" => pair["rs_capture"].as_u64(),
                    _ => e["capture"].as_u64(),
                }
                .unwrap() as usize;
                let frame = e["frame"].as_u64().unwrap() as usize;
                let comments = copies[capture][frame - 1].comments.join("\n");
                let what = e["what"].as_str().unwrap();
                assert!(
                    comments.contains(&format!("pcapdiag: {what} of attempt "))
                        && comments.contains(&format!("({verdict}; ")),
                    "{} #{frame}: {comments:?}",
                    SET[capture]
                );
                if what == "SYN entering the NAT box" {
                    assert!(
                        comments.contains("same packet as syn_drop.client #"),
                        "{comments}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 7 * 4, "{checked} evidence packets");
}

/// Standard input cannot be read twice: --annotate says so, and exits 1.
#[test]
fn test_annotate_refuses_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let capture = std::fs::File::open(testdata("lab/syn_drop.client.pcap")).unwrap();
    let out = pcapdiag()
        .args(["analyze", "-q", "--annotate"])
        .arg(dir.path())
        .arg("-")
        .stdin(capture)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("standard input cannot be read a second time"),
        "{err}"
    );
}
