//! A process exec'd into a running container, in the child: it joins the init
//! process's cgroup and namespaces (the pid namespace is entered by the shim for its
//! next child), its root, then applies the process settings.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, Process};

use crate::error::{Error, Result};
use crate::runtime::init::{join_cgroup, open_terminal};
use crate::runtime::launch::ChildReady;
use crate::runtime::process::{self, Stdio};
use crate::sys::{CloneFlags, Syscalls};

/// Everything an exec child needs.
pub struct ExecConfig<'a> {
    /// The process spec.
    pub process: &'a Process,
    /// Namespace descriptors of the init process, in joining order.
    pub namespaces: &'a [(RawFd, CloneFlags)],
    /// The init process's root directory (`/proc/<pid>/root`).
    pub root: Option<RawFd>,
    /// cgroup.procs files to join.
    pub cgroup_procs: &'a [PathBuf],
    /// Descriptors for 0, 1, 2, or `None` for a terminal.
    pub stdio: Option<[RawFd; 3]>,
    /// The container's seccomp profile.
    pub seccomp: Option<&'a LinuxSeccomp>,
}

/// Runs the setup of an exec'd process.
pub fn setup(sys: &dyn Syscalls, cfg: &ExecConfig<'_>) -> Result<ChildReady> {
    join_cgroup(sys, cfg.cgroup_procs)?;
    for (fd, flag) in cfg.namespaces {
        sys.setns_fd(*fd, *flag)
            .map_err(|e| Error::sys("join namespace", format!("{flag:?}"), e))?;
    }
    if let Some(root) = cfg.root {
        sys.chroot_fd(root)
            .map_err(|e| Error::sys("enter root of", Path::new("init process"), e))?;
    }
    let (stdio, master, _slave) = match cfg.stdio {
        Some(fds) => (Stdio::Fds(fds), None, None),
        None => {
            let (master, slave, _) = open_terminal(sys, Path::new("/"))?;
            let raw = crate::sys::linux::raw(&slave);
            (Stdio::Terminal(raw), Some(master), Some(slave))
        }
    };
    let prepared = process::prepare(sys, cfg.process, cfg.seccomp)?;
    process::setup_stdio(sys, stdio)?;
    Ok(ChildReady {
        prepared,
        pty_master: master,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Recorder;

    #[test]
    fn joins_cgroup_then_namespaces_then_root() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["/bin/ls"],"env":[]}"#,
        )
        .unwrap();
        let sys = Recorder::new().with_file("/bin/ls");
        let procs = [PathBuf::from("/cg/cgroup.procs")];
        let ns = [
            (10, CloneFlags::CLONE_NEWIPC),
            (11, CloneFlags::CLONE_NEWNS),
        ];
        let cfg = ExecConfig {
            process: &p,
            namespaces: &ns,
            root: Some(12),
            cgroup_procs: &procs,
            stdio: Some([3, 4, 5]),
            seccomp: None,
        };
        setup(&sys, &cfg).unwrap();
        let calls = sys.calls();
        assert_eq!(
            &calls[..4],
            [
                "write_file /cg/cgroup.procs 0",
                "setns fd:10 CLONE_NEWIPC",
                "setns fd:11 CLONE_NEWNS",
                "chroot_fd 12"
            ]
        );
    }
}
