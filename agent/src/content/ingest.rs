//! In-flight writes: the per-ref lock, the on-disk ingest directory (data, ref, total,
//! start and update times), and the status, list and abort operations over them.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::{CHUNK_SIZE, ContentStore, Digest, Digester, Status, ingest_resource};
use crate::error::{Error, Result};
use crate::filters::Filter;
use crate::metadata::IngestRecord;

/// The ingest directory name of `reference` in `ns`.
pub(super) fn ingest_key(ns: &str, reference: &str) -> String {
    let mut h = Sha256::new();
    h.update(ns.as_bytes());
    h.update([0u8]);
    h.update(reference.as_bytes());
    hex::encode(h.finalize())
}

/// Checks a client-chosen ref.
pub(super) fn validate_ref(reference: &str) -> Result<()> {
    if reference.is_empty() {
        return Err(Error::InvalidArgument("ref must not be empty".into()));
    }
    if reference.len() > 4096 || reference.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "ref {reference:?} is invalid: at most 4096 bytes and no NUL"
        )));
    }
    Ok(())
}

/// The refs with a live writer, by ingest key.
#[derive(Default)]
pub(super) struct Locks(Mutex<HashMap<String, SystemTime>>);

/// Holds one ref's lock; dropping it unlocks.
pub(super) struct RefLock {
    locks: Arc<Locks>,
    key: String,
}

impl Locks {
    pub(super) fn try_lock(self: &Arc<Self>, key: &str, reference: &str) -> Result<RefLock> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = map.get(key) {
            let held = since.elapsed().unwrap_or_default();
            return Err(Error::Unavailable(format!(
                "ref {reference} is locked: another writer has held it for {}; retry later",
                humantime::format_duration(std::time::Duration::from_millis(
                    held.as_millis() as u64
                ))
            )));
        }
        map.insert(key.to_string(), SystemTime::now());
        Ok(RefLock {
            locks: self.clone(),
            key: key.to_string(),
        })
    }

    pub(super) fn is_locked(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }
}

impl Drop for RefLock {
    fn drop(&mut self) {
        self.locks
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

fn io_err(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, "read")(e)),
    }
}

fn read_i64(path: &Path) -> Result<i64> {
    Ok(read_text(path)?
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0))
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io_err(path, "write"))
}

fn mtime_nanos(path: &Path) -> Option<i64> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(berth_api::time::to_unix_nanos(m))
}

/// One ingest directory.
pub(super) struct IngestDir {
    pub path: PathBuf,
}

/// What an opened ingest holds.
pub(super) struct Opened {
    pub file: File,
    pub digester: Digester,
    pub offset: i64,
    pub total: i64,
    pub started_at: i64,
    pub updated_at: i64,
}

/// The on-disk progress of an ingest.
pub(super) struct DiskStatus {
    pub offset: i64,
    pub total: i64,
    pub started_at: i64,
    pub updated_at: i64,
}

impl IngestDir {
    pub(super) fn new(path: PathBuf) -> Self {
        IngestDir { path }
    }

    pub(super) fn data(&self) -> PathBuf {
        self.path.join("data")
    }

    /// Opens the ingest for writing: resumes it when it belongs to `reference` and its
    /// total agrees with `total` (0 = unknown), otherwise starts it afresh.
    pub(super) fn open(&self, reference: &str, total: i64, now: i64) -> Result<Opened> {
        if self.path.exists() {
            let stored_ref = read_text(&self.path.join("ref"))?;
            let stored_total = read_i64(&self.path.join("total"))?;
            let same_ref = stored_ref.as_deref() == Some(reference);
            let same_total = total <= 0 || stored_total <= 0 || total == stored_total;
            if same_ref && same_total {
                return self.resume(total, stored_total, now);
            }
            tracing::info!(
                reference,
                total,
                stored_total,
                "ingest does not match the new write; starting it over"
            );
            self.remove()?;
        }
        self.create(reference, total, now)
    }

    fn create(&self, reference: &str, total: i64, now: i64) -> Result<Opened> {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&self.path)
            .map_err(io_err(&self.path, "create"))?;
        write_text(&self.path.join("ref"), reference)?;
        write_text(&self.path.join("startedat"), &now.to_string())?;
        write_text(&self.path.join("updatedat"), &now.to_string())?;
        if total > 0 {
            write_text(&self.path.join("total"), &total.to_string())?;
        }
        let data = self.data();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&data)
            .map_err(io_err(&data, "create"))?;
        Ok(Opened {
            file,
            digester: Digester::new(),
            offset: 0,
            total: total.max(0),
            started_at: now,
            updated_at: now,
        })
    }

    fn resume(&self, total: i64, stored_total: i64, now: i64) -> Result<Opened> {
        let data = self.data();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data)
            .map_err(io_err(&data, "open"))?;
        let mut digester = Digester::new();
        let mut buf = vec![0u8; CHUNK_SIZE];
        let mut offset = 0i64;
        loop {
            let n = file.read(&mut buf).map_err(io_err(&data, "read"))?;
            if n == 0 {
                break;
            }
            digester.update(&buf[..n]);
            offset += n as i64;
        }
        if stored_total <= 0 && total > 0 {
            write_text(&self.path.join("total"), &total.to_string())?;
        }
        let started_at = match read_i64(&self.path.join("startedat"))? {
            0 => now,
            t => t,
        };
        Ok(Opened {
            file,
            digester,
            offset,
            total: if stored_total > 0 {
                stored_total
            } else {
                total.max(0)
            },
            started_at,
            updated_at: mtime_nanos(&data).unwrap_or(now),
        })
    }

    /// The progress recorded on disk; NotFound when there is no ingest.
    pub(super) fn status(&self) -> Result<DiskStatus> {
        let data = self.data();
        let meta = std::fs::metadata(&data).map_err(io_err(&data, "stat"))?;
        let started_at = read_i64(&self.path.join("startedat"))?;
        let updated_file = read_i64(&self.path.join("updatedat"))?;
        let data_mtime = meta
            .modified()
            .map(berth_api::time::to_unix_nanos)
            .unwrap_or(0);
        Ok(DiskStatus {
            offset: meta.len() as i64,
            total: read_i64(&self.path.join("total"))?,
            started_at,
            updated_at: updated_file.max(data_mtime),
        })
    }

    /// When the ingest last changed, if it exists.
    pub(super) fn last_activity(&self) -> Option<i64> {
        let a = mtime_nanos(&self.data());
        let b = read_i64(&self.path.join("updatedat")).ok();
        a.max(b).filter(|t| *t > 0)
    }

    /// Records the time of the last write.
    pub(super) fn touch(&self, at: i64) {
        if self.path.exists() {
            let _ = write_text(&self.path.join("updatedat"), &at.to_string());
        }
    }

    /// Removes the directory; a missing one is fine.
    pub(super) fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.path, "remove")(e)),
        }
    }
}

impl ContentStore {
    /// The status of the ingest `reference` of namespace `ns`.
    pub fn status(&self, ns: &str, reference: &str) -> Result<Status> {
        let rec = self
            .md
            .read(|tx| tx.ingest(ns, reference))?
            .ok_or_else(|| Error::NotFound(format!("ingest ref {reference}")))?;
        self.status_of(reference, &rec).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == ErrorKind::NotFound => {
                Error::NotFound(format!("ingest ref {reference}"))
            }
            other => other,
        })
    }

    fn status_of(&self, reference: &str, rec: &IngestRecord) -> Result<Status> {
        let expected = rec.expected.as_deref().and_then(|d| Digest::parse(d).ok());
        if rec.shared
            && let Some(d) = &expected
        {
            let path = self.blob_path(d);
            let size = std::fs::metadata(&path)
                .map(|m| m.len() as i64)
                .map_err(io_err(&path, "stat"))?;
            return Ok(Status {
                reference: reference.to_string(),
                offset: size,
                total: size,
                expected,
                started_at: rec.opened_at,
                updated_at: rec.opened_at,
            });
        }
        let s = IngestDir::new(self.ingest_dir(&rec.key)).status()?;
        Ok(Status {
            reference: reference.to_string(),
            offset: s.offset,
            total: s.total,
            expected,
            started_at: if s.started_at > 0 {
                s.started_at
            } else {
                rec.opened_at
            },
            updated_at: s.updated_at.max(rec.opened_at),
        })
    }

    /// The ingests of `ns` that pass `filter` (fields `ref`, `expected`), by ref.
    pub fn list_statuses(&self, ns: &str, filter: &Filter) -> Result<Vec<Status>> {
        let recs = self.md.read(|tx| tx.ingests(ns))?;
        let mut out = Vec::with_capacity(recs.len());
        for (reference, rec) in recs {
            match self.status_of(&reference, &rec) {
                Ok(s) if filter.matches(&s) => out.push(s),
                Ok(_) => {}
                Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Abandons an ingest: its record, its directory and its lease entries go.
    /// Unavailable while a writer holds it.
    pub fn abort(&self, ns: &str, reference: &str) -> Result<()> {
        let rec = self
            .md
            .read(|tx| tx.ingest(ns, reference))?
            .ok_or_else(|| Error::NotFound(format!("ingest ref {reference}")))?;
        let _lock = self.locks.try_lock(&rec.key, reference)?;
        self.md.write(|tx| {
            tx.remove_ingest(ns, reference)?;
            let r = ingest_resource(reference);
            for (lns, lease) in tx.all_leases()? {
                if lns == ns {
                    tx.lease_remove_resource(ns, &lease.id, &r)?;
                }
            }
            Ok(())
        })?;
        IngestDir::new(self.ingest_dir(&rec.key)).remove()
    }
}
