//! Layers and snapshots meeting: applying a layer blob from the content store onto a
//! snapshot's mounts (unpack), and writing the difference between two mount lists into
//! the content store as a new layer (commit, `ctr snapshots diff`).

use std::path::PathBuf;
use std::sync::Arc;

use berth_snapshotter::Mount;
use berth_snapshotter::apply::{self, ApplyOptions, Compression};
use berth_snapshotter::diff::{self, DiffOptions};

use crate::content::{ContentStore, Descriptor, Digest};
use crate::error::{Error, Result};
use crate::labels::Labels;

/// Media type of an uncompressed OCI layer (what Apply reports).
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip OCI layer (what Diff writes by default).
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The label naming a layer blob's uncompressed digest.
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

/// Where and how [`Differ::diff`] stores the layer it produces.
#[derive(Debug, Clone, Default)]
pub struct NewLayer<'a> {
    /// Media type of the blob; empty means gzip OCI layer.
    pub media_type: &'a str,
    /// The ingest ref; empty means one derived from the digest.
    pub reference: &'a str,
    /// Labels of the blob (the uncompressed digest label is added).
    pub labels: Labels,
    /// The lease that holds the new blob.
    pub lease: Option<&'a str>,
}

/// Applies and produces layers.
#[derive(Clone)]
pub struct Differ {
    content: Arc<ContentStore>,
    tmp: PathBuf,
    max_layer_bytes: Option<u64>,
}

impl Differ {
    /// `tmp` holds temporary mount points and files; `max_layer_bytes` limits the
    /// uncompressed size of one applied layer.
    pub fn new(content: Arc<ContentStore>, tmp: PathBuf, max_layer_bytes: Option<u64>) -> Self {
        Differ {
            content,
            tmp,
            max_layer_bytes,
        }
    }

    fn make_tmp(&self) -> Result<()> {
        std::fs::create_dir_all(&self.tmp)
            .map_err(|e| Error::io(format!("create {}", self.tmp.display()), e))
    }

    /// Applies the layer `layer` (a blob in namespace `ns`) onto `mounts`; returns the
    /// uncompressed layer's descriptor (its digest is the diff ID).
    pub async fn apply(
        &self,
        ns: &str,
        layer: &Descriptor,
        mounts: &[Mount],
    ) -> Result<Descriptor> {
        let compression = Compression::from_media_type(&layer.media_type);
        if compression.is_none() && !layer.media_type.is_empty() {
            tracing::debug!(media_type = %layer.media_type, "unknown layer media type; detecting compression");
        }
        self.make_tmp()?;
        let reader = self.content.reader(ns, &layer.digest)?.into_async_read(0)?;
        let options = ApplyOptions {
            max_uncompressed_bytes: self.max_layer_bytes,
            compression,
            temp_dir: Some(self.tmp.clone()),
            ..ApplyOptions::default()
        };
        let applied = apply::apply_to_mounts(mounts, reader, &options)
            .await
            .map_err(|e| {
                let e: Error = e.into();
                match e {
                    Error::InvalidArgument(m) => {
                        Error::InvalidArgument(format!("layer {}: {m}", layer.digest.as_str()))
                    }
                    other => other,
                }
            })?;
        Ok(Descriptor {
            media_type: OCI_LAYER_TAR.into(),
            digest: Digest::parse(&applied.digest)?,
            size: applied.size as i64,
            annotations: Default::default(),
        })
    }

    /// Writes the changes from `lower` to `upper` as a layer blob of `out.media_type`
    /// (gzip when empty) into namespace `ns`, labelled with its uncompressed digest.
    pub async fn diff(
        &self,
        ns: &str,
        lower: &[Mount],
        upper: &[Mount],
        out: NewLayer<'_>,
    ) -> Result<Descriptor> {
        let NewLayer {
            media_type,
            reference,
            mut labels,
            lease,
        } = out;
        let compression = match media_type {
            "" => Compression::Gzip,
            mt => Compression::from_media_type(mt).ok_or_else(|| {
                Error::InvalidArgument(format!("cannot produce a layer of media type {mt:?}"))
            })?,
        };
        self.make_tmp()?;
        let file = tempfile::NamedTempFile::new_in(&self.tmp)
            .map_err(|e| Error::io(format!("temporary file in {}", self.tmp.display()), e))?;
        let out = tokio::fs::File::from_std(
            file.reopen()
                .map_err(|e| Error::io("reopen temporary layer file", e))?,
        );
        let options = DiffOptions {
            compression,
            temp_dir: Some(self.tmp.clone()),
        };
        let result = diff::diff_mounts(lower, upper, out, &options).await?;
        let digest = Digest::parse(&result.compressed.digest)?;
        labels.insert(
            UNCOMPRESSED_LABEL.into(),
            result.uncompressed.digest.clone(),
        );
        let reference = if reference.is_empty() {
            format!("diff-{}", digest.hex())
        } else {
            reference.to_string()
        };
        let reader = tokio::fs::File::open(file.path())
            .await
            .map_err(|e| Error::io("read back the layer", e))?;
        self.content
            .write_blob(
                ns,
                &reference,
                reader,
                result.compressed.size as i64,
                &digest,
                labels,
                lease,
            )
            .await?;
        Ok(Descriptor {
            media_type: if media_type.is_empty() {
                result.media_type
            } else {
                media_type.into()
            },
            digest,
            size: result.compressed.size as i64,
            annotations: Default::default(),
        })
    }
}
