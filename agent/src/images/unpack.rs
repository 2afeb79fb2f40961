//! Unpacking an image into a snapshotter: each layer is applied onto a snapshot of the
//! layers below it and committed under its chain ID, so a layer shared by two images is
//! unpacked and stored once. Chains that exist are skipped.
//!
//! Layers are decompressed on a task of their own while another writes the files, and
//! they come either from the content store or, during a pull, live from the download.
//! Files are not synced layer by layer: after each commit a `syncfs` of the snapshotter's
//! file system starts in the background, and [`Unpacker::finish`] waits for a last one
//! before the image's config is labelled with its top snapshot. Until then every
//! snapshot committed carries [`UNSYNCED_LABEL`] with the boot ID; a snapshot found with
//! another boot's ID was cut short by a machine crash and is unpacked again.
//!
//! [`unpack`] is the entry point for an image that is already in the content store
//! (`berthctl run`, CRI, load); pulls drive an [`Unpacker`] themselves.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use berth_snapshotter::apply::{self, ApplyOptions, Compression};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::content::Descriptor;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::Image;
use crate::images::content::{self as ic, LABEL_UNCOMPRESSED, PlatformImage};
use crate::images::lease::OpLease;
use crate::images::progress::{LayerStatus, Progress, Ticker};
use crate::images::stream::{ChannelReader, decompress};
use crate::labels::Labels;
use crate::snapshots::Snapshotter_;

/// On a snapshot committed by an unpack whose files are not yet synced: the boot ID.
pub const UNSYNCED_LABEL: &str = "io.berth.unpack.unsynced";

/// Where a layer's (compressed) bytes come from.
pub enum Source {
    /// The committed blob in the content store.
    Store,
    /// The bytes as the download receives them.
    Live(mpsc::Receiver<io::Result<Bytes>>),
}

/// What an unpack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The chain ID of the top layer (None for an image without layers).
    pub top: Option<String>,
    /// Layers applied (the others existed).
    pub applied: usize,
}

fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    })
}

fn extract_key(chain: &str) -> String {
    format!(
        "extract-{}-{:08x} {chain}",
        berth_api::time::to_unix_nanos(std::time::SystemTime::now()),
        rand::random::<u32>()
    )
}

/// Unpacks one platform image of one namespace into one snapshotter.
pub struct Unpacker {
    core: Arc<Core>,
    ns: String,
    sn: Snapshotter_,
    lease: Option<String>,
    layers: Vec<Descriptor>,
    diff_ids: Vec<String>,
    chains: Vec<String>,
    tmp: PathBuf,
    fs_root: PathBuf,
    progress: Progress,
    syncing: Mutex<Option<JoinHandle<()>>>,
    committed: Mutex<Vec<String>>,
}

impl Unpacker {
    /// An unpacker of `image` into `snapshotter` (empty: the default), holding what it
    /// creates in `lease`.
    pub fn new(
        core: &Arc<Core>,
        ns: &str,
        image: &PlatformImage,
        snapshotter: &str,
        lease: Option<&str>,
        progress: Progress,
    ) -> Result<Unpacker> {
        image.check_layers()?;
        let sn = core.snapshots.get(ns, snapshotter)?;
        let fs_root = core.config.root.join("snapshots").join(sn.name());
        Ok(Unpacker {
            core: core.clone(),
            ns: ns.to_string(),
            lease: lease.map(str::to_string),
            layers: image.layers()?,
            diff_ids: image.config.rootfs.diff_ids.clone(),
            chains: image.chain_ids(),
            tmp: core.config.root.join("tmp"),
            fs_root,
            sn,
            progress,
            syncing: Mutex::new(None),
            committed: Mutex::new(Vec::new()),
        })
    }

    /// The snapshotter's name.
    pub fn snapshotter(&self) -> &'static str {
        self.sn.name()
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The chain IDs, bottom first.
    pub fn chains(&self) -> &[String] {
        &self.chains
    }

    /// Removes, top first, the snapshots of this image left unsynced by an earlier boot
    /// (their files may be incomplete), so they are unpacked again.
    pub async fn check(&self) -> Result<()> {
        let mut lowest = None;
        for (i, chain) in self.chains.iter().enumerate() {
            match self.sn.stat(chain).await {
                Ok(info) => {
                    if info
                        .labels
                        .get(UNSYNCED_LABEL)
                        .is_some_and(|b| b != boot_id())
                    {
                        lowest = Some(i);
                        break;
                    }
                }
                Err(Error::NotFound(_)) => break,
                Err(e) => return Err(e),
            }
        }
        let Some(lowest) = lowest else {
            return Ok(());
        };
        for i in (lowest..self.chains.len()).rev() {
            let chain = &self.chains[i];
            match self.sn.remove(chain).await {
                Ok(()) => {
                    tracing::warn!(snapshot = %chain, "removed a snapshot left unsynced by a crash; unpacking it again");
                }
                Err(Error::NotFound(_)) => {}
                Err(e) => {
                    return Err(Error::FailedPrecondition(format!(
                        "snapshot {chain} was being unpacked when the machine stopped and may be \
                         incomplete, and it cannot be removed ({e}); remove the images and \
                         containers built on it and pull again"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether layer `i` is unpacked.
    pub async fn exists(&self, i: usize) -> Result<bool> {
        match self.sn.stat(&self.chains[i]).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Applies layer `i` from `source` onto its parent chain and commits it. A live
    /// source must be followed by a call to [`Unpacker::commit_applied`] or
    /// [`Unpacker::discard`] once the download is known good or bad; a store source is
    /// committed here.
    pub async fn apply(&self, i: usize, source: Source) -> Result<Applied> {
        let chain = &self.chains[i];
        let parent = if i == 0 {
            None
        } else {
            Some(self.chains[i - 1].as_str())
        };
        let layer = &self.layers[i];
        let key = extract_key(chain);
        let mounts = match self
            .sn
            .prepare(&key, parent, Labels::new(), self.lease.as_deref())
            .await
        {
            Ok(m) => m,
            Err(Error::AlreadyExists(_)) => return Ok(Applied::Existed),
            Err(e) => return Err(e),
        };
        let applied = Applied::Pending {
            key: key.clone(),
            index: i,
        };
        match self.apply_onto(i, &mounts, source).await {
            Ok(()) => Ok(applied),
            Err(e) => {
                self.discard(applied).await;
                Err(match e {
                    Error::InvalidArgument(m) => {
                        Error::FailedPrecondition(format!("layer {}: {m}", layer.digest))
                    }
                    other => other,
                })
            }
        }
    }

    async fn apply_onto(
        &self,
        i: usize,
        mounts: &[berth_snapshotter::Mount],
        source: Source,
    ) -> Result<()> {
        let layer = &self.layers[i];
        let hint = Compression::from_media_type(&layer.media_type);
        let (digest, total, progress) = (layer.digest.clone(), layer.size, self.progress.clone());
        let mut ticker = Ticker::new();
        let report = move |n: u64| {
            if ticker.due() {
                progress.bytes(&digest, LayerStatus::Extracting, n as i64, total);
            }
        };
        let reader = match source {
            Source::Store => {
                let r = self
                    .core
                    .content
                    .reader(&self.ns, &layer.digest)?
                    .into_async_read(0)?;
                decompress(r, hint, report)
            }
            Source::Live(rx) => decompress(ChannelReader::new(rx), hint, report),
        };
        std::fs::create_dir_all(&self.tmp)
            .map_err(|e| Error::io(format!("create {}", self.tmp.display()), e))?;
        let options = ApplyOptions {
            max_uncompressed_bytes: None,
            compression: Some(Compression::None),
            sync: false,
            temp_dir: Some(self.tmp.clone()),
        };
        let got = apply::apply_to_mounts(mounts, reader, &options).await?;
        if got.digest != self.diff_ids[i] {
            return Err(Error::FailedPrecondition(format!(
                "layer {}: wrong diff ID calculated on extraction: got {}, the image config says {}",
                layer.digest, got.digest, self.diff_ids[i]
            )));
        }
        Ok(())
    }

    /// Commits an applied layer under its chain ID and labels the layer blob with its
    /// diff ID.
    pub async fn commit_applied(&self, applied: Applied) -> Result<()> {
        let Applied::Pending { key, index } = applied else {
            return Ok(());
        };
        let chain = &self.chains[index];
        let labels: Labels = [(UNSYNCED_LABEL.to_string(), boot_id().to_string())]
            .into_iter()
            .collect();
        match self
            .sn
            .commit(chain, &key, labels, self.lease.as_deref())
            .await
        {
            Ok(()) => {
                self.committed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(chain.clone());
            }
            Err(Error::AlreadyExists(_)) => {
                // Another unpack of the same layer won the race.
                let _ = self.sn.remove(&key).await;
            }
            Err(e) => {
                let _ = self.sn.remove(&key).await;
                return Err(e);
            }
        }
        self.sync_in_background();
        let layer = &self.layers[index];
        let labels: Labels = [(LABEL_UNCOMPRESSED.to_string(), self.diff_ids[index].clone())]
            .into_iter()
            .collect();
        self.core.content.update(
            &self.ns,
            &layer.digest,
            &labels,
            &[format!("labels.{LABEL_UNCOMPRESSED}")],
        )?;
        Ok(())
    }

    /// Removes the snapshot of an applied layer that must not be committed.
    pub async fn discard(&self, applied: Applied) {
        if let Applied::Pending { key, .. } = applied
            && let Err(e) = self.sn.remove(&key).await
        {
            tracing::warn!(snapshot = %key, error = %e, "remove the snapshot of a failed layer");
        }
    }

    /// Applies and commits layer `i` from the content store, unless it exists.
    pub async fn unpack_layer(&self, i: usize) -> Result<bool> {
        if self.exists(i).await? {
            return Ok(false);
        }
        let applied = self.apply(i, Source::Store).await?;
        let did = matches!(applied, Applied::Pending { .. });
        self.commit_applied(applied).await?;
        Ok(did)
    }

    fn sync_in_background(&self) {
        let mut slot = self.syncing.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let root = self.fs_root.clone();
        *slot = Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = berth_snapshotter::fsutil::sync_filesystem(&root) {
                tracing::warn!(path = %root.display(), error = %e, "background syncfs");
            }
        }));
    }

    /// Makes the unpacked files durable, clears the unsynced labels, and labels the
    /// image config with its top snapshot. Returns the top chain ID.
    pub async fn finish(&self, config: &Descriptor) -> Result<Option<String>> {
        let pending = self
            .syncing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = pending {
            let _ = h.await;
        }
        let committed =
            std::mem::take(&mut *self.committed.lock().unwrap_or_else(|e| e.into_inner()));
        if !committed.is_empty() {
            let root = self.fs_root.clone();
            tokio::task::spawn_blocking(move || berth_snapshotter::fsutil::sync_filesystem(&root))
                .await
                .map_err(|e| Error::Internal(format!("sync task: {e}")))??;
        }
        for chain in &committed {
            match self.sn.stat(chain).await {
                Ok(mut info) => {
                    info.labels.remove(UNSYNCED_LABEL);
                    self.sn
                        .update(info, &[format!("labels.{UNSYNCED_LABEL}")])
                        .await?;
                }
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let Some(top) = self.chains.last().cloned() else {
            return Ok(None);
        };
        let key = ic::snapshot_ref_label(self.sn.name());
        let labels: Labels = [(key.clone(), top.clone())].into_iter().collect();
        self.core.content.update(
            &self.ns,
            &config.digest,
            &labels,
            &[format!("labels.{key}")],
        )?;
        Ok(Some(top))
    }
}

/// A layer applied onto a prepared snapshot, not committed yet.
#[derive(Debug)]
pub enum Applied {
    Pending {
        key: String,
        index: usize,
    },
    /// The snapshot existed already (another unpack committed it meanwhile).
    Existed,
}

/// Unpacks the host platform's image of `image` (a record of `ns`) into `snapshotter`
/// (empty: the default), skipping the layers that are unpacked. Every layer must be in
/// the content store.
pub async fn unpack(
    core: &Arc<Core>,
    ns: &str,
    image: &Image,
    snapshotter: &str,
) -> Result<Unpacked> {
    let pi = ic::resolve(&core.content, ns, &image.target, None).await?;
    unpack_image(core, ns, &pi, snapshotter, Progress::none()).await
}

/// [`unpack`] for an image already read.
pub async fn unpack_image(
    core: &Arc<Core>,
    ns: &str,
    image: &PlatformImage,
    snapshotter: &str,
    progress: Progress,
) -> Result<Unpacked> {
    let lease = OpLease::create(core, ns)?;
    let u = Unpacker::new(core, ns, image, snapshotter, Some(lease.id()), progress)?;
    u.check().await?;
    let mut applied = 0;
    for (i, layer) in image.layers()?.iter().enumerate() {
        if u.exists(i).await? {
            continue;
        }
        if !core.content.exists(ns, &layer.digest)? {
            return Err(Error::NotFound(format!(
                "layer {} of image {} is not in the content store; pull the image again",
                layer.digest, image.manifest_desc.digest
            )));
        }
        if u.unpack_layer(i).await? {
            applied += 1;
        }
    }
    let top = u.finish(&image.config_desc).await?;
    drop(lease);
    Ok(Unpacked { top, applied })
}

/// Whether the top layer of `image` is unpacked in `snapshotter`.
pub async fn is_unpacked(
    core: &Core,
    ns: &str,
    image: &PlatformImage,
    snapshotter: &str,
) -> Result<bool> {
    let Some(top) = image.chain_ids().pop() else {
        return Ok(true);
    };
    let sn = core.snapshots.get(ns, snapshotter)?;
    match sn.stat(&top).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
