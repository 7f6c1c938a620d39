//! Capture file writers: classic pcap and pcapng, to any `io::Write`.
//!
//! Both writers take timestamps as integer nanoseconds since the Unix epoch and convert
//! them to the file's own unit at the last moment (truncating, as a capturing kernel
//! does), so a test can compute exactly what a reader must return. Captured bytes are cut
//! to the snaplen while the original length stays the frame's real length; the
//! `write_raw` / `write_unknown_block` doors exist to craft damaged or exotic files.

use std::io::{self, Write};

const NS_PER_SEC: u64 = 1_000_000_000;

/// Byte order of a written file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Endian {
    #[default]
    Little,
    Big,
}

/// Writes integers in a file's chosen byte order.
#[derive(Clone, Copy, Debug)]
struct Order(Endian);

impl Order {
    fn u16(self, out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&match self.0 {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }
    fn u32(self, out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&match self.0 {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }
    fn u64(self, out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&match self.0 {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }
}

/// Options of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapOptions {
    /// LINKTYPE_* number of every record (1 Ethernet, 113 SLL, 276 SLL2, 101 raw IP, ...).
    pub linktype: u32,
    /// Nanosecond magic (`0xa1b23c4d`) instead of microsecond (`0xa1b2c3d4`).
    pub nanos: bool,
    pub endian: Endian,
    /// Bytes kept of each frame; `orig_len` still records the full length.
    pub snaplen: u32,
}

impl Default for PcapOptions {
    /// What `tcpdump -w` writes on a little-endian host.
    fn default() -> Self {
        PcapOptions {
            linktype: 1,
            nanos: false,
            endian: Endian::Little,
            snaplen: 262_144,
        }
    }
}

/// A classic pcap writer. The file header is written by [`PcapWriter::new`].
pub struct PcapWriter<W: Write> {
    w: W,
    opts: PcapOptions,
    // One scratch buffer so a record costs one `write_all`, not four.
    buf: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte global header.
    pub fn new(mut w: W, opts: PcapOptions) -> io::Result<Self> {
        let o = Order(opts.endian);
        let mut buf = Vec::with_capacity(24);
        o.u32(&mut buf, if opts.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        o.u16(&mut buf, 2);
        o.u16(&mut buf, 4);
        o.u32(&mut buf, 0); // thiszone: always UTC in practice
        o.u32(&mut buf, 0); // sigfigs
        o.u32(&mut buf, opts.snaplen);
        o.u32(&mut buf, opts.linktype);
        w.write_all(&buf)?;
        Ok(PcapWriter { w, opts, buf })
    }

    pub fn options(&self) -> &PcapOptions {
        &self.opts
    }

    /// One record; keeps at most `snaplen` bytes, `orig_len = data.len()`.
    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let keep = data.len().min(self.opts.snaplen as usize);
        let orig = u32::try_from(data.len()).map_err(|_| invalid("frame longer than 4 GiB"))?;
        self.write_raw(ts_ns, keep as u32, orig, &data[..keep])
    }

    /// One record with header fields as given, however inconsistent with `bytes`: the tool
    /// for crafting a caplen larger than the snaplen, a record cut off at end of file, ...
    pub fn write_raw(
        &mut self,
        ts_ns: u64,
        caplen_field: u32,
        orig_len: u32,
        bytes: &[u8],
    ) -> io::Result<()> {
        let o = Order(self.opts.endian);
        let secs = u32::try_from(ts_ns / NS_PER_SEC)
            .map_err(|_| invalid("timestamp past 2106 does not fit a pcap record"))?;
        let sub = ts_ns % NS_PER_SEC;
        let frac = if self.opts.nanos { sub } else { sub / 1_000 };
        self.buf.clear();
        o.u32(&mut self.buf, secs);
        o.u32(&mut self.buf, frac as u32);
        o.u32(&mut self.buf, caplen_field);
        o.u32(&mut self.buf, orig_len);
        self.buf.extend_from_slice(bytes);
        self.w.write_all(&self.buf)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Interface Description Block option codes (pcapng spec §4.2).
const OPT_ENDOFOPT: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

const SHB_TYPE: u32 = 0x0A0D_0D0A;
const IDB_TYPE: u32 = 0x0000_0001;
const EPB_TYPE: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// What the writer remembers of one interface to encode its timestamps.
#[derive(Clone, Copy, Debug)]
struct Iface {
    snaplen: u32,
    /// Timestamp units per second, from `if_tsresol`.
    units_per_sec: u64,
    /// `if_tsoffset`, seconds added by the reader to every timestamp.
    offset_s: i64,
}

/// Units per second of an `if_tsresol` byte; `None` if it does not fit a `u64`.
pub fn tsresol_units(tsresol: u8) -> Option<u64> {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n)
    }
}

/// A pcapng writer: one section header is written by [`PcapngWriter::new`], more with
/// [`PcapngWriter::new_section`]; interface ids count from 0 within each section.
pub struct PcapngWriter<W: Write> {
    w: W,
    order: Order,
    ifaces: Vec<Iface>,
    buf: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// A little-endian file, as every capturing tool writes on x86 and arm.
    pub fn new(w: W) -> io::Result<Self> {
        Self::with_endian(w, Endian::Little)
    }

    pub fn with_endian(w: W, endian: Endian) -> io::Result<Self> {
        let mut me = PcapngWriter {
            w,
            order: Order(endian),
            ifaces: Vec::new(),
            buf: Vec::with_capacity(2048),
        };
        me.new_section()?;
        Ok(me)
    }

    /// Starts a new section; the interfaces of the previous one are forgotten, as a reader
    /// must forget them.
    pub fn new_section(&mut self) -> io::Result<()> {
        self.ifaces.clear();
        let o = self.order;
        let mut body = Vec::with_capacity(32);
        o.u32(&mut body, BYTE_ORDER_MAGIC);
        o.u16(&mut body, 1);
        o.u16(&mut body, 0);
        // Section length unknown: we stream.
        o.u64(&mut body, u64::MAX);
        push_option(o, &mut body, OPT_SHB_USERAPPL, b"pcapdiag synth");
        push_option(o, &mut body, OPT_ENDOFOPT, &[]);
        self.write_block(SHB_TYPE, &body)
    }

    /// Adds an Interface Description Block and returns its id within the section.
    /// `tsresol` is the `if_tsresol` byte (6 = µs, 9 = ns, `0x80 | n` = 2^-n s); 6 is the
    /// pcapng default and is then left out of the file, as most writers do.
    pub fn add_interface(
        &mut self,
        linktype: u32,
        snaplen: u32,
        tsresol: u8,
        tsoffset_s: Option<i64>,
    ) -> io::Result<u32> {
        let units_per_sec =
            tsresol_units(tsresol).ok_or_else(|| invalid("if_tsresol does not fit a u64"))?;
        let linktype =
            u16::try_from(linktype).map_err(|_| invalid("pcapng link types are 16 bits"))?;
        let o = self.order;
        let mut body = Vec::with_capacity(40);
        o.u16(&mut body, linktype);
        o.u16(&mut body, 0);
        o.u32(&mut body, snaplen);
        if tsresol != 6 {
            push_option(o, &mut body, OPT_IF_TSRESOL, &[tsresol]);
        }
        if let Some(off) = tsoffset_s {
            let mut v = Vec::with_capacity(8);
            o.u64(&mut v, off as u64);
            push_option(o, &mut body, OPT_IF_TSOFFSET, &v);
        }
        push_option(o, &mut body, OPT_ENDOFOPT, &[]);
        self.write_block(IDB_TYPE, &body)?;
        self.ifaces.push(Iface {
            snaplen,
            units_per_sec,
            offset_s: tsoffset_s.unwrap_or(0),
        });
        Ok((self.ifaces.len() - 1) as u32)
    }

    /// An Enhanced Packet Block on interface `if_id`; the timestamp is stored in that
    /// interface's units, minus its offset (truncated toward the past).
    pub fn write(&mut self, if_id: u32, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let iface = *self
            .ifaces
            .get(if_id as usize)
            .ok_or_else(|| invalid("no such interface in this section"))?;
        let rel_ns = i128::from(ts_ns) - i128::from(iface.offset_s) * i128::from(NS_PER_SEC);
        if rel_ns < 0 {
            return Err(invalid("timestamp before the interface's if_tsoffset"));
        }
        let units = rel_ns * i128::from(iface.units_per_sec) / i128::from(NS_PER_SEC);
        let units = u64::try_from(units).map_err(|_| invalid("timestamp overflows 64 bits"))?;
        // A snaplen of 0 means "no limit" in pcapng.
        let keep = if iface.snaplen == 0 {
            data.len()
        } else {
            data.len().min(iface.snaplen as usize)
        };
        let orig = u32::try_from(data.len()).map_err(|_| invalid("frame longer than 4 GiB"))?;
        let o = self.order;
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        o.u32(&mut body, if_id);
        o.u32(&mut body, (units >> 32) as u32);
        o.u32(&mut body, units as u32);
        o.u32(&mut body, keep as u32);
        o.u32(&mut body, orig);
        body.extend_from_slice(&data[..keep]);
        pad4(&mut body);
        let r = self.write_block(EPB_TYPE, &body);
        self.buf = body;
        r
    }

    /// A block of any type with `body` (padded to 4 bytes), for reader tests: unknown
    /// types must be skipped, not fatal.
    pub fn write_unknown_block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let mut b = body.to_vec();
        pad4(&mut b);
        self.write_block(block_type, &b)
    }

    fn write_block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        debug_assert!(body.len().is_multiple_of(4));
        let total = u32::try_from(body.len() + 12).map_err(|_| invalid("block too large"))?;
        let o = self.order;
        let mut head = Vec::with_capacity(8);
        o.u32(&mut head, block_type);
        o.u32(&mut head, total);
        let mut tail = Vec::with_capacity(4);
        o.u32(&mut tail, total);
        self.w.write_all(&head)?;
        self.w.write_all(body)?;
        self.w.write_all(&tail)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

fn push_option(o: Order, out: &mut Vec<u8>, code: u16, value: &[u8]) {
    o.u16(out, code);
    o.u16(out, value.len() as u16);
    out.extend_from_slice(value);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_parser::pcapng::Block;
    use pcap_parser::{PcapBlockOwned, PcapError, create_reader};

    /// A record as read back: what a reader must report.
    #[derive(Debug, PartialEq, Eq)]
    struct Rec {
        /// (interface id within its section, section number); (0, 0) for classic pcap.
        iface: (u32, u32),
        ts_ns: u64,
        caplen: u32,
        orig: u32,
        data: Vec<u8>,
    }

    /// Everything a generic pcap-parser reader sees: records with timestamps computed in
    /// integer ns from each interface's resolution and offset, plus unknown block types.
    fn read_all(bytes: &[u8]) -> (Vec<Rec>, Vec<u32>, Vec<u32>) {
        let mut reader = create_reader(1 << 16, bytes).expect("reader");
        let mut recs = Vec::new();
        let mut unknown = Vec::new();
        let mut linktypes = Vec::new();
        let mut legacy_nanos = false;
        let mut section = 0u32;
        let mut ifaces: Vec<(u64, i64)> = Vec::new();
        loop {
            match reader.next() {
                Ok((off, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            legacy_nanos = h.is_nanosecond_precision();
                            linktypes.push(h.network.0 as u32);
                        }
                        PcapBlockOwned::Legacy(b) => {
                            let sub = if legacy_nanos {
                                u64::from(b.ts_usec)
                            } else {
                                u64::from(b.ts_usec) * 1_000
                            };
                            recs.push(Rec {
                                iface: (0, 0),
                                ts_ns: u64::from(b.ts_sec) * NS_PER_SEC + sub,
                                caplen: b.caplen,
                                orig: b.origlen,
                                data: b.data.to_vec(),
                            });
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            section += 1;
                            ifaces.clear();
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            linktypes.push(idb.linktype.0 as u32);
                            // Not `idb.ts_resolution()`: pcap-parser 0.17 returns None for
                            // every 2^-n resolution (it range-checks the byte with its flag bit).
                            ifaces.push((tsresol_units(idb.if_tsresol).unwrap(), idb.if_tsoffset));
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let (res, off_s) = ifaces[epb.if_id as usize];
                            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let ns = i128::from(units) * i128::from(NS_PER_SEC) / i128::from(res)
                                + i128::from(off_s) * i128::from(NS_PER_SEC);
                            recs.push(Rec {
                                iface: (epb.if_id, section - 1),
                                ts_ns: ns as u64,
                                caplen: epb.caplen,
                                orig: epb.origlen,
                                data: epb.data[..epb.caplen as usize].to_vec(),
                            });
                        }
                        PcapBlockOwned::NG(Block::Unknown(u)) => unknown.push(u.block_type),
                        PcapBlockOwned::NG(_) => {}
                    }
                    reader.consume(off);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => reader.refill().unwrap(),
                Err(e) => panic!("read error {e:?}"),
            }
        }
        (recs, unknown, linktypes)
    }

    fn frame(n: usize) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }

    #[test]
    fn test_pcap_micro_little_endian_round_trip() {
        let mut w = PcapWriter::new(Vec::new(), PcapOptions::default()).unwrap();
        w.write(1_700_000_000_123_456_789, &frame(60)).unwrap();
        w.write(1_700_000_001_000_000_999, &frame(1514)).unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        let (recs, _, lt) = read_all(&bytes);
        assert_eq!(lt, vec![1]);
        // Microsecond files truncate the sub-µs part.
        assert_eq!(recs[0].ts_ns, 1_700_000_000_123_456_000);
        assert_eq!(recs[1].ts_ns, 1_700_000_001_000_000_000);
        assert_eq!((recs[1].caplen, recs[1].orig), (1514, 1514));
        assert_eq!(recs[0].data, frame(60));
    }

    #[test]
    fn test_pcap_nanos_big_endian_snaplen_round_trip() {
        let opts = PcapOptions {
            linktype: 276,
            nanos: true,
            endian: Endian::Big,
            snaplen: 96,
        };
        let mut w = PcapWriter::new(Vec::new(), opts).unwrap();
        w.write(1_700_000_000_123_456_789, &frame(1514)).unwrap();
        w.write(5, &frame(40)).unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[..4], &[0xa1, 0xb2, 0x3c, 0x4d]);
        let (recs, _, lt) = read_all(&bytes);
        assert_eq!(lt, vec![276]);
        assert_eq!(recs[0].ts_ns, 1_700_000_000_123_456_789);
        assert_eq!((recs[0].caplen, recs[0].orig), (96, 1514));
        assert_eq!(recs[0].data, frame(96));
        assert_eq!((recs[1].ts_ns, recs[1].caplen, recs[1].orig), (5, 40, 40));
    }

    #[test]
    fn test_pcap_write_raw_keeps_inconsistent_fields() {
        let mut w = PcapWriter::new(Vec::new(), PcapOptions::default()).unwrap();
        w.write_raw(0, 100, 50, &[1, 2, 3]).unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), 24 + 16 + 3);
        assert_eq!(&bytes[24 + 8..24 + 16], &[100, 0, 0, 0, 50, 0, 0, 0]);
    }

    #[test]
    fn test_pcap_timestamp_past_2106_is_an_error() {
        let mut w = PcapWriter::new(Vec::new(), PcapOptions::default()).unwrap();
        assert!(w.write(u64::MAX, &[0]).is_err());
    }

    #[test]
    fn test_pcapng_resolutions_offsets_sections_and_unknown_blocks() {
        let t = 1_700_000_000_123_456_789u64;
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let us = w.add_interface(1, 0, 6, None).unwrap();
        let ns = w.add_interface(113, 128, 9, None).unwrap();
        let bin = w
            .add_interface(276, 0, 0x80 | 20, Some(1_600_000_000))
            .unwrap();
        assert_eq!((us, ns, bin), (0, 1, 2));
        w.write(us, t, &frame(70)).unwrap();
        w.write(ns, t, &frame(300)).unwrap();
        w.write(bin, t, &frame(33)).unwrap();
        w.write_unknown_block(0x0BAD_0001, &[1, 2, 3, 4, 5])
            .unwrap();
        w.new_section().unwrap();
        // pcap-parser's own helper cannot decode a binary resolution: readers must not
        // rely on it.
        assert_eq!(pcap_parser::pcapng::build_ts_resolution(0x80 | 20), None);
        // Ids restart in a new section; an offset moves stored values, not the time.
        let neg = w.add_interface(1, 0, 9, Some(-10)).unwrap();
        assert_eq!(neg, 0);
        w.write(neg, t, &frame(20)).unwrap();
        assert!(w.write(1, t, &frame(20)).is_err());
        let bytes = w.into_inner();
        assert_eq!(bytes.len() % 4, 0);
        let (recs, unknown, lt) = read_all(&bytes);
        assert_eq!(lt, vec![1, 113, 276, 1]);
        assert_eq!(unknown, vec![0x0BAD_0001]);
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].ts_ns, 1_700_000_000_123_456_000);
        assert_eq!(recs[1].ts_ns, t);
        assert_eq!((recs[1].caplen, recs[1].orig), (128, 300));
        assert_eq!(recs[1].data, frame(128));
        // 2^-20 s units: the reader gets back within one unit (< 1 µs) below the truth.
        let units = (t - 1_600_000_000 * NS_PER_SEC) as u128 * (1 << 20) / 1_000_000_000;
        let back = (units * 1_000_000_000 / (1 << 20)) as u64 + 1_600_000_000 * NS_PER_SEC;
        assert_eq!(recs[2].ts_ns, back);
        assert!(t - recs[2].ts_ns < 954);
        assert_eq!(recs[3].iface, (0, 1));
        assert_eq!(recs[3].ts_ns, t);
    }

    #[test]
    fn test_pcapng_timestamp_before_offset_is_an_error() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let id = w.add_interface(1, 0, 9, Some(100)).unwrap();
        assert!(w.write(id, 99 * NS_PER_SEC, &[0]).is_err());
        assert!(w.write(id, 100 * NS_PER_SEC, &[0]).is_ok());
    }

    #[test]
    fn test_pcapng_big_endian_round_trip() {
        let mut w = PcapngWriter::with_endian(Vec::new(), Endian::Big).unwrap();
        let id = w.add_interface(101, 0, 9, None).unwrap();
        w.write(id, 42, &frame(41)).unwrap();
        let (recs, _, lt) = read_all(&w.into_inner());
        assert_eq!(lt, vec![101]);
        assert_eq!((recs[0].ts_ns, recs[0].orig), (42, 41));
        assert_eq!(recs[0].data, frame(41));
    }
}
