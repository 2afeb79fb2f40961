//! Per-namespace views over one snapshotter: keys, names and parents carry a `<ns>/` prefix
//! inside the backend and are stripped on the way out.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::metastore::check_key;
use crate::snapshotter::Snapshotter;
use crate::types::{Info, Labels, Mount, Usage};

/// A view of `inner` restricted to one namespace.
///
/// Every key, name and parent is stored as `<namespace>/<key>` in the backend; `list` only
/// returns this namespace's snapshots, with the prefix removed.
#[derive(Debug, Clone)]
pub struct Namespaced<S> {
    inner: S,
    prefix: String,
}

impl<S: Snapshotter> Namespaced<S> {
    /// Wraps `inner` for `namespace`; the name must be non-empty and contain no `/`.
    pub fn new(inner: S, namespace: &str) -> Result<Self> {
        if namespace.is_empty() || namespace.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "invalid namespace {namespace:?}: must be non-empty and contain no '/'"
            )));
        }
        Ok(Namespaced {
            inner,
            prefix: format!("{namespace}/"),
        })
    }

    /// The namespace this view is bound to.
    pub fn namespace(&self) -> &str {
        &self.prefix[..self.prefix.len() - 1]
    }

    /// The wrapped snapshotter.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn wrap(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn strip(&self, mut info: Info) -> Option<Info> {
        info.name = info.name.strip_prefix(&self.prefix)?.to_string();
        info.parent = info.parent.map(|p| {
            p.strip_prefix(&self.prefix)
                .map(str::to_string)
                .unwrap_or(p)
        });
        Some(info)
    }

    fn strip_known(&self, info: Info) -> Result<Info> {
        let name = info.name.clone();
        self.strip(info)
            .ok_or_else(|| Error::NotFound(format!("snapshot {name:?} is not in this namespace")))
    }
}

#[async_trait]
impl<S: Snapshotter> Snapshotter for Namespaced<S> {
    async fn stat(&self, key: &str) -> Result<Info> {
        let info = self.inner.stat(&self.wrap(key)).await?;
        self.strip_known(info)
    }

    async fn update(&self, mut info: Info, fieldpaths: &[String]) -> Result<Info> {
        info.name = self.wrap(&info.name);
        info.parent = info.parent.map(|p| self.wrap(&p));
        let info = self.inner.update(info, fieldpaths).await?;
        self.strip_known(info)
    }

    async fn usage(&self, key: &str) -> Result<Usage> {
        self.inner.usage(&self.wrap(key)).await
    }

    async fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        self.inner.mounts(&self.wrap(key)).await
    }

    async fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        check_key("snapshot key", key)?;
        let parent = parent.map(|p| self.wrap(p));
        self.inner
            .prepare(&self.wrap(key), parent.as_deref(), labels)
            .await
    }

    async fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        check_key("snapshot key", key)?;
        let parent = parent.map(|p| self.wrap(p));
        self.inner
            .view(&self.wrap(key), parent.as_deref(), labels)
            .await
    }

    async fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        check_key("snapshot name", name)?;
        self.inner
            .commit(&self.wrap(name), &self.wrap(key), labels)
            .await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.inner.remove(&self.wrap(key)).await
    }

    async fn list(&self) -> Result<Vec<Info>> {
        let all = self.inner.list().await?;
        Ok(all.into_iter().filter_map(|i| self.strip(i)).collect())
    }

    async fn cleanup(&self) -> Result<()> {
        self.inner.cleanup().await
    }
}
