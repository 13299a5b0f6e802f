//! Layer 5, whole-data-directory operations built on the facade.
//!
//! Owns verification and repair of a whole data directory (every partition,
//! archive, state log and stray file) and snapshot export/import. These
//! are tools a host or the `fabric` binary runs on a directory; the engine
//! never calls them on its own paths.
//!
//! It must never be imported by a layer below it.

pub(crate) mod snapshot;
pub(crate) mod verify;
