//! Snapshot decoding: the streaming, validating reader of the snapshot
//! format (header, blocks, records, footer, trailer).
//!
//! Owns every check a snapshot file must pass; it must never append or
//! write anything, and every failure names the file and the byte.

use super::*;
use crate::storage::le;

/// A streaming, validating snapshot decoder over any byte source.
pub(super) struct Decoder<R> {
    pub(super) input: R,
    pub(super) path: PathBuf,
    pub(super) position: u64,
    pub(super) info: SnapshotInfo,
    pub(super) blocks: u64,
    pub(super) records: u64,
    /// Last offset seen per partition (offsets must increase).
    pub(super) last_offset: BTreeMap<u32, u64>,
    pub(super) finished: bool,
}

impl<R: Read> Decoder<R> {
    /// The little-endian `u32` at byte `at` of `bytes`, which were read from
    /// byte `base` of the file: a short field is corruption, never a zero.
    fn u32_field(&self, bytes: &[u8], at: usize, base: u64, field: &str) -> Result<u32> {
        le::u32_at(bytes, at)
            .ok_or_else(|| self.corrupt(base + at as u64, format!("{field} is cut short")))
    }

    /// The little-endian `u64` at byte `at` of `bytes` (see [`Self::u32_field`]).
    fn u64_field(&self, bytes: &[u8], at: usize, base: u64, field: &str) -> Result<u64> {
        le::u64_at(bytes, at)
            .ok_or_else(|| self.corrupt(base + at as u64, format!("{field} is cut short")))
    }

    pub(super) fn corrupt(&self, at: u64, reason: impl Into<String>) -> Error {
        Error::corrupted(
            &self.path,
            at,
            format!(
                "{}; the snapshot is damaged or truncated, nothing was imported",
                reason.into()
            ),
        )
    }

    pub(super) fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let at = self.position;
        let mut done = 0;
        while let Some(rest) = buf.get_mut(done..).filter(|rest| !rest.is_empty()) {
            match self.input.read(rest) {
                Ok(0) => {
                    return Err(self.corrupt(
                        at + done as u64,
                        format!(
                            "file ends inside the {what} ({} of {} bytes present)",
                            done,
                            buf.len()
                        ),
                    ));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", &self.path, e)),
            }
        }
        self.position += buf.len() as u64;
        Ok(())
    }

    pub(super) fn read_vec(&mut self, len: usize, what: &str) -> Result<Vec<u8>> {
        if len > MAX_BLOCK_BYTES {
            return Err(self.corrupt(
                self.position,
                format!("{what} claims {len} bytes, more than the {MAX_BLOCK_BYTES} allowed"),
            ));
        }
        let mut v = vec![0u8; len];
        self.read_exact(&mut v, what)?;
        Ok(v)
    }

    pub(super) fn open(input: R, path: &Path) -> Result<Decoder<R>> {
        let mut head = [0u8; HEADER_LEN];
        let mut d = Decoder {
            input,
            path: path.to_path_buf(),
            position: 0,
            info: SnapshotInfo {
                topic: String::new(),
                config: TopicConfig::default(),
                partitions: Vec::new(),
                from: Bound::Unbounded,
                to: Bound::Unbounded,
                exported_at: 0,
                schema_versions: Vec::new(),
                contents: Vec::new(),
                records: 0,
            },
            blocks: 0,
            records: 0,
            last_offset: BTreeMap::new(),
            finished: false,
        };
        d.read_exact(&mut head, "file header")?;
        if head[0..8] != SNAPSHOT_MAGIC {
            return Err(d.corrupt(0, "not an eventfabric snapshot (bad magic)"));
        }
        let version = d.u32_field(&head, 8, 0, "snapshot version")?;
        let stored = d.u32_field(&head, 28, 0, "file header checksum")?;
        if crc(&[&head[..28]]) != stored {
            return Err(d.corrupt(28, "file header checksum mismatch"));
        }
        if version != SNAPSHOT_VERSION {
            return Err(d.corrupt(
                8,
                format!(
                    "unsupported snapshot version {version}, this build reads version {SNAPSHOT_VERSION}"
                ),
            ));
        }
        if head[12..16] != [0; 4] || head[24..28] != [0; 4] {
            return Err(d.corrupt(
                12,
                "unknown flags or non-zero reserved bytes in the file header",
            ));
        }
        let meta_len = d.u32_field(&head, 16, 0, "header metadata length")? as usize;
        let meta_crc = d.u32_field(&head, 20, 0, "header metadata checksum")?;
        let meta = d.read_vec(meta_len, "header metadata")?;
        if crc(&[&meta]) != meta_crc {
            return Err(d.corrupt(HEADER_LEN as u64, "header metadata checksum mismatch"));
        }
        let header: HeaderMeta = serde_json::from_slice(&meta).map_err(|e| {
            d.corrupt(
                HEADER_LEN as u64,
                format!("malformed header metadata ({e})"),
            )
        })?;
        header
            .config
            .validate()
            .map_err(|e| d.corrupt(HEADER_LEN as u64, format!("invalid topic settings ({e})")))?;
        if header
            .partitions
            .iter()
            .any(|&p| p >= header.config.partitions)
            || header.partitions.array_windows().any(|[a, b]| a >= b)
        {
            return Err(d.corrupt(
                HEADER_LEN as u64,
                "partition list is not ascending within the topic's partition count",
            ));
        }
        d.info.topic = header.topic;
        d.info.config = header.config;
        d.info.partitions = header.partitions;
        d.info.from = header.from;
        d.info.to = header.to;
        d.info.exported_at = header.exported_at;
        Ok(d)
    }

    /// The next block's records, or `None` after a valid footer and trailer
    /// that end the file.
    pub(super) fn next_block(&mut self) -> Result<Option<Vec<SnapshotRecord>>> {
        if self.finished {
            return Ok(None);
        }
        let at = self.position;
        let mut magic = [0u8; 4];
        self.read_exact(&mut magic, "block or footer header")?;
        match u32::from_le_bytes(magic) {
            BLOCK_MAGIC => self.block(at, magic).map(Some),
            FOOTER_MAGIC => {
                self.footer(at, magic)?;
                self.finished = true;
                Ok(None)
            }
            _ => Err(self.corrupt(at, "neither a block nor the footer starts here (bad magic)")),
        }
    }

    pub(super) fn block(&mut self, at: u64, magic: [u8; 4]) -> Result<Vec<SnapshotRecord>> {
        let mut rest = [0u8; BLOCK_HEADER_LEN - 4];
        self.read_exact(&mut rest, "block header")?;
        let field = |i: usize, name: &str| self.u32_field(&rest, i, at + 4, name);
        let (partition, count, len, stored) = (
            field(0, "block partition")?,
            field(4, "block record count")?,
            field(8, "block length")?,
            field(12, "block checksum")?,
        );
        let payload = self.read_vec(len as usize, "block")?;
        if crc(&[&magic, &rest[..12], &payload]) != stored {
            return Err(self.corrupt(at, "block checksum mismatch"));
        }
        if !self.info.partitions.contains(&partition) {
            return Err(self.corrupt(
                at + 4,
                format!("block of partition {partition}, which the header does not list"),
            ));
        }
        let mut records =
            Vec::with_capacity((count as usize).min(payload.len() / RECORD_HEADER_LEN + 1));
        let mut pos = 0usize;
        let body = at + BLOCK_HEADER_LEN as u64;
        for _ in 0..count {
            let Some(head) = payload.get(pos..pos + RECORD_HEADER_LEN) else {
                return Err(self.corrupt(body + pos as u64, "record header runs past its block"));
            };
            let record_at = body + pos as u64;
            let offset = self.u64_field(head, 0, record_at, "record offset")?;
            let timestamp = self
                .u64_field(head, 8, record_at, "record timestamp")?
                .cast_signed();
            let vlen = self.u32_field(head, 16, record_at, "record value length")? as usize;
            let start = pos + RECORD_HEADER_LEN;
            let Some(value) = payload.get(start..start.saturating_add(vlen)) else {
                return Err(self.corrupt(body + pos as u64, "record value runs past its block"));
            };
            if self
                .last_offset
                .get(&partition)
                .is_some_and(|&last| offset <= last)
            {
                return Err(self.corrupt(
                    body + pos as u64,
                    format!("offset {offset} of partition {partition} does not increase"),
                ));
            }
            if let Err(e) = crate::envelope::EnvelopeRef::decode(value) {
                return Err(self.corrupt(
                    body + start as u64,
                    format!("record at offset {offset} of partition {partition} is not a valid envelope ({e})"),
                ));
            }
            self.last_offset.insert(partition, offset);
            records.push(SnapshotRecord {
                partition,
                offset,
                timestamp,
                value: value.to_vec(),
            });
            pos = start + vlen;
        }
        if pos != payload.len() {
            return Err(self.corrupt(
                body + pos as u64,
                format!(
                    "{} bytes after the block's {count} records",
                    payload.len() - pos
                ),
            ));
        }
        self.blocks += 1;
        self.records += u64::from(count);
        Ok(records)
    }

    pub(super) fn footer(&mut self, at: u64, magic: [u8; 4]) -> Result<()> {
        let mut fixed = [0u8; FOOTER_FIXED_LEN - 4];
        fixed[0..4].copy_from_slice(&magic);
        self.read_exact(&mut fixed[4..], "footer")?;
        let mut len = [0u8; 4];
        self.read_exact(&mut len, "footer")?;
        let meta = self.read_vec(u32::from_le_bytes(len) as usize, "footer metadata")?;
        let mut stored = [0u8; 4];
        self.read_exact(&mut stored, "footer checksum")?;
        if crc(&[&fixed, &len, &meta]) != u32::from_le_bytes(stored) {
            return Err(self.corrupt(at, "footer checksum mismatch"));
        }
        let blocks = self.u64_field(&fixed, 4, at, "footer block count")?;
        let records = self.u64_field(&fixed, 12, at, "footer record count")?;
        if blocks != self.blocks || records != self.records {
            return Err(self.corrupt(
                at,
                format!(
                    "footer counts {blocks} blocks and {records} records, the file holds {} and {}",
                    self.blocks, self.records
                ),
            ));
        }
        let footer: FooterMeta = serde_json::from_slice(&meta)
            .map_err(|e| self.corrupt(at, format!("malformed footer metadata ({e})")))?;
        let mut trailer = [0u8; TRAILER_LEN];
        let trailer_at = self.position;
        self.read_exact(&mut trailer, "trailer")?;
        if trailer[8..16] != SNAPSHOT_END_MAGIC
            || self.u64_field(&trailer, 0, trailer_at, "trailer footer position")? != at
        {
            return Err(self.corrupt(trailer_at, "trailer does not point at the footer"));
        }
        let mut extra = [0u8; 1];
        if self
            .input
            .read(&mut extra)
            .map_err(|e| Error::io("read", &self.path, e))?
            != 0
        {
            return Err(self.corrupt(self.position, "bytes after the trailer"));
        }
        let counted: u64 = footer.partitions.iter().map(|p| p.records).sum();
        if counted != records {
            return Err(self.corrupt(at, "footer partition counts do not add up"));
        }
        self.info.schema_versions = footer.schema_versions;
        self.info.contents = footer.partitions;
        self.info.records = records;
        Ok(())
    }
}

/// Validates a whole snapshot held in memory — header, every block and
/// record, footer, trailer — and returns its description and records.
/// Meant for tests and fuzzing; files go through [`inspect`] and [`import`].
#[doc(hidden)]
#[cfg(any(test, feature = "failpoints"))]
pub fn decode(bytes: &[u8]) -> Result<(SnapshotInfo, Vec<SnapshotRecord>)> {
    let mut d = Decoder::open(bytes, Path::new("<memory>"))?;
    let mut all = Vec::new();
    while let Some(block) = d.next_block()? {
        all.extend(block);
    }
    Ok((d.info, all))
}

pub(super) fn open_file(path: &Path) -> Result<Decoder<BufReader<File>>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    Decoder::open(BufReader::with_capacity(1 << 20, file), path)
}
