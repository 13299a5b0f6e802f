//! Test support, compiled in with the `failpoints` cargo feature only: the
//! fault-injection seam and the format internals that crash, corruption and
//! golden-file tests write and parse by hand.
//!
//! Nothing here is part of the stable API; a host never needs it. The
//! engine's own hooks that take these types (`Log::simulate_crash`,
//! `LogConfig::fault_injector`, `Fabric::set_tier_fault_injector`,
//! `Fabric::preset_tier_fault_injector`, `Fabric::set_state_fault_injector`)
//! exist under the same feature.

pub use crate::storage::io::{Fault, FaultInjector, FaultPlan, IoOp};

/// The record-batch layout (docs/FORMAT.md, "Record batches").
pub mod batch {
    pub use crate::storage::batch::{BatchEncoder, BatchView, HEADER_LEN, parse_header};
}

/// Warm archive files (docs/FORMAT.md, "Archive segments").
pub mod archive {
    pub use crate::storage::archive::verify_bytes;
}

/// Snapshot files (docs/FORMAT.md, "Snapshots").
pub mod snapshot {
    pub use crate::ops::snapshot::decode;
}
