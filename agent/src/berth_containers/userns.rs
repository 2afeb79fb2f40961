//! Root filesystems for `userns_remap` (docker's `--userns-remap`): every container runs
//! in its own user namespace whose root is an unprivileged host id, so its files must be
//! owned by the mapped ids. Overlayfs cannot be idmapped as a whole, and the image's
//! layers are shared, so berthd keeps one shifted copy of each image's root per id
//! mapping: a committed snapshot `berth-userns/<mapping>/<chain id>` holding the image's
//! files with every owner shifted ([`berth_shim::idshift::shift_tree`]), made on first
//! use and held by the containers built on it (the garbage collector removes it with
//! the last of them). The container's own upper directory, and volumes still owned by
//! the host's root, are given to the container's root.

use std::os::unix::fs::{MetadataExt, chown};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_shim::idshift::shift_tree;
use berth_shim::spec_defaults::IdRange;
use berth_snapshotter::Mount;
use berth_snapshotter::fsutil::copy_tree;
use berth_snapshotter::mount::{TempMount, read_only};

use crate::core::Core;
use crate::error::{Error, Result};

/// The snapshot key of the shifted copy of `chain_id` under this mapping.
pub fn shifted_key(uids: &IdRange, gids: &IdRange, chain_id: &str) -> String {
    format!(
        "berth-userns/{}-{}-{}-{}/{chain_id}",
        uids.host, uids.size, gids.host, gids.size
    )
}

/// The parent for a container's snapshot under `userns_remap`: the shifted copy of the
/// image's top layer `parent`, made now when there is none yet. `scratch` is a directory
/// for temporary mount points.
pub async fn shifted_parent(
    core: &Arc<Core>,
    ns: &str,
    snapshotter: &str,
    parent: &str,
    (uids, gids): (IdRange, IdRange),
    lease: &str,
    scratch: &Path,
) -> Result<String> {
    let sn = core.snapshots.get(ns, snapshotter)?;
    let key = shifted_key(&uids, &gids, parent);
    if sn.stat(&key).await.is_ok() {
        return Ok(key);
    }
    let tag = &super::names::new_id()[..12];
    let (view, work) = (format!("{key}/view-{tag}"), format!("{key}/shift-{tag}"));
    let src = sn
        .view(&view, Some(parent), Default::default(), Some(lease))
        .await?;
    let made = async {
        let dst = sn
            .prepare(&work, None, Default::default(), Some(lease))
            .await?;
        let scratch = scratch.to_path_buf();
        tokio::task::spawn_blocking(move || copy_shifted(&src, &dst, &scratch, uids, gids))
            .await
            .map_err(|e| Error::Internal(format!("shift an image root: {e}")))??;
        match sn.commit(&key, &work, Default::default(), Some(lease)).await {
            Ok(()) => {
                tracing::info!(namespace = %ns, snapshot = %key, "image root shifted for userns_remap");
                Ok(())
            }
            // Another create made it meanwhile.
            Err(Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
    .await;
    for k in [&view, &work] {
        match sn.remove(k).await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => tracing::warn!(snapshot = %k, error = %e, "remove a temporary snapshot"),
        }
    }
    made.map(|()| key)
}

fn copy_shifted(
    src: &[Mount],
    dst: &[Mount],
    scratch: &Path,
    uids: IdRange,
    gids: IdRange,
) -> Result<()> {
    std::fs::create_dir_all(scratch)
        .map_err(|e| Error::io(format!("create {}", scratch.display()), e))?;
    let from = TempMount::new(&read_only(src), Some(scratch))?;
    let to = TempMount::new(dst, Some(scratch))?;
    copy_tree(from.path(), to.path())?;
    shift_tree(to.path(), &[uids], &[gids]).map_err(|e| Error::Internal(e.to_string()))?;
    to.close()?;
    from.close()?;
    Ok(())
}

/// The directory a container's writes go to: the overlay's upper directory, or the
/// bound directory of a snapshot without parent.
fn upper_dir(mounts: &[Mount]) -> Option<PathBuf> {
    let m = mounts.first()?;
    match m.kind.as_str() {
        "overlay" => m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(PathBuf::from),
        "bind" | "rbind" => Some(PathBuf::from(&m.source)),
        _ => None,
    }
}

/// Gives the top of a container's writable layer to the container's root, so the
/// shim sees a root filesystem owned by the mapped ids.
pub fn own_upper(mounts: &[Mount], uids: &IdRange, gids: &IdRange) -> Result<()> {
    let dir = upper_dir(mounts).ok_or_else(|| {
        Error::Unimplemented(format!(
            "userns_remap: cannot find the writable directory of mounts {mounts:?}"
        ))
    })?;
    chown(&dir, Some(uids.host), Some(gids.host))
        .map_err(|e| Error::io(format!("chown {}", dir.display()), e))
}

/// Gives a volume's data directory to the container's root when it is still owned by
/// the host's root (a new empty volume; one filled from a shifted image root has the
/// image's owners already).
pub fn own_volume(data: &Path, uids: &IdRange, gids: &IdRange) -> Result<()> {
    let meta =
        std::fs::metadata(data).map_err(|e| Error::io(format!("stat {}", data.display()), e))?;
    if meta.uid() != 0 || meta.gid() != 0 {
        return Ok(());
    }
    chown(data, Some(uids.host), Some(gids.host))
        .map_err(|e| Error::io(format!("chown {}", data.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_upper_dirs() {
        let r = IdRange {
            container: 0,
            host: 100_000,
            size: 65_536,
        };
        assert_eq!(
            shifted_key(&r, &r, "sha256:ab"),
            "berth-userns/100000-65536-100000-65536/sha256:ab"
        );
        let overlay = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "lowerdir=/a:/b".into(),
                "upperdir=/s/9/fs".into(),
                "workdir=/s/9/work".into(),
            ],
        };
        assert_eq!(upper_dir(&[overlay]), Some(PathBuf::from("/s/9/fs")));
        let bind = Mount {
            kind: "bind".into(),
            source: "/s/1/fs".into(),
            options: vec!["rbind".into(), "rw".into()],
        };
        assert_eq!(upper_dir(&[bind]), Some(PathBuf::from("/s/1/fs")));
    }
}
