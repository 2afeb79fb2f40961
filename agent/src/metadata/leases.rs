//! Lease records: a lease holds content, snapshots and ingests against garbage
//! collection until it is deleted or, with `containerd.io/gc.expire`, until it expires.

use serde::{Deserialize, Serialize};

use super::{Metadata, Table, WriteTx, key, prefix};
use crate::error::{Error, Result};
use crate::labels::{self, Labels};

pub(super) const LEASES: Table = Table::new("leases");
/// `ns \0 lease \0 type \0 id` -> ().
pub(super) const LEASE_RESOURCES: Table = Table::new("lease_resources");

/// A lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
    pub labels: Labels,
}

/// Something a lease holds: `content`, `ingests`, or `snapshots/<snapshotter>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseResource {
    pub kind: String,
    pub id: String,
}

impl LeaseResource {
    fn validate(&self) -> Result<()> {
        let known = matches!(self.kind.as_str(), "content" | "ingests")
            || self
                .kind
                .strip_prefix("snapshots/")
                .is_some_and(|s| !s.is_empty());
        if !known {
            return Err(Error::InvalidArgument(format!(
                "lease resource type {:?} is not one of content, ingests, snapshots/<snapshotter>",
                self.kind
            )));
        }
        if self.id.is_empty() {
            return Err(Error::InvalidArgument(
                "lease resource id must not be empty".into(),
            ));
        }
        Ok(())
    }
}

impl Metadata {
    /// Creates a lease; an empty id gets a generated one.
    pub fn lease_create(&self, ns: &str, id: &str, labels: Labels) -> Result<Lease> {
        let id = if id.is_empty() {
            generate_id()
        } else {
            id.to_string()
        };
        validate_id(&id)?;
        labels::validate(&labels)?;
        let lease = Lease {
            id,
            created_at: berth_api::time::to_unix_nanos(std::time::SystemTime::now()),
            labels,
        };
        self.write(|tx| {
            tx.ensure_namespace(ns)?;
            let k = key(&[ns, &lease.id]);
            if tx.get::<Lease>(LEASES, &k)?.is_some() {
                return Err(Error::AlreadyExists(format!("lease {}", lease.id)));
            }
            tx.put(LEASES, &k, &lease)
        })?;
        Ok(lease)
    }

    pub fn lease_delete(&self, ns: &str, id: &str) -> Result<()> {
        self.write(|tx| {
            if !tx.remove(LEASES, &key(&[ns, id]))? {
                return Err(Error::NotFound(format!("lease {id}")));
            }
            tx.remove_prefix(LEASE_RESOURCES, &prefix(&[ns, id]))?;
            Ok(())
        })
    }

    pub fn lease_list(&self, ns: &str) -> Result<Vec<Lease>> {
        let all = self.read(|tx| tx.scan::<Lease>(LEASES, &prefix(&[ns])))?;
        Ok(all.into_iter().map(|(_, l)| l).collect())
    }

    pub fn lease_add_resource(&self, ns: &str, id: &str, r: &LeaseResource) -> Result<()> {
        self.write(|tx| tx.lease_add_resource(ns, id, r))
    }

    /// Adds a resource to a lease; true when the lease did not hold it yet.
    pub fn lease_hold(&self, ns: &str, id: &str, r: &LeaseResource) -> Result<bool> {
        self.write(|tx| {
            let held = tx
                .get::<()>(LEASE_RESOURCES, &key(&[ns, id, &r.kind, &r.id]))?
                .is_some();
            tx.lease_add_resource(ns, id, r)?;
            Ok(!held)
        })
    }

    pub fn lease_delete_resource(&self, ns: &str, id: &str, r: &LeaseResource) -> Result<()> {
        r.validate()?;
        self.write(|tx| {
            if tx.get::<Lease>(LEASES, &key(&[ns, id]))?.is_none() {
                return Err(Error::NotFound(format!("lease {id}")));
            }
            tx.remove(LEASE_RESOURCES, &key(&[ns, id, &r.kind, &r.id]))?;
            Ok(())
        })
    }

    pub fn lease_resources(&self, ns: &str, id: &str) -> Result<Vec<LeaseResource>> {
        self.read(|tx| {
            if tx.get::<Lease>(LEASES, &key(&[ns, id]))?.is_none() {
                return Err(Error::NotFound(format!("lease {id}")));
            }
            let rows = tx.scan::<()>(LEASE_RESOURCES, &prefix(&[ns, id]))?;
            Ok(rows
                .into_iter()
                .filter_map(|(rest, ())| {
                    let (kind, id) = rest.split_once('\0')?;
                    Some(LeaseResource {
                        kind: kind.to_string(),
                        id: id.to_string(),
                    })
                })
                .collect())
        })
    }
}

impl WriteTx {
    /// Adds a resource to a lease inside a transaction (the lease must exist).
    pub fn lease_add_resource(&self, ns: &str, id: &str, r: &LeaseResource) -> Result<()> {
        r.validate()?;
        if self.get::<Lease>(LEASES, &key(&[ns, id]))?.is_none() {
            return Err(Error::NotFound(format!("lease {id}")));
        }
        self.put(LEASE_RESOURCES, &key(&[ns, id, &r.kind, &r.id]), &())
    }

    /// Removes a resource from a lease inside a transaction; a missing lease or
    /// resource is not an error.
    pub fn lease_remove_resource(&self, ns: &str, id: &str, r: &LeaseResource) -> Result<()> {
        self.remove(LEASE_RESOURCES, &key(&[ns, id, &r.kind, &r.id]))?;
        Ok(())
    }

    /// Every lease of every namespace, as `(ns, lease)`.
    pub fn all_leases(&self) -> Result<Vec<(String, Lease)>> {
        Ok(self
            .scan::<Lease>(LEASES, "")?
            .into_iter()
            .filter_map(|(k, l)| Some((k.split_once('\0')?.0.to_string(), l)))
            .collect())
    }

    /// The resources a lease holds.
    pub fn lease_resources_of(&self, ns: &str, id: &str) -> Result<Vec<LeaseResource>> {
        let rows = self.scan::<()>(LEASE_RESOURCES, &prefix(&[ns, id]))?;
        Ok(rows
            .into_iter()
            .filter_map(|(rest, ())| {
                let (kind, id) = rest.split_once('\0')?;
                Some(LeaseResource {
                    kind: kind.to_string(),
                    id: id.to_string(),
                })
            })
            .collect())
    }

    /// Removes a lease and its resource list; true if it existed.
    pub fn lease_remove(&self, ns: &str, id: &str) -> Result<bool> {
        let existed = self.remove(LEASES, &key(&[ns, id]))?;
        self.remove_prefix(LEASE_RESOURCES, &prefix(&[ns, id]))?;
        Ok(existed)
    }
}

/// Lease ids are free-form (ctr uses a mount point path as one), but not empty, not
/// absurdly long, and free of NUL (berth's key separator).
fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 4096 || id.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "lease id {id:?} must be 1 to 4096 bytes without NUL"
        )));
    }
    Ok(())
}

/// A lease id in containerd's style: `<unix nanos>-<random>`.
fn generate_id() -> String {
    let nanos = berth_api::time::to_unix_nanos(std::time::SystemTime::now());
    format!("{nanos}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let md = Metadata::open(&dir.path().join("meta.redb")).unwrap();
        let l = md.lease_create("ns", "", Labels::new()).unwrap();
        assert!(!l.id.is_empty());
        assert!(matches!(
            md.lease_create("ns", &l.id, Labels::new()),
            Err(Error::AlreadyExists(_))
        ));
        let r = LeaseResource {
            kind: "snapshots/overlayfs".into(),
            id: "k 1".into(),
        };
        md.lease_add_resource("ns", &l.id, &r).unwrap();
        md.lease_add_resource(
            "ns",
            &l.id,
            &LeaseResource {
                kind: "content".into(),
                id: "sha256:ab".into(),
            },
        )
        .unwrap();
        assert_eq!(md.lease_resources("ns", &l.id).unwrap().len(), 2);
        md.lease_delete_resource("ns", &l.id, &r).unwrap();
        assert_eq!(md.lease_resources("ns", &l.id).unwrap().len(), 1);
        let bad = LeaseResource {
            kind: "bogus".into(),
            id: "x".into(),
        };
        assert!(matches!(
            md.lease_add_resource("ns", &l.id, &bad),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(md.lease_list("ns").unwrap().len(), 1);
        assert!(md.lease_list("other").unwrap().is_empty());
        md.lease_delete("ns", &l.id).unwrap();
        assert!(matches!(
            md.lease_delete("ns", &l.id),
            Err(Error::NotFound(_))
        ));
        assert!(md.lease_list("ns").unwrap().is_empty());
    }
}
