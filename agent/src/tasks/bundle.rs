//! Task bundles under `<state>/tasks/<namespace>/<id>/`: `config.json` (the container's
//! OCI spec, verbatim), `rootfs/` (mounted by the shim), and the shim's own files
//! (`init.pid`, `shim.log`). Shim sockets live apart, under `<state>/s/`, with short
//! names: a unix socket path must stay under 108 bytes. A deleted task's bundle is
//! renamed into `<state>/trash/` at once and its files are removed in the background
//! (Tasks.Delete does not wait for the unlinks); what a crash leaves there is removed at
//! the next start.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The bundle directory of a task.
pub fn dir(state: &Path, ns: &str, id: &str) -> PathBuf {
    state.join("tasks").join(ns).join(id)
}

/// The shim socket of a task.
pub fn socket(state: &Path, ns: &str, id: &str) -> PathBuf {
    let hash = Sha256::digest(format!("{ns}/{id}").as_bytes());
    state
        .join("s")
        .join(format!("{}.sock", &hex::encode(hash)[..20]))
}

/// Creates the bundle with the spec; fails if one exists.
pub fn create(dir: &Path, spec: &[u8]) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(dir)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::AlreadyExists(format!("task bundle {}", dir.display()))
            } else {
                Error::io(format!("create {}", dir.display()), e)
            }
        })?;
    std::fs::write(dir.join("config.json"), spec)
        .map_err(|e| Error::io(format!("write {}/config.json", dir.display()), e))
}

/// Refuses when the bundle's rootfs is still a mount point (so nothing of a container's
/// files is ever deleted through it).
fn check_unmounted(dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    if let (Ok(r), Ok(b)) = (std::fs::metadata(&rootfs), std::fs::metadata(dir))
        && r.dev() != b.dev()
    {
        return Err(Error::FailedPrecondition(format!(
            "{} is still mounted; not removing the bundle",
            rootfs.display()
        )));
    }
    Ok(())
}

/// The directory deleted bundles are moved to.
fn trash(state: &Path) -> PathBuf {
    state.join("trash")
}

/// Removes a bundle: renames it into the trash (so its id is free at once) and deletes
/// its files on a blocking thread without waiting. Falls back to [`remove`] when the
/// rename fails. Refuses while the rootfs is mounted.
pub fn discard(state: &Path, dir: &Path) -> Result<()> {
    check_unmounted(dir)?;
    let trash = trash(state);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = trash.join(format!("{name}-{stamp}"));
    let moved = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&trash)
        .and_then(|()| std::fs::rename(dir, &to));
    if moved.is_err() {
        return remove(dir);
    }
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    tokio::task::spawn_blocking(move || {
        if let Err(e) = std::fs::remove_dir_all(&to) {
            tracing::warn!(path = %to.display(), error = %e, "remove a deleted bundle");
        }
    });
    Ok(())
}

/// Deletes what a previous run left in the trash.
pub fn empty_trash(state: &Path) {
    let trash = trash(state);
    if let Err(e) = std::fs::remove_dir_all(&trash)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %trash.display(), error = %e, "empty the bundle trash");
    }
}

/// Removes a bundle now, refusing to if its rootfs is still a mount point.
pub fn remove(dir: &Path) -> Result<()> {
    check_unmounted(dir)?;
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("remove {}", dir.display()), e)),
    }
    // Drop the namespace directory when it is the last task of it.
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// Every bundle present: (namespace, id, dir).
pub fn list(state: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(namespaces) = std::fs::read_dir(state.join("tasks")) else {
        return out;
    };
    for ns in namespaces.flatten() {
        let Ok(ids) = std::fs::read_dir(ns.path()) else {
            continue;
        };
        for id in ids.flatten() {
            if id.path().is_dir() {
                out.push((
                    ns.file_name().to_string_lossy().into_owned(),
                    id.file_name().to_string_lossy().into_owned(),
                    id.path(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_are_short_and_distinct() {
        let state = Path::new("/tmp/berth-it-abcdef/state");
        let a = socket(state, &"n".repeat(76), &"i".repeat(76));
        let b = socket(state, "ns", "id");
        assert!(a.as_os_str().len() < 108);
        assert_ne!(a, b);
    }

    #[test]
    fn create_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dir(tmp.path(), "ns", "c1");
        create(&d, b"{}").unwrap();
        assert!(matches!(create(&d, b"{}"), Err(Error::AlreadyExists(_))));
        std::fs::create_dir(d.join("rootfs")).unwrap();
        assert_eq!(
            list(tmp.path()),
            vec![("ns".into(), "c1".into(), d.clone())]
        );
        remove(&d).unwrap();
        assert!(list(tmp.path()).is_empty());
        assert!(!tmp.path().join("tasks/ns").exists());
    }

    #[tokio::test]
    async fn discard_frees_the_id_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dir(tmp.path(), "ns", "c1");
        create(&d, b"{}").unwrap();
        discard(tmp.path(), &d).unwrap();
        assert!(list(tmp.path()).is_empty());
        assert!(!tmp.path().join("tasks/ns").exists());
        // The same id can have a bundle again while the old files are being removed.
        create(&d, b"{}").unwrap();
        assert_eq!(list(tmp.path()).len(), 1);
    }

    #[test]
    fn empty_trash_removes_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("trash/c1-1/rootfs")).unwrap();
        empty_trash(tmp.path());
        assert!(!tmp.path().join("trash").exists());
        empty_trash(tmp.path());
    }
}
