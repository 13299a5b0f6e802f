//! At-most-once sampling of health noise: a per-topic token bucket for
//! `system.`-domain events.
//!
//! Owns the rate decision and the count of dropped events. During a storm of
//! `system.` events beyond the topic's `system_events_per_sec`, further ones
//! are dropped (never appended, counted) instead of crowding out business
//! events. It must never drop an event of any other domain, and never drop
//! anything when the topic sets no limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

/// The domain prefix of events that may be sampled.
pub(crate) const SYSTEM_DOMAIN_PREFIX: &str = "system.";

/// A token bucket: `per_sec` tokens a second, holding at most one second's
/// worth (so a quiet topic may burst `per_sec` events at once).
#[derive(Debug)]
pub(crate) struct SystemSampler {
    per_sec: f64,
    bucket: Mutex<(f64, Instant)>,
    dropped: AtomicU64,
}

impl SystemSampler {
    /// A full bucket admitting `per_sec` `system.` events a second.
    pub(crate) fn new(per_sec: u32) -> SystemSampler {
        let per_sec = f64::from(per_sec.max(1));
        SystemSampler {
            per_sec,
            bucket: Mutex::new((per_sec, Instant::now())),
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether a `system.` event may be appended at `now` (events outside
    /// that domain never ask: see [`is_system_event`]); a refused one is
    /// counted.
    pub(crate) fn admit_at(&self, now: Instant) -> bool {
        let mut b = self.bucket.lock();
        let elapsed = now.saturating_duration_since(b.1).as_secs_f64();
        b.0 = (b.0 + elapsed * self.per_sec).min(self.per_sec);
        b.1 = b.1.max(now);
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            drop(b);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// `system.` events dropped since the topic was opened in this process.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Whether `event_type` is in the `system.` domain, the one sampling applies to.
pub(crate) fn is_system_event(event_type: &str) -> bool {
    event_type.starts_with(SYSTEM_DOMAIN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_rate_and_caps_the_burst() {
        let s = SystemSampler::new(10);
        let t0 = Instant::now();
        let burst = (0..20).filter(|_| s.admit_at(t0)).count();
        assert_eq!(burst, 10);
        assert_eq!(s.dropped(), 10);
        // Half a second refills 5 tokens.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..20).filter(|_| s.admit_at(t1)).count(), 5);
        // An hour refills only up to the burst.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..50).filter(|_| s.admit_at(t2)).count(), 10);
    }

    #[test]
    fn other_domains_are_never_dropped() {
        assert!(!is_system_event("billing.invoice.issued"));
        assert!(!is_system_event("systemic.invoice.issued"));
        assert!(is_system_event("system.node.started"));
    }
}
