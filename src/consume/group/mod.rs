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
mod replay;
pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::consume::idempotent::ProcessedWindow;
use crate::consume::reader::{RawEvent, Reader, StartFrom};
use crate::envelope::{peek_event_id, peek_ttl_millis};
use crate::error::{Error, Result};
use crate::topic::{PartitionSource, TopicHandle};

use assign::MemberId;
pub use replay::{ReplayBound, ReplayConfig, ReplaySession};
use store::CursorStore;
pub(crate) use store::validate_group_name;

/// When a group's cursor moves relative to handing events out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// Positions are committed after the handler processed the batch (the
    /// next `poll` counts the previous batch as processed for auto-commit; an
    /// explicit [`Consumer::commit`] commits everything handed out). After a
    /// crash the uncommitted tail is delivered again.
    #[default]
    AtLeastOnce,
    /// Each batch's end positions are committed before `poll` returns it:
    /// nothing is ever delivered twice; a crash loses the batch in hand.
    AtMostOnce,
    /// At-least-once delivery plus the group's processed-id window: an event
    /// whose `event_id` the group already recorded as processed (committed
    /// together with the cursor) is skipped instead of delivered again.
    EffectivelyOnce,
}

/// How durable a commit is when it returns. Either way a commit never
/// persists a position past the partition log's durable offset: when the
/// log is behind, the commit syncs it first (on the writer's fabric), so a
/// power loss cannot leave a cursor above the records it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitDurability {
    /// `fdatasync` before returning: survives power loss.
    #[default]
    Sync,
    /// In the page cache: survives a process crash (kill -9), not power loss.
    Os,
}

/// Where a partition without a committed cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CursorStart {
    /// The earliest offset held.
    #[default]
    Earliest,
    /// The end of the partition when the member takes it over.
    Latest,
}

/// Settings of one group member.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Delivery guarantee (default at-least-once).
    pub delivery: DeliveryMode,
    /// Most events one `poll` returns (default 500).
    pub max_poll_records: usize,
    /// A member that does not poll (or commit) for this long loses its
    /// partitions to the others (default 10 s).
    pub session_timeout: Duration,
    /// Commit automatically from `poll` when this long passed since the last
    /// commit (default 5 s); `None`: only explicit commits.
    pub auto_commit_interval: Option<Duration>,
    /// Durability of every commit (default `Sync`).
    pub commit_durability: CommitDurability,
    /// Where partitions without a committed cursor start (default earliest).
    pub start: CursorStart,
    /// Route events skipped for an expired TTL to the dead-letter queue
    /// `<topic>.dlq` (reason `expired`), besides counting them.
    pub expired_to_dlq: bool,
    /// Processed-id window (effectively-once): most ids kept (default 100 000).
    /// The first member to open the group's cursor log sets the window.
    pub processed_window_ids: usize,
    /// Processed-id window: longest time an id is kept (default 24 h).
    pub processed_window_age: Duration,
    /// Hand out only records the partition log already made durable (below
    /// [`crate::Log::durable_offset`]), for handlers that must never act on
    /// an event a power loss could still remove; they wait for the topic's
    /// next sync (its fsync policy, or a [`Fabric::flush`]). Default off:
    /// records are handed out as soon as they are appended.
    pub durable_only: bool,
    /// Time source (default [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            delivery: DeliveryMode::AtLeastOnce,
            max_poll_records: 500,
            session_timeout: Duration::from_secs(10),
            auto_commit_interval: Some(Duration::from_secs(5)),
            commit_durability: CommitDurability::Sync,
            start: CursorStart::Earliest,
            expired_to_dlq: false,
            processed_window_ids: 100_000,
            processed_window_age: Duration::from_secs(24 * 3600),
            durable_only: false,
            clock: Arc::new(SystemClock),
        }
    }
}

impl ConsumerConfig {
    /// Default settings with `delivery`.
    pub fn with_delivery(delivery: DeliveryMode) -> Self {
        ConsumerConfig {
            delivery,
            ..ConsumerConfig::default()
        }
    }

    fn validate(&self) -> Result<()> {
        if self.max_poll_records == 0 {
            return Err(Error::invalid("max_poll_records", "must be at least 1"));
        }
        if self.session_timeout.is_zero() {
            return Err(Error::invalid("session_timeout", "must be positive"));
        }
        use crate::clock::{DAY, check_duration};
        check_duration("session_timeout", self.session_timeout, DAY)?;
        if let Some(every) = self.auto_commit_interval {
            check_duration("auto_commit_interval", every, DAY)?;
        }
        check_duration("processed_window_age", self.processed_window_age, 365 * DAY)?;
        Ok(())
    }
}

/// One partition of a group's view of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: u32,
    /// The committed next offset (`None`: never committed).
    pub committed: Option<u64>,
    /// The partition's log end (next offset to be written).
    pub end: u64,
    /// `end − committed` (from the earliest offset when never committed).
    pub lag: u64,
    /// The in-process member owning it, if any.
    pub member: Option<u64>,
}

/// A group's cursors, lag and members on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// Per partition.
    pub partitions: Vec<PartitionStatus>,
    /// Live members in this process (empty when read from another process).
    pub members: Vec<u64>,
    /// Events skipped because their TTL had passed (committed group total).
    pub expired: u64,
}

impl GroupStatus {
    /// The group's lag: summed over partitions.
    pub fn lag(&self) -> u64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }
}

/// The coordinators of this fabric's live groups, one per (group, topic).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    coordinators: Mutex<HashMap<(String, String), Weak<Coordinator>>>,
}

impl Registry {
    fn live(&self, group: &str, topic: &str) -> Option<Arc<Coordinator>> {
        self.coordinators
            .lock()
            .get(&(group.to_string(), topic.to_string()))
            .and_then(Weak::upgrade)
    }
}

#[derive(Debug)]
struct Member {
    last_seen: Duration,
    session_timeout: Duration,
}

#[derive(Debug)]
struct GroupState {
    store: CursorStore,
    members: BTreeMap<MemberId, Member>,
    owner: Vec<Option<MemberId>>,
    /// The epoch at which each partition's current owner got it: a member
    /// that lost a partition and got it back holds a different stamp, so
    /// its stale position is neither used nor committed.
    owner_since: Vec<u64>,
    next_member: MemberId,
    /// Bumped by every rebalance.
    epoch: u64,
}

#[derive(Debug)]
struct Coordinator {
    group: String,
    topic: Arc<TopicHandle>,
    state: Mutex<GroupState>,
}

impl GroupState {
    fn rebalance(&mut self, topic: &TopicHandle, partitions: usize) {
        let members: Vec<MemberId> = self.members.keys().copied().collect();
        let owner = assign::sticky_assignment(partitions, &members, &self.owner);
        self.epoch += 1;
        self.owner_since.resize(owner.len(), 0);
        for (p, new) in owner.iter().enumerate() {
            if self.owner.get(p).copied().flatten() != *new {
                self.owner_since[p] = self.epoch;
            }
        }
        self.owner = owner;
        // Members blocked in `poll` wake up and learn of it.
        topic.append_signal.notify();
    }

    /// Removes members whose session lapsed; whether any did.
    fn expire(&mut self, now: Duration) -> bool {
        let before = self.members.len();
        self.members
            .retain(|_, m| now.saturating_sub(m.last_seen) <= m.session_timeout);
        before != self.members.len()
    }
}

impl Coordinator {
    fn status(&self, source: &Arc<dyn PartitionSource>) -> GroupStatus {
        let state = self.state.lock();
        let logs = self.topic.partitions();
        let partitions = logs
            .iter()
            .enumerate()
            .map(|(p, log)| {
                let committed = state.store.state().committed.get(&(p as u32)).copied();
                let (earliest, end) = source.retained_range(&self.topic.name, p as u32, log);
                PartitionStatus {
                    partition: p as u32,
                    committed,
                    end,
                    lag: end.saturating_sub(committed.unwrap_or(earliest)),
                    member: state.owner.get(p).copied().flatten(),
                }
            })
            .collect();
        GroupStatus {
            group: self.group.clone(),
            topic: self.topic.name.clone(),
            partitions,
            members: state.members.keys().copied().collect(),
            expired: state.store.state().expired,
        }
    }
}

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
        let now_owned: Vec<u32> = (0..state.owner.len() as u32)
            .filter(|&p| state.owner[p as usize] == Some(self.id))
            .collect();
        self.next.resize(partitions.len(), None);
        self.since.resize(partitions.len(), 0);
        self.limit.resize(partitions.len(), u64::MAX);
        let mut revoked = Vec::new();
        for &p in &self.owned {
            let kept =
                now_owned.contains(&p) && state.owner_since[p as usize] == self.since[p as usize];
            if rejoined || !kept {
                self.next[p as usize] = None;
                revoked.push(p);
            }
        }
        for &p in &now_owned {
            if self.next[p as usize].is_none() {
                let log = &partitions[p as usize];
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
                self.next[p as usize] = Some(start);
                self.since[p as usize] = state.owner_since[p as usize];
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

    fn rebuild_reader(&mut self) -> Result<()> {
        let active: Vec<u32> = self
            .owned
            .iter()
            .copied()
            .filter(|p| !self.paused.contains(p))
            .filter(|&p| self.next[p as usize].is_some_and(|n| n < self.limit[p as usize]))
            .collect();
        if active.is_empty() {
            self.reader = None;
            return Ok(());
        }
        let offsets = active
            .iter()
            .map(|&p| (p, self.next[p as usize].unwrap_or(0)))
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

    /// Returns up to `max_poll_records` events from this member's partitions
    /// (in offset order per partition) as soon as there are any, otherwise
    /// blocks until an append wakes it or `timeout` passes (an empty batch).
    ///
    /// Each call is a heartbeat and adopts rebalances first; for
    /// at-least-once it counts the previous batch as processed and commits
    /// when the auto-commit interval has passed. Events whose TTL has passed
    /// are skipped and counted. In the writer's process waiting is woken by
    /// appends (no polling); on a read-only fabric it polls the files every
    /// 10 ms, as [`Reader::wait`] does.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<RawEvent>> {
        let max = self.config.max_poll_records;
        let polled = self.poll_up_to(timeout, max);
        let (topic, group) = (&self.coord().topic.name, &self.coord().group);
        match &polled {
            Ok(events) => crate::observe::consumed(topic, group, events.len()),
            Err(_) => crate::observe::consume_failed(topic, group),
        }
        polled
    }

    /// Reports the group's lag on its topic to the metrics facade.
    fn observe_lag(&self) {
        let status = self.status();
        let lags = status.partitions.iter().map(|p| (p.partition, p.lag));
        crate::observe::group_lag(&status.topic, &status.group, lags);
    }

    pub(crate) fn poll_up_to(&mut self, timeout: Duration, max: usize) -> Result<Vec<RawEvent>> {
        let deadline = crate::clock::deadline(Instant::now(), timeout);
        self.sync()?;
        self.maybe_auto_commit()?;
        let mut batch = Vec::new();
        loop {
            let generation = self.coord().topic.append_signal.generation();
            let at_most_once = self.config.delivery == DeliveryMode::AtMostOnce;
            let before = if at_most_once {
                self.next.clone()
            } else {
                Vec::new()
            };
            self.read_batch(&mut batch, max)?;
            if !batch.is_empty() {
                // The fence: events of a partition revoked meanwhile are not
                // handed out (their new owner starts from the cursor).
                let revoked = self.sync()?;
                if !revoked.is_empty() {
                    batch.retain(|e| !revoked.contains(&e.partition));
                }
                if !batch.is_empty()
                    && at_most_once
                    && let Err(e) = self.commit_owned()
                {
                    for &p in &self.owned {
                        self.next[p as usize] = before[p as usize];
                    }
                    self.rebuild_reader()?;
                    return Err(e);
                }
                if !batch.is_empty() {
                    return Ok(batch);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(batch);
            }
            // Wake at least twice per session timeout to heartbeat.
            let mut slice = (deadline - now).min(self.config.session_timeout / 2);
            if self.reader.as_ref().is_some_and(Reader::awaits_sync) {
                // Durable-only and records wait for a sync: no append
                // signals it, so look again shortly.
                slice = slice.min(DURABLE_POLL);
            }
            if self.source.is_read_only() {
                match self.reader.as_mut() {
                    Some(reader) => {
                        reader.wait(slice.min(Duration::from_millis(100)))?;
                    }
                    None => {
                        // Nothing assigned or everything paused: still notice
                        // partitions the writer adds.
                        self.source.refresh()?;
                        std::thread::sleep(slice.min(Duration::from_millis(10)));
                    }
                }
            } else {
                let signal = self.coord().topic.append_signal.clone();
                signal.wait_past(generation, now + slice);
            }
            self.sync()?;
        }
    }

    fn read_batch(&mut self, batch: &mut Vec<RawEvent>, max: usize) -> Result<()> {
        let coord = self.coord().clone();
        let now_wall = self.config.clock.wall_micros();
        let dedup = self.config.delivery == DeliveryMode::EffectivelyOnce;
        loop {
            let Some(mut reader) = self.reader.take() else {
                return Ok(());
            };
            let state = dedup.then(|| coord.state.lock());
            let mut capped = false;
            let mut failed = None;
            while batch.len() < max {
                let raw = match reader.next_raw() {
                    None => break,
                    Some(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    Some(Ok(raw)) => raw,
                };
                let p = raw.partition as usize;
                if raw.offset >= self.limit[p] {
                    capped = true;
                    break;
                }
                self.next[p] = Some(raw.offset + 1);
                if let Some(Some(ttl)) = peek_ttl_millis(&raw.value) {
                    let expires_at = raw
                        .timestamp
                        .saturating_add((ttl as i64).saturating_mul(1000));
                    // Expired from `emitted_at + ttl` on (the queue's rule too).
                    if now_wall >= expires_at {
                        if let Err(e) = self.on_expired(&raw) {
                            failed = Some(e);
                            break;
                        }
                        continue;
                    }
                }
                if let (Some(state), Some(id)) = (&state, peek_event_id(&raw.value)) {
                    if state.store.window().covers(&id, 0) || !self.pending_set.insert(id) {
                        self.duplicates += 1;
                        continue;
                    }
                    self.pending.push((raw.partition, id, 0));
                }
                batch.push(raw);
            }
            drop(state);
            self.reader = Some(reader);
            if let Some(e) = failed {
                return Err(e);
            }
            if !capped {
                return Ok(());
            }
            // A partition reached its replay bound: read on without it.
            self.rebuild_reader()?;
        }
    }

    /// The one place an expired event is skipped, counted, and — when
    /// `expired_to_dlq` is set — appended to `<topic>.dlq` with reason
    /// `expired` (synced before the cursor can move past it, so a crash
    /// re-delivers rather than loses it: at-least-once into the DLQ).
    fn on_expired(&mut self, event: &RawEvent) -> Result<()> {
        if self.config.expired_to_dlq {
            let now = crate::clock::now_micros();
            let letter = crate::consume::dlq::DeadLetter {
                reason: crate::consume::dlq::DlqReason::Expired,
                error: "emitted_at + ttl passed before delivery".to_owned(),
                attempts: 0,
                first_failure_micros: now,
                last_failure_micros: now,
                topic: self.coord().topic.name.clone(),
                partition: event.partition,
                offset: event.offset,
                timestamp: event.timestamp,
                consumer: self.coord().group.clone(),
                envelope: event.value.clone(),
            };
            crate::consume::dlq::dead_letter(&self.source, &letter)?;
        }
        self.expired += 1;
        self.expired_uncommitted += 1;
        Ok(())
    }

    fn maybe_auto_commit(&mut self) -> Result<()> {
        if self.config.delivery == DeliveryMode::AtMostOnce {
            return Ok(());
        }
        let since = self
            .config
            .clock
            .monotonic()
            .saturating_sub(self.last_commit);
        if self
            .config
            .auto_commit_interval
            .is_some_and(|interval| since >= interval)
        {
            self.commit_owned()?;
            self.observe_lag();
        }
        Ok(())
    }

    /// Commits the position after everything handed out so far on the
    /// partitions this member still owns (and, effectively-once, the ids
    /// processed with them) as one state-log record, durable per
    /// `commit_durability`. Work on partitions revoked since the last poll
    /// is not committed: their new owner redelivers it.
    pub fn commit(&mut self) -> Result<()> {
        self.sync()?;
        self.commit_owned()?;
        self.observe_lag();
        Ok(())
    }

    fn commit_owned(&mut self) -> Result<()> {
        let coord = self.coord().clone();
        let now_wall = self.config.clock.wall_micros();
        let mut state = coord.state.lock();
        let mine = |p: u32| {
            state.owner.get(p as usize).copied().flatten() == Some(self.id)
                && state.owner_since.get(p as usize) == self.since.get(p as usize)
        };
        let positions: Vec<(u32, u64)> = self
            .owned
            .iter()
            .copied()
            .filter(|&p| mine(p))
            .filter_map(|p| self.next[p as usize].map(|n| (p, n)))
            .filter(|(p, n)| state.store.state().committed.get(p) != Some(n))
            .collect();
        let ids: Vec<(Uuid, u64)> = self
            .pending
            .iter()
            .filter(|(p, _, _)| mine(*p))
            .map(|&(_, id, v)| (id, v))
            .collect();
        if positions.is_empty() && ids.is_empty() && self.expired_uncommitted == 0 {
            self.last_commit = self.config.clock.monotonic();
            return Ok(());
        }
        // A cursor is never persisted past what the partition log made
        // durable: otherwise a power loss could cut the log below it and
        // the records appended after the restart would be skipped. Waiting
        // for the log's sync (only when it is behind) keeps at-least-once.
        // A read-only view cannot sync the writer's log; its commits rely on
        // the writer's fsync policy (see `durable_only`).
        if !self.source.is_read_only() {
            let logs = coord.topic.partitions();
            for &(p, n) in &positions {
                if let Some(log) = logs.get(p as usize)
                    && log.durable_offset() < n
                {
                    log.flush()?;
                }
            }
        }
        let expired = state.store.state().expired + self.expired_uncommitted;
        let sync = self.config.commit_durability == CommitDurability::Sync;
        state
            .store
            .commit(&positions, expired, &ids, now_wall, sync)?;
        drop(state);
        self.expired_uncommitted = 0;
        self.pending.clear();
        self.pending_set.clear();
        self.last_commit = self.config.clock.monotonic();
        Ok(())
    }

    /// Moves this member's position in `partition` (which it must own) to
    /// `offset`, between the earliest offset held and the end. Takes effect
    /// at the next poll; committed with the next commit.
    pub fn seek(&mut self, partition: u32, offset: u64) -> Result<()> {
        self.sync()?;
        self.check_owned(partition)?;
        let topic = &self.coord().topic.name;
        let log = self.source.partition(topic, partition)?;
        let (earliest, end) = self.source.retained_range(topic, partition, &log);
        if offset < earliest || offset > end {
            return Err(Error::OffsetOutOfRange {
                offset,
                earliest,
                next: end,
            });
        }
        self.next[partition as usize] = Some(offset);
        self.rebuild_reader()
    }

    /// Moves this member's position in `partition` to the first event whose
    /// `emitted_at` is at or after `time` (the end when none is).
    pub fn seek_to_time(&mut self, partition: u32, time: Timestamp) -> Result<()> {
        self.check_owned(partition)?;
        let offset = offset_for_time(&self.source, &self.coord().topic, partition, time)?;
        self.seek(partition, offset)
    }

    /// Stops handing out events of `partition` until [`Consumer::resume`]
    /// (membership and the cursor are kept).
    pub fn pause(&mut self, partition: u32) -> Result<()> {
        self.paused.insert(partition);
        self.rebuild_reader()
    }

    /// Hands out events of `partition` again.
    pub fn resume(&mut self, partition: u32) -> Result<()> {
        self.paused.remove(&partition);
        self.rebuild_reader()
    }

    fn check_owned(&self, partition: u32) -> Result<()> {
        if !self.owned.contains(&partition) {
            return Err(Error::NotOwned {
                group: self.group().to_string(),
                member: self.id,
                partition,
                owned: self.owned.clone(),
            });
        }
        Ok(())
    }

    /// The group's lag per partition (`log end − committed`); sum the values,
    /// or use [`GroupStatus::lag`], for the group's total.
    pub fn lag(&self) -> BTreeMap<u32, u64> {
        self.status()
            .partitions
            .iter()
            .map(|p| (p.partition, p.lag))
            .collect()
    }

    /// Committed cursors, log ends, lag and members of the group on this topic.
    pub fn status(&self) -> GroupStatus {
        self.coord().status(&self.source)
    }

    /// Records `event` as processed at entity `version` (effectively-once):
    /// persisted with the next commit, after which a redelivery of its
    /// `event_id` is skipped and [`Consumer::already_processed`] answers
    /// for it. Events handed out in effectively-once mode are recorded at
    /// version 0 automatically.
    pub fn record_processed(&mut self, event: &RawEvent, version: u64) -> Result<()> {
        let id = peek_event_id(&event.value).ok_or_else(|| Error::NotAnEnvelope {
            topic: self.coord().topic.name.clone(),
            partition: event.partition,
            offset: event.offset,
            reason: "it has no event_id to record".into(),
        })?;
        self.pending_set.insert(id);
        self.pending.push((event.partition, id, version));
        Ok(())
    }

    /// Whether the group recorded `event_id` as processed at `version` or a
    /// later one (committed, or recorded by this member since its last commit).
    pub fn already_processed(&self, event_id: Uuid, version: u64) -> bool {
        self.pending
            .iter()
            .any(|&(_, id, v)| id == event_id && v >= version)
            || self
                .coord()
                .state
                .lock()
                .store
                .window()
                .covers(&event_id, version)
    }

    /// Commits what was handed out, then leaves the group.
    pub fn close(mut self) -> Result<()> {
        self.commit()
    }

    fn leave(&mut self) {
        let Some(coord) = self.coord.take() else {
            return;
        };
        let registry = &self.registry;
        // Held while the coordinator may drop, so a concurrent join never
        // finds the cursor log still locked by a coordinator on its way out.
        let _map = registry.coordinators.lock();
        {
            let mut state = coord.state.lock();
            if state.members.remove(&self.id).is_some() {
                let partitions = coord.topic.partitions().len();
                state.rebalance(&coord.topic, partitions);
            }
        }
        drop(coord);
    }

    pub(crate) fn set_limit(&mut self, partition: u32, end: u64) {
        if let Some(l) = self.limit.get_mut(partition as usize) {
            *l = end;
        }
    }

    pub(crate) fn topic_handle(&self) -> &Arc<TopicHandle> {
        &self.coord().topic
    }

    pub(crate) fn fabric(&self) -> &Arc<dyn PartitionSource> {
        &self.source
    }

    /// Whether every owned partition reached its limit.
    pub(crate) fn all_limits_reached(&self) -> bool {
        self.owned
            .iter()
            .all(|&p| self.next[p as usize].is_some_and(|n| n >= self.limit[p as usize]))
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The first offset of `partition` at or after `time` (its end when none).
pub(crate) fn offset_for_time(
    source: &Arc<dyn PartitionSource>,
    topic: &Arc<TopicHandle>,
    partition: u32,
    time: Timestamp,
) -> Result<u64> {
    let reader = Reader::new(source.clone(), topic.clone(), StartFrom::Time(time))?
        .with_partitions(&[partition])?;
    Ok(reader.positions().get(&partition).copied().unwrap_or(0))
}

/// Every consumer group with a cursor log under the data directory, with the
/// topics it has cursors for, sorted.
pub(crate) fn list(source: &Arc<dyn PartitionSource>) -> Result<Vec<(String, Vec<String>)>> {
    let dir = source.path().join(store::GROUPS_DIR);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        let group = entry.file_name().to_string_lossy().into_owned();
        if validate_group_name(&group).is_err() || !entry.path().is_dir() {
            continue;
        }
        let mut topics = group_topics(source, &group)?;
        topics.sort();
        out.push((group, topics));
    }
    out.sort();
    Ok(out)
}

fn group_topics(source: &Arc<dyn PartitionSource>, group: &str) -> Result<Vec<String>> {
    let dir = store::group_dir(source.path(), group);
    let mut topics = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(topic) = name.strip_suffix(store::CURSORS_SUFFIX) {
            topics.push(topic.to_string());
        }
    }
    topics.sort();
    Ok(topics)
}

/// The group's status on every topic it has cursors for: from the live
/// coordinator when a member is in this process (members included), else
/// read from the cursor logs without locking them.
pub(crate) fn describe(
    source: &Arc<dyn PartitionSource>,
    registry: &Registry,
    group: &str,
) -> Result<Vec<GroupStatus>> {
    validate_group_name(group)?;
    let dir = store::group_dir(source.path(), group);
    if !dir.is_dir() {
        return Err(Error::invalid(
            format!("consumer group {group:?}"),
            format!("it has no cursors in {}", source.path().display()),
        ));
    }
    let mut out = Vec::new();
    for topic in group_topics(source, group)? {
        if let Some(live) = registry.live(group, &topic) {
            out.push(live.status(source));
            continue;
        }
        let state = store::read_state(source.path(), group, &topic)?;
        let logs = match source.handle(&topic) {
            Ok(handle) => handle.partitions(),
            Err(_) => Arc::new(Vec::new()), // the topic was deleted since
        };
        let mut partitions: Vec<PartitionStatus> = logs
            .iter()
            .enumerate()
            .map(|(p, log)| {
                let committed = state.committed.get(&(p as u32)).copied();
                let (earliest, end) = source.retained_range(&topic, p as u32, log);
                PartitionStatus {
                    partition: p as u32,
                    committed,
                    end,
                    lag: end.saturating_sub(committed.unwrap_or(earliest)),
                    member: None,
                }
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        out.push(GroupStatus {
            group: group.to_string(),
            topic,
            partitions,
            members: Vec::new(),
            expired: state.expired,
        });
    }
    Ok(out)
}

/// Where [`reset`] moves a group's cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// Each partition's earliest offset.
    Earliest,
    /// Each partition's end.
    Latest,
    /// This offset, clamped to each partition's range.
    Offset(u64),
    /// The first event emitted at or after this time, per partition.
    Time(Timestamp),
}

/// Rewrites the group's committed cursors on `topic` (every partition);
/// returns them. Refused with [`Error::Locked`] while a member of the group
/// is live on that topic, in this process or another.
pub(crate) fn reset(
    source: &Arc<dyn PartitionSource>,
    group: &str,
    topic: &str,
    to: ResetTo,
) -> Result<BTreeMap<u32, u64>> {
    validate_group_name(group)?;
    let handle = source.handle(topic)?;
    let mut store = CursorStore::open_with(
        &source.state_io(),
        source.path(),
        group,
        topic,
        ProcessedWindow::new(usize::MAX, i64::MAX),
    )?;
    let mut positions = BTreeMap::new();
    for (p, log) in handle.partitions().iter().enumerate() {
        let (earliest, end) = source.retained_range(topic, p as u32, log);
        let offset = match to {
            ResetTo::Earliest => earliest,
            ResetTo::Latest => end,
            ResetTo::Offset(o) => o.clamp(earliest, end),
            ResetTo::Time(t) => offset_for_time(source, &handle, p as u32, t)?,
        };
        positions.insert(p as u32, offset);
    }
    store.reset(positions.clone())?;
    Ok(positions)
}
