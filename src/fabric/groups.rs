//! The facade's consumer-group methods: joining a group, replaying into one,
//! and inspecting or resetting groups' cursors.
//!
//! Owns nothing but the wiring: the work is in [`crate::consume::group`].

use std::collections::BTreeMap;

use crate::consume::group::{
    self, Consumer, ConsumerConfig, GroupStatus, ReplayConfig, ReplaySession, ResetTo,
};
use crate::error::Result;
use crate::fabric::Fabric;

impl Fabric {
    /// Joins consumer group `group` on `topic` as a new member (see
    /// [`Consumer`]). The group's cursor log is locked while any member in
    /// this process is live; a member in another process meanwhile gets
    /// [`Error::Locked`](crate::Error::Locked) naming this process.
    pub fn consumer(&self, group: &str, topic: &str, config: ConsumerConfig) -> Result<Consumer> {
        Consumer::join(&self.source(), self.group_registry(), group, topic, config)
    }

    /// Starts replaying `topic` into `group` from the bound in `config`
    /// (an offset or a time, across tiers), rate-limited when asked: see
    /// [`ReplaySession`]. The group must have no other live member.
    pub fn replay(&self, topic: &str, group: &str, config: ReplayConfig) -> Result<ReplaySession> {
        ReplaySession::start(&self.source(), self.group_registry(), topic, group, config)
    }

    /// Every consumer group with a cursor log under the data directory, with
    /// the topics it has cursors for, sorted.
    pub fn list_groups(&self) -> Result<Vec<(String, Vec<String>)>> {
        group::list(&self.source())
    }

    /// The status (cursors, lag, members) of every topic `group` consumes:
    /// live members' state when they are in this process, else read from
    /// the cursor logs without locking them.
    pub fn describe_group(&self, group: &str) -> Result<Vec<GroupStatus>> {
        group::describe(&self.source(), self.group_registry(), group)
    }

    /// Moves `group`'s cursors on `topic` (every partition) to `to`; refused
    /// while a member of the group is live (its cursor log is locked).
    pub fn reset_group(&self, group: &str, topic: &str, to: ResetTo) -> Result<BTreeMap<u32, u64>> {
        group::reset(&self.source(), group, topic, to)
    }
}
