//! The storage engine shared by the overlayfs and native snapshotters: metadata plus one
//! directory per snapshot under `<root>/snapshots/<id>`, with crash-safe creation and removal.
//!
//! A new snapshot is built in `snapshots/new-XXXX` outside any transaction, then renamed to
//! `snapshots/<id>` inside the metadata write transaction that creates its record; a crash
//! before that transaction commits leaves only a directory without a record, which
//! [`Store::cleanup`] removes (and which a later create with the same id replaces). Removal
//! deletes the record first (one durable commit), then renames the directory to
//! `snapshots/trash-*` and leaves the unlinks to a background thread ([`crate::trash`]);
//! a crash in between leaves an orphan or trash directory, which the next open (and
//! cleanup) reclaims, so a removed snapshot never comes back and its files never leak.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::fsutil::sync_dir;
use crate::metastore::{MetaStore, Snapshot, check_key, check_labels};
use crate::trash::Reaper;
use crate::types::{Info, Kind, Labels, Usage};

/// Prefix of directories of snapshots being built.
const TEMP_PREFIX: &str = "new-";
/// Prefix of orphan directories being deleted by cleanup.
const TRASH_PREFIX: &str = "trash-";

/// Shared state; cheap to clone into blocking tasks.
#[derive(Clone)]
pub(crate) struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    snapshots: PathBuf,
    meta: MetaStore,
    /// Names of `new-*` directories being built right now (cleanup must not touch them).
    building: Mutex<HashSet<String>>,
    /// Deletes removed snapshots' directories in the background.
    reaper: Reaper,
}

/// Builds a new snapshot's directory: called with the temporary directory and the parent
/// chain's directories (newest first).
pub(crate) type Populate = Box<dyn FnOnce(&Path, &[PathBuf]) -> Result<()> + Send>;

impl Store {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let snapshots = root.join("snapshots");
        for dir in [root, snapshots.as_path()] {
            match fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(dir)
            {
                Ok(()) => {}
                Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
            }
        }
        let meta = MetaStore::open(&root.join("metadata.redb"))?;
        let store = Store {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                snapshots,
                meta,
                building: Mutex::new(HashSet::new()),
                reaper: Reaper::default(),
            }),
        };
        // What an interrupted run left (orphans of creates and removes, trash not yet
        // deleted) goes now, in the background; nothing is being built yet.
        for dir in store.collect_orphans()? {
            store.inner.reaper.push(dir);
        }
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// `<root>/snapshots/<id>`.
    pub fn dir(&self, id: u64) -> PathBuf {
        self.inner.snapshots.join(id.to_string())
    }

    /// `<root>/snapshots/<id>/fs`.
    pub fn fs_dir(&self, id: u64) -> PathBuf {
        self.dir(id).join("fs")
    }

    /// `<root>/snapshots/<id>/work`.
    pub fn work_dir(&self, id: u64) -> PathBuf {
        self.dir(id).join("work")
    }

    /// Runs blocking store code off the async executor.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::io("snapshot store task", std::io::Error::other(e)))?
    }

    pub fn stat(&self, key: &str) -> Result<Info> {
        Ok(self.inner.meta.get(key)?.1)
    }

    pub fn get(&self, key: &str) -> Result<(u64, Info, Usage)> {
        self.inner.meta.get(key)
    }

    pub fn update(&self, info: &Info, fieldpaths: &[String]) -> Result<Info> {
        self.inner.meta.update(info, fieldpaths)
    }

    pub fn mountable(&self, key: &str) -> Result<Snapshot> {
        self.inner.meta.mountable(key)
    }

    pub fn list(&self) -> Result<Vec<Info>> {
        self.inner.meta.list()
    }

    /// Creates a snapshot whose directory is filled by `populate`.
    pub fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        populate: Populate,
    ) -> Result<Snapshot> {
        check_labels(&labels)?;
        // Fail fast (missing parent, existing key) before doing any file-system work.
        let parent_ids = self.inner.meta.check_create(kind, key, parent)?;
        let parent_dirs: Vec<PathBuf> = parent_ids.iter().map(|&id| self.fs_dir(id)).collect();

        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&self.inner.snapshots)
            .map_err(|e| {
                Error::io(
                    format!("create a directory in {}", self.inner.snapshots.display()),
                    e,
                )
            })?;
        let temp_name = temp
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _building = Building::new(self, temp_name);

        populate(temp.path(), &parent_dirs)?;

        let mut published: Option<PathBuf> = None;
        let result = self
            .inner
            .meta
            .create(kind, key, parent, labels, |id, ids| {
                if ids != parent_ids.as_slice() {
                    return Err(Error::FailedPrecondition(format!(
                        "parent of {key:?} changed while the snapshot was being created; retry"
                    )));
                }
                let dest = self.dir(id);
                // A directory with an unused id is an orphan of an interrupted create.
                if dest.exists() {
                    fs::remove_dir_all(&dest)
                        .map_err(|e| Error::io(format!("remove orphan {}", dest.display()), e))?;
                }
                fs::rename(temp.path(), &dest).map_err(|e| {
                    Error::io(
                        format!("rename {} to {}", temp.path().display(), dest.display()),
                        e,
                    )
                })?;
                published = Some(dest);
                sync_dir(&self.inner.snapshots)
            });
        match result {
            Ok(snapshot) => {
                // The directory now belongs to the snapshot; keep TempDir from deleting it.
                let _ = temp.keep();
                Ok(snapshot)
            }
            Err(e) => {
                if let Some(dest) = published
                    && let Err(err) = fs::remove_dir_all(&dest)
                {
                    tracing::warn!(path = %dest.display(), error = %err, "cannot remove directory of a failed create; cleanup will");
                }
                Err(e)
            }
        }
    }

    /// Commits active `key` as `name`.
    pub fn commit(&self, name: &str, key: &str, labels: Labels, usage: Usage) -> Result<()> {
        check_key("snapshot name", name)?;
        check_labels(&labels)?;
        self.inner.meta.commit(name, key, labels, usage)
    }

    /// Removes the record (durably), then moves the directory to the trash, whose files a
    /// background thread deletes.
    pub fn remove(&self, key: &str) -> Result<()> {
        let id = self.inner.meta.remove(key)?;
        let dir = self.dir(id);
        let to = self.trash_name(&id.to_string());
        match fs::rename(&dir, &to) {
            Ok(()) => self.inner.reaper.push(to),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::debug!(path = %dir.display(), error = %e, "cannot move snapshot directory to the trash; removing it now");
                if let Err(e) = fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %dir.display(), error = %e, "cannot remove snapshot directory; cleanup will");
                }
            }
        }
        Ok(())
    }

    /// A fresh `snapshots/trash-<name>-<stamp>` path.
    fn trash_name(&self, name: &str) -> PathBuf {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.inner
            .snapshots
            .join(format!("{TRASH_PREFIX}{name}-{stamp}"))
    }

    /// Removes every directory under `snapshots/` that belongs to no snapshot, and waits
    /// for the background deletion of removed snapshots.
    pub fn cleanup(&self) -> Result<()> {
        for dir in self.collect_orphans()? {
            if self.inner.reaper.owns(&dir) {
                continue;
            }
            tracing::info!(path = %dir.display(), "removing orphan snapshot directory");
            let removed = if dir.is_dir() {
                fs::remove_dir_all(&dir)
            } else {
                fs::remove_file(&dir)
            };
            if let Err(e) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::io(format!("remove {}", dir.display()), e));
            }
        }
        self.inner.reaper.wait_idle();
        Ok(())
    }

    /// Renames every directory under `snapshots/` that belongs to no snapshot to
    /// `trash-*` and returns the trash (including earlier trash).
    ///
    /// This runs under the metadata write lock, so that a create reusing an orphan's id
    /// cannot race with the deletion.
    fn collect_orphans(&self) -> Result<Vec<PathBuf>> {
        let snapshots = &self.inner.snapshots;
        self.inner
            .meta
            .with_write_lock(|ids| -> Result<Vec<PathBuf>> {
                let building = self
                    .inner
                    .building
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let mut trash = Vec::new();
                let read_err = |e| Error::io(format!("read dir {}", snapshots.display()), e);
                for entry in fs::read_dir(snapshots).map_err(read_err)? {
                    let entry = entry.map_err(read_err)?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with(TRASH_PREFIX) {
                        trash.push(entry.path());
                        continue;
                    }
                    let live = name.parse::<u64>().is_ok_and(|id| ids.contains(&id));
                    if live || building.contains(&name) {
                        continue;
                    }
                    let to = self.trash_name(&name);
                    fs::rename(entry.path(), &to).map_err(|e| {
                        Error::io(
                            format!("rename {} to {}", entry.path().display(), to.display()),
                            e,
                        )
                    })?;
                    trash.push(to);
                }
                Ok(trash)
            })?
    }
}

/// Registers a temporary directory as in use for the duration of a create.
struct Building<'a> {
    store: &'a Store,
    name: String,
}

impl<'a> Building<'a> {
    fn new(store: &'a Store, name: String) -> Self {
        store
            .inner
            .building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone());
        Building { store, name }
    }
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.store
            .inner
            .building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

/// The async face of the store: each call runs its blocking work on the blocking pool.
/// Both snapshotters delegate everything but directory population and mount lists here.
impl Store {
    pub async fn stat_async(&self, key: &str) -> Result<Info> {
        let key = key.to_string();
        self.blocking(move |s| s.stat(&key)).await
    }

    pub async fn update_async(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let fieldpaths = fieldpaths.to_vec();
        self.blocking(move |s| s.update(&info, &fieldpaths)).await
    }

    /// Usage of active snapshots is measured now; others report what commit recorded.
    pub async fn usage_async(&self, key: &str) -> Result<Usage> {
        let key = key.to_string();
        self.blocking(move |s| {
            let (id, info, usage) = s.get(&key)?;
            if info.kind == Kind::Active {
                return crate::fsutil::disk_usage(&s.fs_dir(id));
            }
            Ok(usage)
        })
        .await
    }

    pub async fn mountable_async(&self, key: &str) -> Result<Snapshot> {
        let key = key.to_string();
        self.blocking(move |s| s.mountable(&key)).await
    }

    pub async fn create_async(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        populate: Populate,
    ) -> Result<Snapshot> {
        let (key, parent) = (key.to_string(), parent.map(str::to_string));
        self.blocking(move |s| s.create(kind, &key, parent.as_deref(), labels, populate))
            .await
    }

    /// Measures the layer, then commits it.
    pub async fn commit_async(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        let (name, key) = (name.to_string(), key.to_string());
        self.blocking(move |s| {
            let (id, info, _) = s.get(&key)?;
            let usage = if info.kind == Kind::Active {
                crate::fsutil::disk_usage(&s.fs_dir(id))?
            } else {
                Usage::default()
            };
            s.commit(&name, &key, labels, usage)
        })
        .await
    }

    pub async fn remove_async(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.blocking(move |s| s.remove(&key)).await
    }

    pub async fn list_async(&self) -> Result<Vec<Info>> {
        self.blocking(|s| s.list()).await
    }

    pub async fn cleanup_async(&self) -> Result<()> {
        self.blocking(|s| s.cleanup()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Populate {
        Box::new(|dir: &Path, _: &[PathBuf]| {
            fs::create_dir(dir.join("fs")).map_err(|e| Error::io("mkdir fs", e))?;
            fs::write(dir.join("fs/file"), b"x").map_err(|e| Error::io("write", e))
        })
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn remove_frees_the_directory_at_once_and_deletes_it_in_the_background() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let s = store
            .create(Kind::Active, "a", None, Labels::new(), empty())
            .unwrap();
        let dir = store.dir(s.id);
        assert!(dir.join("fs/file").exists());
        store.remove("a").unwrap();
        assert!(
            !dir.exists(),
            "the id's directory is gone when remove returns"
        );
        assert!(store.get("a").is_err());
        store.cleanup().unwrap();
        assert!(entries(&tmp.path().join("snapshots")).is_empty());
    }

    #[test]
    fn open_reclaims_trash_and_orphans_left_by_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        let live = {
            let store = Store::open(tmp.path()).unwrap();
            store
                .create(Kind::Active, "kept", None, Labels::new(), empty())
                .unwrap()
                .id
        };
        let snapshots = tmp.path().join("snapshots");
        for orphan in ["trash-9-1", "77", "new-abc"] {
            fs::create_dir_all(snapshots.join(orphan).join("fs/deep")).unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        store.inner.reaper.wait_idle();
        assert_eq!(entries(&snapshots), vec![live.to_string()]);
        assert!(store.get("kept").is_ok());
    }
}
