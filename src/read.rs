//! Read: open a capture and stream its packet records with constant memory.
//!
//! Accepts classic pcap (either byte order, micro- or nanosecond, Kuznetzov's modified
//! format), pcapng (several sections and interfaces, each interface's `if_tsresol` and
//! `if_tsoffset` honoured), gzip-compressed input (detected by its magic bytes) and `-`
//! for standard input. Records are handed to a callback one at a time from a fixed buffer
//! (pcap-parser's `next`/`consume`/`refill`); the buffer only grows for one record larger
//! than itself, and never past [`MAX_RECORD`], whatever a length field claims.
//!
//! Frame numbers are 1-based and count every packet record, as Wireshark's
//! `frame.number` does. Byte offsets are positions in the (decompressed) stream.

use crate::skip::SkipReason;
use flate2::read::MultiGzDecoder;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Initial size of the read buffer: one record of Wireshark's largest packet size fits;
/// a larger record grows it, doubling, up to the record's size.
const BUFFER: usize = 256 << 10;
/// The largest single record (pcap record or pcapng block) pcapdiag accepts. Wireshark's
/// own limit for a packet is 256 KiB; pcapng blocks other than packets can be larger.
pub const MAX_RECORD: usize = 64 << 20;
/// Frame times are clamped to ±`MAX_TS` ns (years 1824 to 2116). Every classic pcap time
/// fits; a corrupt pcapng time (huge ticks or `if_tsoffset`) is cut, so that downstream the
/// difference of two times, or a time plus a window, cannot overflow an `i64` (found by
/// fuzzing: times at `i64::MAX` overflowed in the verdicts).
pub const MAX_TS: i64 = (1 << 62) - 1;

/// One packet record, borrowed from the reader's buffer for the duration of a callback.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// 1-based frame number, as Wireshark numbers frames.
    pub number: u64,
    /// Byte offset of the record in the (decompressed) stream.
    pub offset: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts: i64,
    /// pcapng interface id (0 for classic pcap).
    pub iface: u32,
    /// LINKTYPE_ value of the interface.
    pub linktype: u16,
    /// The captured bytes (at most the snapshot length).
    pub data: &'a [u8],
    /// The length of the packet on the wire.
    pub orig_len: u32,
}

/// A record that is a frame but cannot be handed on as one.
#[derive(Clone, Copy, Debug)]
pub struct Unreadable {
    pub number: u64,
    pub offset: u64,
    pub reason: SkipReason,
}

/// What went wrong with a capture, with where it happened.
#[derive(Debug, Clone, Serialize)]
pub struct ReadError {
    /// The file as named on the command line (`-` for standard input).
    pub file: String,
    /// Byte offset in the (decompressed) stream where the problem starts.
    pub offset: u64,
    /// The number of the last frame read before the problem (0: none).
    pub after_frame: u64,
    pub kind: ReadErrorKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ReadErrorKind {
    /// The file could not be opened or read.
    Io { message: String },
    /// The file is empty.
    Empty,
    /// The first bytes are not a pcap or pcapng header.
    NotACapture { magic: String },
    /// The file ends inside a record (tcpdump killed mid-write).
    CutOff { partial_bytes: u64 },
    /// A record declares a length larger than [`MAX_RECORD`].
    AbsurdLength { declared: u64 },
    /// Bytes that do not parse as a record.
    Corrupt { detail: String },
}

impl ReadError {
    /// True when the capture was read up to this point and everything before it is good:
    /// a cut-off file is a warning, the rest are errors.
    pub fn is_warning(&self) -> bool {
        matches!(self.kind, ReadErrorKind::CutOff { .. })
    }

    /// Stable snake_case code of the kind.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ReadErrorKind::Io { .. } => "io",
            ReadErrorKind::Empty => "empty",
            ReadErrorKind::NotACapture { .. } => "not_a_capture",
            ReadErrorKind::CutOff { .. } => "cut_off",
            ReadErrorKind::AbsurdLength { .. } => "absurd_length",
            ReadErrorKind::Corrupt { .. } => "corrupt",
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}: byte offset {}", self.file, self.offset);
        let after = if self.after_frame == 0 {
            "before the first frame".to_string()
        } else {
            format!("after frame {}", self.after_frame)
        };
        match &self.kind {
            ReadErrorKind::Io { message } => write!(f, "{}: {message}", self.file),
            ReadErrorKind::Empty => write!(f, "{}: empty file", self.file),
            ReadErrorKind::NotACapture { magic } => write!(
                f,
                "{}: not a pcap or pcapng capture (first bytes {magic})",
                self.file
            ),
            ReadErrorKind::CutOff { partial_bytes } => write!(
                f,
                "{at}: file cut off inside a record ({partial_bytes} bytes of it present, {after}); analysed up to the cut"
            ),
            ReadErrorKind::AbsurdLength { declared } => write!(
                f,
                "{at}: record declares {declared} bytes (limit {MAX_RECORD}), {after}; stopped reading here"
            ),
            ReadErrorKind::Corrupt { detail } => {
                write!(
                    f,
                    "{at}: unreadable record ({detail}), {after}; stopped reading here"
                )
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// Counters of what the reader saw besides frames.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct BlockCounts {
    /// pcapng sections (Section Header Blocks).
    pub sections: u64,
    /// pcapng interfaces declared (Interface Description Blocks), over all sections.
    pub interfaces: u64,
    /// pcapng blocks of a type pcapdiag does not know (skipped).
    pub unknown_blocks: u64,
    /// Known pcapng blocks that carry no packet (name resolution, statistics, ...).
    pub other_blocks: u64,
}

impl BlockCounts {
    /// Adds another file's counts (the parts of a rotated capture).
    pub fn add(&mut self, o: &BlockCounts) {
        self.sections += o.sections;
        self.interfaces += o.interfaces;
        self.unknown_blocks += o.unknown_blocks;
        self.other_blocks += o.other_blocks;
    }
}

struct Iface {
    linktype: u16,
    /// Timestamp units per second (`if_tsresol`); `None` when the option is invalid.
    units_per_sec: Option<u64>,
    /// `if_tsoffset`, in seconds.
    offset_s: i64,
}

/// The format of the stream, once its header has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Pcap,
    PcapNano,
    Pcapng,
}

/// A capture opened for streaming.
pub struct CaptureReader {
    name: String,
    rdr: Box<dyn PcapReaderIterator + Send>,
    /// Legacy pcap: link type and whether fractions are nanoseconds.
    legacy: Option<(u16, bool)>,
    ifaces: Vec<Iface>,
    frames: u64,
    gzip: bool,
    format: Option<Format>,
    blocks: BlockCounts,
    /// Current size of the parser's buffer ([`BUFFER`], grown for a large record).
    buffer: usize,
    /// Byte order of the pcap file or of the current pcapng section.
    big_endian: bool,
}

impl CaptureReader {
    /// Opens `path` (`-` is standard input), detecting gzip and the capture format.
    pub fn open(path: &Path) -> Result<CaptureReader, ReadError> {
        let name = path.display().to_string();
        let io_err = |e: io::Error| ReadError {
            file: name.clone(),
            offset: 0,
            after_frame: 0,
            kind: ReadErrorKind::Io {
                message: e.to_string(),
            },
        };
        let raw: Box<dyn Read + Send> = if name == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(path).map_err(io_err)?)
        };
        Self::from_reader(&name, raw)
    }

    /// Reads a capture from any byte stream; `name` is used in messages.
    pub fn from_reader(name: &str, raw: Box<dyn Read + Send>) -> Result<CaptureReader, ReadError> {
        let err = |kind| ReadError {
            file: name.to_string(),
            offset: 0,
            after_frame: 0,
            kind,
        };
        let mut buffered = BufReader::with_capacity(64 << 10, raw);
        let head = buffered.fill_buf().map_err(|e| {
            err(ReadErrorKind::Io {
                message: e.to_string(),
            })
        })?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let input: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let rdr = match pcap_parser::create_reader(BUFFER, input) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(err(ReadErrorKind::Empty)),
            Err(PcapError::ReadError) => {
                return Err(err(ReadErrorKind::Io {
                    message: if gzip {
                        "gzip stream could not be decompressed".into()
                    } else {
                        "read error".into()
                    },
                }));
            }
            Err(_) => {
                // Not recognised (or too short to be): name what we found.
                return Err(err(ReadErrorKind::NotACapture {
                    magic: sniff_magic(name, gzip),
                }));
            }
        };
        Ok(CaptureReader {
            name: name.to_string(),
            rdr,
            legacy: None,
            ifaces: Vec::new(),
            frames: 0,
            gzip,
            format: None,
            blocks: BlockCounts::default(),
            buffer: BUFFER,
            big_endian: false,
        })
    }

    /// The file name as given.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether the input was gzip-compressed.
    pub fn gzip(&self) -> bool {
        self.gzip
    }
    /// The capture format, known once the first record has been read.
    pub fn format(&self) -> Option<Format> {
        self.format
    }
    /// Non-packet block counts.
    pub fn blocks(&self) -> BlockCounts {
        self.blocks
    }
    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
    /// Bytes of the (decompressed) stream consumed so far.
    pub fn position(&self) -> u64 {
        self.rdr.consumed() as u64
    }

    /// The link type of the capture's first interface (a pcap file's header), read from
    /// its start, before any packet: `None` when the start cannot be read or a packet
    /// comes first. Reads a few blocks at most.
    pub fn first_link_type(&mut self) -> Option<u16> {
        for _ in 0..16 {
            match self.rdr.next() {
                Ok((len, block)) => {
                    let link = match block {
                        PcapBlockOwned::LegacyHeader(h) => Some(h.network.0 as u16),
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            Some(idb.linktype.0 as u16)
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => None,
                        _ => return None,
                    };
                    if link.is_some() {
                        return link;
                    }
                    self.rdr.consume(len);
                }
                Err(PcapError::Incomplete(_)) => self.rdr.refill().ok()?,
                Err(_) => return None,
            }
        }
        None
    }

    fn error(&self, offset: u64, kind: ReadErrorKind) -> ReadError {
        ReadError {
            file: self.name.clone(),
            offset,
            after_frame: self.frames,
            kind,
        }
    }

    /// Streams every record to `f` until the end of the capture or the first problem.
    /// Returns `Ok(())` at a clean end, or the problem that stopped reading; everything
    /// before it has been handed to `f`.
    pub fn for_each(
        &mut self,
        mut f: impl FnMut(Result<Frame<'_>, Unreadable>),
    ) -> Result<(), ReadError> {
        loop {
            let offset = self.rdr.consumed() as u64;
            // No pcapng block is shorter than its 12-byte frame. pcap-parser 0.17 checks a
            // Process Information Block's length against 4 only, then subtracts 12: a
            // length of 4 to 11 overflowed inside it (found by fuzzing).
            if self.format == Some(Format::Pcapng) && self.rdr.data().len() >= 8 {
                let declared = self.declared_len();
                if declared < 12 {
                    let detail = format!("block length {declared}, below the minimum of 12");
                    return Err(self.error(offset, ReadErrorKind::Corrupt { detail }));
                }
            }
            match self.rdr.next() {
                Ok((len, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            let nanos = h.is_nanosecond_precision();
                            self.big_endian = h.is_bigendian();
                            self.legacy = Some((h.network.0 as u16, nanos));
                            self.format = Some(if nanos {
                                Format::PcapNano
                            } else {
                                Format::Pcap
                            });
                        }
                        PcapBlockOwned::Legacy(b) => {
                            self.frames += 1;
                            let (linktype, nanos) = self.legacy.unwrap_or((0, false));
                            let frac = if nanos {
                                b.ts_usec as i64
                            } else {
                                b.ts_usec as i64 * 1000
                            };
                            f(Ok(Frame {
                                number: self.frames,
                                offset,
                                ts: b.ts_sec as i64 * 1_000_000_000 + frac,
                                iface: 0,
                                linktype,
                                data: b.data,
                                orig_len: b.origlen,
                            }));
                        }
                        PcapBlockOwned::NG(block) => match block {
                            Block::SectionHeader(shb) => {
                                self.big_endian = shb.big_endian();
                                self.format = Some(Format::Pcapng);
                                self.blocks.sections += 1;
                                self.ifaces.clear();
                            }
                            Block::InterfaceDescription(idb) => {
                                self.blocks.interfaces += 1;
                                self.ifaces.push(Iface {
                                    linktype: idb.linktype.0 as u16,
                                    units_per_sec: ts_units(idb.if_tsresol),
                                    offset_s: idb.ts_offset(),
                                });
                            }
                            Block::EnhancedPacket(epb) => {
                                self.frames += 1;
                                let number = self.frames;
                                match self.ifaces.get(epb.if_id as usize) {
                                    Some(iface) => {
                                        let ticks =
                                            ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                                        f(Ok(Frame {
                                            number,
                                            offset,
                                            ts: ticks_to_ns(ticks, iface),
                                            iface: epb.if_id,
                                            linktype: iface.linktype,
                                            data: epb.packet_data(),
                                            orig_len: epb.origlen,
                                        }))
                                    }
                                    None => f(Err(Unreadable {
                                        number,
                                        offset,
                                        reason: SkipReason::UnknownInterface,
                                    })),
                                }
                            }
                            Block::SimplePacket(_) => {
                                self.frames += 1;
                                f(Err(Unreadable {
                                    number: self.frames,
                                    offset,
                                    reason: SkipReason::NoTimestamp,
                                }));
                            }
                            Block::Unknown(_) => self.blocks.unknown_blocks += 1,
                            _ => self.blocks.other_blocks += 1,
                        },
                    }
                    self.rdr.consume(len);
                }
                Err(PcapError::Eof) => return Ok(()),
                Err(PcapError::Incomplete(_)) => {
                    if self.rdr.refill().is_err() {
                        return Err(self.error(
                            offset,
                            ReadErrorKind::Io {
                                message: self.read_failure(),
                            },
                        ));
                    }
                }
                Err(PcapError::UnexpectedEof) => {
                    let declared = self.declared_len();
                    if declared > MAX_RECORD as u64 {
                        return Err(self.error(offset, ReadErrorKind::AbsurdLength { declared }));
                    }
                    let partial_bytes = self.rdr.data().len() as u64;
                    return Err(self.error(offset, ReadErrorKind::CutOff { partial_bytes }));
                }
                Err(PcapError::BufferTooSmall) => {
                    let declared = self.declared_len();
                    if declared > MAX_RECORD as u64 {
                        return Err(self.error(offset, ReadErrorKind::AbsurdLength { declared }));
                    }
                    // A record larger than the buffer: grow towards its declared size, but
                    // doubling at a time, so memory follows the bytes actually there. The
                    // parser says "too small" before it knows whether the stream holds
                    // that much: grown in one step, a 3 KB file whose record claims 60 MB
                    // cost a zeroed 64 MB buffer (found by fuzzing).
                    let fit = (declared as usize + 64).next_power_of_two().min(MAX_RECORD);
                    let want = self.buffer.saturating_mul(2).min(fit);
                    if !self.rdr.grow(want) || self.rdr.refill().is_err() {
                        return Err(self.error(offset, ReadErrorKind::AbsurdLength { declared }));
                    }
                    self.buffer = want;
                }
                Err(e) => {
                    let detail = match e {
                        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                            format!("parser stopped: {kind:?}")
                        }
                        PcapError::ReadError => self.read_failure(),
                        other => format!("{other:?}"),
                    };
                    return Err(self.error(offset, ReadErrorKind::Corrupt { detail }));
                }
            }
        }
    }

    fn read_failure(&self) -> String {
        if self.gzip {
            "read error in the gzip stream (corrupt or truncated compressed data)".into()
        } else {
            "read error".into()
        }
    }

    /// The length the record at the head of the buffer declares for itself.
    fn declared_len(&self) -> u64 {
        let d = self.rdr.data();
        let u32_at = |i: usize, be: bool| -> u64 {
            d.get(i..i + 4).map_or(0, |b| {
                let a = [b[0], b[1], b[2], b[3]];
                if be {
                    u32::from_be_bytes(a) as u64
                } else {
                    u32::from_le_bytes(a) as u64
                }
            })
        };
        // In the file's (or section's) byte order. Not the smaller of both readings: a
        // 768 KiB record (00 00 0c 00) read the other way round is 3 KiB, and the buffer
        // then refused to grow for it ("record declares 3088 bytes").
        match self.format {
            // pcap record: 16-byte header, then caplen bytes.
            Some(Format::Pcap | Format::PcapNano) => 16 + u32_at(8, self.big_endian),
            // pcapng block: type, total length. A Section Header Block states its own byte
            // order (its byte-order magic), which may differ from the current section's.
            _ => {
                let be = if d.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
                    d.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d][..])
                } else {
                    self.big_endian
                };
                u32_at(4, be)
            }
        }
    }
}

/// Timestamp units per second for a pcapng `if_tsresol` byte: 10^n, or 2^n with the top
/// bit set. (pcap-parser 0.17's own `ts_resolution` rejects every 2^n value.)
fn ts_units(tsresol: u8) -> Option<u64> {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n).filter(|_| n < 64)
    }
}

/// Converts a pcapng timestamp in interface units to nanoseconds since the epoch.
fn ticks_to_ns(ticks: u64, iface: &Iface) -> i64 {
    let units = iface.units_per_sec.unwrap_or(1_000_000) as u128;
    let t = ticks as u128;
    let ns = (t / units) * 1_000_000_000 + (t % units) * 1_000_000_000 / units;
    let ns = i128::try_from(ns).unwrap_or(i128::MAX) + iface.offset_s as i128 * 1_000_000_000;
    ns.clamp(-MAX_TS as i128, MAX_TS as i128) as i64
}

/// The first bytes of a file, in hex, for a "not a capture" message.
fn sniff_magic(name: &str, gzip: bool) -> String {
    let mut head = [0u8; 4];
    let n = if name == "-" {
        0
    } else {
        File::open(name)
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0)
    };
    let hex: Vec<String> = head[..n].iter().map(|b| format!("{b:02x}")).collect();
    let what = if gzip { " (gzip-compressed)" } else { "" };
    if hex.is_empty() {
        format!("unavailable{what}")
    } else {
        format!("{}{what}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: Vec<u8>) -> Result<CaptureReader, ReadError> {
        CaptureReader::from_reader("test", Box::new(io::Cursor::new(bytes)))
    }

    /// A classic little-endian microsecond pcap header for Ethernet.
    fn pcap_header() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    }

    fn record(v: &mut Vec<u8>, sec: u32, usec: u32, data: &[u8]) {
        v.extend_from_slice(&sec.to_le_bytes());
        v.extend_from_slice(&usec.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
    }

    /// (frame number, offset, time, captured length) of each frame.
    type Seen = Vec<(u64, u64, i64, usize)>;

    fn collect(r: &mut CaptureReader) -> (Seen, Result<(), ReadError>) {
        let mut out = Vec::new();
        let res = r.for_each(|fr| {
            let fr = fr.unwrap();
            out.push((fr.number, fr.offset, fr.ts, fr.data.len()));
        });
        (out, res)
    }

    #[test]
    fn test_pcap_frames_numbers_offsets_times() {
        let mut v = pcap_header();
        record(&mut v, 10, 5, &[0xaa; 60]);
        record(&mut v, 11, 999_999, &[0xbb; 70]);
        let mut r = reader(v).unwrap();
        let (frames, res) = collect(&mut r);
        assert!(res.is_ok());
        assert_eq!(
            frames,
            vec![
                (1, 24, 10_000_005_000, 60),
                (2, 24 + 16 + 60, 11_999_999_000, 70)
            ]
        );
        assert_eq!(r.format(), Some(Format::Pcap));
    }

    #[test]
    fn test_cut_off_mid_record_is_reported_after_good_frames() {
        let mut v = pcap_header();
        record(&mut v, 1, 0, &[1; 100]);
        record(&mut v, 2, 0, &[2; 100]);
        v.truncate(v.len() - 30);
        let mut r = reader(v).unwrap();
        let (frames, res) = collect(&mut r);
        assert_eq!(frames.len(), 1);
        let e = res.unwrap_err();
        assert!(e.is_warning());
        assert_eq!(e.offset, 24 + 116);
        assert_eq!(e.after_frame, 1);
        assert!(matches!(
            e.kind,
            ReadErrorKind::CutOff { partial_bytes: 86 }
        ));
    }

    #[test]
    fn test_absurd_caplen_does_not_allocate_and_names_offset() {
        let mut v = pcap_header();
        record(&mut v, 1, 0, &[1; 40]);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        v.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        // Enough bytes after it that the reader is not simply at end of file.
        v.extend_from_slice(&vec![0u8; BUFFER + 10]);
        let mut r = reader(v).unwrap();
        let (frames, res) = collect(&mut r);
        assert_eq!(frames.len(), 1);
        let e = res.unwrap_err();
        assert!(!e.is_warning());
        assert_eq!(e.offset, 24 + 56);
        assert!(
            matches!(e.kind, ReadErrorKind::AbsurdLength { declared } if declared > 1 << 31),
            "{e}"
        );
    }

    #[test]
    fn test_record_larger_than_buffer_is_read_whole() {
        let mut v = pcap_header();
        record(&mut v, 1, 0, &vec![5u8; 3 * BUFFER]);
        record(&mut v, 2, 0, &[6; 10]);
        let mut r = reader(v).unwrap();
        let (frames, res) = collect(&mut r);
        res.unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(r.buffer, 4 * BUFFER);
    }

    #[test]
    fn test_small_file_claiming_a_huge_record_does_not_grow_the_buffer_to_it() {
        // Fuzz regression: a 48 MiB caplen (the same in either byte order) in a tiny file
        // grew the buffer to 64 MiB at once.
        let mut v = pcap_header();
        record(&mut v, 1, 0, &[1; 40]);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&0x02ff_ff02u32.to_le_bytes());
        v.extend_from_slice(&0x02ff_ff02u32.to_le_bytes());
        v.extend_from_slice(&[0u8; 100]);
        let mut r = reader(v).unwrap();
        let (frames, res) = collect(&mut r);
        assert_eq!(frames.len(), 1);
        let e = res.unwrap_err();
        assert!(
            matches!(e.kind, ReadErrorKind::CutOff { partial_bytes: 116 }),
            "{e}"
        );
        assert!(r.buffer <= 2 * BUFFER, "buffer grew to {}", r.buffer);
    }

    #[test]
    fn test_pcapng_block_shorter_than_12_bytes_is_corrupt() {
        // Fuzz regression: a Process Information Block (0x80000001) of length 8 made
        // pcap-parser subtract 12 from it and overflow.
        let mut v = Vec::new();
        v.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        v.extend_from_slice(&28u32.to_le_bytes());
        v.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        v.extend_from_slice(&28u32.to_le_bytes());
        v.extend_from_slice(&0x8000_0001u32.to_le_bytes());
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&[0u8; 16]);
        let mut r = reader(v).unwrap();
        let e = r.for_each(|_| {}).unwrap_err();
        assert_eq!(e.offset, 28);
        assert!(
            matches!(&e.kind, ReadErrorKind::Corrupt { detail } if detail.contains("length 8")),
            "{e}"
        );
    }

    #[test]
    fn test_not_a_capture_and_empty() {
        let e = reader(b"hello world, not a capture".to_vec())
            .err()
            .unwrap();
        assert_eq!(e.code(), "not_a_capture");
        let e = reader(Vec::new()).err().unwrap();
        assert_eq!(e.code(), "empty");
    }

    #[test]
    fn test_gzip_is_detected_by_magic() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut v = pcap_header();
        record(&mut v, 3, 0, &[7; 50]);
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&v).unwrap();
        let mut r = reader(enc.finish().unwrap()).unwrap();
        assert!(r.gzip());
        let (frames, res) = collect(&mut r);
        assert!(res.is_ok());
        assert_eq!(frames, vec![(1, 24, 3_000_000_000, 50)]);
    }

    /// The link type comes from the pcap header, and from a pcapng file's first interface
    /// (here Linux cooked v2, a node's `tcpdump -i any`, in the lab's checked-in capture).
    #[test]
    fn test_first_link_type_of_pcap_and_pcapng() {
        assert_eq!(reader(pcap_header()).unwrap().first_link_type(), Some(1));
        let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lab");
        let mut any = CaptureReader::open(&lab.join("syn_drop.nat-any.pcap")).unwrap();
        assert_eq!(any.first_link_type(), Some(276));
        let mut ng = CaptureReader::open(&lab.join("rs_timewait.client.pcapng")).unwrap();
        assert_eq!(ng.first_link_type(), Some(1));
        assert_eq!(
            reader(b"\x0a\x0d\x0d\x0a".to_vec())
                .ok()
                .and_then(|mut r| r.first_link_type()),
            None
        );
    }

    #[test]
    fn test_ts_units_decimal_and_binary() {
        assert_eq!(ts_units(6), Some(1_000_000));
        assert_eq!(ts_units(9), Some(1_000_000_000));
        assert_eq!(ts_units(0x80 | 20), Some(1 << 20));
        assert_eq!(ts_units(25), None);
    }

    #[test]
    fn test_ticks_to_ns_resolutions_and_offset() {
        let us = Iface {
            linktype: 1,
            units_per_sec: Some(1_000_000),
            offset_s: 0,
        };
        assert_eq!(ticks_to_ns(1_500_000, &us), 1_500_000_000);
        let ns = Iface {
            linktype: 1,
            units_per_sec: Some(1_000_000_000),
            offset_s: 10,
        };
        assert_eq!(ticks_to_ns(7, &ns), 10_000_000_007);
        let bin = Iface {
            linktype: 1,
            units_per_sec: Some(1 << 10),
            offset_s: 0,
        };
        assert_eq!(ticks_to_ns(1024 + 512, &bin), 1_500_000_000);
        let far = Iface {
            linktype: 1,
            units_per_sec: Some(1),
            offset_s: i64::MAX,
        };
        assert_eq!(ticks_to_ns(u64::MAX, &far), MAX_TS);
        let before = Iface {
            offset_s: i64::MIN,
            ..far
        };
        assert_eq!(ticks_to_ns(0, &before), -MAX_TS);
    }
}
