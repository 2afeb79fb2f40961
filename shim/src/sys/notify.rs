//! OOM notifications: cgroup v1 `memory.oom_control` events through an eventfd, and
//! cgroup v2 `memory.events` changes through inotify.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Errno, SysResult};

/// A v1 OOM notifier: the eventfd, plus the `memory.oom_control` file it watches
/// (which must stay open).
pub struct OomEventFd {
    efd: EventFd,
    _control: OwnedFd,
}

impl OomEventFd {
    /// Registers an eventfd for the memory cgroup directory `dir`.
    pub fn register(dir: &Path) -> SysResult<OomEventFd> {
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let control = super::fd::open(&dir.join("memory.oom_control"), true, false, 0)
            .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
        let line = format!("{} {}", efd.as_fd().as_raw_fd(), control.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), line)
            .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
        Ok(OomEventFd {
            efd,
            _control: control,
        })
    }

    /// Descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.efd.as_fd()
    }

    /// Consumes the counter: how many OOM events happened (0 when none, or when the
    /// cgroup was removed, which also signals the eventfd).
    pub fn take(&self) -> u64 {
        self.efd.read().unwrap_or(0)
    }
}

/// An inotify watch on one file (IN_MODIFY).
pub struct FileWatch {
    fd: OwnedFd,
}

impl FileWatch {
    /// Watches `path` for modifications.
    pub fn new(path: &Path) -> SysResult<FileWatch> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        let raw = Errno::result(raw)?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Errno::EINVAL)?;
        // SAFETY: `cpath` is a valid NUL-terminated string for the duration of the call.
        let rc =
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), cpath.as_ptr(), libc::IN_MODIFY) };
        Errno::result(rc)?;
        Ok(FileWatch { fd })
    }

    /// Descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Discards the queued inotify records.
    pub fn drain(&self) {
        let mut buf = [0u8; 1024];
        while let Ok(super::fd::Io::Done(_)) = super::fd::read(self.fd.as_fd(), &mut buf) {}
    }
}
