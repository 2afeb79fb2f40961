//! Open directories of an apply: a small cache of the parent directories resolved below
//! the target (so consecutive entries of one directory share one descriptor instead of an
//! `openat2` each), and what a new entry created in each of them gets by default (owner,
//! mode), so calls that would only set those same values again can be left out.
//!
//! A cached descriptor stays right only while nothing changes what its path resolves to or
//! the directory's own metadata: the apply forgets the whole cache on every removal
//! (replaced entries, whiteouts, opaque directories) and every update of an existing
//! directory. Creating an entry never changes the resolution of a path that already
//! resolved, and nothing is ever renamed, so no other event can make an entry stale.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::sys::stat::{Mode, fstat};
use nix::unistd::{Gid, Uid, getegid, geteuid};

use super::entry::EntryMeta;

/// Most directories kept open at once; the cache is emptied when it is full (tar streams
/// list a directory's entries together, so a small cache catches nearly every repeat).
const CAPACITY: usize = 64;

/// The default POSIX ACL of a directory, which replaces the umask for entries created in it.
const DEFAULT_ACL: &std::ffi::CStr = c"system.posix_acl_default";

/// An open directory below the apply target.
#[derive(Debug, Clone)]
pub(crate) struct DirHandle {
    fd: Arc<OwnedFd>,
    /// Entries created here get the applier's own uid and gid and the requested mode minus
    /// the umask: the directory's group is the applier's, it is not setgid and has no
    /// default ACL.
    plain: bool,
}

impl AsFd for DirHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl DirHandle {
    /// Wraps a freshly resolved directory, reading what entries created in it inherit.
    /// When that cannot be read the directory counts as not plain (every owner and mode is
    /// then set explicitly).
    pub fn new(fd: OwnedFd, creds: &Creds) -> DirHandle {
        let plain = fstat(fd.as_fd()).is_ok_and(|st| {
            st.st_gid == creds.gid && st.st_mode & libc::S_ISGID == 0 && !has_default_acl(&fd)
        });
        DirHandle {
            fd: Arc::new(fd),
            plain,
        }
    }
}

/// True when the directory has a default ACL (or when that cannot be told).
fn has_default_acl(fd: &OwnedFd) -> bool {
    // SAFETY: `fd` is an open descriptor, the name is a NUL-terminated C string, and a null
    // buffer of size 0 only asks for the value's length; nothing is written.
    let r = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            DEFAULT_ACL.as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    if r >= 0 {
        return true;
    }
    let errno = std::io::Error::last_os_error().raw_os_error();
    !matches!(errno, Some(libc::ENODATA) | Some(libc::EOPNOTSUPP))
}

/// The credentials and umask new entries are created with.
#[derive(Debug, Clone)]
pub(crate) struct Creds {
    uid: u32,
    gid: u32,
    /// The process umask, when it could be read without changing it.
    umask: Option<u32>,
}

impl Creds {
    /// The current effective ids and umask (from `/proc/self/status`).
    pub fn current() -> Creds {
        Creds {
            uid: geteuid().as_raw(),
            gid: getegid().as_raw(),
            umask: read_umask(),
        }
    }

    /// Whether an entry just created in `dir` needs a chown to get `meta`'s owner.
    pub fn needs_chown(&self, dir: &DirHandle, meta: &EntryMeta) -> bool {
        !(dir.plain && meta.uid == self.uid && meta.gid == self.gid)
    }

    /// Whether an entry just created in `dir` with the mode `meta.mode & 0o777` needs a
    /// chmod to get exactly `meta`'s mode: yes for setuid, setgid and sticky bits (creation
    /// drops them or chown clears them), bits the umask removed, or xattrs (an access ACL
    /// rewrites the mode).
    pub fn needs_chmod(&self, dir: &DirHandle, meta: &EntryMeta) -> bool {
        let Some(umask) = self.umask else {
            return true;
        };
        !(dir.plain && meta.mode & 0o7000 == 0 && meta.mode & umask == 0 && meta.xattrs.is_empty())
    }

    /// The mode to create an entry with: its permission bits, never more.
    pub fn create_mode(meta: &EntryMeta) -> Mode {
        Mode::from_bits_truncate(meta.mode & 0o777)
    }

    /// The owner to set when [`Creds::needs_chown`] says so.
    pub fn owner(meta: &EntryMeta) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
    }
}

/// The `Umask:` line of `/proc/self/status` (Linux 4.7+); `None` when absent.
fn read_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Directories resolved below the target, by their normalised relative path.
#[derive(Debug, Default)]
pub(crate) struct DirCache {
    map: HashMap<OsString, DirHandle>,
}

impl DirCache {
    pub fn get(&self, key: &OsString) -> Option<DirHandle> {
        self.map.get(key).cloned()
    }

    pub fn insert(&mut self, key: OsString, dir: DirHandle) {
        if self.map.len() >= CAPACITY {
            self.map.clear();
        }
        self.map.insert(key, dir);
    }

    /// Forgets every directory (after anything was removed or a directory changed).
    pub fn clear(&mut self) {
        self.map.clear();
    }
}
