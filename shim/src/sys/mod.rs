//! Every raw system call of the shim, and all of its `unsafe`.
//!
//! * [`Syscalls`]: the calls the built-in runtime makes while it builds a container
//!   (mount, pivot_root, setns, mknod, setuid, ...). [`linux::Linux`] performs them;
//!   [`fake::Recorder`] records them for unit tests. The runtime takes a `&dyn Syscalls`.
//! * Concrete wrappers used by the event loop and the launcher, exercised by the
//!   integration tests: [`fd`] (pipes, FIFOs, descriptors), [`process`] (clone, wait,
//!   signals to processes, subreaper), [`poll`] (epoll, signalfd), [`socket`] (the
//!   seqpacket channel to a container child, with descriptor passing), [`pty`],
//!   [`notify`] (eventfd and inotify for OOM events).

#[cfg(test)]
pub mod fake;
pub mod fd;
pub mod linux;
pub mod mem;
pub mod notify;
pub mod poll;
pub mod process;
pub mod pty;
pub mod socket;

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub use nix::errno::Errno;
pub use nix::mount::{MntFlags, MsFlags};
pub use nix::sched::CloneFlags;

/// Result of a system call: the errno on failure.
pub type SysResult<T> = Result<T, Errno>;

/// Kind of device node for [`Syscalls::mknod`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// FIFO.
    Fifo,
}

/// The system calls of container setup. The child of a `clone` calls them between the
/// clone and the `execve` of the user's program; a failing call is reported to the shim.
pub trait Syscalls {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()>;
    /// unshare(2).
    fn unshare(&self, flags: CloneFlags) -> SysResult<()>;
    /// Opens the namespace file `path` and setns(2)s into it.
    fn setns_path(&self, path: &Path, nstype: CloneFlags) -> SysResult<()>;
    /// setns(2) into an already open namespace file.
    fn setns_fd(&self, fd: RawFd, nstype: CloneFlags) -> SysResult<()>;
    /// Makes `rootfs` the root with pivot_root(2) and detaches the old root.
    fn pivot_root(&self, rootfs: &Path) -> SysResult<()>;
    /// Makes `rootfs` the root without pivot_root: MS_MOVE onto `/`, then chroot(2).
    fn move_root(&self, rootfs: &Path) -> SysResult<()>;
    /// fchdir(2) to `fd`, then chroot("."): enters the root of another process.
    fn chroot_fd(&self, fd: RawFd) -> SysResult<()>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> SysResult<()>;
    /// mknod(2) with permission bits `perm`.
    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> SysResult<()>;
    /// chown(2), not following symlinks.
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> SysResult<()>;
    /// symlink(2): `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()>;
    /// mkdir -p with `mode` for the directories it creates.
    fn mkdir_all(&self, path: &Path, mode: u32) -> SysResult<()>;
    /// Creates an empty regular file if nothing is at `path` (a bind-mount target).
    fn touch(&self, path: &Path) -> SysResult<()>;
    /// The target of the symlink at `path`; `None` when `path` is not a symlink or absent.
    fn read_link(&self, path: &Path) -> SysResult<Option<PathBuf>>;
    /// Whether `path` (following symlinks) is a directory; `None` when absent.
    fn is_dir(&self, path: &Path) -> SysResult<Option<bool>>;
    /// Writes `data` to an existing file (proc/sys/cgroup files).
    fn write_file(&self, path: &Path, data: &[u8]) -> SysResult<()>;
    /// Reads a small file.
    fn read_file(&self, path: &Path) -> SysResult<Vec<u8>>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> SysResult<()>;
    /// setdomainname(2).
    fn setdomainname(&self, name: &str) -> SysResult<()>;
    /// getrlimit(2) of resource number `resource` (soft, hard).
    fn getrlimit(&self, resource: i32) -> SysResult<(u64, u64)>;
    /// setrlimit(2).
    fn setrlimit(&self, resource: i32, soft: u64, hard: u64) -> SysResult<()>;
    /// setgroups(2).
    fn setgroups(&self, gids: &[u32]) -> SysResult<()>;
    /// setresgid(2) with all three ids equal.
    fn setgid(&self, gid: u32) -> SysResult<()>;
    /// setresuid(2) with all three ids equal.
    fn setuid(&self, uid: u32) -> SysResult<()>;
    /// umask(2).
    fn umask(&self, mask: u32);
    /// setsid(2).
    fn setsid(&self) -> SysResult<()>;
    /// ioctl(TIOCSCTTY): makes the terminal `fd` the controlling terminal.
    fn set_controlling_terminal(&self, fd: RawFd) -> SysResult<()>;
    /// dup2(2), clearing close-on-exec on `target` even when `fd == target`.
    fn dup_onto(&self, fd: RawFd, target: RawFd) -> SysResult<()>;
    /// Unblocks every signal and resets every handler to its default.
    fn reset_signals(&self) -> SysResult<()>;
    /// Marks every descriptor from `first` on close-on-exec (close_range(2)).
    fn cloexec_from(&self, first: RawFd) -> SysResult<()>;
    /// Opens the pty multiplexer `ptmx` and unlocks a new pty: (master, slave path).
    fn open_pty(&self, ptmx: &Path) -> SysResult<(OwnedFd, PathBuf)>;
    /// Opens `path` read-write without making it the controlling terminal.
    fn open_rw(&self, path: &Path) -> SysResult<OwnedFd>;
    /// execve(2); returns only on failure.
    fn execve(&self, path: &CString, argv: &[CString], env: &[CString]) -> Errno;
}
