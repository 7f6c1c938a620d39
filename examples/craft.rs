//! Writes `testdata/synth/crafted.pcap`: hand-written TCP connections, one per scenario, for
//! the Wireshark flags and quirks that generated traffic does not reach (spurious
//! retransmission, zero-window probes and their ACKs, window full, ...).
//!
//! ```text
//! cargo run --example craft -- [OUT]     (default testdata/synth/crafted.pcap)
//! ```
//! Each scenario is one connection on its own client port (40001, 40002, ... in the order
//! below), written 30 s after the previous one starts; most are named after the unit test of
//! `src/classify.rs` that runs the same sequence through the classifier, and
//! `testdata/synth/README.md` lists what tshark 4.0.17 flags in each. Prints one line per
//! connection: client port, frames, name.
//!
//! In a scenario the client starts at ISN 1000, the server at 5000, windows are 1000 (raw)
//! unless said otherwise, and each packet comes 100 ms after the previous one unless
//! `.after_us(..)` says otherwise (the gap may be negative: a capture whose clock steps back).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use synth::{ControlBits, Encap, PcapOptions, PcapWriter, TcpSpec, frame};

/// Who sends a packet: the client or the server.
#[derive(Clone, Copy)]
enum Dir {
    C,
    S,
}
use Dir::{C, S};

/// One segment of a scenario, before addresses and time are filled in.
#[derive(Clone, Copy)]
struct Seg {
    flags: ControlBits,
    seq: u32,
    ack: u32,
    len: usize,
    win: u16,
    ws: Option<u8>,
    gap_us: i64,
}

const MS: i64 = 1_000;
const GAP_US: i64 = 100 * MS;

fn seg(flags: ControlBits, seq: u32, ack: u32) -> Seg {
    Seg {
        flags,
        seq,
        ack,
        len: 0,
        win: 1000,
        ws: None,
        gap_us: GAP_US,
    }
}
fn syn(seq: u32) -> Seg {
    seg(ControlBits::SYN, seq, 0)
}
fn synack(seq: u32, ack: u32) -> Seg {
    seg(ControlBits::SYN | ControlBits::ACK, seq, ack)
}
fn ack(seq: u32, ack: u32) -> Seg {
    seg(ControlBits::ACK, seq, ack)
}
fn data(seq: u32, ack: u32, len: usize) -> Seg {
    seg(ControlBits::PSH | ControlBits::ACK, seq, ack).len(len)
}
fn fin(seq: u32, ack: u32) -> Seg {
    seg(ControlBits::FIN | ControlBits::ACK, seq, ack)
}

impl Seg {
    fn len(mut self, n: usize) -> Seg {
        self.len = n;
        self
    }
    fn win(mut self, w: u16) -> Seg {
        self.win = w;
        self
    }
    fn ws(mut self, shift: u8) -> Seg {
        self.ws = Some(shift);
        self
    }
    fn after_us(mut self, gap: i64) -> Seg {
        self.gap_us = gap;
        self
    }
}

struct Scenario {
    name: &'static str,
    pkts: Vec<(Dir, Seg)>,
    /// The client connects to itself: same address and port on both ends, so `S` is `C`.
    self_connect: bool,
}

/// SYN, SYN-ACK, ACK with an initial RTT of `rtt_us` (1 ms unless a scenario needs more).
fn handshake_rtt(rtt_us: i64) -> Vec<(Dir, Seg)> {
    vec![
        (C, syn(1000)),
        (S, synack(5000, 1001).after_us(rtt_us / 2)),
        (C, ack(1001, 5001).after_us(rtt_us - rtt_us / 2)),
    ]
}
fn handshake() -> Vec<(Dir, Seg)> {
    handshake_rtt(MS)
}
/// A handshake where both sides offer window scale `shift`; the client's ACK advertises
/// `client_win` (raw).
fn handshake_ws(shift: u8, client_win: u16) -> Vec<(Dir, Seg)> {
    vec![
        (C, syn(1000).win(64240).ws(shift)),
        (S, synack(5000, 1001).win(300).ws(shift).after_us(MS / 2)),
        (C, ack(1001, 5001).win(client_win).after_us(MS / 2)),
    ]
}
fn then(mut first: Vec<(Dir, Seg)>, rest: &[(Dir, Seg)]) -> Vec<(Dir, Seg)> {
    first.extend_from_slice(rest);
    first
}
fn sc(name: &'static str, pkts: Vec<(Dir, Seg)>) -> Scenario {
    Scenario {
        name,
        pkts,
        self_connect: false,
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        sc(
            "clean_exchange",
            then(
                handshake(),
                &[
                    (S, data(5001, 1001, 100)),
                    (C, ack(1001, 5101)),
                    (C, data(1001, 5101, 50)),
                    (S, ack(5101, 1051)),
                    (C, fin(1051, 5101)),
                    (S, fin(5101, 1052)),
                    (C, ack(1052, 5102)),
                ],
            ),
        ),
        sc(
            "syn_retransmitted_same_isn",
            vec![
                (C, syn(1000)),
                (C, syn(1000).after_us(1000 * MS)),
                (C, syn(1000).after_us(MS)),
                (S, synack(5000, 1001)),
                (S, synack(5000, 1001).after_us(1000 * MS)),
                (C, ack(1001, 5001)),
            ],
        ),
        sc(
            "synack_new_isn_reused_ports_same_stream",
            vec![
                (C, syn(1000)),
                (S, synack(5000, 1001)),
                (S, synack(7000, 1001)),
                (C, ack(1001, 7001)),
            ],
        ),
        sc(
            "syn_ack_field_counts_as_lastack",
            vec![
                (C, seg(ControlBits::SYN, 1000, 9000)),
                (S, data(5001, 1001, 100)),
            ],
        ),
        sc(
            "reused_ports_new_stream_starts_fresh",
            then(
                handshake(),
                &[
                    (C, fin(1001, 5001)),
                    (S, fin(5001, 1002)),
                    (C, ack(1002, 5002)),
                    (C, syn(2000)),
                    (S, synack(8000, 2001)),
                    (C, ack(2001, 8001)),
                ],
            ),
        ),
        sc(
            "duplicate_ack_and_window_update",
            then(
                handshake(),
                &[
                    (S, data(5001, 1001, 100)),
                    (C, ack(1001, 5101)),
                    (C, ack(1001, 5101)),
                    (C, ack(1001, 5101).win(2000)),
                    (C, ack(1001, 5101).win(2000)),
                    (C, seg(ControlBits::NONE, 1001, 5101).win(2000)),
                ],
            ),
        ),
        sc(
            "lost_segment_then_ack_lost_segment",
            then(
                handshake(),
                &[
                    (S, data(5101, 1001, 100)),
                    (C, ack(1001, 5201)),
                    (S, data(5201, 1001, 100)),
                    (C, ack(1001, 5401)),
                    (C, ack(1001, 5501)),
                    (C, seg(ControlBits::RST, 1501, 0).win(0)),
                ],
            ),
        ),
        // The example of docs/wireshark-tcp-analysis.md §9 (quirk Q1): a capture starting
        // mid-stream; the server's ack beyond all seen data leaves the client's dupacknum at
        // 0xFFFFFFFF, so the server's quick resend is "fast" without a duplicate ACK.
        sc(
            "midstream_ack_lost_segment_fast_quirk",
            vec![
                (S, ack(5001, 1100)),
                (C, data(1000, 5001, 100).after_us(MS)),
                (S, ack(5001, 1500).after_us(MS)),
                (S, data(5001, 1500, 100).after_us(MS)),
                (S, data(5001, 1500, 100).after_us(MS)),
                (C, ack(1100, 5101)),
                (C, ack(1100, 5101)),
            ],
        ),
        sc(
            "nextseq_zero_is_unset",
            vec![
                (C, data(0xFFFF_FF9C, 1, 100)),
                (C, data(0xFFFF_FF9C, 1, 100)),
                (C, data(50, 1, 10)),
            ],
        ),
        sc(
            "retransmission_and_spurious_retransmission",
            then(
                handshake(),
                &[
                    (S, data(5001, 1001, 100)),
                    (S, data(5001, 1001, 100).after_us(200 * MS)),
                    (C, ack(1001, 5101)),
                    (S, data(5001, 1001, 100)),
                    (S, data(5101, 1001, 100)),
                    (C, ack(1001, 5201)),
                    (S, data(5101, 1001, 50)),
                ],
            ),
        ),
        sc(
            "fin_and_rst_retransmissions",
            then(
                handshake(),
                &[
                    (C, data(1001, 5001, 100)),
                    (C, seg(ControlBits::RST | ControlBits::ACK, 1001, 5001)),
                    (
                        C,
                        seg(ControlBits::RST | ControlBits::ACK, 1001, 5001).len(10),
                    ),
                    (C, fin(1101, 5001)),
                    (S, ack(5001, 1102)),
                    (C, fin(1101, 5001)),
                ],
            ),
        ),
        sc(
            "fast_retransmission_after_two_dupacks",
            then(
                handshake_rtt(50 * MS),
                &[
                    (S, data(5001, 1001, 100)),
                    (S, data(5101, 1001, 100)),
                    (C, ack(1001, 5001)),
                    (C, ack(1001, 5001)),
                    (S, data(5001, 1001, 100).after_us(5 * MS)),
                    (S, data(5201, 1001, 100)),
                    (S, data(5301, 1001, 100)),
                    (C, ack(1001, 5201)),
                    (C, ack(1001, 5201)),
                    (C, ack(1001, 5201)),
                    (S, data(5201, 1001, 100).after_us(25 * MS)),
                ],
            ),
        ),
        sc(
            "out_of_order_within_initial_rtt",
            then(
                handshake_rtt(50 * MS),
                &[
                    (S, data(5101, 1001, 100)),
                    (S, data(5001, 1001, 100).after_us(10 * MS)),
                    (S, data(5301, 1001, 100)),
                    (S, data(5201, 1001, 100).after_us(60 * MS)),
                    (S, data(5401, 1001, 100)),
                    (S, data(5401, 1001, 100).after_us(10 * MS)),
                    (S, data(5601, 1001, 100)),
                    (S, data(5501, 1001, 100).after_us(-10 * MS)),
                ],
            ),
        ),
        sc(
            "out_of_order_default_threshold_without_syn",
            vec![
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after_us(2 * MS)),
                (S, data(5301, 1001, 100)),
                (S, data(5201, 1001, 100).after_us(4 * MS)),
            ],
        ),
        sc(
            "out_of_order_negative_initial_rtt",
            vec![
                (C, syn(1000)),
                (S, synack(5000, 1001).after_us(MS)),
                (C, ack(1001, 5001).after_us(-5 * MS)),
                (S, data(5101, 1001, 100)),
                (S, data(5001, 1001, 100).after_us(10_000 * MS)),
            ],
        ),
        sc(
            "keep_alive_and_ack_repeated",
            then(
                handshake(),
                &[
                    (C, ack(1000, 5001)),
                    (S, ack(5001, 1001)),
                    (S, ack(5001, 1001)),
                    (C, data(1000, 5001, 1)),
                    (S, ack(5001, 1001)),
                    (C, ack(1000, 5001).win(0)),
                ],
            ),
        ),
        sc(
            "keep_alive_at_capture_start_seq_ffffffff",
            vec![(C, ack(0xFFFF_FFFF, 5001)), (S, ack(5001, 0))],
        ),
        sc(
            "window_update_first_packet_seq_zero",
            vec![(C, ack(0, 0)), (S, ack(5001, 1))],
        ),
        sc(
            "zero_window_probe_and_ack",
            then(
                handshake(),
                &[
                    (S, data(5001, 1001, 100)),
                    (C, ack(1001, 5101).win(0)),
                    (S, data(5101, 1001, 1)),
                    (C, ack(1001, 5101).win(0)),
                    (S, data(5101, 1001, 1).win(0)),
                    (C, ack(1001, 5101).win(0)),
                    (C, ack(1001, 5101).win(0)),
                    (C, ack(1001, 5101).win(1000)),
                    (S, data(5101, 1001, 100)),
                    (C, ack(1001, 5201)),
                ],
            ),
        ),
        sc(
            "window_full_uses_receiver_scale_after_first_ack",
            then(
                handshake_ws(7, 10),
                &[
                    (S, data(5001, 1001, 1000)),
                    (S, data(6001, 1001, 280)),
                    (C, ack(1001, 6281).win(10)),
                    (S, data(6281, 1001, 1280)),
                ],
            ),
        ),
        sc(
            "window_full_unscaled_while_receiver_is_first_ack",
            then(handshake_ws(7, 10), &[(C, data(1001, 5001, 300))]),
        ),
        sc(
            "window_full_no_scaling_when_synack_lacks_ws",
            vec![
                (C, syn(1000).ws(7)),
                (S, synack(5000, 1001).after_us(MS / 2)),
                (C, ack(1001, 5001).win(8).after_us(MS / 2)),
                (S, data(5001, 1001, 8)),
            ],
        ),
        sc(
            "window_full_scale_from_ws_option_on_any_packet",
            vec![
                (S, ack(5001, 1001).win(100)),
                (C, data(1001, 5001, 100)),
                (S, ack(5001, 1101).win(10).ws(3)),
                (C, data(1101, 5001, 80)),
            ],
        ),
        sc(
            "window_full_never_on_fin",
            then(
                handshake(),
                &[
                    (
                        C,
                        seg(ControlBits::FIN | ControlBits::ACK, 1001, 5001).len(1000),
                    ),
                    (S, ack(5001, 2002).win(500)),
                    (S, data(5001, 2002, 100)),
                ],
            ),
        ),
        // docs/wireshark-tcp-analysis.md §4.2: when both ends are the same address and
        // port, every packet is analysed as one direction (Linux's simultaneous open of a
        // socket connecting to its own port).
        Scenario {
            self_connect: true,
            ..sc(
                "self_connect_same_tuple",
                vec![
                    (C, syn(1000)),
                    (S, synack(1000, 1001).after_us(10 * MS)),
                    (C, ack(1001, 1001).after_us(10 * MS)),
                    (C, data(1001, 1001, 100)),
                    (S, ack(1101, 1101)),
                ],
            )
        },
    ]
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const SERVER_PORT: u16 = 80;
const FIRST_PORT: u16 = 40001;
/// 2023-11-14T22:13:20Z: any fixed instant.
const START_US: i64 = 1_700_000_000_000_000;
const SPACING_US: i64 = 30_000 * MS;

fn write(out: &str) -> std::io::Result<()> {
    let file = BufWriter::new(File::create(out)?);
    let mut w = PcapWriter::new(file, PcapOptions::default())?;
    for (i, s) in scenarios().iter().enumerate() {
        let port = FIRST_PORT + i as u16;
        let mut t = START_US + i as i64 * SPACING_US;
        for (n, &(dir, g)) in s.pkts.iter().enumerate() {
            t += g.gap_us;
            let (src, sport, dst, dport) = match dir {
                _ if s.self_connect => (CLIENT, port, CLIENT, port),
                C => (CLIENT, port, SERVER, SERVER_PORT),
                S => (SERVER, SERVER_PORT, CLIENT, port),
            };
            let spec = TcpSpec {
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                sport,
                dport,
                seq: g.seq,
                ack: g.ack,
                flags: g.flags,
                window: g.win,
                wscale: g.ws,
                payload_len: g.len,
                ip_id: n as u16,
                ..TcpSpec::default()
            };
            w.write((t * 1_000) as u64, &frame(&Encap::Ethernet, &spec))?;
        }
        println!("{port}\t{}\t{}", s.pkts.len(), s.name);
    }
    w.into_inner().flush()
}

fn main() -> ExitCode {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "testdata/synth/crafted.pcap".to_string());
    match write(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("craft: {out}: {e}");
            ExitCode::FAILURE
        }
    }
}
