//! The exports (CSV, Parquet, Markdown, HTML) on the lab's TIME_WAIT sample pair, through
//! the library as `main.rs` assembles the report: golden files for Markdown and CSV, the
//! tables read back with polars, and the HTML page loaded in headless Chromium.
//!
//! `UPDATE_GOLDEN=1 cargo test --test it exports::` rewrites the golden files, and
//! `docs/report.png` (the README's screenshot) when Chromium is installed.

use crate::util::{Succeed, require};
use pcapdiag::capture::{self, Options};
use pcapdiag::report::{self, Report, frames};
use pcapdiag::run::{self, Layout};
use pcapdiag::units::utc;
use pcapdiag::verdict::Cause;
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CLIENT: &str = "testdata/lab/rs_timewait.client.pcap";
const RS: &str = "testdata/lab/rs_timewait.rs.pcap";
const SLOW_NS: i64 = capture::DEFAULT_SLOW_NS;
const CHROMIUM: &str = "/usr/bin/chromium";

/// The report of `pcapdiag analyze CLIENT RS`, built as `main.rs` builds it. Paths are
/// relative to the crate root (the test's working directory), so the outputs name the
/// files the same way on every machine.
fn sample_report() -> Report {
    let client = capture::analyze_file(Path::new(CLIENT), &Options::default());
    let rs = capture::analyze_file(Path::new(RS), &Options::default());
    run::assemble(
        vec![client, rs],
        Layout::Set(&[]),
        &Default::default(),
        SLOW_NS,
    )
}

/// The client capture alone, as `pcapdiag analyze CLIENT` builds it.
fn one_capture_report() -> Report {
    let client = capture::analyze_file(Path::new(CLIENT), &Options::default());
    run::assemble(vec![client], Layout::Set(&[]), &Default::default(), SLOW_NS)
}

fn golden(name: &str, actual: &[u8]) {
    let path = PathBuf::from("testdata/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_GOLDEN=1 cargo test --test it exports:: writes it)",
            path.display()
        )
    });
    if expected != actual {
        let (e, a) = (
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(actual),
        );
        let line = e
            .lines()
            .zip(a.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(e.lines().count().min(a.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n  golden: {:?}\n  output: {:?}\n(UPDATE_GOLDEN=1 cargo test --test it exports:: rewrites it)",
            path.display(),
            line + 1,
            e.lines().nth(line),
            a.lines().nth(line)
        );
    }
}

fn markdown(report: &Report) -> String {
    let mut out = Vec::new();
    report::markdown::write(report, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn html(report: &Report) -> String {
    let mut out = Vec::new();
    report::html::write(report, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The ladders the page must show, from the report's JSON (not from the renderer's own
/// functions): the attempts with a verdict other than `ok`, the costliest first (then by
/// pair and attempt), at most `html::LADDERS`; for each, its steps (evidence packets) and
/// its places (the distinct captures they are in). Also how many such attempts there are.
fn expected_ladders(report: &Report) -> (Vec<Ladder>, usize) {
    let json = serde_json::to_value(report).unwrap();
    let mut worst = Vec::new();
    for (p, pair) in json["pairs"].as_array().unwrap().iter().enumerate() {
        for a in pair["verdicts"]["attempts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if a["verdict"] == "ok" {
                continue;
            }
            let ev = a["evidence"].as_array().unwrap();
            let mut places: Vec<(&str, Option<u64>)> = ev
                .iter()
                .map(|e| (e["side"].as_str().unwrap(), e["capture"].as_u64()))
                .collect();
            places.sort_unstable();
            places.dedup();
            let key = (
                -a["delay_ns"].as_i64().unwrap(),
                p,
                a["attempt"].as_u64().unwrap(),
            );
            worst.push((
                key,
                Ladder {
                    steps: ev.len(),
                    places: places.len(),
                },
            ));
        }
    }
    worst.sort_by_key(|w| w.0);
    let all = worst.len();
    let shown = worst
        .into_iter()
        .take(report::html::LADDERS)
        .map(|w| w.1)
        .collect();
    (shown, all)
}

/// What one ladder diagram holds.
#[derive(Debug, PartialEq, Eq)]
struct Ladder {
    steps: usize,
    places: usize,
}

/// The ladder diagrams of a page (or of Chromium's DOM of it), in order: each `<svg
/// class="ladder"` element's text.
fn ladder_svgs(page: &str) -> Vec<&str> {
    page.split("<svg class=\"ladder\"")
        .skip(1)
        .map(|rest| rest.split("</svg>").next().unwrap())
        .collect()
}

/// What each ladder diagram of a page draws: a marker per step, a lifeline per place.
fn drawn_ladders(page: &str) -> Vec<Ladder> {
    ladder_svgs(page)
        .into_iter()
        .map(|svg| Ladder {
            steps: svg.matches("class=\"step\"").count(),
            places: svg.matches("class=\"lifeline\"").count(),
        })
        .collect()
}

// --- golden files ---

#[test]
fn test_golden_markdown() {
    golden("rs_timewait.md", markdown(&sample_report()).as_bytes());
}

#[test]
fn test_golden_csv() {
    let dir = tempfile::tempdir().unwrap();
    report::csv::write_dir(&sample_report(), dir.path()).unwrap();
    for name in ["attempts.csv", "events.csv", "summary.csv"] {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        golden(&format!("rs_timewait.{name}"), &bytes);
    }
}

/// Two runs give byte-identical outputs: nothing depends on the time of the run, hash
/// order or thread scheduling.
#[test]
fn test_outputs_are_deterministic() {
    let (a, b) = (sample_report(), sample_report());
    assert_eq!(markdown(&a), markdown(&b));
    assert_eq!(html(&a), html(&b));
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    report::csv::write_dir(&a, da.path()).unwrap();
    report::csv::write_dir(&b, db.path()).unwrap();
    for name in ["attempts.csv", "events.csv", "summary.csv"] {
        assert_eq!(
            std::fs::read(da.path().join(name)).unwrap(),
            std::fs::read(db.path().join(name)).unwrap(),
            "{name}"
        );
    }
}

// --- the tables, read back ---

pub fn read_csv(path: &Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

fn i64s(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect()
}

fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// What a read-back attempts/events/summary table must hold, whatever the format.
fn check_tables(report: &Report, attempts: &DataFrame, events: &DataFrame, summary: &DataFrame) {
    let v = report.pairs[0].verdicts.as_ref().unwrap();
    let client = &report.captures[0];
    assert_eq!(attempts.height(), v.attempts.len());
    assert_eq!(attempts.height(), client.attempts.len());
    assert_eq!(
        i64s(attempts, "first_syn_ns"),
        v.attempts
            .iter()
            .map(|a| Some(a.first_syn_ts))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        i64s(attempts, "isn"),
        v.attempts
            .iter()
            .map(|a| Some(i64::from(a.isn.0)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        i64s(attempts, "setup_ns"),
        v.attempts.iter().map(|a| a.setup_ns).collect::<Vec<_>>()
    );
    assert_eq!(
        i64s(attempts, "delay_ns"),
        v.attempts
            .iter()
            .map(|a| Some(a.delay_ns))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strs(attempts, "verdict"),
        v.attempts
            .iter()
            .map(|a| Some(a.verdict.code().to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strs(attempts, "first_syn_utc"),
        v.attempts
            .iter()
            .map(|a| Some(utc(a.first_syn_ts)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strs(attempts, "client_port"),
        v.attempts
            .iter()
            .map(|a| Some(a.client.port.to_string()))
            .collect::<Vec<_>>()
    );
    // The first RS tuple, and the clock estimate the verdicts used.
    let p = report.pairs[0].pairing.as_ref().unwrap();
    for (i, a) in v.attempts.iter().enumerate() {
        let rs_port = i64s(attempts, "rs_client_port")[i];
        assert_eq!(
            rs_port,
            a.rs_tuples.first().map(|t| i64::from(t.client.port))
        );
        assert_eq!(
            i64s(attempts, "clock_offset_ns")[i],
            Some(p.clock.offset_at(a.first_syn_ts))
        );
    }
    // The slowest attempt's evidence frames, in both files.
    let worst = v
        .attempts
        .iter()
        .max_by_key(|a| (a.delay_ns, std::cmp::Reverse(a.attempt)))
        .unwrap();
    let row = worst.attempt as usize;
    let frames_on = |side| {
        worst
            .notes()
            .evidence
            .iter()
            .filter(|e| e.side == side)
            .map(|e| e.frame.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    use pcapdiag::verdict::Side;
    assert_eq!(
        strs(attempts, "evidence_client_frames")[row].as_deref(),
        Some(frames_on(Side::Client).as_str())
    );
    assert_eq!(
        strs(attempts, "evidence_rs_frames")[row].as_deref(),
        Some(frames_on(Side::Rs).as_str())
    );

    // Events: one row per flag of every flagged packet of both captures.
    let flags: usize = report
        .captures
        .iter()
        .flat_map(|c| &c.flagged_packets)
        .map(|p| p.flags.iter().count())
        .sum();
    assert_eq!(events.height(), flags);
    for cap in &report.captures {
        for f in &cap.flag_counts {
            let n = strs(events, "file")
                .iter()
                .zip(strs(events, "flag"))
                .filter(|(file, flag)| {
                    file.as_deref() == Some(cap.file.as_str()) && flag.as_deref() == Some(f.code)
                })
                .count();
            assert_eq!(n as u64, f.count, "{} {}", cap.file, f.code);
        }
    }

    // Summary: the verdict rows are the report's, and the latency percentiles the client
    // capture's (same nearest-rank definition).
    let section = strs(summary, "summary");
    let key = strs(summary, "key");
    let n = i64s(summary, "attempts");
    for r in &v.by_verdict {
        let i = (0..summary.height())
            .find(|&i| {
                section[i].as_deref() == Some("verdict")
                    && key[i].as_deref() == Some(r.verdict.code())
            })
            .unwrap_or_else(|| panic!("no summary row for {}", r.verdict.code()));
        assert_eq!(n[i], Some(r.attempts as i64));
        assert_eq!(i64s(summary, "delay_total_ns")[i], Some(r.delay_total_ns));
        assert_eq!(i64s(summary, "delay_max_ns")[i], Some(r.delay_max_ns));
    }
    let all = section
        .iter()
        .position(|s| s.as_deref() == Some("all"))
        .unwrap();
    let s = &client.setup;
    assert_eq!(n[all], Some(s.attempts as i64));
    assert_eq!(i64s(summary, "setup_p50_ns")[all], s.p50_ns);
    assert_eq!(i64s(summary, "setup_p90_ns")[all], s.p90_ns);
    assert_eq!(i64s(summary, "setup_p99_ns")[all], s.p99_ns);
    assert_eq!(i64s(summary, "setup_max_ns")[all], s.max_ns);
    // Every grouping covers every attempt exactly once.
    for sec in ["verdict", "real_server", "client_ip", "second"] {
        let total: i64 = (0..summary.height())
            .filter(|&i| section[i].as_deref() == Some(sec))
            .filter_map(|i| n[i])
            .sum();
        assert_eq!(total, attempts.height() as i64, "{sec}");
    }
    let slow_total: i64 = (0..summary.height())
        .filter(|&i| section[i].as_deref() == Some("verdict"))
        .filter_map(|i| i64s(summary, "slow")[i])
        .sum();
    assert_eq!(Some(slow_total), i64s(summary, "slow")[all]);
}

#[test]
fn test_csv_read_back_with_polars() {
    let report = sample_report();
    let dir = tempfile::tempdir().unwrap();
    report::csv::write_dir(&report, dir.path()).unwrap();
    let attempts = read_csv(&dir.path().join("attempts.csv"));
    let events = read_csv(&dir.path().join("events.csv"));
    let summary = read_csv(&dir.path().join("summary.csv"));
    check_tables(&report, &attempts, &events, &summary);
    // The columns are the documented ones, in order.
    let expect = frames::attempts(&report).unwrap();
    assert_eq!(attempts.get_column_names(), expect.get_column_names());
    assert_eq!(
        summary
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        frames::summary_columns()
    );
}

#[test]
fn test_parquet_read_back_with_polars() {
    let report = sample_report();
    let dir = tempfile::tempdir().unwrap();
    report::parquet::write_dir(&report, dir.path()).unwrap();
    let attempts = read_parquet(&dir.path().join("attempts.parquet"));
    let events = read_parquet(&dir.path().join("events.parquet"));
    let summary = read_parquet(&dir.path().join("summary.parquet"));
    check_tables(&report, &attempts, &events, &summary);
    // Parquet keeps the types: the whole tables come back equal.
    let mut t = frames::Tables::build(&report).unwrap();
    for (name, df) in t.named() {
        let back = read_parquet(&dir.path().join(format!("{name}.parquet")));
        assert!(back.equals_missing(df), "{name}.parquet differs");
    }
}

/// A field with a comma, a quote and a line break is quoted, quotes doubled (RFC 4180).
#[test]
fn test_csv_quoting_rfc4180() {
    let mut report = sample_report();
    report.captures[1].file = "rs \"b\", side\n2.pcap".into();
    let dir = tempfile::tempdir().unwrap();
    report::csv::write_dir(&report, dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    assert!(
        text.contains("\"rs \"\"b\"\", side\n2.pcap\","),
        "{text:.300}"
    );
    assert!(text.starts_with("pair,file,frame,ts_ns,ts_utc,"));
}

/// One capture: no RS columns, no clock, the verdicts inferred from the client side.
#[test]
fn test_one_capture_tables_and_markdown() {
    let report = one_capture_report();
    let t = frames::Tables::build(&report).unwrap();
    assert_eq!(t.attempts.height(), report.captures[0].attempts.len());
    for col in [
        "rs_client_ip",
        "rs_server_port",
        "clock_offset_ns",
        "evidence_rs_frames",
    ] {
        assert_eq!(
            t.attempts.column(col).unwrap().null_count(),
            t.attempts.height(),
            "{col}"
        );
    }
    let md = markdown(&report);
    assert!(md.contains("One capture: no NAT mapping"), "{md}");
    assert!(md.contains("inferred from the client side"), "{md}");
}

/// A report without verdicts (a library caller that only analysed) still gives the tables,
/// from the capture's attempts.
#[test]
fn test_tables_without_verdicts() {
    let mut report = one_capture_report();
    report.pairs[0].verdicts = None;
    let t = frames::Tables::build(&report).unwrap();
    assert_eq!(t.attempts.height(), report.captures[0].attempts.len());
    assert_eq!(
        t.attempts.column("verdict").unwrap().null_count(),
        t.attempts.height()
    );
    assert!(markdown(&report).contains("No verdicts"));
    assert!(html(&report).contains("<svg"));
}

#[test]
fn test_markdown_has_the_postmortem_content() {
    let report = sample_report();
    let md = markdown(&report);
    for want in [
        "### What happened",
        "### Causes",
        "### NAT mapping and clocks",
        "### What to do",
        "`rs_timewait_collision`",
        "RS clock = client clock",
        "real server `10.77.2.2:8080`",
        // The evidence of the worst attempt names frames in both files.
        "| `testdata/lab/rs_timewait.client.pcap` | 289 |",
        "| `testdata/lab/rs_timewait.rs.pcap` |",
        "--random-fully",
    ] {
        assert!(md.contains(want), "missing {want:?} in:\n{md}");
    }
}

// --- the HTML page ---

/// Values of every `src=` and `href=` attribute.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=", "href=", "xlink:href="] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let q = rest.chars().next().unwrap_or(' ');
            let v = if q == '"' || q == '\'' {
                rest[1..].split(q).next().unwrap_or("")
            } else {
                rest.split([' ', '>']).next().unwrap_or("")
            };
            out.push(v.to_string());
        }
    }
    out
}

#[test]
fn test_html_is_self_contained_with_three_charts() {
    let report = sample_report();
    let page = html(&report);
    assert!(page.starts_with("<!DOCTYPE html>"));
    for id in ["chart-latency", "chart-over-time", "chart-verdicts"] {
        let at = page
            .find(&format!("<figure id=\"{id}\">"))
            .unwrap_or_else(|| panic!("{id}"));
        assert!(
            page[at..].trim_start_matches(|c| c != '\n')[1..].starts_with("<svg "),
            "{id}"
        );
    }
    // The three charts, and a ladder per shown worst attempt.
    let (ladders, _) = expected_ladders(&report);
    assert!(!ladders.is_empty());
    assert_eq!(page.matches("<svg ").count(), 3 + ladders.len());
    assert_eq!(drawn_ladders(&page), ladders);
    // Bars, points and axis text were drawn.
    assert!(page.matches("<rect").count() > 10);
    assert!(page.matches("<circle").count() >= 40);
    assert!(page.contains("rs_timewait_collision"));
    // Nothing to fetch: no script, no external resource of any kind.
    assert!(!page.contains("<script"));
    assert!(!page.contains("<link"));
    assert!(!page.contains("@import"));
    assert!(!page.contains("url("));
    for l in links(&page) {
        assert!(
            !l.contains("http://") && !l.contains("https://") && !l.starts_with("//"),
            "external reference {l}"
        );
    }
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
}

/// Runs Chromium headless on `page` with `extra` flags; returns its standard output. No
/// network: every host name resolves to nothing, and the network log (NetLog) records
/// every URL request Chromium starts.
fn chromium(page: &Path, profile: &Path, extra: &[String]) -> String {
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The URLs of the requests the page itself started, from a Chromium NetLog: URL requests
/// whose initiator is the page's origin (`null`, the opaque origin of a `file://` page).
/// Chromium's own background requests (update checks, time sync) have no initiator
/// ("not an origin") and are not the page's.
fn page_requests(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).unwrap();
    // Chromium closes the JSON on exit; be lenient if it was cut short.
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("NetLog is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("NetLog constants name URL_REQUEST_START_JOB");
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| {
            let init = e["params"]["initiator"].as_str().unwrap_or("");
            init == "null" || init.starts_with("file:")
        })
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect()
}

/// Loads the page in a real browser: the three charts are in the rendered DOM, the
/// screenshot is not blank, and the page started no network request. The same check on a
/// control page with an external image proves that a request would have been seen.
#[test]
fn test_html_in_headless_chromium() {
    // Skipped without Chromium, except under CI.
    if !require(
        &format!("{CHROMIUM} (Debian package `chromium`)"),
        Path::new(CHROMIUM).exists(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let report = sample_report();
    std::fs::write(&page, html(&report)).unwrap();

    // The DOM after load, with its network log.
    let netlog = dir.path().join("netlog.json");
    let dom = chromium(
        &page,
        &dir.path().join("profile-dom"),
        &[
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
        ],
    );
    for id in ["chart-latency", "chart-over-time", "chart-verdicts"] {
        let at = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} not in DOM"));
        assert!(dom[at..].contains("<svg"), "{id} has no svg in the DOM");
    }
    // The three charts, then in the section of the worst attempts one ladder per shown
    // attempt, each with a lifeline per place and a marker per step.
    let (ladders, _) = expected_ladders(&report);
    assert!(!ladders.is_empty());
    assert_eq!(dom.matches("<svg").count(), 3 + ladders.len());
    let section = dom
        .split_once("<section id=\"worst-attempts\">")
        .expect("the worst attempts' section in the DOM")
        .1
        .split("</section>")
        .next()
        .unwrap();
    assert_eq!(section.matches("<svg").count(), ladders.len());
    assert_eq!(drawn_ladders(section), ladders);
    assert_eq!(
        section.matches("class=\"step\"").count(),
        ladders.iter().map(|l| l.steps).sum::<usize>()
    );
    assert!(dom.matches("<circle").count() >= 40);
    let requests = page_requests(&netlog);
    assert!(requests.is_empty(), "the page made requests: {requests:?}");

    // Control: a page with an external image is caught by the same check.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><img src=\"http://pcapdiag.invalid/x.png\"></body></html>",
    )
    .unwrap();
    let control_log = dir.path().join("control-netlog.json");
    chromium(
        &control,
        &dir.path().join("profile-control"),
        &[
            "--dump-dom".into(),
            format!("--log-net-log={}", control_log.display()),
        ],
    );
    assert_eq!(
        page_requests(&control_log),
        vec!["http://pcapdiag.invalid/x.png".to_string()]
    );

    // The screenshot: the right size, and charts drawn (many colours, and the verdict
    // colour of rs_timewait_collision present).
    let png_path = dir.path().join("shot.png");
    chromium(
        &page,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", png_path.display()),
            "--window-size=1280,2000".into(),
        ],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2000));
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| &p[..3])
        .collect();
    let mut colours: Vec<&[u8]> = pixels.clone();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "only {} colours: blank?", colours.len());
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(white < pixels.len() * 98 / 100, "almost all white");
    let red = html_colour(Cause::RsTimewaitCollision);
    assert!(
        pixels.iter().any(|p| *p == red),
        "no pixel in the colour of rs_timewait_collision"
    );
    // The README's picture of the report is this screenshot.
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::copy(&png_path, "docs/report.png").unwrap();
    }
}

/// On the lab's SYN-drop set (client, NAT box's `tcpdump -i any`, real server), each
/// ladder's lifelines run along the path: the client, the node, the server.
#[test]
fn test_html_ladders_of_a_set_run_client_node_server() {
    let files = [
        "testdata/lab/syn_drop.client.pcap",
        "testdata/lab/syn_drop.nat-any.pcap",
        "testdata/lab/syn_drop.rs.pcap",
    ];
    let caps = files
        .iter()
        .map(|f| capture::analyze_file(Path::new(f), &Options::default()))
        .collect();
    let report = run::assemble(caps, Layout::Set(&[]), &Default::default(), SLOW_NS);
    let page = html(&report);
    let (ladders, all) = expected_ladders(&report);
    assert!(
        all > report::html::LADDERS,
        "the lab's set has more than are shown"
    );
    assert!(
        page.contains(&format!(
            "<h3>Worst attempts ({} of {all})</h3>",
            report::html::LADDERS
        )),
        "the heading says how many are not shown"
    );
    assert_eq!(drawn_ladders(&page), ladders);
    for svg in ladder_svgs(&page) {
        let places: Vec<&str> = svg
            .split("class=\"place\"")
            .skip(1)
            .map(|t| t.split_once('>').unwrap().1.split('<').next().unwrap())
            .collect();
        assert_eq!(places, ["client", "syn_drop.nat-any", "server"], "{svg}");
        // The SYN that got through goes client -> node -> server, and its SYN-ACK back.
        assert!(svg.matches("class=\"arrow\"").count() >= 3, "{svg}");
        // The retry's wait (about 1 s) is a band.
        assert!(svg.contains("class=\"gap\""), "{svg}");
    }
}

fn html_colour(c: Cause) -> [u8; 3] {
    report::html::verdict_colour(Some(c))
}

/// The terminal screen (at 80 and 120 columns; at 120 with --verbose) and the JSON report
/// of the sample pair, as the binary prints them (run from the repository root with
/// relative paths, so the files named are the same on every checkout).
#[test]
fn test_golden_terminal_screen_and_json() {
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pcapdiag"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("COLUMNS")
            .args(["analyze", "-q"])
            .args(extra)
            .args([
                "testdata/lab/rs_timewait.client.pcap",
                "testdata/lab/rs_timewait.rs.pcap",
            ])
            .succeed();
        out.stdout
    };
    let at80 = run(&["--width", "80"]);
    golden("rs_timewait.screen-80.txt", &at80);
    golden(
        "rs_timewait.screen-120-verbose.txt",
        &run(&["--width", "120", "-v"]),
    );
    // Piped without $COLUMNS: 80 columns, no colour.
    assert_eq!(run(&[]), at80);
    // The JSON, pretty-printed so that a difference points at a line.
    let v: serde_json::Value = serde_json::from_slice(&run(&["--json"])).unwrap();
    let mut pretty = serde_json::to_vec_pretty(&v).unwrap();
    pretty.push(b'\n');
    golden("rs_timewait.json", &pretty);
}
