//! A sealed in-memory copy of the shim binary, to start shims from (the runc
//! CVE-2019-5736 class): a process of a container that reaches a shim process's
//! `/proc/PID/exe` finds a memfd that can be written by nobody, not the binary on disk.
//!
//! berthd makes one [`SealedExe`] when it starts and runs every `berth-shim start`
//! through [`SealedExe::path`]: all shims then execute the same sealed memfd, whose pages
//! are shared between them (one copy per berthd, not per container). Each container
//! child of a shim is a clone of it, so it carries the same sealed executable until it
//! execs the container's program; it is also non-dumpable meanwhile (see
//! `runtime::launch`). docs/isolation.md has the whole picture.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// The seals that make the copy immutable.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// A sealed memfd holding a copy of an executable.
#[derive(Debug)]
pub struct SealedExe {
    fd: OwnedFd,
}

impl SealedExe {
    /// Copies the executable at `path` into a new memfd and seals it.
    pub fn from_path(path: &Path) -> std::io::Result<SealedExe> {
        let mut src = std::fs::File::open(path)?;
        let fd = memfd_create(
            c"berth-shim",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        let mut dst = std::fs::File::from(fd);
        std::io::copy(&mut src, &mut dst)?;
        dst.flush()?;
        let fd = OwnedFd::from(dst);
        fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(seals()))?;
        Ok(SealedExe { fd })
    }

    /// The path this process can execute the copy through (`/proc/self/fd/N`; the
    /// descriptor is close-on-exec, and exec opens it before closing it).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// True when this process runs from a sealed copy (its `/proc/self/exe` is a memfd that
/// nobody can write).
pub fn running_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    match fcntl(f.as_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(seals()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_sealed_and_executable() {
        let exe = SealedExe::from_path(Path::new("/bin/true")).unwrap();
        let status = std::process::Command::new(exe.path()).status().unwrap();
        assert!(status.success());
        // Writing through the descriptor's path is refused.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(exe.path())
            .unwrap();
        assert!(f.write_all(b"x").is_err());
        assert!(!running_sealed());
    }
}
