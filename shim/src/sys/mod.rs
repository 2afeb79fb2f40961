//! Every raw system call of the shim, and all of its `unsafe`.
//!
//! * [`Syscalls`]: the calls the built-in runtime makes while it builds a container
//!   (mount, pivot_root, setns, mknod, setuid, ...). [`linux::Linux`] performs them;
//!   [`fake::Recorder`] records them for unit tests. The runtime takes a `&dyn Syscalls`.
//! * Concrete wrappers used by the event loop and the launcher, exercised by the
//!   integration tests: [`fd`] (pipes, FIFOs, descriptors), [`process`] (clone, wait,
//!   signals to processes, subreaper), [`poll`] (epoll, signalfd), [`socket`] (the
//!   seqpacket channel to a container child, with descriptor passing), [`pty`],
//!   [`notify`] (eventfd and inotify for OOM events), [`inroot`] (paths resolved
//!   beneath a root with openat2), [`privileges`] (capabilities, prctl, seccomp),
//!   [`bpf`] (eBPF device programs for cgroup v2), [`idmap`] (user namespaces and
//!   idmapped mounts).

pub mod bpf;
#[cfg(test)]
pub mod fake;
pub mod fd;
pub mod idmap;
pub mod inroot;
pub mod linux;
pub mod mem;
pub mod notify;
pub mod poll;
pub mod privileges;
pub mod process;
pub mod pty;
pub mod socket;

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub use nix::errno::Errno;
pub use nix::mount::{MntFlags, MsFlags};
pub use nix::sched::CloneFlags;

/// Capability sets of the calling thread, as bit masks (bit n = capability n).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
}

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Offset when true.
    pub jt: u8,
    /// Offset when false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

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
    /// Opens the pty multiplexer `ptmx` and unlocks a new pty: (master, slave path).
    fn open_pty(&self, ptmx: &Path) -> SysResult<(OwnedFd, PathBuf)>;
    /// Opens `path` read-write without making it the controlling terminal.
    fn open_rw(&self, path: &Path) -> SysResult<OwnedFd>;
    /// execve(2); returns only on failure.
    fn execve(&self, path: &CString, argv: &[CString], env: &[CString]) -> Errno;

    // In-root variants: `rel` is resolved beneath `root` by the kernel (openat2
    // RESOLVE_IN_ROOT), so that no symlink, even one swapped in concurrently, leads out
    // of `root`; the operation then acts on what was resolved.

    /// mount(2) onto `root`/`rel`.
    fn mount_in_root(
        &self,
        root: &Path,
        rel: &Path,
        source: Option<&Path>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()>;
    /// mkdir -p of `root`/`rel`.
    fn mkdir_in_root(&self, root: &Path, rel: &Path, mode: u32) -> SysResult<()>;
    /// Creates an empty file at `root`/`rel` if nothing is there.
    fn touch_in_root(&self, root: &Path, rel: &Path) -> SysResult<()>;
    /// mknod(2) at `root`/`rel`.
    fn mknod_in_root(
        &self,
        root: &Path,
        rel: &Path,
        kind: NodeKind,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> SysResult<()>;
    /// chown(2) of `root`/`rel`, not following a final symlink.
    fn lchown_in_root(&self, root: &Path, rel: &Path, uid: u32, gid: u32) -> SysResult<()>;
    /// symlink(2): `root`/`rel` pointing at `target`.
    fn symlink_in_root(&self, root: &Path, target: &Path, rel: &Path) -> SysResult<()>;

    // Process hardening.

    /// The mount flags of the filesystem at `path` (statvfs(2)) as MS_* flags
    /// (read-only, nosuid, nodev, noexec, atime flags): what a remount must keep.
    fn mount_flags(&self, path: &Path) -> SysResult<MsFlags>;
    /// prctl(PR_SET_DUMPABLE).
    fn set_dumpable(&self, on: bool) -> SysResult<()>;
    /// prctl(PR_SET_NO_NEW_PRIVS, 1).
    fn set_no_new_privs(&self) -> SysResult<()>;
    /// prctl(PR_SET_KEEPCAPS).
    fn set_keepcaps(&self, on: bool) -> SysResult<()>;
    /// The capability bounding set (PR_CAPBSET_READ of every known capability).
    fn cap_bounding(&self) -> SysResult<u64>;
    /// prctl(PR_CAPBSET_DROP, cap).
    fn cap_drop_bounding(&self, cap: u32) -> SysResult<()>;
    /// capset(2) of this thread.
    fn capset(&self, sets: CapSets) -> SysResult<()>;
    /// Clears the ambient set.
    fn cap_ambient_clear(&self) -> SysResult<()>;
    /// Raises `cap` in the ambient set.
    fn cap_ambient_raise(&self, cap: u32) -> SysResult<()>;
    /// Installs a seccomp filter (seccomp(2) SECCOMP_SET_MODE_FILTER with `flags`).
    fn seccomp_load(&self, program: &[SockFilter], flags: u32) -> SysResult<()>;
    /// getcwd(2); an error when the working directory is outside the root.
    fn getcwd(&self) -> SysResult<PathBuf>;
    /// Closes every descriptor from `first` on except those in `keep`.
    fn close_fds_except(&self, first: RawFd, keep: &[RawFd]) -> SysResult<()>;
}
