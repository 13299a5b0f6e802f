//! Orphan objects of the remote warm tier: objects under a partition's key
//! prefix that no local marker names, left by a crash between an upload and
//! its marker (or by a marker removed before its object was deleted).
//!
//! Owns the sweep that maintenance runs per partition (at its first run
//! after open, then at most once per `orphan_grace`): list the partition's
//! prefix, and delete each `.archive` object that no marker of the
//! partition names and that is older than `RemoteWarmConfig::orphan_grace`
//! by the store's clock of last modification against this machine's wall
//! clock. It must never delete an object a marker names (the marker is the
//! record that it holds data), never one younger than the grace period (an
//! upload in progress, or a writer on another machine sharing the prefix by
//! mistake), and never fail a maintenance run: a failed sweep is logged and
//! tried again later.

use std::collections::HashSet;

use crate::clock::now_micros;
use crate::error::Result;
use crate::tier::RemoteHandle;
use crate::tier::maintain::PartitionJob;
use crate::tier::remote::Marker;

impl PartitionJob<'_> {
    /// Deletes the partition's orphan objects when a sweep is due; returns
    /// how many were deleted. Failures are logged, never returned.
    pub(super) fn sweep_remote_orphans(&self, remote: &RemoteHandle) -> usize {
        if !remote.sweep_due(self.topic, self.partition) {
            return 0;
        }
        match self.delete_orphans(remote) {
            Ok(n) => n,
            Err(e) => {
                log::warn!(
                    "orphan sweep of topic {:?} partition {}: {e} (tried again later)",
                    self.topic,
                    self.partition
                );
                0
            }
        }
    }

    fn delete_orphans(&self, remote: &RemoteHandle) -> Result<usize> {
        let store = remote.store_for(self.topic);
        let named = self.marker_keys()?;
        let dir_key = store.key(&format!("{}/{}", self.topic, self.partition));
        let grace_us = i64::try_from(remote.config.orphan_grace.as_micros()).unwrap_or(i64::MAX);
        let cutoff = now_micros().saturating_sub(grace_us);
        let mut deleted = 0;
        for object in store.list(&dir_key)? {
            let ours = object
                .key
                .strip_prefix(&dir_key)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.contains('/') && name.ends_with(".archive"));
            let old_enough = object.modified_at.is_some_and(|m| m <= cutoff);
            if !ours || !old_enough || named.contains(&object.key) {
                continue;
            }
            log::warn!(
                "deleting orphan object {} ({} bytes): no marker names it",
                store.location(&object.key),
                object.size
            );
            store.delete(&object.key)?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The object keys the partition's markers name (a damaged marker names
    /// nothing here: its object is kept, as its name may still be it).
    fn marker_keys(&self) -> Result<HashSet<String>> {
        let mut keys = HashSet::new();
        let dir = &self.warm.dir;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(crate::error::Error::io("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| crate::error::Error::io("list", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".remote") && !name.ends_with(".remote.tmp") {
                continue;
            }
            let path = entry.path();
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            match Marker::decode(&bytes, &path) {
                Ok(m) => {
                    keys.insert(m.key);
                }
                Err(_) => {
                    // Keep the object its name would give.
                    if let Some(base) = name.split('.').next().and_then(|b| b.parse::<u64>().ok()) {
                        let store_key = self
                            .tiers
                            .remote
                            .as_ref()
                            .map(|r| r.object_key(self.topic, self.partition, base));
                        keys.extend(store_key);
                    }
                }
            }
        }
        Ok(keys)
    }
}
