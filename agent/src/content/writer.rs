//! Writers: one open ingest under a ref, written at the current offset and committed
//! with size and digest verification. The blocking file work runs on tokio's blocking
//! pool; the async methods move the writer's state there and back.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::ingest::{IngestDir, RefLock, ingest_key, validate_ref};
use super::{
    CHUNK_SIZE, ContentStore, Digest, Digester, Status, content_resource, ingest_resource,
    now_nanos,
};
use crate::error::{Error, Result};
use crate::labels::{self, Labels};
use crate::metadata::{BlobRecord, IngestRecord};

/// An open ingest. Dropping it keeps the data for a later resume and frees the ref.
pub struct Writer {
    inner: Option<Inner>,
    reference: String,
}

struct Inner {
    store: Arc<ContentStore>,
    ns: String,
    reference: String,
    key: String,
    lease: Option<String>,
    expected: Option<Digest>,
    total: i64,
    started_at: i64,
    updated_at: i64,
    state: State,
    _lock: RefLock,
}

enum State {
    /// The blob is already on disk (from another namespace): nothing to write.
    Shared { digest: Digest, size: i64 },
    File {
        file: File,
        digester: Digester,
        offset: i64,
    },
}

/// What [`ContentStore::write_blob`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The blob was written and committed.
    Committed,
    /// The namespace already had the blob; nothing was written.
    AlreadyExists,
}

fn join_err(e: tokio::task::JoinError) -> Error {
    Error::Internal(format!("content write task failed: {e}"))
}

impl ContentStore {
    /// Opens a writer under `reference` in `ns`. See the module documentation for the
    /// lifecycle. `total` is the expected size (0 when unknown), `expected` the
    /// expected digest; `lease` (the call's `containerd-lease`) gets the ingest and,
    /// once committed, the blob.
    pub async fn writer(
        self: &Arc<Self>,
        ns: &str,
        reference: &str,
        total: i64,
        expected: Option<Digest>,
        lease: Option<&str>,
    ) -> Result<Writer> {
        let store = self.clone();
        let (ns, reference_owned, lease) = (
            ns.to_string(),
            reference.to_string(),
            lease.map(str::to_string),
        );
        let inner = tokio::task::spawn_blocking(move || {
            store.open_writer(ns, reference_owned, total, expected, lease)
        })
        .await
        .map_err(join_err)??;
        Ok(Writer {
            inner: Some(inner),
            reference: reference.to_string(),
        })
    }

    fn open_writer(
        self: Arc<Self>,
        ns: String,
        reference: String,
        total: i64,
        expected: Option<Digest>,
        lease: Option<String>,
    ) -> Result<Inner> {
        crate::identifiers::validate("namespace", &ns)?;
        validate_ref(&reference)?;
        if let Some(d) = &expected {
            d.require_storable()?;
            if self.exists(&ns, d)? {
                if let Some(l) = &lease {
                    self.md
                        .write(|tx| tx.lease_add_resource(&ns, l, &content_resource(d)))?;
                }
                return Err(Error::AlreadyExists(format!("content {d}")));
            }
        }
        let key = ingest_key(&ns, &reference);
        let lock = self.locks.try_lock(&key, &reference)?;
        let now = now_nanos();
        let dir = IngestDir::new(self.ingest_dir(&key));

        // The bytes may already be here from another namespace.
        let shared = expected.as_ref().and_then(|d| {
            let size = std::fs::metadata(self.blob_path(d)).ok()?.len() as i64;
            (total <= 0 || total == size).then(|| (d.clone(), size))
        });
        let (state, total, started_at, updated_at) = match shared {
            Some((digest, size)) => {
                dir.remove()?;
                (State::Shared { digest, size }, size, now, now)
            }
            None => {
                let o = dir.open(&reference, total, now)?;
                let state = State::File {
                    file: o.file,
                    digester: o.digester,
                    offset: o.offset,
                };
                (state, o.total, o.started_at, o.updated_at)
            }
        };
        let rec = IngestRecord {
            key: key.clone(),
            expected: expected.as_ref().map(|d| d.to_string()),
            shared: matches!(state, State::Shared { .. }),
            opened_at: now,
        };
        self.md.write(|tx| {
            tx.ensure_namespace(&ns)?;
            tx.put_ingest(&ns, &reference, &rec)?;
            if let Some(l) = &lease {
                tx.lease_add_resource(&ns, l, &ingest_resource(&reference))?;
            }
            Ok(())
        })?;
        Ok(Inner {
            store: self,
            ns,
            reference,
            key,
            lease,
            expected,
            total,
            started_at,
            updated_at,
            state,
            _lock: lock,
        })
    }

    /// Writes a whole blob from `reader` under `reference` and commits it, checking
    /// `size` (0 = unknown) and `expected`. An earlier partial ingest of the ref is
    /// started over. On a digest or size mismatch the ingest is removed and nothing is
    /// committed. A blob the namespace already has is not read at all.
    #[allow(clippy::too_many_arguments)]
    pub async fn write_blob<R: AsyncRead + Unpin + Send>(
        self: &Arc<Self>,
        ns: &str,
        reference: &str,
        reader: R,
        size: i64,
        expected: &Digest,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<WriteOutcome> {
        let mut w = match self
            .writer(ns, reference, size, Some(expected.clone()), lease)
            .await
        {
            Ok(w) => w,
            Err(Error::AlreadyExists(_)) => return Ok(WriteOutcome::AlreadyExists),
            Err(e) => return Err(e),
        };
        if !w.is_complete() {
            if w.offset() > 0 {
                w.truncate().await?;
            }
            w.copy_from(reader).await?;
        }
        match w.commit(size, Some(expected.clone()), labels).await {
            Ok(_) => Ok(WriteOutcome::Committed),
            Err(Error::AlreadyExists(_)) => Ok(WriteOutcome::AlreadyExists),
            Err(e @ Error::FailedPrecondition(_)) => {
                if let Err(abort) = self.abort(ns, reference) {
                    tracing::warn!(reference, error = %abort, "remove failed ingest");
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

impl Writer {
    fn inner(&self) -> Result<&Inner> {
        self.inner.as_ref().ok_or_else(|| self.closed())
    }

    fn closed(&self) -> Error {
        Error::FailedPrecondition(format!(
            "writer for ref {} is closed after an interrupted operation",
            self.reference
        ))
    }

    /// The ref this writer holds.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Bytes written so far: where the next write goes.
    pub fn offset(&self) -> i64 {
        self.inner.as_ref().map_or(0, |i| i.offset())
    }

    /// The expected size (0 when unknown).
    pub fn total(&self) -> i64 {
        self.inner.as_ref().map_or(0, |i| i.total)
    }

    /// True when the bytes are already all there (a blob shared from another
    /// namespace): commit without writing.
    pub fn is_complete(&self) -> bool {
        matches!(
            self.inner.as_ref().map(|i| &i.state),
            Some(State::Shared { .. })
        )
    }

    /// The file holding the bytes written so far, for reading them back (to resume a
    /// download's digest); None when the blob is shared from another namespace.
    pub fn data_path(&self) -> Option<std::path::PathBuf> {
        let i = self.inner.as_ref()?;
        matches!(i.state, State::File { .. }).then(|| i.dir().data())
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        match self.inner.as_ref().map(|i| &i.state) {
            Some(State::Shared { digest, .. }) => digest.clone(),
            Some(State::File { digester, .. }) => digester.digest(),
            None => Digest::of(b""),
        }
    }

    /// The progress as [`ContentStore::status`] reports it.
    pub fn status(&self) -> Status {
        match &self.inner {
            Some(i) => Status {
                reference: i.reference.clone(),
                offset: i.offset(),
                total: i.total,
                expected: i.expected.clone(),
                started_at: i.started_at,
                updated_at: i.updated_at,
            },
            None => Status {
                reference: self.reference.clone(),
                offset: 0,
                total: 0,
                expected: None,
                started_at: 0,
                updated_at: 0,
            },
        }
    }

    async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut inner = self.inner.take().ok_or_else(|| self.closed())?;
        let (inner, r) = tokio::task::spawn_blocking(move || {
            let r = f(&mut inner);
            (inner, r)
        })
        .await
        .map_err(join_err)?;
        self.inner = Some(inner);
        r
    }

    /// Writes `data` at `offset`, which must be the current offset, or 0 to start
    /// over. Returns the new offset.
    pub async fn write_at(&mut self, offset: i64, data: Bytes) -> Result<i64> {
        let cur = self.inner()?.offset();
        if offset != cur && offset != 0 {
            return Err(Error::OutOfRange(format!(
                "ref {}: write at offset {offset} must be at the current offset {cur} (or 0 to start over)",
                self.reference
            )));
        }
        if data.is_empty() && offset == cur {
            return Ok(cur);
        }
        self.blocking(move |i| {
            if offset == 0 && i.offset() > 0 {
                i.truncate()?;
            }
            i.append(&data)?;
            Ok(i.offset())
        })
        .await
    }

    /// Starts the ingest over at offset 0.
    pub async fn truncate(&mut self) -> Result<()> {
        self.blocking(|i| i.truncate()).await
    }

    /// Appends everything `reader` yields, reading the next chunk while the previous
    /// one is written. Returns the new offset.
    pub async fn copy_from<R: AsyncRead + Unpin>(&mut self, mut reader: R) -> Result<i64> {
        let mut inner = self.inner.take().ok_or_else(|| self.closed())?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let task = tokio::task::spawn_blocking(move || {
            let mut r = Ok(());
            while let Some(chunk) = rx.blocking_recv() {
                if let Err(e) = inner.append(&chunk) {
                    r = Err(e);
                    break;
                }
            }
            (inner, r)
        });
        let mut read_err = None;
        loop {
            let mut buf = bytes::BytesMut::with_capacity(CHUNK_SIZE);
            let n = loop {
                match reader.read_buf(&mut buf).await {
                    Ok(0) => break Ok(buf.len()),
                    Ok(_) if buf.len() < CHUNK_SIZE => continue,
                    Ok(_) => break Ok(buf.len()),
                    Err(e) => break Err(e),
                }
            };
            match n {
                Ok(0) => break,
                Ok(n) => {
                    let last = n < CHUNK_SIZE;
                    if tx.send(buf.freeze()).await.is_err() {
                        break;
                    }
                    if last {
                        break;
                    }
                }
                Err(e) => {
                    read_err = Some(Error::io(
                        format!("read data for ref {}", self.reference),
                        e,
                    ));
                    break;
                }
            }
        }
        drop(tx);
        let (inner, r) = task.await.map_err(join_err)?;
        let offset = inner.offset();
        self.inner = Some(inner);
        if let Some(e) = read_err {
            return Err(e);
        }
        r.map(|()| offset)
    }

    /// Verifies and commits the blob; see the module documentation. `size` 0 means
    /// "do not check"; `expected` falls back to the digest given at open. Returns the
    /// digest, or AlreadyExists when the namespace already had it (the ingest is
    /// consumed either way).
    pub async fn commit(
        mut self,
        size: i64,
        expected: Option<Digest>,
        labels: Labels,
    ) -> Result<Digest> {
        let inner = self.inner.take().ok_or_else(|| self.closed())?;
        tokio::task::spawn_blocking(move || inner.commit(size, expected, labels))
            .await
            .map_err(join_err)?
    }
}

impl Inner {
    fn offset(&self) -> i64 {
        match &self.state {
            State::Shared { size, .. } => *size,
            State::File { offset, .. } => *offset,
        }
    }

    fn dir(&self) -> IngestDir {
        IngestDir::new(self.store.ingest_dir(&self.key))
    }

    /// Turns a shared writer into one with its own ingest holding the first `keep`
    /// bytes of the existing blob (a client rewriting a blob it need not send).
    fn materialize(&mut self, keep: i64) -> Result<()> {
        let State::Shared { digest, size } = &self.state else {
            return Ok(());
        };
        let keep = keep.clamp(0, *size);
        let src = self.store.blob_path(digest);
        let now = now_nanos();
        let dir = self.dir();
        dir.remove()?;
        let mut o = dir.open(&self.reference, self.total, now)?;
        if keep > 0 {
            let mut blob =
                File::open(&src).map_err(|e| Error::io(format!("open {}", src.display()), e))?;
            let mut buf = vec![0u8; CHUNK_SIZE];
            let mut done = 0i64;
            while done < keep {
                let want = (keep - done).min(CHUNK_SIZE as i64) as usize;
                let n = std::io::Read::read(&mut blob, &mut buf[..want])
                    .map_err(|e| Error::io(format!("read {}", src.display()), e))?;
                if n == 0 {
                    break;
                }
                o.file
                    .write_all_at(&buf[..n], done as u64)
                    .map_err(|e| Error::io(format!("write ingest of {}", self.reference), e))?;
                o.digester.update(&buf[..n]);
                done += n as i64;
            }
            o.offset = done;
        }
        self.state = State::File {
            file: o.file,
            digester: o.digester,
            offset: o.offset,
        };
        let rec = IngestRecord {
            key: self.key.clone(),
            expected: self.expected.as_ref().map(|d| d.to_string()),
            shared: false,
            opened_at: now,
        };
        self.store
            .md
            .write(|tx| tx.put_ingest(&self.ns, &self.reference, &rec))
    }

    fn truncate(&mut self) -> Result<()> {
        if matches!(self.state, State::Shared { .. }) {
            return self.materialize(0);
        }
        let State::File {
            file,
            digester,
            offset,
        } = &mut self.state
        else {
            return Ok(());
        };
        file.set_len(0)
            .map_err(|e| Error::io(format!("truncate ingest of {}", self.reference), e))?;
        digester.reset();
        *offset = 0;
        self.updated_at = now_nanos();
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        if let State::Shared { size, .. } = self.state {
            if data.is_empty() {
                return Ok(());
            }
            self.materialize(size)?;
        }
        let State::File {
            file,
            digester,
            offset,
        } = &mut self.state
        else {
            return Ok(());
        };
        file.write_all_at(data, *offset as u64)
            .map_err(|e| Error::io(format!("write ingest of {}", self.reference), e))?;
        digester.update(data);
        *offset += data.len() as i64;
        self.updated_at = now_nanos();
        Ok(())
    }

    fn commit(mut self, size: i64, expected: Option<Digest>, labels: Labels) -> Result<Digest> {
        labels::validate(&labels)?;
        let expected = expected.or_else(|| self.expected.clone());
        if let Some(e) = &expected {
            e.require_storable()?;
        }
        let reference = self.reference.clone();
        let nothing = "; nothing was committed";
        let (digest, actual) = match &mut self.state {
            State::Shared { digest, size } => (digest.clone(), *size),
            State::File {
                file,
                digester,
                offset,
            } => {
                file.sync_all()
                    .map_err(|e| Error::io(format!("sync ingest of {reference}"), e))?;
                (digester.digest(), *offset)
            }
        };
        if size > 0 && size != actual {
            return Err(Error::FailedPrecondition(format!(
                "commit ref {reference}: size is {actual} bytes, expected {size}{nothing}"
            )));
        }
        if let Some(e) = &expected
            && *e != digest
        {
            return Err(Error::FailedPrecondition(format!(
                "commit ref {reference}: digest is {digest}, expected {e}{nothing}"
            )));
        }
        let store = self.store.clone();
        let dir = self.dir();
        let existed = {
            let _files = store.files.read().unwrap_or_else(|e| e.into_inner());
            let target = store.blob_path(&digest);
            match &self.state {
                State::Shared { .. } => {
                    if !target.exists() {
                        return Err(Error::FailedPrecondition(format!(
                            "commit ref {reference}: blob {digest} disappeared; write it again"
                        )));
                    }
                }
                State::File { .. } => {
                    if !target.exists() {
                        let data = dir.data();
                        std::fs::rename(&data, &target).map_err(|e| {
                            Error::io(
                                format!("move {} to {}", data.display(), target.display()),
                                e,
                            )
                        })?;
                        let _ = std::fs::set_permissions(
                            &target,
                            std::fs::Permissions::from_mode(0o444),
                        );
                        sync_dir(&store.blobs_dir())?;
                    }
                }
            }
            let now = now_nanos();
            store.md.write(|tx| {
                tx.ensure_namespace(&self.ns)?;
                let existed = tx.blob(&self.ns, digest.as_str())?.is_some();
                if !existed {
                    tx.put_blob(
                        &self.ns,
                        digest.as_str(),
                        &BlobRecord {
                            size: actual,
                            created_at: now,
                            updated_at: now,
                            labels: labels.clone(),
                        },
                    )?;
                }
                tx.remove_ingest(&self.ns, &reference)?;
                if let Some(l) = &self.lease {
                    tx.lease_remove_resource(&self.ns, l, &ingest_resource(&reference))?;
                    tx.lease_add_resource(&self.ns, l, &content_resource(&digest))?;
                }
                Ok(existed)
            })?
        };
        // The file is closed (and the lock released) before the directory goes.
        self.state = State::Shared {
            digest: digest.clone(),
            size: actual,
        };
        drop(self);
        if let Err(e) = dir.remove() {
            tracing::warn!(reference, error = %e, "remove committed ingest");
        }
        if existed {
            return Err(Error::AlreadyExists(format!("content {digest}")));
        }
        Ok(digest)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if matches!(self.state, State::File { .. }) {
            self.dir().touch(self.updated_at);
        }
    }
}

fn sync_dir(path: &std::path::Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    match f.sync_all() {
        Ok(()) => Ok(()),
        // Some filesystems cannot fsync a directory; the rename is still atomic.
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        Err(e) => Err(Error::io(format!("sync {}", path.display()), e)),
    }
}
