//! The `overlayfs` snapshotter: each snapshot owns `snapshots/<id>/fs` (its layer, the
//! overlay upper directory while active) and `snapshots/<id>/work`; parents are stacked as
//! overlay lower directories. Mount lists are the ones containerd's overlayfs snapshotter
//! returns, so clients that mount them themselves (ctr) behave the same.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, lchown};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::metastore::Snapshot;
use crate::snapshotter::Snapshotter;
use crate::store::{Populate, Store};
use crate::types::{Info, Kind, Labels, Mount, Usage};

/// Copy-on-write snapshots on overlayfs.
#[derive(Clone)]
pub struct OverlaySnapshotter {
    store: Store,
    index_off: bool,
}

impl OverlaySnapshotter {
    /// Opens (creating if needed) the snapshotter rooted at `root`; metadata lives in
    /// `<root>/metadata.redb`, layers in `<root>/snapshots/<id>/`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Ok(OverlaySnapshotter {
            store: Store::open(root.as_ref())?,
            index_off: Path::new("/sys/module/overlay/parameters/index").exists(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    fn path_str(p: PathBuf) -> String {
        p.to_string_lossy().into_owned()
    }

    fn mounts_of(&self, s: &Snapshot) -> Vec<Mount> {
        let store = &self.store;
        if s.parent_ids.is_empty() {
            return vec![Mount::bind(
                Self::path_str(store.fs_dir(s.id)),
                s.kind == Kind::View,
            )];
        }
        if s.kind == Kind::View && s.parent_ids.len() == 1 {
            return vec![Mount::bind(
                Self::path_str(store.fs_dir(s.parent_ids[0])),
                true,
            )];
        }
        let mut options = Vec::new();
        if self.index_off {
            options.push("index=off".to_string());
        }
        if s.kind == Kind::Active {
            options.push(format!("workdir={}", store.work_dir(s.id).display()));
            options.push(format!("upperdir={}", store.fs_dir(s.id).display()));
        }
        let lowers: Vec<String> = s
            .parent_ids
            .iter()
            .map(|&id| Self::path_str(store.fs_dir(id)))
            .collect();
        options.push(format!("lowerdir={}", lowers.join(":")));
        vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }]
    }

    async fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        let populate: Populate = Box::new(move |dir: &Path, parents: &[PathBuf]| {
            let fs_dir = dir.join("fs");
            mkdir(&fs_dir, 0o755)?;
            if kind == Kind::Active {
                mkdir(&dir.join("work"), 0o711)?;
            }
            // The layer's root takes the owner of the parent's root, as containerd does.
            if let Some(parent) = parents.first() {
                let meta = fs::metadata(parent)
                    .map_err(|e| Error::io(format!("stat parent {}", parent.display()), e))?;
                lchown(&fs_dir, Some(meta.uid()), Some(meta.gid()))
                    .map_err(|e| Error::io(format!("chown {}", fs_dir.display()), e))?;
            }
            Ok(())
        });
        let snapshot = self
            .store
            .create_async(kind, key, parent, labels, populate)
            .await?;
        Ok(self.mounts_of(&snapshot))
    }
}

pub(crate) fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    // The umask may have cut bits.
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))
}

#[async_trait]
impl Snapshotter for OverlaySnapshotter {
    async fn stat(&self, key: &str) -> Result<Info> {
        self.store.stat_async(key).await
    }

    async fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        self.store.update_async(info, fieldpaths).await
    }

    async fn usage(&self, key: &str) -> Result<Usage> {
        self.store.usage_async(key).await
    }

    async fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let snapshot = self.store.mountable_async(key).await?;
        Ok(self.mounts_of(&snapshot))
    }

    async fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels).await
    }

    async fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels).await
    }

    async fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        self.store.commit_async(name, key, labels).await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.store.remove_async(key).await
    }

    async fn list(&self) -> Result<Vec<Info>> {
        self.store.list_async().await
    }

    async fn cleanup(&self) -> Result<()> {
        self.store.cleanup_async().await
    }
}
