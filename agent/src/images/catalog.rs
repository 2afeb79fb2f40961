//! The images of a namespace as docker shows them: image records grouped by image ID
//! (the config digest), their familiar names and repository digests, sizes, and the
//! lookup of what a person types (a name, a full ID or a unique ID prefix).

use std::collections::BTreeMap;

use crate::content::Digest;
use crate::core::Core;
use crate::distribution::Reference;
use crate::error::{Error, Result};
use crate::filters::Filter;
use crate::images::content::{self as ic, PlatformImage};
use crate::images::{DANGLING_PREFIX, Image};

/// One image record and what it resolves to.
#[derive(Debug, Clone)]
pub struct Entry {
    pub record: Image,
    /// None when its content is not (all) in the store.
    pub image: Option<PlatformImage>,
}

impl Entry {
    /// The image ID: the config digest, or the target digest when the content is missing.
    pub fn id(&self) -> &Digest {
        match &self.image {
            Some(i) => i.id(),
            None => &self.record.target.digest,
        }
    }

    /// The record's name as a reference, unless it is a dangling record or not a
    /// reference at all.
    pub fn reference(&self) -> Option<Reference> {
        if self.is_dangling() {
            return None;
        }
        Reference::parse(&self.record.name)
            .ok()
            .filter(|r| r.to_string() == self.record.name)
    }

    /// A record that only keeps an untagged image (see [`DANGLING_PREFIX`]).
    pub fn is_dangling(&self) -> bool {
        self.record.name.starts_with(DANGLING_PREFIX)
    }

    /// The familiar `repo:tag` when the record is a tag.
    pub fn repo_tag(&self) -> Option<String> {
        if self.is_dangling() {
            return None;
        }
        match self.reference() {
            Some(r) if r.digest().is_none() => Some(r.familiar()),
            Some(_) => None,
            // Names that are not references (made with ctr) are shown as they are.
            None => Some(self.record.name.clone()),
        }
    }

    /// The familiar `repo@digest` of the record's target when the image came from (or
    /// went to) that repository, or when the record names a digest.
    pub fn repo_digest(&self, source_labels: &crate::labels::Labels) -> Option<String> {
        let r = self.reference()?;
        let by_digest = r.digest().is_some();
        if by_digest || ic::has_source(source_labels, r.registry(), r.repository()) {
            Some(format!(
                "{}@{}",
                r.familiar_name(),
                self.record.target.digest
            ))
        } else {
            None
        }
    }
}

/// Every image record of `ns`, resolved for the host platform where possible.
pub async fn entries(core: &Core, ns: &str) -> Result<Vec<Entry>> {
    let records = core.images.list(ns, &Filter::default())?;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let image = ic::resolve(&core.content, ns, &record.target, None)
            .await
            .ok();
        out.push(Entry { record, image });
    }
    Ok(out)
}

/// The records of one image ID.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: Digest,
    pub entries: Vec<Entry>,
}

impl Group {
    /// The resolved image (any record's: they share the config).
    pub fn image(&self) -> Option<&PlatformImage> {
        self.entries.iter().find_map(|e| e.image.as_ref())
    }

    /// Familiar tags, sorted.
    pub fn repo_tags(&self) -> Vec<String> {
        let mut v: Vec<String> = self.entries.iter().filter_map(Entry::repo_tag).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Familiar repository digests, sorted.
    pub fn repo_digests(&self, core: &Core, ns: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| {
                let labels = core
                    .content
                    .info(ns, &e.record.target.digest)
                    .map(|i| i.labels)
                    .unwrap_or_default();
                e.repo_digest(&labels)
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// No tags and no repository digests.
    pub fn is_dangling(&self, core: &Core, ns: &str) -> bool {
        self.repo_tags().is_empty() && self.repo_digests(core, ns).is_empty()
    }

    /// The names of its records that are not dangling records.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| !e.is_dangling())
            .map(|e| e.record.name.clone())
            .collect()
    }

    /// The creation time of the image: its config's, else its first record's.
    pub fn created(&self) -> i64 {
        match self.image().map(|i| i.config.created_nanos()) {
            Some(t) if t != 0 => t,
            _ => self
                .entries
                .iter()
                .map(|e| e.record.created_at)
                .min()
                .unwrap_or(0),
        }
    }

    /// When a name was last given to the image.
    pub fn last_tagged(&self) -> i64 {
        self.entries
            .iter()
            .filter(|e| !e.is_dangling())
            .map(|e| e.record.updated_at)
            .max()
            .unwrap_or(0)
    }
}

/// Groups entries by image ID, in order of first appearance.
pub fn group(entries: Vec<Entry>) -> Vec<Group> {
    let mut order: Vec<Digest> = Vec::new();
    let mut by_id: BTreeMap<Digest, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        let id = e.id().clone();
        if !by_id.contains_key(&id) {
            order.push(id.clone());
        }
        by_id.entry(id).or_default().push(e);
    }
    order
        .into_iter()
        .map(|id| {
            let entries = by_id.remove(&id).unwrap_or_default();
            Group { id, entries }
        })
        .collect()
}

/// Every image of `ns`, grouped by ID.
pub async fn groups(core: &Core, ns: &str) -> Result<Vec<Group>> {
    Ok(group(entries(core, ns).await?))
}

/// The short ID docker shows (12 hex digits).
pub fn short_id(id: &Digest) -> String {
    id.hex().chars().take(12).collect()
}

/// What a person named.
#[derive(Debug, Clone)]
pub struct Found {
    /// The group of the image.
    pub group: Group,
    /// The record named, when a name (not an ID) was given.
    pub named: Option<String>,
}

/// The record name `input` means: the name itself when a record has it, else its
/// normalised form (`busybox` -> `docker.io/library/busybox:latest`).
pub fn record_name(core: &Core, ns: &str, input: &str) -> Result<Option<String>> {
    if core.images.get(ns, input).is_ok() {
        return Ok(Some(input.to_string()));
    }
    match Reference::parse(input) {
        Ok(r) => {
            let n = r.to_string();
            Ok(core.images.get(ns, &n).is_ok().then_some(n))
        }
        Err(_) => Ok(None),
    }
}

fn id_prefix(input: &str) -> Option<&str> {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    (!hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(hex)
}

/// Finds the image `input` names: a full ID (`sha256:<hex>` or 64 hex digits), a name
/// (as stored or normalised), or a unique ID prefix. NotFound says "No such image".
pub async fn find(core: &Core, ns: &str, input: &str) -> Result<Found> {
    let groups = groups(core, ns).await?;
    find_in(core, ns, groups, input)
}

/// [`find`] over groups already read.
pub fn find_in(core: &Core, ns: &str, groups: Vec<Group>, input: &str) -> Result<Found> {
    let full_id = input.starts_with("sha256:") || (input.len() == 64 && id_prefix(input).is_some());
    if !full_id && let Some(name) = record_name(core, ns, input)? {
        let group = groups
            .into_iter()
            .find(|g| g.entries.iter().any(|e| e.record.name == name))
            .ok_or_else(|| no_such_image(input))?;
        return Ok(Found {
            group,
            named: Some(name),
        });
    }
    let Some(prefix) = id_prefix(input) else {
        return Err(no_such_image(input));
    };
    let prefix = prefix.to_ascii_lowercase();
    let mut matching: Vec<Group> = groups
        .into_iter()
        .filter(|g| g.id.hex().starts_with(&prefix))
        .collect();
    match matching.len() {
        0 => Err(no_such_image(input)),
        1 => Ok(Found {
            group: matching.remove(0),
            named: None,
        }),
        n => Err(Error::FailedPrecondition(format!(
            "image ID prefix {input} is ambiguous: {n} images match; give more digits"
        ))),
    }
}

/// The error for a name or ID that matches nothing.
pub fn no_such_image(input: &str) -> Error {
    Error::Missing(format!("No such image: {input}"))
}

/// Names of containers of `ns` created from any of `names`.
pub fn containers_using(core: &Core, ns: &str, names: &[String]) -> Result<Vec<String>> {
    Ok(core
        .containers
        .list(ns, &Filter::default())?
        .into_iter()
        .filter(|c| names.contains(&c.image))
        .map(|c| c.id)
        .collect())
}

/// Sizes of one image: its blobs in the store, and its unpacked layers in `snapshotter`.
#[derive(Debug, Clone, Default)]
pub struct Sizes {
    pub content: i64,
    pub unpacked: i64,
    /// Each unpacked layer: its chain ID and the bytes of its own snapshot (empty when
    /// the image is not unpacked). Images that share a layer share its chain ID.
    pub layers: Vec<(String, i64)>,
}

impl Sizes {
    /// What docker shows: the unpacked size when unpacked, else the content size.
    pub fn shown(&self) -> i64 {
        if self.unpacked > 0 {
            self.unpacked
        } else {
            self.content
        }
    }
}

/// The sizes of `image` in `ns`.
pub async fn sizes(core: &Core, ns: &str, image: &PlatformImage, snapshotter: &str) -> Sizes {
    let mut content = 0i64;
    let mut add = |d: &Digest| {
        if let Ok(i) = core.content.info(ns, d) {
            content += i.size;
        }
    };
    if image.index.is_some() {
        add(&image.target.digest);
    }
    add(&image.manifest_desc.digest);
    add(&image.config_desc.digest);
    for l in &image.manifest.layers {
        if let Ok(d) = Digest::parse(&l.digest.to_string()) {
            add(&d);
        }
    }
    let mut unpacked = 0i64;
    let mut layers = Vec::new();
    if let Ok(sn) = core.snapshots.get(ns, snapshotter) {
        for chain in image.chain_ids() {
            match sn.usage(&chain).await {
                Ok(u) => {
                    unpacked += u.size;
                    layers.push((chain, u.size));
                }
                Err(_) => {
                    unpacked = 0;
                    layers.clear();
                    break;
                }
            }
        }
    }
    Sizes {
        content,
        unpacked,
        layers,
    }
}
