//! Image archives: `save` writes images as a tar stream, `load` reads one back.
//!
//! * docker-archive (the default, what `docker load` reads): `manifest.json` (one entry
//!   per image: `Config`, `RepoTags`, `Layers`), `repositories`, and the config and layer
//!   blobs as `blobs/sha256/<hex>`, layers as stored (compressed; `docker load` and
//!   `ctr images import` detect the compression).
//! * OCI archive: an OCI image layout (`oci-layout`, `index.json` naming each image with
//!   `io.containerd.image.name` and `org.opencontainers.image.ref.name`, every blob under
//!   `blobs/sha256/`) plus docker's `manifest.json`, as `ctr images export` and docker 25
//!   write.
//!
//! `load` reads both (and the older docker layout with `<id>/layer.tar` and `<id>.json`),
//! gzip-compressed or not.

pub mod load;
pub mod save;

use serde::{Deserialize, Serialize};

/// Formats of `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Docker,
    Oci,
}

/// One entry of docker's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// The annotation that names an image in an OCI layout (containerd's).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation with the reference name (a tag, or a full name).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `oci-layout`'s content.
pub const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// The path of a blob in an archive.
pub fn blob_path(digest: &crate::content::Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}
