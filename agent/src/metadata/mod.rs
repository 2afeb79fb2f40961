//! berthd's metadata: one embedded, ACID redb database (`<root>/meta.redb`) holding
//! namespaces, leases, images, containers, content records and every other record the
//! daemon owns. Records are JSON values under string keys; namespaced keys start with
//! the namespace name and a NUL separator (never part of an identifier).

pub mod bytes;
mod content;
mod images;
mod leases;
mod namespaces;
mod store;

use std::path::Path;

use redb::ReadableDatabase as _;

pub use self::bytes::AnyRecord;
pub use content::{BlobRecord, IngestRecord};
pub use images::Image;
pub use leases::{Lease, LeaseResource};
pub use namespaces::Namespace;
pub use store::{ReadTx, Table, WriteTx, key, prefix};

use crate::error::Result;

/// Tables of records that live inside a namespace; a namespace with an entry in any of
/// them is not empty. Later subsystems add theirs here.
pub(crate) const NAMESPACED: &[(&str, Table)] = &[
    ("leases", leases::LEASES),
    ("containers", crate::containers::CONTAINERS),
    ("content", content::CONTENT),
    ("images", images::IMAGES),
    ("berth containers", crate::berth_containers::store::RECORDS),
];

const SYSTEM: Table = Table::new("system");

/// The metadata database.
pub struct Metadata {
    db: redb::Database,
}

impl Metadata {
    /// Opens (or creates) the database and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Metadata> {
        let db = redb::Database::create(path)?;
        let md = Metadata { db };
        md.write(|tx| {
            tx.create(SYSTEM)?;
            tx.create(namespaces::NAMESPACES)?;
            for (_, t) in NAMESPACED {
                tx.create(*t)?;
            }
            tx.create(leases::LEASE_RESOURCES)?;
            tx.create(content::INGESTS)?;
            Ok(())
        })?;
        Ok(md)
    }

    /// Runs `f` in a read transaction.
    pub fn read<R>(&self, f: impl FnOnce(&ReadTx) -> Result<R>) -> Result<R> {
        let tx = ReadTx::new(self.db.begin_read()?);
        f(&tx)
    }

    /// Runs `f` in a write transaction and commits it durably when `f` succeeds.
    pub fn write<R>(&self, f: impl FnOnce(&WriteTx) -> Result<R>) -> Result<R> {
        let tx = WriteTx::new(self.db.begin_write()?);
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    }

    /// The server's UUID, created once and kept across restarts.
    pub fn server_uuid(&self) -> Result<String> {
        if let Some(id) = self.read(|tx| tx.get::<String>(SYSTEM, "uuid"))? {
            return Ok(id);
        }
        self.write(|tx| match tx.get::<String>(SYSTEM, "uuid")? {
            Some(id) => Ok(id),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                tx.put(SYSTEM, "uuid", &id)?;
                Ok(id)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let first = Metadata::open(&path).unwrap().server_uuid().unwrap();
        let second = Metadata::open(&path).unwrap().server_uuid().unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 36);
    }
}
