//! Arbitrary bytes into the batch decoder; see `eventfabric::fuzzing::batch_decode`.
//! The logic lives in the library so that `tests/fuzz_regressions.rs` replays
//! every saved reproducer through the same code on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventfabric::fuzzing::batch_decode(data));
