//! The event loop's kernel objects: an epoll set and a signalfd for SIGCHLD and the
//! termination signals.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::SysResult;

/// Interest in a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable (or hung up).
    Read,
    /// Writable.
    Write,
    /// Readable or writable.
    ReadWrite,
}

impl Interest {
    fn flags(self) -> EpollFlags {
        match self {
            Interest::Read => EpollFlags::EPOLLIN,
            Interest::Write => EpollFlags::EPOLLOUT,
            Interest::ReadWrite => EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT,
        }
    }
}

/// One ready descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    /// The token it was registered with.
    pub token: u64,
    /// Readable, hung up or in error.
    pub readable: bool,
    /// Writable (or in error).
    pub writable: bool,
}

/// An epoll set.
pub struct Poller {
    epoll: Epoll,
}

impl Poller {
    /// A new, close-on-exec epoll set.
    pub fn new() -> SysResult<Poller> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        })
    }

    /// Watches `fd` for `interest`, reporting `token`.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> SysResult<()> {
        self.epoll.add(fd, EpollEvent::new(interest.flags(), token))
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> SysResult<()> {
        let mut ev = EpollEvent::new(interest.flags(), token);
        self.epoll.modify(fd, &mut ev)
    }

    /// Stops watching `fd` (ignores descriptors not watched).
    pub fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = self.epoll.delete(fd);
    }

    /// Waits for events (forever when `timeout` is `None`), appending them to `out`.
    pub fn wait(&self, out: &mut Vec<Ready>, timeout: Option<Duration>) -> SysResult<()> {
        let mut events = [EpollEvent::empty(); 32];
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            Some(d) => EpollTimeout::try_from(d).unwrap_or(EpollTimeout::MAX),
        };
        let n = match self.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e),
        };
        for ev in &events[..n] {
            let f = ev.events();
            let bad = f.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
            out.push(Ready {
                token: ev.data(),
                readable: bad || f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLPRI),
                writable: bad || f.contains(EpollFlags::EPOLLOUT),
            });
        }
        Ok(())
    }
}

/// The signals the shim handles through its signalfd.
fn handled() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set
}

/// Signals delivered through a descriptor.
pub struct Signals {
    fd: SignalFd,
}

/// What the signalfd reported.
#[derive(Debug, PartialEq, Eq)]
pub enum Caught {
    /// A child changed state.
    Child,
    /// SIGTERM or SIGINT.
    Terminate,
}

impl Signals {
    /// Blocks SIGCHLD, SIGTERM and SIGINT and opens a non-blocking signalfd for them.
    pub fn new() -> SysResult<Signals> {
        let set = handled();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Drains pending signals.
    pub fn drain(&self) -> Vec<Caught> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            let sig = info.ssi_signo as i32;
            out.push(if sig == libc::SIGCHLD {
                Caught::Child
            } else {
                Caught::Terminate
            });
        }
        out
    }
}
