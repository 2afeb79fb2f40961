//! Typed access to redb tables: string keys, JSON values, prefix scans.

use std::sync::atomic::{AtomicBool, Ordering};

use redb::{ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::Result;

/// A table of JSON records under string keys.
pub type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// Joins key parts with NUL, the separator of namespaced keys.
pub fn key(parts: &[&str]) -> String {
    parts.join("\0")
}

/// The key prefix of every record under `parts` (ends with the separator).
pub fn prefix(parts: &[&str]) -> String {
    let mut k = key(parts);
    k.push('\0');
    k
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

fn scan_table<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
) -> Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    for entry in table.range::<&str>(prefix..)? {
        let (k, v) = entry?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        out.push((k[prefix.len()..].to_string(), decode(v.value())?));
    }
    Ok(out)
}

fn any_in(table: &impl ReadableTable<&'static str, &'static [u8]>, prefix: &str) -> Result<bool> {
    Ok(match table.range::<&str>(prefix..)?.next() {
        Some(e) => e?.0.value().starts_with(prefix),
        None => false,
    })
}

/// A read transaction.
pub struct ReadTx(redb::ReadTransaction);

impl ReadTx {
    pub(super) fn new(tx: redb::ReadTransaction) -> Self {
        ReadTx(tx)
    }

    /// The record under `key`, if any.
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        let t = self.0.open_table(table)?;
        t.get(key)?.map(|v| decode(v.value())).transpose()
    }

    /// Every record whose key starts with `prefix`, keyed by the rest of the key.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, T)>> {
        scan_table(&self.0.open_table(table)?, prefix)
    }

    /// Whether any key starts with `prefix`.
    pub fn any(&self, table: Table, prefix: &str) -> Result<bool> {
        any_in(&self.0.open_table(table)?, prefix)
    }
}

/// A write transaction; reads see its own writes. One that changed nothing ends without
/// a commit (a redb commit is a durable write and an fsync even when empty).
pub struct WriteTx(redb::WriteTransaction, AtomicBool);

impl WriteTx {
    pub(super) fn new(tx: redb::WriteTransaction) -> Self {
        WriteTx(tx, AtomicBool::new(false))
    }

    fn changed(&self) {
        self.1.store(true, Ordering::Relaxed);
    }

    pub(super) fn commit(self) -> Result<()> {
        if self.1.load(Ordering::Relaxed) {
            self.0.commit()?;
        } else {
            self.0.abort()?;
        }
        Ok(())
    }

    /// Creates `table` if it does not exist yet (opening a table in a write transaction
    /// creates it, but only a transaction that counts as changed is committed).
    pub fn create(&self, table: Table) -> Result<()> {
        self.changed();
        self.0.open_table(table)?;
        Ok(())
    }

    /// The record under `key`, if any.
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        let t = self.0.open_table(table)?;
        t.get(key)?.map(|v| decode(v.value())).transpose()
    }

    /// Stores `value` under `key`, replacing any record.
    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value)?;
        self.changed();
        self.0.open_table(table)?.insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Removes `key`; true if it existed.
    pub fn remove(&self, table: Table, key: &str) -> Result<bool> {
        let removed = self.0.open_table(table)?.remove(key)?.is_some();
        if removed {
            self.changed();
        }
        Ok(removed)
    }

    /// Every record whose key starts with `prefix`, keyed by the rest of the key.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, T)>> {
        scan_table(&self.0.open_table(table)?, prefix)
    }

    /// Whether any key starts with `prefix`.
    pub fn any(&self, table: Table, prefix: &str) -> Result<bool> {
        any_in(&self.0.open_table(table)?, prefix)
    }

    /// Removes every key that starts with `prefix`; returns how many.
    pub fn remove_prefix(&self, table: Table, prefix: &str) -> Result<usize> {
        let mut t = self.0.open_table(table)?;
        let keys: Vec<String> = {
            let mut keys = Vec::new();
            for entry in t.range::<&str>(prefix..)? {
                let (k, _) = entry?;
                let k = k.value();
                if !k.starts_with(prefix) {
                    break;
                }
                keys.push(k.to_string());
            }
            keys
        };
        if !keys.is_empty() {
            self.changed();
        }
        for k in &keys {
            t.remove(k.as_str())?;
        }
        Ok(keys.len())
    }
}
