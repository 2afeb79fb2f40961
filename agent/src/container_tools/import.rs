//! `import`: a single-layer image from a root file system tar (what `export` writes),
//! plain or gzip/zstd compressed, streamed by the client or fetched by berthd from an
//! http(s) URL. The tar becomes a gzip layer blob (its diff ID hashed on the way); the
//! config gets the host's (or the asked) platform, the `-c` changes and a history
//! entry. Unpacking applies the tar with layer apply's safety, before the image is named.

use std::sync::Arc;

use async_compression::tokio::write::GzipEncoder;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::content::{Descriptor, Digester};
use crate::core::Core;
use crate::distribution::{Platform, media};
use crate::error::{Error, Result};
use crate::images::config::{History, ImageConfig, RootFs, RunConfig};
use crate::images::content::LABEL_UNCOMPRESSED;
use crate::images::lease::OpLease;
use crate::images::stream::{ChannelReader, decompress};
use crate::journal::{Kind, attrs};
use crate::labels::Labels;

use super::dockerfile;
use super::image_build::{self, Built, NewImage, now_text};

/// What `import` is asked.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// An http(s) URL to fetch; empty: the data comes from the client.
    pub source_url: String,
    pub reference: String,
    pub message: String,
    pub changes: Vec<String>,
    /// os/arch[/variant]; empty: the host's.
    pub platform: String,
}

/// A reader of the body of `url` (http or https only).
async fn fetch(url: &str) -> Result<ChannelReader> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::InvalidArgument(format!("import source {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::InvalidArgument(format!(
            "import source {url}: only http and https URLs are fetched"
        )));
    }
    let resp = reqwest::Client::new()
        .get(parsed)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("fetch {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(Error::FailedPrecondition(format!(
            "fetch {url}: the server answered {}",
            resp.status()
        )));
    }
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let mut body = resp.bytes_stream();
    let what = url.to_string();
    tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(format!("fetch {what}: {e}")));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(ChannelReader::new(rx))
}

/// Turns the tar read from `input` into a gzip layer blob of `ns` held by `lease`.
async fn store_layer<R: AsyncRead + Unpin + Send + 'static>(
    core: &Arc<Core>,
    ns: &str,
    input: R,
    lease: &str,
) -> Result<Descriptor> {
    let mut plain = decompress(input, None, |_| {});
    let tmp_dir = core.config.root.join("tmp");
    tokio::fs::create_dir_all(&tmp_dir)
        .await
        .map_err(|e| Error::io(format!("create {}", tmp_dir.display()), e))?;
    let file = tempfile::NamedTempFile::new_in(&tmp_dir)
        .map_err(|e| Error::io(format!("temporary file in {}", tmp_dir.display()), e))?;
    let out = tokio::fs::File::from_std(
        file.reopen()
            .map_err(|e| Error::io("reopen the temporary layer", e))?,
    );
    let mut gz = GzipEncoder::new(out);
    let mut diff = Digester::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = plain
            .read(&mut buf)
            .await
            .map_err(|e| Error::InvalidArgument(format!("reading the imported archive: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        diff.update(&buf[..n]);
        gz.write_all(&buf[..n])
            .await
            .map_err(|e| Error::io("write the layer", e))?;
    }
    if total == 0 {
        return Err(Error::InvalidArgument(
            "the imported archive is empty; expected a tar of a root file system".into(),
        ));
    }
    gz.shutdown()
        .await
        .map_err(|e| Error::io("finish the layer", e))?;
    let mut f = tokio::fs::File::open(file.path())
        .await
        .map_err(|e| Error::io("read back the layer", e))?;
    let mut compressed = Digester::new();
    let mut size = 0i64;
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| Error::io("read back the layer", e))?;
        if n == 0 {
            break;
        }
        size += n as i64;
        compressed.update(&buf[..n]);
    }
    let digest = compressed.digest();
    let labels: Labels = [(LABEL_UNCOMPRESSED.to_string(), diff.digest().to_string())]
        .into_iter()
        .collect();
    let reader = tokio::fs::File::open(file.path())
        .await
        .map_err(|e| Error::io("read back the layer", e))?;
    core.content
        .write_blob(
            ns,
            &format!("import-{}", digest.hex()),
            reader,
            size,
            &digest,
            labels.clone(),
            Some(lease),
        )
        .await?;
    let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
    core.content.update(ns, &digest, &labels, &paths)?;
    Ok(Descriptor {
        media_type: media::OCI_LAYER_GZIP.into(),
        digest,
        size,
        annotations: Default::default(),
    })
}

/// Imports an image; `data` is the archive when no URL is given.
pub async fn import<R: AsyncRead + Unpin + Send + 'static>(
    core: &Arc<Core>,
    ns: &str,
    req: ImportRequest,
    data: Option<R>,
) -> Result<Built> {
    let name = image_build::full_name(&req.reference)?;
    let platform = if req.platform.is_empty() {
        Platform::host()
    } else {
        Platform::parse(&req.platform)?
    };
    let mut rc = RunConfig::default();
    dockerfile::apply(&mut rc, &req.changes)?;
    let lease = OpLease::create(core, ns)?;
    let (layer, source) = if req.source_url.is_empty() {
        let data = data.ok_or_else(|| {
            Error::InvalidArgument("import needs a URL or the archive's data".into())
        })?;
        (
            store_layer(core, ns, data, lease.id()).await?,
            "-".to_string(),
        )
    } else {
        let body = fetch(&req.source_url).await?;
        (
            store_layer(core, ns, body, lease.id()).await?,
            req.source_url.clone(),
        )
    };
    let created = now_text();
    let config = ImageConfig {
        created: Some(created.clone()),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
        config: Some(rc),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        },
        ..Default::default()
    };
    let comment = if req.message.is_empty() {
        format!("Imported from {source}")
    } else {
        req.message.clone()
    };
    let built = image_build::build(
        core,
        ns,
        NewImage {
            base_layers: Vec::new(),
            docker: false,
            config,
            layer,
            history: History {
                created: Some(created),
                comment: Some(comment),
                ..Default::default()
            },
            name,
            lease: lease.id(),
        },
    )
    .await?;
    drop(lease);
    core.journal.emit(
        ns,
        Kind::Image,
        "import",
        &built.id,
        attrs([("name", built.name.as_deref().unwrap_or(""))]),
    );
    Ok(built)
}
