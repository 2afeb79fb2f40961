//! Making an image out of a new layer (what commit and import share): the config and
//! manifest written into the content store under the operation's lease, the image
//! unpacked (only the new layer is applied; the others are there), then named, or kept
//! without a name as docker's `<none>:<none>`.

use std::sync::Arc;

use crate::content::{Descriptor, Digest};
use crate::core::Core;
use crate::distribution::{self as dist, Reference, media};
use crate::error::{Error, Result};
use crate::images::config::{History, ImageConfig};
use crate::images::content::{self as ic, LABEL_UNCOMPRESSED};
use crate::images::progress::Progress;
use crate::images::store::dangling_name;
use crate::images::unpack;
use crate::labels::Labels;

/// What a new image is made of.
pub struct NewImage<'a> {
    /// The base image's manifest layers (empty for an import).
    pub base_layers: Vec<dist::Descriptor>,
    /// The base's manifest is Docker schema2 (the new one follows it); else OCI.
    pub docker: bool,
    /// The config, with everything but the new layer's diff ID and history entry.
    pub config: ImageConfig,
    /// The new layer blob (in the content store).
    pub layer: Descriptor,
    pub history: History,
    /// The full name to give, if any.
    pub name: Option<String>,
    pub lease: &'a str,
}

/// The image made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// sha256:<config digest>.
    pub id: String,
    /// The familiar name given.
    pub name: Option<String>,
    pub manifest: Descriptor,
}

/// Checks a `REPOSITORY[:TAG]` for a new image; returns its full name.
pub fn full_name(reference: &str) -> Result<Option<String>> {
    if reference.is_empty() {
        return Ok(None);
    }
    let r = Reference::parse(reference)?;
    if r.digest().is_some() {
        return Err(Error::InvalidArgument(format!(
            "refusing to create a tag with a digest reference: {reference}"
        )));
    }
    Ok(Some(r.to_string()))
}

/// The diff ID of a layer blob: its uncompressed digest label.
pub fn diff_id(core: &Core, ns: &str, layer: &Descriptor) -> Result<String> {
    let info = core.content.info(ns, &layer.digest)?;
    info.labels.get(LABEL_UNCOMPRESSED).cloned().ok_or_else(|| {
        Error::Internal(format!(
            "layer {} has no {LABEL_UNCOMPRESSED} label",
            layer.digest
        ))
    })
}

async fn put_blob(
    core: &Core,
    ns: &str,
    data: Vec<u8>,
    media_type: &str,
    labels: Labels,
    lease: &str,
) -> Result<Descriptor> {
    let desc = Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(&data),
        size: data.len() as i64,
        annotations: Default::default(),
    };
    core.content
        .write_blob(
            ns,
            &format!("build-{}", desc.digest.hex()),
            std::io::Cursor::new(data),
            desc.size,
            &desc.digest,
            labels.clone(),
            Some(lease),
        )
        .await?;
    // The blob may have existed without the labels.
    if !labels.is_empty() {
        let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
        core.content.update(ns, &desc.digest, &labels, &paths)?;
    }
    Ok(desc)
}

/// Writes the image's documents, unpacks it and names it.
pub async fn build(core: &Arc<Core>, ns: &str, new: NewImage<'_>) -> Result<Built> {
    let NewImage {
        base_layers,
        docker,
        mut config,
        layer,
        history,
        name,
        lease,
    } = new;
    let diff = diff_id(core, ns, &layer)?;
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids.push(diff);
    config.history.push(history);
    let (manifest_type, config_type, layer_type) = if docker {
        (
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP,
        )
    } else {
        (
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            media::OCI_LAYER_GZIP,
        )
    };
    let config_bytes = serde_json::to_vec(&config)?;
    let config_desc = put_blob(core, ns, config_bytes, config_type, Labels::new(), lease).await?;
    let mut layers = base_layers;
    let mut new_layer = ic::to_dist(&layer)?;
    new_layer.media_type = layer_type.into();
    layers.push(new_layer);
    let manifest = dist::Manifest {
        schema_version: 2,
        media_type: Some(manifest_type.into()),
        config: ic::to_dist(&config_desc)?,
        layers,
        annotations: Default::default(),
    };
    let labels = ic::manifest_labels(&manifest);
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let manifest_desc = put_blob(core, ns, manifest_bytes, manifest_type, labels, lease).await?;
    let image = ic::resolve(&core.content, ns, &manifest_desc, None).await?;
    image.check_layers()?;
    unpack::unpack_image(core, ns, &image, "", Progress::none()).await?;
    let shown = match &name {
        Some(n) => {
            core.images.put(ns, n, &manifest_desc, &Labels::new())?;
            Some(
                Reference::parse(n)
                    .map(|r| r.familiar())
                    .unwrap_or(n.clone()),
            )
        }
        None => {
            core.images.put(
                ns,
                &dangling_name(&manifest_desc),
                &manifest_desc,
                &Labels::new(),
            )?;
            None
        }
    };
    Ok(Built {
        id: config_desc.digest.to_string(),
        name: shown,
        manifest: manifest_desc,
    })
}

/// RFC 3339 text of now, as image configs write times.
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_for_new_images() {
        assert_eq!(full_name("").unwrap(), None);
        assert_eq!(
            full_name("mine:v1").unwrap().unwrap(),
            "docker.io/library/mine:v1"
        );
        assert!(full_name(&format!("x@sha256:{}", "a".repeat(64))).is_err());
    }
}
