//! Writes a SYN flood: N SYNs from distinct source 4-tuples to one server, none answered.
//! For measuring memory under adversarial traffic (`benches/bench.sh --flood`).
//!
//! Usage: `synflood N OUT.pcap`

use pcapdiag::synth::{Encap, Flags, PcapOptions, PcapWriter, TcpSpec, frame_into};
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out)) = (args.get(1).and_then(|s| s.parse::<u64>().ok()), args.get(2))
    else {
        eprintln!("usage: synflood N OUT.pcap");
        std::process::exit(2);
    };
    let file = BufWriter::new(std::fs::File::create(out)?);
    let mut w = PcapWriter::new(
        file,
        PcapOptions {
            nanos: true,
            ..PcapOptions::default()
        },
    )?;
    let mut buf = Vec::with_capacity(128);
    for i in 0..n {
        // 2^16 ports per source address, sources spread over 10.0.0.0/8.
        let host = (i >> 16) as u32;
        let spec = TcpSpec {
            src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (host & 0x00ff_ffff))),
            dst: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            sport: (i & 0xffff) as u16,
            dport: 80,
            seq: (i as u32).wrapping_mul(2_654_435_761),
            flags: Flags::SYN,
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
    Ok(())
}
