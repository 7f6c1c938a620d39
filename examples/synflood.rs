//! Writes a SYN flood: N SYNs from distinct source 4-tuples to one server, none answered
//! (`synth::write_syn_flood`). For measuring memory under adversarial traffic
//! (`benches/bench.sh --flood`).
//!
//! Usage: `synflood N OUT.pcap`

use std::io::BufWriter;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out)) = (args.get(1).and_then(|s| s.parse::<u64>().ok()), args.get(2))
    else {
        eprintln!("usage: synflood N OUT.pcap");
        std::process::exit(2);
    };
    // Flushed by write_syn_flood: a failed last write (disk full) is an error, not a
    // silently short capture.
    synth::write_syn_flood(n, BufWriter::new(std::fs::File::create(out)?))?;
    Ok(())
}
