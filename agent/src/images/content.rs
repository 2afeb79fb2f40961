//! Images as content: reading an image's index, manifest and config back from the
//! content store (choosing a platform among the manifests that are present), the
//! labels containerd puts on image content for garbage collection, and conversions
//! between the registry's descriptors and the store's.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::content::{ContentStore, Descriptor, Digest};
use crate::distribution::media::{self, Kind, MAX_MANIFEST_SIZE, classify, sniff_manifest_type};
use crate::distribution::{self as dist, Platform};
use crate::error::{Error, Result};
use crate::images::config::ImageConfig;
use crate::labels::Labels;

/// Largest image config read (history can make them big).
pub const MAX_CONFIG_SIZE: i64 = 32 << 20;
/// On a layer blob: the digest of its uncompressed tar (its diff ID).
pub const LABEL_UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// `containerd.io/distribution.source.<registry host> = repo[,repo...]`: where a blob
/// came from, so a push to the same registry can mount it.
pub const LABEL_SOURCE: &str = "containerd.io/distribution.source.";
/// Prefix of the labels through which content keeps other content.
pub const LABEL_REF_CONTENT: &str = "containerd.io/gc.ref.content.";
/// Prefix of the label through which a config keeps the top snapshot of its unpack.
pub const LABEL_REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot.";

/// The label that keeps an image's top snapshot in `snapshotter`.
pub fn snapshot_ref_label(snapshotter: &str) -> String {
    format!("{LABEL_REF_SNAPSHOT}{snapshotter}")
}

/// One platform's image, read from the store.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// What the image record points at (an index or this manifest).
    pub target: Descriptor,
    /// The index, when the target is one.
    pub index: Option<dist::Index>,
    pub manifest_desc: Descriptor,
    pub manifest: dist::Manifest,
    pub config_desc: Descriptor,
    pub config: ImageConfig,
}

impl PlatformImage {
    /// The image ID docker shows: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config_desc.digest
    }

    /// The layer descriptors, bottom first.
    pub fn layers(&self) -> Result<Vec<Descriptor>> {
        self.manifest.layers.iter().map(to_store).collect()
    }

    /// The chain IDs of the layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        self.config.chain_ids()
    }

    /// Checks that the config names as many layers as the manifest.
    pub fn check_layers(&self) -> Result<()> {
        let (m, c) = (
            self.manifest.layers.len(),
            self.config.rootfs.diff_ids.len(),
        );
        if m != c {
            return Err(Error::FailedPrecondition(format!(
                "image manifest {} lists {m} layers but its config {} lists {c} diff IDs",
                self.manifest_desc.digest, self.config_desc.digest
            )));
        }
        Ok(())
    }
}

/// A registry descriptor as the store's.
pub fn to_store(d: &dist::Descriptor) -> Result<Descriptor> {
    Ok(Descriptor {
        media_type: d.media_type.clone(),
        digest: Digest::parse(&d.digest.to_string())?,
        size: i64::try_from(d.size)
            .map_err(|_| Error::InvalidArgument(format!("descriptor {} is too large", d.digest)))?,
        annotations: d.annotations.clone(),
    })
}

/// A store descriptor as the registry's.
pub fn to_dist(d: &Descriptor) -> Result<dist::Descriptor> {
    Ok(dist::Descriptor {
        media_type: d.media_type.clone(),
        digest: dist::Digest::parse(d.digest.as_str()).map_err(crate::error::Error::from)?,
        size: d.size.max(0) as u64,
        urls: Vec::new(),
        annotations: d.annotations.clone(),
        platform: None,
    })
}

/// The media type of a manifest or index blob: the descriptor's when it names one, else
/// sniffed from the bytes.
fn doc_type(desc: &Descriptor, data: &[u8]) -> String {
    match classify(&desc.media_type) {
        Ok(Kind::Manifest | Kind::Index) => desc.media_type.clone(),
        _ => sniff_manifest_type(data).unwrap_or_else(|| desc.media_type.clone()),
    }
}

/// Reads and parses the manifest or index `desc` of namespace `ns`.
pub async fn read_document(
    store: &Arc<ContentStore>,
    ns: &str,
    desc: &Descriptor,
) -> Result<(dist::Document, Vec<u8>)> {
    let data = store
        .read_all(ns, &desc.digest, MAX_MANIFEST_SIZE as i64)
        .await?;
    let media_type = doc_type(desc, &data);
    let doc = dist::Document::parse(desc.digest.as_str(), &media_type, &data)?;
    Ok((doc, data))
}

/// Reads and parses an image config.
pub async fn read_config(
    store: &Arc<ContentStore>,
    ns: &str,
    desc: &Descriptor,
) -> Result<ImageConfig> {
    let data = store.read_all(ns, &desc.digest, MAX_CONFIG_SIZE).await?;
    ImageConfig::parse(desc.digest.as_str(), &data)
}

/// The manifests of `index` whose blobs are in the store, as an index.
fn present(store: &ContentStore, ns: &str, index: &dist::Index) -> Result<dist::Index> {
    let mut out = index.clone();
    out.manifests.clear();
    for d in &index.manifests {
        if !matches!(classify(&d.media_type), Ok(Kind::Manifest)) {
            continue;
        }
        if store.exists(ns, &Digest::parse(&d.digest.to_string())?)? {
            out.manifests.push(d.clone());
        }
    }
    Ok(out)
}

/// Chooses the manifest of an index: for `platform` when given (it must be present);
/// otherwise the host's when present, else the first manifest present.
pub fn choose_manifest(
    store: &ContentStore,
    ns: &str,
    index: &dist::Index,
    platform: Option<&Platform>,
    what: &str,
) -> Result<dist::Descriptor> {
    let have = present(store, ns, index)?;
    if let Some(p) = platform {
        return Ok(dist::select_manifest(&have, p, what)?.clone());
    }
    if let Ok(d) = dist::select_manifest(&have, &Platform::host(), what) {
        return Ok(d.clone());
    }
    have.manifests.first().cloned().ok_or_else(|| {
        Error::NotFound(format!(
            "image {what}: none of the manifests of its index is in the content store"
        ))
    })
}

/// Reads the image `target` points at, for `platform` (see [`choose_manifest`]).
pub async fn resolve(
    store: &Arc<ContentStore>,
    ns: &str,
    target: &Descriptor,
    platform: Option<&Platform>,
) -> Result<PlatformImage> {
    let (doc, _) = read_document(store, ns, target).await?;
    let (index, manifest_desc, manifest) = match doc {
        dist::Document::Manifest(m) => (None, target.clone(), *m),
        dist::Document::Index(index) => {
            let chosen = choose_manifest(store, ns, &index, platform, target.digest.as_str())?;
            let desc = to_store(&chosen)?;
            let (doc, _) = read_document(store, ns, &desc).await?;
            match doc {
                dist::Document::Manifest(m) => (Some(index), desc, *m),
                dist::Document::Index(_) => {
                    return Err(Error::Unimplemented(format!(
                        "index {} lists another index for its platform; nested indexes are not supported",
                        target.digest
                    )));
                }
            }
        }
    };
    let config_desc = to_store(&manifest.config)?;
    let config = read_config(store, ns, &config_desc).await?;
    Ok(PlatformImage {
        target: target.clone(),
        index,
        manifest_desc,
        manifest,
        config_desc,
        config,
    })
}

/// The garbage collection labels of a manifest: its config and layers.
pub fn manifest_labels(m: &dist::Manifest) -> Labels {
    let mut l = BTreeMap::new();
    l.insert(
        format!("{LABEL_REF_CONTENT}config"),
        m.config.digest.to_string(),
    );
    for (i, layer) in m.layers.iter().enumerate() {
        l.insert(
            format!("{LABEL_REF_CONTENT}l.{i}"),
            layer.digest.to_string(),
        );
    }
    l
}

/// The garbage collection labels of an index: its manifests.
pub fn index_labels(i: &dist::Index) -> Labels {
    i.manifests
        .iter()
        .enumerate()
        .map(|(n, d)| (format!("{LABEL_REF_CONTENT}m.{n}"), d.digest.to_string()))
        .collect()
}

/// Adds `repository` to the distribution source label of `registry` in `labels`.
pub fn add_source(labels: &mut Labels, registry: &str, repository: &str) {
    let key = format!("{LABEL_SOURCE}{}", source_host(registry));
    let entry = labels.entry(key).or_default();
    if !entry.split(',').any(|r| r == repository) {
        if !entry.is_empty() {
            entry.push(',');
        }
        entry.push_str(repository);
    }
}

/// The registry host as a label key part (a port's ':' is kept; containerd strips it
/// from the host only when it is the default).
pub fn source_host(registry: &str) -> String {
    registry.to_string()
}

/// Whether the blob's labels say it came from `repository` of `registry`.
pub fn has_source(labels: &Labels, registry: &str, repository: &str) -> bool {
    labels
        .get(&format!("{LABEL_SOURCE}{}", source_host(registry)))
        .is_some_and(|v| v.split(',').any(|r| r == repository))
}

/// The media type a layer blob of an archive or a foreign image should be stored as
/// when it says nothing.
pub fn layer_media_type(compressed: bool) -> &'static str {
    if compressed {
        media::DOCKER_LAYER_GZIP
    } else {
        media::DOCKER_LAYER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_accumulate() {
        let mut l = Labels::new();
        add_source(&mut l, "127.0.0.1:5000", "a/b");
        add_source(&mut l, "127.0.0.1:5000", "c");
        add_source(&mut l, "127.0.0.1:5000", "a/b");
        assert_eq!(
            l.get("containerd.io/distribution.source.127.0.0.1:5000")
                .map(String::as_str),
            Some("a/b,c")
        );
        assert!(has_source(&l, "127.0.0.1:5000", "c"));
        assert!(!has_source(&l, "127.0.0.1:5000", "a"));
    }
}
