//! Arbitrary bytes into the batch decoder. Must never panic or allocate in
//! proportion to untrusted length fields; a batch that parses must re-encode
//! to exactly the same bytes.
#![no_main]

use eventfabric::batch::{BatchEncoder, BatchView, parse_header};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    let header = parse_header(data);
    let Ok(view) = BatchView::parse(data) else {
        return;
    };
    let h = view.header;
    assert_eq!(
        header.as_ref().ok(),
        Some(&h),
        "parse_header disagrees with BatchView::parse"
    );
    assert_eq!(view.as_bytes().len(), h.length as usize);

    let mut enc = BatchEncoder::default();
    enc.begin(h.base_offset, h.durable_offset, h.appended_at);
    let mut n: u64 = 0;
    for r in view.records() {
        assert_eq!(
            r.offset,
            h.base_offset + n,
            "record offsets are not consecutive"
        );
        assert_eq!(
            &view.as_bytes()[r.value_start..r.value_start + r.value.len()],
            r.value
        );
        enc.push(r.timestamp, r.value);
        n += 1;
    }
    assert_eq!(
        n,
        u64::from(h.count),
        "records() yields a different count than the header"
    );
    assert_eq!(
        enc.finish(),
        view.as_bytes(),
        "re-encoding a parsed batch changed its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    // The raw bytes, as a reader of a damaged file would see them.
    check(data);

    // The same bytes with the CRC repaired, so mutations of the header fields
    // and records get past the checksum and exercise the structural checks.
    if let Ok(h) = parse_header(data) {
        let len = h.length as usize;
        if len >= h.header_len() {
            let mut fixed = data[..len].to_vec();
            let crc = crc32fast::hash(&fixed[16..]);
            fixed[12..16].copy_from_slice(&crc.to_le_bytes());
            check(&fixed);
        }
    }
});
