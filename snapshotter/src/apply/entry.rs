//! Writing one tar entry into its (already resolved) parent directory: files, directories,
//! links, device nodes and fifos, then owner, xattrs, mode and times, in that order
//! (chown clears setuid bits, so the mode comes after it). An existing entry of the same
//! name is detected by the creating call failing with `EEXIST`, not by a check beforehand.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::dirs::{Creds, DirHandle};
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

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The entry was created.
    Created,
    /// A directory entry met an existing directory, whose owner, xattrs and mode it set.
    UpdatedDir,
    /// Something else already has the name; nothing was done (no data was read). The
    /// caller removes it and calls again.
    Exists,
}

/// Creates the entry `name` in `parent` and reads its data from `data`; an existing entry
/// of that name is reported as [`Outcome::Exists`] (unless both are directories), found by
/// the creating call itself failing with `EEXIST`. Owner and mode calls that would only set
/// what creation already gave are left out. Directory times are left to the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create<R: AsyncRead + Unpin>(
    parent: &DirHandle,
    creds: &Creds,
    name: &OsStr,
    meta: &EntryMeta,
    data: &mut R,
    buf: &mut [u8],
    entry: &str,
    link_target: Option<(BorrowedFd<'_>, &OsStr)>,
) -> Result<Outcome> {
    let perm = Mode::from_bits_truncate(meta.mode & 0o7777);
    let chown = creds.needs_chown(parent, meta);
    let chmod = creds.needs_chmod(parent, meta);
    // Without a chmod to come the entry is created with its final permission bits;
    // otherwise owner-only until its metadata is complete.
    let initial = |private: u32| {
        if chmod {
            Mode::from_bits_truncate(private)
        } else {
            Creds::create_mode(meta)
        }
    };
    let pfd = parent.as_fd();
    let mut outcome = Outcome::Created;
    match meta.kind {
        EntryKind::File => {
            let fd = match openat(
                pfd,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                initial(0o600),
            ) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => return Ok(Outcome::Exists),
                Err(e) => return Err(Error::errno(ctx(entry, "create file"), e)),
            };
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
            if chown {
                let (uid, gid) = Creds::owner(meta);
                fchown(file.as_fd(), uid, gid).map_err(|e| Error::errno(ctx(entry, "chown"), e))?;
            }
            set_xattrs(XattrTarget::File(&file), meta, entry, true)?;
            if chmod {
                fchmod(file.as_fd(), perm).map_err(|e| Error::errno(ctx(entry, "chmod"), e))?;
            }
            futimens(file.as_fd(), &meta.mtime, &meta.mtime)
                .map_err(|e| Error::errno(ctx(entry, "set times"), e))?;
            return Ok(Outcome::Created);
        }
        EntryKind::Dir => match mkdirat(pfd, name, initial(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => match fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR =>
                {
                    outcome = Outcome::UpdatedDir;
                }
                Ok(_) => return Ok(Outcome::Exists),
                Err(e) => return Err(Error::errno(ctx(entry, "stat existing entry"), e)),
            },
            Err(e) => return Err(Error::errno(ctx(entry, "create directory"), e)),
        },
        EntryKind::Symlink => {
            let target = meta.link.as_deref().unwrap_or_default();
            match symlinkat(OsStr::from_bytes(target), pfd, name) {
                Ok(()) => {}
                Err(Errno::EEXIST) => return Ok(Outcome::Exists),
                Err(e) => return Err(Error::errno(ctx(entry, "create symlink"), e)),
            }
        }
        EntryKind::HardLink => {
            let (dir, target) = link_target
                .ok_or_else(|| Error::InvalidLayer(format!("hard link {entry:?} has no target")))?;
            match linkat(dir, target, pfd, name, AtFlags::empty()) {
                Ok(()) => {}
                Err(Errno::EEXIST) => return Ok(Outcome::Exists),
                Err(Errno::ENOENT) => {
                    return Err(Error::InvalidLayer(format!(
                        "hard link {entry:?}: target {target:?} does not exist in this layer"
                    )));
                }
                Err(e) => return Err(Error::errno(ctx(entry, "create hard link"), e)),
            }
            // A hard link shares its target's inode and metadata; like GNU tar, its own
            // header fields are not applied.
            return Ok(Outcome::Created);
        }
        EntryKind::Char | EntryKind::Block | EntryKind::Fifo => {
            let kind = match meta.kind {
                EntryKind::Char => SFlag::S_IFCHR,
                EntryKind::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let dev = makedev(meta.device.0, meta.device.1);
            match mknodat(pfd, name, kind, initial(0o600), dev) {
                Ok(()) => {}
                Err(Errno::EEXIST) => return Ok(Outcome::Exists),
                Err(e) => return Err(Error::errno(ctx(entry, "create device node"), e)),
            }
        }
    }
    // An existing directory gets every field set.
    let existing = outcome == Outcome::UpdatedDir;
    if chown || existing {
        let (uid, gid) = Creds::owner(meta);
        fchownat(pfd, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| Error::errno(ctx(entry, "chown"), e))?;
    }
    let regular_or_dir = meta.kind == EntryKind::Dir;
    set_xattrs(
        XattrTarget::Path(fd_path(pfd, name)),
        meta,
        entry,
        regular_or_dir,
    )?;
    if meta.kind != EntryKind::Symlink && (chmod || existing) {
        // Not a symlink (just created, or a hard link to a file): following is harmless.
        fchmodat(pfd, name, perm, FchmodatFlags::FollowSymlink)
            .map_err(|e| Error::errno(ctx(entry, "chmod"), e))?;
    }
    if meta.kind != EntryKind::Dir {
        set_times(pfd, name, meta.mtime, entry)?;
    }
    Ok(outcome)
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
