//! The warm tier on S3-compatible object storage (issue 17), against a real
//! server: `moto_server` on loopback, started per test (tests/s3_support).
#![cfg(feature = "tier-s3")]

mod s3_support;

use bytes::Bytes;
use eventfabric::Error;
use eventfabric::{RemoteStore, S3Credentials};
use s3_support::{Moto, Proxy, config, credentials, store};

fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

#[test]
fn put_head_range_list_delete_round_trip() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let s = store(&moto.endpoint(), "warm", "fabric/a");
    s.check_bucket().unwrap();
    let small = pattern(100_000, 1);
    let key = s.key("t.v1/0/00000000000000000000.archive");
    assert_eq!(key, "fabric/a/t.v1/0/00000000000000000000.archive");
    let r = s.put(&key, small.clone()).unwrap();
    assert_eq!(
        (r.size, r.parts, r.crc32),
        (100_000, 1, crc32fast::hash(&small))
    );
    let h = s.head(&key).unwrap().expect("uploaded object");
    assert_eq!((h.size, h.crc32), (100_000, Some(r.crc32)));
    assert_eq!(
        s.get_range(&key, 10..4_010).unwrap(),
        small.slice(10..4_010)
    );
    // A range past the end is an error, never a short read taken as whole.
    let err = s.get_range(&key, 99_000..100_100).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ObjectStore {
                op: "read range",
                ..
            }
        ),
        "{err}"
    );

    // Above the threshold: parts of 5 MiB, reassembled byte for byte.
    let big = pattern((13 << 20) + 123, 2);
    let big_key = s.key("t.v1/0/00000000000000001000.archive");
    let r = s.put(&big_key, big.clone()).unwrap();
    assert_eq!((r.parts, r.size), (3, big.len() as u64));
    let h = s.head(&big_key).unwrap().unwrap();
    assert_eq!(
        (h.size, h.crc32),
        (big.len() as u64, Some(crc32fast::hash(&big)))
    );
    let tail = (big.len() as u64 - 1000)..big.len() as u64;
    assert_eq!(
        s.get_range(&big_key, tail.clone()).unwrap(),
        big.slice(tail.start as usize..)
    );

    let listed = s.list(&s.key("t.v1/0")).unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, [key.as_str(), big_key.as_str()]);
    assert_eq!(listed[1].size, big.len() as u64);
    assert!(s.list(&s.key("t.v1/1")).unwrap().is_empty());

    s.delete(&key).unwrap();
    s.delete(&key).unwrap(); // already gone: still fine
    assert_eq!(s.head(&key).unwrap(), None);
    assert_eq!(s.list(&s.key("t.v1/0")).unwrap().len(), 1);
}

#[test]
fn a_bucket_that_does_not_exist_is_a_clear_error() {
    let moto = Moto::start();
    let s = store(&moto.endpoint(), "no-such-bucket", "");
    let err = s.check_bucket().unwrap_err().to_string();
    assert!(
        err.contains("s3://no-such-bucket") && err.contains("does not exist"),
        "{err}"
    );
    let err = s
        .put("k", Bytes::from_static(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("upload") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn missing_credentials_are_refused_before_any_request() {
    let err = S3Credentials::from_vars(&|_| None).unwrap_err();
    let Error::ObjectStore { op, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*op, "read credentials");
    assert!(
        reason.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"),
        "{reason}"
    );
}

#[test]
fn an_unreachable_store_fails_fast_with_the_endpoint_named() {
    let port = s3_support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s = RemoteStore::connect(config(&endpoint, "warm", ""), credentials()).unwrap();
    let started = std::time::Instant::now();
    let err = s.head("x").unwrap_err().to_string();
    assert!(
        err.contains("unreachable") && err.contains(&endpoint),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn an_upload_cut_midway_leaves_no_object_and_succeeds_once_the_store_is_back() {
    let mut moto = Moto::start();
    moto.create_bucket("warm");
    let proxy = Proxy::start(moto.port);
    let s = store(&proxy.endpoint(), "warm", "");
    let data = pattern(12 << 20, 3);
    // Cut after 7 MiB: inside the second part of a multipart upload.
    proxy.cut_after(7 << 20);
    let err = s.put("a.archive", data.clone()).unwrap_err().to_string();
    assert!(err.contains("s3://warm/a.archive"), "{err}");
    assert!(proxy.is_down());
    // The server dies too and comes back empty (moto keeps nothing).
    moto.kill();
    let moto = Moto::start();
    moto.create_bucket("warm");
    proxy.restore(moto.port);
    assert_eq!(s.head("a.archive").unwrap(), None);
    let r = s.put("a.archive", data.clone()).unwrap();
    let h = s.head("a.archive").unwrap().unwrap();
    assert_eq!((h.size, h.crc32), (r.size, Some(crc32fast::hash(&data))));
}
