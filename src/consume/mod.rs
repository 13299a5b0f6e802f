//! Layer 3, the consume path: reading events back and keeping the state of
//! who has processed what.
//!
//! Owns readers (cursors across warm and hot tiers), consumer groups
//! (membership, assignment, durable cursors, replay), queues (per-message
//! acks, retries with backoff, redelivery), the dead-letter queue and its
//! replay, and the processed-id window of idempotent consumers. Its
//! durable state lives in state logs (`storage::statelog`).
//!
//! It must never append to a topic except through the produce layer (DLQ
//! routing and DLQ replay publish like any producer) and never import the
//! fabric facade.

pub(crate) mod dlq;
pub(crate) mod dlq_replay;
pub(crate) mod group;
pub(crate) mod idempotent;
pub(crate) mod queue;
pub(crate) mod queue_state;
pub(crate) mod reader;
pub(crate) mod retry;
