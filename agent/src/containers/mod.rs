//! Container records: what to run (the OCI spec, stored verbatim), from which image and
//! snapshot, with which runtime. Records only; running them is the tasks subsystem.

mod gc;

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::containerd::events::{ContainerCreate, ContainerDelete, ContainerUpdate};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::Exchange;
use crate::filters::{Adaptor, Filter, label_field};
use crate::identifiers;
use crate::labels::{self, Labels};
use crate::metadata::{AnyRecord, Metadata, Table, key, prefix};

pub use gc::ContainersGc;

pub(crate) const CONTAINERS: Table = Table::new("containers");

/// The runtime that runs a container, with its options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    pub name: String,
    pub options: Option<AnyRecord>,
}

/// A container record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub labels: Labels,
    pub image: String,
    pub runtime: Runtime,
    /// The OCI runtime spec, as the client sent it (JSON under the spec type URL).
    pub spec: Option<AnyRecord>,
    pub snapshotter: String,
    pub snapshot_key: String,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub extensions: BTreeMap<String, AnyRecord>,
}

impl Container {
    fn validate(&self) -> Result<()> {
        identifiers::validate("container", &self.id)?;
        labels::validate(&self.labels)?;
        if self.extensions.keys().any(String::is_empty) {
            return Err(Error::InvalidArgument(
                "container extension keys must not be empty".into(),
            ));
        }
        if self.runtime.name.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "container {}: runtime name must be set",
                self.id
            )));
        }
        if self.spec.is_none() {
            return Err(Error::InvalidArgument(format!(
                "container {}: spec must be set",
                self.id
            )));
        }
        if !self.snapshot_key.is_empty() && self.snapshotter.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "container {}: snapshotter must be set with a snapshot key",
                self.id
            )));
        }
        Ok(())
    }
}

impl Adaptor for Container {
    fn field(&self, path: &[String]) -> Option<String> {
        let nonempty = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        match path.first()?.as_str() {
            "id" => nonempty(&self.id),
            "image" => nonempty(&self.image),
            "runtime" if path.get(1).is_some_and(|p| p == "name") => nonempty(&self.runtime.name),
            "snapshotter" => nonempty(&self.snapshotter),
            "labels" => label_field(&self.labels, path),
            _ => None,
        }
    }
}

fn now() -> i64 {
    berth_api::time::to_unix_nanos(std::time::SystemTime::now())
}

/// Container operations with their events.
#[derive(Clone)]
pub struct Containers {
    md: Arc<Metadata>,
    events: Exchange,
}

impl Containers {
    pub fn new(md: Arc<Metadata>, events: Exchange) -> Self {
        Containers { md, events }
    }

    pub fn get(&self, ns: &str, id: &str) -> Result<Container> {
        self.md
            .read(|tx| tx.get::<Container>(CONTAINERS, &key(&[ns, id])))?
            .ok_or_else(|| Error::NotFound(format!("container {id}")))
    }

    pub fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<Container>> {
        let all = self
            .md
            .read(|tx| tx.scan::<Container>(CONTAINERS, &prefix(&[ns])))?;
        Ok(all
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| filter.matches(c))
            .collect())
    }

    pub fn create(&self, ns: &str, mut c: Container) -> Result<Container> {
        c.validate()?;
        c.created_at = now();
        c.updated_at = c.created_at;
        self.md.write(|tx| {
            tx.ensure_namespace(ns)?;
            let k = key(&[ns, &c.id]);
            if tx.get::<Container>(CONTAINERS, &k)?.is_some() {
                return Err(Error::AlreadyExists(format!("container {}", c.id)));
            }
            tx.put(CONTAINERS, &k, &c)
        })?;
        self.events.publish(
            ns,
            "/containers/create",
            &ContainerCreate {
                id: c.id.clone(),
                image: c.image.clone(),
                runtime: Some(berth_api::containerd::events::container_create::Runtime {
                    name: c.runtime.name.clone(),
                    options: c.runtime.options.clone().map(Into::into),
                }),
            },
        );
        Ok(c)
    }

    /// Applies `update` under containerd's field-mask rules: with no paths, labels, spec,
    /// extensions, image and snapshot key are replaced, and snapshotter and runtime name
    /// must be unchanged.
    pub fn update(&self, ns: &str, update: Container, paths: &[String]) -> Result<Container> {
        if update.id.is_empty() {
            return Err(Error::InvalidArgument("container id must be set".into()));
        }
        let updated = self.md.write(|tx| {
            let k = key(&[ns, &update.id]);
            let mut cur = tx
                .get::<Container>(CONTAINERS, &k)?
                .ok_or_else(|| Error::NotFound(format!("container {}", update.id)))?;
            let defaults: Vec<String>;
            let paths = if paths.is_empty() {
                if cur.snapshotter != update.snapshotter {
                    return Err(Error::InvalidArgument(format!(
                        "container {}: snapshotter is immutable",
                        update.id
                    )));
                }
                if cur.runtime.name != update.runtime.name {
                    return Err(Error::InvalidArgument(format!(
                        "container {}: runtime name is immutable",
                        update.id
                    )));
                }
                defaults = ["labels", "spec", "extensions", "image", "snapshotkey"]
                    .map(String::from)
                    .to_vec();
                &defaults
            } else {
                paths
            };
            for p in paths {
                if labels::apply_mask_path(&mut cur.labels, &update.labels, p)? {
                    continue;
                }
                if let Some(name) = p.strip_prefix("extensions.") {
                    match update.extensions.get(name) {
                        Some(v) => cur.extensions.insert(name.to_string(), v.clone()),
                        None => cur.extensions.remove(name),
                    };
                    continue;
                }
                match p.as_str() {
                    "spec" => cur.spec = update.spec.clone(),
                    "extensions" => cur.extensions = update.extensions.clone(),
                    "image" => cur.image = update.image.clone(),
                    "snapshotkey" => cur.snapshot_key = update.snapshot_key.clone(),
                    other => {
                        return Err(Error::InvalidArgument(format!(
                            "cannot update {other:?} field on container {}",
                            update.id
                        )));
                    }
                }
            }
            cur.validate()?;
            cur.updated_at = now();
            tx.put(CONTAINERS, &k, &cur)?;
            Ok(cur)
        })?;
        self.events.publish(
            ns,
            "/containers/update",
            &ContainerUpdate {
                id: updated.id.clone(),
                image: updated.image.clone(),
                labels: updated.labels.clone().into_iter().collect(),
                snapshot_key: updated.snapshot_key.clone(),
            },
        );
        Ok(updated)
    }

    pub fn delete(&self, ns: &str, id: &str) -> Result<()> {
        self.md.write(|tx| {
            if !tx.remove(CONTAINERS, &key(&[ns, id]))? {
                return Err(Error::NotFound(format!("container {id}")));
            }
            Ok(())
        })?;
        self.events
            .publish(ns, "/containers/delete", &ContainerDelete { id: id.into() });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Containers) {
        let dir = tempfile::tempdir().unwrap();
        let md = Arc::new(Metadata::open(&dir.path().join("meta.redb")).unwrap());
        (dir, Containers::new(md, Exchange::new()))
    }

    fn sample(id: &str) -> Container {
        Container {
            id: id.into(),
            image: "docker.io/library/busybox:latest".into(),
            runtime: Runtime {
                name: "io.containerd.runc.v2".into(),
                options: None,
            },
            spec: Some(AnyRecord {
                type_url: berth_api::any::SPEC.into(),
                value: b"{}".to_vec(),
            }),
            snapshotter: "overlayfs".into(),
            snapshot_key: id.into(),
            labels: [("a".to_string(), "1".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn create_get_list_delete() {
        let (_d, s) = store();
        let c = s.create("ns", sample("c1")).unwrap();
        assert!(c.created_at > 0);
        assert!(matches!(
            s.create("ns", sample("c1")),
            Err(Error::AlreadyExists(_))
        ));
        assert_eq!(s.get("ns", "c1").unwrap().spec, c.spec);
        assert!(matches!(s.get("other", "c1"), Err(Error::NotFound(_))));
        let f = Filter::parse("labels.a==1,runtime.name==io.containerd.runc.v2").unwrap();
        assert_eq!(s.list("ns", &f).unwrap().len(), 1);
        assert!(
            s.list("ns", &Filter::parse("image==x").unwrap())
                .unwrap()
                .is_empty()
        );
        s.delete("ns", "c1").unwrap();
        assert!(matches!(s.delete("ns", "c1"), Err(Error::NotFound(_))));
    }

    #[test]
    fn validation() {
        let (_d, s) = store();
        let mut c = sample("c1");
        c.spec = None;
        assert!(matches!(s.create("ns", c), Err(Error::InvalidArgument(_))));
        let mut c = sample("c2");
        c.runtime.name.clear();
        assert!(matches!(s.create("ns", c), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            s.create("ns", sample("bad/id")),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn update_masks() {
        let (_d, s) = store();
        s.create("ns", sample("c1")).unwrap();
        let mut u = sample("c1");
        u.labels = [("b".to_string(), "2".to_string())].into();
        u.image = "other".into();
        let got = s.update("ns", u.clone(), &["labels.b".into()]).unwrap();
        assert_eq!(got.labels.len(), 2);
        assert_eq!(got.image, "docker.io/library/busybox:latest");
        let got = s.update("ns", u.clone(), &[]).unwrap();
        assert_eq!(got.image, "other");
        assert_eq!(got.labels.len(), 1);
        assert!(matches!(
            s.update("ns", u.clone(), &["runtime".into()]),
            Err(Error::InvalidArgument(_))
        ));
        let mut v = u.clone();
        v.snapshotter = "native".into();
        assert!(matches!(
            s.update("ns", v, &[]),
            Err(Error::InvalidArgument(_))
        ));
    }
}
