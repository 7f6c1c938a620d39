//! Synthetic captures whose ground truth is known: the test bench of pcapdiag's stages.
//!
//! A crate of its own, a dev-dependency of pcapdiag's tests, benches and examples; it does
//! not depend on pcapdiag, so the truth it records is independent of the analyzer, and its
//! type names do not shadow the analyzer's ([`TrueCause`], not `Cause`; [`RsClock`], not
//! `ClockModel`).
//!
//! Three layers, each usable alone: [`writer`] writes pcap and pcapng files (any link type,
//! timestamp resolution, offset, byte order, snaplen); [`frame`] renders one typed TCP
//! segment under an encapsulation (Ethernet, VLAN, Linux cooked, raw IP, tunnels, ...);
//! [`scenario`] simulates client connections with chosen anomalies and records the truth of
//! each attempt. [`write_capture`] streams a scenario to a file in constant memory.
//! [`pair`] simulates the same clients through a NAT and writes two captures (client side
//! and real-server side, on two clocks) with the truth of every attempt.
//! Everything is deterministic for a given seed, and time is integer nanoseconds throughout.
#![forbid(unsafe_code)]

pub mod frame;
pub mod pair;
pub mod rng;
pub mod scenario;
pub mod writer;

pub use frame::{
    ControlBits, Encap, OtherSpec, TcpSpec, frame, frame_into, linktype, mac_of, other_frame,
};
pub use pair::{
    NatTruth, PairConfig, PairKind, PairScenario, PairStats, PairTruth, PairWeights, PrevConn,
    Role, RsClock, SynFate, SynTruth, TrueCause, TwCheck, generate_pair, write_pair,
};
pub use rng::Rng;
pub use scenario::{
    AttemptTruth, Closer, Generator, Kind, Scenario, ScenarioConfig, StaleResend, SynSchedule,
    Weights, generate,
};
pub use writer::{Endian, PcapOptions, PcapWriter, PcapngWriter};

use std::io::{self, Write};

/// Writes a SYN flood into `out` (nanosecond pcap): `n` SYNs, 1 µs apart, from distinct
/// client 4-tuples (65,536 ports per source address, sources across 10.0.0.0/8) to
/// 192.168.0.1:80, none answered. Each SYN is a new connection attempt: the adversarial
/// case for memory. Returns `out`, flushed.
pub fn write_syn_flood<W: Write>(n: u64, out: W) -> io::Result<W> {
    let mut w = PcapWriter::new(
        out,
        PcapOptions {
            nanos: true,
            ..PcapOptions::default()
        },
    )?;
    let mut buf = Vec::with_capacity(128);
    for i in 0..n {
        let host = (i >> 16) as u32;
        let spec = TcpSpec {
            src: std::net::IpAddr::from((0x0a00_0000 | (host & 0x00ff_ffff)).to_be_bytes()),
            dst: std::net::IpAddr::from([192, 168, 0, 1]),
            sport: (i & 0xffff) as u16,
            dport: 80,
            seq: (i as u32).wrapping_mul(2_654_435_761),
            flags: ControlBits::SYN,
            window: 64240,
            mss: Some(1460),
            sack_perm: true,
            ts: Some((i as u32, 0)),
            wscale: Some(7),
            ..TcpSpec::default()
        };
        frame_into(&Encap::Ethernet, &spec, &mut buf);
        w.write(1_700_000_000_000_000_000 + i * 1_000, &buf)?;
    }
    let mut out = w.into_inner();
    out.flush()?;
    Ok(out)
}

/// The container format [`write_capture`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic pcap, little-endian, snaplen 262144.
    Pcap { nanos: bool },
    /// pcapng with one interface of this `if_tsresol`.
    Pcapng { tsresol: u8 },
}

/// What [`write_capture`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub packets: u64,
    pub attempts: u64,
    /// Bytes of frames (not of the file).
    pub frame_bytes: u64,
}

/// Streams the scenario of `cfg` as a capture into `out`, and its truth as TSV (with a
/// header line) into `truth` if given. Holds only the attempts in flight in memory.
/// `out` should be buffered.
pub fn write_capture<W: Write>(
    cfg: &ScenarioConfig,
    encap: &Encap,
    format: CaptureFormat,
    out: W,
    mut truth: Option<&mut dyn Write>,
) -> io::Result<WriteStats> {
    enum Sink<W: Write> {
        Pcap(PcapWriter<W>),
        Ng(PcapngWriter<W>),
    }
    let lt = linktype(encap);
    let mut sink = match format {
        CaptureFormat::Pcap { nanos } => {
            let opts = PcapOptions {
                linktype: lt,
                nanos,
                ..PcapOptions::default()
            };
            Sink::Pcap(PcapWriter::new(out, opts)?)
        }
        CaptureFormat::Pcapng { tsresol } => {
            let mut w = PcapngWriter::new(out)?;
            w.add_interface(lt, 262_144, tsresol, None)?;
            Sink::Ng(w)
        }
    };
    if let Some(t) = truth.as_mut() {
        writeln!(t, "{}", AttemptTruth::TSV_HEADER)?;
    }
    let mut stats = WriteStats::default();
    let mut generator = Generator::new(cfg);
    let mut buf = Vec::with_capacity(2048);
    let mut flush_truth = |g: &mut Generator, stats: &mut WriteStats| -> io::Result<()> {
        for row in g.drain_truth() {
            stats.attempts += 1;
            if let Some(t) = truth.as_mut() {
                row.write_tsv(&mut **t)?;
            }
        }
        Ok(())
    };
    while let Some((ts, spec)) = generator.next() {
        frame_into(encap, &spec, &mut buf);
        match &mut sink {
            Sink::Pcap(w) => w.write(ts, &buf)?,
            Sink::Ng(w) => w.write(0, ts, &buf)?,
        }
        stats.packets += 1;
        stats.frame_bytes += buf.len() as u64;
        // Truth rows are released as time passes; draining now and then keeps them few.
        if stats.packets % 4096 == 0 {
            flush_truth(&mut generator, &mut stats)?;
        }
    }
    flush_truth(&mut generator, &mut stats)?;
    match sink {
        Sink::Pcap(w) => w.into_inner().flush()?,
        Sink::Ng(w) => w.into_inner().flush()?,
    }
    Ok(stats)
}

#[cfg(test)]
mod tests;
