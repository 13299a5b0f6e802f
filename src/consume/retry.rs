//! Retry policy of a queue: how many deliveries a message gets and how long
//! it waits between them.
//!
//! Owns [`RetryPolicy`] and [`Backoff`] and the computation of a retry delay
//! from the attempt number. The jitter is a deterministic function of the
//! message's position and attempt, so a schedule can be recomputed and
//! checked (and two messages failing together still spread out). It never
//! touches queue state or the clock.

use std::time::Duration;

use crate::error::{Error, Result};

/// How long a failed message waits before its next delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    /// `initial × multiplier^(attempt − 1)`, capped at `max`, then reduced by
    /// up to `jitter` of itself (0.0: exact; 0.5: anywhere in `[d/2, d]`).
    Exponential {
        /// Delay after the first failed attempt.
        initial: Duration,
        /// Growth per further attempt (at least 1.0).
        multiplier: f64,
        /// Largest delay.
        max: Duration,
        /// Fraction of the delay that is randomised away, in `0.0..=1.0`.
        jitter: f64,
    },
    /// An explicit delay per failed attempt: entry `n − 1` after attempt `n`;
    /// the last entry repeats (JetStream's `BackOff` list).
    List(Vec<Duration>),
}

/// Deliveries per message and the waits between them.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Deliveries a message gets in all (at least 1). A message that fails
    /// its last one goes to the dead-letter queue (`max_attempts_exceeded`).
    pub max_attempts: u32,
    /// The wait before each redelivery.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    /// 5 attempts; 1 s, 2 s, 4 s, 8 s... up to 5 min, with 20 % jitter.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff: Backoff::Exponential {
                initial: Duration::from_secs(1),
                multiplier: 2.0,
                max: Duration::from_secs(300),
                jitter: 0.2,
            },
        }
    }
}

impl RetryPolicy {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::invalid(
                "retry max_attempts",
                "must be at least 1 (the first delivery counts)",
            ));
        }
        match &self.backoff {
            Backoff::Exponential {
                initial,
                multiplier,
                max,
                jitter,
            } => {
                if !(multiplier.is_finite() && *multiplier >= 1.0) {
                    return Err(Error::invalid(
                        "retry backoff multiplier",
                        format!("must be a finite number >= 1.0, got {multiplier}"),
                    ));
                }
                if !(0.0..=1.0).contains(jitter) {
                    return Err(Error::invalid(
                        "retry backoff jitter",
                        format!("must be within 0.0..=1.0, got {jitter}"),
                    ));
                }
                if max < initial {
                    return Err(Error::invalid(
                        "retry backoff max",
                        format!("{max:?} is below the initial delay {initial:?}"),
                    ));
                }
                crate::clock::check_duration("retry backoff max", *max, 7 * crate::clock::DAY)?;
            }
            Backoff::List(list) if list.is_empty() => {
                return Err(Error::invalid(
                    "retry backoff list",
                    "must name at least one delay",
                ));
            }
            Backoff::List(list) => {
                for delay in list {
                    crate::clock::check_duration(
                        "retry backoff list delay",
                        *delay,
                        7 * crate::clock::DAY,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// The delay before the delivery after failed attempt `attempt` (1 for
    /// the first delivery) of the message at (`partition`, `offset`).
    pub fn delay_after(&self, attempt: u32, partition: u32, offset: u64) -> Duration {
        let n = attempt.max(1);
        match &self.backoff {
            Backoff::List(list) => list
                .get(n as usize - 1)
                .or(list.last())
                .copied()
                .unwrap_or_default(),
            Backoff::Exponential {
                initial,
                multiplier,
                max,
                jitter,
            } => {
                let grown = initial.as_secs_f64() * multiplier.powi((n - 1).min(1024) as i32);
                let full = grown.min(max.as_secs_f64());
                let cut = full * jitter * unit_noise(partition, offset, n);
                Duration::from_secs_f64((full - cut).max(0.0))
            }
        }
    }
}

/// A deterministic number in `[0, 1)` from a message position and attempt
/// (splitmix64 finaliser): jitter without shared RNG state.
fn unit_noise(partition: u32, offset: u64, attempt: u32) -> f64 {
    let mut z = offset
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(partition) << 32 | u64::from(attempt));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_caps_and_jitters_within_bounds() {
        let exact = RetryPolicy {
            max_attempts: 10,
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(100),
                multiplier: 2.0,
                max: Duration::from_secs(1),
                jitter: 0.0,
            },
        };
        let got: Vec<u128> = (1..7)
            .map(|a| exact.delay_after(a, 0, 0).as_millis())
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        let jittered = RetryPolicy {
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(100),
                multiplier: 2.0,
                max: Duration::from_secs(1),
                jitter: 0.5,
            },
            ..exact
        };
        let mut distinct = std::collections::BTreeSet::new();
        for offset in 0..200 {
            let d = jittered.delay_after(3, 1, offset);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
            distinct.insert(d);
        }
        assert!(distinct.len() > 100, "jitter must spread delays");
    }

    #[test]
    fn list_uses_one_entry_per_attempt_and_repeats_the_last() {
        let p = RetryPolicy {
            max_attempts: 9,
            backoff: Backoff::List(vec![Duration::from_secs(1), Duration::from_secs(5)]),
        };
        let got: Vec<u64> = (1..5).map(|a| p.delay_after(a, 0, 7).as_secs()).collect();
        assert_eq!(got, [1, 5, 5, 5]);
    }

    #[test]
    fn bad_settings_are_refused() {
        let p = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(p.validate().is_err());
        let p = RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::List(vec![]),
        };
        assert!(p.validate().is_err());
        assert!(RetryPolicy::default().validate().is_ok());
    }
}
