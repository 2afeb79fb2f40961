//! User namespaces for idmapped mounts: a namespace with given maps (held by a short-
//! lived child), and the idmapped copy of a mount stacked on its original
//! (open_tree(2), mount_setattr(2) MOUNT_ATTR_IDMAP, move_mount(2)).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::process::{Forked, clone_process, exit_now, open_ns, reap};
use super::{CloneFlags, Errno, SysResult};

/// A user namespace with `uid_map` and `gid_map` (kernel format: `inside outside
/// count` lines), as a descriptor.
pub fn userns_fd(uid_map: &str, gid_map: &str) -> SysResult<OwnedFd> {
    let (r, w) = super::fd::pipe()?;
    let pid = match clone_process(CloneFlags::CLONE_NEWUSER)? {
        Forked::Child => {
            drop(w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(r.as_fd(), &mut b);
            exit_now(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop(r);
    let res = (|| {
        let dir = Path::new("/proc").join(pid.to_string());
        std::fs::write(dir.join("uid_map"), uid_map).map_err(|e| io(&e))?;
        std::fs::write(dir.join("gid_map"), gid_map).map_err(|e| io(&e))?;
        open_ns(&dir.join("ns/user"))
    })();
    drop(w);
    let _ = reap(pid);
    res
}

fn io(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Stacks an idmapped copy (through user namespace `userns`) of the mount at `path`
/// on top of it.
pub fn idmap_mount(path: &Path, userns: &OwnedFd) -> SysResult<()> {
    let tree = idmapped_tree(path, userns)?;
    let c = cpath(path)?;
    // SAFETY: both paths are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(rc).map(drop)
}

/// True when a mount of `dir`'s filesystem can be idmapped here.
pub fn probe(dir: &Path) -> bool {
    userns_fd("0 100000 1\n", "0 100000 1\n")
        .and_then(|ns| idmapped_tree(dir, &ns))
        .is_ok()
}

fn cpath(path: &Path) -> SysResult<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

/// A detached, idmapped copy of the mount at `path`.
fn idmapped_tree(path: &Path, userns: &OwnedFd) -> SysResult<OwnedFd> {
    let c = cpath(path)?;
    let empty = c"";
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    let tree = i32::try_from(Errno::result(tree)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: u64::try_from(userns.as_raw_fd()).map_err(|_| Errno::EBADF)?,
    };
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is "".
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc)?;
    Ok(tree)
}
