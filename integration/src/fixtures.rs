//! Test images, built deterministically from Debian's `busybox-static` (no image can be
//! pulled from the internet here).
//!
//! * [`Image`]: one manifest, its config and layers (with diff IDs and chain IDs);
//! * [`Index`]: a multi-platform OCI index or Docker manifest list over several images;
//! * [`Fixture`]: what both share: the blobs to push, and writing them as an OCI layout,
//!   an OCI archive or a docker-archive;
//! * [`ImageBuilder`]: custom images from [`Entry`] lists;
//! * the catalogue in [`catalog`]: `busybox()`, `multilayer()`, `busybox_docker()`,
//!   `multi_platform()`, each built once per test process and shared.

pub mod blob;
pub mod catalog;
pub mod layout;
pub mod tarball;

use std::path::Path;

use serde_json::{Map, Value, json};

pub use blob::{Blob, Compression, Descriptor, Format, Platform, chain_ids, sha256};
pub use catalog::*;
pub use tarball::Entry;

use crate::error::Result;

/// One layer: its blob as stored (maybe compressed), and the tar inside it.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The blob as pushed (compressed as `compression` says).
    pub blob: Blob,
    /// How `blob` is compressed.
    pub compression: Compression,
    /// `sha256` of the uncompressed tar, as listed in the config's `rootfs.diff_ids`.
    pub diff_id: String,
    /// The uncompressed tar.
    pub tar: Vec<u8>,
}

impl Layer {
    /// A layer holding `entries`, compressed with `compression`, with the media type of
    /// `format`.
    pub fn new(entries: &[Entry], compression: Compression, format: Format) -> Layer {
        let tar = tarball::build(entries);
        Layer {
            blob: Blob::new(
                compression.layer_media_type(format),
                compression.compress(&tar),
            ),
            compression,
            diff_id: sha256(&tar),
            tar,
        }
    }

    /// The paths in the layer's tar, in order (`bin/`, `bin/busybox`, `data/.wh.x`, ...).
    pub fn paths(&self) -> Vec<String> {
        tarball::list(&self.tar).expect("fixture layer is a valid tar")
    }

    /// The content of the regular file `path` in this layer, if it holds one.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        tarball::read_file(&self.tar, path).expect("fixture layer is a valid tar")
    }
}

/// A single-platform image.
#[derive(Debug, Clone)]
pub struct Image {
    /// A short name for messages (`busybox`, `multilayer-zstd`).
    pub name: String,
    /// OCI or Docker media types.
    pub format: Format,
    /// The platform its config declares.
    pub platform: Platform,
    /// The manifest.
    pub manifest: Blob,
    /// The config.
    pub config: Blob,
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
}

impl Image {
    /// The diff IDs of its layers, bottom first (equal to the config's `rootfs.diff_ids`).
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// The chain IDs of its layers, bottom first (the snapshot keys containerd uses).
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(&self.diff_ids())
    }

    /// The chain ID of the whole stack (the top snapshot).
    pub fn chain_id(&self) -> String {
        self.chain_ids().pop().unwrap_or_default()
    }

    /// A descriptor of the manifest with the platform set (as in an index).
    pub fn manifest_descriptor(&self) -> Descriptor {
        let mut d = self.manifest.descriptor();
        d.platform = Some(self.platform.clone());
        d
    }

    /// The sum of the sizes of the config and layer blobs (as registries report it).
    pub fn content_size(&self) -> u64 {
        self.config.size() + self.layers.iter().map(|l| l.blob.size()).sum::<u64>()
    }

    /// The uncompressed size of the layers.
    pub fn unpacked_size(&self) -> u64 {
        self.layers.iter().map(|l| l.tar.len() as u64).sum()
    }
}

/// A multi-platform image: an OCI index or a Docker manifest list.
#[derive(Debug, Clone)]
pub struct Index {
    /// A short name for messages.
    pub name: String,
    /// OCI index or Docker manifest list.
    pub format: Format,
    /// The index blob.
    pub index: Blob,
    /// The images it lists, in order.
    pub images: Vec<Image>,
}

impl Index {
    /// The image listed for `platform` (architecture and OS must match; the variant too
    /// when both name one).
    pub fn image_for(&self, platform: &Platform) -> Option<&Image> {
        self.images.iter().find(|img| {
            img.platform.architecture == platform.architecture
                && img.platform.os == platform.os
                && (img.platform.variant.is_none()
                    || platform.variant.is_none()
                    || img.platform.variant == platform.variant)
        })
    }

    /// The image for this machine's platform.
    pub fn host_image(&self) -> &Image {
        self.image_for(&Platform::host())
            .expect("every fixture index lists the host platform")
    }
}

/// What pushing, importing and loading need from any fixture.
pub trait Fixture: Sync {
    /// A short name for messages.
    fn name(&self) -> &str;

    /// The blob a tag points at: the manifest, or the index.
    fn top(&self) -> &Blob;

    /// The single-platform images it holds.
    fn images(&self) -> Vec<&Image>;

    /// The image to use where only one fits (docker-archive, a default-platform pull).
    fn host_image(&self) -> &Image;

    /// Every blob, each once, in the order a registry accepts them: configs and layers,
    /// then manifests, then the top blob last.
    fn blobs(&self) -> Vec<&Blob> {
        let mut out: Vec<&Blob> = Vec::new();
        for img in self.images() {
            for b in std::iter::once(&img.config).chain(img.layers.iter().map(|l| &l.blob)) {
                if !out.iter().any(|o| o.digest == b.digest) {
                    out.push(b);
                }
            }
        }
        for img in self.images() {
            if !out.iter().any(|o| o.digest == img.manifest.digest) {
                out.push(&img.manifest);
            }
        }
        let top = self.top();
        if !out.iter().any(|o| o.digest == top.digest) {
            out.push(top);
        }
        out
    }

    /// The digest of the top blob.
    fn digest(&self) -> &str {
        &self.top().digest
    }

    /// The media type of the top blob.
    fn media_type(&self) -> &str {
        &self.top().media_type
    }

    /// Writes an OCI image layout into `dir` (created if missing); its `index.json`
    /// annotates the top descriptor with `name` (full reference) and its tag.
    fn write_oci_layout(&self, dir: &Path, name: Option<&str>) -> Result<()> {
        layout::write_files(dir, &layout::oci_layout_files(self, name))
    }

    /// The OCI layout as a tar (an OCI archive).
    fn oci_archive(&self, name: Option<&str>) -> Vec<u8> {
        layout::tar_of(&layout::oci_layout_files(self, name))
    }

    /// Writes [`Fixture::oci_archive`] to `path`.
    fn write_oci_archive(&self, path: &Path, name: Option<&str>) -> Result<()> {
        layout::write_file(path, &self.oci_archive(name))
    }

    /// A docker-archive (`docker save` format) of the host image under `repo_tags`.
    fn docker_archive(&self, repo_tags: &[&str]) -> Vec<u8> {
        layout::tar_of(&layout::docker_archive_files(self.host_image(), repo_tags))
    }

    /// Writes [`Fixture::docker_archive`] to `path`.
    fn write_docker_archive(&self, path: &Path, repo_tags: &[&str]) -> Result<()> {
        layout::write_file(path, &self.docker_archive(repo_tags))
    }
}

impl Fixture for Image {
    fn name(&self) -> &str {
        &self.name
    }
    fn top(&self) -> &Blob {
        &self.manifest
    }
    fn images(&self) -> Vec<&Image> {
        vec![self]
    }
    fn host_image(&self) -> &Image {
        self
    }
}

impl Fixture for Index {
    fn name(&self) -> &str {
        &self.name
    }
    fn top(&self) -> &Blob {
        &self.index
    }
    fn images(&self) -> Vec<&Image> {
        self.images.iter().collect()
    }
    fn host_image(&self) -> &Image {
        Index::host_image(self)
    }
}

/// Builds an [`Image`] layer by layer.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    name: String,
    format: Format,
    platform: Platform,
    compression: Compression,
    layers: Vec<(Vec<Entry>, Compression, String)>,
    config: Map<String, Value>,
}

impl ImageBuilder {
    /// An OCI image for this machine's platform with gzip layers and the config
    /// `{"Env": ["PATH=..."], "Cmd": ["sh"]}`.
    pub fn new(name: &str) -> ImageBuilder {
        let mut config = Map::new();
        config.insert("Env".into(), json!([catalog::PATH_ENV]));
        config.insert("Cmd".into(), json!(["sh"]));
        ImageBuilder {
            name: name.to_string(),
            format: Format::Oci,
            platform: Platform::host(),
            compression: Compression::Gzip,
            layers: Vec::new(),
            config,
        }
    }

    /// OCI or Docker media types.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The platform the config declares.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// The compression of the layers added after this call.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Adds a layer on top; `created_by` goes into the config's history.
    pub fn layer(mut self, entries: Vec<Entry>, created_by: &str) -> Self {
        self.layers
            .push((entries, self.compression, created_by.to_string()));
        self
    }

    /// Sets `config.<key>` in the image config (`Cmd`, `Entrypoint`, `Env`, `WorkingDir`,
    /// `User`, `ExposedPorts`, `Volumes`, `Labels`, `StopSignal`); `Value::Null` removes it.
    pub fn config(mut self, key: &str, value: Value) -> Self {
        if value.is_null() {
            self.config.remove(key);
        } else {
            self.config.insert(key.to_string(), value);
        }
        self
    }

    /// Builds the layers, config and manifest.
    pub fn build(self) -> Image {
        let layers: Vec<Layer> = self
            .layers
            .iter()
            .map(|(entries, compression, _)| Layer::new(entries, *compression, self.format))
            .collect();
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let history: Vec<Value> = self
            .layers
            .iter()
            .map(|(_, _, by)| json!({"created": tarball::CREATED, "created_by": by}))
            .collect();
        let mut config = json!({
            "created": tarball::CREATED,
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(variant) = &self.platform.variant {
            config["variant"] = json!(variant);
        }
        let config = Blob::new(
            self.format.config_media_type(),
            serde_json::to_vec(&config).expect("config encodes"),
        );
        let layer_descs: Vec<Descriptor> = layers.iter().map(|l| l.blob.descriptor()).collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": self.format.manifest_media_type(),
            "config": config.descriptor(),
            "layers": layer_descs,
        });
        let manifest = Blob::new(
            self.format.manifest_media_type(),
            serde_json::to_vec(&manifest).expect("manifest encodes"),
        );
        Image {
            name: self.name,
            format: self.format,
            platform: self.platform,
            manifest,
            config,
            layers,
        }
    }
}

/// Builds an [`Index`] over `images` (each image's platform goes into its entry).
pub fn build_index(name: &str, format: Format, images: Vec<Image>) -> Index {
    let manifests: Vec<Descriptor> = images.iter().map(Image::manifest_descriptor).collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": format.index_media_type(),
        "manifests": manifests,
    });
    Index {
        name: name.to_string(),
        format,
        index: Blob::new(
            format.index_media_type(),
            serde_json::to_vec(&index).expect("index encodes"),
        ),
        images,
    }
}
