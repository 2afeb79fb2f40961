//! Namespaces of a container: which ones the clone creates, which ones are joined by
//! path (how pod containers share a sandbox's network, IPC and UTS namespaces).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::sys::{CloneFlags, Syscalls};

/// The namespace setup derived from the spec.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// New namespaces created by the clone (mount, uts, ipc, net, pid).
    pub clone_flags: CloneFlags,
    /// Namespaces joined by path in the child, in this order.
    pub join: Vec<(PathBuf, CloneFlags)>,
    /// A pid namespace to join: the shim enters it for its next child.
    pub pid_path: Option<PathBuf>,
    /// A new cgroup namespace, unshared after the child entered its cgroup.
    pub new_cgroupns: bool,
    /// A cgroup namespace joined by path, after the child entered its cgroup.
    pub cgroup_path: Option<PathBuf>,
    /// The container has its own mount namespace (new or joined).
    pub mount: bool,
    /// The container has its own network namespace (new or joined).
    pub net: bool,
    /// The container has a new UTS namespace (it may set its hostname).
    pub new_uts: bool,
    /// The container has its own pid namespace (new or joined).
    pub pid: bool,
    /// A new user namespace: created by the clone with the others, which it then owns.
    pub user: bool,
    /// With a user namespace: namespaces given by path that the shim enters around the
    /// clone (the child, root only in its new user namespace, could not join them).
    pub shim_join: Vec<(PathBuf, CloneFlags)>,
}

impl Plan {
    /// True when the container has its own namespace of this kind (new or joined).
    pub fn has(&self, flag: CloneFlags) -> bool {
        self.clone_flags.contains(flag)
            || self
                .join
                .iter()
                .chain(self.shim_join.iter())
                .any(|(_, f)| *f == flag)
    }
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            clone_flags: CloneFlags::empty(),
            join: Vec::new(),
            pid_path: None,
            new_cgroupns: false,
            cgroup_path: None,
            mount: false,
            net: false,
            new_uts: false,
            pid: false,
            user: false,
            shim_join: Vec::new(),
        }
    }
}

fn flag(t: LinuxNamespaceType) -> Option<CloneFlags> {
    Some(match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        _ => return None,
    })
}

/// Reads `linux.namespaces`.
pub fn plan(spec: &Spec) -> Result<Plan> {
    let mut p = Plan::default();
    let Some(linux) = spec.linux() else {
        return Ok(p);
    };
    let mut mount_join = None;
    for ns in linux.namespaces().as_deref().unwrap_or(&[]) {
        let t = ns.typ();
        let path = ns.path().clone().filter(|p| !p.as_os_str().is_empty());
        match t {
            LinuxNamespaceType::User => {
                if path.is_some() {
                    return Err(Error::Spec(
                        "joining a user namespace by path is not implemented".into(),
                    ));
                }
                p.user = true;
                continue;
            }
            LinuxNamespaceType::Mount => p.mount = true,
            LinuxNamespaceType::Network => p.net = true,
            LinuxNamespaceType::Pid => p.pid = true,
            LinuxNamespaceType::Uts => p.new_uts = path.is_none(),
            _ => {}
        }
        let Some(f) = flag(t) else {
            return Err(Error::Spec(format!(
                "namespace type {t:?} is not supported"
            )));
        };
        match (t, path) {
            (LinuxNamespaceType::Pid, Some(path)) => p.pid_path = Some(path),
            (LinuxNamespaceType::Cgroup, Some(path)) => p.cgroup_path = Some(path),
            (LinuxNamespaceType::Cgroup, None) => p.new_cgroupns = true,
            (LinuxNamespaceType::Mount, Some(path)) => mount_join = Some((path, f)),
            (_, Some(path)) => p.join.push((path, f)),
            (_, None) => p.clone_flags |= f,
        }
    }
    // Join the mount namespace last: the other paths are looked up in the shim's.
    p.join.extend(mount_join);
    if p.user {
        p.clone_flags |= CloneFlags::CLONE_NEWUSER;
        if p.join.iter().any(|(_, f)| *f == CloneFlags::CLONE_NEWNS) {
            return Err(Error::Spec(
                "joining a mount namespace by path together with a new user namespace is not implemented"
                    .into(),
            ));
        }
        p.shim_join = std::mem::take(&mut p.join);
        if let Some(c) = p.cgroup_path.take() {
            p.shim_join.push((c, CloneFlags::CLONE_NEWCGROUP));
        }
    }
    Ok(p)
}

/// The `/proc/<pid>/ns/` name of a namespace flag.
pub fn ns_name(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWUSER => "user",
        _ => "mnt",
    }
}

/// In the child: joins the namespaces given by path (except pid and cgroup).
pub fn join(sys: &dyn Syscalls, plan: &Plan) -> Result<()> {
    for (path, f) in &plan.join {
        sys.setns_path(path, *f)
            .map_err(|e| Error::sys("join namespace", path, e))?;
    }
    Ok(())
}

/// In the child, once inside its cgroup: the cgroup namespace, new or joined.
pub fn enter_cgroupns(sys: &dyn Syscalls, plan: &Plan) -> Result<()> {
    if let Some(path) = &plan.cgroup_path {
        sys.setns_path(path, CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("join namespace", path, e))?;
    } else if plan.new_cgroupns {
        sys.unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("unshare cgroup namespace", Path::new("-"), e))?;
    }
    Ok(())
}

/// The `/proc/<pid>/ns/<name>` names and flags an exec'd process joins, in order.
pub fn exec_join_order(plan: &Plan) -> Vec<(&'static str, CloneFlags)> {
    let mut out = Vec::new();
    if plan.user {
        out.push(("user", CloneFlags::CLONE_NEWUSER));
    }
    let has = |f: CloneFlags, joined: bool| plan.clone_flags.contains(f) || joined;
    let joined = |f: CloneFlags| {
        plan.join
            .iter()
            .chain(plan.shim_join.iter())
            .any(|(_, g)| *g == f)
    };
    for (name, f) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
    ] {
        if has(f, joined(f)) {
            out.push((name, f));
        }
    }
    if plan.new_cgroupns || plan.cgroup_path.is_some() || joined(CloneFlags::CLONE_NEWCGROUP) {
        out.push(("cgroup", CloneFlags::CLONE_NEWCGROUP));
    }
    if plan.mount {
        out.push(("mnt", CloneFlags::CLONE_NEWNS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ns: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","linux":{{"namespaces":{ns}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn new_and_joined_namespaces() {
        let s = spec(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"network","path":"/proc/9/ns/net"},
               {"type":"uts"},{"type":"ipc","path":"/run/ipc"},{"type":"cgroup"},{"type":"user"}]"#,
        );
        let p = plan(&s).unwrap();
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWUSER
        );
        // With a user namespace the shim joins the paths around the clone.
        assert!(p.join.is_empty());
        assert_eq!(
            p.shim_join,
            vec![
                (PathBuf::from("/proc/9/ns/net"), CloneFlags::CLONE_NEWNET),
                (PathBuf::from("/run/ipc"), CloneFlags::CLONE_NEWIPC),
            ]
        );
        assert!(p.new_cgroupns && p.user && p.net && p.pid && p.mount && p.new_uts);
        let order: Vec<_> = exec_join_order(&p).into_iter().map(|(n, _)| n).collect();
        assert_eq!(order, ["user", "ipc", "uts", "net", "cgroup", "mnt"]);
        let bad = spec(r#"[{"type":"user","path":"/proc/1/ns/user"}]"#);
        assert!(plan(&bad).is_err());
    }

    #[test]
    fn joined_pid_and_mount_namespaces() {
        let s = spec(
            r#"[{"type":"mount","path":"/m"},{"type":"pid","path":"/p"},{"type":"uts","path":"/u"}]"#,
        );
        let p = plan(&s).unwrap();
        assert_eq!(p.pid_path, Some(PathBuf::from("/p")));
        assert_eq!(p.join.last().unwrap().0, PathBuf::from("/m"));
        assert!(p.clone_flags.is_empty());
        assert!(!p.new_uts);
    }

    #[test]
    fn joins_in_order() {
        let sys = crate::sys::fake::Recorder::new();
        let s = spec(r#"[{"type":"network","path":"/n"},{"type":"cgroup"}]"#);
        let p = plan(&s).unwrap();
        join(&sys, &p).unwrap();
        enter_cgroupns(&sys, &p).unwrap();
        assert_eq!(
            sys.calls(),
            ["setns /n CLONE_NEWNET", "unshare CLONE_NEWCGROUP"]
        );
    }
}
