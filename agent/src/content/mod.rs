//! The content store: immutable blobs addressed by digest, written through resumable,
//! verified ingests.
//!
//! # Layout
//!
//! * `<root>/content/blobs/sha256/<hex>`: committed blobs, read-only, shared by every
//!   namespace (one copy on disk however many namespaces use it).
//! * `<root>/content/ingest/<key>/`: one in-flight write, where `<key>` is the hex
//!   sha256 of `namespace \0 ref` (so two namespaces writing the same ref never meet).
//!   It holds `data` (the bytes so far), `ref`, `total` (when known), `startedat` and
//!   `updatedat` (Unix nanoseconds as text).
//! * The metadata database holds, per namespace, a record for every blob the namespace
//!   can see (size, times, labels) and one for every ingest it has open. A blob is in
//!   namespace N once it has been committed there; `info`, `read` and `update` in any
//!   other namespace answer NotFound even though the bytes are on disk.
//!
//! # Write lifecycle
//!
//! 1. [`ContentStore::writer`] opens a [`Writer`] under a ref. One writer per ref at a
//!    time: a second one gets Unavailable ("ref X is locked") until the first is
//!    dropped or committed. If the expected digest is already in the namespace the
//!    call fails with AlreadyExists (and the blob joins the caller's lease). If the
//!    blob is on disk from another namespace, the writer starts complete (offset =
//!    size) and committing only adds this namespace's record.
//! 2. An existing ingest resumes: its data is re-hashed and [`Writer::offset`] tells
//!    where to continue. A total that differs from the stored one restarts it.
//! 3. [`Writer::write_at`] appends at the current offset; a write at offset 0 after
//!    data truncates first (start over). Writes are not synced one by one.
//! 4. [`Writer::commit`] checks the size (when given) and the digest (when expected);
//!    on a mismatch nothing is committed and the error names both values. Otherwise
//!    it fsyncs the data, renames it to `blobs/sha256/<hex>`, fsyncs the directory and
//!    records the blob in the namespace, all while GC's file sweep is held off.
//!    Committing a digest the namespace already has answers AlreadyExists.
//! 5. [`ContentStore::abort`] removes the ingest. Ingests nobody finishes are removed
//!    by garbage collection once older than `[gc] ingest_max_age`, unless a lease
//!    holds them.
//!
//! Deleting a blob removes only the namespace's record; the bytes go when garbage
//! collection finds no namespace, ingest or lease that still needs them.
//!
//! When a call carries a lease, committed blobs and open ingests are added to it.

mod digest;
mod gc;
mod ingest;
mod reader;
mod types;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use berth_api::containerd::events::ContentDelete;

pub use digest::{ALGORITHM, Digest, Digester};
pub use gc::ContentGc;
pub use reader::Reader;
pub use types::{Descriptor, Info, Status};
pub use writer::{WriteOutcome, Writer};

use crate::error::{Error, Result};
use crate::events::Exchange;
use crate::filters::Filter;
use crate::gc::Trigger;
use crate::labels::{self, Labels};
use crate::metadata::{BlobRecord, LeaseResource, Metadata};

/// Size of the buffers used to stream blobs in and out.
pub const CHUNK_SIZE: usize = 1 << 20;

/// The content store of one berthd root.
pub struct ContentStore {
    root: PathBuf,
    md: Arc<Metadata>,
    events: Exchange,
    gc: Trigger,
    locks: Arc<ingest::Locks>,
    /// Held shared by commits (rename + record) and exclusively by GC's file sweep,
    /// so a blob being committed is never removed between its rename and its record.
    files: RwLock<()>,
}

fn now_nanos() -> i64 {
    berth_api::time::to_unix_nanos(std::time::SystemTime::now())
}

fn info_of(digest: Digest, r: BlobRecord) -> Info {
    Info {
        digest,
        size: r.size,
        created_at: r.created_at,
        updated_at: r.updated_at,
        labels: r.labels,
    }
}

impl ContentStore {
    /// Opens the store under `<root>/content`, creating its directories.
    pub fn open(
        root: &Path,
        md: Arc<Metadata>,
        events: Exchange,
        gc: Trigger,
    ) -> Result<Arc<ContentStore>> {
        let root = root.join("content");
        for dir in [root.join("blobs").join(ALGORITHM), root.join("ingest")] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        Ok(Arc::new(ContentStore {
            root,
            md,
            events,
            gc,
            locks: Arc::default(),
            files: RwLock::new(()),
        }))
    }

    /// `<root>/content`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join(ALGORITHM)
    }

    /// Where the bytes of `digest` live (whether or not they are there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    fn ingest_dir(&self, key: &str) -> PathBuf {
        self.root.join("ingest").join(key)
    }

    /// The blob as namespace `ns` sees it.
    pub fn info(&self, ns: &str, digest: &Digest) -> Result<Info> {
        let rec = self
            .md
            .read(|tx| tx.blob(ns, digest.as_str()))?
            .ok_or_else(|| Error::NotFound(format!("content {digest}")))?;
        Ok(info_of(digest.clone(), rec))
    }

    /// Whether namespace `ns` has the blob.
    pub fn exists(&self, ns: &str, digest: &Digest) -> Result<bool> {
        Ok(self.md.read(|tx| tx.blob(ns, digest.as_str()))?.is_some())
    }

    /// Updates the labels of a blob. `paths` as containerd's field mask: none replaces
    /// all labels, `labels` replaces all, `labels.<key>` sets (or with an empty value
    /// removes) one; any other path is refused.
    pub fn update(
        &self,
        ns: &str,
        digest: &Digest,
        labels: &Labels,
        paths: &[String],
    ) -> Result<Info> {
        labels::validate(labels)?;
        let rec = self.md.write(|tx| {
            let mut rec = tx
                .blob(ns, digest.as_str())?
                .ok_or_else(|| Error::NotFound(format!("content {digest}")))?;
            if paths.is_empty() {
                rec.labels = labels.clone();
            }
            for p in paths {
                if !labels::apply_mask_path(&mut rec.labels, labels, p)? {
                    return Err(Error::InvalidArgument(format!(
                        "cannot update {p:?} field on content {digest}: only labels can change"
                    )));
                }
            }
            rec.labels.retain(|_, v| !v.is_empty());
            labels::validate(&rec.labels)?;
            rec.updated_at = now_nanos();
            tx.put_blob(ns, digest.as_str(), &rec)?;
            Ok(rec)
        })?;
        Ok(info_of(digest.clone(), rec))
    }

    /// Every blob of the namespace that passes `filter`, ordered by digest.
    pub fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<Info>> {
        let all = self.md.read(|tx| tx.blobs(ns))?;
        Ok(all
            .into_iter()
            .filter_map(|(d, r)| Some(info_of(Digest::parse(&d).ok()?, r)))
            .filter(|i| filter.matches(i))
            .collect())
    }

    /// Removes the blob from the namespace (and from the call's lease). The bytes are
    /// removed by the garbage collection this schedules, once nothing needs them.
    pub fn delete(&self, ns: &str, digest: &Digest, lease: Option<&str>) -> Result<()> {
        self.md.write(|tx| {
            if !tx.remove_blob(ns, digest.as_str())? {
                return Err(Error::NotFound(format!("content {digest}")));
            }
            if let Some(l) = lease {
                tx.lease_remove_resource(ns, l, &content_resource(digest))?;
            }
            Ok(())
        })?;
        self.events.publish(
            ns,
            "/content/delete",
            &ContentDelete {
                digest: digest.to_string(),
            },
        );
        self.gc.schedule();
        Ok(())
    }

    /// Opens the blob for reading.
    pub fn reader(&self, ns: &str, digest: &Digest) -> Result<Reader> {
        let info = self.info(ns, digest)?;
        Reader::open(&self.blob_path(digest), digest.clone(), info.size)
    }

    /// Reads a whole blob into memory, refusing blobs larger than `max` bytes
    /// (manifests, configs, indexes).
    pub async fn read_all(&self, ns: &str, digest: &Digest, max: i64) -> Result<Vec<u8>> {
        let r = self.reader(ns, digest)?;
        if r.size() > max {
            return Err(Error::FailedPrecondition(format!(
                "content {digest} is {} bytes, more than the {max} bytes allowed here",
                r.size()
            )));
        }
        tokio::task::spawn_blocking(move || r.read_to_vec())
            .await
            .map_err(|e| Error::Internal(format!("read task: {e}")))?
    }
}

fn content_resource(digest: &Digest) -> LeaseResource {
    LeaseResource {
        kind: "content".into(),
        id: digest.to_string(),
    }
}

fn ingest_resource(reference: &str) -> LeaseResource {
    LeaseResource {
        kind: "ingests".into(),
        id: reference.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
