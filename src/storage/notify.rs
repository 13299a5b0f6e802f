//! Wake-ups for consumers waiting on any of several partitions.
//!
//! Owns [`AppendSignal`]: a generation counter that partition logs bump after
//! each append (and read-only logs after a refresh that found new records),
//! and a condition variable that waiters block on. One signal per topic lets
//! a consumer owning many partitions sleep until any of them grows, without
//! polling. It never carries data: a waiter re-checks the logs after waking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// A "something was appended" signal shared by the partitions of a topic.
#[derive(Debug, Default)]
pub(crate) struct AppendSignal {
    generation: AtomicU64,
    waiters: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
}

impl AppendSignal {
    /// The current generation: pass it to [`AppendSignal::wait_past`] after
    /// checking the logs, so an append between the check and the wait is
    /// not missed.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Called by a log after it published new records.
    pub(crate) fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // The SeqCst increment above and the one in `wait_past` order this
        // load against the waiter's generation check: either the waiter
        // sees the new generation, or this load sees the waiter.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.lock.lock();
            self.cv.notify_all();
        }
    }

    /// Blocks until the generation differs from `seen` or `deadline` passes;
    /// returns the generation then.
    pub(crate) fn wait_past(&self, seen: u64, deadline: Instant) -> u64 {
        let mut guard = self.lock.lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let now = loop {
            let now = self.generation.load(Ordering::SeqCst);
            if now != seen || self.cv.wait_until(&mut guard, deadline).timed_out() {
                break self.generation.load(Ordering::SeqCst);
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_waiter_wakes_on_notify_and_times_out_without() {
        let signal = Arc::new(AppendSignal::default());
        let seen = signal.generation();
        let start = Instant::now();
        assert_eq!(
            signal.wait_past(seen, start + Duration::from_millis(20)),
            seen
        );
        let s = signal.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            s.notify();
        });
        let woke = signal.wait_past(seen, Instant::now() + Duration::from_secs(30));
        assert_ne!(woke, seen);
        waker.join().unwrap();
        // Already past: returns at once.
        assert_eq!(signal.wait_past(seen, Instant::now()), woke);
    }
}
