//! [`Linux`]: the real [`Syscalls`], through nix and (where nix has no wrapper) libc.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};

use super::{
    CapSets, CloneFlags, Errno, MntFlags, MsFlags, NodeKind, SockFilter, SysResult, Syscalls,
    inroot, privileges,
};

/// The running kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux;

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// Borrows a raw descriptor the caller keeps open for the duration of the call.
fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: every caller passes a descriptor it owns and keeps open while the
    // syscall using the borrow runs; the borrow does not escape that call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

impl Syscalls for Linux {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()> {
        nix::mount::umount2(target, flags)
    }

    fn unshare(&self, flags: CloneFlags) -> SysResult<()> {
        nix::sched::unshare(flags)
    }

    fn setns_path(&self, path: &Path, nstype: CloneFlags) -> SysResult<()> {
        let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
        nix::sched::setns(fd.as_fd(), nstype)
    }

    fn setns_fd(&self, fd: RawFd, nstype: CloneFlags) -> SysResult<()> {
        nix::sched::setns(borrow(fd), nstype)
    }

    fn pivot_root(&self, rootfs: &Path) -> SysResult<()> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let old: OwnedFd = open("/", flags, Mode::empty())?;
        let new: OwnedFd = open(rootfs, flags, Mode::empty())?;
        nix::unistd::fchdir(new.as_fd())?;
        // Stacks the old root on top of the new one, at the same place.
        nix::unistd::pivot_root(".", ".")?;
        nix::unistd::fchdir(old.as_fd())?;
        // Keep the unmount below from propagating to the host.
        nix::mount::mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir("/")
    }

    fn move_root(&self, rootfs: &Path) -> SysResult<()> {
        nix::unistd::chdir(rootfs)?;
        nix::mount::mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )?;
        nix::unistd::chroot(".")?;
        nix::unistd::chdir("/")
    }

    fn chroot_fd(&self, fd: RawFd) -> SysResult<()> {
        nix::unistd::fchdir(borrow(fd))?;
        nix::unistd::chroot(".")?;
        nix::unistd::chdir("/")
    }

    fn chdir(&self, path: &Path) -> SysResult<()> {
        nix::unistd::chdir(path)
    }

    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> SysResult<()> {
        let kind = match kind {
            NodeKind::Char => SFlag::S_IFCHR,
            NodeKind::Block => SFlag::S_IFBLK,
            NodeKind::Fifo => SFlag::S_IFIFO,
        };
        let dev = nix::sys::stat::makedev(major, minor);
        nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(perm), dev)?;
        // mknod's mode is filtered by the umask; set the bits asked for.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            Mode::from_bits_truncate(perm),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> SysResult<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| io_errno(&e))
    }

    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()> {
        std::os::unix::fs::symlink(target, link).map_err(|e| io_errno(&e))
    }

    fn mkdir_all(&self, path: &Path, mode: u32) -> SysResult<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(|e| io_errno(&e))
    }

    fn touch(&self, path: &Path) -> SysResult<()> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(()),
            Err(_) => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
                .map(drop)
                .map_err(|e| io_errno(&e)),
        }
    }

    fn read_link(&self, path: &Path) -> SysResult<Option<PathBuf>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::read_link(path).map(Some).map_err(|e| io_errno(&e))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_errno(&e)),
        }
    }

    fn is_dir(&self, path: &Path) -> SysResult<Option<bool>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(m.is_dir())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_errno(&e)),
        }
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> SysResult<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| io_errno(&e))?;
        f.write_all(data).map_err(|e| io_errno(&e))
    }

    fn read_file(&self, path: &Path) -> SysResult<Vec<u8>> {
        std::fs::read(path).map_err(|e| io_errno(&e))
    }

    fn sethostname(&self, name: &str) -> SysResult<()> {
        nix::unistd::sethostname(name)
    }

    fn setdomainname(&self, name: &str) -> SysResult<()> {
        // SAFETY: the pointer and length describe `name`'s bytes, alive for the call.
        let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        Errno::result(rc).map(drop)
    }

    fn getrlimit(&self, resource: i32) -> SysResult<(u64, u64)> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
        let rc = unsafe { libc::getrlimit(resource as libc::__rlimit_resource_t, &mut lim) };
        Errno::result(rc).map(|_| (lim.rlim_cur, lim.rlim_max))
    }

    fn setrlimit(&self, resource: i32, soft: u64, hard: u64) -> SysResult<()> {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid rlimit for the duration of the call.
        let rc = unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &lim) };
        Errno::result(rc).map(drop)
    }

    fn setgroups(&self, gids: &[u32]) -> SysResult<()> {
        let gids: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&gids)
    }

    fn setgid(&self, gid: u32) -> SysResult<()> {
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g)
    }

    fn setuid(&self, uid: u32) -> SysResult<()> {
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u)
    }

    fn umask(&self, mask: u32) {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }

    fn setsid(&self) -> SysResult<()> {
        nix::unistd::setsid().map(drop)
    }

    fn set_controlling_terminal(&self, fd: RawFd) -> SysResult<()> {
        // SAFETY: TIOCSCTTY takes an int argument by value; `fd` is open.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
        Errno::result(rc).map(drop)
    }

    fn dup_onto(&self, fd: RawFd, target: RawFd) -> SysResult<()> {
        if fd == target {
            let flags = nix::fcntl::fcntl(borrow(fd), nix::fcntl::FcntlArg::F_GETFD)?;
            let flags =
                nix::fcntl::FdFlag::from_bits_truncate(flags) - nix::fcntl::FdFlag::FD_CLOEXEC;
            nix::fcntl::fcntl(borrow(fd), nix::fcntl::FcntlArg::F_SETFD(flags)).map(drop)
        } else {
            // SAFETY: plain dup2 on descriptors the caller owns; `target` is replaced
            // on purpose (stdio of the process about to exec).
            let rc = unsafe { libc::dup2(fd, target) };
            Errno::result(rc).map(drop)
        }
    }

    fn reset_signals(&self) -> SysResult<()> {
        use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
        for sig in Signal::iterator() {
            if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
                continue;
            }
            // SAFETY: installing the default disposition has no handler to be unsafe.
            unsafe { signal(sig, SigHandler::SigDfl) }?;
        }
        Ok(())
    }

    fn open_pty(&self, ptmx: &Path) -> SysResult<(OwnedFd, PathBuf)> {
        super::pty::open_master(ptmx)
    }

    fn open_rw(&self, path: &Path) -> SysResult<OwnedFd> {
        super::fd::open(path, true, true, libc::O_NOCTTY).map_err(|e| io_errno(&e))
    }

    fn execve(&self, path: &CString, argv: &[CString], env: &[CString]) -> Errno {
        match nix::unistd::execve(path, argv, env) {
            Err(e) => e,
            Ok(never) => match never {},
        }
    }

    fn mount_in_root(
        &self,
        root: &Path,
        rel: &Path,
        source: Option<&Path>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        let target = inroot::open_in_root(root, rel, OFlag::O_PATH)?;
        nix::mount::mount(source, &inroot::fd_path(&target), fstype, flags, data)
    }

    fn mkdir_in_root(&self, root: &Path, rel: &Path, mode: u32) -> SysResult<()> {
        inroot::mkdir_all(root, rel, mode)
    }

    fn touch_in_root(&self, root: &Path, rel: &Path) -> SysResult<()> {
        inroot::touch(root, rel)
    }

    fn mknod_in_root(
        &self,
        root: &Path,
        rel: &Path,
        kind: NodeKind,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> SysResult<()> {
        let kind = match kind {
            NodeKind::Char => SFlag::S_IFCHR,
            NodeKind::Block => SFlag::S_IFBLK,
            NodeKind::Fifo => SFlag::S_IFIFO,
        };
        inroot::mknod(root, rel, kind, perm, nix::sys::stat::makedev(major, minor))
    }

    fn lchown_in_root(&self, root: &Path, rel: &Path, uid: u32, gid: u32) -> SysResult<()> {
        inroot::lchown(root, rel, uid, gid)
    }

    fn symlink_in_root(&self, root: &Path, target: &Path, rel: &Path) -> SysResult<()> {
        inroot::symlink(root, target, rel)
    }

    fn mount_flags(&self, path: &Path) -> SysResult<MsFlags> {
        privileges::mount_flags(path)
    }

    fn set_dumpable(&self, on: bool) -> SysResult<()> {
        nix::sys::prctl::set_dumpable(on)
    }

    fn set_no_new_privs(&self) -> SysResult<()> {
        nix::sys::prctl::set_no_new_privs()
    }

    fn set_keepcaps(&self, on: bool) -> SysResult<()> {
        nix::sys::prctl::set_keepcaps(on)
    }

    fn cap_bounding(&self) -> SysResult<u64> {
        privileges::bounding()
    }

    fn cap_drop_bounding(&self, cap: u32) -> SysResult<()> {
        privileges::drop_bounding(cap)
    }

    fn capset(&self, sets: CapSets) -> SysResult<()> {
        privileges::capset(sets)
    }

    fn cap_ambient_clear(&self) -> SysResult<()> {
        privileges::ambient_clear()
    }

    fn cap_ambient_raise(&self, cap: u32) -> SysResult<()> {
        privileges::ambient_raise(cap)
    }

    fn seccomp_load(&self, program: &[SockFilter], flags: u32) -> SysResult<()> {
        privileges::seccomp_load(program, flags)
    }

    fn getcwd(&self) -> SysResult<PathBuf> {
        nix::unistd::getcwd()
    }

    fn close_fds_except(&self, first: RawFd, keep: &[RawFd]) -> SysResult<()> {
        super::fd::close_range_except(first, keep)
    }
}

/// Raw descriptor of an owned one, for [`Syscalls`] calls taking a `RawFd`.
pub fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}
