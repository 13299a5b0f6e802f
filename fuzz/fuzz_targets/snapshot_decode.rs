//! Arbitrary bytes into the snapshot decoder (`eventfabric::snapshot::decode`,
//! the validation every import runs first). Must never panic or allocate in
//! proportion to untrusted length fields beyond the format's 64 MiB cap; a
//! file that decodes must be self-consistent. The same bytes are tried again
//! with every checksum repaired, so mutations reach the structural checks.
#![no_main]

use std::collections::BTreeMap;

use eventfabric::snapshot::decode;
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    let Ok((info, records)) = decode(data) else {
        return;
    };
    assert_eq!(records.len() as u64, info.records, "footer count disagrees");
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for r in &records {
        assert!(info.partitions.contains(&r.partition), "unlisted partition");
        if let Some(&prev) = last.get(&r.partition) {
            assert!(r.offset > prev, "offsets do not increase");
        }
        last.insert(r.partition, r.offset);
        assert!(
            eventfabric::EnvelopeRef::decode(&r.value).is_ok(),
            "invalid envelope accepted"
        );
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn put_crc(b: &mut [u8], at: usize, crc: u32) {
    if let Some(slot) = b.get_mut(at..at + 4) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Recomputes every CRC of a snapshot-shaped input (header, header metadata,
/// blocks, footer) and points the trailer at the footer, as far as the
/// length fields allow.
fn repair(data: &[u8]) -> Option<Vec<u8>> {
    let mut b = data.to_vec();
    let meta_len = u32_at(&b, 16)?;
    let meta_end = 32usize.checked_add(meta_len)?;
    let meta_crc = crc32fast::hash(b.get(32..meta_end)?);
    put_crc(&mut b, 20, meta_crc);
    let header_crc = crc32fast::hash(b.get(..28)?);
    put_crc(&mut b, 28, header_crc);
    let mut pos = meta_end;
    loop {
        match b.get(pos..pos + 4)? {
            b"SBLK" => {
                let len = u32_at(&b, pos + 12)?;
                let end = (pos + 20).checked_add(len)?;
                let mut h = crc32fast::Hasher::new();
                h.update(b.get(pos..pos + 16)?);
                h.update(b.get(pos + 20..end)?);
                let crc = h.finalize();
                put_crc(&mut b, pos + 16, crc);
                pos = end;
            }
            b"SFTR" => {
                let len = u32_at(&b, pos + 20)?;
                let end = (pos + 24).checked_add(len)?;
                let crc = crc32fast::hash(b.get(pos..end)?);
                put_crc(&mut b, end, crc);
                if let Some(slot) = b.get_mut(end + 4..end + 12) {
                    slot.copy_from_slice(&(pos as u64).to_le_bytes());
                }
                return Some(b);
            }
            _ => return Some(b),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = repair(data) {
        check(&fixed);
    }
});
