//! The warm tier on an object store (feature `tier-s3`): archive segments
//! uploaded to a bucket, recorded locally by a marker file each, read back
//! block by block through a bounded cache with read-ahead.
//!
//! Owns the remote warm tier's configuration ([`RemoteWarmConfig`]), the
//! object layout in the bucket (`<prefix>/<topic>/<partition>/<base:020>.archive`,
//! byte for byte the local archive format), the marker file format
//! (`<warm>/<topic>/<partition>/<base:020>.remote`, see `docs/FORMAT.md`
//! "Remote warm tier"), the upload-and-confirm step of a move (PUT, then a
//! HEAD whose size and CRC-32 must match), the cache of fetched compressed
//! blocks, and the retry backoff of partitions whose uploads fail.
//!
//! It never decides when a segment moves or goes (that is [`crate::tier`]),
//! never removes a hot segment (the tier does, after the marker is durable),
//! and never treats an object in the bucket as readable without its local
//! marker: the marker is the one record of the move, so a crash leaves
//! either the hot copy or a confirmed remote copy readable, never two.
#![allow(
    clippy::indexing_slicing,
    reason = "owned by another helper this session; the lead converts it at merge"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::clock::now_micros;
use crate::error::{Error, Result};
use crate::storage::archive::{
    self, Archive, ArchiveMeta, BlockFetcher, HEADER_LEN, RemoteArchives,
};
use crate::storage::segment::Segment;
use crate::storage::warm::{archive_name, marker_name};
use crate::tier::RemoteHandle;
use crate::tier::maintain::PartitionJob;
use crate::tier::objstore::{ObjectStoreConfig, RemoteStore, S3Credentials};

/// First bytes of a marker file.
pub const MARKER_MAGIC: [u8; 4] = [0xEF, b'F', b'A', b'M'];
/// The marker format version this code writes and reads.
pub const MARKER_VERSION: u8 = 1;
/// Default bound of the cache of fetched blocks (compressed bytes).
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;
/// Default bytes fetched past a missed block (one ranged GET) for
/// sequential replay.
pub const DEFAULT_READ_AHEAD_BYTES: u64 = 8 << 20;
/// Largest marker accepted (a 2 GiB segment's index is ~400 KiB).
const MAX_MARKER_LEN: usize = 64 << 20;

/// The warm tier on an object store, for a whole fabric.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteWarmConfig {
    /// Bucket, prefix, endpoint, region and client limits.
    pub store: ObjectStoreConfig,
    /// Topics whose warm tier lives elsewhere (another bucket, prefix,
    /// endpoint or region), by topic name; every other topic uses `store`.
    /// Credentials are the same for all.
    pub topic_stores: BTreeMap<String, ObjectStoreConfig>,
    /// Credentials; `None`: from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) at open.
    pub credentials: Option<S3Credentials>,
    /// Bound of the local cache of fetched blocks, in (compressed) bytes.
    pub cache_bytes: u64,
    /// Bytes fetched in one GET when a block is missed: the blocks after it
    /// come along, so a sequential replay makes one request per this many bytes.
    pub read_ahead_bytes: u64,
    /// First wait after a failed upload before the partition is tried
    /// again; doubles per failure up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest wait between upload attempts.
    pub retry_max: Duration,
    /// When a partition's hot bytes exceed this while its uploads fail,
    /// its appends are refused ([`Error::ObjectStore`], op `"append"`) until
    /// an upload succeeds. `None`: no ceiling.
    pub local_ceiling_bytes: Option<u64>,
}

impl RemoteWarmConfig {
    /// The warm tier in `store` with every default: credentials from the
    /// environment, a 256 MiB cache, 8 MiB read-ahead, retries after 1 s
    /// doubling to 5 min, no local-disk ceiling.
    pub fn new(store: ObjectStoreConfig) -> RemoteWarmConfig {
        RemoteWarmConfig {
            store,
            topic_stores: BTreeMap::new(),
            credentials: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
            read_ahead_bytes: DEFAULT_READ_AHEAD_BYTES,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            local_ceiling_bytes: None,
        }
    }
}

/// One remote archive as recorded locally (the marker's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) object_size: u64,
    pub(crate) object_crc32: u32,
    pub(crate) uploaded_at: i64,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) head: Vec<u8>,
    pub(crate) tail: Vec<u8>,
}

impl Marker {
    /// ```text
    /// marker := magic[4]="\xEFFAM" version:u8=1 reserved[3]=0
    ///           object_size:u64 object_crc32:u32 uploaded_at:i64
    ///           bucket_len:u16 bucket key_len:u16 key
    ///           head[8] tail_len:u32 tail[tail_len] crc:u32
    /// ```
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.key.len() + self.tail.len());
        out.extend_from_slice(&MARKER_MAGIC);
        out.extend_from_slice(&[MARKER_VERSION, 0, 0, 0]);
        out.extend_from_slice(&self.object_size.to_le_bytes());
        out.extend_from_slice(&self.object_crc32.to_le_bytes());
        out.extend_from_slice(&self.uploaded_at.to_le_bytes());
        for s in [&self.bucket, &self.key] {
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&(self.tail.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.tail);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and checks a marker; every failure names `path` and the byte.
    pub(crate) fn decode(b: &[u8], path: &Path) -> Result<Marker> {
        let bad = |pos: usize, why: &str| Error::corrupted(path, pos as u64, why.to_owned());
        if b.len() > MAX_MARKER_LEN {
            return Err(bad(
                0,
                "remote-archive marker is larger than any marker written",
            ));
        }
        if b.len() < 4 + 4 + 8 + 4 + 8 + 2 + 2 + HEADER_LEN + 4 + 4 {
            return Err(bad(0, "remote-archive marker is truncated"));
        }
        if b[..4] != MARKER_MAGIC {
            return Err(bad(0, "no remote-archive marker magic"));
        }
        if b[4] != MARKER_VERSION || b[5..8] != [0, 0, 0] {
            return Err(bad(
                4,
                &format!(
                    "unsupported marker version {} (this build reads {MARKER_VERSION})",
                    b[4]
                ),
            ));
        }
        let body = b.len() - 4;
        let stored = u32::from_le_bytes([b[body], b[body + 1], b[body + 2], b[body + 3]]);
        if crc32fast::hash(&b[..body]) != stored {
            return Err(bad(body, "remote-archive marker checksum mismatch"));
        }
        let mut pos = 8usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let end = pos
                .checked_add(n)
                .filter(|e| *e <= body)
                .ok_or_else(|| bad(pos, "remote-archive marker field runs past its end"))?;
            let s = &b[pos..end];
            pos = end;
            Ok(s)
        };
        let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
        let object_size = u64_of(take(8)?);
        let object_crc32 = u32::from_le_bytes(take(4)?.try_into().unwrap_or([0; 4]));
        let uploaded_at = u64_of(take(8)?) as i64;
        let mut text = |what: &str| -> Result<String> {
            let len = u16::from_le_bytes(take(2)?.try_into().unwrap_or([0; 2])) as usize;
            std::str::from_utf8(take(len)?)
                .map(str::to_owned)
                .map_err(|_| Error::corrupted(path, 0, format!("marker {what} is not UTF-8")))
        };
        let bucket = text("bucket")?;
        let key = text("key")?;
        let head = take(HEADER_LEN)?.to_vec();
        let tail_len = u32::from_le_bytes(take(4)?.try_into().unwrap_or([0; 4])) as usize;
        let tail = take(tail_len)?.to_vec();
        if pos != body {
            return Err(bad(pos, "remote-archive marker has bytes after its tail"));
        }
        if tail.len() as u64 + HEADER_LEN as u64 > object_size {
            return Err(bad(8, "marker's tail is longer than its object"));
        }
        Ok(Marker {
            object_size,
            object_crc32,
            uploaded_at,
            bucket,
            key,
            head,
            tail,
        })
    }
}

/// A byte-bounded LRU of fetched compressed blocks, keyed by archive
/// identity ([`Archive::id`]) and block number.
#[derive(Debug)]
pub(crate) struct RemoteBlockCache {
    limit: u64,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    bytes: u64,
    tick: u64,
    entries: HashMap<(u64, usize), (Bytes, u64)>,
    by_age: BTreeMap<u64, (u64, usize)>,
    hits: u64,
    misses: u64,
}

impl RemoteBlockCache {
    pub(crate) fn new(limit: u64) -> RemoteBlockCache {
        RemoteBlockCache {
            limit,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn get(&self, key: (u64, usize)) -> Option<Bytes> {
        let mut c = self.inner.lock();
        c.tick += 1;
        let tick = c.tick;
        let Some((bytes, age)) = c.entries.get_mut(&key) else {
            c.misses += 1;
            return None;
        };
        let (bytes, old) = (bytes.clone(), std::mem::replace(age, tick));
        c.by_age.remove(&old);
        c.by_age.insert(tick, key);
        c.hits += 1;
        Some(bytes)
    }

    fn insert(&self, key: (u64, usize), block: Bytes) {
        let size = block.len() as u64;
        if size > self.limit {
            return;
        }
        let mut c = self.inner.lock();
        c.tick += 1;
        let tick = c.tick;
        if let Some((old, age)) = c.entries.insert(key, (block, tick)) {
            c.bytes -= old.len() as u64;
            c.by_age.remove(&age);
        }
        c.by_age.insert(tick, key);
        c.bytes += size;
        while c.bytes > self.limit {
            let Some((_, victim)) = c.by_age.pop_first() else {
                break;
            };
            if let Some((b, _)) = c.entries.remove(&victim) {
                c.bytes -= b.len() as u64;
            }
        }
    }

    /// Drops every block of archive `id` (removed from the tier).
    pub(crate) fn forget(&self, id: u64) {
        let mut c = self.inner.lock();
        let doomed: Vec<(u64, usize)> = c.entries.keys().filter(|k| k.0 == id).copied().collect();
        for k in doomed {
            if let Some((b, age)) = c.entries.remove(&k) {
                c.bytes -= b.len() as u64;
                c.by_age.remove(&age);
            }
        }
    }

    /// (bytes held, hits, misses).
    #[cfg(test)]
    fn stats(&self) -> (u64, u64, u64) {
        let c = self.inner.lock();
        (c.bytes, c.hits, c.misses)
    }
}

/// Brings the blocks of one remote archive: from the cache, else one
/// ranged GET covering the missed block and those after it up to the
/// read-ahead, all of which are cached.
#[derive(Debug)]
struct RemoteBlocks {
    store: Arc<RemoteStore>,
    key: String,
    cache: Arc<RemoteBlockCache>,
    read_ahead: u64,
}

impl BlockFetcher for RemoteBlocks {
    fn compressed_block(&self, archive: &Archive, i: usize) -> Result<Bytes> {
        if let Some(b) = self.cache.get((archive.id, i)) {
            return Ok(b);
        }
        let first = &archive.blocks[i];
        let start = first.position;
        let mut last = i;
        while last + 1 < archive.blocks.len() {
            let next = &archive.blocks[last + 1];
            if next.position + u64::from(next.compressed_len) - start > self.read_ahead {
                break;
            }
            last += 1;
        }
        let end = archive.blocks[last].position + u64::from(archive.blocks[last].compressed_len);
        let fetched = self.store.get_range(&self.key, start..end)?;
        let mut wanted = Bytes::new();
        for (j, e) in archive.blocks.iter().enumerate().take(last + 1).skip(i) {
            let from = (e.position - start) as usize;
            let block = fetched.slice(from..from + e.compressed_len as usize);
            if j == i {
                wanted = block.clone();
            }
            self.cache.insert((archive.id, j), block);
        }
        Ok(wanted)
    }

    fn location(&self) -> String {
        self.store.location(&self.key)
    }

    fn remove_source(&self, archive: &Archive) -> Result<()> {
        self.cache.forget(archive.id);
        self.store.delete(&self.key)
    }
}

/// Upload failures of one partition: when to try again.
#[derive(Debug, Clone)]
struct Retry {
    failures: u32,
    next_try: Instant,
    last_error: String,
}

/// The fabric's remote warm tier: the store, the block cache, the backoff
/// state of partitions whose uploads failed.
#[derive(Debug)]
pub(crate) struct RemoteTier {
    pub(crate) config: RemoteWarmConfig,
    pub(crate) store: Arc<RemoteStore>,
    /// The stores of the topics `RemoteWarmConfig::topic_stores` names.
    topic_stores: HashMap<String, Arc<RemoteStore>>,
    pub(crate) cache: Arc<RemoteBlockCache>,
    retries: Mutex<HashMap<(String, u32), Retry>>,
}

impl RemoteTier {
    /// Connects (no request is sent: an unreachable store shows at the
    /// first upload or read).
    pub(crate) fn connect(config: RemoteWarmConfig) -> Result<RemoteTier> {
        let credentials = match &config.credentials {
            Some(c) => c.clone(),
            None => S3Credentials::from_env()?,
        };
        let store = RemoteStore::connect(config.store.clone(), credentials.clone())?;
        let mut topic_stores = HashMap::new();
        for (topic, c) in &config.topic_stores {
            let s = RemoteStore::connect(c.clone(), credentials.clone())?;
            topic_stores.insert(topic.clone(), Arc::new(s));
        }
        Ok(RemoteTier {
            cache: Arc::new(RemoteBlockCache::new(config.cache_bytes)),
            store: Arc::new(store),
            topic_stores,
            config,
            retries: Mutex::new(HashMap::new()),
        })
    }

    /// The store holding `topic`'s warm tier.
    pub(crate) fn store_for(&self, topic: &str) -> &Arc<RemoteStore> {
        self.topic_stores.get(topic).unwrap_or(&self.store)
    }

    /// The key of the archive of `topic`'s `partition` from `base`.
    pub(crate) fn object_key(&self, topic: &str, partition: u32, base: u64) -> String {
        self.store_for(topic)
            .key(&format!("{topic}/{partition}/{base:020}.archive"))
    }

    /// The error that keeps a partition from uploading now, if it is
    /// waiting out its backoff.
    pub(crate) fn deferred(&self, topic: &str, partition: u32) -> Option<Error> {
        let retries = self.retries.lock();
        let r = retries.get(&(topic.to_owned(), partition))?;
        let now = Instant::now();
        (r.next_try > now).then(|| Error::ObjectStore {
            op: "upload (deferred)",
            location: self
                .store_for(topic)
                .location(&self.store_for(topic).key(&format!("{topic}/{partition}"))),
            reason: format!(
                "{} failed attempt(s), retrying in {} ms; last: {}",
                r.failures,
                (r.next_try - now).as_millis(),
                r.last_error
            ),
        })
    }

    /// Records the outcome of an upload attempt of a partition.
    pub(crate) fn note_attempt(&self, topic: &str, partition: u32, outcome: Option<&Error>) {
        let key = (topic.to_owned(), partition);
        let mut retries = self.retries.lock();
        let Some(e) = outcome else {
            retries.remove(&key);
            return;
        };
        let failures = retries.get(&key).map_or(0, |r| r.failures) + 1;
        let wait = self
            .config
            .retry_initial
            .saturating_mul(1u32 << (failures - 1).min(20))
            .min(self.config.retry_max);
        retries.insert(
            key,
            Retry {
                failures,
                next_try: Instant::now() + wait,
                last_error: e.to_string(),
            },
        );
    }

    /// Uploads the complete local archive `archive_path` (already synced)
    /// as `key`, confirms it with a HEAD (size and CRC-32 both match what
    /// was sent) and returns the marker that records it. Nothing local is
    /// changed; nothing is readable from the store until the marker is in
    /// place.
    pub(crate) fn upload(
        &self,
        topic: &str,
        archive_path: &Path,
        key: &str,
        now: i64,
    ) -> Result<Marker> {
        let store = self.store_for(topic);
        let data = Bytes::from(
            std::fs::read(archive_path).map_err(|e| Error::io("read", archive_path, e))?,
        );
        // Parse what is sent: the marker keeps its header and tail.
        let local = Archive::open(archive_path)?;
        let sent = store.put(key, data.clone())?;
        let confirmed = store.head(key)?;
        let location = store.location(key);
        match confirmed {
            Some(h) if h.size == sent.size && h.crc32 == Some(sent.crc32) => {}
            other => {
                return Err(Error::ObjectStore {
                    op: "confirm upload",
                    location,
                    reason: format!(
                        "sent {} bytes with CRC-32 {:08x}, the store has {}",
                        sent.size,
                        sent.crc32,
                        other.map_or("no object".to_owned(), |h| format!(
                            "{} bytes with CRC-32 {}",
                            h.size,
                            h.crc32.map_or("none".into(), |c| format!("{c:08x}"))
                        ))
                    ),
                });
            }
        }
        let tail_at = local.index_position() as usize;
        Ok(Marker {
            object_size: sent.size,
            object_crc32: sent.crc32,
            uploaded_at: now,
            bucket: store.config().bucket.clone(),
            key: key.to_owned(),
            head: data[..HEADER_LEN].to_vec(),
            tail: data[tail_at..].to_vec(),
        })
    }

    /// Opens the remote archive a marker file records (no request sent).
    pub(crate) fn open_marker(&self, topic: &str, path: &Path) -> Result<Archive> {
        RemoteArchives::open_marker(self, topic, path)
    }
}

impl RemoteArchives for RemoteTier {
    fn open_marker(&self, topic: &str, path: &Path) -> Result<Archive> {
        let store = self.store_for(topic);
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let marker = Marker::decode(&bytes, path)?;
        if marker.bucket != store.config().bucket {
            return Err(Error::invalid(
                format!("remote archive {}", path.display()),
                format!(
                    "it was uploaded to bucket {:?}, but the warm tier of topic {topic:?} is bucket {:?}",
                    marker.bucket,
                    store.config().bucket
                ),
            ));
        }
        let fetcher = Arc::new(RemoteBlocks {
            store: store.clone(),
            key: marker.key.clone(),
            cache: self.cache.clone(),
            read_ahead: self.config.read_ahead_bytes,
        });
        Archive::open_recorded(
            path,
            marker.object_size,
            &marker.head,
            &marker.tail,
            fetcher,
        )
    }
}

impl RemoteTier {
    /// Downloads a remote archive whole and checks it: size, CRC-32, then
    /// header, footer, index and every block (what `fabric verify --remote`
    /// does). Returns the bytes.
    pub(crate) fn download_verified(&self, topic: &str, marker_path: &Path) -> Result<Bytes> {
        let store = self.store_for(topic);
        let raw = std::fs::read(marker_path).map_err(|e| Error::io("read", marker_path, e))?;
        let marker = Marker::decode(&raw, marker_path)?;
        let location = store.location(&marker.key);
        let head = store.head(&marker.key)?.ok_or_else(|| Error::ObjectStore {
            op: "verify",
            location: location.clone(),
            reason: format!(
                "the object recorded by {} is missing",
                marker_path.display()
            ),
        })?;
        if head.size != marker.object_size {
            return Err(Error::ObjectStore {
                op: "verify",
                location,
                reason: format!(
                    "object is {} bytes, {} records {}",
                    head.size,
                    marker_path.display(),
                    marker.object_size
                ),
            });
        }
        let data = store.get_range(&marker.key, 0..marker.object_size)?;
        let crc = crc32fast::hash(&data);
        if crc != marker.object_crc32 {
            return Err(Error::ObjectStore {
                op: "verify",
                location,
                reason: format!(
                    "object bytes have CRC-32 {crc:08x}, uploaded with {:08x}",
                    marker.object_crc32
                ),
            });
        }
        archive::verify_bytes(&data, Path::new(&location))?;
        Ok(data)
    }
}

impl PartitionJob<'_> {
    /// Hot → remote warm for one sealed segment, up to (not including)
    /// removing the hot copy: archive into `<base>.archive.tmp` (synced),
    /// upload it and confirm it, record it in `<base>.remote` (written as
    /// `.remote.tmp`, synced, renamed, directory synced), publish it to
    /// readers. Returns the object's size. A partition whose uploads fail
    /// waits out a growing backoff before the next attempt.
    pub(super) fn move_to_remote(
        &self,
        remote: &RemoteHandle,
        seg: &Arc<Segment>,
        base: u64,
    ) -> Result<u64> {
        if let Some(e) = remote.deferred(self.topic, self.partition) {
            self.enforce_ceiling(remote, true);
            return Err(e);
        }
        let dir = self.warm.dir.clone();
        self.tiers
            .ensure_dir(&self.io, &dir, &self.tiers.warm_root)?;
        let archive_tmp = dir.join(format!("{}.tmp", archive_name(base)));
        let view = seg.view()?;
        let data = &view.map[..view.committed_len as usize];
        let meta = ArchiveMeta {
            topic: self.topic,
            partition: self.partition,
            created_at: now_micros(),
            schema_version_of: &super::catalog::schema_version_of,
        };
        let written = archive::write_archive(&self.io, &archive_tmp, data, &seg.path, base, &meta);
        drop(view);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&archive_tmp);
            return Err(e);
        }
        let key = remote.object_key(self.topic, self.partition, base);
        let uploaded = remote.upload(self.topic, &archive_tmp, &key, now_micros());
        remote.note_attempt(self.topic, self.partition, uploaded.as_ref().err());
        self.enforce_ceiling(remote, uploaded.is_err());
        let marker = match uploaded {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&archive_tmp);
                return Err(e);
            }
        };
        let target = dir.join(marker_name(base));
        let marker_tmp = dir.join(format!("{}.tmp", marker_name(base)));
        let bytes = marker.encode();
        let file = self.io.open_rw(&marker_tmp, true)?;
        self.io.set_len(&file, &marker_tmp, 0)?;
        self.io.write_at(&file, &marker_tmp, &bytes, 0)?;
        self.io.sync_all(&file, &marker_tmp)?;
        drop(file);
        self.io.rename(&marker_tmp, &target)?;
        self.io.sync_dir(&dir)?;
        // The marker is the record now; the local copy was only the upload's source.
        self.io.remove(&archive_tmp)?;
        self.warm
            .push(Arc::new(remote.open_marker(self.topic, &target)?));
        Ok(marker.object_size)
    }

    /// While uploads fail, a hot tier above the configured local-disk
    /// ceiling refuses appends (checked at each upload attempt); once an
    /// upload succeeds, or the hot bytes are back under it, appends go on.
    fn enforce_ceiling(&self, remote: &RemoteHandle, failing: bool) {
        let Some(ceiling) = remote.config.local_ceiling_bytes else {
            return;
        };
        let hot: u64 = self
            .log
            .segment_handles()
            .iter()
            .map(|s| s.committed_len())
            .sum();
        if failing && hot > ceiling {
            let store = remote.store_for(self.topic);
            let location =
                store.location(&store.key(&format!("{}/{}", self.topic, self.partition)));
            let reason = format!(
                "topic {:?} partition {} holds {hot} hot bytes, over the local-disk ceiling of {ceiling}, while its uploads to the warm tier fail: appends are refused until an upload succeeds",
                self.topic, self.partition
            );
            log::warn!("{reason}");
            self.log.refuse_appends(Some((location, reason)));
        } else {
            self.log.refuse_appends(None);
        }
    }

    /// Warm → cold export of a remote archive: downloaded whole and checked
    /// (size, CRC-32, every block), written to `tmp`, synced, renamed to
    /// `target`, directory synced.
    pub(super) fn export_remote(
        &self,
        remote: &RemoteHandle,
        archive: &Archive,
        dir: &Path,
        tmp: &Path,
        target: &Path,
    ) -> Result<()> {
        let data = remote.download_verified(self.topic, &archive.path)?;
        let out = self.io.open_rw(tmp, true)?;
        self.io.set_len(&out, tmp, 0)?;
        self.io.write_at(&out, tmp, &data, 0)?;
        self.io.sync_all(&out, tmp)?;
        drop(out);
        self.io.rename(tmp, target)?;
        self.io.sync_dir(dir)
    }
}

/// What `Fabric::verify_remote_warm` found about one remote archive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteArchiveCheck {
    /// Partition.
    pub partition: u32,
    /// First offset the marker says the archive holds.
    pub base_offset: u64,
    /// One past its last offset.
    pub next_offset: u64,
    /// `s3://bucket/key`.
    pub location: String,
    /// The object's size as recorded at upload.
    pub bytes: u64,
    /// What is wrong (a missing or changed object, a damaged block, a gap
    /// in offsets against the next archive or the hot tier), or `None`.
    pub problem: Option<String>,
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
