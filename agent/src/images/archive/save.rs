//! `save`: images to a docker-archive or OCI archive tar stream. [`plan`] resolves
//! every name and checks every blob is here before a byte is written; [`Plan::write`]
//! streams the tar.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_tar::{Builder, EntryType, Header};

use super::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, DockerEntry, Format, OCI_LAYOUT, blob_path,
};
use crate::content::Descriptor;
use crate::core::Core;
use crate::distribution::media::{Kind, OCI_INDEX, classify};
use crate::distribution::{Platform, Reference};
use crate::error::{Error, Result};
use crate::images::catalog;
use crate::images::content::{self as ic, PlatformImage, to_store};

/// What to write.
#[derive(Debug, Clone)]
pub struct Plan {
    format: Format,
    /// Blobs in writing order, each once.
    blobs: Vec<Descriptor>,
    /// docker's manifest.json.
    docker: Vec<DockerEntry>,
    /// `repositories`: familiar repo -> tag -> config hex.
    repositories: BTreeMap<String, BTreeMap<String, String>>,
    /// index.json entries.
    index: Vec<serde_json::Value>,
}

struct Chosen {
    image: PlatformImage,
    /// Full names (tags) to give it.
    names: Vec<String>,
}

/// Resolves `inputs` (names or IDs) for `format`; docker archives hold one platform of an
/// index (`platform`, else the host's).
pub async fn plan(
    core: &Core,
    ns: &str,
    inputs: &[String],
    format: Format,
    platform: Option<&Platform>,
) -> Result<Plan> {
    if inputs.is_empty() {
        return Err(Error::InvalidArgument(
            "save needs at least one image name or ID".into(),
        ));
    }
    let groups = catalog::groups(core, ns).await?;
    let mut chosen: Vec<Chosen> = Vec::new();
    for input in inputs {
        let found = catalog::find_in(core, ns, groups.clone(), input)?;
        let record = match &found.named {
            Some(n) => found
                .group
                .entries
                .iter()
                .find(|e| e.record.name == *n)
                .map(|e| e.record.clone()),
            None => found.group.entries.first().map(|e| e.record.clone()),
        }
        .ok_or_else(|| catalog::no_such_image(input))?;
        let image = ic::resolve(&core.content, ns, &record.target, platform).await?;
        let names: Vec<String> = match &found.named {
            Some(n) => match Reference::parse(n) {
                Ok(r) if r.digest().is_none() => vec![r.to_string()],
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        match chosen
            .iter_mut()
            .find(|c| c.image.target.digest == image.target.digest)
        {
            Some(c) => {
                for n in names {
                    if !c.names.contains(&n) {
                        c.names.push(n);
                    }
                }
            }
            None => chosen.push(Chosen { image, names }),
        }
    }

    let mut seen = BTreeSet::new();
    let mut blobs = Vec::new();
    let mut add = |d: Descriptor, blobs: &mut Vec<Descriptor>| -> Result<()> {
        if !core.content.exists(ns, &d.digest)? {
            return Err(Error::NotFound(format!(
                "blob {} is not in the content store; pull the image again",
                d.digest
            )));
        }
        if seen.insert(d.digest.clone()) {
            blobs.push(d);
        }
        Ok(())
    };
    let mut docker = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index = Vec::new();
    for c in &chosen {
        let img = &c.image;
        if format == Format::Oci {
            match &img.index {
                Some(ix) => {
                    add(img.target.clone(), &mut blobs)?;
                    for m in &ix.manifests {
                        let d = to_store(m)?;
                        if !matches!(classify(&d.media_type), Ok(Kind::Manifest))
                            || !core.content.exists(ns, &d.digest)?
                        {
                            continue;
                        }
                        let (doc, _) = ic::read_document(&core.content, ns, &d).await?;
                        if let crate::distribution::Document::Manifest(man) = doc {
                            add(d, &mut blobs)?;
                            add(to_store(&man.config)?, &mut blobs)?;
                            for l in &man.layers {
                                add(to_store(l)?, &mut blobs)?;
                            }
                        }
                    }
                }
                None => add(img.target.clone(), &mut blobs)?,
            }
        }
        add(img.config_desc.clone(), &mut blobs)?;
        for l in img.layers()? {
            add(l, &mut blobs)?;
        }
        if format == Format::Oci {
            add(img.manifest_desc.clone(), &mut blobs)?;
        }
        let tags: Vec<String> = c
            .names
            .iter()
            .filter_map(|n| Reference::parse(n).ok())
            .map(|r| r.familiar())
            .collect();
        for n in &c.names {
            if let Ok(r) = Reference::parse(n) {
                repositories.entry(r.familiar_name()).or_default().insert(
                    r.tag().unwrap_or("latest").to_string(),
                    img.config_desc.digest.hex().to_string(),
                );
            }
        }
        docker.push(DockerEntry {
            config: blob_path(&img.config_desc.digest),
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers: img.layers()?.iter().map(|l| blob_path(&l.digest)).collect(),
        });
        let mut entry = |annotations: serde_json::Value| {
            index.push(json!({
                "mediaType": img.target.media_type,
                "digest": img.target.digest.to_string(),
                "size": img.target.size,
                "annotations": annotations,
            }));
        };
        if c.names.is_empty() {
            entry(json!({}));
        }
        for n in &c.names {
            let tag = Reference::parse(n)
                .ok()
                .and_then(|r| r.tag().map(str::to_string))
                .unwrap_or_else(|| "latest".into());
            entry(json!({ ANNOTATION_IMAGE_NAME: n, ANNOTATION_REF_NAME: tag }));
        }
    }
    Ok(Plan {
        format,
        blobs,
        docker,
        repositories,
        index,
    })
}

fn header(size: u64, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Regular);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn dir_header() -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h
}

impl Plan {
    /// Total bytes of blob data the archive holds.
    pub fn blob_bytes(&self) -> i64 {
        self.blobs.iter().map(|b| b.size).sum()
    }

    /// Streams the archive into `out`.
    pub async fn write<W: AsyncWrite + Unpin + Send + 'static>(
        &self,
        core: &Core,
        ns: &str,
        out: W,
    ) -> Result<()> {
        let ioe = |what: &str| {
            let what = what.to_string();
            move |e: std::io::Error| Error::io(format!("write the archive: {what}"), e)
        };
        let mut b = Builder::new(out);
        if self.format == Format::Oci {
            let mut h = header(OCI_LAYOUT.len() as u64, 0o644);
            b.append_data(&mut h, "oci-layout", OCI_LAYOUT.as_bytes())
                .await
                .map_err(ioe("oci-layout"))?;
        }
        for dir in ["blobs", "blobs/sha256"] {
            let mut h = dir_header();
            b.append_data(&mut h, dir, tokio::io::empty())
                .await
                .map_err(ioe(dir))?;
        }
        for d in &self.blobs {
            let r = core.content.reader(ns, &d.digest)?;
            let size = r.size() as u64;
            let reader = tokio::io::BufReader::with_capacity(1 << 20, r.into_async_read(0)?);
            let path = blob_path(&d.digest);
            let mut h = header(size, 0o644);
            b.append_data(&mut h, &path, reader)
                .await
                .map_err(ioe(&path))?;
        }
        if self.format == Format::Oci {
            let index = json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": self.index,
            });
            let data = serde_json::to_vec(&index)?;
            let mut h = header(data.len() as u64, 0o644);
            b.append_data(&mut h, "index.json", data.as_slice())
                .await
                .map_err(ioe("index.json"))?;
        }
        let manifest = serde_json::to_vec(&self.docker)?;
        let mut h = header(manifest.len() as u64, 0o644);
        b.append_data(&mut h, "manifest.json", manifest.as_slice())
            .await
            .map_err(ioe("manifest.json"))?;
        if !self.repositories.is_empty() {
            let data = serde_json::to_vec(&self.repositories)?;
            let mut h = header(data.len() as u64, 0o644);
            b.append_data(&mut h, "repositories", data.as_slice())
                .await
                .map_err(ioe("repositories"))?;
        }
        b.finish().await.map_err(ioe("end of archive"))?;
        let mut out = b.into_inner().await.map_err(ioe("end of archive"))?;
        out.flush().await.map_err(ioe("flush"))?;
        out.shutdown().await.map_err(ioe("close"))?;
        Ok(())
    }
}
