//! Layer 3, the publish path: from a [`Draft`](crate::Draft) to an appended,
//! durable-when-asked record.
//!
//! Owns enrichment and validation of the envelope on the way in, the
//! partitioner (Kafka's murmur2), the producer-side dedup cache (the
//! effectively-once claim protocol) and at-most-once sampling of `system.`
//! events. Checks that every publish must pass (schemas, ACLs, quotas) plug
//! into [`producer`]'s stage list.
//!
//! It must never read for consumers, keep consumer state, or import the
//! consume, tier-maintenance or fabric layers.

pub(crate) mod dedup;
pub(crate) mod guards;
pub(crate) mod partitioner;
pub(crate) mod producer;
pub(crate) mod sampling;

/// Hands out producers to the layers above produce that publish on their
/// own (the DLQ replay republishes into the source topic).
pub(crate) trait ProducerFactory: Send + Sync + std::fmt::Debug {
    /// A producer for `topic` stamping `source` on events lacking one.
    fn producer(&self, topic: &str, source: &str) -> crate::Result<producer::Producer>;
}
