//! Helpers shared by the integration tests.
#![allow(dead_code)]

use eventfabric::{Durability, Log, LogConfig};

/// A config with tiny segments and a dense index, so a few records span many
/// segments and index entries.
pub fn tiny_config() -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = 1024;
    c.index_interval_bytes = 64;
    c.preallocate_bytes = 512;
    c.checkpoint_interval_bytes = 512;
    c.durability = Durability::Os;
    c
}

/// The value stored at `offset` by tests that need to recognise any record.
pub fn value_for(offset: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    v.extend_from_slice(&offset.to_le_bytes());
    let mut x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len.max(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// Reads every record of `log` as (offset, timestamp, value).
pub fn read_all(log: &Log) -> eventfabric::Result<Vec<(u64, i64, Vec<u8>)>> {
    let mut out = Vec::new();
    for r in log.iter(log.earliest_offset())? {
        let r = r?;
        out.push((r.offset, r.timestamp, r.value.to_vec()));
    }
    Ok(out)
}

/// A small deterministic PRNG for tests that must not depend on `rand`.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs the `fabric` binary on data directory `data` with `args`, feeding it
/// `stdin`, and returns its output (exit status, stdout, stderr).
pub fn fabric(data: &std::path::Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabric"))
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that fails early (e.g. refused the lock) closes its stdin:
    // a broken pipe here is expected then, and its exit status tells.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs `fabric` like [`fabric`], asserts it succeeded (its stderr in the
/// message otherwise) and returns its stdout.
pub fn fabric_ok(data: &std::path::Path, args: &[&str], stdin: &[u8]) -> String {
    let out = fabric(data, args, stdin);
    assert!(
        out.status.success(),
        "fabric {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each line of `text` parsed as one JSON value.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
