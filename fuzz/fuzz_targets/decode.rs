//! One frame's bytes through `decode::decode`. Input: 2 bytes choosing the link type,
//! 2 bytes of "not captured" length (orig_len − captured, exercising the snaplen paths),
//! then the frame. `fuzz/seed.sh` writes every frame of the seed captures in this form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapdiag::decode::{self, linktype};
use pcapdiag::read::Frame;

/// The link types `decode` handles, and one it does not.
const LINKTYPES: [u16; 11] = [
    linktype::ETHERNET,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::NULL,
    linktype::LOOP,
    linktype::RAW_BSD_12,
    linktype::RAW_BSD_14,
    147, // LINKTYPE_USER0: unsupported
];

fuzz_target!(|data: &[u8]| {
    let Some((head, frame)) = data.split_at_checked(4) else {
        return;
    };
    let sel = u16::from_be_bytes([head[0], head[1]]);
    // Mostly a supported link type; a selector with the top bit set is taken as is.
    let linktype = if sel & 0x8000 != 0 {
        sel & 0x7fff
    } else {
        LINKTYPES[sel as usize % LINKTYPES.len()]
    };
    let uncaptured = u16::from_be_bytes([head[2], head[3]]) as u32;
    let _ = decode::decode(&Frame {
        number: 1,
        offset: 0,
        ts: 0,
        iface: 0,
        linktype,
        data: frame,
        orig_len: (frame.len() as u32).saturating_add(uncaptured),
    });
});
