//! Images: named pointers (per namespace) to a manifest or index in the content store,
//! with labels. Creating, updating and deleting one publishes `/images/*` events;
//! deleting one lets garbage collection reclaim the content only it kept.
//!
//! Around the records, what berthd does with images on its own (berth.v1, later CRI):
//! pull ([`pull`]) and push ([`push`]) through the registry client, unpack into
//! snapshots ([`unpack`]), docker's views and verbs over the records ([`catalog`],
//! [`list`], [`inspect`], [`remove`], [`store`]), save and load of archives
//! ([`archive`]), and registry search and login ([`registry`]). See docs/images.md.

pub mod archive;
pub mod catalog;
pub mod config;
pub mod content;
mod gc;
pub mod inspect;
pub mod lease;
pub mod list;
pub mod name;
pub mod progress;
pub mod pull;
pub mod push;
pub mod registry;
pub mod remove;
pub mod sink;
pub mod store;
pub mod stream;
pub mod unpack;

use std::sync::Arc;

use berth_api::containerd::services::images::v1::{ImageCreate, ImageDelete, ImageUpdate};

pub use gc::ImagesGc;
pub use unpack::unpack;

/// Name prefix of the records that keep an image which lost its last name to a pull,
/// load or tag (docker's `<none>:<none>`); followed by the target digest.
pub const DANGLING_PREFIX: &str = "berth-dangling@";

use crate::error::{Error, Result};
use crate::events::Exchange;
use crate::filters::{Adaptor, Filter, label_field};
use crate::gc::Collector;
use crate::labels::{self, Labels};
pub use crate::metadata::Image;
use crate::metadata::Metadata;

/// The image operations the services use.
#[derive(Clone)]
pub struct Images {
    md: Arc<Metadata>,
    events: Exchange,
    gc: Arc<Collector>,
}

impl Adaptor for Image {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first()?.as_str() {
            "name" => Some(self.name.clone()).filter(|s| !s.is_empty()),
            "target" => match path.get(1)?.as_str() {
                "digest" => Some(self.target.digest.to_string()),
                "mediatype" => Some(self.target.media_type.clone()).filter(|s| !s.is_empty()),
                _ => None,
            },
            "labels" => label_field(&self.labels, path),
            "annotations" => label_field(&self.target.annotations, path),
            _ => None,
        }
    }
}

fn now_nanos() -> i64 {
    berth_api::time::to_unix_nanos(std::time::SystemTime::now())
}

fn validate(image: &Image) -> Result<()> {
    name::validate(&image.name)?;
    labels::validate(&image.labels)?;
    image.target.validate(&format!("image {}", image.name))
}

fn wire_labels(l: &Labels) -> std::collections::HashMap<String, String> {
    l.clone().into_iter().collect()
}

impl Images {
    pub fn new(md: Arc<Metadata>, events: Exchange, gc: Arc<Collector>) -> Self {
        Images { md, events, gc }
    }

    pub fn get(&self, ns: &str, name: &str) -> Result<Image> {
        self.md
            .read(|tx| tx.image(ns, name))?
            .ok_or_else(|| Error::NotFound(format!("image {name}")))
    }

    /// The images of `ns` that pass `filter` (fields `name`, `target.digest`,
    /// `target.mediatype`, `labels.<key>`, `annotations.<key>`), by name.
    pub fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<Image>> {
        Ok(self
            .md
            .read(|tx| tx.images(ns))?
            .into_iter()
            .filter(|i| filter.matches(i))
            .collect())
    }

    /// Creates an image; AlreadyExists when the name is taken. The times are set here.
    pub fn create(&self, ns: &str, mut image: Image) -> Result<Image> {
        validate(&image)?;
        image.labels.retain(|_, v| !v.is_empty());
        image.created_at = now_nanos();
        image.updated_at = image.created_at;
        self.md.write(|tx| {
            tx.ensure_namespace(ns)?;
            if tx.image(ns, &image.name)?.is_some() {
                return Err(Error::AlreadyExists(format!("image {}", image.name)));
            }
            tx.put_image(ns, &image)
        })?;
        self.events.publish(
            ns,
            "/images/create",
            &ImageCreate {
                name: image.name.clone(),
                labels: wire_labels(&image.labels),
            },
        );
        Ok(image)
    }

    /// Updates an image. No paths replaces labels and target; otherwise `labels`,
    /// `labels.<key>`, `target` (as a whole), `annotations` and `annotations.<key>`
    /// (of the target).
    pub fn update(&self, ns: &str, image: Image, paths: &[String]) -> Result<Image> {
        if image.name.is_empty() {
            return Err(Error::InvalidArgument(
                "image name is required for an update".into(),
            ));
        }
        let updated = self.md.write(|tx| {
            let mut cur = tx
                .image(ns, &image.name)?
                .ok_or_else(|| Error::NotFound(format!("image {}", image.name)))?;
            if paths.is_empty() {
                cur.labels = image.labels.clone();
                cur.target = image.target.clone();
            }
            for p in paths {
                if labels::apply_mask_path(&mut cur.labels, &image.labels, p)? {
                    continue;
                }
                match p.as_str() {
                    "target" => cur.target = image.target.clone(),
                    "annotations" => cur.target.annotations = image.target.annotations.clone(),
                    _ => match p.strip_prefix("annotations.") {
                        Some(k) if !k.is_empty() => {
                            match image.target.annotations.get(k).filter(|v| !v.is_empty()) {
                                Some(v) => {
                                    cur.target.annotations.insert(k.to_string(), v.clone());
                                }
                                None => {
                                    cur.target.annotations.remove(k);
                                }
                            }
                        }
                        _ => {
                            return Err(Error::InvalidArgument(format!(
                                "cannot update {p:?} field on image {}",
                                image.name
                            )));
                        }
                    },
                }
            }
            cur.labels.retain(|_, v| !v.is_empty());
            validate(&cur)?;
            cur.updated_at = now_nanos();
            tx.put_image(ns, &cur)?;
            Ok(cur)
        })?;
        self.events.publish(
            ns,
            "/images/update",
            &ImageUpdate {
                name: updated.name.clone(),
                labels: wire_labels(&updated.labels),
            },
        );
        Ok(updated)
    }

    /// Deletes an image. With `sync`, garbage collection has run when this returns;
    /// otherwise it is scheduled.
    pub async fn delete(&self, ns: &str, name: &str, sync: bool) -> Result<()> {
        let removed = self.md.write(|tx| tx.remove_image(ns, name))?;
        if !removed {
            return Err(Error::NotFound(format!("image {name}")));
        }
        self.events.publish(
            ns,
            "/images/delete",
            &ImageDelete {
                name: name.to_string(),
            },
        );
        if sync {
            self.gc.collect().await?;
        } else {
            self.gc.trigger().schedule();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
