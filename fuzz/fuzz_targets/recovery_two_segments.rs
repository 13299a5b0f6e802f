//! Two segments cut from the input, then recovery as reader and writer; see
//! `eventfabric::fuzzing::recovery_two_segments`.
//! The logic lives in the library so that `tests/fuzz_regressions.rs` replays
//! every saved reproducer through the same code on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventfabric::fuzzing::recovery_two_segments(
    data,
    &eventfabric_fuzz::scratch_dir("recovery_two_segments")
));
