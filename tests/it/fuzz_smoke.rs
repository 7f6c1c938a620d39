//! A short, deterministic fuzz run in every `cargo test`: the same harnesses as the
//! cargo-fuzz targets (`pcapdiag::fuzzing`), on seeded mutations of every capture under
//! `testdata/` and every fuzz regression: bit flips, interesting bytes, length and time
//! fields overwritten with huge or zero values, truncation, duplicated and removed ranges,
//! and two seeds spliced. Every mutated input that reads must also account for each frame:
//! analysed + skipped = read.
//!
//! A failing input is written to `target/tmp/fuzz-smoke/` and named in the failure, with
//! the seed file and iteration; it can then go into `testdata/fuzz-regressions/`. An
//! execution that runs longer than [`HANG_SECS`] is written out the same way and the test
//! process aborts. `FUZZ_SMOKE_SEED` and `FUZZ_SMOKE_RUNS` (a multiplier) vary and lengthen
//! the run locally; CI uses the defaults. The real fuzzing is cargo-fuzz (README "Fuzzing").

use crate::util::*;
use pcapdiag::fuzzing;
use pcapdiag::read::CaptureReader;
use std::io::{Cursor, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use synth::Rng;

/// Inputs through the analyze and postmortem harnesses (each builds the report of the
/// input paired with itself; between them they render it three ways), and through the
/// decode harness, with the defaults.
const ANALYZE_RUNS: u64 = 4_000;
const DECODE_RUNS: u64 = 1_000_000;
/// Seeds are cut to this many bytes at a record boundary, as the fuzzer's `-max_len`.
const MAX_SEED: usize = 64 << 10;
/// Frames taken from each seed capture for the decode harness.
const FRAMES_PER_SEED: usize = 64;
/// One execution longer than this is a hang (debug build; the slowest input takes under 0.2 s).
const HANG_SECS: u64 = 20;
const DEFAULT_SEED: u64 = 0x5eed_f022_cafe_0001;

fn master_seed() -> u64 {
    std::env::var("FUZZ_SMOKE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

fn runs(default: u64) -> u64 {
    let mult = std::env::var("FUZZ_SMOKE_RUNS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1);
    default * mult
}

struct Seed {
    name: String,
    bytes: Vec<u8>,
}

/// Every capture under `testdata/` (.pcap, .pcapng, .gz), every fuzz regression, and a
/// gzip-compressed copy of the smallest capture (so the gzip path is mutated too).
fn seeds() -> Vec<Seed> {
    let mut paths: Vec<PathBuf> = [".pcap", ".pcapng", ".gz"]
        .iter()
        .flat_map(|s| captures_with(s))
        .collect();
    let regressions = testdata("fuzz-regressions");
    paths.extend(
        std::fs::read_dir(&regressions)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file()),
    );
    paths.sort();
    paths.dedup();
    let mut seeds: Vec<Seed> = paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            let name = p
                .strip_prefix(testdata(""))
                .unwrap_or(p)
                .display()
                .to_string();
            Seed {
                name,
                bytes: cut_to_record(bytes, MAX_SEED),
            }
        })
        .collect();
    assert!(seeds.len() >= 20, "seeds missing under testdata/");
    let smallest = seeds
        .iter()
        .filter(|s| s.name.ends_with(".pcap"))
        .min_by_key(|s| s.bytes.len())
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&smallest.bytes).unwrap();
    let gz = Seed {
        name: format!("{}.gz (made by the test)", smallest.name),
        bytes: gz.finish().unwrap(),
    };
    seeds.push(gz);
    seeds
}

/// Offsets of the 32-bit header fields of a capture's records (lengths, times, interface
/// ids), found by walking classic pcap records or pcapng blocks until the walk stops
/// making sense; and the offsets where records end.
fn fields(b: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let (mut fields, mut ends) = (Vec::new(), Vec::new());
    let u32_at = |at: usize, le: bool| -> Option<usize> {
        let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        } as usize)
    };
    let Some(magic) = b.get(..4) else {
        return (fields, ends);
    };
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xa1, 0xb2, 0x3c, 0x4d] => {
            let le = magic[0] != 0xa1;
            fields.extend([16, 20]); // snaplen, linktype
            let mut at = 24;
            ends.push(at);
            while let Some(caplen) = u32_at(at + 8, le) {
                fields.extend([at, at + 4, at + 8, at + 12]);
                at += 16 + caplen;
                if at > b.len() {
                    break;
                }
                ends.push(at);
            }
        }
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut at = 0;
            let mut le = true;
            while at + 12 <= b.len() {
                if b[at..at + 4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                    le = b[at + 8..at + 12] == [0x4d, 0x3c, 0x2b, 0x1a];
                }
                let (Some(kind), Some(len)) = (u32_at(at, le), u32_at(at + 4, le)) else {
                    break;
                };
                fields.extend([at, at + 4]);
                if kind == 6 {
                    // Enhanced packet: interface, time high and low, captured and original length.
                    fields.extend([at + 8, at + 12, at + 16, at + 20, at + 24]);
                }
                if len < 12 || len % 4 != 0 {
                    break;
                }
                at += len;
                if at > b.len() {
                    break;
                }
                ends.push(at);
            }
        }
        _ => {}
    }
    fields.retain(|&f| f + 4 <= b.len());
    (fields, ends)
}

/// A seed longer than `max` is cut at its last record end within `max` (or at `max`).
fn cut_to_record(mut b: Vec<u8>, max: usize) -> Vec<u8> {
    if b.len() > max {
        let (_, ends) = fields(&b);
        let cut = ends.into_iter().filter(|&e| e <= max).max().unwrap_or(max);
        b.truncate(cut);
    }
    b
}

const INTERESTING_8: [u8; 4] = [0, 0xff, 0x7f, 0x80];
const INTERESTING_32: [u32; 12] = [
    0,
    1,
    0xffff_ffff,
    0xffff_fffe,
    0x7fff_ffff,
    0x8000_0000,
    0xffff,
    0x1_0000,
    0x0400_0000, // the reader's 64 MiB record limit
    0x0400_0001,
    12,
    0x3fff_fff0,
];

/// Applies one to four mutations; returns what was done, for the failure message.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) -> Vec<String> {
    let mut done = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let len = data.len() as u64;
        let at = rng.below(len.max(1)) as usize;
        match rng.below(8) {
            0 if !data.is_empty() => {
                let bit = rng.below(8);
                data[at] ^= 1 << bit;
                done.push(format!("flip bit {bit} at {at}"));
            }
            1 if !data.is_empty() => {
                let v = INTERESTING_8[rng.below(4) as usize];
                data[at] = v;
                done.push(format!("byte {at} = {v:#x}"));
            }
            2 | 3 => {
                // A 32-bit header field (or any offset), either byte order.
                let (f, _) = fields(data);
                let at = if !f.is_empty() && rng.below(4) != 0 {
                    f[rng.below(f.len() as u64) as usize]
                } else {
                    at
                };
                if at + 4 <= data.len() {
                    let v = INTERESTING_32[rng.below(INTERESTING_32.len() as u64) as usize];
                    let w = if rng.below(2) == 0 {
                        v.to_le_bytes()
                    } else {
                        v.to_be_bytes()
                    };
                    data[at..at + 4].copy_from_slice(&w);
                    done.push(format!("u32 at {at} = {v:#x}"));
                }
            }
            4 => {
                data.truncate(at);
                done.push(format!("truncate at {at}"));
            }
            5 if !data.is_empty() => {
                let n = rng.range(1, (len - at as u64).min(4096)) as usize;
                let copy = data[at..at + n].to_vec();
                let to = rng.below(len + 1) as usize;
                data.splice(to..to, copy);
                done.push(format!("duplicate {at}..{} to {to}", at + n));
            }
            6 if !data.is_empty() => {
                let n = rng.range(1, (len - at as u64).min(4096)) as usize;
                data.drain(at..at + n);
                done.push(format!("remove {at}..{}", at + n));
            }
            7 => {
                // Splice: this seed's head, the other's tail, preferably at record ends.
                let (_, mine) = fields(data);
                let (_, theirs) = fields(other);
                let pick = |rng: &mut Rng, ends: &[usize], len: usize| {
                    if !ends.is_empty() && rng.below(2) == 0 {
                        ends[rng.below(ends.len() as u64) as usize]
                    } else {
                        rng.below(len as u64 + 1) as usize
                    }
                };
                let head = pick(rng, &mine, data.len());
                let tail = pick(rng, &theirs, other.len());
                data.truncate(head);
                data.extend_from_slice(&other[tail..]);
                done.push(format!("splice: head ..{head} + other's {tail}.."));
            }
            _ => {}
        }
    }
    done
}

/// The input being executed, for the hang watchdog.
#[derive(Default)]
struct Current {
    started: Option<Instant>,
    iter: u64,
    label: String,
    input: Vec<u8>,
}

fn write_failure(target: &str, seed: u64, iter: u64, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{target}-seed{seed:#x}-iter{iter}.bin"));
    std::fs::write(&path, input).unwrap();
    path
}

/// Starts a thread that aborts the process, after writing the input out, when one
/// execution takes longer than [`HANG_SECS`].
fn watchdog(target: &'static str, seed: u64) -> Arc<Mutex<Current>> {
    let current = Arc::new(Mutex::new(Current::default()));
    let watched = Arc::downgrade(&current);
    std::thread::spawn(move || {
        while let Some(current) = watched.upgrade() {
            {
                let c = current.lock().unwrap_or_else(|e| e.into_inner());
                let limit = Duration::from_secs(HANG_SECS);
                if c.started.is_some_and(|t| t.elapsed() > limit) {
                    let path = write_failure(target, seed, c.iter, &c.input);
                    // Straight to stderr: the test harness's capture is lost on abort.
                    let _ = writeln!(
                        std::io::stderr(),
                        "fuzz_smoke {target}: HANG (> {HANG_SECS} s) on iteration {}, \
                         seed {seed:#x}; input written to {}",
                        c.label,
                        path.display()
                    );
                    std::process::abort();
                }
            }
            drop(current);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    current
}

/// The run stops collecting after this many failing inputs.
const MAX_FAILURES: usize = 10;

/// Runs `harness` on every seed, then on `runs` mutated inputs; fails listing the inputs
/// that panicked or broke an invariant.
fn smoke(
    target: &'static str,
    seeds: &[Seed],
    runs: u64,
    harness: impl Fn(&[u8]) -> Result<(), String>,
) {
    let seed = master_seed();
    let current = watchdog(target, seed);
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let t0 = Instant::now();
    // Each seed once as is, then mutations.
    let total = seeds.len() as u64 + runs;
    for iter in 0..total {
        let mut rng = Rng::new(seed ^ iter.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (input, label) = match usize::try_from(iter).ok().and_then(|i| seeds.get(i)) {
            Some(s) => (s.bytes.clone(), format!("{iter} ({}, unmutated)", s.name)),
            None => {
                let s = &seeds[rng.below(seeds.len() as u64) as usize];
                let other = &seeds[rng.below(seeds.len() as u64) as usize];
                let mut input = s.bytes.clone();
                let done = mutate(&mut rng, &mut input, &other.bytes);
                let label = format!(
                    "{iter} ({}: {}; other {})",
                    s.name,
                    done.join(", "),
                    other.name
                );
                (input, label)
            }
        };
        {
            let mut c = current.lock().unwrap();
            c.started = Some(Instant::now());
            c.iter = iter;
            c.label.clone_from(&label);
            c.input.clone_from(&input);
        }
        let t = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| harness(&input)));
        let took = t.elapsed();
        current.lock().unwrap().started = None;
        if took > slowest.0 {
            slowest = (took, label.clone());
        }
        let problem = match result {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(p) => p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        };
        let path = write_failure(target, seed, iter, &input);
        failures.push(format!(
            "iteration {label}, seed {seed:#x}: {problem}\n    input: {}",
            path.display()
        ));
        if failures.len() >= MAX_FAILURES {
            break;
        }
    }
    eprintln!(
        "fuzz_smoke {target}: {total} executions in {:.2?} (seed {seed:#x}); slowest {:.2?}: {}",
        t0.elapsed(),
        slowest.0,
        slowest.1
    );
    assert!(
        failures.is_empty(),
        "fuzz_smoke {target}: {} failing inputs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn test_fuzz_smoke_analyze() {
    let seeds = seeds();
    let (read, frames) = (AtomicU64::new(0), AtomicU64::new(0));
    smoke("analyze", &seeds, runs(ANALYZE_RUNS), |input| {
        // Both cargo-fuzz targets' harnesses: `analyze` (JSON, terminal table) and
        // `postmortem` (Markdown). They build the same report, so they must agree.
        let Some(f) = fuzzing::analyze_bytes(input) else {
            return Ok(());
        };
        let again = fuzzing::postmortem_bytes(input);
        if again != Some(f) {
            return Err(format!(
                "postmortem harness: frames {again:?}, analyze: {f:?}"
            ));
        }
        read.fetch_add(1, Relaxed);
        frames.fetch_add(f.read, Relaxed);
        if f.analysed + f.skipped != f.read {
            return Err(format!(
                "frames analysed {} + skipped {} != read {}",
                f.analysed, f.skipped, f.read
            ));
        }
        Ok(())
    });
    eprintln!(
        "fuzz_smoke analyze: {} inputs read as captures, {} frames in all",
        read.into_inner(),
        frames.into_inner()
    );
}

#[test]
fn test_fuzz_smoke_decode() {
    // The first frames of every seed capture, in the decode harness's input form.
    let mut frames = Vec::new();
    for s in seeds() {
        let Ok(mut reader) =
            CaptureReader::from_reader(&s.name, Box::new(Cursor::new(s.bytes.clone())))
        else {
            continue;
        };
        let mut n = 0;
        let _ = reader.for_each(|r| {
            if let Ok(f) = r
                && n < FRAMES_PER_SEED
            {
                n += 1;
                frames.push(Seed {
                    name: format!("{} frame {}", s.name, f.number),
                    bytes: fuzzing::decode_input(&f),
                });
            }
        });
    }
    assert!(frames.len() > 500, "only {} seed frames", frames.len());
    smoke("decode", &frames, runs(DECODE_RUNS), |input| {
        fuzzing::decode_bytes(input);
        Ok(())
    });
}
