//! `eventfabric`: this project's engine, through its public API.
//!
//! `Durability::Os` (appends reach the page cache; `flush` fsyncs) for the
//! workloads that sync once at the end; `Durability::Always` for the
//! fsync-per-batch workload, where `append_batch` itself makes the batch
//! durable and `sync` has nothing left to do. Scans go through `Log::batches`,
//! which verifies each batch's CRC.

use std::path::Path;

use eventfabric::{Durability, Log, LogConfig, ReadLimit};

use super::{Engine, Opts, Res};

pub const NAME: &str = "eventfabric";
pub const DESCRIBE: &str = "this crate, LogConfig::default() with durability Os (Always for the fsync workload); \
append_batch per batch, sync = Log::flush, scan = Log::batches(0) (CRC per batch), read = Log::read(off, ReadLimit::records(1))";

pub struct Eventfabric {
    log: Option<Log>,
    always: bool,
}

pub fn open(dir: &Path, opts: Opts) -> Res<Box<dyn Engine>> {
    std::fs::create_dir_all(dir)?;
    let mut cfg = LogConfig::default();
    cfg.durability = if opts.sync_each_batch {
        Durability::Always
    } else {
        Durability::Os
    };
    let log = Log::open(dir, cfg)?;
    Ok(Box::new(Eventfabric {
        log: Some(log),
        always: opts.sync_each_batch,
    }))
}

impl Eventfabric {
    fn log(&mut self) -> &mut Log {
        self.log.as_mut().expect("log is open until close")
    }
}

impl Engine for Eventfabric {
    fn name(&self) -> &'static str {
        NAME
    }

    fn append_batch(&mut self, recs: &[&[u8]]) -> Res<()> {
        let _range: std::ops::Range<u64> = self.log().append_batch(recs)?;
        Ok(())
    }

    fn sync(&mut self) -> Res<()> {
        if self.always {
            // Durability::Always: append_batch already made the batch durable.
            return Ok(());
        }
        self.log().flush()?;
        Ok(())
    }

    fn scan_all(&mut self) -> Res<(u64, u64)> {
        let (mut recs, mut bytes) = (0u64, 0u64);
        for batch in self.log().batches(0)? {
            let batch = batch?;
            for r in batch.records() {
                recs += 1;
                bytes += r.value.len() as u64;
            }
        }
        Ok((recs, bytes))
    }

    fn read_at(&mut self, offset: u64) -> Res<usize> {
        let recs = self.log().read(offset, ReadLimit::records(1))?;
        let r = recs.first().ok_or("eventfabric: offset not found")?;
        if r.offset != offset {
            return Err(format!("eventfabric: asked for offset {offset}, got {}", r.offset).into());
        }
        Ok(r.value.len())
    }

    fn next_offset(&self) -> Option<u64> {
        self.log.as_ref().map(Log::next_offset)
    }

    fn close(mut self: Box<Self>) -> Res<()> {
        if let Some(log) = self.log.take() {
            log.close()?;
        }
        Ok(())
    }
}
