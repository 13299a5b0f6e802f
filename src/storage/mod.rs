//! Layer 1, storage: bytes on disk and nothing above them.
//!
//! Owns every file format below the envelope: record batches, segments and
//! their sparse indexes, checkpoints, the partition [`log`], warm archive
//! segments and the reads that span hot segments and archives ([`warm`]),
//! state logs for consumer bookkeeping, the data-directory lock, and the
//! one module with `unsafe` code ([`mmap`]). All file I/O goes through
//! [`io`] so tests can inject faults.
//!
//! It must never interpret a record's bytes (no envelopes, no topics, no
//! consumer semantics) and never import a module from a layer above it.

pub(crate) mod archive;
pub(crate) mod batch;
pub(crate) mod checkpoint;
pub(crate) mod index;
pub(crate) mod io;
pub(crate) mod le;
pub(crate) mod lock;
pub(crate) mod log;
pub(crate) mod mmap;
pub(crate) mod notify;
pub(crate) mod segment;
pub(crate) mod statelog;
pub(crate) mod verify;
pub(crate) mod warm;
