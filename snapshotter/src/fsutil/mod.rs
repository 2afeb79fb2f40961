//! File-system helpers shared by the snapshotters, apply and diff: disk usage, full tree
//! copies, safe removal relative to a directory fd, syncing a file system.

mod copy;
mod remove;
mod usage;

pub use copy::copy_tree;
pub(crate) use remove::{child_names, remove_at};
pub use usage::disk_usage;

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// Flushes the whole file system holding `path` to disk (`syncfs(2)`), once, instead of
/// one `fsync` per file.
pub fn sync_filesystem(path: &Path) -> Result<()> {
    let dir = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    nix::unistd::syncfs(&dir).map_err(|e| Error::errno(format!("syncfs {}", path.display()), e))
}

/// Flushes one directory's entries (after a rename into it).
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let dir = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    dir.sync_all()
        .map_err(|e| Error::io(format!("fsync {}", path.display()), e))
}

/// True for xattrs that belong to overlayfs itself and must never be copied or archived.
pub(crate) fn is_overlay_private_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}
