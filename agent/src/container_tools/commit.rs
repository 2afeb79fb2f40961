//! `commit`: a new image from a container's changes. The difference between the
//! container's snapshot and its parent (the image's top layer, seen through a view)
//! becomes a new layer in the content store (`Differ::diff`, gzip); the image's config
//! gets the container's run config (what it was created with, the image's merged in),
//! the `-c` changes, the new diff ID and a history entry; then manifest, unpack and name
//! as [`image_build`](super::image_build) does. The container is frozen during the diff
//! unless asked not to be.

use std::sync::Arc;

use crate::berth_containers::Record;
use crate::content::Descriptor;
use crate::core::Core;
use crate::diff::NewLayer;
use crate::distribution::media;
use crate::error::{Error, Result};
use crate::images::catalog;
use crate::images::config::{History, ImageConfig, RunConfig};
use crate::images::content::{self as ic, PlatformImage};
use crate::images::lease::OpLease;
use crate::journal::{Kind, attrs};

use super::dockerfile;
use super::image_build::{self, Built, NewImage, now_text};
use super::rootfs::{Freeze, hold};

/// What `commit` is asked.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container: String,
    /// REPOSITORY[:TAG]; empty: no name.
    pub reference: String,
    pub author: String,
    pub message: String,
    pub changes: Vec<String>,
    pub pause: bool,
}

/// The image a container was created from, read back from the store.
async fn base_image(core: &Core, ns: &str, rec: &Record) -> Result<PlatformImage> {
    if let Ok(record) = core.images.get(ns, &rec.image_name)
        && let Ok(pi) = ic::resolve(&core.content, ns, &record.target, None).await
        && pi.id().to_string() == rec.image_id
    {
        return Ok(pi);
    }
    for e in catalog::entries(core, ns).await? {
        if let Some(pi) = e.image
            && pi.id().to_string() == rec.image_id
        {
            return Ok(pi);
        }
    }
    Err(Error::FailedPrecondition(format!(
        "the image of container {} ({}) is no longer present; commit needs its layers",
        rec.name, rec.image_id
    )))
}

/// The container's run config as an image config's `config`, over the image's (whose
/// fields berth does not model, like Healthcheck, are kept).
fn run_config(base: Option<&RunConfig>, rec: &Record) -> RunConfig {
    let c = &rec.config;
    let mut rc = base.cloned().unwrap_or_default();
    let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let some_str = |s: &String| (!s.is_empty()).then(|| s.clone());
    rc.user = some_str(&c.user);
    rc.env = some_vec(&c.env);
    rc.cmd = some_vec(&c.cmd);
    rc.entrypoint = some_vec(&c.entrypoint);
    rc.working_dir = some_str(&c.working_dir);
    rc.stop_signal = some_str(&c.stop_signal);
    rc.exposed_ports = (!c.exposed_ports.is_empty()).then(|| {
        c.exposed_ports
            .keys()
            .map(|k| (k.clone(), serde_json::json!({})))
            .collect()
    });
    rc.volumes = (!c.volumes.is_empty()).then(|| {
        c.volumes
            .keys()
            .map(|k| (k.clone(), serde_json::json!({})))
            .collect()
    });
    rc.labels = (!c.labels.is_empty()).then(|| c.labels.clone());
    rc
}

/// The layer of a container's changes, written into the content store under `lease`.
async fn layer(
    core: &Arc<Core>,
    ns: &str,
    rec: &Record,
    docker: bool,
    lease: &str,
) -> Result<Descriptor> {
    let sn = core.snapshots.get(ns, &rec.snapshotter)?;
    let info = sn.stat(&rec.id).await?;
    let view = format!(
        "commit-{}-{}",
        &rec.id[..12.min(rec.id.len())],
        hex::encode(rand::random::<[u8; 6]>())
    );
    let lower = match &info.parent {
        Some(p) => {
            sn.view(&view, Some(p), Default::default(), Some(lease))
                .await?
        }
        None => Vec::new(),
    };
    let upper = sn.mounts(&rec.id).await?;
    let out = core
        .differ
        .diff(
            ns,
            &lower,
            &upper,
            NewLayer {
                media_type: if docker {
                    media::DOCKER_LAYER_GZIP
                } else {
                    media::OCI_LAYER_GZIP
                },
                lease: Some(lease),
                ..Default::default()
            },
        )
        .await;
    if info.parent.is_some()
        && let Err(e) = sn.remove(&view).await
    {
        tracing::warn!(view = %view, error = %e, "remove the commit view");
    }
    out
}

/// Commits the container; returns the new image.
pub async fn commit(core: &Arc<Core>, ns: &str, req: CommitRequest) -> Result<Built> {
    let name = image_build::full_name(&req.reference)?;
    // Check the changes before any work.
    dockerfile::apply(&mut RunConfig::default(), &req.changes)?;
    let lease = OpLease::create(core, ns)?;
    let freeze = if req.pause { Freeze::Yes } else { Freeze::No };
    let (rec, base, layer) = hold(core, ns, &req.container, freeze, async |h| {
        let base = base_image(core, ns, &h.rec).await?;
        let docker = base.manifest_desc.media_type == media::DOCKER_MANIFEST
            || base.manifest.media_type.as_deref() == Some(media::DOCKER_MANIFEST);
        let layer = layer(core, ns, &h.rec, docker, lease.id()).await?;
        Ok((h.rec.clone(), base, layer))
    })
    .await?;
    let docker = base.manifest.media_type.as_deref() == Some(media::DOCKER_MANIFEST)
        || base.manifest_desc.media_type == media::DOCKER_MANIFEST;
    let mut config: ImageConfig = base.config.clone();
    config.other.remove("container_config");
    config.other.remove("container");
    let created = now_text();
    config.created = Some(created.clone());
    config.author = (!req.author.is_empty()).then(|| req.author.clone());
    // docker keeps the commit message as the image's comment too.
    config.comment = (!req.message.is_empty()).then(|| req.message.clone());
    let mut rc = run_config(config.config.as_ref(), &rec);
    dockerfile::apply(&mut rc, &req.changes)?;
    config.config = Some(rc);
    let created_by = std::iter::once(rec.path.clone())
        .chain(rec.args.iter().cloned())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let built = image_build::build(
        core,
        ns,
        NewImage {
            base_layers: base.manifest.layers.clone(),
            docker,
            config,
            layer,
            history: History {
                created: Some(created),
                created_by: Some(created_by),
                author: (!req.author.is_empty()).then(|| req.author.clone()),
                comment: (!req.message.is_empty()).then(|| req.message.clone()),
                empty_layer: false,
            },
            name,
            lease: lease.id(),
        },
    )
    .await?;
    drop(lease);
    core.journal.emit(
        ns,
        Kind::Container,
        "commit",
        &rec.id,
        attrs([
            ("name", rec.name.as_str()),
            ("image", rec.config.image.as_str()),
            ("imageID", built.id.as_str()),
            ("imageRef", built.name.as_deref().unwrap_or("")),
            ("comment", req.message.as_str()),
        ]),
    );
    Ok(built)
}
