//! The two decoders agree: on every frame of every capture under `testdata/` and, when
//! present, `../shared/corpus/` (tcpdump's test suite, the pcapng conformance files: odd
//! link types, tags, tunnels, fragments, cut and damaged headers), the fast path
//! `decode_common` either declines or gives exactly the segment `decode_lax` gives. The
//! fuzz harness checks the same on mutated frames.

use crate::util::*;
use pcapdiag::decode::{decode_common, decode_lax};
use pcapdiag::read::CaptureReader;

#[test]
fn test_decode_common_agrees_with_decode_lax_on_every_frame() {
    let mut files = files_under(&testdata(""), &[]);
    // Without the corpus, testdata/ only (a failure under CI).
    if let Some(corpus) = shared_corpus() {
        files.extend(files_under(&corpus, &[]));
    }
    files.sort();
    let (mut frames, mut common, mut tcp, mut readable) = (0u64, 0u64, 0u64, 0u64);
    for path in &files {
        // Not every file is a capture (goldens, notes): those are skipped.
        let Ok(mut reader) = CaptureReader::open(path) else {
            continue;
        };
        readable += 1;
        let _ = reader.for_each(|r| {
            let Ok(frame) = r else { return };
            frames += 1;
            let lax = decode_lax(&frame);
            tcp += u64::from(lax.is_ok());
            if let Some(seg) = decode_common(&frame) {
                common += 1;
                assert_eq!(
                    Ok(seg),
                    lax,
                    "{}: frame {}: decode_common differs from decode_lax",
                    path.display(),
                    frame.number
                );
            }
        });
    }
    println!("{readable} captures, {frames} frames, {tcp} TCP, {common} by decode_common");
    assert!(readable >= 20, "only {readable} captures found");
    // The common case is common: most TCP frames of these captures take the fast path.
    assert!(
        common * 2 > tcp,
        "{common} of {tcp} TCP frames took the fast path"
    );
}
