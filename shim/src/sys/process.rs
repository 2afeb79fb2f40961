//! Processes: clone with new namespaces, fork, reaping, signals, the subreaper flag and
//! the pid namespace of future children.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{CloneFlags, Errno, SysResult};

/// Which side of a clone/fork this is.
#[derive(Debug, PartialEq, Eq)]
pub enum Forked {
    /// The parent; the child's pid.
    Parent(i32),
    /// The child.
    Child,
}

/// clone(2) like fork (SIGCHLD on exit, copy-on-write stack) with extra namespace
/// flags. The child must only run code that ends in exec or [`exit_now`].
///
/// The shim is single-threaded, so the child's copy of the heap and of every lock is
/// consistent.
pub fn clone_process(flags: CloneFlags) -> SysResult<Forked> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: raw clone without a new stack behaves like fork: the child continues on a
    // copy-on-write copy of this (single-threaded) process. No pointers are passed.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match rc {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(
            i32::try_from(pid).map_err(|_| Errno::EINVAL)?,
        )),
    }
}

/// Leaves the process at once, without running destructors or atexit handlers (the
/// child of a clone must not flush the parent's buffers).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// A reaped child: pid and exit status (128 + signal for a killed process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    /// Pid of the child.
    pub pid: i32,
    /// Exit code, or 128 + signal number.
    pub status: u32,
}

/// Reaps one exited child without blocking; `None` when none is waiting.
pub fn reap_any() -> Option<Reaped> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                return Some(Reaped {
                    pid: pid.as_raw(),
                    status: u32::try_from(code).unwrap_or(255),
                });
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                return Some(Reaped {
                    pid: pid.as_raw(),
                    status: 128 + sig as u32,
                });
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return None,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Waits for one specific child to exit (blocking).
pub fn reap(pid: i32) -> SysResult<Reaped> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(p, code)) => {
                return Ok(Reaped {
                    pid: p.as_raw(),
                    status: u32::try_from(code).unwrap_or(255),
                });
            }
            Ok(WaitStatus::Signaled(p, sig, _)) => {
                return Ok(Reaped {
                    pid: p.as_raw(),
                    status: 128 + sig as u32,
                });
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// kill(2) with a signal number (0 checks existence).
pub fn kill(pid: i32, signal: i32) -> SysResult<()> {
    let sig = if signal == 0 {
        None
    } else {
        Some(Signal::try_from(signal)?)
    };
    nix::sys::signal::kill(Pid::from_raw(pid), sig)
}

/// Makes this process the reaper of its orphaned descendants.
pub fn set_child_subreaper() -> SysResult<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// fork(2) for the daemonizing `start`.
pub fn fork() -> SysResult<Forked> {
    // SAFETY: `start` is single-threaded when it forks; the child only runs the shim.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// setsid(2) for the daemon.
pub fn setsid() -> SysResult<()> {
    nix::unistd::setsid().map(drop)
}

/// This process's pid.
pub fn getpid() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// Opens a namespace file (close-on-exec).
pub fn open_ns(path: &Path) -> SysResult<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
}

/// [`clone_process`] with the child created inside the namespaces `join` (each a
/// namespace file and its type): the shim enters them (for a pid namespace: for its
/// children), clones, and in the parent goes back to its own. The shim is
/// single-threaded, so nothing else runs meanwhile. A user or mount namespace cannot be
/// left again and is refused.
pub fn clone_joined(flags: CloneFlags, join: &[(&OwnedFd, CloneFlags)]) -> SysResult<Forked> {
    if join
        .iter()
        .any(|(_, f)| matches!(*f, CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS))
    {
        return Err(Errno::EINVAL);
    }
    let mut own = Vec::new();
    for (_, f) in join {
        let name = match *f {
            CloneFlags::CLONE_NEWPID => "pid",
            CloneFlags::CLONE_NEWNET => "net",
            CloneFlags::CLONE_NEWIPC => "ipc",
            CloneFlags::CLONE_NEWUTS => "uts",
            CloneFlags::CLONE_NEWCGROUP => "cgroup",
            _ => return Err(Errno::EINVAL),
        };
        own.push((open_ns(&Path::new("/proc/self/ns").join(name))?, *f));
    }
    let mut entered = 0;
    let mut res = Ok(());
    for (fd, f) in join {
        if let Err(e) = nix::sched::setns(fd.as_fd(), *f) {
            res = Err(e);
            break;
        }
        entered += 1;
    }
    let forked = res.and_then(|()| clone_process(flags));
    if matches!(forked, Ok(Forked::Child)) {
        return forked;
    }
    for (fd, f) in own.iter().take(entered) {
        if let Err(e) = nix::sched::setns(fd.as_fd(), *f) {
            // The shim would stay in the container's namespace from now on.
            tracing::error!(error = %e, "cannot return to the shim's own namespace");
            return Err(e);
        }
    }
    forked
}
