//! The hardening parts of the spec: capabilities, seccomp, masked and read-only paths,
//! no_new_privileges, user namespaces, AppArmor and SELinux labels.
//!
//! berth's hardening work fills these functions in. Until then the fields are read
//! and reported at debug level as ignored, and containers run with the full
//! capabilities of the shim's root user and no seccomp filter.

use oci_spec::runtime::{Process, Spec};

use crate::sys::Syscalls;

/// Container-wide settings, applied in the child after the rootfs is in place and
/// before the process's own settings: masked paths, read-only paths.
pub fn apply_container(_sys: &dyn Syscalls, spec: &Spec) {
    let Some(linux) = spec.linux() else { return };
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

/// Process settings applied last, just before exec: capabilities, no_new_privileges,
/// AppArmor profile, SELinux label.
pub fn apply_process(_sys: &dyn Syscalls, process: &Process) {
    if process.capabilities().is_some() {
        tracing::debug!("process.capabilities ignored: comes with the hardening work");
    }
    if process.no_new_privileges().unwrap_or(false) {
        tracing::debug!("process.noNewPrivileges ignored: comes with the hardening work");
    }
    if process.apparmor_profile().is_some() || process.selinux_label().is_some() {
        tracing::debug!("apparmor/selinux labels ignored: comes with the hardening work");
    }
}
