//! The `native` snapshotter: every snapshot is a full copy of its parent in
//! `snapshots/<id>/fs`, exposed as a bind mount. Works on any file system.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::Result;
use crate::fsutil::copy_tree;
use crate::metastore::Snapshot;
use crate::overlay::mkdir;
use crate::snapshotter::Snapshotter;
use crate::store::{Populate, Store};
use crate::types::{Info, Kind, Labels, Mount, Usage};

/// Snapshots as full copies.
#[derive(Clone)]
pub struct NativeSnapshotter {
    store: Store,
}

impl NativeSnapshotter {
    /// Opens (creating if needed) the snapshotter rooted at `root`; metadata lives in
    /// `<root>/metadata.redb`, trees in `<root>/snapshots/<id>/fs`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Ok(NativeSnapshotter {
            store: Store::open(root.as_ref())?,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    fn mounts_of(&self, s: &Snapshot) -> Vec<Mount> {
        vec![Mount::bind(
            self.store.fs_dir(s.id).to_string_lossy().into_owned(),
            s.kind == Kind::View,
        )]
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
            if let Some(parent) = parents.first() {
                copy_tree(parent, &fs_dir)?;
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

#[async_trait]
impl Snapshotter for NativeSnapshotter {
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
