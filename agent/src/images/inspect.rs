//! `docker image inspect` and `docker history`: one image described from its records,
//! manifest, config and snapshots.

use crate::content::{Descriptor, Digest};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::catalog::{self, Group};
use crate::images::config::{ImageConfig, parse_time};
use crate::images::content::PlatformImage;
use crate::images::unpack;
use crate::labels::Labels;
use crate::snapshots;

/// What `image inspect` shows.
#[derive(Debug, Clone)]
pub struct Inspect {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix nanoseconds.
    pub created: i64,
    pub config: ImageConfig,
    pub size: i64,
    pub content_size: i64,
    pub unpacked_size: i64,
    pub target: Descriptor,
    pub manifest: Descriptor,
    pub config_media_type: String,
    /// The snapshotter and top snapshot, when unpacked.
    pub snapshot: Option<(String, String)>,
    /// Labels of the image records.
    pub labels: Labels,
    pub last_tag_time: i64,
}

fn resolved<'a>(g: &'a Group, input: &str) -> Result<&'a PlatformImage> {
    g.image().ok_or_else(|| {
        Error::NotFound(format!(
            "image {input}: its manifest or config is not in the content store; pull it again"
        ))
    })
}

/// Describes the image `input` names (a name, full ID or unique ID prefix).
pub async fn inspect(core: &Core, ns: &str, input: &str) -> Result<Inspect> {
    let found = catalog::find(core, ns, input).await?;
    let g = &found.group;
    let image = resolved(g, input)?;
    let sizes = catalog::sizes(core, ns, image, snapshots::DEFAULT).await;
    let snapshot = if unpack::is_unpacked(core, ns, image, snapshots::DEFAULT).await? {
        image
            .chain_ids()
            .pop()
            .map(|top| (snapshots::DEFAULT.to_string(), top))
    } else {
        None
    };
    let mut labels = Labels::new();
    for e in &g.entries {
        labels.extend(e.record.labels.clone());
    }
    Ok(Inspect {
        id: g.id.clone(),
        repo_tags: g.repo_tags(),
        repo_digests: g.repo_digests(core, ns),
        created: g.created(),
        config: image.config.clone(),
        size: sizes.shown(),
        content_size: sizes.content,
        unpacked_size: sizes.unpacked,
        target: image.target.clone(),
        manifest: image.manifest_desc.clone(),
        config_media_type: image.config_desc.media_type.clone(),
        snapshot,
        labels,
        last_tag_time: g.last_tagged(),
    })
}

/// One line of `history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The image ID on the newest entry, None ("<missing>") on the others.
    pub id: Option<Digest>,
    /// Unix nanoseconds.
    pub created: i64,
    pub created_by: String,
    pub size: i64,
    pub comment: String,
    pub tags: Vec<String>,
    pub empty_layer: bool,
}

/// The history of the image `input` names, newest first. Entries that made a layer get
/// its size (unpacked when the image is unpacked, else as stored).
pub async fn history(core: &Core, ns: &str, input: &str) -> Result<Vec<HistoryItem>> {
    let found = catalog::find(core, ns, input).await?;
    let g = &found.group;
    let image = resolved(g, input)?;
    let layers = image.layers()?;
    let chains = image.chain_ids();
    let sn = core.snapshots.get(ns, snapshots::DEFAULT)?;
    let mut sizes = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let size = match chains.get(i) {
            Some(c) => match sn.usage(c).await {
                Ok(u) => u.size,
                Err(_) => l.size,
            },
            None => l.size,
        };
        sizes.push(size);
    }
    let mut items = Vec::new();
    let history = &image.config.history;
    if history.is_empty() {
        for (i, size) in sizes.iter().enumerate() {
            items.push(HistoryItem {
                id: None,
                created: image.config.created_nanos(),
                created_by: String::new(),
                size: *size,
                comment: format!("layer {}", layers[i].digest),
                tags: Vec::new(),
                empty_layer: false,
            });
        }
    } else {
        let mut layer = 0usize;
        for h in history {
            let size = if h.empty_layer {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            items.push(HistoryItem {
                id: None,
                created: h.created.as_deref().map_or(0, parse_time),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
                tags: Vec::new(),
                empty_layer: h.empty_layer,
            });
        }
    }
    items.reverse();
    if let Some(top) = items.first_mut() {
        top.id = Some(g.id.clone());
        top.tags = g.repo_tags();
    }
    Ok(items)
}
