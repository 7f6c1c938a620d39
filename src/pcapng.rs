//! pcapng: annotated copies of the input captures, and their merge on one clock, for
//! `--annotate DIR`. Each input is read once, in a thread of its own: it writes its copy
//! (every frame as read, nanosecond times, the notes as packet comments) and sends each
//! frame, on the reference clock, through a bounded channel to the merge, which writes the
//! earliest head of all inputs next. Memory stays bounded whatever the captures' size. An
//! input that is not in time order is not sorted: the merge takes its frames in file order.
//! Frames numbered as [`crate::capture::analyze_parts`] numbers them (on through the parts
//! of a rotated capture) are what [`Notes`] are keyed by.

use crate::read::{CaptureReader, Frame, ReadError};
use crate::skip::SkipCounts;
use pcap_parser::Linktype;
use pcap_parser::ToVec;
use pcap_parser::pcapng::{
    BOM_MAGIC, EPB_MAGIC, EnhancedPacketBlock, IDB_MAGIC, InterfaceDescriptionBlock, OptionCode,
    PcapNGOption, SHB_MAGIC, SectionHeaderBlock,
};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Frames in flight from one input to the merge.
const CHANNEL_FRAMES: usize = 256;
/// The merged file's name in the output directory.
const MERGED: &str = "merged.pcapng";
/// `if_tsresol` 9: timestamps in nanoseconds, as the reader gives them.
const TSRESOL_NS: u8 = 9;

/// One capture to write again: its files (several for rotated captures: read in this
/// order as one stream, frames numbered on through them), how to put its times on the
/// reference clock, and a description for the merged file's interface.
pub struct Input {
    /// As the report names it, e.g. `testdata/lab/rs_timewait.client.pcap`.
    pub name: String,
    pub parts: Vec<PathBuf>,
    /// Capture time (ns since the epoch) → reference-clock time.
    pub to_reference: Box<dyn Fn(i64) -> i64 + Send + Sync>,
    /// The merged file's `if_description` for this input's interfaces.
    pub description: String,
}

/// Comments per frame: (index into the inputs, 1-based frame number) → comment lines.
pub type Notes = BTreeMap<(usize, u64), Vec<String>>;

/// What [`write`] wrote.
#[derive(Debug)]
pub struct Written {
    /// One per input, in input order.
    pub copies: Vec<Annotated>,
    pub merged: PathBuf,
    pub merged_frames: u64,
    /// Frames whose reference-clock time was before 1970, written at the epoch (pcapng
    /// times are unsigned).
    pub merged_clamped: u64,
}

/// One input's annotated copy.
#[derive(Debug)]
pub struct Annotated {
    /// [`Input::name`].
    pub input: String,
    pub file: PathBuf,
    /// Frames written (also to the merged file).
    pub frames: u64,
    /// Frames written with at least one comment.
    pub commented: u64,
    /// Notes (with at least one line) whose frame was not written: unreadable or absent.
    pub notes_unplaced: u64,
    /// Packet records not written, by reason (no timestamp, undeclared interface).
    pub unwritten: SkipCounts,
    /// Frames whose time was before 1970, written at the epoch.
    pub clamped: u64,
    /// A problem that stopped reading a part (cut off, corrupt): that part ends there,
    /// the next part goes on. At most one per part.
    pub read_problems: Vec<ReadError>,
}

/// Why nothing (or not everything) could be written.
#[derive(Debug)]
pub enum WriteError {
    /// An input is standard input, which was read once already and cannot be read again.
    Stdin { input: String },
    /// A part of an input cannot be opened as a capture (checked before writing anything).
    Open(ReadError),
    /// An output file would replace one of the inputs.
    WouldOverwriteInput { file: PathBuf },
    /// The output directory cannot be created.
    Dir { dir: PathBuf, message: String },
    /// An output file cannot be created or written.
    Write { file: PathBuf, message: String },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Stdin { input } => write!(
                f,
                "{input}: standard input cannot be read a second time to write annotated captures; save it to a file first"
            ),
            WriteError::Open(e) => write!(f, "{e}"),
            WriteError::WouldOverwriteInput { file } => write!(
                f,
                "{}: is one of the input captures; choose another directory for annotated captures",
                file.display()
            ),
            WriteError::Dir { dir, message } => {
                write!(f, "{}: cannot create directory: {message}", dir.display())
            }
            WriteError::Write { file, message } => {
                write!(f, "{}: cannot write: {message}", file.display())
            }
        }
    }
}

impl std::error::Error for WriteError {}

/// Writes `DIR/<stem>.pcapng` for every input and `DIR/merged.pcapng` (see the module doc).
///
/// Every part of every input is opened once first: a part that is standard input or not a
/// readable capture is an error before any file is written. A problem that stops a part
/// later (cut off, corrupt) ends that part only and is listed in [`Annotated::read_problems`].
pub fn write(dir: &Path, inputs: &[Input], notes: &Notes) -> Result<Written, WriteError> {
    for input in inputs {
        for part in &input.parts {
            if part.as_os_str() == "-" {
                return Err(WriteError::Stdin {
                    input: input.name.clone(),
                });
            }
            CaptureReader::open(part).map_err(WriteError::Open)?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| WriteError::Dir {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let names = output_names(inputs);
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let merged_path = dir.join(MERGED);
    refuse_overwriting_inputs(paths.iter().chain([&merged_path]), inputs)?;
    let copies: Vec<Writer> = paths
        .iter()
        .map(|p| Writer::create(p))
        .collect::<Result<_, _>>()?;
    let mut merged = Writer::create(&merged_path)?;

    std::thread::scope(|s| {
        let mut heads = Vec::with_capacity(inputs.len());
        let mut threads = Vec::with_capacity(inputs.len());
        for (i, (input, out)) in inputs.iter().zip(copies).enumerate() {
            let (tx, rx) = sync_channel(CHANNEL_FRAMES);
            heads.push(rx);
            threads.push(s.spawn(move || copy_input(i, input, notes, out, tx)));
        }
        // A merge that fails drops its receivers: the inputs then stop sending, and their
        // copies go on.
        let merge_result = merge(heads, &mut merged, inputs, notes);
        let copies = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<Annotated>, WriteError>>()?;
        merge_result?;
        let (merged_frames, merged_clamped) = (merged.frames, merged.clamped);
        merged.finish()?;
        Ok(Written {
            copies,
            merged: merged_path,
            merged_frames,
            merged_clamped,
        })
    })
}

/// One frame on its way to the merge.
struct Owned {
    number: u64,
    /// On the reference clock.
    ts: i64,
    iface: u32,
    linktype: u16,
    orig_len: u32,
    data: Vec<u8>,
}

/// Reads one input's parts as one stream, writes its copy, and sends each frame to the
/// merge (until the merge hangs up).
fn copy_input(
    index: usize,
    input: &Input,
    notes: &Notes,
    mut out: Writer,
    tx: SyncSender<Owned>,
) -> Result<Annotated, WriteError> {
    let mut tx = Some(tx);
    let mut copy = Annotated {
        input: input.name.clone(),
        file: out.path.clone(),
        frames: 0,
        commented: 0,
        notes_unplaced: 0,
        unwritten: SkipCounts::default(),
        clamped: 0,
        read_problems: Vec::new(),
    };
    let mut failed: Option<WriteError> = None;
    let mut base = 0u64;
    for part in &input.parts {
        // Opened (and checked) once by `write`: failing now, the file changed since.
        let mut reader = match CaptureReader::open(part) {
            Ok(r) => r,
            Err(e) => {
                copy.read_problems.push(e);
                continue;
            }
        };
        let end = reader.for_each(|record| {
            let frame = match record {
                Ok(frame) if failed.is_none() => Frame {
                    number: base + frame.number,
                    ..frame
                },
                Ok(_) => return,
                Err(unreadable) => {
                    copy.unwritten.add(unreadable.reason);
                    return;
                }
            };
            let comments = comments(notes, index, frame.number);
            let written = out
                .interface((0, frame.linktype, frame.iface), frame.linktype, &[])
                .and_then(|id| out.packet(id, frame.ts, frame.data, frame.orig_len, comments));
            if let Err(e) = written {
                failed = Some(e);
                return;
            }
            copy.commented += u64::from(!comments.is_empty());
            if let Some(sender) = &tx {
                let owned = Owned {
                    number: frame.number,
                    ts: (input.to_reference)(frame.ts),
                    iface: frame.iface,
                    linktype: frame.linktype,
                    orig_len: frame.orig_len,
                    data: frame.data.to_vec(),
                };
                if sender.send(owned).is_err() {
                    tx = None;
                }
            }
        });
        base += reader.frames();
        if let Err(e) = end {
            copy.read_problems.push(e);
        }
    }
    drop(tx);
    if let Some(e) = failed {
        return Err(e);
    }
    copy.notes_unplaced = notes
        .range((index, 0)..=(index, u64::MAX))
        .filter(|(_, lines)| !lines.is_empty())
        .count() as u64
        - copy.commented;
    copy.frames = out.frames;
    copy.clamped = out.clamped;
    out.finish()?;
    Ok(copy)
}

/// The notes of one frame (none: empty).
fn comments(notes: &Notes, input: usize, number: u64) -> &[String] {
    notes.get(&(input, number)).map_or(&[], Vec::as_slice)
}

/// Writes the earliest head of all inputs (ties: the earlier input) until every input has
/// ended. Per input the frames come in file order, so an input that is not in time order
/// is merged as it is, not sorted.
fn merge(
    inputs: Vec<Receiver<Owned>>,
    out: &mut Writer,
    meta: &[Input],
    notes: &Notes,
) -> Result<(), WriteError> {
    let mut heads: Vec<Option<Owned>> = inputs.iter().map(|rx| rx.recv().ok()).collect();
    // Each input's first interface declared in input order: with one interface per input
    // (every classic pcap), interface i is input i. Others are declared on first use.
    for (i, head) in heads.iter().enumerate() {
        if let Some(frame) = head {
            merged_interface(out, &meta[i], i, frame)?;
        }
    }
    loop {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|f| (f.ts, i)))
            .min();
        let Some((_, i)) = next else {
            return Ok(());
        };
        let Some(frame) = heads[i].take() else {
            unreachable!("the earliest head is present");
        };
        let id = merged_interface(out, &meta[i], i, &frame)?;
        let comments = comments(notes, i, frame.number);
        out.packet(id, frame.ts, &frame.data, frame.orig_len, comments)?;
        heads[i] = inputs[i].recv().ok();
    }
}

/// The merged file's interface for a frame of input `index`: named after the input (and
/// the input's interface, if not its first), described by [`Input::description`].
fn merged_interface(
    out: &mut Writer,
    input: &Input,
    index: usize,
    frame: &Owned,
) -> Result<u32, WriteError> {
    let key = (index, frame.linktype, frame.iface);
    if let Some(&id) = out.ifaces.get(&key) {
        return Ok(id);
    }
    let name = if frame.iface == 0 {
        input.name.clone()
    } else {
        format!("{} interface {}", input.name, frame.iface)
    };
    out.interface(
        key,
        frame.linktype,
        &[
            (OptionCode::IfName, &name),
            (OptionCode::IfDescription, &input.description),
        ],
    )
}

/// A pcapng file being written: one section, interfaces declared on first use.
struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    /// (input, link type, input interface) → interface id in this file.
    ifaces: HashMap<(usize, u16, u32), u32>,
    frames: u64,
    clamped: u64,
}

impl Writer {
    /// Creates the file and writes its Section Header Block.
    fn create(path: &Path) -> Result<Writer, WriteError> {
        let file = File::create(path).map_err(|e| write_error(path, e))?;
        let mut w = Writer {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 << 10, file),
            ifaces: HashMap::new(),
            frames: 0,
            clamped: 0,
        };
        let appl = format!("pcapdiag {}", env!("CARGO_PKG_VERSION"));
        w.put(section_header(&appl))?;
        Ok(w)
    }

    /// The id of the interface for `key`, declared (an Interface Description Block with
    /// `options`) the first time it is used.
    fn interface(
        &mut self,
        key: (usize, u16, u32),
        linktype: u16,
        options: &[(OptionCode, &str)],
    ) -> Result<u32, WriteError> {
        if let Some(&id) = self.ifaces.get(&key) {
            return Ok(id);
        }
        let id = self.ifaces.len() as u32;
        self.put(interface_description(linktype, options))?;
        self.ifaces.insert(key, id);
        Ok(id)
    }

    fn packet(
        &mut self,
        iface: u32,
        ts: i64,
        data: &[u8],
        orig_len: u32,
        comments: &[String],
    ) -> Result<(), WriteError> {
        self.clamped += u64::from(ts < 0);
        self.put(enhanced_packet(iface, ts, data, orig_len, comments))?;
        self.frames += 1;
        Ok(())
    }

    fn put(&mut self, block: Vec<u8>) -> Result<(), WriteError> {
        self.out
            .write_all(&block)
            .map_err(|e| write_error(&self.path, e))
    }

    fn finish(mut self) -> Result<(), WriteError> {
        self.out.flush().map_err(|e| write_error(&self.path, e))
    }
}

fn write_error(path: &Path, e: io::Error) -> WriteError {
    WriteError::Write {
        file: path.to_path_buf(),
        message: e.to_string(),
    }
}

// The blocks, through pcap-parser's serializer (`ToVec`): its `fix` sets the block type
// and both lengths, pads data and options to 32 bits and ends the options; it writes
// little-endian. Its `to_vec` fails only on a bounded writer, never on a `Vec`.

fn section_header(appl: &str) -> Vec<u8> {
    let mut shb = SectionHeaderBlock {
        block_type: SHB_MAGIC,
        block_len1: 0,
        bom: BOM_MAGIC,
        major_version: 1,
        minor_version: 0,
        // Unknown: the file is written streaming.
        section_len: -1,
        options: vec![text_option(OptionCode::ShbUserAppl, appl)],
        block_len2: 0,
    };
    shb.to_vec().expect("serializing into a Vec cannot fail")
}

/// An interface with nanosecond timestamps and no snapshot length (0: the input's own is
/// not known here, and every frame keeps its captured bytes).
fn interface_description(linktype: u16, options: &[(OptionCode, &str)]) -> Vec<u8> {
    let mut idb = InterfaceDescriptionBlock {
        block_type: IDB_MAGIC,
        block_len1: 0,
        linktype: Linktype(i32::from(linktype)),
        reserved: 0,
        snaplen: 0,
        options: options
            .iter()
            .map(|&(code, text)| text_option(code, text))
            .collect(),
        block_len2: 0,
        // `fix` adds these as the if_tsresol and if_tsoffset options.
        if_tsresol: TSRESOL_NS,
        if_tsoffset: 0,
    };
    idb.to_vec().expect("serializing into a Vec cannot fail")
}

/// One frame, with one `opt_comment` per comment line (Wireshark lists each as a comment
/// of its own). A time before 1970 is written as the epoch: pcapng times are unsigned.
fn enhanced_packet(
    iface: u32,
    ts: i64,
    data: &[u8],
    orig_len: u32,
    comments: &[String],
) -> Vec<u8> {
    let ticks = ts.max(0) as u64;
    let mut epb = EnhancedPacketBlock {
        block_type: EPB_MAGIC,
        block_len1: 0,
        if_id: iface,
        ts_high: (ticks >> 32) as u32,
        ts_low: ticks as u32,
        caplen: data.len() as u32,
        origlen: orig_len,
        data,
        options: comments
            .iter()
            .map(|c| text_option(OptionCode::Comment, c))
            .collect(),
        block_len2: 0,
    };
    epb.to_vec().expect("serializing into a Vec cannot fail")
}

/// A UTF-8 option, cut at a character boundary to the 65535 bytes an option can hold.
fn text_option<'a>(code: OptionCode, text: &'a str) -> PcapNGOption<'a> {
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    PcapNGOption {
        code,
        len: end as u16,
        value: Cow::Borrowed(&text.as_bytes()[..end]),
    }
}

/// `<stem>.pcapng` per input, unique (and never the merged file's name).
fn output_names(inputs: &[Input]) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::from([MERGED.to_string()]);
    inputs
        .iter()
        .map(|input| {
            let stem = input.parts.first().map_or("capture".into(), |p| {
                crate::units::capture_stem(&p.to_string_lossy()).to_string()
            });
            let mut name = format!("{stem}.pcapng");
            let mut n = 2;
            // Compared case-insensitively: the directory may be on such a file system.
            while !taken.insert(name.to_lowercase()) {
                name = format!("{stem}-{n}.pcapng");
                n += 1;
            }
            name
        })
        .collect()
}

/// An output path that is one of the inputs would be truncated before it is read.
fn refuse_overwriting_inputs<'a>(
    outputs: impl Iterator<Item = &'a PathBuf>,
    inputs: &[Input],
) -> Result<(), WriteError> {
    let parts: HashSet<PathBuf> = inputs
        .iter()
        .flat_map(|i| &i.parts)
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    for out in outputs {
        if std::fs::canonicalize(out).is_ok_and(|c| parts.contains(&c)) {
            return Err(WriteError::WouldOverwriteInput { file: out.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skip::SkipReason;
    use pcap_parser::pcapng::{Block, parse_block_le};
    use pcap_parser::traits::PcapNGPacketBlock;

    fn testdata(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(rel)
    }

    /// A pcapng-test-generator file from `../shared/corpus`; `None` (skipped, with a
    /// message) when the corpus is absent, except under CI=true.
    fn conformance(rel: &str) -> Option<PathBuf> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus/pcapng-test-generator/output_le")
            .join(rel);
        if path.is_file() {
            return Some(path);
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing",
            path.display()
        );
        println!("skipped: {} is missing", path.display());
        None
    }

    fn input(parts: Vec<PathBuf>, to_reference: fn(i64) -> i64) -> Input {
        let name = parts[0].display().to_string();
        Input {
            description: format!("{name} (test clock)"),
            name,
            parts,
            to_reference: Box::new(to_reference),
        }
    }

    /// A frame as our reader hands it on.
    #[derive(Clone, Debug, PartialEq)]
    struct Rec {
        number: u64,
        ts: i64,
        iface: u32,
        linktype: u16,
        data: Vec<u8>,
        orig_len: u32,
    }

    /// Every readable frame of `parts` read as one stream, numbered on through them.
    fn frames(parts: &[PathBuf]) -> Vec<Rec> {
        let mut out = Vec::new();
        let mut base = 0;
        for part in parts {
            let mut r = CaptureReader::open(part).unwrap();
            let _ = r.for_each(|f| {
                if let Ok(f) = f {
                    out.push(Rec {
                        number: base + f.number,
                        ts: f.ts,
                        iface: f.iface,
                        linktype: f.linktype,
                        data: f.data.to_vec(),
                        orig_len: f.orig_len,
                    })
                }
            });
            base += r.frames();
        }
        out
    }

    /// What pcap-parser itself finds in a written file: each block parses, and the file
    /// is nothing but blocks.
    #[derive(Debug, Default)]
    struct Parsed {
        /// (link type, if_name, if_description, if_tsresol) per interface.
        ifaces: Vec<(u16, Option<String>, Option<String>, u8)>,
        /// (interface id, comments) per packet.
        packets: Vec<(u32, Vec<String>)>,
        appl: Option<String>,
    }

    fn parse(path: &Path) -> Parsed {
        let bytes = std::fs::read(path).unwrap();
        let mut rest = &bytes[..];
        let mut p = Parsed::default();
        let text = |opts: &[PcapNGOption], code: OptionCode| -> Vec<String> {
            opts.iter()
                .filter(|o| o.code == code)
                .map(|o| o.as_str().unwrap().to_string())
                .collect()
        };
        while !rest.is_empty() {
            let (r, block) = parse_block_le(rest).unwrap();
            match block {
                Block::SectionHeader(shb) => {
                    p.appl = text(&shb.options, OptionCode::ShbUserAppl).pop();
                }
                Block::InterfaceDescription(idb) => p.ifaces.push((
                    idb.linktype.0 as u16,
                    text(&idb.options, OptionCode::IfName).pop(),
                    text(&idb.options, OptionCode::IfDescription).pop(),
                    idb.if_tsresol,
                )),
                Block::EnhancedPacket(epb) => p
                    .packets
                    .push((epb.if_id, text(&epb.options, OptionCode::Comment))),
                other => panic!("unexpected block {other:?}"),
            }
            rest = r;
        }
        p
    }

    fn notes(entries: &[((usize, u64), &[&str])]) -> Notes {
        entries
            .iter()
            .map(|&(k, lines)| (k, lines.iter().map(|l| l.to_string()).collect()))
            .collect()
    }

    /// The written copy holds the input's frames, each with the same time, bytes, lengths
    /// and link type, and interfaces mapped one to one.
    fn assert_same_frames(original: &[Rec], copy: &[Rec]) {
        assert_eq!(original.len(), copy.len());
        let mut ifaces = HashMap::new();
        for (o, c) in original.iter().zip(copy) {
            assert_eq!(
                (o.ts, o.linktype, &o.data, o.orig_len),
                (c.ts, c.linktype, &c.data, c.orig_len),
                "frame {}",
                o.number
            );
            assert_eq!(*ifaces.entry(o.iface).or_insert(c.iface), c.iface);
        }
        let distinct: HashSet<_> = ifaces.values().collect();
        assert_eq!(distinct.len(), ifaces.len());
    }

    // The annotated copy of one capture.

    #[test]
    fn test_copy_of_each_lab_format_reads_back_identical() {
        // Classic pcap (µs and ns), pcapng, and SLL2 (the node's `-i any` capture).
        for name in [
            "rs_timewait.client.pcap",
            "rs_timewait.client.nano.pcap",
            "rs_timewait.client.pcapng",
            "rs_timewait.nat-any.pcap",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let part = testdata(&format!("lab/{name}"));
            let w = write(
                dir.path(),
                &[input(vec![part.clone()], |t| t)],
                &Notes::new(),
            )
            .unwrap();
            let copy = &w.copies[0];
            let original = frames(&[part]);
            assert_same_frames(&original, &frames(std::slice::from_ref(&copy.file)));
            assert_eq!(copy.frames, original.len() as u64);
            assert_eq!((copy.commented, copy.unwritten.total()), (0, 0));
            assert!(copy.read_problems.is_empty());
            let parsed = parse(&copy.file);
            assert_eq!(parsed.ifaces.len(), 1, "{name}");
            assert_eq!(parsed.ifaces[0].3, TSRESOL_NS);
            assert!(parsed.appl.unwrap().starts_with("pcapdiag "));
        }
        let dir = tempfile::tempdir().unwrap();
        let sll2 = testdata("lab/rs_timewait.nat-any.pcap");
        let w = write(dir.path(), &[input(vec![sll2], |t| t)], &Notes::new()).unwrap();
        assert_eq!(
            parse(&w.copies[0].file).ifaces[0].0,
            276,
            "LINKTYPE_LINUX_SLL2"
        );
    }

    #[test]
    fn test_copy_comments_exactly_the_noted_frames() {
        let dir = tempfile::tempdir().unwrap();
        let part = testdata("lab/rs_timewait.client.pcap");
        let last = frames(std::slice::from_ref(&part)).len() as u64;
        let notes = notes(&[
            ((0, 1), &["first SYN"]),
            (
                (0, 3),
                &["slow: 1003.2 ms", "cause: rs_timewait; see frame 9"],
            ),
            ((0, last), &["last"]),
            ((0, last + 1), &["no such frame"]),
            ((0, 4), &[]),
            ((1, 2), &["another input's"]),
        ]);
        let w = write(dir.path(), &[input(vec![part], |t| t)], &notes).unwrap();
        let copy = &w.copies[0];
        assert_eq!(dir.path().join("rs_timewait.client.pcapng"), copy.file);
        assert_eq!((copy.commented, copy.notes_unplaced), (3, 1));
        for (k, (_, comments)) in parse(&copy.file).packets.iter().enumerate() {
            let want = notes.get(&(0, k as u64 + 1)).cloned().unwrap_or_default();
            assert_eq!(comments, &want, "frame {}", k + 1);
        }
    }

    #[test]
    fn test_copy_of_pcapng_with_two_link_types_keeps_both_interfaces() {
        let Some(part) = conformance("basic/test006.pcapng") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let w = write(
            dir.path(),
            &[input(vec![part.clone()], |t| t)],
            &Notes::new(),
        )
        .unwrap();
        let original = frames(std::slice::from_ref(&part));
        let copy = frames(std::slice::from_ref(&w.copies[0].file));
        assert_same_frames(&original, &copy);
        let linktypes: HashSet<u16> = original.iter().map(|f| f.linktype).collect();
        assert_eq!(linktypes.len(), 2);
        assert_eq!(parse(&w.copies[0].file).ifaces.len(), 2);
    }

    #[test]
    fn test_copy_counts_packets_without_time_and_keeps_numbering() {
        // SHB, IDB, NRB, SPB, NRB, IDB, NRB, EPB, IDB, NRB, SPB, EPB, EPB, NRB: frames
        // 1 and 3 are Simple Packet Blocks (no time), 2, 4 and 5 are written.
        let Some(part) = conformance("advanced/test100.pcapng") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let notes = notes(&[((0, 1), &["spb"]), ((0, 4), &["epb"])]);
        let w = write(dir.path(), &[input(vec![part.clone()], |t| t)], &notes).unwrap();
        let copy = &w.copies[0];
        assert_eq!(copy.frames, 3);
        assert_eq!(copy.unwritten.get(SkipReason::NoTimestamp), 2);
        assert_eq!((copy.commented, copy.notes_unplaced), (1, 1));
        let numbers: Vec<u64> = frames(std::slice::from_ref(&part))
            .iter()
            .map(|f| f.number)
            .collect();
        assert_eq!(numbers, [2, 4, 5]);
        let comments: Vec<_> = parse(&copy.file).packets.into_iter().map(|p| p.1).collect();
        assert_eq!(comments, [vec![], vec!["epb".to_string()], vec![]]);
    }

    #[test]
    fn test_copy_of_rotated_capture_is_one_file_numbered_on_through_parts() {
        let mut parts: Vec<PathBuf> =
            std::fs::read_dir(testdata("lab/two_backends.client-rotated"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
                .collect();
        parts.sort();
        assert!(parts.len() > 3);
        let per_part: Vec<Vec<Rec>> = parts
            .iter()
            .map(|p| frames(std::slice::from_ref(p)))
            .collect();
        // The first frame of the third part, numbered on through the first two.
        let before: u64 = per_part[..2].iter().map(|f| f.len() as u64).sum();
        let target = &per_part[2][0];
        let dir = tempfile::tempdir().unwrap();
        let notes = notes(&[((0, before + 1), &["third part, first frame"])]);
        let w = write(dir.path(), &[input(parts.clone(), |t| t)], &notes).unwrap();
        assert_eq!(w.copies.len(), 1);
        let copy = &w.copies[0];
        assert_eq!(
            copy.file.file_name().unwrap(),
            "client.20261206-032807.pcapng"
        );
        let written = frames(std::slice::from_ref(&copy.file));
        assert_same_frames(&frames(&parts), &written);
        let commented: Vec<usize> = parse(&copy.file)
            .packets
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.1.is_empty())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(commented, [before as usize]);
        assert_eq!(written[before as usize].data, target.data);
        assert_eq!(written[before as usize].ts, target.ts);
    }

    #[test]
    fn test_copy_of_rotated_capture_with_a_cut_off_part_goes_on_with_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let rotated = testdata("lab/two_backends.client-rotated");
        let (first, last) = (
            rotated.join("client.20261206-032809.pcap"),
            rotated.join("client.20261206-032813.pcap"),
        );
        // The middle part cut inside its last record, as when tcpdump is killed.
        let cut = dir.path().join("client.20261206-032811.pcap");
        let bytes = std::fs::read(rotated.join("client.20261206-032811.pcap")).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        let cut_frames = frames(std::slice::from_ref(&cut));
        let first_frames = frames(std::slice::from_ref(&first)).len() as u64;
        let parts = vec![first, cut.clone(), last.clone()];
        // The first frame of the last part: numbered after the cut part's frames.
        let number = first_frames + cut_frames.len() as u64 + 1;
        let notes = notes(&[((0, number), &["after the cut"])]);
        let out = dir.path().join("out");
        let w = write(&out, &[input(parts.clone(), |t| t)], &notes).unwrap();
        let copy = &w.copies[0];
        assert_eq!(copy.read_problems.len(), 1);
        let problem = &copy.read_problems[0];
        assert_eq!(problem.file, cut.display().to_string());
        assert!(problem.is_warning(), "{problem}");
        assert_eq!(problem.after_frame, cut_frames.len() as u64);
        assert_eq!(copy.frames, frames(&parts).len() as u64);
        assert_eq!((copy.commented, copy.notes_unplaced), (1, 0));
        let written = frames(std::slice::from_ref(&copy.file));
        let k = (number - 1) as usize;
        assert_eq!(written[k].data, frames(&[last])[0].data);
        assert_eq!(parse(&copy.file).packets[k].1, ["after the cut"]);
    }

    // The merge on the reference clock.

    #[test]
    fn test_merge_orders_all_frames_by_reference_time_with_each_input_interface() {
        let dir = tempfile::tempdir().unwrap();
        let client = testdata("lab/rs_timewait.client.pcap");
        let rs = testdata("lab/rs_timewait.rs.pcap");
        // The real server's clock 3 ms ahead of the client's: it goes back 3 ms.
        let inputs = [
            input(vec![client.clone()], |t| t),
            input(vec![rs.clone()], |t| t - 3_000_000),
        ];
        let notes = notes(&[((0, 2), &["client 2"]), ((1, 2), &["rs 2", "second line"])]);
        let w = write(dir.path(), &inputs, &notes).unwrap();
        let originals = [frames(&[client]), frames(&[rs])];
        assert_eq!(w.merged, dir.path().join("merged.pcapng"));
        assert_eq!(
            w.merged_frames,
            (originals[0].len() + originals[1].len()) as u64
        );

        let parsed = parse(&w.merged);
        assert_eq!(parsed.ifaces.len(), 2);
        for (i, iface) in parsed.ifaces.iter().enumerate() {
            assert_eq!(iface.1.as_deref(), Some(inputs[i].name.as_str()));
            assert_eq!(iface.2.as_deref(), Some(inputs[i].description.as_str()));
        }
        let merged = frames(std::slice::from_ref(&w.merged));
        assert!(merged.windows(2).all(|w| w[0].ts <= w[1].ts));
        // Per interface, the input's frames in file order, at their corrected times, with
        // the input's comments.
        for (i, original) in originals.iter().enumerate() {
            let mine: Vec<(&Rec, &Vec<String>)> = merged
                .iter()
                .zip(&parsed.packets)
                .filter(|(_, p)| p.0 == i as u32)
                .map(|(f, p)| (f, &p.1))
                .collect();
            assert_eq!(mine.len(), original.len());
            for (o, (m, comments)) in original.iter().zip(mine) {
                assert_eq!((inputs[i].to_reference)(o.ts), m.ts);
                assert_eq!(
                    (&o.data, o.orig_len, o.linktype),
                    (&m.data, m.orig_len, m.linktype)
                );
                let want = notes.get(&(i, o.number)).cloned().unwrap_or_default();
                assert_eq!(comments, &want);
            }
        }
    }

    #[test]
    fn test_merge_takes_an_input_out_of_time_order_as_it_comes() {
        let dir = tempfile::tempdir().unwrap();
        let client = testdata("lab/rs_timewait.client.pcap");
        // A clock running backwards: that input's frames come in decreasing time.
        let inputs = [
            input(vec![client.clone()], |t| t),
            input(vec![testdata("lab/rs_timewait.rs.pcap")], |t| -t),
        ];
        let w = write(dir.path(), &inputs, &Notes::new()).unwrap();
        assert_eq!(w.merged_frames, w.copies[0].frames + w.copies[1].frames);
        // Before 1970: written at the epoch, and counted.
        assert_eq!(w.merged_clamped, w.copies[1].frames);
        let parsed = parse(&w.merged);
        let merged = frames(std::slice::from_ref(&w.merged));
        let from_client: Vec<i64> = merged
            .iter()
            .zip(&parsed.packets)
            .filter(|(_, p)| p.0 == 0)
            .map(|(f, _)| f.ts)
            .collect();
        let original: Vec<i64> = frames(&[client]).iter().map(|f| f.ts).collect();
        assert_eq!(from_client, original);
    }

    #[test]
    fn test_merge_of_inputs_with_the_same_stem_writes_distinct_copies() {
        let dir = tempfile::tempdir().unwrap();
        let a = testdata("lab/rs_timewait.client.pcap");
        let b = testdata("lab/rs_timewait.client.pcapng");
        let w = write(
            dir.path(),
            &[input(vec![a], |t| t), input(vec![b], |t| t)],
            &Notes::new(),
        )
        .unwrap();
        let names: Vec<_> = w
            .copies
            .iter()
            .map(|c| c.file.file_name().unwrap())
            .collect();
        assert_eq!(
            names,
            ["rs_timewait.client.pcapng", "rs_timewait.client-2.pcapng"]
        );
        assert_eq!(w.merged_frames, 2 * w.copies[0].frames);
    }

    // Errors.

    #[test]
    fn test_stdin_input_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("annotated");
        let e = write(&out, &[input(vec!["-".into()], |t| t)], &Notes::new()).unwrap_err();
        assert!(matches!(&e, WriteError::Stdin { input } if input == "-"));
        assert!(e.to_string().contains("standard input"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn test_unreadable_input_is_refused_naming_the_file_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("annotated");
        let good = testdata("lab/rs_timewait.client.pcap");
        let missing = dir.path().join("missing.pcap");
        let inputs = [
            input(vec![good], |t| t),
            input(vec![missing.clone()], |t| t),
        ];
        let e = write(&out, &inputs, &Notes::new()).unwrap_err();
        assert!(matches!(&e, WriteError::Open(r) if r.file == missing.display().to_string()));
        assert!(e.to_string().contains("missing.pcap"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn test_unwritable_dir_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        // Below a regular file: no directory can be made there, even as root.
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let out = file.join("annotated");
        let inputs = [input(vec![testdata("lab/rs_timewait.client.pcap")], |t| t)];
        let e = write(&out, &inputs, &Notes::new()).unwrap_err();
        assert!(
            matches!(&e, WriteError::Dir { dir, .. } if *dir == out),
            "{e:?}"
        );
        assert!(e.to_string().contains("plain/annotated"), "{e}");
    }

    #[test]
    fn test_output_onto_an_input_is_refused_and_the_input_kept() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("x.pcapng");
        std::fs::copy(testdata("lab/rs_timewait.client.pcapng"), &part).unwrap();
        let before = std::fs::read(&part).unwrap();
        let e = write(
            dir.path(),
            &[input(vec![part.clone()], |t| t)],
            &Notes::new(),
        )
        .unwrap_err();
        assert!(matches!(&e, WriteError::WouldOverwriteInput { file } if *file == part));
        assert_eq!(std::fs::read(&part).unwrap(), before);
    }

    // Blocks and names.

    #[test]
    fn test_packet_block_pads_data_and_comments_and_both_lengths_agree() {
        let comments = ["abc".to_string(), String::new(), "é".to_string()];
        let bytes = enhanced_packet(
            3,
            1_700_000_000_123_456_789,
            &[1, 2, 3, 4, 5],
            60,
            &comments,
        );
        assert_eq!(bytes.len() % 4, 0);
        let len = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!((len(4), len(bytes.len() - 4)), (bytes.len(), bytes.len()));
        let (rest, block) = parse_block_le(&bytes).unwrap();
        assert!(rest.is_empty());
        let Block::EnhancedPacket(epb) = block else {
            panic!("not an EPB: {block:?}");
        };
        assert_eq!((epb.if_id, epb.caplen, epb.origlen), (3, 5, 60));
        assert_eq!(epb.packet_data(), [1, 2, 3, 4, 5]);
        let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
        assert_eq!(ticks, 1_700_000_000_123_456_789);
        let got: Vec<&str> = epb
            .options
            .iter()
            .filter(|o| o.code == OptionCode::Comment)
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(got, ["abc", "", "é"]);
    }

    #[test]
    fn test_text_option_longer_than_an_option_is_cut_at_a_character_boundary() {
        let long = "é".repeat(40_000);
        let o = text_option(OptionCode::Comment, &long);
        assert_eq!(o.len, 65_534);
        assert!(std::str::from_utf8(&o.value).is_ok());
        assert_eq!(text_option(OptionCode::Comment, "short").len, 5);
    }

    #[test]
    fn test_output_names_are_unique_and_never_the_merged_file() {
        let inputs = [
            input(vec!["a/x.pcap".into()], |t| t),
            input(vec!["b/x.pcap.gz".into()], |t| t),
            input(vec!["merged.pcap".into()], |t| t),
            input(vec!["X.pcapng".into()], |t| t),
        ];
        assert_eq!(
            output_names(&inputs),
            ["x.pcapng", "x-2.pcapng", "merged-2.pcapng", "X-3.pcapng"]
        );
    }
}
