//! The snapshot metadata store (redb): one record per key or name, parent links for the
//! "has children" check, and an id sequence. Every mutation is one ACID transaction.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{Info, Kind, Labels, Usage};

/// key or name -> JSON [`Record`].
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// parent id -> child ids.
const CHILDREN: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("children");
/// "next_id" -> the next snapshot id to hand out.
const SEQUENCE: TableDefinition<&str, u64> = TableDefinition::new("sequence");

/// Maximum bytes of one label's key plus value (containerd's limit).
const MAX_LABEL_SIZE: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: u64,
    kind: Kind,
    parent: Option<String>,
    labels: Labels,
    created: (u64, u32),
    updated: (u64, u32),
    usage: Usage,
}

fn encode_time(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn decode_time((secs, nanos): (u64, u32)) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

impl Record {
    fn info(&self, name: &str) -> Info {
        Info {
            name: name.to_string(),
            parent: self.parent.clone(),
            kind: self.kind,
            labels: self.labels.clone(),
            created_at: decode_time(self.created),
            updated_at: decode_time(self.updated),
        }
    }
}

/// A snapshot as the storage layer needs it: its id, kind and its parents' ids, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub id: u64,
    pub kind: Kind,
    pub parent_ids: Vec<u64>,
}

/// The metadata of one snapshotter.
pub(crate) struct MetaStore {
    db: Database,
}

/// Checks that a key or name is usable.
pub(crate) fn check_key(what: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    Ok(())
}

/// Checks containerd's label limits.
pub(crate) fn check_labels(labels: &Labels) -> Result<()> {
    for (k, v) in labels {
        if k.is_empty() {
            return Err(Error::InvalidArgument("label key must not be empty".into()));
        }
        if k.len() + v.len() > MAX_LABEL_SIZE {
            return Err(Error::InvalidArgument(format!(
                "label {k:?}: key and value longer than {MAX_LABEL_SIZE} bytes"
            )));
        }
    }
    Ok(())
}

fn decode(key: &str, bytes: &[u8]) -> Result<Record> {
    serde_json::from_slice(bytes).map_err(|source| Error::CorruptRecord {
        key: key.to_string(),
        source,
    })
}

fn encode(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("snapshot records always serialize")
}

fn get<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    key: &str,
) -> Result<Option<Record>> {
    match table.get(key)? {
        Some(v) => Ok(Some(decode(key, v.value())?)),
        None => Ok(None),
    }
}

fn parent_ids<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    first: Option<&str>,
) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    let mut next = first.map(str::to_string);
    while let Some(name) = next {
        let record = get(table, &name)?
            .ok_or_else(|| Error::NotFound(format!("parent snapshot {name:?} does not exist")))?;
        ids.push(record.id);
        next = record.parent;
    }
    Ok(ids)
}

impl MetaStore {
    /// Opens or creates the database file.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_multimap_table(CHILDREN)?;
        txn.open_table(SEQUENCE)?;
        txn.commit()?;
        Ok(MetaStore { db })
    }

    /// The info and stored usage of a snapshot, and its id.
    pub fn get(&self, key: &str) -> Result<(u64, Info, Usage)> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let record = get(&table, key)?
            .ok_or_else(|| Error::NotFound(format!("snapshot {key:?} does not exist")))?;
        Ok((record.id, record.info(key), record.usage))
    }

    /// An active snapshot or view with its parent chain (for mounts).
    pub fn mountable(&self, key: &str) -> Result<Snapshot> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let record = get(&table, key)?
            .ok_or_else(|| Error::NotFound(format!("snapshot {key:?} does not exist")))?;
        if record.kind == Kind::Committed {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} is committed and has no mounts; create a view or an active snapshot of it"
            )));
        }
        Ok(Snapshot {
            id: record.id,
            kind: record.kind,
            parent_ids: parent_ids(&table, record.parent.as_deref())?,
        })
    }

    /// Every snapshot.
    pub fn list(&self) -> Result<Vec<Info>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            out.push(decode(k.value(), v.value())?.info(k.value()));
        }
        Ok(out)
    }

    /// Validates a create request without changing anything; returns the parent's chain ids.
    pub fn check_create(&self, kind: Kind, key: &str, parent: Option<&str>) -> Result<Vec<u64>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        check_create_in(&table, kind, key, parent)
    }

    /// Creates a snapshot record. `publish` runs inside the write transaction once the id is
    /// known (it moves the snapshot's directory into place); the record becomes visible only
    /// if it succeeds and the transaction commits.
    pub fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        publish: impl FnOnce(u64, &[u64]) -> Result<()>,
    ) -> Result<Snapshot> {
        let txn = self.db.begin_write()?;
        let snapshot = {
            let mut table = txn.open_table(SNAPSHOTS)?;
            let parent_ids = check_create_in(&table, kind, key, parent)?;
            let id = next_id(&txn)?;
            let now = encode_time(SystemTime::now());
            let record = Record {
                id,
                kind,
                parent: parent.map(str::to_string),
                labels,
                created: now,
                updated: now,
                usage: Usage::default(),
            };
            table.insert(key, encode(&record).as_slice())?;
            if let Some(&pid) = parent_ids.first() {
                txn.open_multimap_table(CHILDREN)?.insert(pid, id)?;
            }
            publish(id, &parent_ids)?;
            Snapshot {
                id,
                kind,
                parent_ids,
            }
        };
        txn.commit()?;
        Ok(snapshot)
    }

    /// Turns active `key` into committed `name`, keeping its id and directory.
    pub fn commit(&self, name: &str, key: &str, labels: Labels, usage: Usage) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(SNAPSHOTS)?;
            let mut record = get(&table, key)?
                .ok_or_else(|| Error::NotFound(format!("snapshot {key:?} does not exist")))?;
            if record.kind != Kind::Active {
                return Err(Error::FailedPrecondition(format!(
                    "snapshot {key:?} is a {} snapshot; only active snapshots can be committed",
                    record.kind
                )));
            }
            if table.get(name)?.is_some() {
                return Err(Error::AlreadyExists(format!(
                    "snapshot {name:?} already exists"
                )));
            }
            let now = encode_time(SystemTime::now());
            record.kind = Kind::Committed;
            record.labels = labels;
            record.created = now;
            record.updated = now;
            record.usage = usage;
            table.remove(key)?;
            table.insert(name, encode(&record).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Deletes the record of a snapshot without children; returns its id.
    pub fn remove(&self, key: &str) -> Result<u64> {
        let txn = self.db.begin_write()?;
        let id = {
            let mut table = txn.open_table(SNAPSHOTS)?;
            let record = get(&table, key)?
                .ok_or_else(|| Error::NotFound(format!("snapshot {key:?} does not exist")))?;
            let mut children = txn.open_multimap_table(CHILDREN)?;
            if children.get(record.id)?.next().is_some() {
                return Err(Error::FailedPrecondition(format!(
                    "cannot remove snapshot {key:?}: it has children; remove them first"
                )));
            }
            if let Some(parent) = &record.parent
                && let Some(p) = get(&table, parent)?
            {
                children.remove(p.id, record.id)?;
            }
            table.remove(key)?;
            record.id
        };
        txn.commit()?;
        Ok(id)
    }

    /// Changes labels (see [`crate::Snapshotter::update`]).
    pub fn update(&self, info: &Info, fieldpaths: &[String]) -> Result<Info> {
        let txn = self.db.begin_write()?;
        let updated = {
            let mut table = txn.open_table(SNAPSHOTS)?;
            let mut record = get(&table, &info.name)?.ok_or_else(|| {
                Error::NotFound(format!("snapshot {:?} does not exist", info.name))
            })?;
            let mut labels = record.labels.clone();
            if fieldpaths.is_empty() {
                labels = info.labels.clone();
            }
            for path in fieldpaths {
                if path == "labels" {
                    labels = info.labels.clone();
                } else if let Some(k) = path.strip_prefix("labels.") {
                    match info.labels.get(k) {
                        Some(v) if !v.is_empty() => {
                            labels.insert(k.to_string(), v.clone());
                        }
                        _ => {
                            labels.remove(k);
                        }
                    }
                } else {
                    return Err(Error::InvalidArgument(format!(
                        "cannot update field {path:?} of snapshot {:?}: only labels can change",
                        info.name
                    )));
                }
            }
            check_labels(&labels)?;
            record.labels = labels;
            record.updated = encode_time(SystemTime::now());
            table.insert(info.name.as_str(), encode(&record).as_slice())?;
            record.info(&info.name)
        };
        txn.commit()?;
        Ok(updated)
    }

    /// Runs `f` with the set of live ids while holding the write lock, so that no snapshot is
    /// created or removed meanwhile (used by cleanup).
    pub fn with_write_lock<R>(&self, f: impl FnOnce(&HashSet<u64>) -> R) -> Result<R> {
        let txn = self.db.begin_write()?;
        let ids = ids_in(&txn.open_table(SNAPSHOTS)?)?;
        let out = f(&ids);
        txn.abort()?;
        Ok(out)
    }
}

fn ids_in<T: ReadableTable<&'static str, &'static [u8]>>(table: &T) -> Result<HashSet<u64>> {
    let mut ids = HashSet::new();
    for item in table.iter()? {
        let (k, v) = item?;
        ids.insert(decode(k.value(), v.value())?.id);
    }
    Ok(ids)
}

fn check_create_in<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    kind: Kind,
    key: &str,
    parent: Option<&str>,
) -> Result<Vec<u64>> {
    if kind == Kind::Committed {
        return Err(Error::InvalidArgument(
            "only active snapshots and views can be created".into(),
        ));
    }
    check_key("snapshot key", key)?;
    let mut ids = Vec::new();
    if let Some(parent) = parent {
        let record = get(table, parent)?
            .ok_or_else(|| Error::NotFound(format!("parent snapshot {parent:?} does not exist")))?;
        if record.kind != Kind::Committed {
            return Err(Error::InvalidArgument(format!(
                "parent {parent:?} is a {} snapshot; only committed snapshots can be parents",
                record.kind
            )));
        }
        ids.push(record.id);
        ids.extend(parent_ids(table, record.parent.as_deref())?);
    }
    if table.get(key)?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "snapshot {key:?} already exists"
        )));
    }
    Ok(ids)
}

fn next_id(txn: &WriteTransaction) -> Result<u64> {
    let mut seq = txn.open_table(SEQUENCE)?;
    let id = seq.get("next_id")?.map(|v| v.value()).unwrap_or(1);
    seq.insert("next_id", id + 1)?;
    Ok(id)
}
