//! The hardening parts of the spec, in the container child: capabilities (bounding,
//! effective, permitted, inheritable, ambient), no_new_privileges, the seccomp filter,
//! masked and read-only paths, sysctls (namespaced ones only), AppArmor/SELinux labels,
//! and what an exec'd process inherits from its container.
//!
//! Order in the child (init and exec alike):
//! 1. [`apply_container`] after the root switch and the sysctls: masked paths, then
//!    read-only paths.
//! 2. [`CapPlan::drop_bounding`] before the user switch (it needs CAP_SETPCAP), the user
//!    switch with keepcaps, then [`apply_process`]: capset, ambient set,
//!    no_new_privileges, labels, and the seccomp program compiled (errors surface at
//!    Create).
//! 3. [`Final::apply`] in the last moments before execve: the filter is loaded (after
//!    the signal reset and the descriptor clean-up, so the profile only has to allow
//!    capset and execve). Without no_new_privileges loading needs CAP_SYS_ADMIN: the
//!    child keeps it until the filter is in, then drops to the final sets.
//!
//! A requested capability the host does not have (outside the shim's bounding set, as
//! CAP_SYS_RESOURCE on some hosts) is dropped with a log line instead of failing.

use std::path::Path;

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp, Process, Spec};

use crate::caps;
use crate::error::{Error, Result};
use crate::runtime::namespaces::Plan;
use crate::runtime::seccomp::{self, Filter};
use crate::sys::{CapSets, CloneFlags, Errno, MsFlags, Syscalls};

/// The capability sets a process ends with, as masks, limited to what the host has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapPlan {
    /// Bounding set.
    pub bounding: u64,
    /// Effective, permitted, inheritable.
    pub sets: CapSets,
    /// Ambient set.
    pub ambient: u64,
    /// The host's bounding set (what the shim has).
    pub host: u64,
}

fn set_mask(s: Option<&std::collections::HashSet<Capability>>) -> u64 {
    s.map_or(0, caps::mask)
}

impl CapPlan {
    /// The plan for `c` on a host whose bounding set is `host`: requested capabilities
    /// outside `host` are dropped (logged once per capability).
    pub fn new(c: &LinuxCapabilities, host: u64) -> CapPlan {
        let requested = set_mask(c.bounding().as_ref())
            | set_mask(c.effective().as_ref())
            | set_mask(c.permitted().as_ref())
            | set_mask(c.inheritable().as_ref())
            | set_mask(c.ambient().as_ref());
        let missing = requested & !host;
        if missing != 0 {
            let names: Vec<String> = caps::from_mask(missing)
                .into_iter()
                .map(caps::name)
                .collect();
            tracing::info!(
                capabilities = %names.join(","),
                "the host does not have these capabilities; dropped"
            );
        }
        let permitted = set_mask(c.permitted().as_ref()) & host;
        let inheritable = set_mask(c.inheritable().as_ref()) & host;
        CapPlan {
            bounding: set_mask(c.bounding().as_ref()) & host,
            sets: CapSets {
                effective: set_mask(c.effective().as_ref()) & permitted,
                permitted,
                inheritable,
            },
            ambient: set_mask(c.ambient().as_ref()) & permitted & inheritable,
            host,
        }
    }

    /// Drops from the bounding set everything the plan does not keep.
    pub fn drop_bounding(&self, sys: &dyn Syscalls) -> Result<()> {
        for cap in 0..64u32 {
            let bit = 1u64 << cap;
            if self.host & bit != 0 && self.bounding & bit == 0 {
                sys.cap_drop_bounding(cap)
                    .map_err(|e| Error::sys("drop capability", cap_label(cap), e))?;
            }
        }
        Ok(())
    }
}

fn cap_label(cap: u32) -> String {
    caps::from_number(cap).map_or_else(|| format!("capability {cap}"), caps::name)
}

const CAP_SYS_ADMIN: u64 = 1 << 21;

/// What the child applies right before execve.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Final {
    /// The seccomp filter to load.
    pub seccomp: Option<Filter>,
    /// Capability sets to drop to once the filter is loaded (when CAP_SYS_ADMIN was
    /// kept for loading it).
    pub caps_after: Option<CapSets>,
}

impl Final {
    /// Loads the filter, then drops the capabilities kept for it.
    pub fn apply(&self, sys: &dyn Syscalls) -> Result<()> {
        if let Some(f) = &self.seccomp {
            sys.seccomp_load(&f.program, f.flags)
                .map_err(|e| Error::sys("load seccomp filter", Path::new("-"), e))?;
        }
        if let Some(sets) = self.caps_after {
            sys.capset(sets).map_err(|e| {
                Error::sys(
                    "set capabilities after seccomp (the profile must allow capset)",
                    Path::new("-"),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

/// The capability plan of `process`, or `None` when the spec leaves capabilities alone.
pub fn cap_plan(sys: &dyn Syscalls, process: &Process) -> Result<Option<CapPlan>> {
    let Some(c) = process.capabilities() else {
        return Ok(None);
    };
    let host = sys
        .cap_bounding()
        .map_err(|e| Error::sys("read capability bounding set", Path::new("-"), e))?;
    Ok(Some(CapPlan::new(c, host)))
}

/// Process settings after the user switch: capabilities, ambient set,
/// no_new_privileges, labels, and the compiled seccomp filter for [`Final`].
pub fn apply_process(
    sys: &dyn Syscalls,
    process: &Process,
    plan: Option<&CapPlan>,
    seccomp: Option<&LinuxSeccomp>,
) -> Result<Final> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    let filter = seccomp.map(seccomp::compile).transpose()?;
    let mut fin = Final {
        seccomp: filter,
        caps_after: None,
    };
    if let Some(p) = plan {
        let mut now = p.sets;
        // Loading a filter without no_new_privs needs CAP_SYS_ADMIN until it is in.
        if fin.seccomp.is_some() && !nnp && now.effective & CAP_SYS_ADMIN == 0 {
            now.effective |= CAP_SYS_ADMIN;
            now.permitted |= CAP_SYS_ADMIN;
            fin.caps_after = Some(p.sets);
        }
        sys.capset(now)
            .map_err(|e| Error::sys("set capabilities", Path::new("-"), e))?;
        sys.cap_ambient_clear()
            .map_err(|e| Error::sys("clear ambient capabilities", Path::new("-"), e))?;
        for cap in 0..64u32 {
            if p.ambient & (1u64 << cap) != 0 {
                sys.cap_ambient_raise(cap)
                    .map_err(|e| Error::sys("raise ambient capability", cap_label(cap), e))?;
            }
        }
    }
    if nnp {
        sys.set_no_new_privs()
            .map_err(|e| Error::sys("set no_new_privs", Path::new("-"), e))?;
    }
    apply_labels(sys, process)?;
    Ok(fin)
}

/// AppArmor profile and SELinux label for the next exec, when the host has them;
/// ignored (logged) on a host without them, as runc does.
fn apply_labels(sys: &dyn Syscalls, process: &Process) -> Result<()> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let enabled = sys
            .read_file(Path::new("/sys/module/apparmor/parameters/enabled"))
            .is_ok_and(|b| b.starts_with(b"Y"));
        if enabled {
            let attr = Path::new("/proc/self/attr/apparmor/exec");
            let attr = if sys.is_dir(attr).ok().flatten().is_some() {
                attr
            } else {
                Path::new("/proc/self/attr/exec")
            };
            sys.write_file(attr, format!("exec {profile}").as_bytes())
                .map_err(|e| Error::sys("set apparmor profile", attr, e))?;
        } else {
            tracing::debug!(
                profile,
                "apparmor is not enabled on this host; profile ignored"
            );
        }
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if sys.is_dir(Path::new("/sys/fs/selinux")).ok().flatten() == Some(true) {
            let attr = Path::new("/proc/self/attr/exec");
            sys.write_file(attr, label.as_bytes())
                .map_err(|e| Error::sys("set selinux label", attr, e))?;
        } else {
            tracing::debug!(label, "selinux is not enabled on this host; label ignored");
        }
    }
    Ok(())
}

/// Container-wide settings in the child after the root switch: masked paths, then
/// read-only paths (paths are inside the new root, so no symlink can leave it).
pub fn apply_container(sys: &dyn Syscalls, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for p in linux.masked_paths().as_deref().unwrap_or(&[]) {
        mask_path(sys, Path::new(p))?;
    }
    for p in linux.readonly_paths().as_deref().unwrap_or(&[]) {
        readonly_path(sys, Path::new(p))?;
    }
    Ok(())
}

/// Hides `path`: /dev/null over a file, an empty read-only tmpfs over a directory.
pub fn mask_path(sys: &dyn Syscalls, path: &Path) -> Result<()> {
    match sys.is_dir(path) {
        Ok(None) | Err(Errno::ENOENT) => Ok(()),
        Ok(Some(true)) => sys
            .mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )
            .map_err(|e| Error::sys("mask", path, e)),
        Ok(Some(false)) => sys
            .mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(|e| Error::sys("mask", path, e)),
        Err(e) => Err(Error::sys("stat", path, e)),
    }
}

/// Makes `path` read-only: a bind mount on itself, remounted read-only with the flags
/// it had (nosuid, nodev... may be locked in a user namespace).
pub fn readonly_path(sys: &dyn Syscalls, path: &Path) -> Result<()> {
    match sys.is_dir(path) {
        Ok(None) | Err(Errno::ENOENT) => return Ok(()),
        Ok(Some(_)) => {}
        Err(e) => return Err(Error::sys("stat", path, e)),
    }
    sys.mount(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(|e| Error::sys("bind mount", path, e))?;
    remount_readonly(sys, path, MsFlags::MS_REC)
}

/// Remounts the bind mount at `path` read-only, keeping its other flags.
pub fn remount_readonly(sys: &dyn Syscalls, path: &Path, extra: MsFlags) -> Result<()> {
    let keep = sys
        .mount_flags(path)
        .map_err(|e| Error::sys("statfs", path, e))?;
    sys.mount(
        None,
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | extra | keep,
        None,
    )
    .map_err(|e| Error::sys("remount read-only", path, e))
}

/// Checks the spec's sysctls before anything is created: only namespaced ones, and
/// only when the container has the namespace they belong to.
pub fn check_sysctls(spec: &Spec, ns: &Plan) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for key in sysctl.keys() {
        check_sysctl(key, ns)?;
    }
    Ok(())
}

/// Which namespace a sysctl belongs to, or `None` for host-wide ones.
pub fn sysctl_namespace(key: &str) -> Option<CloneFlags> {
    let key = key.replace('/', ".");
    if key.starts_with("net.") {
        return Some(CloneFlags::CLONE_NEWNET);
    }
    if key.starts_with("fs.mqueue.")
        || key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
    {
        return Some(CloneFlags::CLONE_NEWIPC);
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Some(CloneFlags::CLONE_NEWUTS);
    }
    None
}

fn check_sysctl(key: &str, ns: &Plan) -> Result<()> {
    let Some(flag) = sysctl_namespace(key) else {
        return Err(Error::Spec(format!(
            "sysctl {key} is not namespaced: it would change the host, refused"
        )));
    };
    if !ns.has(flag) {
        let what = match flag {
            CloneFlags::CLONE_NEWNET => "network",
            CloneFlags::CLONE_NEWIPC => "ipc",
            _ => "uts",
        };
        return Err(Error::Spec(format!(
            "sysctl {key} needs the container's own {what} namespace: refused"
        )));
    }
    Ok(())
}

/// The process an exec runs: its own settings, but never more than its container's:
/// capabilities are intersected with the container's bounding set (the container's
/// process capabilities when the exec names none), and no_new_privileges holds when the
/// container's process has it.
pub fn exec_process(container: &Spec, requested: &Process) -> Result<Process> {
    let Some(init) = container.process() else {
        return Ok(requested.clone());
    };
    let mut p = requested.clone();
    if let Some(ic) = init.capabilities() {
        let bound = ic.bounding().clone().unwrap_or_default();
        let clamp = |s: &Option<std::collections::HashSet<Capability>>| {
            s.as_ref().map(|s| {
                s.intersection(&bound)
                    .copied()
                    .collect::<std::collections::HashSet<_>>()
            })
        };
        let caps = match requested.capabilities() {
            None => ic.clone(),
            Some(rc) => {
                let mut c = rc.clone();
                c.set_bounding(clamp(rc.bounding()).or_else(|| Some(bound.clone())));
                c.set_effective(clamp(rc.effective()));
                c.set_permitted(clamp(rc.permitted()));
                c.set_inheritable(clamp(rc.inheritable()));
                c.set_ambient(clamp(rc.ambient()));
                c
            }
        };
        p.set_capabilities(Some(caps));
    }
    if init.no_new_privileges().unwrap_or(false) {
        p.set_no_new_privileges(Some(true));
    }
    // Labels: the container's unless the exec names its own.
    if p.apparmor_profile().is_none() {
        p.set_apparmor_profile(init.apparmor_profile().clone());
    }
    if p.selinux_label().is_none() {
        p.set_selinux_label(init.selinux_label().clone());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Recorder;

    fn process(json: &str) -> Process {
        serde_json::from_str(json).unwrap()
    }

    const DOCKER_CAPS: &str = r#"{"bounding":["CAP_CHOWN","CAP_NET_RAW","CAP_SYS_RESOURCE"],
        "effective":["CAP_CHOWN","CAP_NET_RAW","CAP_SYS_RESOURCE"],
        "permitted":["CAP_CHOWN","CAP_NET_RAW","CAP_SYS_RESOURCE"],
        "ambient":["CAP_NET_RAW"], "inheritable":["CAP_NET_RAW"]}"#;

    #[test]
    fn missing_host_capabilities_are_dropped() {
        let c: LinuxCapabilities = serde_json::from_str(DOCKER_CAPS).unwrap();
        let host = ((1u64 << 41) - 1) & !(1 << 24);
        let plan = CapPlan::new(&c, host);
        assert_eq!(plan.bounding, (1 << 0) | (1 << 13));
        assert_eq!(plan.sets.permitted, (1 << 0) | (1 << 13));
        assert_eq!(plan.ambient, 1 << 13);
        let sys = Recorder::new().with_bounding(host);
        plan.drop_bounding(&sys).unwrap();
        let dropped = sys.calls_of("cap_drop_bounding");
        // 41 known minus the missing one minus the two kept.
        assert_eq!(dropped.len(), 38);
        assert!(!dropped.contains(&"cap_drop_bounding 24".to_string()));
        assert!(!dropped.contains(&"cap_drop_bounding 13".to_string()));
    }

    #[test]
    fn seccomp_without_nnp_keeps_sys_admin_until_loaded() {
        let p = process(&format!(
            r#"{{"cwd":"/","user":{{"uid":0,"gid":0}},"capabilities":{DOCKER_CAPS}}}"#
        ));
        let sec: LinuxSeccomp =
            serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let sys = Recorder::new();
        let plan = cap_plan(&sys, &p).unwrap().unwrap();
        let fin = apply_process(&sys, &p, Some(&plan), Some(&sec)).unwrap();
        let calls = sys.calls();
        assert_eq!(calls[0], "capset e=0x1202001 p=0x1202001 i=0x2000");
        assert_eq!(calls[1], "cap_ambient_clear");
        assert_eq!(calls[2], "cap_ambient_raise 13");
        assert!(sys.calls_of("set_no_new_privs").is_empty());
        assert_eq!(fin.caps_after.unwrap().effective, 0x2001 | (1 << 24));
        fin.apply(&sys).unwrap();
        let calls = sys.calls();
        assert!(calls[3].starts_with("seccomp_load "));
        assert_eq!(calls[4], "capset e=0x1002001 p=0x1002001 i=0x2000");
    }

    #[test]
    fn nnp_loads_the_filter_without_extra_capabilities() {
        let p = process(&format!(
            r#"{{"cwd":"/","user":{{"uid":0,"gid":0}},"noNewPrivileges":true,"capabilities":{DOCKER_CAPS}}}"#
        ));
        let sec: LinuxSeccomp =
            serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let sys = Recorder::new().with_bounding(((1u64 << 41) - 1) & !(1 << 24));
        let plan = cap_plan(&sys, &p).unwrap().unwrap();
        let fin = apply_process(&sys, &p, Some(&plan), Some(&sec)).unwrap();
        assert_eq!(sys.calls()[0], "capset e=0x2001 p=0x2001 i=0x2000");
        assert_eq!(sys.calls_of("set_no_new_privs").len(), 1);
        assert!(fin.caps_after.is_none());
        assert!(fin.seccomp.is_some());
    }

    #[test]
    fn masked_and_readonly_paths() {
        let sys = Recorder::new()
            .with_file("/proc/kcore")
            .with_dir("/sys/firmware")
            .with_dir("/proc/sys")
            .with_mount_flags("/proc/sys", MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"maskedPaths":["/proc/kcore","/sys/firmware","/proc/nope"],
                "readonlyPaths":["/proc/sys","/proc/absent"]}}"#,
        )
        .unwrap();
        apply_container(&sys, &spec).unwrap();
        let calls = sys.calls();
        assert_eq!(
            calls,
            [
                "mount /dev/null /proc/kcore - MS_BIND -",
                "mount tmpfs /sys/firmware tmpfs MS_RDONLY -",
                "mount /proc/sys /proc/sys - MS_BIND | MS_REC -",
                "mount - /proc/sys - MS_RDONLY | MS_NOSUID | MS_NODEV | MS_REMOUNT | MS_BIND | MS_REC -",
            ]
        );
    }

    #[test]
    fn sysctls_must_be_namespaced() {
        let spec = |k: &str| -> Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.0.2",
                "linux": {"sysctl": {k: "1"}, "namespaces": [{"type": "network"}, {"type": "ipc"}]}
            }))
            .unwrap()
        };
        let check = |k: &str| {
            let s = spec(k);
            let ns = crate::runtime::namespaces::plan(&s).unwrap();
            check_sysctls(&s, &ns)
        };
        check("net.ipv4.ip_forward").unwrap();
        check("kernel.shmmax").unwrap();
        check("fs.mqueue.msg_max").unwrap();
        let err = check("kernel.panic").unwrap_err().to_string();
        assert!(
            err.contains("kernel.panic") && err.contains("not namespaced"),
            "{err}"
        );
        let err = check("vm.swappiness").unwrap_err().to_string();
        assert!(err.contains("vm.swappiness"), "{err}");
        let err = check("kernel.domainname").unwrap_err().to_string();
        assert!(err.contains("uts"), "{err}");
    }

    #[test]
    fn exec_never_gets_more_than_the_container() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true,
                        "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"],
                                         "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]}}
        }))
        .unwrap();
        let wants_all = process(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_KILL"],
                "effective":["CAP_SYS_ADMIN","CAP_KILL"],"permitted":["CAP_SYS_ADMIN","CAP_KILL"]}}"#,
        );
        let p = exec_process(&spec, &wants_all).unwrap();
        let c = p.capabilities().as_ref().unwrap();
        assert_eq!(c.effective().as_ref().unwrap().len(), 1);
        assert!(c.effective().as_ref().unwrap().contains(&Capability::Kill));
        assert!(
            !c.bounding()
                .as_ref()
                .unwrap()
                .contains(&Capability::SysAdmin)
        );
        assert_eq!(p.no_new_privileges(), Some(true));
        let plain = process(r#"{"cwd":"/","user":{"uid":0,"gid":0}}"#);
        let p = exec_process(&spec, &plain).unwrap();
        assert_eq!(
            p.capabilities(),
            spec.process().as_ref().unwrap().capabilities()
        );
    }
}
