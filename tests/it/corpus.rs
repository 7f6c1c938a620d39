//! The real binary on public capture corpora (`../shared/corpus`, see its README): the
//! tcpdump test-suite captures (many deliberately malformed) and the pcapng conformance
//! files of pcapng-test-generator. Skipped, with a message, when the folder is absent; a
//! failure when it is absent under `CI=true` ([`require`]).
//!
//! Every capture: no panic, no signal, no hang (10 s each), exit 0 or 1, valid JSON, and
//! every frame accounted for. The pcapng conformance files: the block counts their
//! `testNNN.txt` states (packets, sections, interfaces, other blocks), and the frame count
//! and the first and last packet times tshark reads (the descriptions state no
//! timestamps), from a golden file of tshark's output:
//! `testdata/golden/pcapng-conformance-times.tsv`. `UPDATE_GOLDEN=1 cargo test --test it
//! corpus::` rewrites it from tshark (Debian package), which the test otherwise never runs.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Wall-clock limit for one capture.
const LIMIT: Duration = Duration::from_secs(10);

/// What one run of the binary gave.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
    timed_out: bool,
}

/// Runs `cmd` with a wall-clock limit, killing it when the limit passes.
fn run_limited(mut cmd: Command, limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    // Drain both pipes while waiting, so a large report cannot block the child.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: started.elapsed(),
        timed_out,
    }
}

/// `f(item)` for every item, on a few threads; the results in input order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Runs `pcapdiag analyze --json FILE` and checks what must hold for any input. Returns the
/// capture's report (if the file was read as a capture) or the problems found.
fn analyze_checked(path: &Path) -> Result<Option<Value>, String> {
    let mut cmd = pcapdiag();
    cmd.args(["analyze", "--json"]).arg(path);
    let run = run_limited(cmd, LIMIT);
    let name = path.display();
    let stderr = String::from_utf8_lossy(&run.stderr);
    if run.timed_out {
        return Err(format!("{name}: killed after {:?} (hang?)", run.elapsed));
    }
    match run.code {
        Some(0 | 1) => {}
        Some(c) => return Err(format!("{name}: exit code {c}: {stderr}")),
        None => return Err(format!("{name}: killed by a signal: {stderr}")),
    }
    let mut v: Value = serde_json::from_slice(&run.stdout)
        .map_err(|e| format!("{name}: stdout is not JSON ({e}): {stderr}"))?;
    let captures = v["captures"].as_array().map_or(0, Vec::len);
    let unreadable = v["unreadable"].as_array().map_or(0, Vec::len);
    if captures + unreadable != 1 {
        return Err(format!(
            "{name}: {captures} captures and {unreadable} unreadable files reported for one input"
        ));
    }
    if unreadable == 1 {
        if run.code != Some(1) {
            return Err(format!("{name}: unreadable but exit code {:?}", run.code));
        }
        return Ok(None);
    }
    let c = v["captures"][0].take();
    let f = &c["frames"];
    let n = |v: &Value| {
        v.as_u64()
            .ok_or_else(|| format!("{name}: not a count: {v}"))
    };
    let (read, analysed, skipped) = (n(&f["read"])?, n(&f["analysed"])?, n(&f["skipped"])?);
    if analysed + skipped != read {
        return Err(format!(
            "{name}: analysed {analysed} + skipped {skipped} != read {read}"
        ));
    }
    let mut by_reason = 0;
    for r in c["skipped_by_reason"].as_array().into_iter().flatten() {
        by_reason += n(&r["frames"])?;
    }
    if by_reason != skipped {
        return Err(format!(
            "{name}: skipped by reason {by_reason} != skipped {skipped}"
        ));
    }
    Ok(Some(c))
}

/// Every tcpdump test-suite capture and every pcapng conformance file: exit 0 or 1, never
/// a panic, a signal or a hang; valid JSON; every frame accounted for.
#[test]
fn test_corpus_never_panics_hangs_or_loses_frames() {
    let Some(dir) = shared_corpus() else { return };
    let caps = files_under(&dir, &[".pcap", ".pcapng", ".cap", ".pcap.gz"]);
    assert!(
        caps.len() >= 800,
        "corpus incomplete: {} captures",
        caps.len()
    );
    let started = Instant::now();
    let results = parallel(&caps, |p| analyze_checked(p));
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let read = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    println!(
        "{} captures in {:?}: {read} read as captures, {} failures",
        caps.len(),
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} captures failed:\n{}",
        failures.len(),
        caps.len(),
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The block counts of a pcapng-test-generator `testNNN.txt` ("Block counts:" section,
/// one `\tTYPE: N` line per block type).
fn block_counts(txt: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(txt).unwrap_or_else(|e| panic!("{}: {e}", txt.display()));
    text.lines()
        .skip_while(|l| !l.starts_with("Block counts:"))
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// tshark's view of a file: (packet records, first and last packet time in ns). Custom
/// blocks are records without an interface; simple packet blocks have no time.
fn tshark_view(path: &Path) -> Result<(u64, Option<i64>, Option<i64>), String> {
    let mut cmd = Command::new("tshark");
    cmd.env(
        "WIRESHARK_CONFIG_DIR",
        std::env::temp_dir().join("pcapdiag-no-tshark-conf"),
    )
    .args(["-n", "-r"])
    .arg(path)
    .args([
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.interface_id",
    ]);
    let run = run_limited(cmd, Duration::from_secs(30));
    if run.code != Some(0) {
        return Err(format!(
            "{}: tshark failed: {}",
            path.display(),
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&run.stdout);
    let (mut packets, mut times) = (0, Vec::new());
    for line in text.lines() {
        let (time, iface) = line.split_once('\t').unwrap_or((line, ""));
        if iface.is_empty() {
            continue;
        }
        packets += 1;
        if !time.is_empty() {
            times.push(epoch_ns(time).ok_or_else(|| format!("bad time {time:?}"))?);
        }
    }
    Ok((packets, times.first().copied(), times.last().copied()))
}

/// "1340954905.298858000" → nanoseconds, exactly (no float).
fn epoch_ns(s: &str) -> Option<i64> {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    Some(sec.parse::<i64>().ok()? * 1_000_000_000 + frac.get(..9)?.parse::<i64>().ok()?)
}

fn tshark_installed() -> bool {
    Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// tshark's view of each conformance file, (frames, first time, last time), keyed by the
/// path under `pcapng-test-generator/`: from the golden file, or from tshark itself
/// (rewriting the golden file) with `UPDATE_GOLDEN=1`.
fn tshark_golden(
    dir: &Path,
    caps: &[PathBuf],
) -> BTreeMap<String, (u64, Option<i64>, Option<i64>)> {
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden/pcapng-conformance-times.tsv");
    let key = |cap: &Path| cap.strip_prefix(dir).unwrap().display().to_string();
    let opt = |v: Option<i64>| v.map_or(String::new(), |t| t.to_string());
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        assert!(
            tshark_installed(),
            "UPDATE_GOLDEN needs tshark (Debian package)"
        );
        let views = parallel(caps, |cap| tshark_view(cap));
        let mut out = String::from(
            "# file\tframes\tfirst_ns\tlast_ns (tshark -T fields -e frame.time_epoch)\n",
        );
        for (cap, view) in caps.iter().zip(views) {
            let (frames, first, last) = view.unwrap();
            out += &format!("{}\t{frames}\t{}\t{}\n", key(cap), opt(first), opt(last));
        }
        std::fs::write(&golden, out).unwrap();
    }
    let text = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_GOLDEN=1 with tshark writes it)",
            golden.display()
        )
    });
    let int = |s: &str| (!s.is_empty()).then(|| s.parse::<i64>().unwrap());
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                (f[1].parse().unwrap(), int(f[2]), int(f[3])),
            )
        })
        .collect()
}

/// The pcapng conformance files: packets (EPB + SPB), sections, interfaces and other
/// blocks as the description counts them; simple packet blocks counted as skipped for
/// lack of a timestamp; and frames, first and last packet time as tshark reads them.
#[test]
fn test_pcapng_conformance_counts_and_times() {
    let Some(dir) = shared_corpus() else { return };
    let dir = dir.join("pcapng-test-generator");
    let caps = files_under(&dir, &[".pcapng"]);
    assert!(caps.len() >= 40, "conformance files missing: {caps:?}");
    let tshark = tshark_golden(&dir, &caps);
    let results = parallel(&caps, |cap| -> Result<(), String> {
        let name = cap.display();
        let want = block_counts(&cap.with_extension("txt"));
        let count = |k: &str| want.get(k).copied().unwrap_or(0);
        let rep = analyze_checked(cap)?.ok_or_else(|| format!("{name}: not read"))?;
        let got = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
        let mut problems = Vec::new();
        let expect = |problems: &mut Vec<String>, what: &str, got: u64, want: u64| {
            if got != want {
                problems.push(format!("{name}: {what}: pcapdiag {got}, expected {want}"));
            }
        };
        expect(
            &mut problems,
            "packets (EPB + SPB)",
            got(&rep["frames"]["read"]),
            count("EPB") + count("SPB"),
        );
        expect(
            &mut problems,
            "sections (SHB)",
            got(&rep["blocks"]["sections"]),
            count("SHB"),
        );
        expect(
            &mut problems,
            "interfaces (IDB)",
            got(&rep["blocks"]["interfaces"]),
            count("IDB"),
        );
        expect(
            &mut problems,
            "other blocks (NRB, ISB, CB, DCB)",
            got(&rep["blocks"]["other_blocks"]) + got(&rep["blocks"]["unknown_blocks"]),
            count("NRB") + count("ISB") + count("CB") + count("DCB"),
        );
        let no_ts = rep["skipped_by_reason"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["reason"] == "no_timestamp")
            .map_or(0, |r| got(&r["frames"]));
        expect(
            &mut problems,
            "skipped for no timestamp (SPB)",
            no_ts,
            count("SPB"),
        );
        if count("EPB") == 0 && !(rep["first_ts"].is_null() && rep["last_ts"].is_null()) {
            problems.push(format!(
                "{name}: no timestamped packet, yet first/last_ts set"
            ));
        }
        let key = cap.strip_prefix(&dir).unwrap().display().to_string();
        match tshark.get(&key) {
            None => problems.push(format!(
                "{name}: not in the tshark golden file (UPDATE_GOLDEN=1 with tshark)"
            )),
            Some(&(frames, first, last)) => {
                expect(
                    &mut problems,
                    "frames (tshark)",
                    got(&rep["frames"]["read"]),
                    frames,
                );
                for (what, ours, theirs) in [
                    ("first_ts", rep["first_ts"].as_i64(), first),
                    ("last_ts", rep["last_ts"].as_i64(), last),
                ] {
                    if ours != theirs {
                        problems.push(format!(
                            "{name}: {what}: pcapdiag {ours:?}, tshark {theirs:?}"
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    });
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn test_epoch_ns_parses_exactly() {
    assert_eq!(
        epoch_ns("1340954905.298858000"),
        Some(1_340_954_905_298_858_000)
    );
    assert_eq!(epoch_ns("0.000000000"), Some(0));
    assert_eq!(epoch_ns("12.5"), Some(12_500_000_000));
    assert_eq!(epoch_ns("x"), None);
}
