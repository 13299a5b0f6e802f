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
