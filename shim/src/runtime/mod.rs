//! The built-in OCI runtime: builds a container from `<bundle>/config.json` without
//! executing any other program.
//!
//! The shim side ([`Container`]) mounts the rootfs, creates the cgroup and clones the
//! child ([`launch`]); the child side ([`init`], [`exec`]) runs through the
//! [`crate::sys::Syscalls`] trait: [`namespaces`], [`rootfs`], [`mounts`], [`devices`],
//! [`process`], and the placeholders in [`hardening`]. [`cgroups`] and [`stats`] cover
//! resources, freezer and metrics.

pub mod cgroups;
pub mod device_filter;
pub mod devices;
pub mod exec;
pub mod hardening;
pub mod init;
pub mod launch;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod stats;
pub mod userns;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};

use crate::error::{Error, Result};
use crate::sys::{CloneFlags, Syscalls};
use cgroups::ContainerCgroup;
use launch::Created;
use rootfs::RootMount;

/// A container as the shim holds it.
pub struct Container {
    /// Host path of the root filesystem.
    pub rootfs: PathBuf,
    /// The spec.
    pub spec: Spec,
    /// Namespace plan.
    pub ns: namespaces::Plan,
    /// The cgroup.
    pub cgroup: ContainerCgroup,
    no_pivot: bool,
    mounted_rootfs: bool,
}

/// Loads `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| Error::Spec(format!("{}: {e}", path.display())))
}

/// The rootfs path of a spec: root.path, relative to the bundle.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> PathBuf {
    let p = spec
        .root()
        .as_ref()
        .map_or_else(|| PathBuf::from("rootfs"), |r| r.path().clone());
    if p.is_absolute() { p } else { bundle.join(p) }
}

impl Container {
    /// Reads the spec, mounts the rootfs list and creates the cgroup.
    pub fn prepare(
        sys: &dyn Syscalls,
        id: &str,
        namespace: &str,
        bundle: &Path,
        rootfs_mounts: &[RootMount],
        no_pivot: bool,
    ) -> Result<Container> {
        let spec = load_spec(bundle)?;
        let ns = namespaces::plan(&spec)?;
        hardening::check_sysctls(&spec, &ns)?;
        let rootfs = rootfs_path(bundle, &spec);
        if !rootfs_mounts.is_empty() {
            std::fs::create_dir_all(&rootfs).map_err(|e| Error::io("create", &rootfs, e))?;
            rootfs::mount_rootfs(sys, rootfs_mounts, &rootfs)?;
        }
        let mut mounted = !rootfs_mounts.is_empty();
        if ns.user {
            match userns::prepare_rootfs(&spec, &rootfs) {
                Ok(idmapped) => mounted |= idmapped,
                Err(e) => {
                    if mounted {
                        let _ = rootfs::unmount_rootfs(sys, &rootfs);
                    }
                    return Err(e);
                }
            }
        }
        let linux = spec.linux().as_ref();
        let cg_path = cgroups::container_path(
            linux.and_then(|l| l.cgroups_path().as_deref()),
            namespace,
            id,
        );
        let resources = linux.and_then(|l| l.resources().as_ref());
        let cgroup = match ContainerCgroup::create(&cg_path, resources) {
            Ok(c) => c,
            Err(e) => {
                if mounted {
                    let _ = rootfs::unmount_rootfs(sys, &rootfs);
                }
                return Err(e);
            }
        };
        Ok(Container {
            rootfs,
            spec,
            ns,
            cgroup,
            no_pivot,
            mounted_rootfs: mounted,
        })
    }

    /// Clones the init process; it waits for [`Created::start`].
    pub fn spawn_init(&self, sys: &dyn Syscalls, stdio: Option<[RawFd; 3]>) -> Result<Created> {
        let pid_ns = match &self.ns.pid_path {
            Some(p) => Some(
                crate::sys::process::open_ns(p).map_err(|e| Error::sys("open namespace", p, e))?,
            ),
            None => None,
        };
        let procs = self.cgroup.procs_files();
        let hierarchies = self.cgroup.hierarchies();
        let cfg = init::InitConfig {
            spec: &self.spec,
            ns: &self.ns,
            rootfs: &self.rootfs,
            no_pivot: self.no_pivot,
            stdio: match stdio {
                Some(fds) => init::ChildStdio::Fds(fds),
                None => init::ChildStdio::Terminal,
            },
            cgroup_procs: if self.ns.user { &[] } else { &procs },
            cgroups: &hierarchies,
            cgroup_v2: self.cgroup.v2(),
        };
        let keep: Vec<RawFd> = stdio.map(Vec::from).unwrap_or_default();
        let mut shim_join = Vec::new();
        for (p, f) in &self.ns.shim_join {
            let fd =
                crate::sys::process::open_ns(p).map_err(|e| Error::sys("open namespace", p, e))?;
            shim_join.push((fd, *f));
        }
        let mut join: Vec<(&OwnedFd, CloneFlags)> =
            shim_join.iter().map(|(f, c)| (f, *c)).collect();
        join.extend(pid_ns.as_ref().map(|f| (f, CloneFlags::CLONE_NEWPID)));
        let map_user = |pid: i32| userns::after_clone(&self.spec, &procs, pid);
        let spec = launch::CloneSpec {
            flags: self.ns.clone_flags,
            join,
            keep: &keep,
            after_clone: self
                .ns
                .user
                .then_some(&map_user as &dyn Fn(i32) -> Result<()>),
        };
        launch::spawn(sys, spec, |sys| init::setup(sys, &cfg))
    }

    /// Clones a process that joins the container of `init_pid`.
    pub fn spawn_exec(
        &self,
        sys: &dyn Syscalls,
        init_pid: i32,
        process: &Process,
        stdio: Option<[RawFd; 3]>,
    ) -> Result<Created> {
        let proc_dir = PathBuf::from(format!("/proc/{init_pid}"));
        let mut fds: Vec<(OwnedFd, CloneFlags)> = Vec::new();
        for (name, flag) in namespaces::exec_join_order(&self.ns) {
            let p = proc_dir.join("ns").join(name);
            let fd = crate::sys::process::open_ns(&p)
                .map_err(|e| Error::sys("open namespace", &p, e))?;
            fds.push((fd, flag));
        }
        let pid_ns = if self.ns.pid {
            let p = proc_dir.join("ns/pid");
            Some(
                crate::sys::process::open_ns(&p)
                    .map_err(|e| Error::sys("open namespace", &p, e))?,
            )
        } else {
            None
        };
        let root = if self.ns.mount {
            let p = proc_dir.join("root");
            Some(
                crate::sys::fd::open(&p, true, false, libc::O_DIRECTORY)
                    .map_err(|e| Error::io("open", &p, e))?,
            )
        } else {
            None
        };
        let process = hardening::exec_process(&self.spec, process)?;
        let raw: Vec<(RawFd, CloneFlags)> = fds.iter().map(|(f, c)| (f.as_raw_fd(), *c)).collect();
        let procs = self.cgroup.procs_files();
        let cfg = exec::ExecConfig {
            process: &process,
            namespaces: &raw,
            root: root.as_ref().map(|r| r.as_raw_fd()),
            cgroup_procs: &procs,
            stdio,
            seccomp: self
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.seccomp().as_ref()),
        };
        let mut keep: Vec<RawFd> = raw.iter().map(|(f, _)| *f).collect();
        keep.extend(cfg.root);
        keep.extend(stdio.into_iter().flatten());
        let spec = launch::CloneSpec {
            flags: CloneFlags::empty(),
            join: pid_ns
                .iter()
                .map(|f| (f, CloneFlags::CLONE_NEWPID))
                .collect(),
            keep: &keep,
            after_clone: None,
        };
        launch::spawn(sys, spec, |sys| exec::setup(sys, &cfg))
    }

    /// Kills what is left in the cgroup, unmounts the rootfs and removes the cgroup.
    pub fn destroy(&mut self, sys: &dyn Syscalls) -> Result<()> {
        self.cgroup.kill_all();
        let mut first_err = None;
        if self.mounted_rootfs {
            if let Err(e) = rootfs::unmount_rootfs(sys, &self.rootfs) {
                first_err.get_or_insert(e);
            }
            self.mounted_rootfs = false;
        }
        if let Err(e) = self.cgroup.delete() {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
