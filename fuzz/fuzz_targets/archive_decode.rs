//! Arbitrary bytes into the archive segment decoder; see `eventfabric::fuzzing::archive_decode`.
//! The logic lives in the library so that `tests/fuzz_regressions.rs` replays
//! every saved reproducer through the same code on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventfabric::fuzzing::archive_decode(data));
