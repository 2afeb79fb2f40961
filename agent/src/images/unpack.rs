//! Unpacking an image into a snapshotter: each layer is applied onto a snapshot of the
//! layers below it and committed under its chain ID, so a layer shared by two images is
//! unpacked and stored once. Chains that exist are skipped.
//!
//! Layers are decompressed on a task of their own while another writes the files, and
//! they come either from the content store or, during a pull, live from the download.
//!
//! Files are not synced on the way (a `syncfs` of a file system shared with others can
//! take seconds): every snapshot an unpack commits carries [`UNSYNCED_LABEL`] with the
//! boot ID. A few seconds after the unpacker is dropped a background task syncs the
//! snapshotter's file system and only then removes the labels of the snapshots
//! committed before the sync began; berthd does the same at start for what an earlier
//! run of this boot left labelled. A snapshot found with another boot's ID was
//! committed before a machine crash that may have lost its files:
//! [`Unpacker::check`] removes it so it is unpacked again, and [`is_unpacked`] does not
//! count it. A berthd crash alone loses nothing (the page cache still holds the files).
//!
//! [`unpack`] is the entry point for an image that is already in the content store
//! (`berthctl run`, CRI, load); pulls drive an [`Unpacker`] themselves.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use berth_snapshotter::apply::{self, ApplyOptions, Compression};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::content::Descriptor;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::Image;
use crate::images::content::{self as ic, LABEL_UNCOMPRESSED, PlatformImage};
use crate::images::lease::OpLease;
use crate::images::progress::{LayerStatus, Progress, Ticker};
use crate::images::stream::{ChannelReader, decompress};
use crate::labels::Labels;
use crate::metadata::LeaseResource;
use crate::snapshots::Snapshotter_;

/// On a snapshot committed by an unpack whose files are not yet synced: the boot ID.
pub const UNSYNCED_LABEL: &str = "io.berth.unpack.unsynced";
/// How long after an unpack its files are synced.
const SYNC_DELAY: Duration = Duration::from_secs(5);

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
    progress: Progress,
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
        Ok(Unpacker {
            core: core.clone(),
            ns: ns.to_string(),
            lease: lease.map(str::to_string),
            layers: image.layers()?,
            diff_ids: image.config.rootfs.diff_ids.clone(),
            chains: image.chain_ids(),
            tmp: core.config.root.join("tmp"),
            sn,
            progress,
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
                    if is_suspect(&info.labels) {
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

    /// Whether layer `i` is unpacked. An unpacked layer joins the lease, so it stays
    /// while the layers above it are applied.
    pub async fn exists(&self, i: usize) -> Result<bool> {
        match self.sn.stat(&self.chains[i]).await {
            Ok(_) => {
                if let Some(lease) = &self.lease {
                    self.core.metadata.lease_add_resource(
                        &self.ns,
                        lease,
                        &LeaseResource {
                            kind: format!("snapshots/{}", self.sn.name()),
                            id: self.chains[i].clone(),
                        },
                    )?;
                }
                Ok(true)
            }
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
            whiteouts: true,
        };
        let started = std::time::Instant::now();
        let got = apply::apply_to_mounts(mounts, reader, &options).await?;
        tracing::debug!(
            layer = %layer.digest,
            bytes = got.size,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "layer applied"
        );
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

    /// Labels the image config with its top snapshot. Returns the top chain ID. (The
    /// files are synced in the background once the unpacker is dropped.)
    pub async fn finish(&self, config: &Descriptor) -> Result<Option<String>> {
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

impl Drop for Unpacker {
    /// Has what this unpacker committed synced and its unsynced labels removed a few
    /// seconds later (whether the unpack finished or failed half-way).
    fn drop(&mut self) {
        let committed =
            std::mem::take(&mut *self.committed.lock().unwrap_or_else(|e| e.into_inner()));
        if committed.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime (berthd is going down): the next start syncs them.
            return;
        };
        let (core, ns, name) = (self.core.clone(), self.ns.clone(), self.sn.name());
        rt.spawn(async move {
            tokio::time::sleep(SYNC_DELAY).await;
            if let Err(e) = sync_and_clear(&core, name, &[(ns, committed)]).await {
                tracing::warn!(error = %e, "sync unpacked layers");
            }
        });
    }
}

/// Syncs the file system of `snapshotter` and removes the unsynced label from the
/// snapshots `(namespace, chains)` that carry this boot's ID.
///
/// Only snapshots committed before the sync starts are cleared: each is noted with its
/// commit time first, and one removed and unpacked again meanwhile (another commit
/// time) keeps its label for a later sync.
async fn sync_and_clear(
    core: &Core,
    snapshotter: &str,
    snapshots: &[(String, Vec<String>)],
) -> Result<()> {
    let mut before = Vec::new();
    for (ns, chains) in snapshots {
        let sn = core.snapshots.get(ns, snapshotter)?;
        for chain in chains {
            match sn.stat(chain).await {
                Ok(info)
                    if info.labels.get(UNSYNCED_LABEL).map(String::as_str) == Some(boot_id()) =>
                {
                    before.push((ns.clone(), chain.clone(), info.created_at));
                }
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if before.is_empty() {
        return Ok(());
    }
    let root = core.config.root.join("snapshots").join(snapshotter);
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || berth_snapshotter::fsutil::sync_filesystem(&root))
        .await
        .map_err(|e| Error::Internal(format!("sync task: {e}")))??;
    tracing::debug!(
        snapshotter,
        snapshots = before.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "unpacked layers synced"
    );
    for (ns, chain, created_at) in before {
        let sn = core.snapshots.get(&ns, snapshotter)?;
        match sn.stat(&chain).await {
            Ok(mut info)
                if info.created_at == created_at && info.labels.contains_key(UNSYNCED_LABEL) =>
            {
                info.labels.remove(UNSYNCED_LABEL);
                sn.update(info, &[format!("labels.{UNSYNCED_LABEL}")])
                    .await?;
            }
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// At start: syncs and clears what unpacks of this boot left unsynced (berthd stopped
/// before their background sync). Snapshots of an earlier boot keep the label: they
/// are unpacked again when needed.
pub async fn sync_pending(core: &Core) -> Result<()> {
    for name in core.snapshots.names() {
        let (name, backend) = core.snapshots.backend(name)?;
        let mut by_ns: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for info in backend.list().await? {
            if info.labels.get(UNSYNCED_LABEL).map(String::as_str) != Some(boot_id()) {
                continue;
            }
            if let Some((ns, key)) = info.name.split_once('/') {
                by_ns
                    .entry(ns.to_string())
                    .or_default()
                    .push(key.to_string());
            }
        }
        if !by_ns.is_empty() {
            let list: Vec<(String, Vec<String>)> = by_ns.into_iter().collect();
            sync_and_clear(core, name, &list).await?;
        }
    }
    Ok(())
}

/// Whether a snapshot's labels say an earlier boot left it unsynced.
fn is_suspect(labels: &Labels) -> bool {
    labels.get(UNSYNCED_LABEL).is_some_and(|b| b != boot_id())
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

/// Whether `image` is unpacked in `snapshotter`: every chain is there and none was left
/// unsynced by an earlier boot.
pub async fn is_unpacked(
    core: &Core,
    ns: &str,
    image: &PlatformImage,
    snapshotter: &str,
) -> Result<bool> {
    let sn = core.snapshots.get(ns, snapshotter)?;
    for chain in image.chain_ids().iter().rev() {
        match sn.stat(chain).await {
            Ok(info) if is_suspect(&info.labels) => return Ok(false),
            Ok(_) => {}
            Err(Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
