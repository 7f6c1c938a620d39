//! IP fragments: a generated capture (IPv4 and IPv6) written twice, once as it is and once
//! with its TCP packets split into IP fragments (2 or 3 each, some in reverse order, some
//! sent twice, TCP headers split across fragments). The fragmented copy must give the same
//! analysis, each segment at the frame that completes its datagram, as Wireshark places it;
//! overlapping fragments discard their datagram, as Linux does, and are counted.

use crate::util::*;
use serde_json::Value;
use std::path::Path;
use synth::{Encap, PcapOptions, PcapWriter, Rng, ScenarioConfig};

/// The IP packet of an Ethernet frame cut into fragments of at most `piece` payload bytes
/// (a multiple of 8), each a whole Ethernet frame. `id`: the IPv4 identification, or the
/// IPv6 fragment header's.
fn fragments(frame: &[u8], piece: usize, id: u32) -> Vec<Vec<u8>> {
    let (eth, ip) = frame.split_at(14);
    let v6 = ip[0] >> 4 == 6;
    let (hdr_len, payload) = if v6 {
        let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        (40, &ip[40..40 + len])
    } else {
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        (ihl, &ip[ihl..total])
    };
    let chunks: Vec<&[u8]> = payload.chunks(piece).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * piece;
            let more = i + 1 < chunks.len();
            let mut f = eth.to_vec();
            let mut h = ip[..hdr_len].to_vec();
            if v6 {
                let next = h[6];
                h[6] = 44;
                h[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
                f.extend_from_slice(&h);
                let off = (offset as u16) | u16::from(more);
                f.extend_from_slice(&[next, 0]);
                f.extend_from_slice(&off.to_be_bytes());
                f.extend_from_slice(&id.to_be_bytes());
            } else {
                h[2..4].copy_from_slice(&((hdr_len + chunk.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
                let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
                h[6..8].copy_from_slice(&flags.to_be_bytes());
                f.extend_from_slice(&h);
            }
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

/// Writes the scenario's packets plainly and fragmented; the fragmented copy's frame
/// number of each plain frame (the fragment that completes it), and how many datagrams
/// were fragmented.
fn write_both(cfg: &ScenarioConfig, plain: &Path, frag: &Path) -> (Vec<u64>, u64) {
    let sc = synth::generate(cfg);
    let opts = PcapOptions {
        nanos: true,
        ..PcapOptions::default()
    };
    let mut p = PcapWriter::new(std::fs::File::create(plain).unwrap(), opts).unwrap();
    let mut f = PcapWriter::new(std::fs::File::create(frag).unwrap(), opts).unwrap();
    let mut rng = Rng::new(cfg.seed);
    let (mut at, mut fragmented, mut completing) = (0u64, 0u64, Vec::new());
    for (i, (ts, spec)) in sc.packets.iter().enumerate() {
        let frame = synth::frame(&Encap::Ethernet, spec);
        p.write(*ts, &frame).unwrap();
        // Two of three packets fragmented: pieces of 8, 16 or 24 bytes for header-only
        // segments (the TCP header split), else a few pieces of the payload.
        if rng.below(3) == 0 {
            f.write(*ts, &frame).unwrap();
            at += 1;
            completing.push(at);
            continue;
        }
        let len = spec.payload_len + 60;
        let piece = if spec.payload_len == 0 {
            8 * rng.range(1, 3) as usize
        } else {
            (len / rng.range(2, 3) as usize).div_ceil(8) * 8
        };
        let mut pieces = fragments(&frame, piece, i as u32 + 1);
        if pieces.len() < 2 {
            f.write(*ts, &frame).unwrap();
            at += 1;
            completing.push(at);
            continue;
        }
        fragmented += 1;
        match rng.below(3) {
            // Last fragment first.
            0 => pieces.rotate_right(1),
            // The first fragment sent twice.
            1 => pieces.insert(1, pieces[0].clone()),
            _ => {}
        }
        for piece in &pieces {
            f.write(*ts, piece).unwrap();
        }
        at += pieces.len() as u64;
        completing.push(at);
    }
    (completing, fragmented)
}

fn skipped(rep: &Value, reason: &str) -> u64 {
    rep["skipped_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == reason)
        .map_or(0, |r| r["frames"].as_u64().unwrap())
}

/// Fragmented TCP is analysed like any other TCP: the same flags on the same segments, the
/// same attempts and setup times, every fragment frame counted.
#[test]
fn test_fragmented_capture_analyses_like_the_plain_one() {
    for ipv6 in [false, true] {
        let cfg = ScenarioConfig {
            seed: 11,
            attempts: 150,
            ipv6,
            anomaly_ppm: 300_000,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let (plain, frag) = (dir.path().join("plain.pcap"), dir.path().join("frag.pcap"));
        let (completing, fragmented) = write_both(&cfg, &plain, &frag);
        let label = format!("ipv6={ipv6}");
        assert!(fragmented > 100, "{label}: only {fragmented} fragmented");
        let (a, b) = (report(&plain), report(&frag));
        assert_eq!(
            b["frames"]["analysed"], a["frames"]["analysed"],
            "{label}: {}",
            b["skipped_by_reason"]
        );
        let read = b["frames"]["read"].as_u64().unwrap();
        let analysed = b["frames"]["analysed"].as_u64().unwrap();
        assert_eq!(skipped(&b, "ip_fragment"), read - analysed, "{label}");
        assert_eq!(b["fragments"]["reassembled"], fragmented, "{label}");
        assert!(a["fragments"].is_null(), "{label}: no fragments, no counts");
        // The same flags, each on the frame that completes the same segment.
        let (fa, fb) = (flags_by_frame(&a), flags_by_frame(&b));
        assert!(!fa.is_empty(), "{label}: the scenario has flagged packets");
        let moved: std::collections::HashMap<u64, Vec<String>> = fa
            .into_iter()
            .map(|(n, f)| (completing[n as usize - 1], f))
            .collect();
        assert_eq!(moved, fb, "{label}");
        // The same attempts, tries and setup times.
        let attempts = |r: &Value| -> Vec<(Value, Value, usize, Value)> {
            r["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    let syns = x["syns"].as_array().unwrap();
                    (
                        x["client"].clone(),
                        x["isn"].clone(),
                        syns.len(),
                        x["setup_ns"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(attempts(&a), attempts(&b), "{label}");
    }
}

/// Overlapping fragments that are not the same bytes discard the datagram (Linux, RFC
/// 5722), and a datagram never completed is counted as unfinished: nothing analysed of
/// either, every frame counted.
#[test]
fn test_overlapping_and_unfinished_fragments_are_counted_not_analysed() {
    let cfg = ScenarioConfig {
        seed: 3,
        attempts: 1,
        ..Default::default()
    };
    let sc = synth::generate(&cfg);
    let (ts, syn) = &sc.packets[0];
    let frame = synth::frame(&Encap::Ethernet, syn);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overlap.pcap");
    let mut w = PcapWriter::new(
        std::fs::File::create(&path).unwrap(),
        PcapOptions::default(),
    )
    .unwrap();
    // Datagram 1: pieces of 16 bytes, and a 24-byte piece over the first two.
    let pieces = fragments(&frame, 16, 7);
    let wide = fragments(&frame, 24, 7);
    w.write(*ts, &pieces[0]).unwrap();
    w.write(*ts, &wide[0]).unwrap();
    for p in &pieces[1..] {
        w.write(*ts, p).unwrap();
    }
    // Datagram 2: its first fragment only. (Datagram 1's fragments after the overlap
    // start it anew, without its first: unfinished too, as in Linux.)
    w.write(*ts, &fragments(&frame, 16, 8)[0]).unwrap();
    drop(w);
    let rep = report(&path);
    let frames = 2 + pieces.len() as u64;
    assert_eq!(rep["frames"]["read"], frames);
    assert_eq!(rep["frames"]["analysed"], 0);
    assert_eq!(skipped(&rep, "ip_fragment"), frames);
    let f = &rep["fragments"];
    assert_eq!(
        (&f["overlapping"], &f["unfinished"], &f["reassembled"]),
        (&1.into(), &2.into(), &0.into()),
        "{f}"
    );
}
