//! [`Ttl`], an event's time-to-live, and its text forms.
//!
//! This file owns the TTL text grammar (short units and ISO 8601 durations)
//! and its canonical rendering; it must never accept a zero or overflowing TTL.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::time::Duration;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ValueError;
use super::fields::quoted;

/// A time-to-live: a positive whole number of milliseconds.
///
/// Text form, accepted by [`FromStr`]: either `<digits><unit>` with unit `ms`,
/// `s`, `m`, `h` or `d` (`250ms`, `30s`, `5m`, `1h`, `2d`), or an ISO 8601
/// duration limited to days, hours, minutes and seconds (`PT30S`, `P2D`,
/// `PT1H30M`, `PT0.25S`; upper-case designators, at most 3 decimals on
/// seconds). Weeks, months and years are refused because their length varies.
///
/// [`Display`](fmt::Display) writes the canonical form: `<n><unit>` with the
/// largest unit that divides the value exactly (`90s`, `1h`, `1500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(NonZeroU64);

impl Ttl {
    const UNITS: [(u64, &'static str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];

    /// A TTL of `millis` milliseconds.
    pub const fn new(millis: NonZeroU64) -> Self {
        Self(millis)
    }

    /// A TTL of `millis` milliseconds, or `None` for zero.
    pub const fn from_millis(millis: u64) -> Option<Self> {
        match NonZeroU64::new(millis) {
            Some(millis) => Some(Self(millis)),
            None => None,
        }
    }

    /// The TTL in milliseconds (at least 1).
    pub const fn as_millis(self) -> u64 {
        self.0.get()
    }

    /// The TTL as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0.get())
    }
}

const TTL_SHAPE: &str =
    "must be a duration like \"250ms\", \"30s\", \"5m\", \"1h\", \"2d\" or ISO 8601 \"PT30S\"";

fn ttl_error(s: &str) -> ValueError {
    ValueError::new(format!("{TTL_SHAPE}, got {}", quoted(s)))
}

fn ttl_too_large() -> ValueError {
    ValueError::new("is too large (more than 2^64 milliseconds)")
}

/// Splits `s` into its leading ASCII digits and the rest.
fn leading_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at_checked(n).unwrap_or((s, ""))
}

fn parse_ttl_short(s: &str) -> Result<u64, ValueError> {
    let (digits, unit) = leading_digits(s);
    if digits.is_empty() {
        return Err(ttl_error(s));
    }
    let scale = Ttl::UNITS
        .iter()
        .find(|(_, name)| *name == unit)
        .map(|(scale, _)| *scale)
        .ok_or_else(|| ttl_error(s))?;
    let n: u64 = digits.parse().map_err(|_| ttl_too_large())?;
    n.checked_mul(scale).ok_or_else(ttl_too_large)
}

/// Parses the part after `P` of an ISO 8601 duration (`nD`, `T`, `nH`, `nM`, `n[.fff]S`).
fn parse_ttl_iso(s: &str, full: &str) -> Result<u64, ValueError> {
    let (date, time) = match s.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (s, None),
    };
    let mut total: u64 = 0;
    let mut any = false;
    let add = |total: u64, n: u64, scale: u64| {
        n.checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(ttl_too_large)
    };
    if !date.is_empty() {
        let (digits, rest) = leading_digits(date);
        if digits.is_empty() || rest != "D" {
            return Err(ttl_error(full));
        }
        total = add(
            total,
            digits.parse().map_err(|_| ttl_too_large())?,
            86_400_000,
        )?;
        any = true;
    }
    if let Some(mut time) = time {
        if time.is_empty() {
            return Err(ttl_error(full));
        }
        // Designators must come in this order, each at most once.
        let mut allowed: &[(u8, u64)] = &[(b'H', 3_600_000), (b'M', 60_000), (b'S', 1_000)];
        while !time.is_empty() {
            let (digits, rest) = leading_digits(time);
            if digits.is_empty() {
                return Err(ttl_error(full));
            }
            let n: u64 = digits.parse().map_err(|_| ttl_too_large())?;
            let (fraction_ms, rest) = match rest.strip_prefix('.') {
                Some(after_dot) => {
                    let (fraction, rest) = leading_digits(after_dot);
                    if fraction.is_empty() || fraction.len() > 3 || !rest.starts_with('S') {
                        return Err(ttl_error(full));
                    }
                    // "25" means 250 ms: pad to three digits.
                    let padded = format!("{fraction:0<3}");
                    (padded.parse::<u64>().map_err(|_| ttl_error(full))?, rest)
                }
                None => (0, rest),
            };
            let designator = rest.bytes().next().ok_or_else(|| ttl_error(full))?;
            let position = allowed
                .iter()
                .position(|(d, _)| *d == designator)
                .ok_or_else(|| ttl_error(full))?;
            let (_, scale) = allowed
                .get(position)
                .copied()
                .ok_or_else(|| ttl_error(full))?;
            allowed = allowed.get(position + 1..).unwrap_or_default();
            total = add(total, n, scale)?;
            total = total.checked_add(fraction_ms).ok_or_else(ttl_too_large)?;
            any = true;
            time = rest.get(1..).unwrap_or_default();
        }
    }
    if any { Ok(total) } else { Err(ttl_error(full)) }
}

impl FromStr for Ttl {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let millis = match s.strip_prefix('P') {
            Some(iso) => parse_ttl_iso(iso, s)?,
            None => parse_ttl_short(s)?,
        };
        Ttl::from_millis(millis).ok_or_else(|| ValueError::new("must be greater than zero"))
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.get();
        for (scale, unit) in Self::UNITS {
            if millis.is_multiple_of(scale) {
                return write!(f, "{}{unit}", millis / scale);
            }
        }
        write!(f, "{millis}ms")
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}
