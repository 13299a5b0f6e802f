//! Consumer-side state decoders and the record peeks; see `eventfabric::fuzzing::state_decode`.
//! The logic lives in the library so that `tests/fuzz_regressions.rs` replays
//! every saved reproducer through the same code on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventfabric::fuzzing::state_decode(data));
