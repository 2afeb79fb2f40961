//! Performing mount lists: `mount_all`, `unmount`, a guard that unmounts on drop, and the
//! read-only conversion used for diffs. This is the only place of the crate that mounts.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::types::Mount;

/// Mount flags selected by option words; everything else is file-system data.
fn flag_of(option: &str) -> Option<(bool, MsFlags)> {
    // (clear?, flag)
    Some(match option {
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "atime" => (true, MsFlags::MS_NOATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "defaults" => (false, MsFlags::empty()),
        "dev" => (true, MsFlags::MS_NODEV),
        "diratime" => (true, MsFlags::MS_NODIRATIME),
        "dirsync" => (false, MsFlags::MS_DIRSYNC),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "mand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "nodev" => (false, MsFlags::MS_NODEV),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "nomand" => (true, MsFlags::MS_MANDLOCK),
        "norelatime" => (true, MsFlags::MS_RELATIME),
        "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "rbind" => (false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "remount" => (false, MsFlags::MS_REMOUNT),
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "suid" => (true, MsFlags::MS_NOSUID),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        _ => return None,
    })
}

fn propagation_of(option: &str) -> Option<MsFlags> {
    Some(match option {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

struct Parsed {
    flags: MsFlags,
    propagation: MsFlags,
    data: Vec<String>,
}

fn parse(options: &[String]) -> Parsed {
    let mut p = Parsed {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
    };
    for o in options {
        if let Some((clear, f)) = flag_of(o) {
            if clear {
                p.flags.remove(f);
            } else {
                p.flags.insert(f);
            }
        } else if let Some(f) = propagation_of(o) {
            p.propagation.insert(f);
        } else {
            p.data.push(o.clone());
        }
    }
    p
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|v| v as usize)
        .unwrap_or(4096)
}

/// Rewrites a too long overlay `lowerdir=` to `/proc/self/fd/N` paths of opened directories
/// (mount data is limited to one page). The returned fds must stay open until mount returns.
fn shorten_lowerdirs(data: &mut [String]) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for option in data.iter_mut() {
        let Some(list) = option.strip_prefix("lowerdir=") else {
            continue;
        };
        let mut short = Vec::new();
        for dir in list.split(':') {
            let fd = open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::errno(format!("open lower directory {dir}"), e))?;
            short.push(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            fds.push(fd);
        }
        *option = format!("lowerdir={}", short.join(":"));
    }
    Ok(fds)
}

/// Mounts one entry of a mount list on `target`.
pub fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let mut p = parse(&m.options);
    let ctx = || format!("mount {} {} on {}", m.kind, m.source, target.display());
    let bind = m.kind == "bind" || p.flags.contains(MsFlags::MS_BIND);
    if bind {
        p.flags.insert(MsFlags::MS_BIND);
        // A bind mount ignores most flags on creation; apply them with a remount.
        nix::mount::mount(
            Some(m.source.as_str()),
            target,
            None::<&str>,
            p.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(|e| Error::Mount {
            context: ctx(),
            source: e,
        })?;
        let extra = p.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            nix::mount::mount(
                None::<&str>,
                target,
                None::<&str>,
                extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(|e| {
                let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
                Error::Mount {
                    context: format!("remount {} with {extra:?}", target.display()),
                    source: e,
                }
            })?;
        }
    } else {
        let mut data = p.data.join(",");
        let mut _fds = Vec::new();
        if m.kind == "overlay" && data.len() >= page_size() {
            _fds = shorten_lowerdirs(&mut p.data)?;
            data = p.data.join(",");
        }
        nix::mount::mount(
            Some(m.source.as_str()),
            target,
            Some(m.kind.as_str()),
            p.flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(|e| Error::Mount {
            context: ctx(),
            source: e,
        })?;
    }
    if !p.propagation.is_empty() {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            p.propagation,
            None::<&str>,
        )
        .map_err(|e| Error::Mount {
            context: format!("set propagation of {}", target.display()),
            source: e,
        })?;
    }
    Ok(())
}

/// Mounts every entry of `mounts` on `target`, in order (later ones stack on earlier ones).
/// On failure the ones already mounted are undone.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                let _ = unmount_once(target, MntFlags::empty());
            }
            return Err(e);
        }
    }
    Ok(())
}

fn unmount_once(target: &Path, flags: MntFlags) -> std::result::Result<(), Errno> {
    let mut attempts = 0;
    loop {
        match nix::mount::umount2(target, flags) {
            Err(Errno::EBUSY) if attempts < 50 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// Unmounts everything mounted on `target` (stacked mounts included). Not being a mount
/// point is not an error.
pub fn unmount(target: &Path) -> Result<()> {
    loop {
        match unmount_once(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(Error::Mount {
                    context: format!("unmount {}", target.display()),
                    source: e,
                });
            }
        }
    }
}

/// A mounted mount list that is unmounted when dropped (lazily if it is busy).
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
    mounted: bool,
}

impl MountGuard {
    /// Mounts `mounts` on `target` and guards them.
    pub fn mount(mounts: &[Mount], target: &Path) -> Result<Self> {
        mount_all(mounts, target)?;
        Ok(MountGuard {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    /// Where the mounts are.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting errors.
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        unmount(&self.target)
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.mounted
            && let Err(e) = unmount(&self.target)
        {
            tracing::warn!(target = %self.target.display(), error = %e, "unmount failed, detaching");
            let _ = nix::mount::umount2(&self.target, MntFlags::MNT_DETACH);
        }
    }
}

/// A mount list mounted on a fresh temporary directory; unmounted and removed on drop.
#[derive(Debug)]
pub struct TempMount {
    // Field order matters: unmount before removing the directory.
    guard: Option<MountGuard>,
    dir: Option<tempfile::TempDir>,
}

impl TempMount {
    /// Mounts `mounts` on a new directory inside `parent` (the system temp dir when `None`).
    pub fn new(mounts: &[Mount], parent: Option<&Path>) -> Result<Self> {
        let mut b = tempfile::Builder::new();
        b.prefix("berth-mount-");
        let dir = match parent {
            Some(p) => b.tempdir_in(p),
            None => b.tempdir(),
        }
        .map_err(|e| Error::io("create a temporary mount point", e))?;
        let guard = MountGuard::mount(mounts, dir.path())?;
        Ok(TempMount {
            guard: Some(guard),
            dir: Some(dir),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.guard
            .as_ref()
            .map(|g| g.path())
            .unwrap_or(Path::new(""))
    }

    /// Unmounts and removes the directory, reporting errors.
    pub fn close(mut self) -> Result<()> {
        if let Some(g) = self.guard.take() {
            g.unmount()?;
        }
        if let Some(d) = self.dir.take() {
            d.close()
                .map_err(|e| Error::io("remove temporary mount point", e))?;
        }
        Ok(())
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Some(d) = self.dir.take() {
            // Only remove the (now empty) mount point, never what might still be mounted.
            let path = d.keep();
            let _ = fs::remove_dir(&path);
        }
    }
}

/// The same mounts, read-only: bind mounts get `ro`, an overlay with an upper directory
/// becomes a read-only overlay with the upper directory as its newest lower layer.
pub fn read_only(mounts: &[Mount]) -> Vec<Mount> {
    mounts
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if m.kind == "overlay" {
                if let Some(upper) = m.option_value("upperdir").map(str::to_string) {
                    let lower = m.option_value("lowerdir").map(str::to_string);
                    m.options.retain(|o| {
                        !o.starts_with("upperdir=")
                            && !o.starts_with("workdir=")
                            && !o.starts_with("lowerdir=")
                    });
                    let lowers = match lower {
                        Some(l) if !l.is_empty() => format!("{upper}:{l}"),
                        _ => upper,
                    };
                    m.options.push(format!("lowerdir={lowers}"));
                }
                return m;
            }
            m.options.retain(|o| o != "rw" && o != "ro");
            m.options.push("ro".into());
            m
        })
        .collect()
}
