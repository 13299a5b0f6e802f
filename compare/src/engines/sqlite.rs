//! `sqlite`: SQLite through rusqlite (bundled), WAL mode.
//!
//! Table `log(offset INTEGER PRIMARY KEY, payload BLOB)`, one transaction per
//! batch with a cached prepared INSERT. `synchronous=NORMAL` for the workloads
//! that sync once at the end, `FULL` for the fsync-per-batch workload (each
//! commit then fsyncs the WAL, and `sync` has nothing left to do).
//!
//! In WAL + NORMAL, commits do not fsync and SQLite has no "fsync the WAL now"
//! call; `sync` makes everything durable by committing one tiny row (in table
//! `meta`) with `synchronous=FULL`, which fsyncs the WAL and with it every frame
//! before it. SQLite stores no per-record checksum, so scans verify nothing.
//! Open includes `SELECT max(offset)`, which every engine needs to know where to
//! append (the others learn it while opening).

use std::path::Path;

use rusqlite::{Connection, params};

use super::{Engine, Opts, Res};

pub const NAME: &str = "sqlite";
pub const DESCRIBE: &str = "rusqlite (bundled SQLite), journal_mode=WAL, synchronous=NORMAL (FULL for the fsync workload), \
table log(offset INTEGER PRIMARY KEY, payload BLOB), one transaction per batch; \
sync = one tiny commit under synchronous=FULL (fsyncs the WAL); no record checksums to verify";

pub struct Sqlite {
    conn: Connection,
    next: u64,
    full: bool,
}

pub fn open(dir: &Path, opts: Opts) -> Res<Box<dyn Engine>> {
    std::fs::create_dir_all(dir)?;
    let conn = Connection::open(dir.join("log.db"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("sqlite: journal_mode is {mode}, not wal").into());
    }
    let full = opts.sync_each_batch;
    conn.execute_batch(if full {
        "PRAGMA synchronous=FULL;"
    } else {
        "PRAGMA synchronous=NORMAL;"
    })?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS log(offset INTEGER PRIMARY KEY, payload BLOB);
         CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER);",
    )?;
    let next: i64 = conn.query_row("SELECT coalesce(max(offset) + 1, 0) FROM log", [], |r| {
        r.get(0)
    })?;
    Ok(Box::new(Sqlite {
        conn,
        next: next as u64,
        full,
    }))
}

impl Engine for Sqlite {
    fn name(&self) -> &'static str {
        NAME
    }

    fn append_batch(&mut self, recs: &[&[u8]]) -> Res<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO log(offset, payload) VALUES (?1, ?2)")?;
            for (i, r) in recs.iter().enumerate() {
                st.execute(params![(self.next + i as u64) as i64, r])?;
            }
        }
        tx.commit()?;
        self.next += recs.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> Res<()> {
        if self.full {
            // Every commit already fsynced the WAL.
            return Ok(());
        }
        self.conn.execute_batch("PRAGMA synchronous=FULL;")?;
        self.conn.execute(
            "INSERT OR REPLACE INTO meta(k, v) VALUES ('synced_to', ?1)",
            params![self.next as i64],
        )?;
        self.conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        Ok(())
    }

    fn scan_all(&mut self) -> Res<(u64, u64)> {
        let mut st = self
            .conn
            .prepare_cached("SELECT payload FROM log ORDER BY offset")?;
        let mut rows = st.query([])?;
        let (mut recs, mut bytes) = (0u64, 0u64);
        while let Some(row) = rows.next()? {
            recs += 1;
            bytes += row.get_ref(0)?.as_blob()?.len() as u64;
        }
        Ok((recs, bytes))
    }

    fn read_at(&mut self, offset: u64) -> Res<usize> {
        let mut st = self
            .conn
            .prepare_cached("SELECT payload FROM log WHERE offset = ?1")?;
        let n = st.query_row(params![offset as i64], |r| {
            Ok(r.get_ref(0)?.as_blob()?.len())
        })?;
        Ok(n)
    }

    fn next_offset(&self) -> Option<u64> {
        Some(self.next)
    }

    fn close(self: Box<Self>) -> Res<()> {
        // Closing the last connection checkpoints the WAL into the database.
        self.conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}
