//! Arbitrary bytes as the segment file `00000000000000000000.log`, optionally
//! with an index file and a checkpoint cut from the input, then recovery as
//! a reader and as the writer (read all, look up times, append, close,
//! reopen read-only). Errors are fine; panics, hangs and OOMs are bugs.
//!
//! Input: `flags:u8` then, if `flags & AUX_FILES`: `checkpoint[56]`
//! `index_len:u16 index[index_len]`; the rest is the segment.
//! See `eventfabric_fuzz::flags` for the other bits.
#![no_main]

use eventfabric_fuzz::{
    CHECKPOINT, CHECKPOINT_LEN, INDEX0, Input, SEGMENT0, exercise, fix_checkpoint, fix_segment,
    flags,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let f = input.u8();
    let mut files = Vec::new();
    let mut index: Option<Vec<u8>> = None;
    let mut checkpoint: Option<Vec<u8>> = None;
    if f & flags::AUX_FILES != 0 {
        checkpoint = Some(input.take(CHECKPOINT_LEN).to_vec());
        index = Some(input.chunk().to_vec());
    }
    let mut segment = input.rest().to_vec();
    let extra_ts = segment
        .get(..8)
        .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    if f & flags::FIX_CRCS != 0 {
        fix_segment(&mut segment, index.as_deref());
        if let Some(cp) = checkpoint.as_mut() {
            fix_checkpoint(cp, index.as_deref());
        }
    }
    files.push((SEGMENT0.to_string(), segment));
    if let Some(ix) = index {
        files.push((INDEX0.to_string(), ix));
    }
    if let Some(cp) = checkpoint {
        files.push((CHECKPOINT.to_string(), cp));
    }
    exercise("recovery_segment", &files, f, extra_ts);
});
