//! `load`: a docker-archive or OCI archive (gzip or zstd compressed, or not) into the
//! content store, unpacked, and named. Every regular file of the archive streams into
//! the content store as it comes (under the load's lease); once the tar ends, the
//! archive's `index.json` or `manifest.json` says what the blobs are. Images are
//! unpacked before any name is given, so a load that fails leaves no image behind (and
//! garbage collection removes what it wrote).

use std::collections::HashMap;
use std::sync::Arc;

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio_stream::StreamExt;
use tokio_tar::{Archive, EntryType};

use super::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, DockerEntry};
use crate::content::{Descriptor, Digest};
use crate::core::Core;
use crate::distribution::media::{self, Kind, classify};
use crate::distribution::{self as dist, Reference};
use crate::error::{Error, Result};
use crate::images::config::ImageConfig;
use crate::images::content::{self as ic, MAX_CONFIG_SIZE, PlatformImage, to_store};
use crate::images::lease::OpLease;
use crate::images::progress::Progress;
use crate::images::store::dangling_name;
use crate::images::unpack;
use crate::labels::Labels;

/// Files kept in memory rather than in the content store.
const SMALL_FILES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];
/// Largest of those.
const MAX_SMALL: u64 = 16 << 20;

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Names given, familiar form, in archive order.
    pub names: Vec<String>,
    /// IDs of images loaded without a name.
    pub ids: Vec<Digest>,
}

/// A regular file of the archive, stored.
#[derive(Debug, Clone)]
struct Stored {
    digest: Digest,
    size: i64,
}

/// The files of an archive.
#[derive(Default)]
struct Files {
    small: HashMap<String, Vec<u8>>,
    stored: HashMap<String, Stored>,
    links: HashMap<String, String>,
}

impl Files {
    fn get(&self, path: &str) -> Option<&Stored> {
        let mut p = normalize(path);
        for _ in 0..16 {
            if let Some(s) = self.stored.get(&p) {
                return Some(s);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn need(&self, path: &str) -> Result<&Stored> {
        self.get(path).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the archive is incomplete or invalid: {path} is missing"
            ))
        })
    }
}

fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn bad_archive(e: std::io::Error) -> Error {
    Error::InvalidArgument(format!(
        "the input is not a readable image archive (a tar from `save`, maybe gzip-compressed): {e}"
    ))
}

/// Loads the archive `input` into `ns`, unpacking into `snapshotter` (empty: default).
pub async fn load<R: AsyncRead + Unpin + Send>(
    core: &Arc<Core>,
    ns: &str,
    input: R,
    snapshotter: &str,
) -> Result<Loaded> {
    crate::identifiers::validate("namespace", ns)?;
    let lease = OpLease::create(core, ns)?;
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let head = buffered.fill_buf().await.map_err(bad_archive)?;
    if head.is_empty() {
        return Err(Error::InvalidArgument(
            "the input is empty; expected an image archive (a tar from `save`)".into(),
        ));
    }
    let reader: Box<dyn AsyncRead + Unpin + Send> = if head.starts_with(&[0x1f, 0x8b]) {
        let mut d = GzipDecoder::new(buffered);
        d.multiple_members(true);
        Box::new(d)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(ZstdDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let files = read_files(core, ns, reader, lease.id()).await?;
    let images = if files.small.contains_key("index.json") {
        oci_images(core, ns, &files).await?
    } else if files.small.contains_key("manifest.json") {
        docker_images(core, ns, &files, lease.id()).await?
    } else {
        return Err(Error::InvalidArgument(
            "the archive holds neither manifest.json nor index.json; expected a docker save or OCI archive"
                .into(),
        ));
    };
    // Unpack everything first: a bad layer fails the load before any image is named.
    for (image, _) in &images {
        unpack::unpack_image(core, ns, image, snapshotter, Progress::none()).await?;
    }
    let mut loaded = Loaded::default();
    for (image, names) in images {
        if names.is_empty() {
            core.images.put(
                ns,
                &dangling_name(&image.target),
                &image.target,
                &Labels::new(),
            )?;
            loaded.ids.push(image.config_desc.digest.clone());
            continue;
        }
        for n in names {
            core.images.put(ns, &n, &image.target, &Labels::new())?;
            loaded.names.push(
                Reference::parse(&n)
                    .map(|r| r.familiar())
                    .unwrap_or(n.clone()),
            );
        }
    }
    drop(lease);
    Ok(loaded)
}

/// Streams every file of the tar into the content store (small index files into memory).
async fn read_files<R: AsyncRead + Unpin + Send>(
    core: &Arc<Core>,
    ns: &str,
    reader: R,
    lease: &str,
) -> Result<Files> {
    let mut archive = Archive::new(reader);
    let mut entries = archive.entries().map_err(bad_archive)?;
    let mut files = Files::default();
    let mut n = 0u64;
    while let Some(entry) = entries.next().await {
        let mut entry = entry.map_err(bad_archive)?;
        let raw = entry.path_bytes().map_err(bad_archive)?;
        let path = normalize(&String::from_utf8_lossy(&raw));
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink | EntryType::Link => {
                if let Some(target) = entry.link_name_bytes().map_err(bad_archive)? {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = if kind == EntryType::Symlink {
                        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                        normalize(&format!("{dir}/{target}"))
                    } else {
                        normalize(&target)
                    };
                    files.links.insert(path, resolved);
                }
                continue;
            }
            _ => continue,
        }
        let size = entry.effective_size();
        if SMALL_FILES.contains(&path.as_str()) {
            if size > MAX_SMALL {
                return Err(Error::InvalidArgument(format!(
                    "{path} in the archive is {size} bytes, more than {MAX_SMALL}"
                )));
            }
            let mut data = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut data).await.map_err(bad_archive)?;
            if data.len() as u64 != size {
                return Err(bad_archive(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{path} is truncated"),
                )));
            }
            files.small.insert(path, data);
            continue;
        }
        n += 1;
        let reference = format!("load-{lease}-{n}");
        let mut w = core
            .content
            .writer(ns, &reference, size as i64, None, Some(lease))
            .await?;
        let copied = w.copy_from(&mut entry).await;
        let written = match copied {
            Ok(off) => off,
            Err(e) => {
                drop(w);
                let _ = core.content.abort(ns, &reference);
                return Err(match e {
                    Error::Io { source, .. } => bad_archive(source),
                    other => other,
                });
            }
        };
        if written != size as i64 {
            drop(w);
            let _ = core.content.abort(ns, &reference);
            return Err(bad_archive(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{path} is truncated: {written} of {size} bytes"),
            )));
        }
        let digest = w.digest();
        match w.commit(size as i64, None, Labels::new()).await {
            Ok(_) | Err(Error::AlreadyExists(_)) => {}
            Err(e) => {
                let _ = core.content.abort(ns, &reference);
                return Err(e);
            }
        }
        files.stored.insert(
            path,
            Stored {
                digest,
                size: size as i64,
            },
        );
    }
    Ok(files)
}

/// The blob `desc` names, checked against the archive's `blobs/<alg>/<hex>` file.
fn oci_blob(files: &Files, desc: &Descriptor) -> Result<()> {
    let path = super::blob_path(&desc.digest);
    let s = files.need(&path)?;
    if s.digest != desc.digest {
        return Err(Error::InvalidArgument(format!(
            "the archive's {path} does not hold the blob its name says (its digest is {})",
            s.digest
        )));
    }
    if desc.size > 0 && s.size != desc.size {
        return Err(Error::InvalidArgument(format!(
            "the archive's {path} is {} bytes, its descriptor says {}",
            s.size, desc.size
        )));
    }
    Ok(())
}

fn set_labels(core: &Core, ns: &str, digest: &Digest, labels: &Labels) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
    core.content.update(ns, digest, labels, &paths)?;
    Ok(())
}

/// The full name an archive gives: a reference, normalised.
fn full_name(s: &str) -> Option<String> {
    Reference::parse(s).ok().map(|r| r.to_string())
}

type Images = Vec<(PlatformImage, Vec<String>)>;

/// The images of an OCI layout: one per entry of `index.json`, named by its annotations
/// (or by docker's manifest.json in the same archive).
async fn oci_images(core: &Arc<Core>, ns: &str, files: &Files) -> Result<Images> {
    let data = &files.small["index.json"];
    let media_type = dist::media::sniff_manifest_type(data).unwrap_or(media::OCI_INDEX.into());
    let index = dist::Index::parse("index.json", &media_type, data).map_err(|e| {
        Error::InvalidArgument(format!("the archive's index.json is not valid: {e}"))
    })?;
    let docker: Vec<DockerEntry> = match files.small.get("manifest.json") {
        Some(d) => serde_json::from_slice(d).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut out: Images = Vec::new();
    for entry in &index.manifests {
        let target = to_store(entry)?;
        oci_blob(files, &target)?;
        // Label the whole tree for garbage collection, children first.
        let (doc, _) = ic::read_document(&core.content, ns, &target).await?;
        match &doc {
            dist::Document::Index(ix) => {
                for m in &ix.manifests {
                    let d = to_store(m)?;
                    if !matches!(classify(&d.media_type), Ok(Kind::Manifest)) {
                        continue;
                    }
                    if oci_blob(files, &d).is_err() {
                        // Other platforms may be left out of an archive.
                        continue;
                    }
                    label_manifest(core, ns, files, &d).await?;
                }
                set_labels(core, ns, &target.digest, &ic::index_labels(ix))?;
            }
            dist::Document::Manifest(_) => label_manifest(core, ns, files, &target).await?,
        }
        let image = ic::resolve(&core.content, ns, &target, None).await?;
        let mut names = Vec::new();
        let ann = &entry.annotations;
        if let Some(n) = ann.get(ANNOTATION_IMAGE_NAME).and_then(|n| full_name(n)) {
            names.push(n);
        } else if let Some(n) = ann
            .get(ANNOTATION_REF_NAME)
            .filter(|n| n.contains(['/', ':']))
            .and_then(|n| full_name(n))
        {
            names.push(n);
        } else {
            let config_path = super::blob_path(&image.config_desc.digest);
            for d in docker
                .iter()
                .filter(|d| normalize(&d.config) == config_path)
            {
                for t in d.repo_tags.iter().flatten() {
                    if let Some(n) = full_name(t) {
                        names.push(n);
                    }
                }
            }
        }
        match out
            .iter_mut()
            .find(|(i, _)| i.target.digest == image.target.digest)
        {
            Some((_, ns_)) => {
                for n in names {
                    if !ns_.contains(&n) {
                        ns_.push(n);
                    }
                }
            }
            None => out.push((image, names)),
        }
    }
    Ok(out)
}

/// Checks a manifest's blobs are in the archive and labels it.
async fn label_manifest(core: &Core, ns: &str, files: &Files, desc: &Descriptor) -> Result<()> {
    let data = core
        .content
        .read_all(ns, &desc.digest, media::MAX_MANIFEST_SIZE as i64)
        .await?;
    let mt = if matches!(classify(&desc.media_type), Ok(Kind::Manifest)) {
        desc.media_type.clone()
    } else {
        media::sniff_manifest_type(&data).unwrap_or(media::OCI_MANIFEST.into())
    };
    let m = dist::Manifest::parse(desc.digest.as_str(), &mt, &data)?;
    oci_blob(files, &to_store(&m.config)?)?;
    for l in &m.layers {
        oci_blob(files, &to_store(l)?)?;
    }
    set_labels(core, ns, &desc.digest, &ic::manifest_labels(&m))
}

/// The images of a docker archive: a Docker schema2 manifest is made for each entry of
/// `manifest.json`.
async fn docker_images(core: &Arc<Core>, ns: &str, files: &Files, lease: &str) -> Result<Images> {
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&files.small["manifest.json"]).map_err(|e| {
            Error::InvalidArgument(format!("the archive's manifest.json is not valid: {e}"))
        })?;
    if entries.is_empty() {
        return Err(Error::InvalidArgument(
            "the archive's manifest.json lists no image".into(),
        ));
    }
    let mut out: Images = Vec::new();
    for e in entries {
        let cfg = files.need(&e.config)?;
        let config_bytes = core
            .content
            .read_all(ns, &cfg.digest, MAX_CONFIG_SIZE)
            .await?;
        let config = ImageConfig::parse(&e.config, &config_bytes)?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(Error::InvalidArgument(format!(
                "the archive's {} lists {} diff IDs but manifest.json lists {} layers",
                e.config,
                config.rootfs.diff_ids.len(),
                e.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for p in &e.layers {
            let s = files.need(p)?;
            let mut head = [0u8; 4];
            let r = core.content.reader(ns, &s.digest)?;
            let n = r.read_at(&mut head, 0)?;
            let mt = match berth_snapshotter::apply::Compression::detect(&head[..n]) {
                berth_snapshotter::apply::Compression::Gzip => media::DOCKER_LAYER_GZIP,
                berth_snapshotter::apply::Compression::Zstd => media::OCI_LAYER_ZSTD,
                berth_snapshotter::apply::Compression::None => media::DOCKER_LAYER,
            };
            layers.push(serde_json::json!({
                "mediaType": mt,
                "size": s.size,
                "digest": s.digest.to_string(),
            }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": {
                "mediaType": media::DOCKER_CONFIG,
                "size": cfg.size,
                "digest": cfg.digest.to_string(),
            },
            "layers": layers,
        });
        let bytes = Bytes::from(serde_json::to_vec(&manifest)?);
        let target = Descriptor {
            media_type: media::DOCKER_MANIFEST.into(),
            digest: Digest::of(&bytes),
            size: bytes.len() as i64,
            annotations: Default::default(),
        };
        let parsed = dist::Manifest::parse("manifest.json", media::DOCKER_MANIFEST, &bytes)?;
        let labels = ic::manifest_labels(&parsed);
        core.content
            .write_blob(
                ns,
                &format!("manifest-{}", target.digest),
                std::io::Cursor::new(bytes),
                target.size,
                &target.digest,
                labels.clone(),
                Some(lease),
            )
            .await?;
        set_labels(core, ns, &target.digest, &labels)?;
        let image = ic::resolve(&core.content, ns, &target, None).await?;
        let names: Vec<String> = e
            .repo_tags
            .iter()
            .flatten()
            .map(|t| {
                full_name(t).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "the archive's manifest.json names the image {t:?}, not a valid reference"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        out.push((image, names));
    }
    Ok(out)
}
