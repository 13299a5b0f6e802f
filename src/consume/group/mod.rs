//! Consumer groups: members sharing a topic's partitions, durable committed
//! cursors, delivery modes, TTL expiry and idempotent (effectively-once)
//! consumption.
//!
//! Owns the in-process coordinator of each (group, topic) — membership,
//! sessions, sticky balanced assignment, the ownership fence on every poll
//! and commit — and the [`Consumer`] handle each member polls through. It
//! reads records only through [`crate::consume::reader::Reader`] (so any tier the
//! reader serves is served here too) and persists cursors only through its
//! cursor store (`group/store.rs`). It never writes to a topic and never
//! moves another group's cursors.
//!
//! ```
//! use std::time::Duration;
//! use eventfabric::ConsumerConfig;
//! use eventfabric::{Draft, Fabric, FabricConfig, TopicConfig};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! let fabric = Fabric::open(dir.path(), FabricConfig::default())?;
//! fabric.create_topic("billing.domain.v1", TopicConfig::with_partitions(2))?;
//! let mut producer = fabric.producer("billing.domain.v1", "billing-service")?;
//! producer.send(Draft::new("billing.invoice.issued", Some("t-1"), json!({"n": 1})))?;
//!
//! let mut consumer = fabric.consumer("projector", "billing.domain.v1", ConsumerConfig::default())?;
//! let batch = consumer.poll(Duration::from_secs(1))?;
//! assert_eq!(batch.len(), 1);
//! assert_eq!(batch[0].envelope()?.event_type, "billing.invoice.issued");
//! consumer.commit()?; // the next member of "projector" starts after this event
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod assign;
mod commit;
mod config;
mod coordinator;
mod poll;
mod replay;
mod status;
pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::consume::idempotent::ProcessedWindow;
use crate::consume::reader::{RawEvent, Reader, StartFrom};
use crate::envelope::{peek_event_id, peek_ttl_millis};
use crate::error::{Error, Result};
use crate::topic::{PartitionSource, TopicHandle};

use assign::MemberId;
pub use config::{CommitDurability, ConsumerConfig, CursorStart, DeliveryMode};
pub(crate) use coordinator::Registry;
use coordinator::{Coordinator, GroupState, Member};
pub use replay::{ReplayBound, ReplayConfig, ReplaySession};
pub use status::{GroupStatus, PartitionStatus, ResetTo};
pub(crate) use status::{describe, list, offset_for_time, reset};
use store::CursorStore;
pub(crate) use store::validate_group_name;

/// One member of a consumer group reading one topic. Not `Clone`: each
/// thread joins with its own handle.
///
/// Ownership is checked under the group's lock when a batch is handed out
/// and when positions are committed, so two live members never hand out or
/// commit the same partition. A batch already in a handler's hands when its
/// partition moves is not recalled: its uncommitted events are handed out
/// again by the new owner, from the committed cursor (at-least-once).
///
/// Dropping it leaves the group without committing (like a crash, for the
/// delivery guarantees); [`Consumer::close`] commits first.
#[derive(Debug)]
pub struct Consumer {
    source: Arc<dyn PartitionSource>,
    registry: Arc<Registry>,
    coord: Option<Arc<Coordinator>>,
    id: MemberId,
    config: ConsumerConfig,
    /// The assignment epoch this member last adopted.
    epoch: u64,
    owned: Vec<u32>,
    /// Next offset to hand out, per partition (`None`: not owned).
    next: Vec<Option<u64>>,
    /// The coordinator's `owner_since` stamp of each owned partition.
    since: Vec<u64>,
    /// Exclusive upper bound per partition (replay sessions).
    limit: Vec<u64>,
    paused: BTreeSet<u32>,
    reader: Option<Reader>,
    /// Processed ids not committed yet: (partition, id, version).
    pending: Vec<(u32, Uuid, u64)>,
    pending_set: HashSet<Uuid>,
    expired: u64,
    expired_uncommitted: u64,
    duplicates: u64,
    last_commit: Duration,
    /// Keeps `Fabric::close` from closing the fabric under this member.
    _open: crate::topic::OpenHandle,
}

/// How often a durable-only consumer looks for a sync it is waiting for.
const DURABLE_POLL: Duration = Duration::from_millis(5);

impl Consumer {
    /// Joins `group` on `topic` as a new member (see [`Fabric::consumer`](crate::Fabric::consumer)).
    pub(crate) fn join(
        source: &Arc<dyn PartitionSource>,
        registry: &Arc<Registry>,
        group: &str,
        topic: &str,
        config: ConsumerConfig,
    ) -> Result<Consumer> {
        validate_group_name(group)?;
        config.validate()?;
        if config.durable_only && source.is_read_only() {
            return Err(Error::invalid(
                "consumer durable_only",
                "a read-only view cannot see the writer's syncs: consume in the writer's process",
            ));
        }
        let handle = source.handle(topic)?;
        handle.check_live()?;
        let coord = {
            let mut map = registry.coordinators.lock();
            let key = (group.to_string(), topic.to_string());
            match map.get(&key).and_then(Weak::upgrade) {
                Some(c) => c,
                None => {
                    let window = ProcessedWindow::new(
                        config.processed_window_ids,
                        config.processed_window_age.as_micros() as i64,
                    );
                    let store = CursorStore::open_with(
                        &source.state_io(),
                        source.path(),
                        group,
                        topic,
                        window,
                    )?;
                    if store.torn_tail_bytes() > 0 {
                        log::warn!(
                            "consumer group {group:?} on {topic:?}: cut {} bytes of an \
                             unacknowledged commit from its cursor log",
                            store.torn_tail_bytes()
                        );
                    }
                    let c = Arc::new(Coordinator {
                        group: group.to_string(),
                        topic: handle,
                        state: Mutex::new(GroupState {
                            store,
                            members: BTreeMap::new(),
                            owner: Vec::new(),
                            owner_since: Vec::new(),
                            next_member: 1,
                            epoch: 0,
                        }),
                    });
                    map.insert(key, Arc::downgrade(&c));
                    c
                }
            }
        };
        let now = config.clock.monotonic();
        let id = {
            let mut state = coord.state.lock();
            let id = state.next_member;
            state.next_member += 1;
            state.members.insert(
                id,
                Member {
                    last_seen: now,
                    session_timeout: config.session_timeout,
                },
            );
            state.rebalance(&coord.topic, coord.topic.partitions().len());
            id
        };
        let mut consumer = Consumer {
            source: source.clone(),
            registry: registry.clone(),
            coord: Some(coord),
            id,
            config,
            epoch: 0,
            owned: Vec::new(),
            next: Vec::new(),
            since: Vec::new(),
            limit: Vec::new(),
            paused: BTreeSet::new(),
            reader: None,
            pending: Vec::new(),
            pending_set: HashSet::new(),
            expired: 0,
            expired_uncommitted: 0,
            duplicates: 0,
            last_commit: now,
            _open: source.track(format!(
                "member {id} of consumer group {group:?} on topic {topic:?}"
            )),
        };
        consumer.sync()?;
        Ok(consumer)
    }

    #[expect(
        clippy::expect_used,
        reason = "coord is None only inside Drop, after which no method runs"
    )]
    fn coord(&self) -> &Arc<Coordinator> {
        self.coord
            .as_ref()
            .expect("a live consumer has its coordinator")
    }

    /// This member's id within the group (unique per process and group).
    pub fn member_id(&self) -> u64 {
        self.id
    }

    /// The group name.
    pub fn group(&self) -> &str {
        &self.coord().group
    }

    /// The partitions this member owned at its last poll or commit.
    pub fn assignment(&self) -> &[u32] {
        &self.owned
    }

    /// The next offset this member hands out from `partition`, if it owns it.
    pub fn position(&self, partition: u32) -> Option<u64> {
        self.next.get(partition as usize).copied().flatten()
    }

    /// Changes how many events one `poll` returns at most (at least 1).
    pub fn set_max_poll_records(&mut self, max: usize) -> Result<()> {
        if max == 0 {
            return Err(Error::invalid("max_poll_records", "must be at least 1"));
        }
        self.config.max_poll_records = max;
        Ok(())
    }

    /// Events this member skipped because their TTL had passed.
    pub fn expired_count(&self) -> u64 {
        self.expired
    }

    /// Events this member skipped as already processed (effectively-once).
    pub fn duplicates_skipped(&self) -> u64 {
        self.duplicates
    }

    /// Heartbeat and membership: expires lapsed members, rejoins when this
    /// member was expired, adopts a new assignment. Returns the partitions
    /// this member lost (their uncommitted work is dropped: the new owner
    /// starts from the committed cursor).
    fn sync(&mut self) -> Result<Vec<u32>> {
        let coord = self.coord().clone();
        coord.topic.check_live()?;
        let now = self.config.clock.monotonic();
        let mut state = coord.state.lock();
        let mut changed = state.expire(now);
        let rejoined = !state.members.contains_key(&self.id);
        if rejoined {
            state.members.insert(
                self.id,
                Member {
                    last_seen: now,
                    session_timeout: self.config.session_timeout,
                },
            );
            changed = true;
        }
        if let Some(me) = state.members.get_mut(&self.id) {
            me.last_seen = now;
        }
        let partitions = coord.topic.partitions();
        if state.owner.len() != partitions.len() {
            changed = true;
        }
        if changed {
            state.rebalance(&coord.topic, partitions.len());
        }
        if state.epoch == self.epoch && !rejoined {
            return Ok(Vec::new());
        }
        let now_owned: Vec<u32> = (0u32..)
            .zip(&state.owner)
            .filter(|&(_, owner)| *owner == Some(self.id))
            .map(|(p, _)| p)
            .collect();
        self.next.resize(partitions.len(), None);
        self.since.resize(partitions.len(), 0);
        self.limit.resize(partitions.len(), u64::MAX);
        let mut revoked = Vec::new();
        for &p in &self.owned {
            let kept = now_owned.contains(&p)
                && state.owner_since.get(p as usize) == self.since.get(p as usize);
            if rejoined || !kept {
                if let Some(slot) = self.next.get_mut(p as usize) {
                    *slot = None;
                }
                revoked.push(p);
            }
        }
        for &p in &now_owned {
            // `next` was resized to the partitions above; `owner` (hence
            // `now_owned`) covers exactly them.
            if self.next_of(p).is_none()
                && let Some(log) = partitions.get(p as usize)
            {
                let topic = &self.coord().topic.name;
                let (earliest, end) = self.source.retained_range(topic, p, log);
                let start = match state.store.state().committed.get(&p) {
                    // Past the end: records the group counted as consumed
                    // are gone (a commit is never persisted past the durable
                    // offset, so a power loss cannot do this; a repair, an
                    // older version or a recreated topic can). Clamping would
                    // skip the records appended since: report it instead.
                    Some(&c) if c > end => {
                        return Err(Error::CursorBeyondLog {
                            consumer: format!("consumer group {:?}", coord.group),
                            topic: topic.clone(),
                            partition: p,
                            cursor: c,
                            log_end: end,
                        });
                    }
                    // Retention may have removed what the cursor points at.
                    Some(&c) => c.max(earliest),
                    None => match self.config.start {
                        CursorStart::Earliest => earliest,
                        CursorStart::Latest => end,
                    },
                };
                self.set_next(p, Some(start));
                if let (Some(since), Some(&stamp)) = (
                    self.since.get_mut(p as usize),
                    state.owner_since.get(p as usize),
                ) {
                    *since = stamp;
                }
            }
        }
        self.epoch = state.epoch;
        drop(state);
        if !revoked.is_empty() {
            self.pending.retain(|(p, _, _)| !revoked.contains(p));
            self.pending_set = self.pending.iter().map(|(_, id, _)| *id).collect();
        }
        self.owned = now_owned;
        self.rebuild_reader()?;
        Ok(revoked)
    }

    /// The next offset this member hands out from partition `p`; `None`
    /// when it is not positioned there (not owned, or past the partitions).
    fn next_of(&self, p: u32) -> Option<u64> {
        self.next.get(p as usize).copied().flatten()
    }

    /// Moves this member's position in partition `p`. `next` covers every
    /// partition of the topic once `sync` resized it, and callers pass owned
    /// partitions only, so a `p` past it is not a position to keep.
    fn set_next(&mut self, p: u32, next: Option<u64>) {
        if let Some(slot) = self.next.get_mut(p as usize) {
            *slot = next;
        }
    }

    /// The exclusive upper bound of partition `p` (a replay session's end;
    /// `u64::MAX`, no bound, where none was set).
    fn limit_of(&self, p: u32) -> u64 {
        self.limit.get(p as usize).copied().unwrap_or(u64::MAX)
    }

    fn rebuild_reader(&mut self) -> Result<()> {
        let active: Vec<u32> = self
            .owned
            .iter()
            .copied()
            .filter(|p| !self.paused.contains(p))
            .filter(|&p| self.next_of(p).is_some_and(|n| n < self.limit_of(p)))
            .collect();
        if active.is_empty() {
            self.reader = None;
            return Ok(());
        }
        let offsets = active
            .iter()
            .map(|&p| (p, self.next_of(p).unwrap_or(0)))
            .collect();
        let reader = Reader::new(
            self.source.clone(),
            self.coord().topic.clone(),
            StartFrom::Offsets(offsets),
        )?
        .durable_only(self.config.durable_only);
        self.reader = Some(reader.with_partitions(&active)?);
        Ok(())
    }
}
