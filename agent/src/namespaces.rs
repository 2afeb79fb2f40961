//! Namespaces: metadata records plus their events.

use std::sync::Arc;

use berth_api::containerd::events::{NamespaceCreate, NamespaceDelete, NamespaceUpdate};

use crate::error::Result;
use crate::events::Exchange;
use crate::metadata::{Metadata, Namespace};

/// The namespace operations the services use.
#[derive(Clone)]
pub struct Namespaces {
    md: Arc<Metadata>,
    events: Exchange,
}

impl Namespaces {
    pub fn new(md: Arc<Metadata>, events: Exchange) -> Self {
        Namespaces { md, events }
    }

    pub fn get(&self, name: &str) -> Result<Namespace> {
        self.md.namespace_get(name)
    }

    pub fn list(&self) -> Result<Vec<Namespace>> {
        self.md.namespace_list()
    }

    pub fn create(&self, ns: &Namespace) -> Result<Namespace> {
        let created = self.md.namespace_create(ns)?;
        self.events.publish(
            &created.name,
            "/namespaces/create",
            &NamespaceCreate {
                name: created.name.clone(),
                labels: created.labels.clone().into_iter().collect(),
            },
        );
        Ok(created)
    }

    pub fn update(&self, ns: &Namespace, paths: &[String]) -> Result<Namespace> {
        let updated = self.md.namespace_update(ns, paths)?;
        self.events.publish(
            &updated.name,
            "/namespaces/update",
            &NamespaceUpdate {
                name: updated.name.clone(),
                labels: updated.labels.clone().into_iter().collect(),
            },
        );
        Ok(updated)
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        self.md.namespace_delete(name)?;
        self.events.publish(
            name,
            "/namespaces/delete",
            &NamespaceDelete { name: name.into() },
        );
        Ok(())
    }
}
