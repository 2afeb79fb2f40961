//! The content store in garbage collection: blobs and ingests are nodes; `gc.root`
//! blobs and fresh or busy ingests are roots; blob labels refer to children; after a
//! collection, blob files and ingest directories no record needs are removed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::ContentStore;
use super::ingest::IngestDir;
use crate::error::{Error, Result};
use crate::gc::{Emit, Kind, Node, Participant, Pass, is_root, label_refs};
use crate::metadata::WriteTx;

/// The content store's participant.
pub struct ContentGc {
    store: Arc<ContentStore>,
    ingest_max_age: Duration,
}

impl ContentGc {
    /// Ingests untouched for longer than `ingest_max_age` are collected unless leased.
    pub fn new(store: Arc<ContentStore>, ingest_max_age: Duration) -> Self {
        ContentGc {
            store,
            ingest_max_age,
        }
    }
}

impl Participant for ContentGc {
    fn name(&self) -> &'static str {
        "content"
    }

    fn owns(&self) -> &'static [Kind] {
        &[Kind::Content, Kind::Ingest]
    }

    fn roots(&self, tx: &WriteTx, pass: &Pass, emit: Emit<'_>) -> Result<()> {
        for (ns, digest, rec) in tx.all_blobs()? {
            if is_root(&rec.labels) {
                emit(Node::content(&ns, &digest));
            }
        }
        let now = berth_api::time::to_unix_nanos(pass.now);
        let max_age = i64::try_from(self.ingest_max_age.as_nanos()).unwrap_or(i64::MAX);
        for (ns, reference, rec) in tx.all_ingests()? {
            let busy = self.store.locks.is_locked(&rec.key);
            let last = if rec.shared {
                rec.opened_at
            } else {
                IngestDir::new(self.store.ingest_dir(&rec.key))
                    .last_activity()
                    .unwrap_or(0)
                    .max(rec.opened_at)
            };
            if busy || now.saturating_sub(last) < max_age {
                emit(Node::ingest(&ns, &reference));
            }
        }
        Ok(())
    }

    fn references(&self, tx: &WriteTx, node: &Node, emit: Emit<'_>) -> Result<()> {
        match node.kind {
            Kind::Content => {
                if let Some(rec) = tx.blob(&node.namespace, &node.key)? {
                    label_refs(&node.namespace, &rec.labels, emit);
                }
            }
            Kind::Ingest => {
                if let Some(d) = tx
                    .ingest(&node.namespace, &node.key)?
                    .and_then(|r| r.expected)
                {
                    emit(Node::content(&node.namespace, &d));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn scan(&self, tx: &WriteTx, emit: Emit<'_>) -> Result<()> {
        for (ns, digest, _) in tx.all_blobs()? {
            emit(Node::content(&ns, &digest));
        }
        for (ns, reference, _) in tx.all_ingests()? {
            emit(Node::ingest(&ns, &reference));
        }
        Ok(())
    }

    fn remove(&self, tx: &WriteTx, node: &Node) -> Result<()> {
        match node.kind {
            Kind::Content => {
                tx.remove_blob(&node.namespace, &node.key)?;
            }
            Kind::Ingest => {
                tx.remove_ingest(&node.namespace, &node.key)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn cleanup(&self, _removed: &[Node]) -> Result<()> {
        self.store.sweep_files()
    }
}

impl ContentStore {
    /// Removes blob files that no namespace records and no ingest expects, and ingest
    /// directories that no record names and no writer holds. Holds commits off while
    /// it decides.
    pub(super) fn sweep_files(&self) -> Result<()> {
        let _files = self.files.write().unwrap_or_else(|e| e.into_inner());
        let (blobs, ingests) = self
            .md
            .read(|tx| Ok((tx.all_blobs()?, tx.all_ingests()?)))?;
        let mut keep: HashSet<String> = blobs
            .into_iter()
            .filter_map(|(_, d, _)| Some(d.split_once(':')?.1.to_string()))
            .collect();
        let mut keys = HashSet::new();
        for (_, _, rec) in ingests {
            if let Some((_, hex)) = rec.expected.as_deref().and_then(|d| d.split_once(':')) {
                keep.insert(hex.to_string());
            }
            keys.insert(rec.key);
        }
        let blobs_dir = self.blobs_dir();
        for name in dir_names(&blobs_dir)? {
            if !keep.contains(&name) {
                let path = blobs_dir.join(&name);
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::debug!(digest = %format!("sha256:{name}"), "removed blob"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(format!("remove {}", path.display()), e)),
                }
            }
        }
        let ingest_root = self.root.join("ingest");
        for name in dir_names(&ingest_root)? {
            if !keys.contains(&name) && !self.locks.is_locked(&name) {
                IngestDir::new(ingest_root.join(&name)).remove()?;
                tracing::debug!(key = %name, "removed ingest");
            }
        }
        Ok(())
    }
}

fn dir_names(dir: &std::path::Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}
