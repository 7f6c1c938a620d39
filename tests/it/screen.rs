//! The terminal screen: the answer first, every line within the width, colour only when
//! asked for.

use crate::util::{Succeed, pcapdiag};

/// `analyze` on the lab's files (from the repository root, relative names), with `extra`
/// flags; standard output as text.
fn screen(files: &[&str], extra: &[&str]) -> String {
    let out = pcapdiag()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("COLUMNS")
        .env_remove("NO_COLOR")
        .args(["analyze", "-q"])
        .args(extra)
        .args(files.iter().map(|f| format!("testdata/lab/{f}")))
        .succeed();
    String::from_utf8(out.stdout).unwrap()
}

/// The text without ANSI SGR sequences (`ESC [ ... m`).
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The inputs of every kind the screen draws: a pair, a node capture alone, a set of four
/// captures with two backends, several pairs, a client capture alone.
const LAYOUTS: [&[&str]; 4] = [
    &["rs_timewait.client.pcap", "rs_timewait.rs.pcap"],
    &["rs_timewait.nat-any.pcap"],
    &[
        "two_backends.client.pcap",
        "two_backends.nat-any.pcap",
        "two_backends.rs.pcap",
        "two_backends.rs2.pcap",
    ],
    &["syn_drop.client.pcap"],
];

/// At 40, 80 and 120 columns, with the per-capture detail and colour, no line of any
/// layout is wider than asked (colour not counted).
#[test]
fn test_every_line_fits_the_width() {
    for files in LAYOUTS {
        for width in ["40", "80", "120"] {
            let text = screen(files, &["-v", "--color", "always", "--width", width]);
            let w: usize = width.parse().unwrap();
            for line in plain(&text).lines() {
                assert!(
                    line.chars().count() <= w,
                    "{files:?} at {w}: {} columns: {line:?}",
                    line.chars().count()
                );
            }
        }
    }
    // Several pairs: the causes with each pair's count.
    let out = pcapdiag()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["analyze", "-q", "-v", "--width", "80", "--pair"])
        .args([
            "testdata/lab/rs_timewait.client.pcap",
            "testdata/lab/rs_timewait.rs.pcap",
        ])
        .arg("--pair")
        .args([
            "testdata/lab/syn_drop.client.pcap",
            "testdata/lab/syn_drop.rs.pcap",
        ])
        .succeed();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.replace("\n      ", " ")
            .contains("(by pair: syn_drop 7)"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

/// At 80 columns the first lines give the count of slow attempts, the cause, what to do
/// about it and how to confirm it; the per-capture statistics are not on the screen
/// without --verbose.
#[test]
fn test_the_answer_comes_first() {
    let text = screen(LAYOUTS[0], &["--width", "80"]);
    let head: Vec<&str> = text.lines().take(16).collect();
    let head = head.join("\n");
    assert!(
        head.starts_with("40 connection attempts, 3 slow (7.5 %)"),
        "{head}"
    );
    for want in [
        "\nCauses\n",
        "  rs_timewait_collision: 3 attempts",
        "    do: ",
        "    confirm: ",
    ] {
        assert!(head.contains(want), "{want:?} not in:\n{head}");
    }
    assert!(!text.contains("packet flag"), "{text}");
    assert!(screen(LAYOUTS[0], &["-v"]).contains("packet flag"));
}

/// The worst attempt's ladder interleaves both captures on the client's clock: the
/// client's SYN first, the real server's copy of it after, each step's delay added.
#[test]
fn test_ladder_interleaves_the_captures() {
    let text = screen(LAYOUTS[1], &["--width", "100"]);
    let ladder: Vec<&str> = text
        .split_once(" 1. rs_timewait_collision 10.77.1.2:39400")
        .unwrap_or_else(|| panic!("no worst attempt in:\n{text}"))
        .1
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("ms "))
        .skip(1)
        .take_while(|l| l.starts_with("     "))
        .collect();
    // The line of a frame: where it was seen and what it was.
    let at = |frame: &str, place: &str, what: &str| {
        let i = ladder
            .iter()
            .position(|l| l.split_whitespace().any(|w| w == frame))
            .unwrap_or_else(|| panic!("no {frame} in:\n{}", ladder.join("\n")));
        assert!(ladder[i].contains(place), "{}", ladder[i]);
        assert!(ladder[i].trim_end().ends_with(what), "{}", ladder[i]);
        i
    };
    // The earlier connection's close comes first, before the first SYN (negative time).
    assert!(
        ladder[0].trim_start().starts_with("-1201."),
        "{}",
        ladder[0]
    );
    assert!(at("#577", "before NAT", "  SYN") < at("#578", "after NAT", "SYN on the RS side"));
    assert!(at("#591", "after NAT", "SYN-ACK sent by RS") < at("#592", "before NAT", "SYN-ACK"));
    // The final SYN-ACK is the setup time from the first SYN.
    assert!(ladder.last().unwrap().contains("+1042.625"), "{ladder:?}");
}

/// Colour only when asked: none when piped (`--color auto`), escapes with `--color always`,
/// which also wins over NO_COLOR; the coloured screen is the plain one with escape
/// sequences added. (NO_COLOR on a terminal is `cli::Screen::resolve`'s unit test: there is
/// no terminal here.)
#[test]
fn test_colour_only_when_asked() {
    let plain_text = screen(LAYOUTS[0], &["--width", "80"]);
    assert!(!plain_text.contains('\x1b'));
    let coloured = screen(LAYOUTS[0], &["--width", "80", "--color", "always"]);
    assert!(
        coloured.contains("\x1b[1;31m3 slow (7.5 %)\x1b[0m"),
        "{coloured}"
    );
    assert_eq!(plain(&coloured), plain_text);
    let always = pcapdiag()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(["analyze", "-q", "--width", "80", "--color", "always"])
        .args(LAYOUTS[0].iter().map(|f| format!("testdata/lab/{f}")))
        .succeed();
    assert_eq!(String::from_utf8(always.stdout).unwrap(), coloured);
}
