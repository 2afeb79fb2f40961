//! Snapshots in garbage collection.
//!
//! Roots are snapshots labelled `containerd.io/gc.root`; a snapshot keeps its parent and
//! whatever its `containerd.io/gc.ref.*` labels name. Snapshots live in each
//! snapshotter's own store, not in the metadata database, so a collection lists them
//! once at its start and removes the unreachable ones after the metadata transaction,
//! children before parents.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_snapshotter::Info;

use super::{Backend, Snapshots};
use crate::error::Result;
use crate::gc::{Emit, Kind, Node, Participant, Pass, is_root, label_refs};
use crate::metadata::WriteTx;

/// The snapshot owner in garbage collection.
pub struct SnapshotsGc {
    snapshots: Snapshots,
    /// The snapshots seen at the start of the current collection.
    seen: Mutex<HashMap<Node, (Backend, String, Info)>>,
}

impl SnapshotsGc {
    pub fn new(snapshots: Snapshots) -> Self {
        SnapshotsGc {
            snapshots,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Lists every snapshot of every snapshotter (the collection runs on a blocking
    /// thread of the runtime, so the async listing is driven to completion here).
    fn list_all(&self) -> Result<HashMap<Node, (Backend, String, Info)>> {
        let handle = tokio::runtime::Handle::current();
        let mut out = HashMap::new();
        for name in self.snapshots.names() {
            let (name, backend) = self.snapshots.backend(name)?;
            for info in handle.block_on(backend.list())? {
                let Some((ns, key)) = info.name.split_once('/') else {
                    continue;
                };
                out.insert(
                    Node::snapshot(ns, name, key),
                    (backend.clone(), info.name.clone(), info),
                );
            }
        }
        Ok(out)
    }
}

impl Participant for SnapshotsGc {
    fn name(&self) -> &'static str {
        "snapshots"
    }

    fn owns(&self) -> &'static [Kind] {
        &[Kind::Snapshot]
    }

    fn roots(&self, _tx: &WriteTx, _pass: &Pass, emit: Emit<'_>) -> Result<()> {
        let all = self.list_all()?;
        for (node, (_, _, info)) in &all {
            if is_root(&info.labels) {
                emit(node.clone());
            }
        }
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = all;
        Ok(())
    }

    fn references(&self, _tx: &WriteTx, node: &Node, emit: Emit<'_>) -> Result<()> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, info)) = seen.get(node) {
            let snapshotter = node.key.split_once('/').map_or("", |(s, _)| s);
            if let Some(parent) = &info.parent
                && let Some((_, parent_key)) = parent.split_once('/')
            {
                emit(Node::snapshot(&node.namespace, snapshotter, parent_key));
            }
            label_refs(&node.namespace, &info.labels, emit);
        }
        Ok(())
    }

    fn scan(&self, _tx: &WriteTx, emit: Emit<'_>) -> Result<()> {
        for node in self.seen.lock().unwrap_or_else(|e| e.into_inner()).keys() {
            emit(node.clone());
        }
        Ok(())
    }

    fn cleanup(&self, removed: &[Node]) -> Result<()> {
        let seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()));
        let mut doomed: Vec<&(Backend, String, Info)> =
            removed.iter().filter_map(|n| seen.get(n)).collect();
        // Children first: a parent cannot go while a child exists.
        let parent_of: HashMap<&str, Option<&str>> = seen
            .values()
            .map(|(_, n, i)| (n.as_str(), i.parent.as_deref()))
            .collect();
        let depth = |name: &str| {
            let mut d = 0usize;
            let mut cur = parent_of.get(name).copied().flatten();
            while let Some(p) = cur {
                d += 1;
                cur = parent_of.get(p).copied().flatten();
            }
            d
        };
        doomed.sort_by_key(|(_, name, _)| std::cmp::Reverse(depth(name)));
        let handle = tokio::runtime::Handle::current();
        for (backend, name, _) in doomed {
            if let Err(e) = handle.block_on(backend.remove(name)) {
                tracing::warn!(snapshot = %name, error = %e, "garbage collection: remove snapshot");
            }
        }
        Ok(())
    }
}
