//! Unit tests of the remote warm tier: the marker format and the block cache.

use super::*;

fn marker() -> Marker {
    Marker {
        object_size: 1000,
        object_crc32: 0xdead_beef,
        uploaded_at: 42,
        bucket: "warm".into(),
        key: "p/t.v1/0/00000000000000000000.archive".into(),
        head: vec![1; HEADER_LEN],
        tail: vec![7; 100],
    }
}

#[test]
fn markers_round_trip_and_every_damage_is_an_error_naming_the_file() {
    let m = marker();
    let bytes = m.encode();
    assert_eq!(Marker::decode(&bytes, Path::new("m")).unwrap(), m);
    for cut in 0..bytes.len() {
        assert!(
            Marker::decode(&bytes[..cut], Path::new("m")).is_err(),
            "cut {cut}"
        );
    }
    for at in 0..bytes.len() {
        let mut d = bytes.clone();
        d[at] ^= 0x04;
        let err = Marker::decode(&d, Path::new("x.remote"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.remote"), "{err}");
    }
}

#[test]
fn the_block_cache_stays_within_its_bound_and_evicts_the_least_recent() {
    let c = RemoteBlockCache::new(100);
    c.insert((1, 0), Bytes::from(vec![0; 40]));
    c.insert((1, 1), Bytes::from(vec![0; 40]));
    assert!(c.get((1, 0)).is_some()); // (1, 1) is now the oldest
    c.insert((1, 2), Bytes::from(vec![0; 40]));
    assert!(c.get((1, 1)).is_none());
    assert!(c.get((1, 0)).is_some() && c.get((1, 2)).is_some());
    assert_eq!(c.stats().0, 80);
    c.insert((2, 0), Bytes::from(vec![0; 101])); // larger than the bound: not kept
    assert!(c.get((2, 0)).is_none());
    c.forget(1);
    assert_eq!(c.stats().0, 0);
}

/// `bytes` with its last four bytes replaced by the CRC of the rest, as a
/// writer would have sealed them.
fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn a_bad_field_under_a_good_checksum_is_corruption_at_that_fields_byte() {
    let bytes = marker().encode();
    // The bucket ("warm") starts at byte 30: after magic, version, reserved,
    // object_size, object_crc32, uploaded_at and bucket_len.
    let mut not_utf8 = bytes.clone();
    not_utf8[31] = 0xFF;
    let mut key_too_long = bytes.clone();
    key_too_long[34..36].copy_from_slice(&u16::MAX.to_le_bytes());
    for (damaged, at, what) in [
        (not_utf8, 30, "bucket is not UTF-8"),
        (key_too_long, 36, "key (65535 bytes) is cut short"),
    ] {
        match Marker::decode(&resealed(damaged), Path::new("b.remote")) {
            Err(Error::Corrupted {
                path,
                position,
                reason,
            }) => {
                assert_eq!((path.as_path(), position), (Path::new("b.remote"), at));
                assert!(reason.contains(what), "{reason}");
            }
            other => panic!("expected corruption at byte {at}, got {other:?}"),
        }
    }
}
