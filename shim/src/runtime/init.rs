//! The container's init process, in the child: namespaces, cgroup, rootfs, spec mounts,
//! devices, console, root switch, hostname, sysctls, then the process settings. Everything
//! here goes through [`Syscalls`], so unit tests run it against the recorder.

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::runtime::launch::ChildReady;
use crate::runtime::mounts::{self, CgroupHierarchy, MountContext};
use crate::runtime::process::{self, Stdio};
use crate::runtime::{devices, hardening, namespaces, rootfs};
use crate::sys::Syscalls;

/// The child's standard descriptors, as the shim prepared them.
#[derive(Clone, Copy, Debug)]
pub enum ChildStdio {
    /// Descriptors for 0, 1, 2.
    Fds([RawFd; 3]),
    /// Allocate a pty in the container and use its slave.
    Terminal,
}

/// Everything the init child needs.
pub struct InitConfig<'a> {
    /// The OCI spec.
    pub spec: &'a Spec,
    /// Its namespaces.
    pub ns: &'a namespaces::Plan,
    /// `<bundle>/rootfs` (or the spec's root.path), absolute.
    pub rootfs: &'a Path,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Stdio.
    pub stdio: ChildStdio,
    /// cgroup.procs files to join.
    pub cgroup_procs: &'a [PathBuf],
    /// cgroup hierarchies for a `cgroup` mount.
    pub cgroups: &'a [CgroupHierarchy],
    /// cgroup v2 host.
    pub cgroup_v2: bool,
}

/// Joins each cgroup by writing "0" (this process) to its cgroup.procs.
pub fn join_cgroup(sys: &dyn Syscalls, procs: &[PathBuf]) -> Result<()> {
    for f in procs {
        sys.write_file(f, b"0")
            .map_err(|e| Error::sys("join cgroup", f, e))?;
    }
    Ok(())
}

/// Opens a pty in the container (its own devpts when mounted) and returns the master
/// and the slave, opened.
pub fn open_terminal(sys: &dyn Syscalls, dev_root: &Path) -> Result<(OwnedFd, OwnedFd, PathBuf)> {
    let own = dev_root.join("dev/pts/ptmx");
    let ptmx = match sys.is_dir(&own) {
        Ok(Some(false)) => own,
        _ => PathBuf::from("/dev/ptmx"),
    };
    let (master, slave_path) = sys
        .open_pty(&ptmx)
        .map_err(|e| Error::sys("open pty", &ptmx, e))?;
    let slave = sys
        .open_rw(&slave_path)
        .map_err(|e| Error::sys("open pty slave", &slave_path, e))?;
    Ok((master, slave, slave_path))
}

/// Runs the whole setup of the init process; the result is what exec needs.
pub fn setup(sys: &dyn Syscalls, cfg: &InitConfig<'_>) -> Result<ChildReady> {
    let spec = cfg.spec;
    let linux = spec.linux().as_ref();
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Spec("the spec has no process".into()))?;
    if cfg.ns.user {
        crate::runtime::userns::become_root(sys, spec)?;
    }
    namespaces::join(sys, cfg.ns)?;
    join_cgroup(sys, cfg.cgroup_procs)?;
    namespaces::enter_cgroupns(sys, cfg.ns)?;
    let propagation =
        rootfs::root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?;
    let readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    let terminal = matches!(cfg.stdio, ChildStdio::Terminal);
    let mut pty = None;
    if cfg.ns.mount {
        rootfs::prepare(sys, cfg.rootfs, propagation)?;
        let ctx = MountContext {
            rootfs: cfg.rootfs,
            cgroupns: cfg.ns.new_cgroupns || cfg.ns.cgroup_path.is_some(),
            netns: cfg.ns.net,
            cgroups: cfg.cgroups,
            cgroup_v2: cfg.cgroup_v2,
            userns: cfg.ns.user,
        };
        let mut dev_tmpfs = false;
        for m in spec.mounts().as_deref().unwrap_or(&[]) {
            mounts::mount_spec(sys, &ctx, m)?;
            if m.destination() == Path::new("/dev") {
                let bind = mounts::parse_options(m.options().as_deref().unwrap_or(&[])).is_bind();
                dev_tmpfs = !bind && m.typ().as_deref() != Some("bind");
            }
        }
        if dev_tmpfs {
            devices::create_devices(sys, cfg.rootfs, &devices::default_devices())?;
            devices::create_symlinks(sys, cfg.rootfs)?;
        }
        let spec_devices = linux
            .and_then(|l| l.devices().as_ref())
            .map(|d| d.iter().map(devices::from_spec).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        devices::create_devices(sys, cfg.rootfs, &spec_devices)?;
        if terminal {
            let (master, slave, slave_path) = open_terminal(sys, cfg.rootfs)?;
            devices::bind_console(sys, cfg.rootfs, &slave_path)?;
            pty = Some((master, slave));
        }
        rootfs::switch(sys, cfg.rootfs, cfg.no_pivot, propagation, readonly)?;
    } else if terminal {
        let (master, slave, _) = open_terminal(sys, Path::new("/"))?;
        pty = Some((master, slave));
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty())
        && cfg.ns.new_uts
    {
        sys.sethostname(h)
            .map_err(|e| Error::sys("sethostname", h, e))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty())
        && cfg.ns.new_uts
    {
        sys.setdomainname(d)
            .map_err(|e| Error::sys("setdomainname", d, e))?;
    }
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let path = Path::new("/proc/sys").join(k.replace('.', "/"));
            sys.write_file(&path, v.as_bytes())
                .map_err(|e| Error::sys("write sysctl", &path, e))?;
        }
    }
    hardening::apply_container(sys, spec)?;
    let stdio = match (cfg.stdio, &pty) {
        (ChildStdio::Fds(fds), _) => Stdio::Fds(fds),
        (ChildStdio::Terminal, Some((_, slave))) => Stdio::Terminal(crate::sys::linux::raw(slave)),
        (ChildStdio::Terminal, None) => unreachable!("a terminal was opened above"),
    };
    // Process settings first: what they log must reach the shim's log, not the
    // container's stderr.
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    let prepared = process::prepare(sys, process, seccomp)?;
    process::setup_stdio(sys, stdio)?;
    Ok(ChildReady {
        prepared,
        pty_master: pty.map(|(m, _)| m),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Recorder;

    const SPEC: &str = r#"{
      "ociVersion": "1.0.2",
      "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
                  "env": ["PATH=/bin"], "cwd": "/",
                  "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
      "root": {"path": "rootfs", "readonly": true},
      "hostname": "box",
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}
      ],
      "linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/var/run/netns/x"}],
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "maskedPaths": ["/proc/kcore"]
      }
    }"#;

    fn run(stdio: ChildStdio, no_pivot: bool) -> (Recorder, Result<ChildReady>) {
        let spec: Spec = serde_json::from_str(SPEC).unwrap();
        let ns = namespaces::plan(&spec).unwrap();
        let sys = Recorder::new().with_file("/bin/sh");
        let procs = [PathBuf::from("/sys/fs/cgroup/memory/t/c/cgroup.procs")];
        let cfg = InitConfig {
            spec: &spec,
            ns: &ns,
            rootfs: Path::new("/b/rootfs"),
            no_pivot,
            stdio,
            cgroup_procs: &procs,
            cgroups: &[],
            cgroup_v2: false,
        };
        let res = setup(&sys, &cfg);
        (sys, res)
    }

    #[test]
    fn full_sequence_in_order() {
        let (sys, res) = run(ChildStdio::Fds([5, 6, 7]), false);
        let ready = res.unwrap();
        assert_eq!(ready.prepared.exe.to_str().unwrap(), "/bin/sh");
        assert!(ready.pty_master.is_none());
        let calls = sys.calls();
        let pos = |prefix: &str| {
            calls
                .iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("no call {prefix}: {calls:#?}"))
        };
        assert_eq!(calls[0], "setns /var/run/netns/x CLONE_NEWNET");
        assert_eq!(
            calls[1],
            "write_file /sys/fs/cgroup/memory/t/c/cgroup.procs 0"
        );
        assert!(calls[2].starts_with("mount - / - MS_REC | MS_SLAVE"));
        assert!(pos("mount proc /b/rootfs/proc proc") < pos("mknod /b/rootfs/dev/null"));
        assert!(pos("mount devpts /b/rootfs/dev/pts devpts") < pos("pivot_root /b/rootfs"));
        assert!(pos("symlink /b/rootfs/dev/ptmx") < pos("pivot_root"));
        assert!(pos("pivot_root") < pos("sethostname box"));
        assert!(pos("write_file /proc/sys/net/ipv4/ip_forward 1") > pos("pivot_root"));
        assert!(pos("setrlimit") < pos("setuid 0"));
        assert!(pos("setuid 0") < pos("chdir /"));
        assert!(pos("chdir /") < pos("setsid"));
        assert!(pos("setsid") < pos("dup_onto 5 0"));
        // Read-only root after the pivot.
        let ro = calls.iter().rposition(|c| c.contains("MS_RDONLY")).unwrap();
        assert!(ro > pos("pivot_root"));
    }

    #[test]
    fn no_pivot_moves_the_root() {
        let (sys, res) = run(ChildStdio::Fds([5, 6, 7]), true);
        res.unwrap();
        assert!(sys.calls_of("move_root /b/rootfs").len() == 1);
        assert!(sys.calls_of("pivot_root").is_empty());
    }

    #[test]
    fn terminal_gets_console_and_controlling_tty() {
        let (sys, res) = run(ChildStdio::Terminal, false);
        let ready = res.unwrap();
        assert!(ready.pty_master.is_some());
        let calls = sys.calls();
        assert!(calls.contains(&"open_pty /dev/ptmx".to_string()));
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("mount /dev/0 /b/rootfs/dev/console - MS_BIND"))
        );
        assert_eq!(sys.calls_of("set_controlling_terminal").len(), 1);
    }

    #[test]
    fn failing_mount_is_reported_with_its_path() {
        let spec: Spec = serde_json::from_str(SPEC).unwrap();
        let ns = namespaces::plan(&spec).unwrap();
        let sys = Recorder::new();
        sys.fail("mount", crate::sys::Errno::EPERM);
        let cfg = InitConfig {
            spec: &spec,
            ns: &ns,
            rootfs: Path::new("/b/rootfs"),
            no_pivot: false,
            stdio: ChildStdio::Fds([0, 1, 2]),
            cgroup_procs: &[],
            cgroups: &[],
            cgroup_v2: false,
        };
        let err = setup(&sys, &cfg).err().unwrap().to_string();
        assert!(err.contains("set propagation of /"), "{err}");
    }

    #[test]
    fn user_namespace_child_becomes_root_and_leaves_the_cgroup_to_the_shim() {
        let mut spec: Spec = serde_json::from_str(SPEC).unwrap();
        let mut v = serde_json::to_value(&spec).unwrap();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = v["linux"]["uidMappings"].clone();
        spec = serde_json::from_value(v).unwrap();
        let ns = namespaces::plan(&spec).unwrap();
        assert!(ns.join.is_empty(), "the shim joins the paths");
        let sys = Recorder::new().with_file("/bin/sh");
        let cfg = InitConfig {
            spec: &spec,
            ns: &ns,
            rootfs: Path::new("/b/rootfs"),
            no_pivot: false,
            stdio: ChildStdio::Fds([5, 6, 7]),
            cgroup_procs: &[],
            cgroups: &[],
            cgroup_v2: false,
        };
        setup(&sys, &cfg).unwrap();
        let calls = sys.calls();
        assert_eq!(calls[0], "setgid 0");
        assert_eq!(calls[1], "setuid 0");
        assert!(sys.calls_of("write_file /sys/fs/cgroup").is_empty());
        assert!(sys.calls_of("setns").is_empty());
    }
}
