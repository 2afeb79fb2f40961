//! `docker rmi` and `docker image prune`.
//!
//! Removing a name untags it while other tags of the image remain; removing the last tag
//! (or the image by ID) removes every name of the image, and garbage collection then
//! reclaims its content and snapshots. By ID, an image named in several repositories
//! needs `force`; an image a container was created from needs `force` too.

use std::collections::BTreeMap;

use crate::content::Digest;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::catalog::{self, Group, short_id};
use crate::images::list::Filters;
use crate::prune::PruneFilter;
use crate::snapshots;

/// One line of rmi's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A name removed (familiar form).
    Untagged(String),
    /// An image removed (its ID).
    Deleted(Digest),
}

fn shown_name(e: &catalog::Entry) -> String {
    match e.reference() {
        Some(r) => r.familiar(),
        None => e.record.name.clone(),
    }
}

/// Removes the image or name `input` (see the module documentation).
pub async fn remove(core: &Core, ns: &str, input: &str, force: bool) -> Result<Vec<Removed>> {
    let found = catalog::find(core, ns, input).await?;
    let g = &found.group;
    let short = short_id(&g.id);
    if let Some(name) = &found.named {
        // Other tags (not digests) of the image: only this name goes.
        let others = g
            .entries
            .iter()
            .any(|e| e.record.name != *name && !e.is_dangling() && e.repo_tag().is_some());
        let this = g
            .entries
            .iter()
            .find(|e| e.record.name == *name)
            .ok_or_else(|| catalog::no_such_image(input))?;
        let is_tag = this.repo_tag().is_some();
        if others || (!is_tag && g.entries.len() > 1) {
            core.images.delete(ns, name, false).await?;
            return Ok(vec![Removed::Untagged(shown_name(this))]);
        }
    } else {
        let mut repos: Vec<String> = g
            .entries
            .iter()
            .filter(|e| e.repo_tag().is_some())
            .map(|e| match e.reference() {
                Some(r) => r.name(),
                None => e.record.name.clone(),
            })
            .collect();
        repos.sort();
        repos.dedup();
        if repos.len() > 1 && !force {
            return Err(Error::FailedPrecondition(format!(
                "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
            )));
        }
    }
    if !force {
        let users = catalog::containers_using(core, ns, &g.names())?;
        if let Some(c) = users.first() {
            return Err(Error::FailedPrecondition(match &found.named {
                Some(_) => format!(
                    "conflict: unable to remove repository reference \"{input}\" (must force) - container {c} is using its referenced image {short}"
                ),
                None => format!(
                    "conflict: unable to delete {short} (must be forced) - image is being used by container {c}"
                ),
            }));
        }
    }
    delete_group(core, ns, g, true).await
}

/// Deletes every record of the image; with `sync`, garbage collection has run when this
/// returns.
async fn delete_group(core: &Core, ns: &str, g: &Group, sync: bool) -> Result<Vec<Removed>> {
    let mut out = Vec::new();
    let n = g.entries.len();
    for (i, e) in g.entries.iter().enumerate() {
        match core
            .images
            .delete(ns, &e.record.name, sync && i + 1 == n)
            .await
        {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
        if !e.is_dangling() {
            out.push(Removed::Untagged(shown_name(e)));
        }
    }
    out.push(Removed::Deleted(g.id.clone()));
    Ok(out)
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub removed: Vec<Removed>,
    /// Bytes of blobs and snapshots that went.
    pub reclaimed: u64,
}

/// Removes dangling images, or with `all` every image no container was created from,
/// that pass `filters` (`until=`, `label=`, `label!=`).
pub async fn prune(core: &Core, ns: &str, all: bool, filters: &[String]) -> Result<Pruned> {
    let f = Filters::parse(filters, &["until", "label", "label!", "dangling"])?;
    let all = match f.bool("dangling")? {
        Some(d) => !d,
        None => all,
    };
    let passes = PruneFilter::from_filters(&f)?;
    let groups = catalog::groups(core, ns).await?;
    let mut candidates = Vec::new();
    for g in groups {
        if !all && !g.is_dangling(core, ns) {
            continue;
        }
        if !catalog::containers_using(core, ns, &g.names())?.is_empty() {
            continue;
        }
        let labels = g
            .image()
            .and_then(|i| i.config.config.as_ref())
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if !passes.passes(&labels, g.created()) {
            continue;
        }
        candidates.push(g);
    }
    if candidates.is_empty() {
        return Ok(Pruned::default());
    }
    // What the candidates hold, to tell afterwards what went.
    let mut blobs: BTreeMap<Digest, i64> = BTreeMap::new();
    let mut chains: BTreeMap<String, i64> = BTreeMap::new();
    let sn = core.snapshots.get(ns, snapshots::DEFAULT)?;
    for g in &candidates {
        if let Some(i) = g.image() {
            let mut ds = vec![
                i.target.digest.clone(),
                i.manifest_desc.digest.clone(),
                i.config_desc.digest.clone(),
            ];
            ds.extend(i.layers()?.into_iter().map(|l| l.digest));
            for d in ds {
                if let Ok(info) = core.content.info(ns, &d) {
                    blobs.insert(d, info.size);
                }
            }
            for c in i.chain_ids() {
                if let Ok(u) = sn.usage(&c).await {
                    chains.insert(c, u.size);
                }
            }
        }
    }
    let mut removed = Vec::new();
    for g in &candidates {
        removed.extend(delete_group(core, ns, g, false).await?);
    }
    core.gc.collect().await?;
    let mut reclaimed = 0u64;
    for (d, size) in blobs {
        if !core.content.exists(ns, &d)? {
            reclaimed += size.max(0) as u64;
        }
    }
    for (c, size) in chains {
        if matches!(sn.stat(&c).await, Err(Error::NotFound(_))) {
            reclaimed += size.max(0) as u64;
        }
    }
    Ok(Pruned { removed, reclaimed })
}
