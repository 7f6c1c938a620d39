//! Rotated files: the pieces tcpdump writes of one long capture, recognised by their names
//! and read as one stream ([`crate::capture::analyze_parts`]).
//!
//! - `tcpdump -C SIZE [-W N] -w x.pcap` writes `x.pcap`, `x.pcap1`, `x.pcap2`, ... (with
//!   `-W`: `x.pcap0`, `x.pcap1`, ..., zero-padded): digits appended to the extension.
//! - `tcpdump -G SECS -w 'x.%Y%m%d-%H%M%S.pcap'` (or `%s`) writes one file per interval,
//!   named by its start time: names alike but for their digits, which spell a time (six
//!   digits or more between them).
//!
//! Files of one directory that follow one of these patterns are one capture, in the order
//! of their numbers. Names alike in a single digit (`node1.pcap`, `node2.pcap`: two hosts)
//! are not a rotation. Whether the pieces really follow each other in time is checked as
//! they are read: the gaps and overlaps between them are reported.

use std::path::{Path, PathBuf};

/// One capture: a file, or the rotated files of one capture in time order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// How the report names it: the file, or the rotation's pattern (digits as `*`).
    pub name: String,
    pub parts: Vec<PathBuf>,
}

impl Source {
    pub fn single(path: PathBuf) -> Source {
        Source {
            name: path.display().to_string(),
            parts: vec![path],
        }
    }
}

/// How a file name joins a rotation: the shared pattern, and the numbers that order it.
fn rotation_key(path: &Path) -> Option<Key> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    // -C/-W: digits right after a capture extension (`x.pcap3`, `x.pcapng12`, `x.pcap3.gz`).
    let (plain, gz) = match name.strip_suffix(".gz") {
        Some(n) => (n, ".gz"),
        None => (name, ""),
    };
    let digits = plain.len() - plain.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let head = &plain[..plain.len() - digits];
    if digits > 0 && (head.ends_with(".pcap") || head.ends_with(".pcapng")) {
        let number = plain[head.len()..].to_string();
        return Some((dir, format!("{head}*{gz}"), vec![number]));
    }
    // -G: digit runs that spell a time.
    let mut pattern = String::new();
    let mut numbers = Vec::new();
    let mut run = String::new();
    for c in name.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            pattern.push('*');
            numbers.push(std::mem::take(&mut run));
        }
        if c != '\0' {
            pattern.push(c);
        }
    }
    let total: usize = numbers.iter().map(String::len).sum();
    (total >= 6).then_some((dir, pattern, numbers))
}

/// Orders numbers written in decimal, of any length (`9` before `10`; `007` is `7`).
fn numeric(a: &[String], b: &[String]) -> std::cmp::Ordering {
    let key = |s: &String| {
        let t = s.trim_start_matches('0');
        (t.len(), t.to_string())
    };
    a.iter().map(key).cmp(b.iter().map(key))
}

/// The key that joins a rotation: directory, pattern, and the numbers that order it.
type Key = (PathBuf, String, Vec<String>);

/// The captures of a set: rotated files grouped (in the order of their numbers; the
/// unnumbered first file of `-C` first), every other file on its own, in the order the
/// first file of each was given. A file named like a rotation whose link type
/// (`link_type`, read from its start) is not that of the rotation's first file is not one
/// of its pieces: it is a capture of its own, after the rotation.
pub fn group(paths: &[PathBuf], link_type: impl Fn(&Path) -> Option<u16>) -> Vec<Source> {
    let mut keys: Vec<Option<Key>> = paths
        .iter()
        .map(|p| (p.as_os_str() != "-").then(|| rotation_key(p)).flatten())
        .collect();
    // `x.pcap` is the first file of a -C rotation when `x.pcap1`... are given too: it joins
    // the pattern with the number "" (before every other).
    for i in 0..paths.len() {
        if keys[i].is_some() || paths[i].as_os_str() == "-" {
            continue;
        }
        let dir = paths[i].parent().unwrap_or(Path::new("")).to_path_buf();
        let Some(name) = paths[i].file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (plain, gz) = name.strip_suffix(".gz").map_or((name, ""), |p| (p, ".gz"));
        let pattern = format!("{plain}*{gz}");
        if keys
            .iter()
            .flatten()
            .any(|(d, p, _)| *d == dir && *p == pattern)
        {
            keys[i] = Some((dir, pattern, vec![String::new()]));
        }
    }
    let mut sources: Vec<Source> = Vec::new();
    let mut taken = vec![false; paths.len()];
    for i in 0..paths.len() {
        if taken[i] {
            continue;
        }
        let Some((dir, pattern, _)) = &keys[i] else {
            taken[i] = true;
            sources.push(Source::single(paths[i].clone()));
            continue;
        };
        let mut members: Vec<usize> = (i..paths.len())
            .filter(|&j| {
                !taken[j]
                    && keys[j]
                        .as_ref()
                        .is_some_and(|(d, p, _)| d == dir && p == pattern)
            })
            .collect();
        for &j in &members {
            taken[j] = true;
        }
        let nums = |j: usize| keys[j].as_ref().map_or(&[][..], |k| k.2.as_slice());
        members.sort_by(|&a, &b| numeric(nums(a), nums(b)).then(paths[a].cmp(&paths[b])));
        let mut others = Vec::new();
        if members.len() > 1 {
            let first = link_type(&paths[members[0]]);
            let odd: Vec<usize>;
            (members, odd) = members
                .iter()
                .partition(|&&j| j == members[0] || link_type(&paths[j]) == first);
            others.extend(odd.into_iter().map(|j| Source::single(paths[j].clone())));
        }
        let mut parts: Vec<PathBuf> = members.into_iter().map(|j| paths[j].clone()).collect();
        sources.push(if parts.len() == 1 {
            Source::single(parts.remove(0))
        } else {
            Source {
                name: dir.join(pattern).display().to_string(),
                parts,
            }
        });
        sources.append(&mut others);
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[&str]) -> Vec<(String, Vec<String>)> {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        group(&paths, |_| Some(1))
            .into_iter()
            .map(|s| {
                let parts = s.parts.iter().map(|p| p.display().to_string()).collect();
                (s.name, parts)
            })
            .collect()
    }

    #[test]
    fn test_size_rotation_is_one_capture_in_numeric_order() {
        let g = names(&[
            "d/x.pcap10",
            "d/x.pcap2",
            "d/x.pcap",
            "d/x.pcap1",
            "d/rs.pcap",
        ]);
        assert_eq!(
            g,
            [
                (
                    "d/x.pcap*".to_string(),
                    vec!["d/x.pcap", "d/x.pcap1", "d/x.pcap2", "d/x.pcap10"]
                        .into_iter()
                        .map(String::from)
                        .collect()
                ),
                ("d/rs.pcap".to_string(), vec!["d/rs.pcap".to_string()]),
            ]
        );
    }

    #[test]
    fn test_time_rotation_is_one_capture_in_time_order() {
        let g = names(&[
            "c/client.20261206-032811.pcap",
            "c/client.20261206-032809.pcap",
            "c/client.20261206-032813.pcap.gz",
        ]);
        assert_eq!(g.len(), 2, "a .gz piece is its own pattern: {g:?}");
        assert_eq!(g[0].0, "c/client.*-*.pcap");
        assert_eq!(
            g[0].1,
            [
                "c/client.20261206-032809.pcap",
                "c/client.20261206-032811.pcap"
            ]
        );
    }

    #[test]
    fn test_gzipped_size_rotation_takes_its_unnumbered_first_file_given_last() {
        let g = names(&["d/x.pcap1.gz", "d/x.pcap2.gz", "d/x.pcap.gz"]);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].1, ["d/x.pcap.gz", "d/x.pcap1.gz", "d/x.pcap2.gz"]);
    }

    #[test]
    fn test_names_alike_in_one_digit_are_separate_hosts() {
        let g = names(&["node1.pcap", "node2.pcap", "x.pcap", "-"]);
        assert_eq!(g.len(), 4);
        assert!(g.iter().all(|(_, parts)| parts.len() == 1));
    }

    /// `x.pcap2` is named like the rotation but holds another link type (Ethernet among
    /// Linux cooked captures): another capture, listed after the rotation.
    #[test]
    fn test_a_file_of_another_link_type_is_not_a_piece_of_the_rotation() {
        let paths: Vec<PathBuf> = ["d/x.pcap0", "d/x.pcap2", "d/x.pcap1", "d/rs.pcap"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let link = |p: &Path| Some(if p.ends_with("x.pcap2") { 1 } else { 276 });
        let g: Vec<Vec<PathBuf>> = group(&paths, link).into_iter().map(|s| s.parts).collect();
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            g,
            [
                vec![p("d/x.pcap0"), p("d/x.pcap1")],
                vec![p("d/x.pcap2")],
                vec![p("d/rs.pcap")]
            ]
        );
    }

    #[test]
    fn test_rotations_in_two_directories_stay_apart() {
        let g = names(&["a/x.pcap0", "b/x.pcap0", "a/x.pcap1", "b/x.pcap1"]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].1, ["a/x.pcap0", "a/x.pcap1"]);
        assert_eq!(g[1].1, ["b/x.pcap0", "b/x.pcap1"]);
    }
}
