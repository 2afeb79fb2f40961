//! Content records: which blobs each namespace can see (with their labels), and the
//! in-flight writes (ingests) each namespace has open. The bytes live in the content
//! store's directory; these records decide visibility and what garbage collection keeps.

use serde::{Deserialize, Serialize};

use super::{ReadTx, Table, WriteTx, key, prefix};
use crate::error::Result;
use crate::labels::Labels;

/// `ns \0 digest` -> [`BlobRecord`].
pub(crate) const CONTENT: Table = Table::new("content");
/// `ns \0 ref` -> [`IngestRecord`].
pub(crate) const INGESTS: Table = Table::new("content_ingests");

/// A blob as committed (or labelled) in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: i64,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub labels: Labels,
}

/// An open ingest of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestRecord {
    /// The ingest directory name under `content/ingest/`.
    pub key: String,
    /// The expected digest, when the client gave one.
    #[serde(default)]
    pub expected: Option<String>,
    /// Set when the blob already existed (from another namespace) at open: committing
    /// needs no bytes, only this namespace's record.
    #[serde(default)]
    pub shared: bool,
    /// When a writer last opened it, nanoseconds since the Unix epoch.
    pub opened_at: i64,
}

/// Splits a namespaced key into namespace and the rest.
pub(crate) fn split_key(k: &str) -> Option<(&str, &str)> {
    k.split_once('\0')
}

macro_rules! content_reads {
    ($tx:ty) => {
        impl $tx {
            /// The record of `digest` in `ns`.
            pub fn blob(&self, ns: &str, digest: &str) -> Result<Option<BlobRecord>> {
                self.get(CONTENT, &key(&[ns, digest]))
            }

            /// Every blob record of `ns`, by digest.
            pub fn blobs(&self, ns: &str) -> Result<Vec<(String, BlobRecord)>> {
                self.scan(CONTENT, &prefix(&[ns]))
            }

            /// Every blob record of every namespace, as `(ns, digest, record)`.
            pub fn all_blobs(&self) -> Result<Vec<(String, String, BlobRecord)>> {
                Ok(self
                    .scan::<BlobRecord>(CONTENT, "")?
                    .into_iter()
                    .filter_map(|(k, r)| {
                        let (ns, d) = split_key(&k)?;
                        Some((ns.to_string(), d.to_string(), r))
                    })
                    .collect())
            }

            /// The ingest of `reference` in `ns`.
            pub fn ingest(&self, ns: &str, reference: &str) -> Result<Option<IngestRecord>> {
                self.get(INGESTS, &key(&[ns, reference]))
            }

            /// Every ingest of `ns`, by ref.
            pub fn ingests(&self, ns: &str) -> Result<Vec<(String, IngestRecord)>> {
                self.scan(INGESTS, &prefix(&[ns]))
            }

            /// Every ingest of every namespace, as `(ns, ref, record)`.
            pub fn all_ingests(&self) -> Result<Vec<(String, String, IngestRecord)>> {
                Ok(self
                    .scan::<IngestRecord>(INGESTS, "")?
                    .into_iter()
                    .filter_map(|(k, r)| {
                        let (ns, rf) = split_key(&k)?;
                        Some((ns.to_string(), rf.to_string(), r))
                    })
                    .collect())
            }
        }
    };
}

content_reads!(ReadTx);
content_reads!(WriteTx);

impl WriteTx {
    pub fn put_blob(&self, ns: &str, digest: &str, rec: &BlobRecord) -> Result<()> {
        self.put(CONTENT, &key(&[ns, digest]), rec)
    }

    /// Removes the record; true if it existed.
    pub fn remove_blob(&self, ns: &str, digest: &str) -> Result<bool> {
        self.remove(CONTENT, &key(&[ns, digest]))
    }

    pub fn put_ingest(&self, ns: &str, reference: &str, rec: &IngestRecord) -> Result<()> {
        self.put(INGESTS, &key(&[ns, reference]), rec)
    }

    /// Removes the record; true if it existed.
    pub fn remove_ingest(&self, ns: &str, reference: &str) -> Result<bool> {
        self.remove(INGESTS, &key(&[ns, reference]))
    }
}
