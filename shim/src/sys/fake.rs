//! [`Recorder`]: a [`Syscalls`] that performs nothing and records every call as one
//! line of text, for unit tests of the runtime. Failures can be scripted per call name.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::{CloneFlags, Errno, MntFlags, MsFlags, NodeKind, SysResult, Syscalls};

/// Records calls; see the module comment.
#[derive(Default)]
pub struct Recorder {
    calls: RefCell<Vec<String>>,
    failures: RefCell<HashMap<String, Errno>>,
    files: RefCell<HashMap<PathBuf, Vec<u8>>>,
    dirs: HashSet<PathBuf>,
    regular: HashSet<PathBuf>,
    links: HashMap<PathBuf, PathBuf>,
    rlimits: HashMap<i32, (u64, u64)>,
}

impl Recorder {
    /// An empty recorder: every call succeeds, nothing exists.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Makes every later call named `name` (e.g. `"setrlimit"`) fail with `errno`.
    pub fn fail(&self, name: &str, errno: Errno) {
        self.failures.borrow_mut().insert(name.to_string(), errno);
    }

    /// Declares a directory (for [`Syscalls::is_dir`]).
    pub fn with_dir(mut self, path: impl Into<PathBuf>) -> Recorder {
        self.dirs.insert(path.into());
        self
    }

    /// Declares a regular file (for [`Syscalls::is_dir`]).
    pub fn with_file(mut self, path: impl Into<PathBuf>) -> Recorder {
        self.regular.insert(path.into());
        self
    }

    /// Declares a symlink (for [`Syscalls::read_link`]).
    pub fn with_link(mut self, path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Recorder {
        self.links.insert(path.into(), target.into());
        self
    }

    /// Declares the contents of a file (for [`Syscalls::read_file`]).
    pub fn with_contents(self, path: impl Into<PathBuf>, data: &[u8]) -> Recorder {
        self.files.borrow_mut().insert(path.into(), data.to_vec());
        self
    }

    /// Declares the current limits of a resource.
    pub fn with_rlimit(mut self, resource: i32, soft: u64, hard: u64) -> Recorder {
        self.rlimits.insert(resource, (soft, hard));
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    /// The calls whose line starts with `prefix`.
    pub fn calls_of(&self, prefix: &str) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn record(&self, name: &str, line: String) -> SysResult<()> {
        self.calls.borrow_mut().push(line);
        match self.failures.borrow().get(name) {
            Some(e) => Err(*e),
            None => Ok(()),
        }
    }
}

/// `MsFlags(MS_BIND | MS_REC)` -> `MS_BIND | MS_REC`.
fn fl(flags: impl std::fmt::Debug) -> String {
    let s = format!("{flags:?}");
    match (s.find('('), s.ends_with(')')) {
        (Some(i), true) => s[i + 1..s.len() - 1].to_string(),
        _ => s,
    }
}

fn opt(p: Option<&Path>) -> String {
    p.map_or_else(|| "-".to_string(), |p| p.display().to_string())
}

impl Syscalls for Recorder {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        self.record(
            "mount",
            format!(
                "mount {} {} {} {} {}",
                opt(source),
                target.display(),
                fstype.unwrap_or("-"),
                fl(flags),
                data.unwrap_or("-")
            ),
        )
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()> {
        self.record(
            "umount2",
            format!("umount2 {} {}", target.display(), fl(flags)),
        )
    }

    fn unshare(&self, flags: CloneFlags) -> SysResult<()> {
        self.record("unshare", format!("unshare {}", fl(flags)))
    }

    fn setns_path(&self, path: &Path, nstype: CloneFlags) -> SysResult<()> {
        self.record("setns", format!("setns {} {}", path.display(), fl(nstype)))
    }

    fn setns_fd(&self, fd: RawFd, nstype: CloneFlags) -> SysResult<()> {
        self.record("setns", format!("setns fd:{fd} {}", fl(nstype)))
    }

    fn pivot_root(&self, rootfs: &Path) -> SysResult<()> {
        self.record("pivot_root", format!("pivot_root {}", rootfs.display()))
    }

    fn move_root(&self, rootfs: &Path) -> SysResult<()> {
        self.record("move_root", format!("move_root {}", rootfs.display()))
    }

    fn chroot_fd(&self, fd: RawFd) -> SysResult<()> {
        self.record("chroot_fd", format!("chroot_fd {fd}"))
    }

    fn chdir(&self, path: &Path) -> SysResult<()> {
        self.record("chdir", format!("chdir {}", path.display()))
    }

    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> SysResult<()> {
        self.record(
            "mknod",
            format!("mknod {} {kind:?} {perm:o} {major}:{minor}", path.display()),
        )
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> SysResult<()> {
        self.record("lchown", format!("lchown {} {uid}:{gid}", path.display()))
    }

    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()> {
        self.record(
            "symlink",
            format!("symlink {} -> {}", link.display(), target.display()),
        )
    }

    fn mkdir_all(&self, path: &Path, mode: u32) -> SysResult<()> {
        self.record(
            "mkdir_all",
            format!("mkdir_all {} {mode:o}", path.display()),
        )
    }

    fn touch(&self, path: &Path) -> SysResult<()> {
        self.record("touch", format!("touch {}", path.display()))
    }

    fn read_link(&self, path: &Path) -> SysResult<Option<PathBuf>> {
        Ok(self.links.get(path).cloned())
    }

    fn is_dir(&self, path: &Path) -> SysResult<Option<bool>> {
        if self.dirs.contains(path) {
            Ok(Some(true))
        } else if self.regular.contains(path) {
            Ok(Some(false))
        } else {
            Ok(None)
        }
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> SysResult<()> {
        self.record(
            "write_file",
            format!(
                "write_file {} {}",
                path.display(),
                String::from_utf8_lossy(data)
            ),
        )?;
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), data.to_vec());
        Ok(())
    }

    fn read_file(&self, path: &Path) -> SysResult<Vec<u8>> {
        self.files.borrow().get(path).cloned().ok_or(Errno::ENOENT)
    }

    fn sethostname(&self, name: &str) -> SysResult<()> {
        self.record("sethostname", format!("sethostname {name}"))
    }

    fn setdomainname(&self, name: &str) -> SysResult<()> {
        self.record("setdomainname", format!("setdomainname {name}"))
    }

    fn getrlimit(&self, resource: i32) -> SysResult<(u64, u64)> {
        Ok(self
            .rlimits
            .get(&resource)
            .copied()
            .unwrap_or((u64::MAX, u64::MAX)))
    }

    fn setrlimit(&self, resource: i32, soft: u64, hard: u64) -> SysResult<()> {
        self.record("setrlimit", format!("setrlimit {resource} {soft} {hard}"))
    }

    fn setgroups(&self, gids: &[u32]) -> SysResult<()> {
        self.record("setgroups", format!("setgroups {gids:?}"))
    }

    fn setgid(&self, gid: u32) -> SysResult<()> {
        self.record("setgid", format!("setgid {gid}"))
    }

    fn setuid(&self, uid: u32) -> SysResult<()> {
        self.record("setuid", format!("setuid {uid}"))
    }

    fn umask(&self, mask: u32) {
        let _ = self.record("umask", format!("umask {mask:o}"));
    }

    fn setsid(&self) -> SysResult<()> {
        self.record("setsid", "setsid".to_string())
    }

    fn set_controlling_terminal(&self, fd: RawFd) -> SysResult<()> {
        self.record(
            "set_controlling_terminal",
            format!("set_controlling_terminal {fd}"),
        )
    }

    fn dup_onto(&self, fd: RawFd, target: RawFd) -> SysResult<()> {
        self.record("dup_onto", format!("dup_onto {fd} {target}"))
    }

    fn reset_signals(&self) -> SysResult<()> {
        self.record("reset_signals", "reset_signals".to_string())
    }

    fn cloexec_from(&self, first: RawFd) -> SysResult<()> {
        self.record("cloexec_from", format!("cloexec_from {first}"))
    }

    fn open_pty(&self, ptmx: &Path) -> SysResult<(OwnedFd, PathBuf)> {
        self.record("open_pty", format!("open_pty {}", ptmx.display()))?;
        let fd = super::fd::dev_null().map_err(|_| Errno::EIO)?;
        Ok((fd, ptmx.with_file_name("0")))
    }

    fn open_rw(&self, path: &Path) -> SysResult<OwnedFd> {
        self.record("open_rw", format!("open_rw {}", path.display()))?;
        super::fd::dev_null().map_err(|_| Errno::EIO)
    }

    fn execve(&self, path: &CString, argv: &[CString], env: &[CString]) -> Errno {
        let _ = self.record("execve", format!("execve {path:?} {argv:?} {env:?}"));
        self.failures
            .borrow()
            .get("execve")
            .copied()
            .unwrap_or(Errno::ENOSYS)
    }
}
