//! The root filesystem: the snapshot mounts at `<bundle>/rootfs` (done by the shim in
//! its own mount namespace, undone at delete), and in the child the switch to it:
//! propagation, pivot_root or MS_MOVE + chroot, read-only root.

use std::path::Path;

use crate::error::{Error, Result};
use crate::runtime::mounts::{parse_options, propagation_flag};
use crate::sys::{Errno, MntFlags, MsFlags, Syscalls};

/// One filesystem of the rootfs list: type, source, options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootMount {
    /// Filesystem type (`overlay`, `bind`, ...).
    pub fstype: String,
    /// Source.
    pub source: String,
    /// mount(8) options.
    pub options: Vec<String>,
}

/// Mounts the rootfs list on `target`, in order. On failure, what was mounted is
/// unmounted again.
pub fn mount_rootfs(sys: &dyn Syscalls, mounts: &[RootMount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        let opts = parse_options(&m.options);
        let res = if opts.is_bind() || m.fstype == "bind" {
            let rec = opts.flags & MsFlags::MS_REC;
            sys.mount(
                Some(Path::new(&m.source)),
                target,
                None,
                MsFlags::MS_BIND | rec,
                None,
            )
            .and_then(|()| {
                let extra = opts.remount_flags();
                if extra.is_empty() {
                    Ok(())
                } else {
                    sys.mount(
                        None,
                        target,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec | extra,
                        None,
                    )
                }
            })
        } else {
            let data = opts.data_string();
            sys.mount(
                Some(Path::new(&m.source)),
                target,
                Some(&m.fstype),
                opts.flags,
                data.as_deref(),
            )
        };
        if let Err(e) = res {
            for _ in 0..i {
                let _ = sys.umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(Error::sys("mount rootfs", target, e));
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (no-op when nothing is).
pub fn unmount_rootfs(sys: &dyn Syscalls, target: &Path) -> Result<()> {
    for _ in 0..32 {
        match sys.umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => {
                sys.umount2(target, MntFlags::MNT_DETACH)
                    .map_err(|e| Error::sys("unmount", target, e))?;
            }
            Err(e) => return Err(Error::sys("unmount", target, e)),
        }
    }
    Ok(())
}

/// The flags of `linux.rootfsPropagation`, if set.
pub fn root_propagation(value: Option<&str>) -> Result<Option<MsFlags>> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => propagation_flag(v)
            .map(Some)
            .ok_or_else(|| Error::Spec(format!("rootfsPropagation {v:?} is not a propagation"))),
    }
}

/// In the child's new mount namespace: stops mount events from reaching the host
/// (rslave, or the spec's rootfsPropagation) and makes the rootfs a mount point of its own.
pub fn prepare(sys: &dyn Syscalls, rootfs: &Path, propagation: Option<MsFlags>) -> Result<()> {
    let flags = propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    sys.mount(None, Path::new("/"), None, flags, None)
        .map_err(|e| Error::sys("set propagation of", "/", e))?;
    sys.mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(|e| Error::sys("bind mount", rootfs, e))
}

/// Switches the root to `rootfs`, then applies propagation and read-only.
pub fn switch(
    sys: &dyn Syscalls,
    rootfs: &Path,
    no_pivot: bool,
    propagation: Option<MsFlags>,
    readonly: bool,
) -> Result<()> {
    if no_pivot {
        sys.move_root(rootfs)
            .map_err(|e| Error::sys("move root to", rootfs, e))?;
    } else {
        sys.pivot_root(rootfs)
            .map_err(|e| Error::sys("pivot_root to", rootfs, e))?;
    }
    if let Some(p) = propagation {
        sys.mount(None, Path::new("/"), None, p, None)
            .map_err(|e| Error::sys("set propagation of", "/", e))?;
    }
    if readonly {
        sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )
        .map_err(|e| Error::sys("remount read-only", "/", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Recorder;

    #[test]
    fn overlay_rootfs() {
        let sys = Recorder::new();
        let m = RootMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                "lowerdir=/a:/b".into(),
                "upperdir=/u".into(),
                "workdir=/w".into(),
            ],
        };
        mount_rootfs(&sys, &[m], Path::new("/bundle/rootfs")).unwrap();
        assert_eq!(
            sys.calls(),
            [
                "mount overlay /bundle/rootfs overlay 0x0 index=off,lowerdir=/a:/b,upperdir=/u,workdir=/w"
            ]
        );
    }

    #[test]
    fn readonly_bind_rootfs_is_remounted() {
        let sys = Recorder::new();
        let m = RootMount {
            fstype: "bind".into(),
            source: "/snap/1/fs".into(),
            options: vec!["rbind".into(), "ro".into()],
        };
        mount_rootfs(&sys, &[m], Path::new("/b/rootfs")).unwrap();
        let calls = sys.calls();
        assert_eq!(calls.len(), 2);
        assert!(calls[1].contains("MS_RDONLY"));
    }

    #[test]
    fn unmount_until_nothing_left() {
        let sys = Recorder::new();
        sys.fail("umount2", Errno::EINVAL);
        unmount_rootfs(&sys, Path::new("/b/rootfs")).unwrap();
        assert_eq!(sys.calls().len(), 1);
    }

    #[test]
    fn pivot_or_move() {
        let sys = Recorder::new();
        switch(&sys, Path::new("/r"), false, None, true).unwrap();
        assert_eq!(sys.calls()[0], "pivot_root /r");
        assert!(sys.calls()[1].contains("MS_RDONLY"));
        let sys = Recorder::new();
        switch(
            &sys,
            Path::new("/r"),
            true,
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
            false,
        )
        .unwrap();
        assert_eq!(sys.calls()[0], "move_root /r");
        assert!(sys.calls()[1].contains("MS_SHARED"));
        assert!(root_propagation(Some("bogus")).is_err());
    }
}
