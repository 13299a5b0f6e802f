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
use crate::storage::le::{self, LeReader};
use crate::storage::log::AppendCeiling;
use crate::storage::segment::Segment;
use crate::storage::warm::{archive_name, marker_name};
use crate::tier::RemoteHandle;
use crate::tier::maintain::PartitionJob;
use crate::tier::objstore::{ObjectStoreConfig, RemoteStore, S3Credentials};
pub(crate) use crate::tier::remote_blocks::RemoteBlockCache;
use crate::tier::remote_blocks::RemoteBlocks;

/// First bytes of a marker file.
pub const MARKER_MAGIC: [u8; 4] = [0xEF, b'F', b'A', b'M'];
/// The marker format version this code writes and reads.
pub const MARKER_VERSION: u8 = 1;
/// Default bound of the cache of fetched blocks (compressed bytes).
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;
/// Default bytes fetched past a missed block (one ranged GET) for
/// sequential replay.
pub const DEFAULT_READ_AHEAD_BYTES: u64 = 8 << 20;
/// Default age past which an object no marker names is deleted.
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(3600);
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
    /// How old (by the store's last-modified time) an object under a
    /// partition's prefix that no marker names must be before maintenance
    /// deletes it as the leftover of an interrupted move; also the interval
    /// between two such sweeps of a partition (the first runs at the first
    /// maintenance after open).
    pub orphan_grace: Duration,
}

impl RemoteWarmConfig {
    /// The warm tier in `store` with every default: credentials from the
    /// environment, a 256 MiB cache, 8 MiB read-ahead, retries after 1 s
    /// doubling to 5 min, no local-disk ceiling, orphans swept after 1 hour.
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
            orphan_grace: DEFAULT_ORPHAN_GRACE,
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

    /// Parses and checks a marker; every failure names `path` and the byte
    /// where the bad field starts.
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
        // The checksum covers every byte before the last four.
        let (body, stored) = b
            .split_at_checked(b.len() - 4)
            .ok_or_else(|| bad(0, "remote-archive marker is truncated"))?;
        let stored = le::u32_at(stored, 0)
            .ok_or_else(|| bad(body.len(), "remote-archive marker checksum is cut short"))?;
        let mut r = LeReader::new(body, path, 0);
        if r.bytes(4, "magic")? != MARKER_MAGIC {
            return Err(bad(0, "no remote-archive marker magic"));
        }
        let version = r.u8("version")?;
        let reserved = r.bytes(3, "reserved")?;
        if version != MARKER_VERSION || reserved != [0, 0, 0] {
            return Err(bad(
                4,
                &format!(
                    "unsupported marker version {version} (this build reads {MARKER_VERSION})"
                ),
            ));
        }
        if crc32fast::hash(body) != stored {
            return Err(bad(body.len(), "remote-archive marker checksum mismatch"));
        }
        let object_size = r.u64("object_size")?;
        let object_crc32 = r.u32("object_crc32")?;
        let uploaded_at = r.i64("uploaded_at")?;
        let mut text = |what: &str| -> Result<String> {
            let len = r.u16(&format!("{what}_len"))? as usize;
            let at = r.position();
            std::str::from_utf8(r.bytes(len, what)?)
                .map(str::to_owned)
                .map_err(|_| Error::corrupted(path, at, format!("marker {what} is not UTF-8")))
        };
        let bucket = text("bucket")?;
        let key = text("key")?;
        let head = r.bytes(HEADER_LEN, "head")?.to_vec();
        let tail_len = r.u32("tail_len")? as usize;
        let tail = r.bytes(tail_len, "tail")?.to_vec();
        if r.remaining() != 0 {
            return Err(r.corrupted("remote-archive marker has bytes after its tail"));
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

/// The fetcher of an archive opened from its marker alone, to learn what it
/// holds: it fetches nothing.
#[derive(Debug)]
struct MarkerOnly(String);

impl BlockFetcher for MarkerOnly {
    fn compressed_block(&self, _archive: &Archive, _i: usize) -> Result<Bytes> {
        Err(Error::invalid(
            format!("remote archive {}", self.0),
            "opened from its marker only, to check its offsets (fabric verify --remote reads it)",
        ))
    }

    fn location(&self) -> String {
        self.0.clone()
    }

    fn remove_source(&self, _archive: &Archive) -> Result<()> {
        Ok(())
    }
}

/// What the remote archive a marker records holds (topic, partition,
/// offsets, records), from the marker alone: its header and tail checked
/// exactly like a local archive's, no request sent (local `fabric verify`).
pub(crate) fn marker_summary(path: &Path) -> Result<archive::ArchiveSummary> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let marker = Marker::decode(&bytes, path)?;
    let location = format!("s3://{}/{}", marker.bucket, marker.key);
    let opened = Archive::open_recorded(
        path,
        marker.object_size,
        &marker.head,
        &marker.tail,
        Arc::new(MarkerOnly(location)),
    )?;
    Ok(opened.summary)
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
    /// When each partition's orphan objects were last swept.
    sweeps: Mutex<HashMap<(String, u32), Instant>>,
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
            sweeps: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a sweep of the partition's orphan objects is due (and, if
    /// so, records it as done now): at the first maintenance after open,
    /// then once per `orphan_grace`.
    pub(crate) fn sweep_due(&self, topic: &str, partition: u32) -> bool {
        let mut sweeps = self.sweeps.lock();
        let key = (topic.to_owned(), partition);
        let due = sweeps
            .get(&key)
            .is_none_or(|last| last.elapsed() >= self.config.orphan_grace);
        if due {
            sweeps.insert(key, Instant::now());
        }
        due
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
                next_try: crate::clock::deadline(Instant::now(), wait),
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
        // `Archive::open` checked the header and that the index starts
        // inside the file: a failure here means the file changed under us.
        let (head, tail) = match (data.get(..HEADER_LEN), data.get(tail_at..)) {
            (Some(h), Some(t)) => (h.to_vec(), t.to_vec()),
            _ => {
                return Err(Error::corrupted(
                    archive_path,
                    tail_at as u64,
                    "archive changed while it was uploaded: its index is past its end",
                ));
            }
        };
        Ok(Marker {
            object_size: sent.size,
            object_crc32: sent.crc32,
            uploaded_at: now,
            bucket: store.config().bucket.clone(),
            key: key.to_owned(),
            head,
            tail,
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
        let fetcher = Arc::new(RemoteBlocks::new(
            store.clone(),
            marker.key.clone(),
            self.cache.clone(),
            self.config.read_ahead_bytes,
        ));
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
            self.enforce_ceiling(remote, Some(&e));
            return Err(e);
        }
        let dir = self.warm.dir.clone();
        self.tiers
            .ensure_dir(&self.io, &dir, &self.tiers.warm_root)?;
        let archive_tmp = dir.join(format!("{}.tmp", archive_name(base)));
        let view = seg.view()?;
        let data = view.map.get(..view.committed_len as usize).ok_or_else(|| {
            Error::corrupted(
                &seg.path,
                view.committed_len,
                "segment's committed length is past its mapping",
            )
        })?;
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
        self.enforce_ceiling(remote, uploaded.as_ref().err());
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

    /// While uploads fail (`failure` is the last one), the partition's
    /// appends are bounded by the configured local-disk ceiling: the log
    /// keeps a cached count of its bytes (re-read here, at each upload
    /// attempt, then raised by every append) and refuses the append that
    /// would pass the ceiling. Once an upload succeeds the bound is lifted.
    fn enforce_ceiling(&self, remote: &RemoteHandle, failure: Option<&Error>) {
        let Some(limit) = remote.config.local_ceiling_bytes else {
            return;
        };
        let Some(cause) = failure else {
            self.log.refuse_appends(None);
            return;
        };
        let held_bytes: u64 = self
            .log
            .segment_handles()
            .iter()
            .map(|s| s.committed_len())
            .sum();
        if held_bytes > limit {
            log::warn!(
                "topic {:?} partition {} holds {held_bytes} hot bytes, over the local-disk ceiling of {limit}, while its uploads to the warm tier fail: appends are refused until an upload succeeds",
                self.topic,
                self.partition
            );
        }
        self.log.refuse_appends(Some(AppendCeiling {
            topic: self.topic.to_owned(),
            partition: self.partition,
            held_bytes,
            admitted_bytes: 0,
            limit,
            cause: cause.to_string(),
        }));
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
