//! Task bundles under `<state>/tasks/<namespace>/<id>/`: `config.json` (the container's
//! OCI spec, verbatim), `rootfs/` (mounted by the shim), and the shim's own files
//! (`init.pid`, `shim.log`). Shim sockets live apart, under `<state>/s/`, with short
//! names: a unix socket path must stay under 108 bytes.

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

/// Removes a bundle, refusing to if its rootfs is still a mount point (so nothing of a
/// container's files is ever deleted through it).
pub fn remove(dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    if let (Ok(r), Ok(b)) = (std::fs::metadata(&rootfs), std::fs::metadata(dir))
        && r.dev() != b.dev()
    {
        return Err(Error::FailedPrecondition(format!(
            "{} is still mounted; not removing the bundle",
            rootfs.display()
        )));
    }
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
}
