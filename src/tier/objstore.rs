//! A synchronous facade over an S3-compatible object store: the remote
//! backend of the warm tier (feature `tier-s3`).
//!
//! Owns the connection to one bucket under one key prefix: building the
//! client (Apache Arrow's `object_store`, its S3 implementation), the private
//! tokio runtime that drives it, and the five operations the warm tier needs
//! — put (one PUT, multipart above a threshold, each object carrying the
//! CRC-32 of its bytes as user metadata), head (size and that checksum),
//! get of a byte range, list under a prefix, delete. Every failure becomes
//! [`Error::ObjectStore`] naming the operation and the `s3://bucket/key`.
//!
//! It must never let anything async reach its callers (every method blocks
//! and may be called from any thread, even one inside another runtime),
//! never write or log a credential (they are read from the usual AWS
//! environment variables, or handed in, and kept only in memory; the
//! `Debug` of every type here redacts them), never reach an address the
//! configuration does not name (no instance-metadata lookups: credentials
//! that are missing are an error, not a reason to probe the network), and
//! never decide what is uploaded or deleted (that is the tier's job).

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the user-metadata entry (`x-amz-meta-eventfabric-crc32`) holding
/// the CRC-32 (IEEE, as 8 lowercase hex digits) of an object's bytes.
pub const CRC32_METADATA: &str = "eventfabric-crc32";
/// S3's smallest part of a multipart upload (all parts but the last).
pub const MIN_PART_BYTES: usize = 5 << 20;
/// Default size above which an object is uploaded in parts: above the
/// archive of a default 256 MiB segment (~85 MB at 3×), so archives go up
/// in one PUT, which measured faster than parts on the loopback test server
/// (docs/PERFORMANCE.md, "Warm tier on object storage").
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 128 << 20;
/// Default size of one part of a multipart upload.
pub const DEFAULT_PART_BYTES: usize = 16 << 20;

/// The environment variables credentials are read from.
pub const ACCESS_KEY_VAR: &str = "AWS_ACCESS_KEY_ID";
/// See [`ACCESS_KEY_VAR`].
pub const SECRET_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";
/// See [`ACCESS_KEY_VAR`] (optional: temporary credentials only).
pub const SESSION_TOKEN_VAR: &str = "AWS_SESSION_TOKEN";

/// Where the remote warm tier lives and how to talk to it. Holds no
/// secret, so it may be stored (it is, in `topic.json`, when a topic names
/// its own bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// The bucket (it must exist: eventfabric never creates buckets).
    pub bucket: String,
    /// Key prefix every object goes under (`""`: the bucket's root), without
    /// leading or trailing `/`.
    #[serde(default)]
    pub prefix: String,
    /// Endpoint URL of an S3-compatible store (`http://127.0.0.1:9000`);
    /// `None`: AWS S3 of `region`. Plain `http://` is allowed only here, when
    /// named explicitly.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region; `None`: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Objects larger than this are uploaded in parts.
    #[serde(default = "default_threshold")]
    pub multipart_threshold: u64,
    /// Size of each part of a multipart upload (at least 5 MiB).
    #[serde(default = "default_part_bytes")]
    pub part_bytes: usize,
    /// Parts of one upload in flight at once.
    #[serde(default = "default_concurrency")]
    pub upload_concurrency: usize,
    /// Time limit of one request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Retries of one failed request inside the client (with backoff)
    /// before the operation fails; the tier retries later on its own.
    #[serde(default = "default_retries")]
    pub max_retries: usize,
}

fn default_threshold() -> u64 {
    DEFAULT_MULTIPART_THRESHOLD
}
fn default_part_bytes() -> usize {
    DEFAULT_PART_BYTES
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_retries() -> usize {
    2
}

impl ObjectStoreConfig {
    /// Settings for `bucket` with every default (no prefix, AWS S3).
    pub fn new(bucket: impl Into<String>) -> ObjectStoreConfig {
        ObjectStoreConfig {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_bytes: DEFAULT_PART_BYTES,
            upload_concurrency: default_concurrency(),
            request_timeout_ms: default_timeout_ms(),
            max_retries: default_retries(),
        }
    }

    /// Checks every field, naming the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Error::invalid(format!("object store {field}"), why);
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 63
            || !b
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            || b.starts_with(['-', '.'])
            || b.ends_with(['-', '.'])
        {
            return Err(bad(
                "bucket",
                format!(
                    "{b:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
                ),
            ));
        }
        let bad_segment = |s: &str| s.is_empty() || s == "." || s == "..";
        if !self.prefix.is_empty() && self.prefix.split('/').any(bad_segment) {
            return Err(bad(
                "prefix",
                format!(
                    "{:?}: segments separated by single '/', none empty, '.' or '..', no leading or trailing '/'",
                    self.prefix
                ),
            ));
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(bad(
                "endpoint",
                format!("{e:?} is not an http:// or https:// URL"),
            ));
        }
        if self.part_bytes < MIN_PART_BYTES {
            return Err(bad(
                "part_bytes",
                format!(
                    "{} is below S3's smallest part of {MIN_PART_BYTES} bytes",
                    self.part_bytes
                ),
            ));
        }
        if self.multipart_threshold < self.part_bytes as u64 {
            return Err(bad(
                "multipart_threshold",
                format!(
                    "{} is below part_bytes ({})",
                    self.multipart_threshold, self.part_bytes
                ),
            ));
        }
        if self.upload_concurrency == 0 || self.request_timeout_ms == 0 {
            return Err(bad(
                "upload_concurrency / request_timeout_ms",
                "both must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Credentials of the object store. Kept in memory only; `Debug` shows the
/// key id and hides the secret and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl S3Credentials {
    /// Credentials handed in by an embedding program.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> S3Credentials {
        S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional)
    /// `AWS_SESSION_TOKEN`. Missing or empty ones are an error naming them.
    pub fn from_env() -> Result<S3Credentials> {
        S3Credentials::from_vars(&|name| std::env::var(name).ok())
    }

    /// [`S3Credentials::from_env`] reading variables through `lookup` (an
    /// environment prepared for a child process, or a test's).
    pub fn from_vars(lookup: &dyn Fn(&str) -> Option<String>) -> Result<S3Credentials> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let missing: Vec<&str> = [ACCESS_KEY_VAR, SECRET_KEY_VAR]
            .into_iter()
            .filter(|n| get(n).is_none())
            .collect();
        match (get(ACCESS_KEY_VAR), get(SECRET_KEY_VAR)) {
            (Some(id), Some(secret)) => Ok(S3Credentials::new(id, secret, get(SESSION_TOKEN_VAR))),
            _ => Err(Error::ObjectStore {
                op: "read credentials",
                location: "environment".into(),
                reason: format!(
                    "{} not set: the remote warm tier needs {ACCESS_KEY_VAR} and {SECRET_KEY_VAR} (and {SESSION_TOKEN_VAR} for temporary credentials)",
                    missing.join(" and ")
                ),
            }),
        }
    }
}

/// What a HEAD (or a listing) says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// Full key in the bucket (prefix included).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The CRC-32 recorded in the object's metadata at upload, if any
    /// (HEAD only: listings do not carry metadata).
    pub crc32: Option<u32>,
    /// The store's entity tag, as it gave it.
    pub e_tag: Option<String>,
    /// When the store says the object was last written (µs since the
    /// epoch; listings only, `None` from a HEAD).
    pub modified_at: Option<i64>,
}

/// What an upload sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadReceipt {
    /// Bytes sent.
    pub size: u64,
    /// CRC-32 of the bytes, also recorded as the object's metadata.
    pub crc32: u32,
    /// Parts sent: 1 for a single PUT.
    pub parts: usize,
}

/// A ranged GET running in the background ([`RemoteStore::spawn_get_range`]).
#[derive(Debug)]
pub struct PendingRange {
    rx: std::sync::mpsc::Receiver<object_store::Result<Bytes>>,
    key: String,
    location: String,
    endpoint: Option<String>,
    bucket: String,
    range: Range<u64>,
}

impl PendingRange {
    /// The bytes asked for, waiting for them if they have not arrived; the
    /// same errors as [`RemoteStore::get_range`].
    pub fn wait(self) -> Result<Bytes> {
        // The task sends before it ends: it ends without sending only when
        // it panicked inside the client.
        let got = self.rx.recv().unwrap_or_else(|_| {
            Err(object_store::Error::Generic {
                store: "S3",
                source: "the client's task ended without an answer (it panicked)".into(),
            })
        });
        let bytes = got.map_err(|e| Error::ObjectStore {
            op: "read range",
            location: self.location.clone(),
            reason: explain(&e.to_string(), &self.bucket, self.endpoint.as_deref()),
        })?;
        let want = self.range.end.saturating_sub(self.range.start);
        if bytes.len() as u64 != want {
            return Err(Error::ObjectStore {
                op: "read range",
                location: self.location,
                reason: format!(
                    "bytes {}..{} returned {} bytes, not {want}",
                    self.range.start,
                    self.range.end,
                    bytes.len()
                ),
            });
        }
        Ok(bytes)
    }

    /// The key being read.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The store's message, with what it most likely means said first.
fn explain(message: &str, bucket: &str, endpoint: Option<&str>) -> String {
    if message.contains("NoSuchBucket") {
        format!(
            "the bucket {bucket:?} does not exist (eventfabric never creates buckets): {message}"
        )
    } else if message.contains("error sending request")
        || message.contains("Connection refused")
        || message.contains("timed out")
    {
        format!(
            "the store at {} is unreachable: {message}",
            endpoint.unwrap_or("AWS S3")
        )
    } else {
        message.to_owned()
    }
}

/// A connection to one bucket under one prefix. Every method blocks; the
/// store is shared by threads (`&self` everywhere).
pub struct RemoteStore {
    config: ObjectStoreConfig,
    store: Arc<AmazonS3>,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStore")
            .field("bucket", &self.config.bucket)
            .field("prefix", &self.config.prefix)
            .field("endpoint", &self.config.endpoint)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// Connects with credentials from the environment ([`S3Credentials::from_env`]).
    pub fn connect_env(config: ObjectStoreConfig) -> Result<RemoteStore> {
        RemoteStore::connect(config, S3Credentials::from_env()?)
    }

    /// Builds the client and its runtime. Sends nothing: an unreachable
    /// store or a missing bucket shows at the first request (or
    /// [`RemoteStore::check_bucket`]).
    pub fn connect(config: ObjectStoreConfig, credentials: S3Credentials) -> Result<RemoteStore> {
        config.validate()?;
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let mut options = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout.min(Duration::from_secs(5)));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(region)
            .with_access_key_id(credentials.access_key_id)
            .with_secret_access_key(credentials.secret_access_key)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: config.max_retries,
                retry_timeout: timeout,
            });
        if let Some(token) = credentials.session_token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = &config.endpoint {
            // An explicitly named endpoint: path-style requests (what
            // S3-compatible stores serve), plain http only if it says so.
            options = options.with_allow_http(endpoint.starts_with("http://"));
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store =
            builder
                .with_client_options(options)
                .build()
                .map_err(|e| Error::ObjectStore {
                    op: "configure",
                    location: format!("s3://{}", config.bucket),
                    reason: e.to_string(),
                })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("eventfabric-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::io("start object-store runtime", "tokio runtime", e))?;
        Ok(RemoteStore {
            config,
            store: Arc::new(store),
            runtime,
        })
    }

    /// The settings this store was connected with.
    pub fn config(&self) -> &ObjectStoreConfig {
        &self.config
    }

    /// The full key of `relative` (prefix prepended).
    pub fn key(&self, relative: &str) -> String {
        if self.config.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.config.prefix)
        }
    }

    /// `s3://bucket/key`, for messages.
    pub fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.config.bucket)
    }

    /// Runs `fut` on the private runtime and waits for it. Spawned rather
    /// than `block_on`, so a caller on another runtime's thread does not
    /// panic.
    fn run<F, T>(&self, fut: F) -> object_store::Result<T>
    where
        F: Future<Output = object_store::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        // The task sends before it ends: it ends without sending only when
        // it panicked inside the client.
        rx.recv().unwrap_or_else(|_| {
            Err(object_store::Error::Generic {
                store: "S3",
                source: "the client's task ended without an answer (it panicked)".into(),
            })
        })
    }

    fn error(&self, op: &'static str, key: &str, e: object_store::Error) -> Error {
        Error::ObjectStore {
            op,
            location: self.location(key),
            reason: explain(
                &e.to_string(),
                &self.config.bucket,
                self.config.endpoint.as_deref(),
            ),
        }
    }

    fn path(&self, key: &str) -> Result<StorePath> {
        StorePath::parse(key).map_err(|e| Error::ObjectStore {
            op: "name object",
            location: self.location(key),
            reason: e.to_string(),
        })
    }

    /// Checks that the bucket exists and the credentials may list it.
    pub fn check_bucket(&self) -> Result<()> {
        let store = self.store.clone();
        let prefix = (!self.config.prefix.is_empty())
            .then(|| self.path(&self.config.prefix))
            .transpose()?;
        self.run(async move { store.list_with_delimiter(prefix.as_ref()).await })
            .map(|_| ())
            .map_err(|e| self.error("check bucket", &self.config.prefix, e))
    }

    /// Uploads `data` to `key` (full key), replacing any object there: one
    /// PUT up to the multipart threshold, else a multipart upload (aborted
    /// on failure, so no parts are left behind to pay for). The object
    /// carries the CRC-32 of `data` as metadata ([`CRC32_METADATA`]), which
    /// [`RemoteStore::head`] returns. Appears whole or not at all.
    pub fn put(&self, key: &str, data: Bytes) -> Result<UploadReceipt> {
        let path = self.path(key)?;
        let crc32 = crc32fast::hash(&data);
        let size = data.len() as u64;
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(CRC32_METADATA.into()),
            format!("{crc32:08x}").into(),
        );
        let store = self.store.clone();
        if size <= self.config.multipart_threshold {
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.run(async move { store.put_opts(&path, PutPayload::from(data), opts).await })
                .map_err(|e| self.error("upload", key, e))?;
            return Ok(UploadReceipt {
                size,
                crc32,
                parts: 1,
            });
        }
        let part = self.config.part_bytes;
        let concurrency = self.config.upload_concurrency;
        let parts = data.len().div_ceil(part);
        let opts = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        self.run(async move {
            let upload = store.put_multipart_opts(&path, opts).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
            let mut rest = data;
            while !rest.is_empty() {
                if let Err(e) = writer.wait_for_capacity(concurrency).await {
                    let _ = writer.abort().await;
                    return Err(e);
                }
                let chunk = rest.split_to(part.min(rest.len()));
                writer.put(chunk);
            }
            // `finish` aborts the upload itself when a part or the completion fails.
            writer.finish().await
        })
        .map_err(|e| self.error("multipart upload", key, e))?;
        Ok(UploadReceipt { size, crc32, parts })
    }

    /// One plain PUT of `data`, without checksum metadata or multipart:
    /// what [`RemoteStore::put`] is measured against (the upload benchmark).
    pub fn put_plain(&self, key: &str, data: Bytes) -> Result<()> {
        let path = self.path(key)?;
        let store = self.store.clone();
        self.run(async move { store.put(&path, PutPayload::from(data)).await })
            .map(|_| ())
            .map_err(|e| self.error("upload", key, e))
    }

    /// Size, recorded CRC-32 and entity tag of `key`, or `None` when there
    /// is no such object.
    pub fn head(&self, key: &str) -> Result<Option<RemoteObject>> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let got = self.run(async move {
            let opts = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            store.get_opts(&path, opts).await
        });
        let result = match got {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error("head", key, e)),
        };
        let crc32 = match result
            .attributes
            .get(&Attribute::Metadata(CRC32_METADATA.into()))
        {
            None => None,
            Some(v) => {
                Some(
                    u32::from_str_radix(v.as_ref(), 16).map_err(|_| Error::ObjectStore {
                        op: "head",
                        location: self.location(key),
                        reason: format!(
                            "metadata {CRC32_METADATA} is {:?}, not 8 hex digits",
                            v.as_ref()
                        ),
                    })?,
                )
            }
        };
        Ok(Some(RemoteObject {
            key: key.to_owned(),
            size: result.meta.size,
            crc32,
            e_tag: result.meta.e_tag,
            modified_at: None,
        }))
    }

    /// Bytes `range` of `key`. Fewer bytes than asked (an object shorter
    /// than its caller believes) is an error naming both lengths.
    pub fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let want = range.end.saturating_sub(range.start);
        let r = range.clone();
        let bytes = self
            .run(async move { store.get_range(&path, r).await })
            .map_err(|e| self.error("read range", key, e))?;
        if bytes.len() as u64 != want {
            return Err(Error::ObjectStore {
                op: "read range",
                location: self.location(key),
                reason: format!(
                    "bytes {}..{} returned {} bytes, not {want}",
                    range.start,
                    range.end,
                    bytes.len()
                ),
            });
        }
        Ok(bytes)
    }

    /// Starts a GET of bytes `range` of `key` in the background (on the
    /// private runtime) and returns at once; [`PendingRange::wait`] gives
    /// the bytes, checked like [`RemoteStore::get_range`]'s. For read-ahead:
    /// the caller decodes what it has while the next bytes arrive.
    pub fn spawn_get_range(&self, key: &str, range: Range<u64>) -> Result<PendingRange> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let r = range.clone();
        self.runtime.spawn(async move {
            let _ = tx.send(store.get_range(&path, r).await);
        });
        Ok(PendingRange {
            rx,
            key: key.to_owned(),
            location: self.location(key),
            endpoint: self.config.endpoint.clone(),
            bucket: self.config.bucket.clone(),
            range,
        })
    }

    /// Every object whose key starts with `prefix/` (a full key prefix,
    /// e.g. [`RemoteStore::key`] of a directory), sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<RemoteObject>> {
        let path = self.path(prefix)?;
        let store = self.store.clone();
        let mut out: Vec<RemoteObject> = self
            .run(async move { store.list(Some(&path)).try_collect::<Vec<_>>().await })
            .map_err(|e| self.error("list", prefix, e))?
            .into_iter()
            .map(|m| RemoteObject {
                key: m.location.to_string(),
                size: m.size,
                crc32: None,
                e_tag: m.e_tag,
                modified_at: Some(m.last_modified.timestamp_micros()),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes `key`; deleting an object that is not there succeeds.
    pub fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let store = self.store.clone();
        match self.run(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_aws_variables_and_never_show() {
        let vars = |name: &str| match name {
            ACCESS_KEY_VAR => Some("AKIDEXAMPLE".to_owned()),
            SECRET_KEY_VAR => Some("wJalrXUtnFEMI".to_owned()),
            _ => None,
        };
        let c = S3Credentials::from_vars(&vars).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        let err = S3Credentials::from_vars(&|n: &str| vars(n).filter(|_| n != SECRET_KEY_VAR))
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY not set"), "{err}");
        let none = S3Credentials::from_vars(&|_| Some(String::new()))
            .unwrap_err()
            .to_string();
        assert!(
            none.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"),
            "{none}"
        );
    }

    #[test]
    fn configuration_is_checked_field_by_field() {
        assert!(ObjectStoreConfig::new("warm-tier.1").validate().is_ok());
        for (bucket, prefix, endpoint) in [
            ("UPPER", "", None),
            ("ab", "", None),
            ("ok-bucket", "/lead", None),
            ("ok-bucket", "trail/", None),
            ("ok-bucket", "a//b", None),
            ("ok-bucket", "a/../b", None),
            ("ok-bucket", "", Some("ftp://x")),
        ] {
            let mut c = ObjectStoreConfig::new(bucket);
            c.prefix = prefix.into();
            c.endpoint = endpoint.map(str::to_owned);
            assert!(c.validate().is_err(), "{c:?}");
        }
        let mut c = ObjectStoreConfig::new("ok-bucket");
        c.part_bytes = 1 << 20;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("part_bytes"), "{err}");
        c.prefix = "fabric/prod".into();
        c.part_bytes = MIN_PART_BYTES;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn debug_of_a_store_names_the_bucket_and_no_secret() {
        let mut c = ObjectStoreConfig::new("warm-bucket");
        c.endpoint = Some("http://127.0.0.1:1".into());
        let s = RemoteStore::connect(c, S3Credentials::new("id", "very-secret", None)).unwrap();
        let shown = format!("{s:?}");
        assert!(shown.contains("warm-bucket") && !shown.contains("very-secret"));
        assert_eq!(s.key("a/b"), "a/b");
    }
}
