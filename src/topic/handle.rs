//! The shared handle on one topic's open partitions, and the registration of
//! handles that keep a data directory open.
//!
//! Owns [`TopicHandle`] (name, directory, settings, partition logs, the
//! append signal) and [`OpenHandle`]. It never opens or creates a topic:
//! the fabric does, and hands out handles.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::storage::log::Log;
use crate::storage::notify::AppendSignal;
use crate::topic::TopicConfig;

/// One topic's open partitions, shared by the fabric, producers and readers.
#[derive(Debug)]
pub(crate) struct TopicHandle {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) config: RwLock<TopicConfig>,
    pub(crate) partitions: RwLock<Arc<Vec<Arc<Log>>>>,
    pub(crate) deleted: AtomicBool,
    /// Bumped after an append to any partition (see [`AppendSignal`]), so a
    /// consumer of many partitions sleeps until one of them grows.
    pub(crate) append_signal: Arc<AppendSignal>,
}

impl TopicHandle {
    /// The current partitions (a snapshot; grows when partitions are added).
    pub(crate) fn partitions(&self) -> Arc<Vec<Arc<Log>>> {
        self.partitions.read().clone()
    }

    /// Fails when the topic was deleted after this handle was taken.
    pub(crate) fn check_live(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(Error::TopicDeleted {
                topic: self.name.clone(),
            });
        }
        Ok(())
    }
}

/// The handles that keep a fabric (and so its directory lock) open, by what
/// they are, so that [`Fabric::close`] can name them.
#[derive(Debug, Default)]
pub(crate) struct OpenHandles {
    pub(crate) next: std::sync::atomic::AtomicU64,
    pub(crate) live: Mutex<BTreeMap<u64, String>>,
}

/// One registered handle; unregisters when dropped.
#[derive(Debug)]
pub(crate) struct OpenHandle {
    handles: Arc<OpenHandles>,
    id: u64,
}

impl Drop for OpenHandle {
    fn drop(&mut self) {
        self.handles.live.lock().remove(&self.id);
    }
}

impl OpenHandles {
    /// Registers a handle described by `what` while it lives.
    pub(crate) fn track(self: &Arc<Self>, what: String) -> OpenHandle {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live.lock().insert(id, what);
        OpenHandle {
            handles: self.clone(),
            id,
        }
    }
}
