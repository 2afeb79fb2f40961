//! Descriptors: pipes, FIFOs, /dev/null, non-blocking reads and writes, close-on-exec.
//! Every descriptor the shim opens is close-on-exec.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use super::{Errno, SysResult};

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

/// Sets or clears O_NONBLOCK.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> SysResult<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_NONBLOCK
    } else {
        flags - OFlag::O_NONBLOCK
    };
    fcntl(fd, FcntlArg::F_SETFL(flags)).map(drop)
}

/// Opens `path` with extra open flags, always close-on-exec.
pub fn open(path: &Path, read: bool, write: bool, flags: i32) -> std::io::Result<OwnedFd> {
    OpenOptions::new()
        .read(read)
        .write(write)
        .custom_flags(libc::O_CLOEXEC | flags)
        .open(path)
        .map(OwnedFd::from)
}

/// /dev/null for reading and writing.
pub fn dev_null() -> std::io::Result<OwnedFd> {
    open(Path::new("/dev/null"), true, true, 0)
}

/// Opens a client FIFO for reading without waiting for a writer.
pub fn open_fifo_reader(path: &Path) -> std::io::Result<OwnedFd> {
    open(path, true, false, libc::O_NONBLOCK)
}

/// Opens a client FIFO for writing without waiting for its client: first a read handle
/// (kept, so writes never fail for lack of a reader), then the non-blocking write handle.
/// Returns (write, read).
pub fn open_fifo_writer(path: &Path) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let keep = open(path, true, false, libc::O_NONBLOCK)?;
    let write = open(path, false, true, libc::O_NONBLOCK)?;
    Ok((write, keep))
}

/// Outcome of a non-blocking read or write.
#[derive(Debug, PartialEq, Eq)]
pub enum Io {
    /// This many bytes moved.
    Done(usize),
    /// End of file (read) or peer gone (write: EPIPE).
    Closed,
    /// Nothing can move now.
    WouldBlock,
}

/// read(2) that maps EAGAIN to [`Io::WouldBlock`] and 0 or EIO (pty master whose
/// slave is closed) to [`Io::Closed`], retrying EINTR.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> SysResult<Io> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) => return Ok(Io::Closed),
            Ok(n) => return Ok(Io::Done(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(Io::WouldBlock),
            Err(Errno::EIO) => return Ok(Io::Closed),
            Err(e) => return Err(e),
        }
    }
}

/// write(2) that maps EAGAIN to [`Io::WouldBlock`] and EPIPE to [`Io::Closed`].
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> SysResult<Io> {
    loop {
        match nix::unistd::write(fd, buf) {
            Ok(n) => return Ok(Io::Done(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(Io::WouldBlock),
            Err(Errno::EPIPE) => return Ok(Io::Closed),
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `buf` to a blocking descriptor.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Closes every descriptor from `first` on except those in `keep`, with close_range(2)
/// over the gaps (the container child before exec).
pub fn close_range_except(first: RawFd, keep: &[RawFd]) -> SysResult<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|k| *k >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first;
    let mut ranges = Vec::new();
    for k in keep {
        if k > lo {
            ranges.push((lo, k - 1));
        }
        lo = k + 1;
    }
    ranges.push((lo, RawFd::MAX));
    for (a, b) in ranges {
        let (a, b) = (
            libc::c_uint::try_from(a).map_err(|_| Errno::EINVAL)?,
            libc::c_uint::try_from(b).map_err(|_| Errno::EINVAL)?,
        );
        // SAFETY: close_range closes descriptors the caller gave up: the child about to
        // exec owns no Rust object over them any more (see the caller).
        let rc = unsafe { libc::syscall(libc::SYS_close_range, a, b, 0 as libc::c_uint) };
        if rc != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Closes every descriptor from `first` on except those in `keep` (the daemonizing shim
/// drops what its parent left open).
pub fn close_from_except(first: RawFd, keep: &[RawFd]) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        if fd >= first && !keep.contains(&fd) {
            // SAFETY: closes a descriptor inherited from the parent that nothing in this
            // process owns (called first thing in the daemon, before any OwnedFd exists
            // apart from those in `keep`). The directory iterator's own fd may be in the
            // list; it is already closed, and close fails harmlessly.
            unsafe { libc::close(fd) };
        }
    }
}

/// Points descriptors 0, 1 and 2 at `fd` (the daemon's stdio).
pub fn redirect_stdio(stdin: BorrowedFd<'_>, out: BorrowedFd<'_>) -> SysResult<()> {
    for (src, target) in [
        (stdin.as_raw_fd(), 0),
        (out.as_raw_fd(), 1),
        (out.as_raw_fd(), 2),
    ] {
        // SAFETY: dup2 onto the standard descriptors, which this process means to replace.
        let rc = unsafe { libc::dup2(src, target) };
        Errno::result(rc)?;
    }
    Ok(())
}
