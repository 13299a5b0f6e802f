//! Two segment files cut from the input: `00000000000000000000.log` and one
//! whose base offset comes from the input, to exercise footer validation of
//! sealed segments, gap detection between segments and the active segment's
//! recovery after a sealed one. Errors are fine; panics, hangs and OOMs are bugs.
//!
//! Input: `flags:u8 base2:u64 seg1_len:u16 seg1[seg1_len]`, then if
//! `flags & AUX_FILES`: `checkpoint[56] index2_len:u16 index2[..]` (index of
//! the second segment), then if `flags & INDEX_FIRST`: `index1_len:u16
//! index1[..]` (index of the first); the rest is the second segment. With
//! `flags & NO_FIRST` the first segment is parsed but not written, so the
//! second is the only one, at an arbitrary base offset.
#![no_main]

use eventfabric_fuzz::{
    CHECKPOINT, CHECKPOINT_LEN, INDEX0, Input, SEGMENT0, exercise, fix_checkpoint, fix_segment,
    flags, index_name, segment_name,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let f = input.u8();
    let base2 = input.u64();
    let mut seg1 = input.chunk().to_vec();
    let mut checkpoint: Option<Vec<u8>> = None;
    let mut index2: Option<Vec<u8>> = None;
    let mut index1: Option<Vec<u8>> = None;
    if f & flags::AUX_FILES != 0 {
        checkpoint = Some(input.take(CHECKPOINT_LEN).to_vec());
        index2 = Some(input.chunk().to_vec());
    }
    if f & flags::INDEX_FIRST != 0 {
        index1 = Some(input.chunk().to_vec());
    }
    let mut seg2 = input.rest().to_vec();
    if f & flags::FIX_CRCS != 0 {
        fix_segment(&mut seg1, index1.as_deref());
        fix_segment(&mut seg2, index2.as_deref());
        if let Some(cp) = checkpoint.as_mut() {
            fix_checkpoint(cp, index2.as_deref());
        }
    }
    let extra_ts = base2 as i64;
    let mut files = Vec::new();
    if f & flags::NO_FIRST == 0 {
        files.push((SEGMENT0.to_string(), seg1));
        if let Some(ix) = index1 {
            files.push((INDEX0.to_string(), ix));
        }
    }
    // base2 == 0 names the same file: the second segment then replaces the first.
    files.push((segment_name(base2), seg2));
    if let Some(ix) = index2 {
        files.push((index_name(base2), ix));
    }
    if let Some(cp) = checkpoint {
        files.push((CHECKPOINT.to_string(), cp));
    }
    exercise("recovery_two_segments", &files, f, extra_ts);
});
