//! Namespace records. A namespace exists once created explicitly or once anything is
//! written in it (containerd's implicit creation); it can be deleted only when empty.

use serde::{Deserialize, Serialize};

use super::{Metadata, NAMESPACED, ReadTx, Table, WriteTx, prefix};
use crate::error::{Error, Result};
use crate::identifiers;
use crate::labels::{self, Labels};

pub(super) const NAMESPACES: Table = Table::new("namespaces");

/// A namespace and its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    labels: Labels,
}

impl WriteTx {
    /// Creates the namespace record if it does not exist (first write in a namespace).
    pub fn ensure_namespace(&self, name: &str) -> Result<()> {
        identifiers::validate("namespace", name)?;
        if self.get::<Record>(NAMESPACES, name)?.is_none() {
            self.put(NAMESPACES, name, &Record::default())?;
        }
        Ok(())
    }
}

impl ReadTx {
    /// Whether the namespace exists.
    pub fn namespace_exists(&self, name: &str) -> Result<bool> {
        Ok(self.get::<Record>(NAMESPACES, name)?.is_some())
    }
}

impl Metadata {
    pub fn namespace_get(&self, name: &str) -> Result<Namespace> {
        identifiers::validate("namespace", name)?;
        let rec = self
            .read(|tx| tx.get::<Record>(NAMESPACES, name))?
            .ok_or_else(|| Error::NotFound(format!("namespace {name}")))?;
        Ok(Namespace {
            name: name.to_string(),
            labels: rec.labels,
        })
    }

    pub fn namespace_list(&self) -> Result<Vec<Namespace>> {
        let all = self.read(|tx| tx.scan::<Record>(NAMESPACES, ""))?;
        Ok(all
            .into_iter()
            .map(|(name, r)| Namespace {
                name,
                labels: r.labels,
            })
            .collect())
    }

    pub fn namespace_create(&self, ns: &Namespace) -> Result<Namespace> {
        identifiers::validate("namespace", &ns.name)?;
        labels::validate(&ns.labels)?;
        self.write(|tx| {
            if tx.get::<Record>(NAMESPACES, &ns.name)?.is_some() {
                return Err(Error::AlreadyExists(format!("namespace {}", ns.name)));
            }
            tx.put(
                NAMESPACES,
                &ns.name,
                &Record {
                    labels: ns.labels.clone(),
                },
            )
        })?;
        Ok(ns.clone())
    }

    /// Updates labels: with no paths the labels are replaced; `labels` and
    /// `labels.<key>` paths as containerd.
    pub fn namespace_update(&self, ns: &Namespace, paths: &[String]) -> Result<Namespace> {
        identifiers::validate("namespace", &ns.name)?;
        labels::validate(&ns.labels)?;
        self.write(|tx| {
            let mut rec = tx
                .get::<Record>(NAMESPACES, &ns.name)?
                .ok_or_else(|| Error::NotFound(format!("namespace {}", ns.name)))?;
            if paths.is_empty() {
                rec.labels = ns.labels.clone();
            }
            for p in paths {
                if !labels::apply_mask_path(&mut rec.labels, &ns.labels, p)? {
                    return Err(Error::InvalidArgument(format!(
                        "cannot update {p:?} field on namespace {}",
                        ns.name
                    )));
                }
            }
            tx.put(NAMESPACES, &ns.name, &rec)?;
            Ok(Namespace {
                name: ns.name.clone(),
                labels: rec.labels,
            })
        })
    }

    /// Deletes an empty namespace.
    pub fn namespace_delete(&self, name: &str) -> Result<()> {
        identifiers::validate("namespace", name)?;
        self.write(|tx| {
            if tx.get::<Record>(NAMESPACES, name)?.is_none() {
                return Err(Error::NotFound(format!("namespace {name}")));
            }
            let p = prefix(&[name]);
            let mut used = Vec::new();
            for (what, table) in NAMESPACED {
                if tx.any(*table, &p)? {
                    used.push(*what);
                }
            }
            if !used.is_empty() {
                return Err(Error::FailedPrecondition(format!(
                    "namespace {name} must be empty, but it still has {}",
                    used.join(", ")
                )));
            }
            tx.remove(NAMESPACES, name)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::key;

    fn md() -> (tempfile::TempDir, Metadata) {
        let dir = tempfile::tempdir().unwrap();
        let md = Metadata::open(&dir.path().join("meta.redb")).unwrap();
        (dir, md)
    }

    #[test]
    fn lifecycle() {
        let (_d, md) = md();
        let ns = Namespace {
            name: "n1".into(),
            labels: [("a".into(), "1".into())].into(),
        };
        md.namespace_create(&ns).unwrap();
        assert!(matches!(
            md.namespace_create(&ns),
            Err(Error::AlreadyExists(_))
        ));
        assert_eq!(md.namespace_get("n1").unwrap(), ns);
        let upd = Namespace {
            name: "n1".into(),
            labels: [("b".into(), "2".into())].into(),
        };
        let got = md.namespace_update(&upd, &["labels.b".into()]).unwrap();
        assert_eq!(got.labels.len(), 2);
        assert!(matches!(
            md.namespace_update(&upd, &["name".into()]),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(md.namespace_list().unwrap().len(), 1);
        md.namespace_delete("n1").unwrap();
        assert!(matches!(md.namespace_get("n1"), Err(Error::NotFound(_))));
        assert!(matches!(md.namespace_delete("n1"), Err(Error::NotFound(_))));
        assert!(matches!(
            md.namespace_get("bad/name"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn non_empty_namespace_is_kept() {
        let (_d, md) = md();
        md.write(|tx| {
            tx.ensure_namespace("busy")?;
            tx.put(super::super::leases::LEASES, &key(&["busy", "l1"]), &1u32)
        })
        .unwrap();
        let err = md.namespace_delete("busy").unwrap_err();
        assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
        assert!(err.to_string().contains("leases"), "{err}");
    }
}
