//! The facade's topic administration: loading topics from disk, refreshing
//! a read-only view, creating, deleting and growing topics, and describing
//! them.
//!
//! Owns the crash-safe steps of each change to `topics/` (build in a hidden
//! directory, then rename); it must never interpret record bytes and never
//! create a topic implicitly.

use super::*;

impl Fabric {
    pub(super) fn open_partition(
        &self,
        dir: &Path,
        config: &TopicConfig,
        signal: &Arc<AppendSignal>,
    ) -> Result<Arc<Log>> {
        let log = if self.inner.read_only {
            Log::open_read_only(dir)?
        } else {
            Log::open(dir, config.log_config(self.inner.config.fsync))?
        };
        log.attach_append_signal(signal.clone());
        Ok(Arc::new(log))
    }

    /// Names of topic directories on disk (hidden temporary ones excluded).
    pub(super) fn topic_names_on_disk(&self) -> Result<Vec<String>> {
        let dir = self.topics_dir();
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().join(TOPIC_FILE).is_file() {
                continue;
            }
            validate_topic_name(&name).map_err(|e| Error::Corrupted {
                path: entry.path(),
                position: 0,
                reason: format!("not a valid topic directory ({e}); move it out of topics/"),
            })?;
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    pub(super) fn load_topic(&self, name: &str) -> Result<Arc<TopicHandle>> {
        let dir = self.topics_dir().join(name);
        let config = read_topic_file(&dir, name)?;
        let append_signal = Arc::new(AppendSignal::default());
        let mut logs = Vec::with_capacity(config.partitions as usize);
        for p in 0..config.partitions {
            logs.push(self.open_partition(&partition_dir(&dir, p), &config, &append_signal)?);
        }
        Ok(Arc::new(TopicHandle {
            name: name.to_string(),
            dir,
            config: RwLock::new(config),
            partitions: RwLock::new(Arc::new(logs)),
            deleted: AtomicBool::new(false),
            append_signal,
        }))
    }

    pub(super) fn load_topics(&self) -> Result<()> {
        let mut map = BTreeMap::new();
        for name in self.topic_names_on_disk()? {
            let handle = self.load_topic(&name)?;
            map.insert(name, handle);
        }
        *self.inner.topics.write() = map;
        Ok(())
    }

    /// For a read-only fabric: picks up topics created or deleted, partitions
    /// added and records appended by the writer since the last look. For the
    /// writer it is a no-op.
    pub fn refresh(&self) -> Result<()> {
        if !self.inner.read_only {
            return Ok(());
        }
        let _admin = self.inner.admin.lock();
        let names = self.topic_names_on_disk()?;
        let current: BTreeMap<String, Arc<TopicHandle>> = self.inner.topics.read().clone();
        let mut next = BTreeMap::new();
        for name in names {
            match current.get(&name) {
                Some(handle) => {
                    let config = read_topic_file(&handle.dir, &name)?;
                    let logs = handle.partitions();
                    for log in logs.iter() {
                        log.refresh()?;
                    }
                    if config.partitions as usize > logs.len() {
                        let mut grown: Vec<Arc<Log>> = logs.iter().cloned().collect();
                        for p in logs.len() as u32..config.partitions {
                            grown.push(self.open_partition(
                                &partition_dir(&handle.dir, p),
                                &config,
                                &handle.append_signal,
                            )?);
                        }
                        *handle.partitions.write() = Arc::new(grown);
                    }
                    *handle.config.write() = config;
                    next.insert(name, handle.clone());
                }
                None => {
                    let handle = self.load_topic(&name)?;
                    next.insert(name, handle);
                }
            }
        }
        for (name, handle) in &current {
            if !next.contains_key(name) {
                handle.deleted.store(true, Ordering::Release);
            }
        }
        *self.inner.topics.write() = next;
        Ok(())
    }

    pub(crate) fn handle(&self, topic: &str) -> Result<Arc<TopicHandle>> {
        self.inner
            .topics
            .read()
            .get(topic)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: topic.to_string(),
                data_dir: self.inner.root.clone(),
            })
    }

    /// Creates topic `name` with `config`. Fails if the name is invalid, the
    /// settings are invalid, or the topic exists. Crash-safe: the topic is
    /// built in a hidden directory and renamed into place.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.check_writable("create topic")?;
        validate_topic_name(name)?;
        config.validate()?;
        let _admin = self.inner.admin.lock();
        let topics_dir = self.topics_dir();
        let dir = topics_dir.join(name);
        if self.inner.topics.read().contains_key(name) || dir.exists() {
            return Err(Error::TopicExists {
                topic: name.to_string(),
                data_dir: self.inner.root.clone(),
            });
        }
        // Warm data a deleted topic of this name left behind is not this topic's.
        self.inner.tiers.forget_topic(name)?;
        let tmp = topics_dir.join(format!("{CREATING_PREFIX}{}", unique_suffix()));
        fs::create_dir(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let built = (|| {
            for p in 0..config.partitions {
                let pd = partition_dir(&tmp, p);
                fs::create_dir(&pd).map_err(|e| Error::io("create", &pd, e))?;
            }
            write_topic_file(&tmp, name, &config)?;
            fs::rename(&tmp, &dir).map_err(|e| Error::io("rename", &dir, e))?;
            sync_dir(&topics_dir)
        })();
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let handle = self.load_topic(name)?;
        self.inner.topics.write().insert(name.to_string(), handle);
        Ok(())
    }

    /// Deletes topic `name` and all its data. Producers and readers still
    /// holding it get an error from then on. Crash-safe: the directory is
    /// renamed away first, so a crash never leaves a half-deleted topic.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_writable("delete topic")?;
        let _admin = self.inner.admin.lock();
        let handle = self.handle(name)?;
        handle.deleted.store(true, Ordering::Release);
        self.inner.topics.write().remove(name);
        let logs = std::mem::take(&mut *handle.partitions.write());
        if let Ok(logs) = Arc::try_unwrap(logs) {
            for log in logs {
                if let Ok(log) = Arc::try_unwrap(log) {
                    let _ = log.close();
                }
            }
        }
        let topics_dir = self.topics_dir();
        let gone = topics_dir.join(format!("{DELETING_PREFIX}{}", unique_suffix()));
        fs::rename(&handle.dir, &gone).map_err(|e| Error::io("rename", &handle.dir, e))?;
        sync_dir(&topics_dir)?;
        fs::remove_dir_all(&gone).map_err(|e| Error::io("remove", &gone, e))?;
        self.inner.tiers.forget_topic(name)?;
        Ok(())
    }

    /// Grows topic `name` to `partitions` partitions. Shrinking is refused.
    ///
    /// As in Kafka, this changes the key → partition mapping for events
    /// produced from now on; events already stored stay where they are, so
    /// per-key order holds only within each period.
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<()> {
        self.check_writable("add partitions")?;
        let _admin = self.inner.admin.lock();
        let handle = self.handle(name)?;
        let mut config = handle.config.read().clone();
        if partitions < config.partitions {
            return Err(Error::invalid(
                format!("partitions of topic {name:?}"),
                format!(
                    "cannot shrink from {} to {partitions}: partitions are never removed",
                    config.partitions
                ),
            ));
        }
        if partitions == config.partitions {
            return Ok(());
        }
        let old = config.partitions;
        config.partitions = partitions;
        config.validate()?;
        // Directories first, then the config that makes them part of the topic.
        for p in old..partitions {
            let pd = partition_dir(&handle.dir, p);
            fs::create_dir_all(&pd).map_err(|e| Error::io("create", &pd, e))?;
        }
        sync_dir(&handle.dir)?;
        write_topic_file(&handle.dir, name, &config)?;
        let mut logs: Vec<Arc<Log>> = handle.partitions().iter().cloned().collect();
        for p in old..partitions {
            logs.push(self.open_partition(
                &partition_dir(&handle.dir, p),
                &config,
                &handle.append_signal,
            )?);
        }
        *handle.partitions.write() = Arc::new(logs);
        *handle.config.write() = config;
        Ok(())
    }

    /// Names of all topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// Settings and per-partition offsets of topic `name`.
    pub fn topic_info(&self, name: &str) -> Result<TopicInfo> {
        let handle = self.handle(name)?;
        let config = handle.config.read().clone();
        let mut offsets = Vec::new();
        for (p, log) in handle.partitions().iter().enumerate() {
            let warm = self.inner.tiers.partition(name, p as u32, log)?;
            let hot = log.earliest_offset();
            offsets.push((
                warm.earliest().map_or(hot, |w| w.min(hot)),
                log.next_offset(),
            ));
        }
        Ok(TopicInfo {
            name: name.to_string(),
            config,
            offsets,
        })
    }
}
