//! Reaching a container's files from berthd. A running container is reached through
//! `/proc/<pid>/root` (its root with every volume, bind and tmpfs mounted, as its
//! processes see them) and frozen meanwhile, so nothing in it can swap a directory for
//! a symlink under a walk; a stopped container's snapshot is mounted on a temporary
//! directory. The container's lock is held throughout, so it neither starts nor exits
//! underneath.
//!
//! Every path is then resolved from an fd of that root with `openat2(RESOLVE_IN_ROOT)`:
//! `..` and symlinks (absolute ones too) resolve as they would inside the container and
//! never lead outside its root.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_snapshotter::mount::{TempMount, read_only};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};

use crate::berth_containers::{Record, Status};
use crate::core::Core;
use crate::error::{Error, Result};

/// Whether a running container is frozen while its files are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freeze {
    Yes,
    No,
}

/// What the work is given: the container, as re-read under its lock, and its task's
/// PID when it runs (or is paused).
pub struct Held {
    pub rec: Record,
    pub pid: Option<u32>,
}

/// Runs `f` with the container `input` locked (and frozen, with [`Freeze::Yes`], when it
/// runs and is not paused already). The container is thawed afterwards whatever `f`
/// returned.
pub async fn hold<T>(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    freeze: Freeze,
    f: impl AsyncFnOnce(&Held) -> Result<T>,
) -> Result<T> {
    let rec = core.berth.store.resolve(ns, input)?;
    let slot = core.berth.slot(ns, &rec);
    let _guard = slot.lock.lock().await;
    let rec = core.berth.store.get(ns, &rec.id)?;
    let pid = match rec.state.status {
        Status::Running | Status::Paused => match core.tasks.state(ns, &rec.id, "").await {
            Ok(s) if s.pid > 0 => Some(s.pid),
            _ => None,
        },
        _ => None,
    };
    let thaw = freeze == Freeze::Yes && pid.is_some() && rec.state.status == Status::Running;
    let id = rec.id.clone();
    if thaw {
        core.tasks.pause(ns, &id).await?;
    }
    let result = f(&Held { rec, pid }).await;
    if thaw && let Err(e) = core.tasks.resume(ns, &id).await {
        tracing::warn!(container = %id, error = %e, "thaw the container");
    }
    result
}

/// A container's root directory, open.
pub struct Root {
    fd: OwnedFd,
    /// The snapshot's temporary mount (stopped containers), unmounted on close.
    mount: Option<TempMount>,
}

impl Root {
    /// Opens the root of a held container: `/proc/<pid>/root` when it runs, else its
    /// snapshot mounted (read-write when `writable`).
    pub async fn open(core: &Core, ns: &str, held: &Held, writable: bool) -> Result<Root> {
        if let Some(pid) = held.pid {
            let path = PathBuf::from(format!("/proc/{pid}/root"));
            return Ok(Root {
                fd: open_dir(&path)?,
                mount: None,
            });
        }
        let sn = core.snapshots.get(ns, &held.rec.snapshotter)?;
        let mut mounts = sn.mounts(&held.rec.id).await?;
        if !writable {
            mounts = read_only(&mounts);
        }
        let tmp = core.config.root.join("tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
        let mount = TempMount::new(&mounts, Some(&tmp))?;
        let fd = open_dir(mount.path())?;
        Ok(Root {
            fd,
            mount: Some(mount),
        })
    }

    /// A root that is a plain directory (tests, image views).
    pub fn dir(path: &Path) -> Result<Root> {
        Ok(Root {
            fd: open_dir(path)?,
            mount: None,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Unmounts what was mounted.
    pub fn close(mut self) -> Result<()> {
        drop(std::mem::replace(&mut self.fd, dup_null()?));
        if let Some(m) = self.mount.take() {
            m.close()?;
        }
        Ok(())
    }
}

fn dup_null() -> Result<OwnedFd> {
    nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open /dev/null", e.into()))
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(format!("open {}", path.display()), e.into()))
}

/// The path relative to the root, `.` for the root itself.
fn relative(path: &str) -> String {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        ".".into()
    } else {
        rel.to_string()
    }
}

/// The error for a path that could not be resolved in the container.
pub fn path_error(path: &str, e: Errno) -> Error {
    match e {
        Errno::ENOENT => Error::Missing(format!("Could not find the file {path} in container")),
        Errno::ENOTDIR => {
            Error::InvalidArgument(format!("{path}: a path component is not a directory"))
        }
        Errno::ELOOP => {
            Error::InvalidArgument(format!("{path}: too many levels of symbolic links"))
        }
        Errno::EXDEV => Error::InvalidArgument(format!("{path}: leads outside the container")),
        e => Error::io(format!("resolve {path} in the container"), e.into()),
    }
}

/// Opens `path` inside the root with `flags`; every symlink on the way (the last one
/// too) is followed as inside the container.
pub fn open_in(root: BorrowedFd<'_>, path: &str, flags: OFlag) -> Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, relative(path).as_str(), how).map_err(|e| path_error(path, e))
}

/// Splits a container path into its parent and last component (`None` for the root, or
/// a last component of `.` or `..`, which name directories to resolve whole).
fn split(path: &str) -> Option<(String, OsString)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some((parent.to_string(), OsString::from(name)))
}

/// An `O_PATH` fd of `path` in the root: a symlink at the end is followed with
/// `follow`, else the fd is the symlink itself.
pub fn open_path(root: BorrowedFd<'_>, path: &str, follow: bool) -> Result<OwnedFd> {
    let whole = || open_in(root, path, OFlag::O_PATH);
    if follow || path.ends_with('/') {
        return whole();
    }
    let Some((parent, name)) = split(path) else {
        return whole();
    };
    let dir = open_in(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    nix::fcntl::openat(
        dir.as_fd(),
        name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| path_error(path, e))
}

/// `fstat` of an fd (an `O_PATH` fd too).
pub fn stat_fd(fd: BorrowedFd<'_>, what: &str) -> Result<FileStat> {
    fstat(fd).map_err(|e| Error::io(format!("stat {what}"), e.into()))
}

/// `lstat` of `name` in the directory `dir`; `None` when it does not exist.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(s) => Ok(Some(s)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::io(
            format!("stat {}", name.to_string_lossy()),
            e.into(),
        )),
    }
}

/// The target of the symlink an `O_PATH` fd refers to.
pub fn read_link_fd(fd: BorrowedFd<'_>) -> Result<OsString> {
    nix::fcntl::readlinkat(fd, "").map_err(|e| Error::io("read symlink", e.into()))
}

/// Whether `path` exists in the root, symlinks on the way resolved in it and the last
/// one not followed.
pub fn exists(root: BorrowedFd<'_>, path: &str) -> Result<bool> {
    match open_path(root, path, false) {
        Ok(_) => Ok(true),
        Err(Error::Missing(_)) => Ok(false),
        Err(Error::InvalidArgument(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn paths_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), "inside").unwrap();
        std::fs::write(dir.path().join("secret"), "outside").unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../secret", root.join("up")).unwrap();
        symlink("/etc/hostname", root.join("link")).unwrap();
        let r = Root::dir(&root).unwrap();
        let read = |p: &str| {
            let fd = open_in(r.fd(), p, OFlag::O_RDONLY).unwrap();
            std::fs::read_to_string(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .unwrap()
        };
        assert_eq!(read("/abs/hostname"), "inside");
        assert_eq!(read("/link"), "inside");
        assert_eq!(read("/etc/../../../etc/hostname"), "inside");
        // The escaping link resolves inside the root, where there is no secret.
        assert!(matches!(
            open_in(r.fd(), "/up", OFlag::O_RDONLY),
            Err(Error::Missing(_))
        ));
        // Not following the last link: the fd is the link.
        let fd = open_path(r.fd(), "/link", false).unwrap();
        let st = stat_fd(fd.as_fd(), "link").unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(read_link_fd(fd.as_fd()).unwrap(), "/etc/hostname");
        let fd = open_path(r.fd(), "/link", true).unwrap();
        assert_eq!(
            stat_fd(fd.as_fd(), "link").unwrap().st_mode & libc::S_IFMT,
            libc::S_IFREG
        );
        assert!(exists(r.fd(), "/etc/hostname").unwrap());
        assert!(!exists(r.fd(), "/nope").unwrap());
        assert_eq!(split("/a/b/"), Some(("/a".into(), "b".into())));
        assert_eq!(split("/"), None);
        assert_eq!(split("/a/.."), None);
        r.close().unwrap();
    }
}
