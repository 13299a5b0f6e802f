//! Arbitrary bytes into the decoders of consumer-side state and the record
//! peeks (`eventfabric::fuzzing`). The first byte picks the decoder (mod 4):
//! 0 — a whole state-log file (header, records, torn-tail vs corruption
//! decision), whose intact payloads then go through the cursor-log and
//! queue-state decoders; 1 — the rest cut into payloads (each a length byte
//! and that many bytes) straight into the cursor-log and queue-state
//! decoders, past the container's CRCs; 2 — a dead-letter record; 3 — a
//! record for the field peeks. The field peeks run on every input. No
//! decoder may panic; a peek that disagrees with the full envelope decoder
//! panics (the oracle).
#![no_main]

use eventfabric::fuzzing;
use libfuzzer_sys::fuzz_target;

fn payloads(mut rest: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        out.push(tail[..n].to_vec());
        rest = &tail[n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(records) = fuzzing::state_log(rest) {
                let _ = fuzzing::cursor_records(&records);
                let _ = fuzzing::queue_records(&records);
            }
        }
        1 => {
            let records = payloads(rest);
            let _ = fuzzing::cursor_records(&records);
            let _ = fuzzing::queue_records(&records);
        }
        2 => {
            let _ = fuzzing::dead_letter(rest);
        }
        _ => {}
    }
    fuzzing::record_peeks(rest);
});
