//! Pseudo-terminals: open a ptmx (the container's own devpts instance), unlock it, find
//! its slave, and set window sizes.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{Errno, SysResult};

/// Opens the multiplexer at `ptmx` (e.g. `<rootfs>/dev/pts/ptmx`) and returns the master
/// and the slave's path in the same devpts instance.
pub fn open_master(ptmx: &Path) -> SysResult<(OwnedFd, PathBuf)> {
    let master = super::fd::open(ptmx, true, true, libc::O_NOCTTY)
        .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the valid pointer to `unlock`.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
    Errno::result(rc)?;
    let mut index: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the valid pointer to `index`.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut index) };
    Errno::result(rc)?;
    let dir = ptmx.parent().unwrap_or(Path::new("/dev/pts"));
    Ok((master, dir.join(index.to_string())))
}

/// Sets the window size of the terminal `fd`.
pub fn set_window_size(fd: BorrowedFd<'_>, cols: u16, rows: u16) -> SysResult<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through the valid pointer to `ws`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(rc).map(drop)
}
