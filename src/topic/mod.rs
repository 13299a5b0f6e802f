//! Layer 2, topics: named sets of partition logs and their settings.
//!
//! Owns topic names, [`TopicConfig`] and `topic.json`, the shared handle on
//! one topic's open partitions, and [`PartitionSource`]: the narrow view of
//! a data directory that producers, consumers and tiers are given instead of
//! the whole [`Fabric`](crate::Fabric).
//!
//! It must never interpret record bytes, never produce or consume, and never
//! import the produce, consume, tier or fabric layers.

mod config;
pub mod governance;
pub(crate) mod handle;
pub(crate) mod source;

pub use config::*;
pub(crate) use handle::{OpenHandle, OpenHandles, TopicHandle};
pub(crate) use source::{PartitionSource, WeakSource};
