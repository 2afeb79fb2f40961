//! Tools over berth's containers (berth.v1.ContainerTools): `top`, `stats`, `port`,
//! `cp` (both directions), `diff`, `commit`, `export` and `import`. They work on the
//! records and runtime of [`berth_containers`](crate::berth_containers), the snapshots,
//! the content store and the image records; see docs/container-tools.md.
//!
//! Files in a container are reached through [`rootfs`]: `/proc/<pid>/root` of a running
//! container (frozen while its files are read or written, so nothing can swap a path
//! under a walk), or its snapshot mounted when it is stopped, with every path resolved
//! inside the root by `openat2(RESOLVE_IN_ROOT)`. Archives into a container go through
//! layer apply's safe extraction; archives out of it are written from file descriptors
//! without following symlinks ([`tarball`]). Commit and export use layer diff.

mod changes;
mod commit;
mod copy;
mod dockerfile;
mod export;
mod image_build;
mod import;
pub mod rootfs;
mod stats;
mod tarball;
mod top;

use std::sync::Arc;

pub use changes::{Change, ChangeKind, changes};
pub use commit::{CommitRequest, commit};
pub use copy::{CopyOut, PathStat, copy_from, copy_to, stat_path, top_name};
pub use export::export;
pub use image_build::Built;
pub use import::{ImportRequest, import};
pub use stats::{Sample, Stats, watch as stats};
pub use top::{Top, top};

use crate::core::Core;
use crate::error::Result;
use crate::network::PortMapping;

/// The published ports of the container `input`.
pub fn ports(core: &Arc<Core>, ns: &str, input: &str) -> Result<Vec<PortMapping>> {
    let rec = core.berth.store.resolve(ns, input)?;
    Ok(core.networks.ports(ns, &rec.id)?)
}
