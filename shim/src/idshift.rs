//! Ownership of a snapshot for a user-namespaced container: [`shift_tree`] changes
//! every owner in a tree from container ids to the host ids the mapping gives them
//! (what `--userns-remap` needs on kernels or filesystems without idmapped mounts).
//!
//! Each inode is changed once (hard links are not shifted twice), symlinks themselves
//! (not their targets), nothing beyond the tree's filesystem. chown(2) clears set-id bits
//! and file capabilities: both are put back.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::spec_defaults::IdRange;

/// What can go wrong while shifting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// An owner the mapping does not cover.
    #[error("{path}: {kind} {id} is outside the user namespace mapping")]
    Unmapped {
        /// The file.
        path: PathBuf,
        /// `uid` or `gid`.
        kind: &'static str,
        /// The id.
        id: u32,
    },
}

fn map(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = id.checked_sub(r.container)?;
        (off < r.size).then(|| r.host + off)
    })
}

const CAPS_XATTR: &str = "security.capability";

/// Shifts the owners of everything under `root` (itself included) from container ids
/// to host ids. Returns how many inodes changed.
pub fn shift_tree(root: &Path, uids: &[IdRange], gids: &[IdRange]) -> Result<u64, Error> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    };
    let top = std::fs::symlink_metadata(root).map_err(io("stat", root))?;
    let dev = top.dev();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut todo = vec![root.to_path_buf()];
    let mut changed = 0;
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(io("stat", &path))?;
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&path).map_err(io("read directory", &path))? {
                todo.push(e.map_err(io("read directory", &path))?.path());
            }
        }
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
            continue;
        }
        let uid = map(uids, meta.uid()).ok_or_else(|| Error::Unmapped {
            path: path.clone(),
            kind: "uid",
            id: meta.uid(),
        })?;
        let gid = map(gids, meta.gid()).ok_or_else(|| Error::Unmapped {
            path: path.clone(),
            kind: "gid",
            id: meta.gid(),
        })?;
        if uid == meta.uid() && gid == meta.gid() {
            continue;
        }
        let link = meta.file_type().is_symlink();
        let caps = if link || !meta.is_file() {
            None
        } else {
            xattr::get(&path, CAPS_XATTR).ok().flatten()
        };
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(io("chown", &path))?;
        if !link && meta.mode() & 0o6000 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io("chmod", &path))?;
        }
        if let Some(c) = caps {
            xattr::set(&path, CAPS_XATTR, &c).map_err(io("restore file capabilities of", &path))?;
        }
        changed += 1;
    }
    Ok(changed)
}

/// True when the kernel can idmap a mount of `dir`'s filesystem (probed with a
/// throw-away user namespace and a detached copy of the mount; needs root).
pub fn idmap_supported(dir: &Path) -> bool {
    crate::sys::idmap::probe(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_each_inode_once_and_keeps_setid_bits() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("rootfs");
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::write(r.join("bin/tool"), "x").unwrap();
        std::fs::set_permissions(r.join("bin/tool"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::fs::hard_link(r.join("bin/tool"), r.join("bin/again")).unwrap();
        std::os::unix::fs::symlink("tool", r.join("bin/link")).unwrap();
        std::os::unix::fs::lchown(r.join("bin/link"), Some(5), Some(6)).unwrap();
        let ranges = [IdRange {
            container: 0,
            host: 100_000,
            size: 65_536,
        }];
        let n = shift_tree(&r, &ranges, &ranges).unwrap();
        assert_eq!(n, 4);
        let m = std::fs::symlink_metadata(r.join("bin/tool")).unwrap();
        assert_eq!((m.uid(), m.gid()), (100_000, 100_000));
        assert_eq!(m.mode() & 0o7777, 0o4755);
        let l = std::fs::symlink_metadata(r.join("bin/link")).unwrap();
        assert_eq!((l.uid(), l.gid()), (100_005, 100_006));
        // Already shifted: nothing left to change... but ids above the range fail.
        let err = shift_tree(&r, &ranges, &ranges).unwrap_err();
        assert!(matches!(err, Error::Unmapped { .. }), "{err}");
    }
}

#[cfg(test)]
mod probe_tests {
    /// Not a check: prints whether overlayfs mounts can be idmapped on this kernel
    /// (`cargo test -p berth-shim --lib overlay_idmap -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn overlay_idmap() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for s in ["l", "u", "w", "m"] {
            std::fs::create_dir_all(d.join(s)).unwrap();
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            d.join("l").display(),
            d.join("u").display(),
            d.join("w").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &d.join("m"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .unwrap();
        let ok = super::idmap_supported(&d.join("m"));
        let _ = nix::mount::umount2(&d.join("m"), nix::mount::MntFlags::MNT_DETACH);
        eprintln!(
            "overlayfs idmapped mounts supported: {ok}; ext4 /tmp: {}",
            super::idmap_supported(std::path::Path::new("/tmp"))
        );
    }
}
