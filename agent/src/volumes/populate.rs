//! Filling an empty volume from the image's content at the path where it is mounted,
//! as docker does on a volume's first use.

use std::path::Path;

use super::Volumes;
use crate::error::{Error, Result};

impl Volumes {
    /// Copies the directory `source` (the image's content at the mount path, already
    /// resolved inside the container's root) into volume `name` when the volume is empty.
    /// Ownership, modes, symlinks and special files are kept; symlinks are not followed.
    /// True when something was copied.
    pub fn populate(&self, name: &str, source: &Path) -> Result<bool> {
        let vol = self.get(name)?;
        let meta = match std::fs::symlink_metadata(source) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("stat {}", source.display()), e)),
        };
        if !meta.is_dir() {
            return Ok(false);
        }
        let empty = std::fs::read_dir(&vol.mountpoint)
            .map_err(|e| Error::io(format!("read {}", vol.mountpoint.display()), e))?
            .next()
            .is_none();
        if !empty {
            return Ok(false);
        }
        berth_snapshotter::fsutil::copy_tree(source, &vol.mountpoint)?;
        Ok(true)
    }
}
