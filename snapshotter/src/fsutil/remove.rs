//! Recursive removal relative to a directory fd that never follows symlinks.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Removes `name` inside `dir` (a file, or a directory with everything below it).
/// A missing entry is not an error. Symlinks are removed, never followed.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Err(Errno::ENOENT) => Ok(()),
            r => r,
        };
    }
    empty_dir_at(dir, name)?;
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Err(Errno::ENOENT) => Ok(()),
        r => r,
    }
}

/// Removes every entry inside the directory `name` of `dir`, keeping the directory.
pub(crate) fn empty_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    empty_dir(fd.as_fd())
}

/// Removes every entry inside the open directory `dir`.
pub(crate) fn empty_dir(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    let listing = Dir::from_fd(
        dir.try_clone_to_owned()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?,
    )?;
    for entry in child_names(listing)? {
        remove_at(dir, &entry)?;
    }
    Ok(())
}

/// The names in a directory, without `.` and `..`.
pub(crate) fn child_names(mut dir: Dir) -> Result<Vec<OsString>, Errno> {
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(name).to_os_string());
    }
    Ok(names)
}
