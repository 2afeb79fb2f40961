//! Snapshots in berthd: the snapshotters (`overlayfs`, the default, and `native`) under
//! `<root>/snapshots/<name>`, seen per namespace, with events, lease bookkeeping and
//! garbage collection. The copy-on-write work itself is the `berth-snapshotter` crate.

mod gc;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use berth_api::containerd::events::{SnapshotCommit, SnapshotPrepare, SnapshotRemove};
use berth_snapshotter::{
    ErrorKind, Info, Labels, Mount, Namespaced, NativeSnapshotter, OverlaySnapshotter, Snapshotter,
    Usage,
};

pub use gc::SnapshotsGc;

use crate::error::{Error, Result};
use crate::events::Exchange;
use crate::metadata::{LeaseResource, Metadata};

/// The snapshotter used when a request names none.
pub const DEFAULT: &str = "overlayfs";

/// A snapshotter shared by every namespace.
pub type Backend = Arc<dyn Snapshotter>;

impl From<berth_snapshotter::Error> for Error {
    fn from(e: berth_snapshotter::Error) -> Self {
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::NotFound => Error::NotFound(msg),
            ErrorKind::AlreadyExists => Error::AlreadyExists(msg),
            ErrorKind::FailedPrecondition => Error::FailedPrecondition(msg),
            ErrorKind::InvalidArgument => Error::InvalidArgument(msg),
            ErrorKind::NotImplemented => Error::Unimplemented(msg),
            ErrorKind::Internal => Error::Internal(msg),
        }
    }
}

/// Every snapshotter of this daemon.
#[derive(Clone)]
pub struct Snapshots {
    backends: BTreeMap<&'static str, Backend>,
    md: Arc<Metadata>,
    events: Exchange,
}

impl Snapshots {
    /// Opens the snapshotters under `<root>/snapshots/`.
    pub fn open(root: &Path, md: Arc<Metadata>, events: Exchange) -> Result<Snapshots> {
        let dir = root.join("snapshots");
        let mut backends: BTreeMap<&'static str, Backend> = BTreeMap::new();
        backends.insert(
            "overlayfs",
            Arc::new(OverlaySnapshotter::open(dir.join("overlayfs"))?),
        );
        backends.insert(
            "native",
            Arc::new(NativeSnapshotter::open(dir.join("native"))?),
        );
        Ok(Snapshots {
            backends,
            md,
            events,
        })
    }

    /// The names of the snapshotters.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.backends.keys().copied()
    }

    /// The backend called `name` (empty: the default), across namespaces.
    pub fn backend(&self, name: &str) -> Result<(&'static str, Backend)> {
        let name = if name.is_empty() { DEFAULT } else { name };
        self.backends
            .get_key_value(name)
            .map(|(k, v)| (*k, v.clone()))
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "snapshotter {name} (available: {})",
                    self.backends.keys().copied().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    /// The snapshotter `name` as seen from namespace `ns`.
    pub fn get(&self, ns: &str, name: &str) -> Result<Snapshotter_> {
        let (name, backend) = self.backend(name)?;
        Ok(Snapshotter_ {
            name,
            ns: ns.to_string(),
            inner: Namespaced::new(backend, ns)?,
            md: self.md.clone(),
            events: self.events.clone(),
        })
    }
}

/// One snapshotter in one namespace: the operations the Snapshots and Diff services,
/// image unpacking and containers use.
pub struct Snapshotter_ {
    name: &'static str,
    ns: String,
    inner: Namespaced<Backend>,
    md: Arc<Metadata>,
    events: Exchange,
}

impl Snapshotter_ {
    /// The snapshotter's name (`overlayfs`, `native`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn resource(&self, key: &str) -> LeaseResource {
        LeaseResource {
            kind: format!("snapshots/{}", self.name),
            id: key.to_string(),
        }
    }

    /// Puts `key` in the lease *before* the snapshot exists, so that a garbage
    /// collection running meanwhile never sees it unreferenced. True when the lease did
    /// not hold it already.
    fn hold(&self, lease: Option<&str>, key: &str) -> Result<bool> {
        match lease {
            Some(lease) => self.md.lease_hold(&self.ns, lease, &self.resource(key)),
            None => Ok(false),
        }
    }

    /// Takes `key` out of the lease again when creating it failed.
    fn release(&self, lease: Option<&str>, key: &str) {
        if let Some(lease) = lease
            && let Err(e) = self
                .md
                .lease_delete_resource(&self.ns, lease, &self.resource(key))
        {
            tracing::debug!(key, error = %e, "release lease resource");
        }
    }

    /// Runs `op` with `key` held by the lease, releasing it if `op` fails.
    async fn held<T>(
        &self,
        lease: Option<&str>,
        key: &str,
        op: impl std::future::Future<Output = berth_snapshotter::Result<T>>,
    ) -> Result<T> {
        let added = self.hold(lease, key)?;
        op.await.map_err(|e| {
            if added {
                self.release(lease, key);
            }
            e.into()
        })
    }

    /// Creates the namespace record on the first snapshot in it. The common case (it
    /// exists) is a read: a write transaction would cost a durable commit per call.
    fn ensure_namespace(&self) -> Result<()> {
        if self.md.read(|tx| tx.namespace_exists(&self.ns))? {
            return Ok(());
        }
        self.md.write(|tx| tx.ensure_namespace(&self.ns))
    }

    pub async fn stat(&self, key: &str) -> Result<Info> {
        Ok(self.inner.stat(key).await?)
    }

    pub async fn update(&self, info: Info, paths: &[String]) -> Result<Info> {
        crate::labels::validate(&info.labels)?;
        Ok(self.inner.update(info, paths).await?)
    }

    pub async fn usage(&self, key: &str) -> Result<Usage> {
        Ok(self.inner.usage(key).await?)
    }

    pub async fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        Ok(self.inner.mounts(key).await?)
    }

    /// Creates an active snapshot; with a lease, the lease holds it.
    pub async fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<Vec<Mount>> {
        crate::labels::validate(&labels)?;
        self.ensure_namespace()?;
        let mounts = self
            .held(lease, key, self.inner.prepare(key, parent, labels))
            .await?;
        self.events.publish(
            &self.ns,
            "/snapshot/prepare",
            &SnapshotPrepare {
                key: key.into(),
                parent: parent.unwrap_or_default().into(),
            },
        );
        Ok(mounts)
    }

    /// Creates a read-only view; with a lease, the lease holds it.
    pub async fn view(
        &self,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<Vec<Mount>> {
        crate::labels::validate(&labels)?;
        self.ensure_namespace()?;
        let mounts = self
            .held(lease, key, self.inner.view(key, parent, labels))
            .await?;
        Ok(mounts)
    }

    /// Commits the active snapshot `key` as `name`; with a lease, the lease holds it.
    pub async fn commit(
        &self,
        name: &str,
        key: &str,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<()> {
        crate::labels::validate(&labels)?;
        self.held(lease, name, self.inner.commit(name, key, labels))
            .await?;
        self.events.publish(
            &self.ns,
            "/snapshot/commit",
            &SnapshotCommit {
                key: key.into(),
                name: name.into(),
            },
        );
        Ok(())
    }

    pub async fn remove(&self, key: &str) -> Result<()> {
        self.inner.remove(key).await?;
        self.events.publish(
            &self.ns,
            "/snapshot/remove",
            &SnapshotRemove { key: key.into() },
        );
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<Info>> {
        Ok(self.inner.list().await?)
    }

    pub async fn cleanup(&self) -> Result<()> {
        Ok(self.inner.cleanup().await?)
    }
}

/// Filter fields of a snapshot, as containerd's: kind, name, parent, labels.
pub struct InfoFields<'a>(pub &'a Info);

impl crate::filters::Adaptor for InfoFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let i = self.0;
        match path.first()?.as_str() {
            "kind" => Some(i.kind.as_str().to_string()),
            "name" => Some(i.name.clone()),
            "parent" => i.parent.clone().filter(|p| !p.is_empty()),
            "labels" => crate::filters::label_field(&i.labels, path),
            _ => None,
        }
    }
}
