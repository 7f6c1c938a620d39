//! The floor for the benchmark: count the packet records of a capture with pcap-parser's
//! streaming reader (1 MiB buffer, `next`/`consume`/`refill`) and do nothing else.
//!
//! ```text
//! cargo run --release --example count -- FILE
//! ```
//! Prints `packets <n> bytes <file bytes read> seconds <s>` on one line.

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fs::File;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: count FILE");
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("count: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reader = match pcap_parser::create_reader(1 << 20, file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("count: {path}: not a capture ({e:?})");
            return ExitCode::FAILURE;
        }
    };
    let mut packets = 0u64;
    loop {
        match reader.next() {
            Ok((len, block)) => {
                if matches!(
                    block,
                    PcapBlockOwned::Legacy(_)
                        | PcapBlockOwned::NG(Block::EnhancedPacket(_) | Block::SimplePacket(_))
                ) {
                    packets += 1;
                }
                reader.consume(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = reader.refill() {
                    eprintln!("count: {path}: {e:?}");
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("count: {path}: stopped after {packets} packets: {e:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "packets {packets} bytes {} seconds {:.3}",
        reader.consumed(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
