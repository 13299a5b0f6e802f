//! Snapshot inspection and import: validates a whole file, then appends
//! its records to the target topic, skipping `event_id`s it already holds.
//!
//! Owns the import side; it must never append a record before the whole
//! file validated, and never append an `event_id` the target already holds.

use super::*;

/// Reads and validates the whole snapshot file at `path` (every checksum)
/// and describes it, without importing anything.
pub fn inspect(path: impl AsRef<Path>) -> Result<SnapshotInfo> {
    let mut d = open_file(path.as_ref())?;
    while d.next_block()?.is_some() {}
    Ok(d.info)
}

/// Imports the snapshot at `path` into `fabric`: into topic `rename` (or the
/// exported topic's name), created with the exported settings when it does
/// not exist, otherwise appended to (it must have every exported partition).
///
/// The whole file is validated first; a damaged or truncated file is an
/// error naming the file and byte, and nothing is imported. Records keep
/// their partition, order, timestamp and bytes (so `event_id`s); they get
/// the target partition's next offsets. A record whose `event_id` the
/// target already holds — in its dedup cache, or anywhere in the target
/// partition from the snapshot's earliest timestamp on — is skipped and
/// counted, so importing the same file twice appends nothing the second time.
pub fn import(
    fabric: &Fabric,
    path: impl AsRef<Path>,
    rename: Option<&str>,
) -> Result<ImportSummary> {
    import_with_progress(fabric, path, rename, &mut |_| {})
}

/// [`import`], calling `progress` with the running count of records handled.
pub fn import_with_progress(
    fabric: &Fabric,
    path: impl AsRef<Path>,
    rename: Option<&str>,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary> {
    let path = path.as_ref();
    let info = inspect(path)?;
    let name = rename.unwrap_or(&info.topic).to_string();
    let created = !fabric.topics().contains(&name);
    let mut known: HashSet<u128> = HashSet::new();
    if created {
        fabric.create_topic(&name, info.config.clone())?;
    } else {
        let target = fabric.topic_info(&name)?;
        if let Some(&p) = info
            .partitions
            .iter()
            .find(|&&p| p >= target.config.partitions)
        {
            return Err(Error::invalid(
                format!("import of {} into topic {name:?}", path.display()),
                format!(
                    "the snapshot holds partition {p} but the topic has {} partitions; add partitions first; nothing was imported",
                    target.config.partitions
                ),
            ));
        }
        // Ids the target already holds in the time span the snapshot covers:
        // a record keeps its timestamp, so a copy of it lies at or after it,
        // in the warm tier as well as the hot one.
        for part in &info.contents {
            let Some(since) = part.min_timestamp else {
                continue;
            };
            let p = part.partition;
            let Some(from) = fabric.partition_view(&name, p)?.offset_for_time(since)? else {
                continue;
            };
            let mut reader = fabric
                .reader(&name, StartFrom::Offsets(BTreeMap::from([(p, from)])))?
                .with_partitions(&[p])?;
            while let Some(raw) = reader.next_raw() {
                if let Some(id) = event_id_of(&raw?.value) {
                    known.insert(id);
                }
            }
        }
    }
    let handle = fabric.handle(&name)?;
    let mut d = open_file(path)?;
    let mut summary = ImportSummary {
        topic: name.clone(),
        created,
        records: info.records,
        appended: 0,
        duplicates_skipped: 0,
        bytes: 0,
    };
    let mut buf = Vec::new();
    let mut items = Vec::new();
    let mut out = Vec::new();
    let mut handled = 0u64;
    let guard = fabric.publish_guard(&handle);
    while let Some(block) = d.next_block()? {
        let logs = handle.partitions();
        buf.clear();
        items.clear();
        out.clear();
        for r in &block {
            let id = event_id_of(&r.value).unwrap_or(0);
            if known.contains(&id) {
                summary.duplicates_skipped += 1;
                continue;
            }
            let start = buf.len();
            buf.extend_from_slice(&r.value);
            items.push(Item {
                partition: r.partition,
                start,
                end: buf.len(),
                timestamp: r.timestamp,
                id,
                system: false,
            });
        }
        // A block (one partition's records) goes in as batches no larger
        // than a segment: one oversized batch would make one oversized
        // segment, which retention could not move while it is active.
        let limit = {
            let config = handle.config.read();
            usize::try_from(config.segment_bytes)
                .unwrap_or(usize::MAX)
                .min(config.max_batch_bytes)
        };
        let mut chunk_start = 0;
        let mut bytes = crate::storage::batch::HEADER_LEN;
        for (i, item) in items.iter().enumerate() {
            let size = item.end - item.start + crate::storage::batch::RECORD_OVERHEAD;
            if i > chunk_start && bytes + size > limit {
                append_items(
                    &handle,
                    &guard,
                    &logs,
                    &buf,
                    // chunk_start < i < items.len()
                    items.get(chunk_start..i).unwrap_or_default(),
                    false,
                    &mut out,
                )?;
                chunk_start = i;
                bytes = crate::storage::batch::HEADER_LEN;
            }
            bytes += size;
        }
        append_items(
            &handle,
            &guard,
            &logs,
            &buf,
            items.get(chunk_start..).unwrap_or_default(),
            false,
            &mut out,
        )?;
        for (item, published) in items.iter().zip(&out) {
            match published.outcome {
                PublishOutcome::Appended => {
                    summary.appended += 1;
                    summary.bytes += (item.end - item.start) as u64;
                }
                PublishOutcome::Duplicate | PublishOutcome::Dropped => {
                    summary.duplicates_skipped += 1;
                }
            }
        }
        handled += block.len() as u64;
        progress(handled);
    }
    for log in handle.partitions().iter() {
        log.flush()?;
    }
    Ok(summary)
}
