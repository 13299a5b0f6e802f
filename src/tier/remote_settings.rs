//! Where a data directory's remote warm tier lives, remembered in the data
//! directory (`<data>/remote-warm.json`, see `docs/FORMAT.md` "Remote warm
//! tier"), so a fabric opened on a directory holding `.remote` markers finds
//! its bucket without being told again (the CLI without `--s3-*` flags, an
//! embedding program that forgot the config).
//!
//! Owns that file: its fields (bucket, prefix, endpoint, region — nothing
//! else), writing it atomically when a writer opens with a remote warm tier,
//! and reading it back when a fabric opens without one. It must never write a
//! credential, never overwrite the file from a read-only fabric, and never
//! invent a configuration: no file and no config means no remote tier.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tier::objstore::ObjectStoreConfig;
use crate::tier::remote::RemoteWarmConfig;

/// Name of the file in the data directory recording the remote warm tier's
/// (non-secret) location.
pub const REMOTE_SETTINGS_FILE: &str = "remote-warm.json";
/// The version of that file this code writes and reads.
const REMOTE_SETTINGS_VERSION: u32 = 1;

/// The file's fields, exactly (`docs/FORMAT.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRemote {
    version: u32,
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    region: Option<String>,
}

impl StoredRemote {
    fn of(store: &ObjectStoreConfig) -> StoredRemote {
        StoredRemote {
            version: REMOTE_SETTINGS_VERSION,
            bucket: store.bucket.clone(),
            prefix: store.prefix.clone(),
            endpoint: store.endpoint.clone(),
            region: store.region.clone(),
        }
    }
}

/// The path of the settings file of the data directory `root`.
pub(crate) fn settings_path(root: &Path) -> PathBuf {
    root.join(REMOTE_SETTINGS_FILE)
}

/// The remote warm tier a fabric on `root` uses: `given` when set (a writer
/// records it in the data directory first, unless the file already says
/// the same), else the one the data directory recorded (credentials from
/// the environment), else none.
pub(crate) fn resolve(
    root: &Path,
    given: Option<&RemoteWarmConfig>,
    read_only: bool,
) -> Result<Option<RemoteWarmConfig>> {
    let path = settings_path(root);
    let stored = read(&path)?;
    if let Some(config) = given {
        let wanted = StoredRemote::of(&config.store);
        if !read_only && stored.as_ref() != Some(&wanted) {
            write(root, &path, &wanted)?;
        }
        return Ok(Some(config.clone()));
    }
    let Some(s) = stored else { return Ok(None) };
    let mut store = ObjectStoreConfig::new(s.bucket);
    store.prefix = s.prefix;
    store.endpoint = s.endpoint;
    store.region = s.region;
    store.validate().map_err(|e| {
        Error::corrupted(
            &path,
            0,
            format!("{e}; fix the file or open the fabric with FabricConfig::remote_warm"),
        )
    })?;
    Ok(Some(RemoteWarmConfig::new(store)))
}

/// Says, on a failure to connect with a configuration read from the data
/// directory (missing credentials above all), where that configuration came from.
pub(crate) fn explain_stored(root: &Path, e: Error) -> Error {
    match e {
        Error::ObjectStore {
            op,
            location,
            reason,
        } => Error::ObjectStore {
            op,
            location,
            reason: format!(
                "{reason} (the data directory's warm tier is in an object store, recorded in {}; its remote archives cannot be read without them)",
                settings_path(root).display()
            ),
        },
        other => other,
    }
}

fn read(path: &Path) -> Result<Option<StoredRemote>> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let stored: StoredRemote = serde_json::from_slice(&text).map_err(|e| {
        // serde_json's column counts bytes of the line: good enough to find it.
        Error::corrupted(
            path,
            e.column() as u64,
            format!(
                "not a remote warm tier settings file: {e} (line {})",
                e.line()
            ),
        )
    })?;
    if stored.version != REMOTE_SETTINGS_VERSION {
        return Err(Error::corrupted(
            path,
            0,
            format!(
                "version {} (this build reads {REMOTE_SETTINGS_VERSION})",
                stored.version
            ),
        ));
    }
    Ok(Some(stored))
}

/// Written as `<file>.tmp`, fsynced, renamed, directory fsynced.
fn write(root: &Path, path: &Path, stored: &StoredRemote) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(stored).map_err(|e| {
        Error::invalid(
            "remote warm tier settings",
            format!("cannot serialise: {e}"),
        )
    })?;
    text.push(b'\n');
    let tmp = root.join(format!("{REMOTE_SETTINGS_FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(&text)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    crate::topic::sync_dir(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_records_the_location_and_a_bare_open_finds_it_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(dir.path(), None, false).unwrap(), None);
        let mut store = ObjectStoreConfig::new("warm-bucket");
        store.prefix = "fab/prod".into();
        store.endpoint = Some("http://127.0.0.1:9000".into());
        let mut rc = RemoteWarmConfig::new(store.clone());
        rc.credentials = Some(crate::tier::objstore::S3Credentials::new(
            "AKID",
            "the-secret",
            None,
        ));
        // A read-only view never writes the file.
        resolve(dir.path(), Some(&rc), true).unwrap();
        assert!(!settings_path(dir.path()).exists());
        resolve(dir.path(), Some(&rc), false).unwrap();
        let text = fs::read_to_string(settings_path(dir.path())).unwrap();
        assert!(
            !text.contains("the-secret") && !text.contains("AKID"),
            "{text}"
        );
        let found = resolve(dir.path(), None, true).unwrap().unwrap();
        assert_eq!(found.store, store);
        assert_eq!(found.credentials, None);
        // Damage is an error naming the file.
        fs::write(settings_path(dir.path()), b"{\"version\":1,\"bucket\":7}").unwrap();
        let err = resolve(dir.path(), None, true).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupted { path, .. } if path.ends_with(REMOTE_SETTINGS_FILE)),
            "{err}"
        );
    }
}
