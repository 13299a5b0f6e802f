//! The background thread that syncs `GroupCommit` logs when their delay expires.
//!
//! Owns one process-wide thread (started on first use) and a queue of
//! deadlines, so a fabric with thousands of partition logs does not need a
//! thread per log. It never writes data itself: it asks each log to sync,
//! through [`BackgroundFlush`], and never names the log type (the arrow
//! points one way: the log schedules, the flusher calls back a trait).

use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// What the flusher can ask of a log whose group-commit delay expired.
pub(super) trait BackgroundFlush: Send + Sync {
    /// Syncs what was appended since the last sync (errors poison the log).
    fn background_flush(&self);
}

struct Flusher {
    queue: Mutex<Vec<(Instant, Weak<dyn BackgroundFlush>)>>,
    wake: Condvar,
}

fn flusher() -> &'static Flusher {
    static FLUSHER: OnceLock<&'static Flusher> = OnceLock::new();
    FLUSHER.get_or_init(|| {
        let f: &'static Flusher = Box::leak(Box::new(Flusher {
            queue: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("eventfabric-flusher".into())
            .spawn(move || run(f))
            .map(|_| ())
            .unwrap_or_else(|e| log::error!("cannot start the group-commit flusher thread: {e}"));
        f
    })
}

/// Asks for `log` to be synced no later than `deadline`.
pub(super) fn schedule<L: BackgroundFlush + 'static>(log: &Arc<L>, deadline: Instant) {
    let weak: Weak<L> = Arc::downgrade(log);
    let log: Weak<dyn BackgroundFlush> = weak;
    let f = flusher();
    f.queue.lock().push((deadline, log));
    f.wake.notify_one();
}

fn run(f: &'static Flusher) {
    let mut queue = f.queue.lock();
    loop {
        let Some((i, deadline)) = queue
            .iter()
            .enumerate()
            .min_by_key(|(_, (d, _))| *d)
            .map(|(i, (d, _))| (i, *d))
        else {
            f.wake.wait(&mut queue);
            continue;
        };
        if Instant::now() < deadline {
            f.wake.wait_until(&mut queue, deadline);
            continue;
        }
        let (_, log) = queue.swap_remove(i);
        drop(queue);
        if let Some(log) = log.upgrade() {
            log.background_flush();
        }
        queue = f.queue.lock();
    }
}
