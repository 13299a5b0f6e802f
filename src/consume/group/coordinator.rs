//! The in-process coordinator of one (group, topic): live members, their
//! sessions, the sticky assignment and its epochs.
//!
//! Owns membership and ownership of partitions; it must never read records
//! or move a cursor itself (members commit through the cursor store).

use super::*;

/// The coordinators of this fabric's live groups, one per (group, topic).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(super) coordinators: Mutex<HashMap<(String, String), Weak<Coordinator>>>,
}

impl Registry {
    pub(super) fn live(&self, group: &str, topic: &str) -> Option<Arc<Coordinator>> {
        self.coordinators
            .lock()
            .get(&(group.to_string(), topic.to_string()))
            .and_then(Weak::upgrade)
    }
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) last_seen: Duration,
    pub(super) session_timeout: Duration,
}

#[derive(Debug)]
pub(super) struct GroupState {
    pub(super) store: CursorStore,
    pub(super) members: BTreeMap<MemberId, Member>,
    pub(super) owner: Vec<Option<MemberId>>,
    /// The epoch at which each partition's current owner got it: a member
    /// that lost a partition and got it back holds a different stamp, so
    /// its stale position is neither used nor committed.
    pub(super) owner_since: Vec<u64>,
    pub(super) next_member: MemberId,
    /// Bumped by every rebalance.
    pub(super) epoch: u64,
}

#[derive(Debug)]
pub(super) struct Coordinator {
    pub(super) group: String,
    pub(super) topic: Arc<TopicHandle>,
    pub(super) state: Mutex<GroupState>,
}

impl GroupState {
    pub(super) fn rebalance(&mut self, topic: &TopicHandle, partitions: usize) {
        let members: Vec<MemberId> = self.members.keys().copied().collect();
        let owner = assign::sticky_assignment(partitions, &members, &self.owner);
        self.epoch += 1;
        self.owner_since.resize(owner.len(), 0);
        for (p, (new, since)) in owner.iter().zip(&mut self.owner_since).enumerate() {
            if self.owner.get(p).copied().flatten() != *new {
                *since = self.epoch;
            }
        }
        self.owner = owner;
        // Members blocked in `poll` wake up and learn of it.
        topic.append_signal.notify();
    }

    /// Removes members whose session lapsed; whether any did.
    pub(super) fn expire(&mut self, now: Duration) -> bool {
        let before = self.members.len();
        self.members
            .retain(|_, m| now.saturating_sub(m.last_seen) <= m.session_timeout);
        before != self.members.len()
    }
}

impl Coordinator {
    pub(super) fn status(&self, source: &Arc<dyn PartitionSource>) -> GroupStatus {
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
