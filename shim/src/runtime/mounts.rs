//! Mounts: mount(8)-style option parsing, path resolution inside the rootfs, and the
//! spec's `mounts` (proc, sysfs, tmpfs, devpts, mqueue, cgroup, bind mounts).

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::error::{Error, Result};
use crate::sys::{Errno, MsFlags, Syscalls};

/// A mount's options split into kernel flags, propagation changes and fs data.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Flags for the mount call (MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...).
    pub flags: MsFlags,
    /// Propagation changes, each its own mount call afterwards.
    pub propagation: Vec<MsFlags>,
    /// Options the filesystem interprets (`mode=755`, `lowerdir=...`).
    pub data: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl Options {
    /// True for bind and rbind mounts.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// The data options joined by commas, `None` when there are none.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// Flags other than bind/rec: those a bind mount needs a remount for.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// Parses mount(8) option words.
pub fn parse_options<S: AsRef<str>>(options: &[S]) -> Options {
    let mut out = Options::default();
    for opt in options {
        let opt = opt.as_ref();
        let (set, flag) = match opt {
            "ro" => (true, MsFlags::MS_RDONLY),
            "rw" => (false, MsFlags::MS_RDONLY),
            "nosuid" => (true, MsFlags::MS_NOSUID),
            "suid" => (false, MsFlags::MS_NOSUID),
            "nodev" => (true, MsFlags::MS_NODEV),
            "dev" => (false, MsFlags::MS_NODEV),
            "noexec" => (true, MsFlags::MS_NOEXEC),
            "exec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (true, MsFlags::MS_SYNCHRONOUS),
            "async" => (false, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (true, MsFlags::MS_DIRSYNC),
            "remount" => (true, MsFlags::MS_REMOUNT),
            "mand" => (true, MsFlags::MS_MANDLOCK),
            "nomand" => (false, MsFlags::MS_MANDLOCK),
            "noatime" => (true, MsFlags::MS_NOATIME),
            "atime" => (false, MsFlags::MS_NOATIME),
            "nodiratime" => (true, MsFlags::MS_NODIRATIME),
            "diratime" => (false, MsFlags::MS_NODIRATIME),
            "relatime" => (true, MsFlags::MS_RELATIME),
            "norelatime" => (false, MsFlags::MS_RELATIME),
            "strictatime" => (true, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
            "bind" => (true, MsFlags::MS_BIND),
            "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
            "defaults" => continue,
            other => {
                if let Some(p) = propagation_flag(other) {
                    out.propagation.push(p);
                } else {
                    out.data.push(other.to_string());
                }
                continue;
            }
        };
        if set {
            out.flags |= flag;
        } else {
            out.flags -= flag;
        }
    }
    out
}

/// The flags of a propagation word (`rprivate`, `shared`, ...).
pub fn propagation_flag(word: &str) -> Option<MsFlags> {
    Some(match word {
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

/// Resolves `path` (absolute inside the container) to a host path under `root`,
/// following symlinks as if `root` were `/`, so that no symlink leads out of it.
pub fn resolve_in_root(sys: &dyn Syscalls, root: &Path, path: &Path) -> Result<PathBuf> {
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = components(path);
    todo.reverse();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&done);
        candidate.push(&c);
        let link = sys
            .read_link(&candidate)
            .map_err(|e| Error::sys("readlink", &candidate, e))?;
        match link {
            None => done.push(c),
            Some(target) => {
                links += 1;
                if links > 40 {
                    return Err(Error::sys("resolve", path, Errno::ELOOP));
                }
                if target.is_absolute() {
                    done.clear();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(out)
}

fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// A host cgroup hierarchy, as the container's `cgroup` mount shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// Directory name under the cgroup mount (`memory`, `cpu,cpuacct`, `systemd`).
    pub name: String,
    /// Filesystem type: `cgroup` or `cgroup2`.
    pub fstype: String,
    /// Options naming the hierarchy's controllers (`memory`, `none,name=systemd`).
    pub options: String,
    /// The container's own cgroup directory in this hierarchy, on the host.
    pub host_dir: PathBuf,
}

/// What the spec mounts need besides the spec.
pub struct MountContext<'a> {
    /// Host path of the rootfs.
    pub rootfs: &'a Path,
    /// The container has a new cgroup namespace (cgroup filesystems can be mounted).
    pub cgroupns: bool,
    /// The container has a new network namespace (sysfs can be mounted).
    pub netns: bool,
    /// cgroup hierarchies for a `cgroup` mount.
    pub cgroups: &'a [CgroupHierarchy],
    /// True on a cgroup v2 (unified) host.
    pub cgroup_v2: bool,
    /// The container has its own user namespace.
    pub userns: bool,
}

/// `host` (a path under `root` from [`resolve_in_root`]) relative to `root`.
pub fn relative_to<'a>(root: &Path, host: &'a Path) -> &'a Path {
    host.strip_prefix(root).unwrap_or(host)
}

/// Performs one spec mount under the rootfs. The destination is resolved in user space
/// first (for the directories to create), then again by the kernel beneath the rootfs
/// at each operation, so that a symlink swapped in meanwhile cannot lead out of it.
pub fn mount_spec(sys: &dyn Syscalls, ctx: &MountContext<'_>, m: &Mount) -> Result<()> {
    let resolved = resolve_in_root(sys, ctx.rootfs, m.destination())?;
    let root = ctx.rootfs;
    let dest = relative_to(root, &resolved);
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let fstype = m.typ().as_deref().unwrap_or("");
    let source = m.source().clone();
    if opts.is_bind() || fstype == "bind" {
        let src = source.ok_or_else(|| {
            Error::Spec(format!(
                "bind mount {} has no source",
                m.destination().display()
            ))
        })?;
        bind(sys, &src, root, dest, &opts)?;
    } else if fstype == "cgroup" || fstype == "cgroup2" {
        mount_cgroups(sys, ctx, dest, &opts)?;
    } else {
        mkdir(sys, root, dest)?;
        let data = opts.data_string();
        let res = sys.mount_in_root(
            root,
            dest,
            source.as_deref(),
            Some(fstype),
            opts.flags,
            data.as_deref(),
        );
        match res {
            Ok(()) => {}
            // Without its own network namespace (or in a user namespace that does not
            // own the network namespace) a container may not mount sysfs: show the
            // host's read-only instead.
            Err(Errno::EPERM) if fstype == "sysfs" && (!ctx.netns || ctx.userns) => {
                let ro = parse_options(&["rbind", "ro", "nosuid", "nodev", "noexec"]);
                bind(sys, Path::new("/sys"), root, dest, &ro)?;
            }
            Err(e) => return Err(Error::sys("mount", root.join(dest), e)),
        }
    }
    for p in &opts.propagation {
        sys.mount_in_root(root, dest, None, None, *p, None)
            .map_err(|e| Error::sys("set propagation of", root.join(dest), e))?;
    }
    Ok(())
}

fn mkdir(sys: &dyn Syscalls, root: &Path, dest: &Path) -> Result<()> {
    sys.mkdir_in_root(root, dest, 0o755)
        .map_err(|e| Error::sys("mkdir", root.join(dest), e))
}

/// Remounts the bind mount at `root`/`dest` with `flags`; when the kernel refuses
/// (flags locked by a user namespace), again with the flags the mount has added.
fn remount(sys: &dyn Syscalls, root: &Path, dest: &Path, flags: MsFlags) -> Result<()> {
    let flags = flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match sys.mount_in_root(root, dest, None, None, flags, None) {
        Err(Errno::EPERM) => {
            let host = root.join(dest);
            let locked = sys
                .mount_flags(&host)
                .map_err(|e| Error::sys("statfs", &host, e))?;
            sys.mount_in_root(root, dest, None, None, flags | locked, None)
        }
        other => other,
    }
    .map_err(|e| Error::sys("remount", root.join(dest), e))
}

/// Bind-mounts `src` on `root`/`dest` (creating a file or directory to mount on), then
/// remounts with the other flags (read-only, nosuid...) when there are any.
pub fn bind(
    sys: &dyn Syscalls,
    src: &Path,
    root: &Path,
    dest: &Path,
    opts: &Options,
) -> Result<()> {
    match sys.is_dir(src).map_err(|e| Error::sys("stat", src, e))? {
        None => return Err(Error::sys("bind mount source", src, Errno::ENOENT)),
        Some(true) => mkdir(sys, root, dest)?,
        Some(false) => {
            if let Some(parent) = dest.parent() {
                mkdir(sys, root, parent)?;
            }
            sys.touch_in_root(root, dest)
                .map_err(|e| Error::sys("create", root.join(dest), e))?;
        }
    }
    let rec = opts.flags & MsFlags::MS_REC;
    sys.mount_in_root(root, dest, Some(src), None, MsFlags::MS_BIND | rec, None)
        .map_err(|e| Error::sys("bind mount", root.join(dest), e))?;
    let extra = opts.remount_flags();
    if !extra.is_empty() {
        remount(sys, root, dest, rec | extra)?;
    }
    Ok(())
}

/// The `cgroup` mount: on cgroup v2 one cgroup2 filesystem; on v1 a tmpfs holding one
/// directory per hierarchy. With a cgroup namespace each is a fresh cgroup filesystem
/// (rooted at the container's cgroup); without one, the container's own cgroup
/// directory is bind-mounted from the host.
fn mount_cgroups(
    sys: &dyn Syscalls,
    ctx: &MountContext<'_>,
    dest: &Path,
    opts: &Options,
) -> Result<()> {
    let root = ctx.rootfs;
    mkdir(sys, root, dest)?;
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    if ctx.cgroup_v2 {
        if ctx.cgroupns {
            return sys
                .mount_in_root(
                    root,
                    dest,
                    Some(Path::new("cgroup2")),
                    Some("cgroup2"),
                    flags,
                    None,
                )
                .map_err(|e| Error::sys("mount", root.join(dest), e));
        }
        if let Some(h) = ctx.cgroups.first() {
            let ro = Options {
                flags: MsFlags::MS_BIND | flags,
                ..Options::default()
            };
            return bind(sys, &h.host_dir, root, dest, &ro);
        }
        return Ok(());
    }
    sys.mount_in_root(
        root,
        dest,
        Some(Path::new("tmpfs")),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(|e| Error::sys("mount", root.join(dest), e))?;
    for h in ctx.cgroups {
        let target = dest.join(&h.name);
        if ctx.cgroupns {
            mkdir(sys, root, &target)?;
            sys.mount_in_root(
                root,
                &target,
                Some(Path::new("cgroup")),
                Some(&h.fstype),
                flags,
                Some(&h.options),
            )
            .map_err(|e| Error::sys("mount", root.join(&target), e))?;
        } else {
            let o = Options {
                flags: MsFlags::MS_BIND | flags,
                ..Options::default()
            };
            bind(sys, &h.host_dir, root, &target, &o)?;
        }
        // `cpu,cpuacct` is also reachable as `cpu` and `cpuacct`.
        if h.name.contains(',') {
            for part in h.name.split(',') {
                let _ = sys.symlink_in_root(root, Path::new(&h.name), &dest.join(part));
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(sys, root, dest, flags)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Recorder;

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse_options(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        let b = parse_options(&["rbind", "ro"]);
        assert!(b.is_bind());
        assert_eq!(b.remount_flags(), MsFlags::MS_RDONLY);
        assert_eq!(parse_options(&["ro", "rw"]).flags, MsFlags::empty());
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let sys = Recorder::new()
            .with_link("/r/etc/evil", "/../../host")
            .with_link("/r/a", "b/c")
            .with_link("/r/b/c", "../d");
        assert_eq!(
            resolve_in_root(&sys, Path::new("/r"), Path::new("/etc/evil/x")).unwrap(),
            PathBuf::from("/r/host/x")
        );
        assert_eq!(
            resolve_in_root(&sys, Path::new("/r"), Path::new("/a/f")).unwrap(),
            PathBuf::from("/r/d/f")
        );
        assert_eq!(
            resolve_in_root(&sys, Path::new("/r"), Path::new("/../../x")).unwrap(),
            PathBuf::from("/r/x")
        );
    }

    #[test]
    fn symlink_loops_fail() {
        let sys = Recorder::new().with_link("/r/a", "/a");
        assert!(resolve_in_root(&sys, Path::new("/r"), Path::new("/a")).is_err());
    }

    #[test]
    fn read_only_file_bind_mount_is_remounted() {
        let sys = Recorder::new().with_file("/etc/hosts");
        let opts = parse_options(&["rbind", "ro"]);
        bind(
            &sys,
            Path::new("/etc/hosts"),
            Path::new("/r"),
            Path::new("etc/hosts"),
            &opts,
        )
        .unwrap();
        let calls = sys.calls();
        assert_eq!(calls[0], "mkdir_all /r/etc 755");
        assert_eq!(calls[1], "touch /r/etc/hosts");
        assert!(calls[2].starts_with("mount /etc/hosts /r/etc/hosts - MS_BIND | MS_REC"));
        assert!(calls[3].contains("MS_RDONLY") && calls[3].contains("MS_REMOUNT"));
    }

    #[test]
    fn sysfs_falls_back_to_a_bind_without_netns() {
        let sys = Recorder::new().with_dir("/sys");
        sys.fail("mount", Errno::EPERM);
        let m: Mount = serde_json::from_str(
            r#"{"destination":"/sys","type":"sysfs","source":"sysfs","options":["ro"]}"#,
        )
        .unwrap();
        let ctx = MountContext {
            rootfs: Path::new("/r"),
            cgroupns: false,
            netns: false,
            cgroups: &[],
            cgroup_v2: false,
            userns: false,
        };
        // The fallback bind is attempted (and fails too here, as every mount does).
        assert!(mount_spec(&sys, &ctx, &m).is_err());
        let mounts = sys.calls_of("mount");
        assert_eq!(mounts.len(), 2);
        assert!(mounts[1].starts_with("mount /sys /r/sys - MS_BIND | MS_REC"));
    }

    #[test]
    fn cgroup_v1_without_namespace_binds_own_dirs() {
        let sys = Recorder::new().with_dir("/sys/fs/cgroup/memory/t/c");
        let cg = [CgroupHierarchy {
            name: "memory".into(),
            fstype: "cgroup".into(),
            options: "memory".into(),
            host_dir: "/sys/fs/cgroup/memory/t/c".into(),
        }];
        let ctx = MountContext {
            rootfs: Path::new("/r"),
            cgroupns: false,
            netns: true,
            cgroups: &cg,
            cgroup_v2: false,
            userns: false,
        };
        let m: Mount = serde_json::from_str(
            r#"{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro","nosuid"]}"#,
        )
        .unwrap();
        mount_spec(&sys, &ctx, &m).unwrap();
        let mounts = sys.calls_of("mount");
        assert!(mounts[0].contains("tmpfs"));
        assert!(
            mounts[1]
                .starts_with("mount /sys/fs/cgroup/memory/t/c /r/sys/fs/cgroup/memory - MS_BIND")
        );
        assert!(mounts.last().unwrap().contains("MS_REMOUNT"));
    }
}
