//! The hardening parts of the spec: capabilities, seccomp, masked and read-only paths,
//! no_new_privileges, user namespaces, AppArmor and SELinux labels.
//!
//! berth's hardening work fills in [`apply_container`] and [`apply_process`], which
//! the child calls at the right points (after the root switch; just before exec).
//! Until then those fields are ignored: containers keep the full capabilities of the
//! shim's root user and run without a seccomp filter. [`report_ignored`] says so in
//! the shim's log at debug level (it runs in the shim, before the clone, because the
//! child's stderr becomes the container's).

use oci_spec::runtime::{Process, Spec};

use crate::sys::Syscalls;

/// Container-wide settings, in the child after the root switch: masked paths,
/// read-only paths, seccomp. Not applied yet (see the module comment).
pub fn apply_container(_sys: &dyn Syscalls, _spec: &Spec) {}

/// Process settings, in the child just before exec: capabilities,
/// no_new_privileges, AppArmor profile, SELinux label. Not applied yet.
pub fn apply_process(_sys: &dyn Syscalls, _process: &Process) {}

/// Logs (debug) which hardening fields of `spec` and `process` are ignored.
pub fn report_ignored(spec: Option<&Spec>, process: Option<&Process>) {
    if let Some(linux) = spec.and_then(|s| s.linux().as_ref()) {
        if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
            tracing::debug!("linux.maskedPaths ignored: comes with the hardening work");
        }
        if linux
            .readonly_paths()
            .as_ref()
            .is_some_and(|p| !p.is_empty())
        {
            tracing::debug!("linux.readonlyPaths ignored: comes with the hardening work");
        }
        if linux.seccomp().is_some() {
            tracing::debug!("linux.seccomp ignored: comes with the hardening work");
        }
        if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) {
            tracing::debug!("user namespace mappings ignored: comes with the hardening work");
        }
    }
    if let Some(p) = process {
        if p.capabilities().is_some() {
            tracing::debug!("process.capabilities ignored: comes with the hardening work");
        }
        if p.no_new_privileges().unwrap_or(false) {
            tracing::debug!("process.noNewPrivileges ignored: comes with the hardening work");
        }
        if p.apparmor_profile().is_some() || p.selinux_label().is_some() {
            tracing::debug!("apparmor/selinux labels ignored: comes with the hardening work");
        }
    }
}
