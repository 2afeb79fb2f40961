//! OCI whiteouts: `.wh.<name>` deletes `<name>` of the layers below, `.wh..wh..opq` hides
//! everything below in its directory. Written as overlay whiteouts (0:0 character device,
//! opaque xattr) into an upper directory, or carried out directly on a full tree.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{Gid, Uid, fchownat};

use super::Unpacker;
use super::entry::EntryMeta;
use super::path::join;
use crate::error::{Error, Result};
use crate::fsutil::{child_names, remove_at};

/// Prefix of whiteout names.
pub(crate) const PREFIX: &[u8] = b".wh.";
/// The opaque-directory marker.
pub(crate) const OPAQUE: &[u8] = b".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

impl Unpacker {
    /// `.wh.<target>` in the directory `parent`.
    pub(super) fn whiteout(
        &mut self,
        parent: &[std::ffi::OsString],
        target: &OsStr,
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<()> {
        let ctx = |what: &str| format!("{what} for whiteout {shown:?}");
        if self.overlay {
            let pfd = self
                .root
                .dir(parent, true, shown)?
                .ok_or_else(|| Error::InvalidLayer(format!("parent of {shown:?} missing")))?;
            remove_at(pfd.as_fd(), target).map_err(|e| Error::errno(ctx("remove"), e))?;
            self.root.forget();
            mknodat(
                pfd.as_fd(),
                target,
                SFlag::S_IFCHR,
                Mode::empty(),
                makedev(0, 0),
            )
            .map_err(|e| Error::errno(ctx("create whiteout device"), e))?;
            fchownat(
                pfd.as_fd(),
                target,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::errno(ctx("chown"), e))?;
        } else if let Some(pfd) = self.root.dir(parent, false, shown)? {
            remove_at(pfd.as_fd(), target).map_err(|e| Error::errno(ctx("remove"), e))?;
            self.root.forget();
        }
        Ok(())
    }

    /// `.wh..wh..opq` in the directory `dir`.
    pub(super) fn opaque(&mut self, dir: &[std::ffi::OsString], shown: &str) -> Result<()> {
        let ctx = |what: &str| format!("{what} for opaque marker {shown:?}");
        let fd = self
            .root
            .dir(dir, true, shown)?
            .ok_or_else(|| Error::InvalidLayer(format!("directory of {shown:?} missing")))?;
        if self.overlay {
            use xattr::FileExt;
            let dup = fd
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io(ctx("duplicate directory fd"), e))?;
            File::from(dup)
                .set_xattr(OPAQUE_XATTR, b"y")
                .map_err(|e| Error::io(ctx("set opaque xattr"), e))?;
            return Ok(());
        }
        // A new open file description: the cached one's read position is not disturbed.
        let listing = nix::dir::Dir::openat(
            fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::errno(ctx("list directory"), e))?;
        let children = child_names(listing).map_err(|e| Error::errno(ctx("list directory"), e))?;
        let mut removed = false;
        for child in children {
            let mut path = dir.to_vec();
            path.push(child.clone());
            if !self.unpacked.contains(&join(&path)) {
                remove_at(fd.as_fd(), &child).map_err(|e| Error::errno(ctx("remove"), e))?;
                removed = true;
            }
        }
        if removed {
            self.root.forget();
        }
        Ok(())
    }
}
