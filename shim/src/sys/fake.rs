//! [`Recorder`]: a [`Syscalls`] that performs nothing and records every call as one
//! line of text, for unit tests of the runtime. Failures can be scripted per call name.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::{
    CapSets, CloneFlags, Errno, MntFlags, MsFlags, NodeKind, SockFilter, SysResult, Syscalls,
};

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
    bounding: Option<u64>,
    mount_flags: HashMap<PathBuf, MsFlags>,
    programs: RefCell<Vec<Vec<SockFilter>>>,
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

    /// Declares the bounding set (default: capabilities 0 to 40).
    pub fn with_bounding(mut self, mask: u64) -> Recorder {
        self.bounding = Some(mask);
        self
    }

    /// Declares the mount flags of the filesystem at `path`.
    pub fn with_mount_flags(mut self, path: impl Into<PathBuf>, flags: MsFlags) -> Recorder {
        self.mount_flags.insert(path.into(), flags);
        self
    }

    /// The seccomp programs loaded so far.
    pub fn programs(&self) -> Vec<Vec<SockFilter>> {
        self.programs.borrow().clone()
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

fn join(root: &Path, rel: &Path) -> PathBuf {
    root.join(rel.strip_prefix("/").unwrap_or(rel))
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

    fn mount_in_root(
        &self,
        root: &Path,
        rel: &Path,
        source: Option<&Path>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        self.mount(source, &join(root, rel), fstype, flags, data)
    }

    fn mkdir_in_root(&self, root: &Path, rel: &Path, mode: u32) -> SysResult<()> {
        self.mkdir_all(&join(root, rel), mode)
    }

    fn touch_in_root(&self, root: &Path, rel: &Path) -> SysResult<()> {
        self.touch(&join(root, rel))
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
        self.mknod(&join(root, rel), kind, perm, major, minor)
    }

    fn lchown_in_root(&self, root: &Path, rel: &Path, uid: u32, gid: u32) -> SysResult<()> {
        self.lchown(&join(root, rel), uid, gid)
    }

    fn symlink_in_root(&self, root: &Path, target: &Path, rel: &Path) -> SysResult<()> {
        self.symlink(target, &join(root, rel))
    }

    fn mount_flags(&self, path: &Path) -> SysResult<MsFlags> {
        Ok(self
            .mount_flags
            .get(path)
            .copied()
            .unwrap_or(MsFlags::empty()))
    }

    fn set_dumpable(&self, on: bool) -> SysResult<()> {
        self.record("set_dumpable", format!("set_dumpable {on}"))
    }

    fn set_no_new_privs(&self) -> SysResult<()> {
        self.record("set_no_new_privs", "set_no_new_privs".to_string())
    }

    fn set_keepcaps(&self, on: bool) -> SysResult<()> {
        self.record("set_keepcaps", format!("set_keepcaps {on}"))
    }

    fn cap_bounding(&self) -> SysResult<u64> {
        Ok(self.bounding.unwrap_or((1u64 << 41) - 1))
    }

    fn cap_drop_bounding(&self, cap: u32) -> SysResult<()> {
        self.record("cap_drop_bounding", format!("cap_drop_bounding {cap}"))
    }

    fn capset(&self, sets: CapSets) -> SysResult<()> {
        self.record(
            "capset",
            format!(
                "capset e={:#x} p={:#x} i={:#x}",
                sets.effective, sets.permitted, sets.inheritable
            ),
        )
    }

    fn cap_ambient_clear(&self) -> SysResult<()> {
        self.record("cap_ambient_clear", "cap_ambient_clear".to_string())
    }

    fn cap_ambient_raise(&self, cap: u32) -> SysResult<()> {
        self.record("cap_ambient_raise", format!("cap_ambient_raise {cap}"))
    }

    fn seccomp_load(&self, program: &[SockFilter], flags: u32) -> SysResult<()> {
        self.record(
            "seccomp_load",
            format!("seccomp_load {} {flags}", program.len()),
        )?;
        self.programs.borrow_mut().push(program.to_vec());
        Ok(())
    }

    fn getcwd(&self) -> SysResult<PathBuf> {
        Ok(self
            .calls
            .borrow()
            .iter()
            .rev()
            .find_map(|c| c.strip_prefix("chdir ").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/")))
    }

    fn close_fds_except(&self, first: RawFd, keep: &[RawFd]) -> SysResult<()> {
        self.record(
            "close_fds_except",
            format!("close_fds_except {first} {keep:?}"),
        )
    }
}
