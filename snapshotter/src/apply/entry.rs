//! Writing one tar entry into its (already resolved) parent directory: files, directories,
//! links, device nodes and fifos, then owner, xattrs, mode and times, in that order
//! (chown clears setuid bits, so the mode comes after it).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, makedev, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::root::fd_path;
use crate::error::{Error, Result};

/// What kind of file an entry creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
}

/// The metadata of an entry, with PAX overrides applied.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: TimeSpec,
    pub size: u64,
    pub link: Option<Vec<u8>>,
    pub device: (u64, u64),
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Buffer size for copying file data.
pub(crate) const COPY_BUFFER: usize = 1024 * 1024;

fn ctx(entry: &str, what: &str) -> String {
    format!("{what} for layer entry {entry:?}")
}

/// Creates the entry `name` in `parent` (which must not already hold it, unless both are
/// directories) and reads its data from `data`. Directory times are left to the caller.
pub(crate) async fn create<R: AsyncRead + Unpin>(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    meta: &EntryMeta,
    data: &mut R,
    buf: &mut [u8],
    entry: &str,
    link_target: Option<(BorrowedFd<'_>, &OsStr)>,
) -> Result<()> {
    let perm = Mode::from_bits_truncate(meta.mode & 0o7777);
    match meta.kind {
        EntryKind::File => {
            let fd = openat(
                parent,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| Error::errno(ctx(entry, "create file"), e))?;
            let mut file = File::from(fd);
            loop {
                let n = data
                    .read(buf)
                    .await
                    .map_err(|e| super::read_error(e, entry))?;
                if n == 0 {
                    break;
                }
                // Page-cache writes; the tree is synced once at the end with syncfs.
                file.write_all(&buf[..n])
                    .map_err(|e| Error::io(ctx(entry, "write file"), e))?;
            }
            fchown(
                file.as_fd(),
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| Error::errno(ctx(entry, "chown"), e))?;
            set_xattrs(XattrTarget::File(&file), meta, entry, true)?;
            fchmod(file.as_fd(), perm).map_err(|e| Error::errno(ctx(entry, "chmod"), e))?;
            futimens(file.as_fd(), &meta.mtime, &meta.mtime)
                .map_err(|e| Error::errno(ctx(entry, "set times"), e))?;
            return Ok(());
        }
        EntryKind::Dir => match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::errno(ctx(entry, "create directory"), e)),
        },
        EntryKind::Symlink => {
            let target = meta.link.as_deref().unwrap_or_default();
            symlinkat(OsStr::from_bytes(target), parent, name)
                .map_err(|e| Error::errno(ctx(entry, "create symlink"), e))?;
        }
        EntryKind::HardLink => {
            let (dir, target) = link_target
                .ok_or_else(|| Error::InvalidLayer(format!("hard link {entry:?} has no target")))?;
            linkat(dir, target, parent, name, AtFlags::empty()).map_err(|e| match e {
                Errno::ENOENT => Error::InvalidLayer(format!(
                    "hard link {entry:?}: target {target:?} does not exist in this layer"
                )),
                e => Error::errno(ctx(entry, "create hard link"), e),
            })?;
            // A hard link shares its target's inode and metadata; like GNU tar, its own
            // header fields are not applied.
            return Ok(());
        }
        EntryKind::Char | EntryKind::Block | EntryKind::Fifo => {
            let kind = match meta.kind {
                EntryKind::Char => SFlag::S_IFCHR,
                EntryKind::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let dev = makedev(meta.device.0, meta.device.1);
            mknodat(parent, name, kind, Mode::from_bits_truncate(0o600), dev)
                .map_err(|e| Error::errno(ctx(entry, "create device node"), e))?;
        }
    }
    fchownat(
        parent,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::errno(ctx(entry, "chown"), e))?;
    let regular_or_dir = meta.kind == EntryKind::Dir;
    set_xattrs(
        XattrTarget::Path(fd_path(parent, name)),
        meta,
        entry,
        regular_or_dir,
    )?;
    if meta.kind != EntryKind::Symlink {
        // Not a symlink (just created, or a hard link to a file): following is harmless.
        fchmodat(parent, name, perm, FchmodatFlags::FollowSymlink)
            .map_err(|e| Error::errno(ctx(entry, "chmod"), e))?;
    }
    if meta.kind != EntryKind::Dir {
        set_times(parent, name, meta.mtime, entry)?;
    }
    Ok(())
}

/// Sets the times of `name` in `parent` without following a symlink.
pub(crate) fn set_times(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    mtime: TimeSpec,
    entry: &str,
) -> Result<()> {
    match utimensat(
        parent,
        name,
        &mtime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    ) {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::errno(ctx(entry, "set times"), e)),
    }
}

/// Where xattrs go: an open file, or a path whose final component is not followed.
enum XattrTarget<'a> {
    File(&'a File),
    Path(PathBuf),
}

/// Sets the entry's xattrs. Unsupported attributes, and `user.*` ones on special files
/// (which the kernel refuses), are skipped with a warning.
fn set_xattrs(
    target: XattrTarget<'_>,
    meta: &EntryMeta,
    entry: &str,
    regular_or_dir: bool,
) -> Result<()> {
    use xattr::FileExt;
    for (name, value) in &meta.xattrs {
        let result = match &target {
            XattrTarget::File(f) => f.set_xattr(name, value),
            XattrTarget::Path(p) => xattr::set(p, name, value),
        };
        if let Err(e) = result {
            let errno = e.raw_os_error();
            let user_on_special = errno == Some(libc::EPERM)
                && name.as_encoded_bytes().starts_with(b"user.")
                && !regular_or_dir;
            if errno == Some(libc::ENOTSUP) || user_on_special {
                tracing::warn!(entry, xattr = ?name, error = %e, "xattr skipped");
                continue;
            }
            return Err(Error::io(ctx(entry, &format!("set xattr {name:?}")), e));
        }
    }
    Ok(())
}
