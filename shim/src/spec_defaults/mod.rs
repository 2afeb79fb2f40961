//! The default hardening of berth's own containers, for berthd to put into the OCI
//! specs it writes, and the docker-style security options applied to such a spec:
//! `--cap-add`, `--cap-drop`, `--privileged`, `--security-opt
//! no-new-privileges|seccomp=unconfined|seccomp=FILE|apparmor=PROFILE`, `--read-only`,
//! `--sysctl`, and the `--userns-remap` mapping.
//!
//! The defaults are Docker's: 14 capabilities, the masked and read-only /proc and /sys
//! paths, a seccomp profile equivalent to Docker's default (data in
//! [`seccomp_profile`]), and the device cgroup allow list. A seccomp profile file may be
//! in Docker's format (`archMap`, `includes`/`excludes` by capability, architecture and
//! kernel version) or in the OCI form.
//!
//! ```no_run
//! # use oci_spec::runtime::Spec;
//! use berth_shim::spec_defaults::{self, SecurityOptions};
//! let mut spec = Spec::default();
//! let mut opts = SecurityOptions::default();
//! opts.cap_add.push("NET_ADMIN".into());
//! opts.parse_security_opt("no-new-privileges")?;
//! spec_defaults::apply(&mut spec, &opts)?;
//! # Ok::<(), spec_defaults::Error>(())
//! ```

pub mod docker_profile;
pub mod seccomp_profile;

use std::collections::{BTreeMap, HashSet};

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, LinuxResources,
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall, Process, Spec,
};

use crate::caps::{self, Named};

/// What can be wrong with security options.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A capability name berth does not know.
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// A `--security-opt` value berth does not understand.
    #[error("invalid --security-opt {0:?}: {1}")]
    SecurityOpt(String, String),
    /// A seccomp profile that cannot be used.
    #[error("seccomp profile {path}: {message}")]
    SeccompProfile {
        /// Where it came from.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A sysctl the container may not set.
    #[error("sysctl {key}: {reason}")]
    Sysctl {
        /// The key.
        key: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Docker's default capabilities (14).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from containers: kernel memory, keys, timers and debugging files,
/// firmware and power-capping interfaces.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths containers see read-only: kernel tunables and triggers.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The seccomp option of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SeccompOption {
    /// berth's default profile.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile (Docker's or the OCI form), as JSON text, and where it came from.
    Profile {
        /// Its origin, for messages (a file name).
        origin: String,
        /// The JSON.
        json: String,
    },
}

/// The docker-style security options of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// `--privileged`: every capability the host has, no seccomp, no masked or read-only
    /// paths, every device allowed.
    pub privileged: bool,
    /// `--cap-add` (names with or without `CAP_`, any case, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=...`.
    pub seccomp: SeccompOption,
    /// `--security-opt apparmor=PROFILE`.
    pub apparmor: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--sysctl KEY=VALUE`.
    pub sysctls: BTreeMap<String, String>,
}

impl SecurityOptions {
    /// Takes one `--security-opt` value: `no-new-privileges[=|:true|false]`,
    /// `seccomp=unconfined`, `seccomp=FILE` (read now, as docker's client does) or
    /// `apparmor=PROFILE`. SELinux labels are not supported.
    pub fn parse_security_opt(&mut self, opt: &str) -> Result<(), Error> {
        let bad = |why: &str| Error::SecurityOpt(opt.to_string(), why.to_string());
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (opt.trim(), None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => self.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => self.no_new_privileges = false,
            ("no-new-privileges", Some(_)) => return Err(bad("expected true or false")),
            ("seccomp", Some("unconfined")) => self.seccomp = SeccompOption::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                let json = std::fs::read_to_string(path)
                    .map_err(|e| bad(&format!("cannot read {path}: {e}")))?;
                self.seccomp = SeccompOption::Profile {
                    origin: path.to_string(),
                    json,
                };
            }
            ("apparmor", Some(p)) if !p.is_empty() => self.apparmor = Some(p.to_string()),
            ("label", _) => return Err(bad("selinux labels are not supported")),
            _ => {
                return Err(bad(
                    "expected no-new-privileges, seccomp=... or apparmor=...",
                ));
            }
        }
        Ok(())
    }
}

/// The capability set after `--privileged`, `--cap-add` and `--cap-drop`, the way
/// docker combines them: `ALL` in the adds means every capability less the drops; `ALL`
/// in the drops means only the adds; otherwise the base less the drops plus the adds.
pub fn capabilities(opts: &SecurityOptions) -> Result<HashSet<Capability>, Error> {
    let parse = |words: &[String]| -> Result<(bool, HashSet<Capability>), Error> {
        let mut all = false;
        let mut set = HashSet::new();
        for w in words {
            match caps::parse(w) {
                Some(Named::All) => all = true,
                Some(Named::One(c)) => {
                    set.insert(c);
                }
                None => return Err(Error::UnknownCapability(w.clone())),
            }
        }
        Ok((all, set))
    };
    let (add_all, adds) = parse(&opts.cap_add)?;
    let (drop_all, drops) = parse(&opts.cap_drop)?;
    let every: HashSet<Capability> = caps::ALL.into_iter().collect();
    let base: HashSet<Capability> = if opts.privileged {
        every.clone()
    } else {
        DEFAULT_CAPABILITIES.into_iter().collect()
    };
    Ok(if add_all {
        every.difference(&drops).copied().collect()
    } else if drop_all {
        adds
    } else {
        base.difference(&drops)
            .chain(adds.iter())
            .copied()
            .collect()
    })
}

/// Docker's device cgroup rules: nothing but mknod of any node, and read/write of the
/// standard character devices (null, zero, full, random, urandom, tty, console, ptmx,
/// pty slaves, /dev/net/tun).
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |allow: bool,
                typ: Option<LinuxDeviceType>,
                major: Option<i64>,
                minor: Option<i64>,
                access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(typ);
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    let c = Some(LinuxDeviceType::C);
    let mut out = vec![
        rule(false, None, None, None, "rwm"),
        rule(true, c, None, None, "m"),
        rule(true, Some(LinuxDeviceType::B), None, None, "m"),
    ];
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        out.push(rule(true, c, Some(major), minor, "rwm"));
    }
    out
}

/// Go's name of this machine's architecture, as Docker profiles write it.
pub fn go_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

/// The seccomp architectures of this machine (native first).
pub fn native_arches() -> Vec<oci_spec::runtime::Arch> {
    use oci_spec::runtime::Arch;
    if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    }
}

fn syscall(names: Vec<String>, action: LinuxSeccompAction) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names);
    s.set_action(action);
    s
}

fn arg_eq(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let b = match value_two {
        Some(v) => b.value_two(v),
        None => b,
    };
    b.build().expect("every field is set")
}

/// berth's default seccomp profile for a container whose bounding set is `bounding`:
/// syscalls that need a capability are allowed only with it.
pub fn default_seccomp(bounding: &HashSet<Capability>) -> LinuxSeccomp {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut rules = vec![syscall(
        own(seccomp_profile::ALLOWED),
        LinuxSeccompAction::ScmpActAllow,
    )];
    for p in seccomp_profile::PERSONALITIES {
        let mut s = syscall(vec!["personality".into()], LinuxSeccompAction::ScmpActAllow);
        s.set_args(Some(vec![arg_eq(
            0,
            LinuxSeccompOperator::ScmpCmpEq,
            *p,
            None,
        )]));
        rules.push(s);
    }
    for (arch, names) in seccomp_profile::BY_ARCH {
        if *arch == go_arch() {
            rules.push(syscall(own(names), LinuxSeccompAction::ScmpActAllow));
        }
    }
    for (cap, names) in seccomp_profile::BY_CAPABILITY {
        if bounding.contains(cap) {
            rules.push(syscall(own(names), LinuxSeccompAction::ScmpActAllow));
        }
    }
    if !bounding.contains(&Capability::SysAdmin) {
        let mut clone = syscall(vec!["clone".into()], LinuxSeccompAction::ScmpActAllow);
        clone.set_args(Some(vec![arg_eq(
            0,
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            seccomp_profile::NAMESPACE_FLAGS,
            Some(0),
        )]));
        rules.push(clone);
        let mut clone3 = syscall(vec!["clone3".into()], LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(libc::ENOSYS as u32));
        rules.push(clone3);
    }
    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActErrno);
    s.set_default_errno_ret(Some(libc::EPERM as u32));
    s.set_architectures(Some(native_arches()));
    s.set_syscalls(Some(rules));
    s
}

fn linux_mut(spec: &mut Spec) -> &mut Linux {
    if spec.linux().is_none() {
        spec.set_linux(Some(Linux::default()));
    }
    spec.linux_mut().as_mut().expect("set above")
}

fn process_mut(spec: &mut Spec) -> &mut Process {
    if spec.process().is_none() {
        spec.set_process(Some(Process::default()));
    }
    spec.process_mut().as_mut().expect("set above")
}

/// Applies berth's default hardening changed by `opts` to `spec`: capabilities
/// (bounding, effective, permitted; no inheritable or ambient ones), no_new_privileges,
/// seccomp, masked and read-only paths, device rules, read-only root, sysctls (checked
/// against the spec's namespaces: set them after the namespaces).
pub fn apply(spec: &mut Spec, opts: &SecurityOptions) -> Result<(), Error> {
    let set = capabilities(opts)?;
    let caps: Capabilities = set.clone();
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(caps.clone()));
    lc.set_effective(Some(caps.clone()));
    lc.set_permitted(Some(caps));
    lc.set_inheritable(None);
    lc.set_ambient(None);
    let seccomp = match (&opts.seccomp, opts.privileged) {
        (SeccompOption::Profile { origin, json }, _) => Some(
            docker_profile::resolve(json, &set).map_err(|message| Error::SeccompProfile {
                path: origin.clone(),
                message,
            })?,
        ),
        (SeccompOption::Unconfined, _) | (SeccompOption::Default, true) => None,
        (SeccompOption::Default, false) => Some(default_seccomp(&set)),
    };
    {
        let p = process_mut(spec);
        p.set_capabilities(Some(lc));
        p.set_no_new_privileges(opts.no_new_privileges.then_some(true));
        if let Some(a) = &opts.apparmor {
            p.set_apparmor_profile(Some(a.clone()));
        }
    }
    if opts.read_only {
        let mut root = spec.root().clone().unwrap_or_default();
        root.set_readonly(Some(true));
        spec.set_root(Some(root));
    }
    let namespaces: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect();
    for key in opts.sysctls.keys() {
        check_sysctl(key, &namespaces)?;
    }
    let linux = linux_mut(spec);
    linux.set_seccomp(seccomp);
    if opts.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    } else {
        linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|s| s.to_string()).collect()));
        linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|s| s.to_string()).collect()));
    }
    let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
    resources.set_devices(Some(if opts.privileged {
        let mut all = LinuxDeviceCgroup::default();
        all.set_allow(true);
        all.set_access(Some("rwm".into()));
        vec![all]
    } else {
        default_device_rules()
    }));
    linux.set_resources(Some(resources));
    if !opts.sysctls.is_empty() {
        let mut s = linux.sysctl().clone().unwrap_or_default();
        s.extend(
            opts.sysctls
                .iter()
                .map(|(k, v)| (k.replace('/', "."), v.clone())),
        );
        linux.set_sysctl(Some(s));
    }
    Ok(())
}

/// Checks that sysctl `key` belongs to a namespace the container has of its own.
pub fn check_sysctl(key: &str, namespaces: &[LinuxNamespaceType]) -> Result<(), Error> {
    use crate::runtime::hardening::sysctl_namespace;
    use crate::sys::CloneFlags;
    let refuse = |reason: &str| Error::Sysctl {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let needed = match sysctl_namespace(key) {
        None => return Err(refuse("not namespaced: it would change the host")),
        Some(CloneFlags::CLONE_NEWNET) => (LinuxNamespaceType::Network, "network"),
        Some(CloneFlags::CLONE_NEWIPC) => (LinuxNamespaceType::Ipc, "ipc"),
        Some(_) => (LinuxNamespaceType::Uts, "uts"),
    };
    if !namespaces.contains(&needed.0) {
        return Err(refuse(&format!(
            "needs the container's own {} namespace (not the host's)",
            needed.1
        )));
    }
    Ok(())
}

/// One id mapping of a user namespace: `size` ids from `container` inside map to
/// `host` outside (what `--userns-remap` gives every container).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside.
    pub container: u32,
    /// First id on the host.
    pub host: u32,
    /// How many.
    pub size: u32,
}

fn mapping(r: &IdRange) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(r.container)
        .host_id(r.host)
        .size(r.size)
        .build()
        .expect("every field is set")
}

/// Puts the container in a new user namespace with these mappings. The rootfs must be
/// owned accordingly: [`crate::idshift::shift_tree`] on the snapshot, or nothing when the
/// shim can idmap the mount (it checks the owner of the rootfs' top directory).
pub fn with_user_namespace(spec: &mut Spec, uids: &[IdRange], gids: &[IdRange]) {
    let linux = linux_mut(spec);
    let mut ns = linux.namespaces().clone().unwrap_or_default();
    ns.retain(|n| n.typ() != LinuxNamespaceType::User);
    let mut user = LinuxNamespace::default();
    user.set_typ(LinuxNamespaceType::User);
    ns.push(user);
    linux.set_namespaces(Some(ns));
    linux.set_uid_mappings(Some(uids.iter().map(mapping).collect()));
    linux.set_gid_mappings(Some(gids.iter().map(mapping).collect()));
}

/// Where `--userns-remap` ranges come from: the first `/etc/subuid` (`/etc/subgid`)
/// line of `user`, as `user:start:count`.
pub fn subordinate_range(file: &std::path::Path, user: &str) -> Option<IdRange> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.trim().split(':');
        let (name, start, count) = (it.next()?, it.next()?, it.next()?);
        (name == user).then_some(IdRange {
            container: 0,
            host: start.parse().ok()?,
            size: count.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests;
