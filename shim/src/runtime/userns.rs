//! User namespaces: the clone creates the user namespace together with the others (so
//! it owns them); the shim then writes the child's uid and gid maps from the spec and
//! puts it in its cgroup (a child that is root only in its own namespace cannot), and
//! the child becomes root of its namespace before it builds the container.
//!
//! The rootfs must be owned by the mapped ids. When its top directory is owned by the
//! host id of the container's root, it was shifted already (berthd does that with
//! [`crate::idshift::shift_tree`]); when it is owned by 0, the shim stacks an idmapped
//! copy of the rootfs mount on it (kernels and filesystems that support idmapped
//! mounts), and otherwise refuses with a message saying what to do.
//!
//! Every parent directory of the bundle must be traversable by the container's root
//! (mode 0711 or wider), as with runc.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::error::{Error, Result};
use crate::sys::Syscalls;

/// The kernel's text for an id map: `inside outside count` lines.
pub fn map_text(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The host id that `id` inside maps to.
pub fn to_host(m: &[LinuxIdMapping], id: u32) -> Option<u32> {
    m.iter().find_map(|m| {
        let off = id.checked_sub(m.container_id())?;
        (off < m.size()).then(|| m.host_id() + off)
    })
}

fn maps(spec: &Spec) -> Result<(&[LinuxIdMapping], &[LinuxIdMapping])> {
    let linux = spec.linux().as_ref();
    let uids = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or(&[]);
    let gids = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or(&[]);
    if uids.is_empty() || gids.is_empty() {
        return Err(Error::Spec(
            "a user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    Ok((uids, gids))
}

/// In the shim, right after the clone: cgroup membership, then the id maps.
pub fn after_clone(spec: &Spec, cgroup_procs: &[PathBuf], pid: i32) -> Result<()> {
    let (uids, gids) = maps(spec)?;
    for f in cgroup_procs {
        std::fs::write(f, pid.to_string()).map_err(|e| Error::io("join cgroup", f, e))?;
    }
    let dir = PathBuf::from(format!("/proc/{pid}"));
    for (file, m) in [("uid_map", uids), ("gid_map", gids)] {
        let p = dir.join(file);
        std::fs::write(&p, map_text(m)).map_err(|e| Error::io("write", &p, e))?;
    }
    Ok(())
}

/// In the child, once mapped: become root of the namespace (when root is mapped), so
/// that what setup creates belongs to the container's root.
pub fn become_root(sys: &dyn Syscalls, spec: &Spec) -> Result<()> {
    let (uids, gids) = maps(spec)?;
    if to_host(gids, 0).is_some() {
        sys.setgid(0)
            .map_err(|e| Error::sys("setgid in user namespace", Path::new("-"), e))?;
    }
    if to_host(uids, 0).is_some() {
        sys.setuid(0)
            .map_err(|e| Error::sys("setuid in user namespace", Path::new("-"), e))?;
    }
    Ok(())
}

/// In the shim, with the rootfs mounted: makes sure the container's root owns it (see
/// the module comment). True when an idmapped mount was stacked on the rootfs.
pub fn prepare_rootfs(spec: &Spec, rootfs: &Path) -> Result<bool> {
    let (uids, gids) = maps(spec)?;
    let Some(root_uid) = to_host(uids, 0) else {
        return Ok(false);
    };
    let meta = std::fs::metadata(rootfs).map_err(|e| Error::io("stat", rootfs, e))?;
    if meta.uid() == root_uid || meta.uid() != 0 || root_uid == 0 {
        return Ok(false);
    }
    let userns = crate::sys::idmap::userns_fd(&map_text(uids), &map_text(gids))
        .map_err(|e| Error::sys("create a user namespace for", rootfs, e))?;
    match crate::sys::idmap::idmap_mount(rootfs, &userns) {
        Ok(()) => {
            tracing::info!(rootfs = %rootfs.display(), "rootfs idmapped for the user namespace");
            Ok(true)
        }
        Err(e) => Err(Error::Spec(format!(
            "rootfs {} is owned by 0 but the container's root is {root_uid}, and the kernel \
             cannot idmap it ({e}): shift its ownership first (berth_shim::idshift)",
            rootfs.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_lookups() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":100000,"size":1000},{"containerID":1000,"hostID":5000,"size":1}]"#,
        )
        .unwrap();
        assert_eq!(map_text(&m), "0 100000 1000\n1000 5000 1\n");
        assert_eq!(to_host(&m, 0), Some(100_000));
        assert_eq!(to_host(&m, 999), Some(100_999));
        assert_eq!(to_host(&m, 1000), Some(5000));
        assert_eq!(to_host(&m, 1001), None);
    }
}
