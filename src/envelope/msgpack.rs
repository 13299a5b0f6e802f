//! MessagePack primitives of the envelope layer: the direct writers, shortest
//! form first, as `rmp` writes them, and [`value_len`], the length of one value.
//!
//! This file owns byte-level MessagePack; it must never allocate beyond the
//! output buffer, never recurse on nesting, and never panic on any input.

use serde_json::Value;

pub(super) fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 256 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 65_536 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v < 4_294_967_296 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

pub(super) fn sint(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= -128 {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= -32_768 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn len_header(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, m16: u8, m32: u8) {
    if len < fix_max {
        out.push(fix | len as u8);
    } else if len < 65_536 {
        out.push(m16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

pub(super) fn str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if (32..256).contains(&len) {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else {
        len_header(out, len, 0xa0, 32, 0xda, 0xdb);
    }
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => str(out, s),
        None => out.push(0xc0),
    }
}

pub(super) fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                uint(out, u);
            } else if let Some(i) = n.as_i64() {
                sint(out, i);
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_be_bytes());
            }
        }
        Value::String(s) => str(out, s),
        Value::Array(a) => {
            len_header(out, a.len(), 0x90, 16, 0xdc, 0xdd);
            for item in a {
                value(out, item);
            }
        }
        Value::Object(m) => {
            len_header(out, m.len(), 0x80, 16, 0xde, 0xdf);
            for (k, item) in m {
                str(out, k);
                value(out, item);
            }
        }
    }
}

/// Byte length of the first MessagePack value in `bytes` (with everything it
/// contains), or `None` when `bytes` ends inside it or holds the never-used
/// marker `0xC1`. Iterative: the nesting depth costs no stack.
pub(super) fn value_len(bytes: &[u8]) -> Option<usize> {
    let byte = |at: usize| bytes.get(at).copied().map(usize::from);
    let be = |at: usize, n: usize| -> Option<usize> {
        let slice = bytes.get(at..at.checked_add(n)?)?;
        Some(
            slice
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
        )
    };
    let mut pos = 0usize;
    // Values still to be read.
    let mut pending = 1usize;
    while pending > 0 {
        pending -= 1;
        let marker = byte(pos)?;
        pos += 1;
        // (bytes to skip after the marker, child values)
        let (skip, children) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * (marker & 0x0f)),
            0x90..=0x9f => (0, marker & 0x0f),
            0xa0..=0xbf => (marker & 0x1f, 0),
            0xc4 | 0xd9 => (1 + be(pos, 1)?, 0),
            0xc5 | 0xda => (2 + be(pos, 2)?, 0),
            0xc6 | 0xdb => (4 + be(pos, 4)?, 0),
            0xc7 => (2 + be(pos, 1)?, 0),
            0xc8 => (3 + be(pos, 2)?, 0),
            0xc9 => (5 + be(pos, 4)?, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (2, be(pos, 2)?),
            0xdd => (4, be(pos, 4)?),
            0xde => (2, 2 * be(pos, 2)?),
            0xdf => (4, 2 * be(pos, 4)?),
            _ => return None, // 0xc1 is never used
        };
        pos = pos.checked_add(skip)?;
        if pos > bytes.len() {
            return None;
        }
        pending = pending.checked_add(children)?;
    }
    Some(pos)
}
