//! Naming images the docker way: a pull, load or tag points a name at a target,
//! replacing what the name held. An image that loses its last name that way is kept
//! under a dangling record (`<DANGLING_PREFIX><digest>`, shown as `<none>:<none>`)
//! until it is pruned or removed; naming it again drops that record.

use berth_api::containerd::services::images::v1::{ImageCreate, ImageDelete, ImageUpdate};

use super::{DANGLING_PREFIX, Image, Images, now_nanos, validate, wire_labels};
use crate::content::Descriptor;
use crate::error::Result;
use crate::labels::Labels;

/// What [`Images::put`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// The name is new.
    Created,
    /// The name pointed elsewhere; the image it held is kept as dangling when nothing
    /// else names it.
    Moved { previous: Descriptor },
    /// The name already pointed at this target.
    Unchanged,
}

/// The dangling record name of `target`.
pub fn dangling_name(target: &Descriptor) -> String {
    format!("{DANGLING_PREFIX}{}", target.digest)
}

impl Images {
    /// Points `name` at `target` with `labels` (merged into the existing labels when
    /// the name exists), keeping the image it replaced as dangling, and dropping the
    /// dangling record of `target`.
    pub fn put(&self, ns: &str, name: &str, target: &Descriptor, labels: &Labels) -> Result<Put> {
        let now = now_nanos();
        let mut events: Vec<(&'static str, Image)> = Vec::new();
        let put = self.md.write(|tx| {
            tx.ensure_namespace(ns)?;
            let current = tx.image(ns, name)?;
            let mut record = match &current {
                Some(c) => c.clone(),
                None => Image {
                    name: name.to_string(),
                    labels: Labels::new(),
                    target: target.clone(),
                    created_at: now,
                    updated_at: now,
                },
            };
            record.labels.extend(labels.clone());
            record.labels.retain(|_, v| !v.is_empty());
            let outcome = match &current {
                None => Put::Created,
                Some(c) if c.target.digest == target.digest => Put::Unchanged,
                Some(c) => Put::Moved {
                    previous: c.target.clone(),
                },
            };
            record.target = target.clone();
            record.updated_at = now;
            validate(&record)?;
            if outcome != Put::Unchanged || current.as_ref() != Some(&record) {
                tx.put_image(ns, &record)?;
                events.push((
                    if current.is_none() {
                        "/images/create"
                    } else {
                        "/images/update"
                    },
                    record.clone(),
                ));
            }
            let dangling = dangling_name(target);
            if dangling != name
                && let Some(d) = tx.image(ns, &dangling)?
            {
                tx.remove_image(ns, &dangling)?;
                events.push(("/images/delete", d));
            }
            if let Put::Moved { previous } = &outcome {
                let still_named = tx
                    .images(ns)?
                    .iter()
                    .any(|i| i.name != name && i.target.digest == previous.digest);
                if !still_named {
                    let d = Image {
                        name: dangling_name(previous),
                        labels: Labels::new(),
                        target: previous.clone(),
                        created_at: now,
                        updated_at: now,
                    };
                    tx.put_image(ns, &d)?;
                    events.push(("/images/create", d));
                }
            }
            Ok(outcome)
        })?;
        for (topic, image) in events {
            match topic {
                "/images/create" => self.events.publish(
                    ns,
                    topic,
                    &ImageCreate {
                        name: image.name.clone(),
                        labels: wire_labels(&image.labels),
                    },
                ),
                "/images/update" => self.events.publish(
                    ns,
                    topic,
                    &ImageUpdate {
                        name: image.name.clone(),
                        labels: wire_labels(&image.labels),
                    },
                ),
                _ => self.events.publish(
                    ns,
                    topic,
                    &ImageDelete {
                        name: image.name.clone(),
                    },
                ),
            }
        }
        Ok(put)
    }
}

/// `docker tag SOURCE TARGET`: gives the image `source` names (a name or ID) the name
/// `target` (normalised). Returns the full new name.
pub async fn tag(core: &crate::core::Core, ns: &str, source: &str, target: &str) -> Result<String> {
    let r = crate::distribution::Reference::parse(target)?;
    if r.digest().is_some() {
        return Err(crate::error::Error::InvalidArgument(format!(
            "refusing to create a tag with a digest reference: {target}"
        )));
    }
    let found = crate::images::catalog::find(core, ns, source).await?;
    let record = match &found.named {
        Some(n) => found.group.entries.iter().find(|e| e.record.name == *n),
        None => found.group.entries.first(),
    }
    .map(|e| e.record.clone())
    .ok_or_else(|| crate::images::catalog::no_such_image(source))?;
    let name = r.to_string();
    core.images.put(ns, &name, &record.target, &Labels::new())?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::content::Digest;
    use crate::events::Exchange;
    use crate::gc::{Collector, Trigger};
    use crate::metadata::Metadata;

    fn desc(n: u8) -> Descriptor {
        Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: Digest::of(&[n]),
            size: 10,
            annotations: Default::default(),
        }
    }

    #[test]
    fn moving_a_name_keeps_the_old_image_dangling() {
        let dir = tempfile::tempdir().unwrap();
        let md = Arc::new(Metadata::open(&dir.path().join("m.redb")).unwrap());
        let gc = Collector::new(md.clone(), Default::default(), Trigger::default());
        let images = Images::new(md, Exchange::new(), gc);
        let name = "docker.io/library/a:latest";
        assert_eq!(
            images.put("ns", name, &desc(1), &Labels::new()).unwrap(),
            Put::Created
        );
        assert_eq!(
            images.put("ns", name, &desc(1), &Labels::new()).unwrap(),
            Put::Unchanged
        );
        // Another name on the first image: moving `name` leaves it named.
        images
            .put("ns", "docker.io/library/b:latest", &desc(1), &Labels::new())
            .unwrap();
        assert!(matches!(
            images.put("ns", name, &desc(2), &Labels::new()).unwrap(),
            Put::Moved { .. }
        ));
        assert!(images.get("ns", &dangling_name(&desc(1))).is_err());
        // Moving the last name of an image keeps it dangling.
        images
            .put("ns", "docker.io/library/b:latest", &desc(3), &Labels::new())
            .unwrap();
        assert_eq!(
            images.get("ns", &dangling_name(&desc(1))).unwrap().target,
            desc(1)
        );
        // Naming it again drops the dangling record.
        images
            .put("ns", "docker.io/library/c:1", &desc(1), &Labels::new())
            .unwrap();
        assert!(images.get("ns", &dangling_name(&desc(1))).is_err());
    }
}
