//! Snapshot export: streams a topic's records over a range, block by block,
//! into a temporary file that is fsynced and renamed into place.
//!
//! Owns the writing half of the snapshot format; it must never hold a whole
//! topic in memory and never modify the source topic.

use super::*;

struct Writer {
    out: BufWriter<File>,
    tmp: PathBuf,
    written: u64,
    blocks: u64,
    records: u64,
    block: Vec<u8>,
    block_records: u32,
    block_partition: u32,
}

impl Writer {
    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("write", &self.tmp, e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub(super) fn push(
        &mut self,
        partition: u32,
        offset: u64,
        timestamp: i64,
        value: &[u8],
    ) -> Result<()> {
        if self.block_records > 0
            && (partition != self.block_partition
                || self.block.len() + RECORD_HEADER_LEN + value.len() > TARGET_BLOCK_BYTES
                || self.block_records as usize >= MAX_BLOCK_RECORDS)
        {
            self.flush_block()?;
        }
        self.block_partition = partition;
        self.block.extend_from_slice(&offset.to_le_bytes());
        self.block.extend_from_slice(&timestamp.to_le_bytes());
        self.block
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.block.extend_from_slice(value);
        self.block_records += 1;
        self.records += 1;
        Ok(())
    }

    pub(super) fn flush_block(&mut self) -> Result<()> {
        if self.block_records == 0 {
            return Ok(());
        }
        let mut head = [0u8; BLOCK_HEADER_LEN];
        head[0..4].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
        head[4..8].copy_from_slice(&self.block_partition.to_le_bytes());
        head[8..12].copy_from_slice(&self.block_records.to_le_bytes());
        head[12..16].copy_from_slice(&(self.block.len() as u32).to_le_bytes());
        let sum = crc(&[&head[..16], &self.block]);
        head[16..20].copy_from_slice(&sum.to_le_bytes());
        self.write(&head)?;
        let block = std::mem::take(&mut self.block);
        self.write(&block)?;
        self.block = block;
        self.block.clear();
        self.block_records = 0;
        self.blocks += 1;
        Ok(())
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::invalid("snapshot metadata", format!("cannot serialise: {e}")))
}

/// Exports `topic` of `fabric` to the snapshot file `path` (replacing it
/// atomically: written to `<path>.tmp`, synced, renamed, directory synced).
/// See [`export_with_progress`].
pub fn export(
    fabric: &Fabric,
    topic: &str,
    path: impl AsRef<Path>,
    options: &ExportOptions,
) -> Result<ExportSummary> {
    export_with_progress(fabric, topic, path, options, &mut |_| {})
}

/// [`export`], calling `progress` with the running record count after every
/// block written. Streams: memory stays at about one block whatever the size
/// of the topic. Every exported record must be a valid envelope (its
/// `schema_version` is catalogued); reads go through [`crate::Reader`].
pub fn export_with_progress(
    fabric: &Fabric,
    topic: &str,
    path: impl AsRef<Path>,
    options: &ExportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary> {
    let path = path.as_ref();
    let info = fabric.topic_info(topic)?;
    let partitions: Vec<u32> = match &options.partitions {
        Some(list) => {
            let set: BTreeSet<u32> = list.iter().copied().collect();
            if let Some(&bad) = set.iter().find(|&&p| p >= info.config.partitions) {
                return Err(Error::invalid(
                    format!("partition {bad} of topic {topic:?}"),
                    format!("the topic has partitions 0..{}", info.config.partitions),
                ));
            }
            set.into_iter().collect()
        }
        None => (0..info.config.partitions).collect(),
    };
    let header_meta = HeaderMeta {
        topic: topic.to_string(),
        config: info.config.clone(),
        partitions: partitions.clone(),
        from: options.from,
        to: options.to,
        exported_at: crate::clock::now_micros(),
    };
    let meta = json_bytes(&header_meta)?;
    let file_name = path.file_name().ok_or_else(|| {
        Error::invalid(
            format!("export file {}", path.display()),
            "it names no file",
        )
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        tmp: tmp.clone(),
        written: 0,
        blocks: 0,
        records: 0,
        block: Vec::with_capacity(TARGET_BLOCK_BYTES + 4096),
        block_records: 0,
        block_partition: 0,
    };
    let result = (|| {
        let mut head = [0u8; HEADER_LEN];
        head[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        head[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        head[12..16].copy_from_slice(&0u32.to_le_bytes());
        head[16..20].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        head[20..24].copy_from_slice(&crc(&[&meta]).to_le_bytes());
        // 24..28 reserved, zero.
        let sum = crc(&[&head[..28]]);
        head[28..32].copy_from_slice(&sum.to_le_bytes());
        w.write(&head)?;
        w.write(&meta)?;

        let mut versions = BTreeSet::new();
        let mut contents = Vec::new();
        let mut value_bytes = 0u64;
        for &p in &partitions {
            // Every readable tier: retention may have moved the start to warm.
            let view = fabric.partition_view(topic, p)?;
            let (earliest, end) = fabric.retained_range_checked(topic, p, &view.log)?;
            let start = match options.from {
                Bound::Unbounded => earliest,
                Bound::Offset(o) => o.clamp(earliest, end),
                Bound::Time(t) => view.offset_for_time(t)?.unwrap_or(end),
            };
            let stop = match options.to {
                Bound::Offset(o) => o.min(end),
                _ => end,
            };
            let mut part = PartitionContents {
                partition: p,
                records: 0,
                offsets: None,
                min_timestamp: None,
            };
            if start < stop {
                let mut reader = fabric
                    .reader(topic, StartFrom::Offsets(BTreeMap::from([(p, start)])))?
                    .with_partitions(&[p])?;
                while let Some(raw) = reader.next_raw() {
                    let raw = raw?;
                    if raw.offset >= stop {
                        break;
                    }
                    if let Bound::Time(t) = options.from
                        && raw.timestamp < t
                    {
                        continue;
                    }
                    if let Bound::Time(t) = options.to
                        && raw.timestamp >= t
                    {
                        continue;
                    }
                    let envelope = raw.envelope().map_err(|e| {
                        Error::invalid(
                            format!(
                                "record at offset {} of topic {topic:?} partition {p}",
                                raw.offset
                            ),
                            format!("{e}; only envelopes can be exported"),
                        )
                    })?;
                    if !versions.contains(envelope.schema_version) {
                        versions.insert(envelope.schema_version.to_string());
                    }
                    let blocks_before = w.blocks;
                    w.push(p, raw.offset, raw.timestamp, &raw.value)?;
                    if w.blocks != blocks_before {
                        progress(w.records);
                    }
                    value_bytes += raw.value.len() as u64;
                    part.records += 1;
                    part.offsets = Some(match part.offsets {
                        None => (raw.offset, raw.offset),
                        Some((first, _)) => (first, raw.offset),
                    });
                    part.min_timestamp = Some(
                        part.min_timestamp
                            .map_or(raw.timestamp, |m| m.min(raw.timestamp)),
                    );
                }
            }
            w.flush_block()?;
            contents.push(part);
        }
        progress(w.records);
        let schema_versions: Vec<String> = versions.into_iter().collect();
        let footer_meta = json_bytes(&FooterMeta {
            schema_versions: schema_versions.clone(),
            partitions: contents,
        })?;
        let footer_at = w.written;
        let mut fixed = [0u8; FOOTER_FIXED_LEN - 4];
        fixed[0..4].copy_from_slice(&FOOTER_MAGIC.to_le_bytes());
        fixed[4..12].copy_from_slice(&w.blocks.to_le_bytes());
        fixed[12..20].copy_from_slice(&w.records.to_le_bytes());
        let mut len = [0u8; 4];
        len.copy_from_slice(&(footer_meta.len() as u32).to_le_bytes());
        let sum = crc(&[&fixed, &len, &footer_meta]);
        w.write(&fixed)?;
        w.write(&len)?;
        w.write(&footer_meta)?;
        w.write(&sum.to_le_bytes())?;
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[0..8].copy_from_slice(&footer_at.to_le_bytes());
        trailer[8..16].copy_from_slice(&SNAPSHOT_END_MAGIC);
        w.write(&trailer)?;
        let file = w
            .out
            .into_inner()
            .map_err(|e| Error::io("write", &tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        crate::topic::sync_dir(&dir)?;
        Ok(ExportSummary {
            path: path.to_path_buf(),
            records: w.records,
            value_bytes,
            file_bytes: w.written,
            schema_versions,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
