//! Criterion bench of the hot stages, each on the same in-memory capture (issue #6).
//!
//! ```text
//! cargo bench --bench stages              # all stages, about 30 s once built
//! cargo bench --bench stages -- decode    # one stage (a substring of its name)
//! ```
//!
//! The capture is generated once, as `benches/bench.sh` does (`examples/gen.rs`: short
//! connections, 3 % anomalous attempts, seed 1), but smaller ([`PACKETS`]) and in memory.
//! Each stage's input is prepared outside the timed code, so each number is that stage alone:
//! - `read`: [`CaptureReader`] over the bytes, counting frames (the floor);
//! - `decode`: [`decode::decode`] on every frame, the frames read beforehand (so streamed
//!   from a buffer the size of the capture, not from cache);
//! - `read_decode`: both, as the pipeline runs them (decode minus read: decode with the
//!   frame's bytes in cache);
//! - `flows_push`: [`Flows::push`] of every decoded segment into a fresh table (flow lookup,
//!   handshake tracking and classify);
//! - `classify`: [`Analysis::analyze`] alone, each segment's connection and direction worked
//!   out beforehand (no hash lookup, no handshake tracking);
//! - `analyze_reader`: the whole single-capture pipeline, read to report.
//!
//! Throughput is per iteration, that is per capture: packets and frame bytes.

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use pcapdiag::classify::{Analysis, Dir};
use pcapdiag::decode::{self, Segment};
use pcapdiag::flows::Flows;
use pcapdiag::read::{CaptureReader, Frame};
use pcapdiag::units::Endpoint;
use std::collections::HashMap;
use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;
use synth::{CaptureFormat, Encap, ScenarioConfig, write_capture};

/// About this many packets in the capture (the generator finishes the attempts in flight).
const PACKETS: u64 = 150_000;

/// The capture and each stage's input, built once.
struct Input {
    /// The pcap file, leaked so that every reader can borrow it without a copy.
    pcap: &'static [u8],
    /// Every frame, borrowing the leaked frame bytes.
    frames: Vec<Frame<'static>>,
    /// Frame bytes (the sum of the captured lengths).
    frame_bytes: u64,
    /// The decoded segments, in capture order.
    segments: Vec<Segment>,
    /// Per segment: its connection incarnation (an index) and its direction.
    conns: Vec<(u32, Dir)>,
    /// How many incarnations `conns` numbers.
    incarnations: usize,
}

fn reader(pcap: &'static [u8]) -> CaptureReader {
    CaptureReader::from_reader("bench.pcap", Box::new(Cursor::new(pcap))).expect("a capture")
}

fn build() -> Input {
    let cfg = ScenarioConfig {
        seed: 1,
        attempts: u64::MAX,
        max_packets: Some(PACKETS),
        ..ScenarioConfig::default()
    };
    let mut pcap = Vec::new();
    let format = CaptureFormat::Pcap { nanos: false };
    let stats = write_capture(&cfg, &Encap::Ethernet, format, &mut pcap, None).expect("in memory");
    let pcap: &'static [u8] = Vec::leak(pcap);

    // A frame borrows the reader's buffer for one callback only: copy every frame's bytes
    // into one buffer, leak it, then point the frames into it.
    let mut frames: Vec<(Frame<'static>, std::ops::Range<usize>)> = Vec::new();
    let mut bytes = Vec::new();
    let end = reader(pcap).for_each(|r| {
        let f = r.expect("the generator writes only readable frames");
        let start = bytes.len();
        bytes.extend_from_slice(f.data);
        let f = Frame { data: &[], ..f };
        frames.push((f, start..bytes.len()));
    });
    end.expect("read to the end");
    let bytes: &'static [u8] = Vec::leak(bytes);
    let frames: Vec<Frame<'static>> = frames
        .into_iter()
        .map(|(f, range)| Frame {
            data: &bytes[range],
            ..f
        })
        .collect();
    assert_eq!(frames.len() as u64, stats.packets);

    let segments: Vec<Segment> = frames
        .iter()
        .map(|f| decode::decode(f).expect("the generator writes only TCP"))
        .collect();
    let (conns, incarnations) = incarnations(&segments);
    Input {
        pcap,
        frame_bytes: stats.frame_bytes,
        frames,
        segments,
        conns,
        incarnations,
    }
}

/// Each segment's connection incarnation and direction, split as [`Flows`] splits them: a
/// pure SYN with a new ISN on a known tuple starts a new incarnation
/// ([`Analysis::starts_new_stream`]). The originator is the sender of a SYN, the receiver of
/// a SYN-ACK, otherwise the higher port (as in `flows.rs`, whose table is private). Runs the
/// analysis once to know each direction's base sequence number.
fn incarnations(segments: &[Segment]) -> (Vec<(u32, Dir)>, usize) {
    let mut live: HashMap<(Endpoint, Endpoint), (u32, Endpoint)> = HashMap::new();
    let mut analyses: Vec<Analysis> = Vec::new();
    let mut out = Vec::with_capacity(segments.len());
    for seg in segments {
        let key = if seg.src <= seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        let client_of_new = |seg: &Segment| {
            let src_is_client = if seg.flags.syn() {
                !seg.flags.ack()
            } else {
                seg.src.port >= seg.dst.port
            };
            if src_is_client { seg.src } else { seg.dst }
        };
        let dir_of = |client: Endpoint| {
            if seg.src == client {
                Dir::Orig
            } else {
                Dir::Resp
            }
        };
        let (id, client) = match live.get(&key) {
            Some(&(id, client))
                if !analyses[id as usize].starts_new_stream(dir_of(client), seg) =>
            {
                (id, client)
            }
            _ => {
                let id = analyses.len() as u32;
                analyses.push(Analysis::default());
                let client = client_of_new(seg);
                live.insert(key, (id, client));
                (id, client)
            }
        };
        let dir = dir_of(client);
        analyses[id as usize].analyze(dir, seg);
        out.push((id, dir));
    }
    (out, analyses.len())
}

fn stages(c: &mut Criterion) {
    let input = build();
    let packets = input.frames.len() as u64;
    eprintln!(
        "capture: {packets} packets, {} frame bytes, {} connection incarnations, {} bytes of pcap",
        input.frame_bytes,
        input.incarnations,
        input.pcap.len()
    );

    let mut g = c.benchmark_group("stages");
    // Every iteration is a whole capture (milliseconds): few, flat samples are enough.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::ElementsAndBytes {
            elements: packets,
            bytes: input.frame_bytes,
        });

    g.bench_function("read", |b| {
        b.iter(|| {
            let mut r = reader(input.pcap);
            let mut n = 0u64;
            r.for_each(|f| n += f.is_ok() as u64).expect("clean end");
            black_box(n)
        })
    });

    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut tcp = 0u64;
            for f in &input.frames {
                tcp += decode::decode(black_box(f)).is_ok() as u64;
            }
            black_box(tcp)
        })
    });

    // Decode as the pipeline runs it, on the frame the reader has just copied into its
    // buffer; minus `read`, the cost of decoding with the bytes in cache. `decode` above
    // streams its frames from a buffer the size of the capture.
    g.bench_function("read_decode", |b| {
        b.iter(|| {
            let mut r = reader(input.pcap);
            let mut tcp = 0u64;
            r.for_each(|f| tcp += f.is_ok_and(|f| decode::decode(&f).is_ok()) as u64)
                .expect("clean end");
            black_box(tcp)
        })
    });

    // A fresh table per iteration, made and dropped outside the timed code.
    g.bench_function("flows_push", |b| {
        b.iter_batched(
            Flows::new,
            |mut flows| {
                for seg in &input.segments {
                    let _ = black_box(flows.push(seg));
                }
                flows
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("classify", |b| {
        b.iter_batched(
            || vec![Analysis::default(); input.incarnations],
            |mut analyses| {
                for (seg, &(id, dir)) in input.segments.iter().zip(&input.conns) {
                    black_box(analyses[id as usize].analyze(dir, seg));
                }
                analyses
            },
            BatchSize::PerIteration,
        )
    });

    // The report is dropped outside the timed code, as the table is above.
    g.bench_function("analyze_reader", |b| {
        b.iter_with_large_drop(|| {
            pcapdiag::capture::analyze_reader(reader(input.pcap), &Default::default(), &mut |_| {})
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = stages
}
criterion_main!(benches);
