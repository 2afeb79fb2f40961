//! Media types of OCI and Docker schema2 images, and the manifest, index and descriptor
//! documents a registry serves. Unknown media types are refused with a message naming
//! them; Docker schema1 is refused as unsupported.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The Accept header of manifest requests: every manifest and index type berth reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest or index berth reads.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image manifest (OCI or Docker schema2).
    Manifest,
    /// An index or manifest list.
    Index,
    /// An image configuration.
    Config,
    /// A filesystem layer. `foreign` layers (Docker foreign, OCI non-distributable) may be
    /// absent from the registry and are fetched from their `urls` if at all.
    Layer {
        compression: Compression,
        foreign: bool,
    },
}

/// Classifies a media type; parameters after ';' are ignored.
pub fn classify(media_type: &str) -> Result<Kind> {
    let mt = media_type.split(';').next().unwrap_or("").trim();
    let layer = |compression, foreign| Kind::Layer {
        compression,
        foreign,
    };
    Ok(match mt {
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        OCI_LAYER | DOCKER_LAYER => layer(Compression::None, false),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => layer(Compression::Gzip, false),
        OCI_LAYER_ZSTD => layer(Compression::Zstd, false),
        OCI_LAYER_NONDIST => layer(Compression::None, true),
        OCI_LAYER_NONDIST_GZIP | DOCKER_FOREIGN_LAYER_GZIP => layer(Compression::Gzip, true),
        OCI_LAYER_NONDIST_ZSTD => layer(Compression::Zstd, true),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => {
            return Err(Error::UnsupportedMediaType {
                media_type: media_type.to_string(),
                context: "(Docker schema1 manifests are not supported; push the image again \
                          with a current client)"
                    .into(),
            });
        }
        _ => {
            return Err(Error::UnsupportedMediaType {
                media_type: media_type.to_string(),
                context: "(not an OCI or Docker schema2 image type)".into(),
            });
        }
    })
}

/// A content descriptor: what a manifest or index points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
}

impl Descriptor {
    /// A descriptor of `data` with `media_type` (sha256).
    pub fn of(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::sha256_of(data),
            size: data.len() as u64,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

/// The platform object of an index entry or image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformSpec {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema2, which share this shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Manifest(Box<Manifest>),
    Index(Index),
}

impl Manifest {
    /// Parses an image manifest served as `media_type` and checks the media types of its
    /// config and layers. `what` names the manifest in messages.
    pub fn parse(what: &str, media_type: &str, data: &[u8]) -> Result<Manifest> {
        if classify(media_type)? != Kind::Manifest {
            return Err(Error::InvalidManifest {
                reference: what.to_string(),
                reason: format!("{media_type} is not an image manifest type"),
            });
        }
        let m: Manifest = serde_json::from_slice(data).map_err(|e| Error::InvalidManifest {
            reference: what.to_string(),
            reason: e.to_string(),
        })?;
        check_schema(what, m.schema_version)?;
        check_declared(what, media_type, m.media_type.as_deref())?;
        if !matches!(classify(&m.config.media_type), Ok(Kind::Config)) {
            return Err(Error::UnsupportedMediaType {
                media_type: m.config.media_type.clone(),
                context: format!("for the config of {what}"),
            });
        }
        for l in &m.layers {
            match classify(&l.media_type) {
                Ok(Kind::Layer { .. }) => {}
                Ok(_) | Err(_) => {
                    return Err(Error::UnsupportedMediaType {
                        media_type: l.media_type.clone(),
                        context: format!("for layer {} of {what}", l.digest),
                    });
                }
            }
        }
        Ok(m)
    }
}

impl Index {
    /// Parses an index or manifest list served as `media_type`.
    pub fn parse(what: &str, media_type: &str, data: &[u8]) -> Result<Index> {
        if classify(media_type)? != Kind::Index {
            return Err(Error::InvalidManifest {
                reference: what.to_string(),
                reason: format!("{media_type} is not an index type"),
            });
        }
        let i: Index = serde_json::from_slice(data).map_err(|e| Error::InvalidManifest {
            reference: what.to_string(),
            reason: e.to_string(),
        })?;
        check_schema(what, i.schema_version)?;
        check_declared(what, media_type, i.media_type.as_deref())?;
        Ok(i)
    }
}

impl Document {
    /// Parses a manifest or index according to `media_type`.
    pub fn parse(what: &str, media_type: &str, data: &[u8]) -> Result<Document> {
        match classify(media_type)? {
            Kind::Manifest => {
                Manifest::parse(what, media_type, data).map(|m| Document::Manifest(Box::new(m)))
            }
            Kind::Index => Index::parse(what, media_type, data).map(Document::Index),
            _ => Err(Error::InvalidManifest {
                reference: what.to_string(),
                reason: format!("{media_type} is neither a manifest nor an index"),
            }),
        }
    }
}

fn check_schema(what: &str, v: u32) -> Result<()> {
    if v != 2 {
        return Err(Error::InvalidManifest {
            reference: what.to_string(),
            reason: format!("schemaVersion {v} (expected 2)"),
        });
    }
    Ok(())
}

fn check_declared(what: &str, served: &str, declared: Option<&str>) -> Result<()> {
    let served = served.split(';').next().unwrap_or("").trim();
    match declared {
        Some(d) if d != served => Err(Error::InvalidManifest {
            reference: what.to_string(),
            reason: format!("served as {served} but its mediaType field says {d}"),
        }),
        _ => Ok(()),
    }
}

/// Guesses the media type of a manifest served without a usable Content-Type, from its
/// `mediaType` field or its shape (`manifests` means an index, else a manifest).
pub fn sniff_manifest_type(data: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
        schema_version: Option<u32>,
    }
    let p: Probe = serde_json::from_slice(data).ok()?;
    if let Some(mt) = p.media_type {
        return Some(mt);
    }
    if p.schema_version == Some(1) {
        return Some(DOCKER_SCHEMA1.to_string());
    }
    if p.manifests.is_some() {
        Some(OCI_INDEX.to_string())
    } else if p.config.is_some() {
        Some(OCI_MANIFEST.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn classifies_media_types() {
        assert_eq!(classify(OCI_MANIFEST).unwrap(), Kind::Manifest);
        assert_eq!(classify(DOCKER_MANIFEST_LIST).unwrap(), Kind::Index);
        assert_eq!(classify(DOCKER_CONFIG).unwrap(), Kind::Config);
        assert_eq!(
            classify(OCI_LAYER_ZSTD).unwrap(),
            Kind::Layer {
                compression: Compression::Zstd,
                foreign: false
            }
        );
        assert_eq!(
            classify(DOCKER_FOREIGN_LAYER_GZIP).unwrap(),
            Kind::Layer {
                compression: Compression::Gzip,
                foreign: true
            }
        );
        assert_eq!(
            classify("application/vnd.oci.image.manifest.v1+json; charset=utf-8").unwrap(),
            Kind::Manifest
        );
        let e = classify("application/x-weird").unwrap_err().to_string();
        assert!(e.contains("application/x-weird"), "{e}");
        let e = classify(DOCKER_SCHEMA1_SIGNED).unwrap_err().to_string();
        assert!(e.contains("schema1"), "{e}");
    }

    fn manifest(config_type: &str, layer_type: &str) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{config_type}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"{layer_type}","digest":"{D}","size":3}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn parses_manifests_and_refuses_unknown_types() {
        let m = Manifest::parse(
            "x",
            DOCKER_MANIFEST,
            &manifest(DOCKER_CONFIG, DOCKER_LAYER_GZIP),
        )
        .unwrap();
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].size, 3);

        let e = Manifest::parse("x", DOCKER_MANIFEST, &manifest(DOCKER_CONFIG, "text/plain"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("text/plain") && e.contains("layer"), "{e}");
        let e = Manifest::parse("x", DOCKER_MANIFEST, &manifest("x/cfg", DOCKER_LAYER))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x/cfg") && e.contains("config"), "{e}");
        let e = Manifest::parse("x", OCI_MANIFEST, &manifest(DOCKER_CONFIG, DOCKER_LAYER))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mediaType field"), "{e}");
        assert!(Manifest::parse("x", OCI_MANIFEST, b"{not json").is_err());
    }

    #[test]
    fn parses_index_and_sniffs() {
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":7,
            "platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}}]}}"#
        );
        let i = Index::parse("x", OCI_INDEX, idx.as_bytes()).unwrap();
        let p = i.manifests[0].platform.as_ref().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert_eq!(
            sniff_manifest_type(idx.as_bytes()).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            sniff_manifest_type(&manifest(DOCKER_CONFIG, DOCKER_LAYER)).as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert!(matches!(
            Document::parse("x", OCI_INDEX, idx.as_bytes()).unwrap(),
            Document::Index(_)
        ));
    }
}
