//! The records of berth's containers in the metadata database: `berth_containers`
//! (`ns \0 id` -> [`Record`]) and the name index `berth_container_names`
//! (`ns \0 name` -> id), kept unique per namespace in the same transactions. What a
//! person types is resolved as docker does: a full ID, a name (with or without its
//! leading '/'), then a unique ID prefix.

use std::sync::Arc;

use super::model::Record;
use crate::error::{Error, Result};
use crate::metadata::{Metadata, Table, key, prefix};

pub(crate) const RECORDS: Table = Table::new("berth_containers");
pub(crate) const NAMES: Table = Table::new("berth_container_names");

/// The error for a name or ID that matches no container.
pub fn no_such_container(input: &str) -> Error {
    Error::Missing(format!("No such container: {input}"))
}

fn name_conflict(name: &str, holder: &str) -> Error {
    Error::AlreadyExists(format!(
        "container name \"/{name}\" is already in use by container \"{holder}\"; remove (or \
         rename) that container to be able to reuse that name"
    ))
}

/// Access to the records.
#[derive(Clone)]
pub struct Store {
    md: Arc<Metadata>,
}

impl Store {
    pub fn open(md: Arc<Metadata>) -> Result<Store> {
        md.write(|tx| {
            tx.create(RECORDS)?;
            tx.create(NAMES)?;
            Ok(())
        })?;
        Ok(Store { md })
    }

    /// Adds a new record; its name must be free in the namespace.
    pub fn insert(&self, ns: &str, rec: &Record) -> Result<()> {
        self.md.write(|tx| {
            tx.ensure_namespace(ns)?;
            let nk = key(&[ns, &rec.name]);
            if let Some(holder) = tx.get::<String>(NAMES, &nk)? {
                return Err(name_conflict(&rec.name, &holder));
            }
            let rk = key(&[ns, &rec.id]);
            if tx.get::<Record>(RECORDS, &rk)?.is_some() {
                return Err(Error::AlreadyExists(format!("container {}", rec.id)));
            }
            tx.put(NAMES, &nk, &rec.id)?;
            tx.put(RECORDS, &rk, rec)
        })
    }

    /// The record of container `id` (a full ID).
    pub fn get(&self, ns: &str, id: &str) -> Result<Record> {
        self.md
            .read(|tx| tx.get::<Record>(RECORDS, &key(&[ns, id])))?
            .ok_or_else(|| no_such_container(id))
    }

    /// The container `input` names: a full ID, a name, or a unique ID prefix.
    pub fn resolve(&self, ns: &str, input: &str) -> Result<Record> {
        let name = input.strip_prefix('/').unwrap_or(input);
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "a container name or ID is required".into(),
            ));
        }
        self.md.read(|tx| {
            if let Some(r) = tx.get::<Record>(RECORDS, &key(&[ns, name]))? {
                return Ok(r);
            }
            if let Some(id) = tx.get::<String>(NAMES, &key(&[ns, name]))?
                && let Some(r) = tx.get::<Record>(RECORDS, &key(&[ns, &id]))?
            {
                return Ok(r);
            }
            if !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(no_such_container(input));
            }
            let mut found = tx.scan::<Record>(RECORDS, &format!("{}{name}", prefix(&[ns])))?;
            match found.len() {
                0 => Err(no_such_container(input)),
                1 => Ok(found.remove(0).1),
                n => Err(Error::FailedPrecondition(format!(
                    "container ID prefix {input} is ambiguous: {n} containers match; give more digits"
                ))),
            }
        })
    }

    /// Changes a record in one transaction; `f` sees the current record.
    pub fn update(
        &self,
        ns: &str,
        id: &str,
        f: impl FnOnce(&mut Record) -> Result<()>,
    ) -> Result<Record> {
        self.md.write(|tx| {
            let k = key(&[ns, id]);
            let mut r = tx
                .get::<Record>(RECORDS, &k)?
                .ok_or_else(|| no_such_container(id))?;
            f(&mut r)?;
            tx.put(RECORDS, &k, &r)?;
            Ok(r)
        })
    }

    /// Gives container `id` the name `new`, free in the namespace.
    pub fn rename(&self, ns: &str, id: &str, new: &str) -> Result<Record> {
        self.md.write(|tx| {
            let k = key(&[ns, id]);
            let mut r = tx
                .get::<Record>(RECORDS, &k)?
                .ok_or_else(|| no_such_container(id))?;
            if r.name == new {
                return Err(Error::InvalidArgument(format!(
                    "renaming container {} to its own name {new}",
                    r.short_id()
                )));
            }
            let nk = key(&[ns, new]);
            if let Some(holder) = tx.get::<String>(NAMES, &nk)? {
                return Err(name_conflict(new, &holder));
            }
            tx.remove(NAMES, &key(&[ns, &r.name]))?;
            tx.put(NAMES, &nk, &r.id)?;
            r.name = new.to_string();
            tx.put(RECORDS, &k, &r)?;
            Ok(r)
        })
    }

    /// Removes the record and its name.
    pub fn remove(&self, ns: &str, id: &str) -> Result<()> {
        self.md.write(|tx| {
            let k = key(&[ns, id]);
            let r = tx
                .get::<Record>(RECORDS, &k)?
                .ok_or_else(|| no_such_container(id))?;
            tx.remove(RECORDS, &k)?;
            let nk = key(&[ns, &r.name]);
            if tx.get::<String>(NAMES, &nk)?.as_deref() == Some(id) {
                tx.remove(NAMES, &nk)?;
            }
            Ok(())
        })
    }

    /// Every record of a namespace.
    pub fn list(&self, ns: &str) -> Result<Vec<Record>> {
        Ok(self
            .md
            .read(|tx| tx.scan::<Record>(RECORDS, &prefix(&[ns])))?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Every record of every namespace, as (namespace, record).
    pub fn all(&self) -> Result<Vec<(String, Record)>> {
        Ok(self
            .md
            .read(|tx| tx.scan::<Record>(RECORDS, ""))?
            .into_iter()
            .filter_map(|(k, r)| k.split_once('\0').map(|(ns, _)| (ns.to_string(), r)))
            .collect())
    }

    /// Whether a name is taken in the namespace.
    pub fn name_taken(&self, ns: &str, name: &str) -> Result<bool> {
        Ok(self
            .md
            .read(|tx| tx.get::<String>(NAMES, &key(&[ns, name])))?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let md = Arc::new(Metadata::open(&dir.path().join("meta.redb")).unwrap());
        (dir, Store::open(md).unwrap())
    }

    fn rec(id: &str, name: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_unique_per_namespace() {
        let (_d, s) = store();
        s.insert("a", &rec("abc1", "web")).unwrap();
        let err = s.insert("a", &rec("abc2", "web")).unwrap_err().to_string();
        assert!(err.contains("\"/web\" is already in use"), "{err}");
        s.insert("b", &rec("abc2", "web")).unwrap();
        assert_eq!(s.resolve("a", "web").unwrap().id, "abc1");
        assert_eq!(s.resolve("b", "/web").unwrap().id, "abc2");
    }

    #[test]
    fn resolution_by_id_name_and_prefix() {
        let (_d, s) = store();
        s.insert("ns", &rec("abc123", "one")).unwrap();
        s.insert("ns", &rec("abd456", "two")).unwrap();
        s.insert("ns", &rec("ff0000", "abc")).unwrap();
        // A name wins over an ID prefix.
        assert_eq!(s.resolve("ns", "abc").unwrap().id, "ff0000");
        assert_eq!(s.resolve("ns", "abd").unwrap().id, "abd456");
        assert_eq!(s.resolve("ns", "abc123").unwrap().id, "abc123");
        let err = s.resolve("ns", "ab").unwrap_err();
        assert!(err.to_string().contains("ambiguous"), "{err}");
        let err = s.resolve("ns", "nope").unwrap_err();
        assert_eq!(err.to_string(), "No such container: nope");
        assert!(matches!(err, Error::Missing(_)));
        assert!(s.resolve("other", "one").is_err());
    }

    #[test]
    fn rename_moves_the_name() {
        let (_d, s) = store();
        s.insert("ns", &rec("abc", "old")).unwrap();
        s.insert("ns", &rec("def", "taken")).unwrap();
        assert!(s.rename("ns", "abc", "taken").is_err());
        s.rename("ns", "abc", "new").unwrap();
        assert!(s.resolve("ns", "old").is_err());
        assert_eq!(s.resolve("ns", "new").unwrap().id, "abc");
        assert!(!s.name_taken("ns", "old").unwrap());
        s.remove("ns", "abc").unwrap();
        assert!(!s.name_taken("ns", "new").unwrap());
        assert_eq!(s.list("ns").unwrap().len(), 1);
        assert_eq!(s.all().unwrap()[0].0, "ns");
    }
}
