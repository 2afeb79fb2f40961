//! Seccomp profile files as `--security-opt seccomp=FILE` gives them: Docker's format
//! (`archMap`, per-rule `includes`/`excludes` on capabilities, architectures and
//! minimum kernel) or the plain OCI form, resolved into the OCI form for one container.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSyscall,
};
use serde::Deserialize;

use super::{go_arch, native_arches};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// (major, minor) of a `4.8` or `6.1.0-13-amd64` version.
fn version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn running_kernel() -> Option<(u32, u32)> {
    version(&std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?)
}

fn cap_named(name: &str, caps: &HashSet<Capability>) -> bool {
    matches!(crate::caps::parse(name), Some(crate::caps::Named::One(c)) if caps.contains(&c))
}

impl Filter {
    /// True when every condition holds (an empty filter always holds).
    fn all_hold(&self, caps: &HashSet<Capability>, kernel: Option<(u32, u32)>) -> bool {
        self.caps.iter().all(|c| cap_named(c, caps))
            && (self.arches.is_empty() || self.arches.iter().any(|a| a == go_arch()))
            && self
                .min_kernel
                .as_deref()
                .is_none_or(|m| matches!((version(m), kernel), (Some(want), Some(k)) if k >= want))
    }

    /// True when any condition holds (for excludes).
    fn any_holds(&self, caps: &HashSet<Capability>, kernel: Option<(u32, u32)>) -> bool {
        self.caps.iter().any(|c| cap_named(c, caps))
            || self.arches.iter().any(|a| a == go_arch())
            || self
                .min_kernel
                .as_deref()
                .is_some_and(|m| matches!((version(m), kernel), (Some(want), Some(k)) if k >= want))
    }
}

/// Resolves the profile `json` for a container with bounding set `caps` on this
/// machine. Errors are plain messages (the caller names the file).
pub fn resolve(json: &str, caps: &HashSet<Capability>) -> Result<LinuxSeccomp, String> {
    let p: Profile =
        serde_json::from_str(json).map_err(|e| format!("not a seccomp profile: {e}"))?;
    if p.listener_path.is_some() {
        return Err("listenerPath (seccomp notify) is not implemented".into());
    }
    let kernel = running_kernel();
    let native = native_arches()[0];
    let arches = match (&p.arch_map, &p.architectures) {
        (Some(map), _) => map
            .iter()
            .find(|m| m.architecture == native)
            .map(|m| {
                let mut v = vec![m.architecture];
                v.extend(m.sub_architectures.iter().copied());
                v
            })
            .unwrap_or_else(|| vec![native]),
        (None, Some(a)) => a.clone(),
        (None, None) => Vec::new(),
    };
    let mut rules = Vec::new();
    for r in &p.syscalls {
        if !r.includes.all_hold(caps, kernel) || r.excludes.any_holds(caps, kernel) {
            continue;
        }
        let mut names = r.names.clone();
        names.extend(r.name.clone());
        if names.is_empty() {
            return Err("a syscall rule has no names".into());
        }
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(r.action);
        s.set_errno_ret(r.errno_ret);
        s.set_args(r.args.clone().filter(|a| !a.is_empty()));
        rules.push(s);
    }
    let mut out = LinuxSeccomp::default();
    out.set_default_action(p.default_action);
    out.set_default_errno_ret(p.default_errno_ret);
    out.set_architectures((!arches.is_empty()).then_some(arches));
    out.set_flags(p.flags);
    out.set_syscalls(Some(rules));
    Ok(out)
}
