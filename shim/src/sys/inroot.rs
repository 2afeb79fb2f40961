//! Paths beneath a root: every lookup goes through openat2(2) with RESOLVE_IN_ROOT (and
//! no magic links), so `..` and symlinks, absolute or relative, stay inside the root even
//! when a component is swapped for a symlink while the runtime works (the CVE-2021-30465
//! class). Operations then act on the descriptor they resolved: mounts go onto
//! `/proc/self/fd/N`, creations use the *at calls on the resolved parent.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::{Errno, SysResult};

/// The flags every lookup uses.
fn resolve() -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// `rel` as a relative path ("." for the root itself).
fn relative(rel: &Path) -> PathBuf {
    let p: PathBuf = rel
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    }
}

/// Opens `root` as an O_PATH directory.
pub fn open_root(root: &Path) -> SysResult<OwnedFd> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Resolves `rel` beneath the directory `root` and opens it with `flags` (O_PATH unless
/// given otherwise). A final symlink is followed, inside the root.
pub fn open_beneath(root: &impl AsFd, rel: &Path, flags: OFlag) -> SysResult<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve());
    loop {
        match nix::fcntl::openat2(root.as_fd(), &relative(rel), how) {
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// [`open_beneath`] from a root path.
pub fn open_in_root(root: &Path, rel: &Path, flags: OFlag) -> SysResult<OwnedFd> {
    let r = open_root(root)?;
    open_beneath(&r, rel, flags)
}

/// The `/proc/self/fd/N` path of a descriptor (for mount(2) targets).
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The resolved parent directory of `rel` and the last component's name.
pub fn parent_of(root: &Path, rel: &Path) -> SysResult<(OwnedFd, std::ffi::OsString)> {
    let rel = relative(rel);
    let name = match rel.components().next_back() {
        Some(Component::Normal(n)) => n.to_os_string(),
        _ => return Err(Errno::EINVAL),
    };
    let parent = rel.parent().unwrap_or(Path::new("."));
    let fd = open_in_root(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    Ok((fd, name))
}

/// mkdir -p beneath the root: each missing component is created with mkdirat(2) in
/// its resolved parent; a dangling symlink on the way is followed (inside the root) and
/// its target created.
pub fn mkdir_all(root: &Path, rel: &Path, mode: u32) -> SysResult<()> {
    let r = open_root(root)?;
    let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut todo: Vec<std::ffi::OsString> = relative(rel)
        .components()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    todo.reverse();
    let mut done = PathBuf::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == "." {
            continue;
        }
        let candidate = done.join(&name);
        match open_beneath(&r, &candidate, dir) {
            Ok(_) => {
                done = candidate;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = open_beneath(&r, &done, dir)?;
        match nix::sys::stat::mkdirat(
            parent.as_fd(),
            name.as_os_str(),
            Mode::from_bits_truncate(mode),
        ) {
            Ok(()) => {
                done = candidate;
                continue;
            }
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        // Something is there but does not resolve: a dangling symlink.
        let target = nix::fcntl::readlinkat(parent.as_fd(), name.as_os_str())?;
        links += 1;
        if links > 40 {
            return Err(Errno::ELOOP);
        }
        let target = PathBuf::from(target);
        if target.is_absolute() {
            done = PathBuf::new();
        }
        let mut more: Vec<std::ffi::OsString> = relative(&target)
            .components()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        more.reverse();
        todo.extend(more);
    }
    Ok(())
}

fn exists_at(dir: &OwnedFd, name: &OsStr) -> SysResult<bool> {
    match nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates an empty regular file beneath the root when nothing is there.
pub fn touch(root: &Path, rel: &Path) -> SysResult<()> {
    let (dir, name) = parent_of(root, rel)?;
    if exists_at(&dir, &name)? {
        return Ok(());
    }
    let fd = nix::fcntl::openat(
        dir.as_fd(),
        name.as_os_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    );
    match fd {
        Ok(_) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// mknod(2) beneath the root, then the exact permission bits.
pub fn mknod(
    root: &Path,
    rel: &Path,
    kind: nix::sys::stat::SFlag,
    perm: u32,
    dev: u64,
) -> SysResult<()> {
    let (dir, name) = parent_of(root, rel)?;
    let mode = Mode::from_bits_truncate(perm);
    nix::sys::stat::mknodat(dir.as_fd(), name.as_os_str(), kind, mode, dev)?;
    // mknod's mode is filtered by the umask; set the bits asked for.
    nix::sys::stat::fchmodat(
        dir.as_fd(),
        name.as_os_str(),
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// chown(2) beneath the root, not following a final symlink.
pub fn lchown(root: &Path, rel: &Path, uid: u32, gid: u32) -> SysResult<()> {
    let (dir, name) = parent_of(root, rel)?;
    nix::unistd::fchownat(
        dir.as_fd(),
        name.as_os_str(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// symlink(2) beneath the root.
pub fn symlink(root: &Path, target: &Path, rel: &Path) -> SysResult<()> {
    let (dir, name) = parent_of(root, rel)?;
    nix::unistd::symlinkat(target, dir.as_fd(), name.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_cannot_leave_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("up")).unwrap();
        mkdir_all(&root, Path::new("/abs/made"), 0o755).unwrap();
        mkdir_all(&root, Path::new("up/x/y"), 0o755).unwrap();
        touch(&root, Path::new("/abs/made/file")).unwrap();
        symlink(&root, Path::new("/etc"), Path::new("/up/x/link")).unwrap();
        assert!(
            !outside.join("made").exists(),
            "escaped through an absolute link"
        );
        let inside = root.join(outside.strip_prefix("/").unwrap());
        assert!(inside.join("made/file").is_file());
        assert!(root.join("x/y").is_dir());
        assert!(root.join("x/link").is_symlink());
        // An O_PATH open of a path through the link lands inside too.
        let fd = open_in_root(&root, Path::new("abs/made"), OFlag::O_PATH).unwrap();
        let real = std::fs::read_link(fd_path(&fd)).unwrap();
        assert!(real.starts_with(&root), "{}", real.display());
    }
}
