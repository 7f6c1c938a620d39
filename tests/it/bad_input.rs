//! Bad input gets a clear message naming the file, byte offset and frame, or a counted
//! warning, and never a panic; what could be read is analysed and reported.

use crate::util::*;
use pcapdiag::read::CaptureReader;
use serde_json::Value;
use std::io::Cursor;
use synth::{CaptureFormat, Encap, PcapOptions, PcapWriter, PcapngWriter, ScenarioConfig};

fn small_capture() -> Vec<u8> {
    let script = vec![
        synth::Kind::Normal,
        synth::Kind::StaleAck {
            resend: synth::StaleResend::Fast,
        },
    ];
    let cfg = ScenarioConfig {
        seed: 11,
        script,
        ..Default::default()
    };
    let mut out = Vec::new();
    synth::write_capture(
        &cfg,
        &Encap::Ethernet,
        CaptureFormat::Pcap { nanos: false },
        &mut out,
        None,
    )
    .unwrap();
    out
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn analyze(path: &std::path::Path) -> (i32, Value, String) {
    let out = pcapdiag()
        .args(["analyze", "--json"])
        .arg(path)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_not_a_capture_names_file_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(&dir, "notes.txt", b"this is not a capture at all\n");
    let (code, v, err) = analyze(&p);
    assert_eq!(code, 1);
    assert!(
        err.contains("notes.txt") && err.contains("not a pcap or pcapng"),
        "{err}"
    );
    assert_eq!(v["unreadable"][0]["kind"]["code"], "not_a_capture");
    let empty = write_temp(&dir, "empty.pcap", b"");
    let (code, _, err) = analyze(&empty);
    assert_eq!(code, 1);
    assert!(err.contains("empty.pcap: empty file"), "{err}");
    let (code, _, err) = analyze(&dir.path().join("missing.pcap"));
    assert_eq!(code, 1);
    assert!(err.contains("missing.pcap"), "{err}");
}

/// One bad file does not stop the other from being analysed.
#[test]
fn test_one_bad_file_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_temp(&dir, "good.pcap", &small_capture());
    let bad = write_temp(&dir, "bad.pcap", b"garbage garbage garbage");
    let out = pcapdiag()
        .args(["analyze", "--json"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["captures"].as_array().unwrap().len(), 1);
    assert!(v["captures"][0]["frames"]["analysed"].as_u64().unwrap() > 0);
    assert_eq!(v["unreadable"].as_array().unwrap().len(), 1);
}

/// tcpdump killed mid-write: a file cut at ANY byte offset is analysed up to the cut, with
/// a warning naming the offset, and every complete record before it is counted.
#[test]
fn test_cut_at_every_byte_offset() {
    let full = small_capture();
    let record_ends: Vec<usize> = {
        // Walk the records: 24-byte header, then 16-byte record headers.
        let mut v = vec![24];
        let mut at = 24;
        while at + 16 <= full.len() {
            let caplen = u32::from_le_bytes(full[at + 8..at + 12].try_into().unwrap()) as usize;
            at += 16 + caplen;
            v.push(at);
        }
        v
    };
    for cut in 0..full.len() {
        let r = CaptureReader::from_reader("cut.pcap", Box::new(Cursor::new(full[..cut].to_vec())));
        match r {
            Err(e) => assert!(cut < 24, "cut {cut}: {e}"),
            Ok(reader) => {
                let rep =
                    pcapdiag::capture::analyze_reader(reader, &Default::default(), &mut |_| {});
                let complete = record_ends.iter().filter(|&&e| e <= cut).count() as u64 - 1;
                assert_eq!(rep.frames.read, complete, "cut {cut}");
                assert_eq!(rep.frames.analysed + rep.frames.skipped, rep.frames.read);
                let at_boundary = record_ends.contains(&cut);
                match &rep.read_problem {
                    None => assert!(at_boundary, "cut {cut}: no warning"),
                    Some(p) => {
                        assert!(!at_boundary && p.is_warning(), "cut {cut}: {p}");
                        assert_eq!(
                            p.offset as usize, record_ends[complete as usize],
                            "cut {cut}"
                        );
                    }
                }
            }
        }
    }
    // The binary: exit 0, the warning on stderr, a full report on stdout.
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(&dir, "killed.pcap", &full[..full.len() - 7]);
    let (code, v, err) = analyze(&p);
    assert_eq!(code, 0);
    assert!(
        err.contains("killed.pcap: byte offset") && err.contains("cut off"),
        "{err}"
    );
    assert_eq!(v["captures"][0]["read_problem"]["kind"]["code"], "cut_off");
}

/// A record claiming 4 GB is an error at its offset, after the frames before it, and no
/// 4 GB buffer is allocated (this test would abort on allocation failure if it were).
#[test]
fn test_absurd_record_length_and_trailing_garbage() {
    let mut bytes = small_capture();
    let good_len = bytes.len();
    let mut w = PcapWriter::new(Vec::new(), PcapOptions::default()).unwrap();
    w.write_raw(
        1_700_000_100_000_000_000,
        0xffff_fff0,
        0xffff_fff0,
        &[0u8; 64],
    )
    .unwrap();
    let rec = w.into_inner();
    bytes.extend_from_slice(&rec[24..]);
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(&dir, "absurd.pcap", &bytes);
    let (code, v, err) = analyze(&p);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("byte offset {good_len}")) && err.contains("declares"),
        "{err}"
    );
    let cap = &v["captures"][0];
    assert_eq!(cap["read_problem"]["kind"]["code"], "absurd_length");
    assert!(cap["frames"]["analysed"].as_u64().unwrap() > 0);

    // pcapng with garbage after valid blocks: stops at the garbage's offset, reports what was read.
    let mut ng = PcapngWriter::new(Vec::new()).unwrap();
    ng.add_interface(1, 262_144, 9, None).unwrap();
    let syn = synth::TcpSpec {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.0.0.2".parse().unwrap(),
        sport: 1234,
        dport: 80,
        seq: 5,
        flags: synth::ControlBits::SYN,
        window: 1000,
        ..Default::default()
    };
    ng.write(
        0,
        1_700_000_000_000_000_001,
        &synth::frame(&Encap::Ethernet, &syn),
    )
    .unwrap();
    let mut bytes = ng.into_inner();
    let good_len = bytes.len();
    bytes.extend_from_slice(&[
        0xde, 0xad, 0xbe, 0xef, 0x20, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24,
    ]);
    let p = write_temp(&dir, "garbage.pcapng", &bytes);
    let (code, v, err) = analyze(&p);
    let cap = &v["captures"][0];
    assert_eq!(cap["frames"]["read"], 1, "{err}");
    assert_eq!(
        cap["attempts"][0]["syns"][0]["ts"],
        1_700_000_000_000_000_001i64
    );
    // An unknown block type with a valid length is skipped and counted, not an error.
    if code == 0 {
        assert_eq!(cap["blocks"]["unknown_blocks"], 1, "{err}");
    } else {
        assert!(err.contains(&format!("byte offset {good_len}")), "{err}");
    }
}

/// A pcapng block of unknown type is skipped and counted; interfaces with different
/// resolutions and offsets give the right times; packets on undeclared interfaces are counted.
#[test]
fn test_pcapng_unknown_block_interfaces_and_offsets() {
    let syn = |port: u16| synth::TcpSpec {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.0.0.2".parse().unwrap(),
        sport: port,
        dport: 80,
        seq: port as u32,
        flags: synth::ControlBits::SYN,
        window: 1000,
        ..Default::default()
    };
    let mut ng = PcapngWriter::new(Vec::new()).unwrap();
    let us = ng.add_interface(1, 262_144, 6, None).unwrap();
    let ns = ng.add_interface(276, 262_144, 9, Some(100)).unwrap();
    let t = 1_700_000_000_123_456_789u64;
    ng.write(us, t, &synth::frame(&Encap::Ethernet, &syn(1001)))
        .unwrap();
    ng.write_unknown_block(0x0bad_0bad, &[1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    ng.write(ns, t, &synth::frame(&Encap::Sll2, &syn(1002)))
        .unwrap();
    // An Enhanced Packet Block for interface 7, which no block declared.
    let data = synth::frame(&Encap::Ethernet, &syn(1003));
    let mut epb = Vec::new();
    for v in [7u32, 0, 0, data.len() as u32, data.len() as u32] {
        epb.extend_from_slice(&v.to_le_bytes());
    }
    epb.extend_from_slice(&data);
    epb.resize(epb.len().next_multiple_of(4), 0);
    ng.write_unknown_block(6, &epb).unwrap();
    ng.new_section().unwrap();
    let again = ng.add_interface(113, 262_144, 9, None).unwrap();
    ng.write(again, t + 5, &synth::frame(&Encap::Sll, &syn(1004)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(&dir, "multi.pcapng", &ng.into_inner());
    let (code, v, err) = analyze(&p);
    assert_eq!(code, 0, "{err}");
    let cap = &v["captures"][0];
    assert_eq!(cap["frames"]["read"], 4);
    assert_eq!(cap["frames"]["analysed"], 3);
    assert_eq!(cap["skipped_by_reason"][0]["reason"], "unknown_interface");
    assert_eq!(cap["blocks"]["unknown_blocks"], 1);
    assert_eq!(cap["blocks"]["sections"], 2);
    let ts: Vec<i64> = cap["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["syns"][0]["ts"].as_i64().unwrap())
        .collect();
    assert_eq!(ts, vec![(t - t % 1000) as i64, t as i64, (t + 5) as i64]);
}

#[test]
fn test_usage_errors_exit_2() {
    let out = run(&["analyze"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["analyze", "-", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input"));
    let out = run(&["analyze", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("Exit status:"),
        "{help}"
    );
}

/// A SYN flood past both memory limits: the live state is evicted and counted, segments
/// that would start a connection past `--max-records` are skipped under `record_cap`, every
/// frame is still accounted for, the report and standard error say what the limits cost,
/// and the exit status stays 0 (everything read was analysed or counted).
#[test]
fn test_syn_flood_past_the_record_and_state_caps() {
    const SYNS: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    synth::write_syn_flood(SYNS, std::fs::File::create(&path).unwrap()).unwrap();
    let out = pcapdiag()
        .args(["analyze", "--json", "--max-records", "2000"])
        .args(["--max-connections", "500"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cap = &v["captures"][0];
    assert_eq!(cap["frames"]["read"], SYNS);
    assert_eq!(cap["frames"]["analysed"], 2000);
    assert_eq!(cap["frames"]["skipped"], SYNS - 2000);
    let by_reason = cap["skipped_by_reason"].as_array().unwrap();
    assert_eq!(by_reason.len(), 1, "{by_reason:?}");
    assert_eq!(by_reason[0]["reason"], "record_cap");
    assert_eq!(by_reason[0]["frames"], SYNS - 2000);
    assert_eq!(cap["connections"].as_array().unwrap().len(), 2000);
    assert_eq!(cap["attempts"].as_array().unwrap().len(), 2000);
    assert_eq!(cap["state"]["record_cap_frame"], 2001);
    let evicted = cap["state"]["evicted"].as_u64().unwrap();
    assert!(evicted >= 1500, "evicted {evicted}");
    assert!(stderr.contains("reached --max-records") && stderr.contains("frame 2001"));
    assert!(stderr.contains("evicted"), "{stderr}");
    // The terminal report says it too.
    let out = pcapdiag()
        .args(["analyze", "--max-records", "2000"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("record_cap"), "{text}");
    assert!(text.contains("note: the connection records reached --max-records"));
}
