//! Pulling images: resolve a reference at its registry, choose the platform's manifest,
//! fetch index, manifest, config and layers into the content store with the garbage
//! collection labels containerd uses, and unpack while downloading.
//!
//! Layers download in parallel (at most [`MAX_DOWNLOADS`] at once) into resumable
//! ingests. Unpacking runs next to the downloads: layer `i` is applied as soon as it is
//! downloaded and layer `i - 1` is committed; when the unpacker is already waiting for
//! a layer whose download starts, the layer is applied from the bytes as they arrive
//! and committed once the download is verified. Everything is held by a lease until the
//! image record refers to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::content::{Descriptor, Digest};
use crate::core::Core;
use crate::distribution::media::{Kind, classify};
use crate::distribution::{self as dist, Credentials, Platform, Reference, Repository};
use crate::error::{Error, Result};
use crate::images::config::ImageConfig;
use crate::images::content::{self as ic, MAX_CONFIG_SIZE, PlatformImage, to_dist, to_store};
use crate::images::lease::OpLease;
use crate::images::progress::{Event, LayerStatus, Progress, Pulled};
use crate::images::sink::{ContentSink, open_writer};
use crate::images::store::Put;
use crate::images::unpack::{Source, Unpacker};
use crate::labels::Labels;

/// Layers downloaded at once (docker's default).
pub const MAX_DOWNLOADS: usize = 3;

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to pull; None: the host's.
    pub platform: Option<Platform>,
    /// Credentials for the registry.
    pub credentials: Option<Credentials>,
    /// The snapshotter to unpack into (empty: the default).
    pub snapshotter: String,
    /// Every tag of the repository.
    pub all_tags: bool,
}

/// Pulls `reference` (or, with `all_tags`, every tag of its repository) into `ns`.
pub async fn pull(
    core: &Arc<Core>,
    ns: &str,
    reference: &str,
    options: &PullOptions,
    progress: &Progress,
) -> Result<Vec<Pulled>> {
    crate::identifiers::validate("namespace", ns)?;
    if options.all_tags {
        let repo_ref = Reference::parse_name(reference).map_err(|e| match e {
            dist::Error::InvalidReference { reason, .. } if reason.contains("without tag") => {
                Error::InvalidArgument(format!("{reference}: tag can't be used with --all-tags/-a"))
            }
            other => other.into(),
        })?;
        let repo = core
            .registry
            .repository(&repo_ref, options.credentials.clone());
        let mut tags = repo.list_tags().await?;
        tags.sort();
        if tags.is_empty() {
            return Err(Error::NotFound(format!(
                "repository {} has no tags",
                repo_ref.familiar_name()
            )));
        }
        let mut out = Vec::with_capacity(tags.len());
        for tag in tags {
            let r = repo_ref.with_tag(&tag)?;
            out.push(pull_one(core, ns, &r, options, progress).await?);
        }
        return Ok(out);
    }
    let r = Reference::parse(reference)?;
    if !has_object(reference) {
        progress.status("Using default tag: latest").await;
    }
    Ok(vec![pull_one(core, ns, &r, options, progress).await?])
}

/// Whether the text names a tag or digest.
fn has_object(reference: &str) -> bool {
    if reference.contains('@') {
        return true;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.contains(':')
}

/// Writes a small document blob (index, manifest, config), or adds `labels` to it when
/// the namespace has it.
async fn store_doc(
    core: &Arc<Core>,
    ns: &str,
    kind: &str,
    desc: &Descriptor,
    data: Bytes,
    labels: Labels,
    lease: &str,
) -> Result<()> {
    let reference = format!("{kind}-{}", desc.digest);
    let outcome = core
        .content
        .write_blob(
            ns,
            &reference,
            std::io::Cursor::new(data),
            desc.size,
            &desc.digest,
            labels.clone(),
            Some(lease),
        )
        .await?;
    if outcome == crate::content::WriteOutcome::AlreadyExists && !labels.is_empty() {
        merge_labels(core, ns, &desc.digest, labels)?;
    }
    Ok(())
}

/// Sets `labels` on a blob, keeping its others (distribution sources are merged).
fn merge_labels(core: &Core, ns: &str, digest: &Digest, mut labels: Labels) -> Result<()> {
    let info = core.content.info(ns, digest)?;
    for (k, v) in labels.iter_mut() {
        if k.starts_with(ic::LABEL_SOURCE)
            && let Some(old) = info.labels.get(k)
        {
            let mut merged = Labels::new();
            merged.insert(k.clone(), old.clone());
            for repo in v.split(',') {
                ic::add_source(&mut merged, &k[ic::LABEL_SOURCE.len()..], repo);
            }
            *v = merged.remove(k).unwrap_or_default();
        }
    }
    labels.retain(|k, v| info.labels.get(k) != Some(v));
    if labels.is_empty() {
        return Ok(());
    }
    let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
    core.content.update(ns, digest, &labels, &paths)?;
    Ok(())
}

fn source_labels(r: &Reference) -> Labels {
    let mut l = Labels::new();
    ic::add_source(&mut l, r.registry(), r.repository());
    l
}

/// Pulls one tag or digest.
async fn pull_one(
    core: &Arc<Core>,
    ns: &str,
    r: &Reference,
    options: &PullOptions,
    progress: &Progress,
) -> Result<Pulled> {
    let repo = core.registry.repository(r, options.credentials.clone());
    let familiar = r.familiar();
    let what = r.to_string();
    progress
        .status(format!(
            "{}: Pulling from {}",
            r.object(),
            r.familiar_name()
                .strip_prefix(&format!("{}/", r.registry()))
                .map_or_else(|| r.repository().to_string(), str::to_string)
        ))
        .await;
    let started = std::time::Instant::now();
    let lease = OpLease::create(core, ns)?;
    let root = repo.resolve(&r.object()).await?;
    let root_bytes = repo.fetch_manifest(&root).await?;
    let root_store = to_store(&root)?;
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let source = source_labels(r);

    let (index, manifest_desc, manifest_bytes) = match classify(&root.media_type)? {
        Kind::Index => {
            let index = dist::Index::parse(&what, &root.media_type, &root_bytes)?;
            let chosen = dist::select_manifest(&index, &platform, &what)?.clone();
            let bytes = repo.fetch_manifest(&chosen).await?;
            let mut labels = ic::index_labels(&index);
            labels.extend(source.clone());
            store_doc(
                core,
                ns,
                "index",
                &root_store,
                root_bytes.clone(),
                labels,
                lease.id(),
            )
            .await?;
            (Some(index), chosen, bytes)
        }
        _ => (None, root.clone(), root_bytes.clone()),
    };
    let manifest = dist::Manifest::parse(&what, &manifest_desc.media_type, &manifest_bytes)?;
    let manifest_store = to_store(&manifest_desc)?;
    let mut labels = ic::manifest_labels(&manifest);
    labels.extend(source.clone());
    store_doc(
        core,
        ns,
        "manifest",
        &manifest_store,
        manifest_bytes,
        labels,
        lease.id(),
    )
    .await?;

    // The config.
    let config_store = to_store(&manifest.config)?;
    if config_store.size > MAX_CONFIG_SIZE {
        return Err(Error::FailedPrecondition(format!(
            "config {} of {what} is {} bytes, more than the {MAX_CONFIG_SIZE} allowed",
            config_store.digest, config_store.size
        )));
    }
    let config_bytes = if core.content.exists(ns, &config_store.digest)? {
        Bytes::from(
            core.content
                .read_all(ns, &config_store.digest, MAX_CONFIG_SIZE)
                .await?,
        )
    } else {
        let mut buf: Vec<u8> = Vec::new();
        repo.fetch_blob_resumable(&manifest.config, &mut buf)
            .await?;
        Bytes::from(buf)
    };
    let config = ImageConfig::parse(config_store.digest.as_str(), &config_bytes)?;
    store_doc(
        core,
        ns,
        "config",
        &config_store,
        config_bytes,
        source.clone(),
        lease.id(),
    )
    .await?;
    if index.is_none()
        && let Some(p) = &options.platform
        && !config.os.is_empty()
    {
        let have = Platform::new(
            &config.os,
            &config.architecture,
            config.variant.as_deref().unwrap_or(""),
        );
        if have.os != p.os || have.architecture != p.architecture {
            return Err(Error::NotFound(format!(
                "image {familiar} is for platform {have}, not the requested {p}"
            )));
        }
    }
    let image = PlatformImage {
        target: root_store.clone(),
        index,
        manifest_desc: manifest_store,
        manifest,
        config_desc: config_store,
        config,
    };
    image.check_layers()?;

    let downloaded = fetch_and_unpack(core, ns, &repo, &image, options, progress, &lease).await?;

    progress.status(format!("Digest: {}", root.digest)).await;
    let name = r.to_string();
    let put = core.images.put(ns, &name, &root_store, &Labels::new())?;
    let updated = put != Put::Unchanged || downloaded > 0;
    progress
        .status(if updated {
            format!("Status: Downloaded newer image for {familiar}")
        } else {
            format!("Status: Image is up to date for {familiar}")
        })
        .await;
    drop(lease);
    tracing::info!(
        image = %r,
        digest = %root_store.digest,
        layers = image.manifest.layers.len(),
        downloaded,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "image pulled"
    );
    let pulled = Pulled {
        name,
        digest: root_store.digest,
        id: image.config_desc.digest.clone(),
        updated,
    };
    progress.send(Event::Pulled(pulled.clone())).await;
    Ok(pulled)
}

/// Where a layer's download stands, for the unpacker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SlotState {
    Pending,
    /// The download streams its bytes to the slot's receiver.
    Live,
    Committed,
    Failed(String),
}

struct Slot {
    state: watch::Sender<SlotState>,
    live: Mutex<Option<mpsc::Receiver<std::io::Result<Bytes>>>>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            state: watch::Sender::new(SlotState::Pending),
            live: Mutex::new(None),
        }
    }

    async fn settled(&self) -> SlotState {
        let mut rx = self.state.subscribe();
        let r = rx
            .wait_for(|s| !matches!(s, SlotState::Pending | SlotState::Live))
            .await
            .map(|s| s.clone());
        r.unwrap_or_else(|_| SlotState::Failed("the download was abandoned".into()))
    }

    async fn started(&self) -> SlotState {
        let mut rx = self.state.subscribe();
        let r = rx
            .wait_for(|s| !matches!(s, SlotState::Pending))
            .await
            .map(|s| s.clone());
        r.unwrap_or_else(|_| SlotState::Failed("the download was abandoned".into()))
    }
}

/// Downloads the missing layers and unpacks the image; returns how many layers were
/// downloaded.
async fn fetch_and_unpack(
    core: &Arc<Core>,
    ns: &str,
    repo: &Repository,
    image: &PlatformImage,
    options: &PullOptions,
    progress: &Progress,
    lease: &OpLease,
) -> Result<usize> {
    let layers = image.layers()?;
    let unpacker = Arc::new(Unpacker::new(
        core,
        ns,
        image,
        &options.snapshotter,
        Some(lease.id()),
        progress.clone(),
    )?);
    unpacker.check().await?;
    let slots: Arc<Vec<Slot>> = Arc::new(layers.iter().map(|_| Slot::new()).collect());
    let waiting = Arc::new(watch::Sender::new(None::<usize>));
    let mut unpack_needed = vec![true; layers.len()];
    // The first index of each digest downloads it; the others share its slot state.
    let mut first_of: HashMap<Digest, usize> = HashMap::new();
    let mut to_fetch: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let have_content = core.content.exists(ns, &layer.digest)?;
        let have_chain = unpacker.exists(i).await?;
        if have_chain {
            unpack_needed[i] = false;
        }
        if have_content {
            slots[i].state.send_replace(SlotState::Committed);
            let status = if have_chain {
                LayerStatus::AlreadyExists
            } else {
                LayerStatus::DownloadComplete
            };
            progress
                .layer(&layer.digest, status, layer.size, layer.size)
                .await;
            continue;
        }
        match first_of.get(&layer.digest) {
            Some(&first) => {
                if let Some((_, dups)) = to_fetch.iter_mut().find(|(f, _)| *f == first) {
                    dups.push(i);
                }
            }
            None => {
                first_of.insert(layer.digest.clone(), i);
                to_fetch.push((i, Vec::new()));
                progress
                    .layer(&layer.digest, LayerStatus::PullingFsLayer, 0, layer.size)
                    .await;
            }
        }
    }
    let downloads = to_fetch.len();

    let sem = Arc::new(Semaphore::new(MAX_DOWNLOADS));
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let source = source_labels(&Reference::parse_name(&format!(
        "{}/{}",
        repo.registry(),
        repo.repository()
    ))?);
    for (i, dups) in to_fetch {
        let job = Download {
            core: core.clone(),
            ns: ns.to_string(),
            repo: repo.clone(),
            layer: layers[i].clone(),
            index: i,
            dups,
            slots: slots.clone(),
            waiting: waiting.subscribe(),
            progress: progress.clone(),
            lease: lease.id().to_string(),
            labels: source.clone(),
        };
        let sem = sem.clone();
        tasks.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|_| Error::Internal("download queue closed".into()))?;
            job.run().await
        });
    }
    // Both sides run to their end, so a failed pull leaves no snapshot half applied:
    // a failed download settles its layers (the unpacker discards what it applied of
    // them), and a failed unpack stops the downloads.
    let (cancel, mut cancelled) = watch::channel(false);
    let started = std::time::Instant::now();
    let downloads_done = async {
        let mut first_error = None;
        let mut stopping = false;
        loop {
            tokio::select! {
                next = tasks.join_next() => {
                    let Some(r) = next else { break };
                    let r = match r {
                        Ok(r) => r,
                        Err(e) if e.is_cancelled() => Ok(()),
                        Err(e) => Err(Error::Internal(format!("download task: {e}"))),
                    };
                    if let Err(e) = r
                        && first_error.is_none()
                    {
                        first_error = Some(e);
                        tasks.abort_all();
                    }
                }
                Ok(_) = cancelled.wait_for(|c| *c), if !stopping => {
                    stopping = true;
                    tasks.abort_all();
                }
            }
        }
        // Downloads that were stopped never settled their layers.
        for s in slots.iter() {
            s.state.send_if_modified(|st| {
                let open = matches!(st, SlotState::Pending | SlotState::Live);
                if open {
                    *st = SlotState::Failed("the pull was stopped".into());
                }
                open
            });
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "layer downloads done"
        );
        first_error.map_or(Ok(()), Err)
    };
    let unpacking = async {
        let r = unpack_all(
            &unpacker,
            &layers,
            &unpack_needed,
            &slots,
            &waiting,
            progress,
        )
        .await;
        if r.is_err() {
            cancel.send_replace(true);
            // Nobody will read what is still queued for a live apply.
            for s in slots.iter() {
                s.live.lock().unwrap_or_else(|e| e.into_inner()).take();
            }
        }
        r
    };
    let (downloaded, unpacked) = tokio::join!(downloads_done, unpacking);
    downloaded?;
    unpacked?;
    unpacker.finish(&image.config_desc).await?;
    Ok(downloads)
}

/// Applies the layers in order as their downloads allow.
async fn unpack_all(
    unpacker: &Unpacker,
    layers: &[Descriptor],
    needed: &[bool],
    slots: &[Slot],
    waiting: &watch::Sender<Option<usize>>,
    progress: &Progress,
) -> Result<()> {
    for (i, layer) in layers.iter().enumerate() {
        if !needed[i] || unpacker.exists(i).await? {
            continue;
        }
        waiting.send_replace(Some(i));
        let state = slots[i].started().await;
        let live = if state == SlotState::Live {
            slots[i]
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
        } else {
            None
        };
        let mut committed = false;
        if let Some(rx) = live {
            progress
                .layer(&layer.digest, LayerStatus::Extracting, 0, layer.size)
                .await;
            let applied = unpacker.apply(i, Source::Live(rx)).await;
            match (slots[i].settled().await, applied) {
                (SlotState::Committed, Ok(a)) => {
                    unpacker.commit_applied(a).await?;
                    committed = true;
                }
                (SlotState::Committed, Err(e)) => {
                    tracing::info!(layer = %layer.digest, error = %e, "live unpack failed; unpacking the stored layer");
                }
                (SlotState::Failed(m), a) => {
                    if let Ok(a) = a {
                        unpacker.discard(a).await;
                    }
                    return Err(Error::Unavailable(m));
                }
                (_, a) => {
                    if let Ok(a) = a {
                        unpacker.discard(a).await;
                    }
                    return Err(Error::Internal("layer download ended in no state".into()));
                }
            }
        }
        if !committed {
            match slots[i].settled().await {
                SlotState::Committed => {}
                SlotState::Failed(m) => return Err(Error::Unavailable(m)),
                _ => return Err(Error::Internal("layer download ended in no state".into())),
            }
            progress
                .layer(&layer.digest, LayerStatus::Extracting, 0, layer.size)
                .await;
            let applied = unpacker.apply(i, Source::Store).await?;
            unpacker.commit_applied(applied).await?;
        }
        progress
            .layer(
                &layer.digest,
                LayerStatus::PullComplete,
                layer.size,
                layer.size,
            )
            .await;
    }
    waiting.send_replace(None);
    Ok(())
}

/// One layer download.
struct Download {
    core: Arc<Core>,
    ns: String,
    repo: Repository,
    layer: Descriptor,
    index: usize,
    /// Other indexes with the same digest.
    dups: Vec<usize>,
    slots: Arc<Vec<Slot>>,
    waiting: watch::Receiver<Option<usize>>,
    progress: Progress,
    lease: String,
    labels: Labels,
}

impl Download {
    fn settle(&self, state: SlotState) {
        for i in std::iter::once(self.index).chain(self.dups.iter().copied()) {
            self.slots[i].state.send_replace(state.clone());
        }
    }

    async fn run(self) -> Result<()> {
        let r = self.fetch().await;
        match &r {
            Ok(()) => self.settle(SlotState::Committed),
            Err(e) => self.settle(SlotState::Failed(e.to_string())),
        }
        r
    }

    async fn fetch(&self) -> Result<()> {
        let layer = &self.layer;
        let reference = format!("layer-{}", layer.digest);
        let writer = match open_writer(
            &self.core.content,
            &self.ns,
            &reference,
            layer.size,
            &layer.digest,
            Some(&self.lease),
        )
        .await
        {
            Ok(w) => w,
            Err(Error::AlreadyExists(_)) => {
                merge_labels(&self.core, &self.ns, &layer.digest, self.labels.clone())?;
                self.progress
                    .layer(
                        &layer.digest,
                        LayerStatus::DownloadComplete,
                        layer.size,
                        layer.size,
                    )
                    .await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let writer = if writer.is_complete() {
            writer
        } else {
            let mut sink = ContentSink::new(
                writer,
                layer.digest.clone(),
                layer.size,
                self.progress.clone(),
            );
            if *self.waiting.borrow() == Some(self.index) {
                let (tx, rx) = mpsc::channel(64);
                sink = sink.with_live(tx);
                *self.slots[self.index]
                    .live
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(rx);
                self.slots[self.index].state.send_replace(SlotState::Live);
            }
            let desc = to_dist(layer)?;
            if let Err(e) = self.repo.fetch_blob_resumable(&desc, &mut sink).await {
                drop(sink);
                if matches!(
                    e,
                    dist::Error::DigestMismatch { .. } | dist::Error::SizeMismatch { .. }
                ) && let Err(abort) = self.core.content.abort(&self.ns, &reference)
                {
                    tracing::warn!(reference, error = %abort, "remove the ingest of a bad blob");
                }
                return Err(e.into());
            }
            self.progress
                .layer(
                    &layer.digest,
                    LayerStatus::VerifyingChecksum,
                    layer.size,
                    layer.size,
                )
                .await;
            sink.into_writer()
        };
        match writer
            .commit(layer.size, Some(layer.digest.clone()), self.labels.clone())
            .await
        {
            Ok(_) => {}
            Err(Error::AlreadyExists(_)) => {
                merge_labels(&self.core, &self.ns, &layer.digest, self.labels.clone())?;
            }
            Err(e) => {
                if let Err(abort) = self.core.content.abort(&self.ns, &reference) {
                    tracing::warn!(reference, error = %abort, "remove the ingest of a bad blob");
                }
                return Err(e);
            }
        }
        self.progress
            .layer(
                &layer.digest,
                LayerStatus::DownloadComplete,
                layer.size,
                layer.size,
            )
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::has_object;

    #[test]
    fn objects_in_references() {
        assert!(!has_object("busybox"));
        assert!(!has_object("localhost:5000/busybox"));
        assert!(has_object("localhost:5000/busybox:1"));
        assert!(has_object("busybox@sha256:abc"));
    }
}
