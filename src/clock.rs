//! Time: the one [`Clock`] of the engine, and deadlines that cannot overflow.
//!
//! Owns wall-clock time (µs since the Unix epoch: record timestamps, append
//! times, retry schedules, dedup windows) and monotonic time (session
//! timeouts, commit delays), the real [`SystemClock`], the settable
//! [`ManualClock`] for tests and simulations, and [`deadline`]. Every
//! module that needs "now" asks here. It must never sleep or block.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time. Groups and queues take one in
/// their config, so tests can drive time by hand.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Wall-clock time in µs since the Unix epoch.
    fn wall_micros(&self) -> i64;
    /// Monotonic time since an arbitrary origin (never goes back).
    fn monotonic(&self) -> Duration;
}

/// The real clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall_micros(&self) -> i64 {
        now_micros()
    }
    fn monotonic(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told to (tests and simulations): wall and
/// monotonic time advance together with [`ManualClock::advance`]; the wall
/// clock can also be set (even backwards, as an NTP step would).
#[derive(Debug)]
pub struct ManualClock {
    wall_micros: AtomicI64,
    elapsed_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock whose wall time reads `wall_micros` and monotonic time zero.
    pub fn new(wall_micros: i64) -> ManualClock {
        ManualClock {
            wall_micros: AtomicI64::new(wall_micros),
            elapsed_nanos: AtomicU64::new(0),
        }
    }

    /// Moves both clocks forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        // fetch_update with saturating adds: a huge step pins at the maximum
        // instead of wrapping into the past.
        let _ = self
            .elapsed_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(nanos))
            });
        let _ = self
            .wall_micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                Some(w.saturating_add(micros))
            });
    }

    /// Sets the wall clock to `wall_micros` (the monotonic clock is unchanged).
    pub fn set(&self, wall_micros: i64) {
        self.wall_micros.store(wall_micros, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    /// A manual clock starting at the current wall time.
    fn default() -> Self {
        ManualClock::new(now_micros())
    }
}

impl Clock for ManualClock {
    fn wall_micros(&self) -> i64 {
        self.wall_micros.load(Ordering::SeqCst)
    }
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.elapsed_nanos.load(Ordering::SeqCst))
    }
}

/// The system's wall-clock time in µs since the Unix epoch (0 before 1970).
pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A deadline so far away that nothing waits that long: what an unbounded
/// timeout (`Duration::MAX`) saturates to.
const FAR_AWAY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + timeout`, saturating: a timeout too large for an [`Instant`]
/// (`Duration::MAX` meaning "wait without limit") becomes a deadline a
/// century away instead of a panic. The one place a timeout becomes a
/// deadline.
pub(crate) fn deadline(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR_AWAY))
        .unwrap_or(now)
}

/// Refuses a configured duration longer than `max` (every duration a
/// config takes is bounded, so no deadline or schedule built from it can be
/// absurd), naming the setting.
pub(crate) fn check_duration(setting: &str, value: Duration, max: Duration) -> crate::Result<()> {
    if value > max {
        return Err(crate::Error::invalid(
            setting.to_string(),
            format!("{value:?} is longer than the maximum {max:?}"),
        ));
    }
    Ok(())
}

/// One hour.
pub(crate) const HOUR: Duration = Duration::from_secs(3600);
/// One day.
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_wall_and_monotonic_time_together_and_saturates() {
        let c = ManualClock::new(1_000);
        c.advance(Duration::from_millis(2));
        assert_eq!(
            (c.wall_micros(), c.monotonic()),
            (3_000, Duration::from_millis(2))
        );
        c.set(10);
        assert_eq!(c.wall_micros(), 10);
        assert_eq!(c.monotonic(), Duration::from_millis(2));
        c.advance(Duration::MAX);
        assert_eq!(c.wall_micros(), i64::MAX);
        assert_eq!(c.monotonic(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn an_unbounded_timeout_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let far = deadline(now, Duration::MAX);
        assert!(far >= now + Duration::from_secs(50 * 365 * 24 * 3600));
    }
}
