//! Arbitrary bytes into the archive segment decoder (`archive::verify_bytes`:
//! header, trailer, footer, block index, every block decompressed and every
//! batch in it parsed). Must never panic, hang or allocate in proportion to a
//! length field alone. The first input byte holds flags; bit 0 repairs the
//! block, index and footer CRCs first, so mutations reach the code behind them.
//! An archive that verifies must agree with itself (counts, sizes).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

const FIX_CRCS: u8 = 1;
const TRAILER_LEN: usize = 16;
const ENTRY_LEN: usize = 48;

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}
fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}
fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)).ok()
}

/// Rewrites the block CRCs, the index CRC and the footer CRC to match the
/// bytes (mirrors the layout in `src/archive.rs`; only used to repair sums).
fn fix_crcs(b: &mut [u8]) -> Option<()> {
    let trailer = b.len().checked_sub(TRAILER_LEN)?;
    let footer_len = u32_at(b, trailer)?;
    let footer = trailer.checked_sub(footer_len)?;
    let topic_len = u16_at(b, footer)?;
    // Fields after the topic: partition u32, base, next, min_ts, max_ts,
    // count, raw (u64 each), block_count u32, index_position u64, index_len
    // u32, index_crc u32.
    let after_topic = footer + 2 + topic_len;
    let index_pos_at = after_topic + 4 + 6 * 8 + 4;
    let index_pos = u64_at(b, index_pos_at)?;
    let index_len = u32_at(b, index_pos_at + 8)?;
    let index_crc_at = index_pos_at + 12;
    let index_end = index_pos.checked_add(index_len)?;
    if index_end > b.len() {
        return None;
    }
    for e in (index_pos..index_end).step_by(ENTRY_LEN) {
        if e + ENTRY_LEN > index_end {
            break;
        }
        let pos = u64_at(b, e + 24)?;
        let len = u32_at(b, e + 32)?;
        if let Some(block) = b.get(pos..pos.checked_add(len)?) {
            let crc = crc32fast::hash(block);
            b[e + 40..e + 44].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b[index_pos..index_end]);
    b.get_mut(index_crc_at..index_crc_at + 4)?
        .copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(&b[footer..trailer]);
    b[trailer + 4..trailer + 8].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & FIX_CRCS != 0 {
        let _ = fix_crcs(&mut bytes);
    }
    let name = Path::new("fuzz.archive");
    if let Ok(s) = eventfabric::archive::verify_bytes(&bytes, name) {
        assert_eq!(s.file_bytes, bytes.len() as u64);
        assert_eq!(s.record_count, s.next_offset - s.base_offset);
        assert!(s.block_count > 0 && s.min_timestamp <= s.max_timestamp);
        assert!(s.raw_bytes >= s.record_count * 16);
    }
});
