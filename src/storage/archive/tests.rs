//! Unit tests of the archive format: round trips, the caller's schema
//! catalogue, and damage at every byte reported, never a panic.

use super::write::SchemaVersionOf;
use super::*;
use crate::storage::batch::BatchEncoder;
use crate::storage::io::Io;

/// An archive of `batches` (offsets from 0), as bytes.
fn archive(batches: &[Vec<(i64, Vec<u8>)>]) -> Vec<u8> {
    archive_with(batches, &|_| None)
}

/// An archive of `batches` whose schema versions `schema_version_of` reads.
fn archive_with(batches: &[Vec<(i64, Vec<u8>)>], schema_version_of: &SchemaVersionOf) -> Vec<u8> {
    let mut data = Vec::new();
    let mut next = 0u64;
    for b in batches {
        let mut enc = BatchEncoder::default();
        enc.begin(next, next, Some(next as i64));
        for (t, v) in b {
            enc.push(*t, v);
        }
        data.extend_from_slice(enc.finish());
        next += b.len() as u64;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.archive");
    let meta = ArchiveMeta {
        topic: "t.v1",
        partition: 3,
        created_at: 7,
        schema_version_of,
    };
    let s = write_archive(&Io::default(), &path, &data, &path, 0, &meta).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(s.file_bytes, bytes.len() as u64);
    bytes
}

fn sample() -> Vec<u8> {
    // Two blocks: the first closes after the 300 KiB batch.
    archive(&[
        vec![(5, b"a".to_vec()), (3, b"bb".to_vec())],
        vec![(9, vec![7u8; 300 << 10])],
        vec![(4, vec![8u8; 100 << 10]), (11, Vec::new())],
    ])
}

#[test]
fn round_trip_describes_itself() {
    let bytes = sample();
    let s = verify_bytes(&bytes, Path::new("x")).unwrap();
    assert_eq!((s.topic.as_str(), s.partition), ("t.v1", 3));
    assert_eq!((s.base_offset, s.next_offset, s.record_count), (0, 5, 5));
    assert_eq!((s.min_timestamp, s.max_timestamp), (3, 11));
    assert_eq!((s.block_count, s.undecoded_records), (2, 5));
    assert!(s.schema_versions.is_empty());
}

#[test]
fn the_footer_catalogues_the_schema_versions_the_caller_reads() {
    // The writer never reads values itself: whatever the caller's
    // reading says is catalogued, sorted and deduplicated; `None`s count
    // as undecoded.
    let bytes = archive_with(
        &[vec![
            (1, b"b:x".to_vec()),
            (2, b"raw".to_vec()),
            (3, b"a:y".to_vec()),
            (4, b"b:z".to_vec()),
        ]],
        &|v: &[u8]| match v.first() {
            Some(b'a') => Some("1.0"),
            Some(b'b') => Some("2.1"),
            _ => None,
        },
    );
    let s = verify_bytes(&bytes, Path::new("x")).unwrap();
    assert_eq!(s.schema_versions, ["1.0", "2.1"]);
    assert_eq!(s.undecoded_records, 1);
}

#[test]
fn every_truncation_and_every_flipped_byte_is_an_error_never_a_panic() {
    let bytes = sample();
    for cut in 0..bytes.len() {
        assert!(
            verify_bytes(&bytes[..cut], Path::new("x")).is_err(),
            "cut {cut}"
        );
    }
    for at in (0..bytes.len()).step_by(7) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        assert!(verify_bytes(&damaged, Path::new("x")).is_err(), "byte {at}");
    }
}

#[test]
fn a_footer_cut_short_names_the_field_and_its_byte_in_the_file() {
    let bytes = sample();
    let len = bytes.len();
    let footer_len = u32_at(&bytes, len - TRAILER_LEN).unwrap() as usize;
    let footer_at = len - TRAILER_LEN - footer_len;
    let footer = &bytes[footer_at..len - TRAILER_LEN];
    // topic_len (2) + "t.v1" (4) + partition (4), then base_offset cut short.
    let err = ArchiveSummary::decode(&footer[..12], len as u64, Path::new("x"), footer_at as u64)
        .unwrap_err();
    let Error::Corrupted {
        position, reason, ..
    } = err
    else {
        panic!("expected corruption, got {err:?}");
    };
    assert_eq!(position, footer_at as u64 + 10);
    assert!(reason.contains("footer base_offset"), "{reason}");
}

/// Fuzz finding: an index entry ending at offset u64::MAX (checksums
/// repaired) overflowed the offset chain instead of being refused.
#[test]
fn an_index_entry_at_the_top_of_the_offset_range_is_refused() {
    let mut bytes = sample();
    let len = bytes.len();
    let footer_len = u32_at(&bytes, len - TRAILER_LEN).unwrap() as usize;
    let footer_at = len - TRAILER_LEN - footer_len;
    let s = ArchiveSummary::decode(
        &bytes[footer_at..len - TRAILER_LEN],
        len as u64,
        Path::new("x"),
        footer_at as u64,
    )
    .unwrap();
    let entry = s.index_position as usize;
    bytes[entry + E_LAST_AT..entry + E_LAST_AT + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let index = &bytes[entry..entry + s.index_len as usize];
    let repaired = ArchiveSummary {
        index_crc: crc32fast::hash(index),
        ..s
    };
    let footer = repaired.encode();
    assert_eq!(footer.len(), footer_len);
    bytes[footer_at..len - TRAILER_LEN].copy_from_slice(&footer);
    let crc = crc32fast::hash(&footer).to_le_bytes();
    bytes[len - TRAILER_LEN + T_FOOTER_CRC_AT..len - TRAILER_LEN + T_FOOTER_CRC_AT + 4]
        .copy_from_slice(&crc);
    let err = verify_bytes(&bytes, Path::new("x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("block index entry 0"), "{err}");
}

#[test]
fn an_in_memory_read_past_the_end_is_corruption_at_its_byte_not_a_panic() {
    let path = Path::new("warm/00000000000000000000.archive");
    let src = MemSource {
        bytes: &[1, 2, 3, 4],
        path,
    };
    assert_eq!(src.read(1, 3).unwrap(), [2, 3, 4]);
    for (pos, len) in [(2, 3), (5, 0), (u64::MAX, 1), (1, usize::MAX)] {
        match src.read(pos, len) {
            Err(Error::Corrupted {
                path: p,
                position,
                reason,
            }) => {
                assert_eq!((p.as_path(), position), (path, pos));
                assert!(reason.contains("past the end"), "{reason}");
            }
            other => panic!("{pos}+{len}: expected Error::Corrupted, got {other:?}"),
        }
    }
    // A whole archive cut anywhere is refused the same way (`verify_bytes`
    // reads through `MemSource`).
    let bytes = sample();
    for cut in [HEADER_LEN + TRAILER_LEN, bytes.len() / 2, bytes.len() - 1] {
        match verify_bytes(bytes.get(..cut).unwrap(), path) {
            Err(Error::Corrupted { path: p, .. }) => assert_eq!(p.as_path(), path),
            other => panic!("cut {cut}: expected Error::Corrupted, got {other:?}"),
        }
    }
}
