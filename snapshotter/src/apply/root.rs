//! The directory a layer is applied to, opened once; every path below it is resolved from
//! that fd with `openat2(RESOLVE_BENEATH)`, so no symlink (in the layer or already on disk)
//! can lead a write outside it. Missing parent directories are created, taking their
//! metadata from the lower layers in overlay mode as containerd does. Resolved directories
//! are kept in a [`DirCache`] until the apply removes or changes anything that could make
//! them stale ([`Root::forget`]).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FchmodatFlags, Mode, UtimensatFlags, fchmodat, mkdirat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};

use super::dirs::{Creds, DirCache, DirHandle};
use super::path::join;
use crate::error::{Error, Result};
use crate::fsutil::is_overlay_private_xattr;

/// Set when the kernel lacks openat2; resolution then refuses every symlink in a path.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// The apply target.
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
    /// Lower layers (newest first) consulted for the metadata of created parents.
    lowers: Vec<PathBuf>,
    /// Directories already resolved, by relative path.
    cache: DirCache,
    /// What entries are created with.
    creds: Creds,
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// `/proc/self/fd/<fd>/<name>`: a path naming `name` inside an open directory, for the
/// calls that only take paths (xattrs). The final component is never followed by them.
pub(crate) fn fd_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if !name.is_empty() {
        p.push(name);
    }
    p
}

impl Root {
    /// Opens the target directory.
    pub fn open(path: &Path, lowers: Vec<PathBuf>) -> Result<Root> {
        let fd = nix::fcntl::open(path, dir_flags(), Mode::empty())
            .map_err(|e| Error::errno(format!("open apply target {}", path.display()), e))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            lowers,
            cache: DirCache::default(),
            creds: Creds::current(),
        })
    }

    /// The credentials and umask entries are created with.
    pub fn creds(&self) -> &Creds {
        &self.creds
    }

    /// Forgets every resolved directory: call after anything below the root was removed
    /// or an existing directory's owner, mode or xattrs changed.
    pub fn forget(&mut self) {
        self.cache.clear();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_beneath(&self, components: &[OsString]) -> std::result::Result<OwnedFd, Errno> {
        if components.is_empty() {
            return self
                .fd
                .try_clone()
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
        }
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let how = OpenHow::new()
                .flags(dir_flags())
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            match openat2(self.fd.as_fd(), join(components).as_os_str(), how) {
                Err(Errno::ENOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                r => return r,
            }
        }
        // Without openat2: one component at a time, refusing symlinks altogether.
        let mut cur = self.open_beneath(&[])?;
        for c in components {
            cur = openat(
                cur.as_fd(),
                c.as_os_str(),
                dir_flags() | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|e| if e == Errno::ELOOP { Errno::EXDEV } else { e })?;
        }
        Ok(cur)
    }

    /// Opens the directory at `components` below the root. Symlinks are followed only while
    /// they stay below the root. Missing directories are created when `create` is set;
    /// otherwise a missing directory is `Ok(None)`. Answers from the cache when it can.
    pub fn dir(
        &mut self,
        components: &[OsString],
        create: bool,
        entry: &str,
    ) -> Result<Option<DirHandle>> {
        let key = join(components);
        if let Some(dir) = self.cache.get(&key) {
            return Ok(Some(dir));
        }
        let Some(fd) = self.resolve(components, create, entry)? else {
            return Ok(None);
        };
        let dir = DirHandle::new(fd, &self.creds);
        self.cache.insert(key, dir.clone());
        Ok(Some(dir))
    }

    /// [`Root::dir`] without the cache.
    fn resolve(
        &self,
        components: &[OsString],
        create: bool,
        entry: &str,
    ) -> Result<Option<OwnedFd>> {
        match self.open_beneath(components) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(resolve_error(entry, e)),
        }
        if !create {
            return Ok(None);
        }
        let mut cur = self
            .open_beneath(&[])
            .map_err(|e| resolve_error(entry, e))?;
        for i in 0..components.len() {
            match self.open_beneath(&components[..=i]) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(resolve_error(entry, e)),
            }
            let name = components[i].as_os_str();
            match mkdirat(cur.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                Ok(()) => self.init_parent(cur.as_fd(), name, &components[..=i])?,
                // Something is there but does not resolve: a dangling symlink.
                Err(Errno::EEXIST) => {
                    return Err(Error::UnsafeEntry {
                        path: entry.to_string(),
                        reason: format!(
                            "parent {:?} is a symlink that leads nowhere",
                            join(&components[..=i])
                        ),
                    });
                }
                Err(e) => {
                    return Err(Error::errno(
                        format!(
                            "create directory {:?} in {}",
                            join(&components[..=i]),
                            self.path.display()
                        ),
                        e,
                    ));
                }
            }
            cur = openat(
                cur.as_fd(),
                name,
                dir_flags() | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|e| Error::errno(format!("open new directory {name:?}"), e))?;
        }
        Ok(Some(cur))
    }

    /// Gives a directory created as a missing parent the metadata of the same directory in
    /// the newest lower layer that has it (containerd's behaviour); 0755 root otherwise.
    fn init_parent(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        components: &[OsString],
    ) -> Result<()> {
        let ctx = |what: &str| format!("{what} of created parent {:?}", join(components));
        fchmodat(
            parent,
            name,
            Mode::from_bits_truncate(0o755),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| Error::errno(ctx("chmod"), e))?;
        for lower in &self.lowers {
            let Some(meta) = lower_dir(lower, components) else {
                continue;
            };
            if !meta.1.is_dir() {
                // Replaced by a non-directory in that layer: nothing to inherit.
                break;
            }
            let (src, meta) = meta;
            fchownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid())),
                Some(Gid::from_raw(meta.gid())),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::errno(ctx("chown"), e))?;
            if let Ok(names) = xattr::list(&src) {
                let dst = fd_path(parent, name);
                for x in names {
                    if is_overlay_private_xattr(x.as_encoded_bytes()) {
                        continue;
                    }
                    if let Ok(Some(v)) = xattr::get(&src, &x)
                        && let Err(e) = xattr::set(&dst, &x, &v)
                    {
                        tracing::warn!(xattr = ?x, error = %e, "cannot copy xattr to created parent");
                    }
                }
            }
            fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(meta.mode() & 0o7777),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| Error::errno(ctx("chmod"), e))?;
            let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
            let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
            utimensat(
                parent,
                name,
                &atime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| Error::errno(ctx("set times"), e))?;
            break;
        }
        Ok(())
    }
}

/// The metadata of `lower/components` without following any symlink on the way; `None`
/// when absent. A non-directory on the way yields that entry's metadata.
fn lower_dir(lower: &Path, components: &[OsString]) -> Option<(PathBuf, fs::Metadata)> {
    let mut p = lower.to_path_buf();
    for (i, c) in components.iter().enumerate() {
        p.push(c);
        let meta = fs::symlink_metadata(&p).ok()?;
        if i + 1 == components.len() || !meta.is_dir() {
            return Some((p, meta));
        }
    }
    None
}

/// Maps a resolution failure to the error a person can act on.
pub(crate) fn resolve_error(entry: &str, e: Errno) -> Error {
    match e {
        Errno::EXDEV | Errno::ELOOP => Error::UnsafeEntry {
            path: entry.to_string(),
            reason: "its path leads outside the target directory through a symlink".into(),
        },
        Errno::ENOTDIR => Error::InvalidLayer(format!(
            "entry {entry:?}: a parent in its path is not a directory"
        )),
        e => Error::errno(format!("resolve parent of entry {entry:?}"), e),
    }
}
