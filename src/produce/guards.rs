//! The per-topic state every producer of a topic shares: the dedup cache and
//! the `system.` event sampler.
//!
//! Owns one [`TopicGuard`] per open topic, created on the first producer of
//! the topic and dropped with it (a topic deleted and created again gets a
//! fresh guard, never the old cache). It never appends: producers do.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::produce::dedup::LazyDedup;
use crate::produce::sampling::SystemSampler;
use crate::topic::{PartitionSource, TopicHandle};

/// What all producers of one topic share.
#[derive(Debug)]
pub(crate) struct TopicGuard {
    /// The producer-side dedup cache (writer only, when the topic's window is on).
    pub(crate) dedup: Option<LazyDedup>,
    /// Sampling of `system.` events (when the topic sets a rate).
    pub(crate) sampler: Option<SystemSampler>,
}

/// A topic's guard and the open handle it was made for.
type Entry = (Weak<TopicHandle>, Arc<TopicGuard>);

/// The guards of a data directory's topics, keyed by topic name and tied to
/// the one open handle they were made for.
#[derive(Debug, Default)]
pub(crate) struct PublishGuards {
    topics: Mutex<HashMap<String, Entry>>,
}

impl PublishGuards {
    /// The guard of `topic`, made on first use.
    pub(crate) fn for_topic(
        &self,
        source: &dyn PartitionSource,
        topic: &Arc<TopicHandle>,
    ) -> Arc<TopicGuard> {
        let mut topics = self.topics.lock();
        if let Some((handle, guard)) = topics.get(&topic.name)
            && std::ptr::eq(handle.as_ptr(), Arc::as_ptr(topic))
        {
            return guard.clone();
        }
        let config = topic.config.read().clone();
        let dedup = (!source.is_read_only() && config.dedup_window_ms > 0).then(|| {
            LazyDedup::new(
                source.downgrade(),
                &topic.name,
                config.dedup_window_ms,
                config.dedup_max_entries,
            )
        });
        let guard = Arc::new(TopicGuard {
            dedup,
            sampler: config.system_events_per_sec.map(SystemSampler::new),
        });
        topics.insert(topic.name.clone(), (Arc::downgrade(topic), guard.clone()));
        guard
    }

    /// The guard of `topic` if a producer made one (for statistics).
    pub(crate) fn existing(&self, topic: &Arc<TopicHandle>) -> Option<Arc<TopicGuard>> {
        let topics = self.topics.lock();
        let (handle, guard) = topics.get(&topic.name)?;
        std::ptr::eq(handle.as_ptr(), Arc::as_ptr(topic)).then(|| guard.clone())
    }
}
