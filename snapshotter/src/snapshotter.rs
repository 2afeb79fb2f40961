//! The `Snapshotter` trait: containerd's snapshot model in plain Rust types.
//!
//! Lifecycle: `prepare(key, parent)` creates an *active* (writable) snapshot on top of a
//! *committed* parent (or of nothing); `view(key, parent)` creates a read-only *view*;
//! `commit(name, key)` turns an active snapshot into a committed one under a new name (the
//! key disappears); `remove` deletes a snapshot that has no children. Keys and names share
//! one namespace per snapshotter and are opaque strings.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{Info, Labels, Mount, Usage};

/// A copy-on-write snapshot store.
///
/// Errors follow containerd: a missing key or parent is `NotFound`; an existing key or name
/// is `AlreadyExists`; removing a snapshot with children, committing a snapshot that is not
/// active, or asking for the mounts of a committed snapshot is `FailedPrecondition`; a parent
/// that is not committed, an empty key or an unknown update field is `InvalidArgument`.
#[async_trait]
pub trait Snapshotter: Send + Sync {
    /// The info of the snapshot with this key or name.
    async fn stat(&self, key: &str) -> Result<Info>;

    /// Updates the mutable fields (labels) of the snapshot named `info.name`.
    ///
    /// `fieldpaths` select what changes: `labels` replaces all labels, `labels.<k>` sets one
    /// label (removed when absent from `info.labels` or empty). No paths replace all labels.
    async fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info>;

    /// Disk usage of the snapshot's own layer.
    async fn usage(&self, key: &str) -> Result<Usage>;

    /// The mounts of an active snapshot or view.
    async fn mounts(&self, key: &str) -> Result<Vec<Mount>>;

    /// Creates an active snapshot `key` on top of the committed `parent`.
    async fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>>;

    /// Creates a read-only view `key` of the committed `parent`.
    async fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>>;

    /// Commits the active snapshot `key` as `name`; labels replace the active ones.
    async fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()>;

    /// Removes a snapshot that has no children.
    async fn remove(&self, key: &str) -> Result<()>;

    /// Every snapshot; callers filter.
    async fn list(&self) -> Result<Vec<Info>>;

    /// Reclaims disk space of removed or half-created snapshots.
    async fn cleanup(&self) -> Result<()>;
}

#[async_trait]
impl<T: Snapshotter + ?Sized> Snapshotter for Arc<T> {
    async fn stat(&self, key: &str) -> Result<Info> {
        (**self).stat(key).await
    }
    async fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        (**self).update(info, fieldpaths).await
    }
    async fn usage(&self, key: &str) -> Result<Usage> {
        (**self).usage(key).await
    }
    async fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        (**self).mounts(key).await
    }
    async fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        (**self).prepare(key, parent, labels).await
    }
    async fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        (**self).view(key, parent, labels).await
    }
    async fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        (**self).commit(name, key, labels).await
    }
    async fn remove(&self, key: &str) -> Result<()> {
        (**self).remove(key).await
    }
    async fn list(&self) -> Result<Vec<Info>> {
        (**self).list().await
    }
    async fn cleanup(&self) -> Result<()> {
        (**self).cleanup().await
    }
}
