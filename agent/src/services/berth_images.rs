//! berth.v1.Images: converts and delegates to `images::*`.

use std::io;
use std::sync::Arc;

use berth_api::berth::v1::{
    self as pb, ImageHistoryRequest, ImageHistoryResponse, InspectImageRequest,
    InspectImageResponse, ListImagesRequest, ListImagesResponse, LoadImagesChunk,
    LoadImagesResponse, LoginRequest, LoginResponse, PruneImagesRequest, PruneImagesResponse,
    PullImageProgress, PullImageRequest, PushImageProgress, PushImageRequest, RemoveImageRequest,
    RemoveImageResponse, SaveImagesChunk, SaveImagesRequest, SearchImagesRequest,
    SearchImagesResponse, TagImageRequest, TagImageResponse, images_server,
};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{labels_out, timestamp};
use super::namespace;
use crate::core::Core;
use crate::distribution::{Credentials, Platform};
use crate::images::archive::{Format, load, save};
use crate::images::progress::{Event, Progress};
use crate::images::stream::ChannelReader;
use crate::images::{catalog, inspect, list, pull, push, registry, remove, store};

/// Size of the chunks of a saved archive.
const ARCHIVE_CHUNK: usize = 1 << 20;

type Stream_<T> = tonic::codegen::BoxStream<T>;

pub struct Images {
    core: Arc<Core>,
}

impl Images {
    pub fn new(core: Arc<Core>) -> Self {
        Images { core }
    }
}

fn credentials(a: Option<pb::RegistryAuth>) -> Option<Credentials> {
    let a = a?;
    if !a.identity_token.is_empty() {
        return Some(Credentials::IdentityToken(a.identity_token));
    }
    if a.username.is_empty() && a.password.is_empty() {
        return None;
    }
    Some(Credentials::Basic {
        username: a.username,
        password: a.password,
    })
}

fn platform(p: &str) -> Result<Option<Platform>, Status> {
    if p.is_empty() {
        return Ok(None);
    }
    Platform::parse(p)
        .map(Some)
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

fn short(d: &crate::content::Digest) -> String {
    catalog::short_id(d)
}

fn layer_out(e: Event) -> Option<pb::LayerProgress> {
    match e {
        Event::Layer {
            digest,
            status,
            current,
            total,
        } => Some(pb::LayerProgress {
            id: short(&digest),
            digest: digest.to_string(),
            status: status.text().into(),
            current,
            total,
        }),
        _ => None,
    }
}

fn pull_event(e: Event) -> PullImageProgress {
    use pb::pull_image_progress::Event as E;
    let event = match e {
        Event::Status(s) => Some(E::Status(s)),
        Event::Pulled(p) => Some(E::Image(pb::PulledImage {
            name: p.name,
            digest: p.digest.to_string(),
            id: p.id.to_string(),
            updated: p.updated,
        })),
        other => layer_out(other).map(E::Layer),
    };
    PullImageProgress { event }
}

fn push_event(e: Event) -> PushImageProgress {
    use pb::push_image_progress::Event as E;
    let event = match e {
        Event::Status(s) => Some(E::Status(s)),
        Event::Pushed(p) => Some(E::Image(pb::PushedImage {
            name: p.name,
            tag: p.tag,
            digest: p.digest.to_string(),
            size: p.size,
        })),
        other => layer_out(other).map(E::Layer),
    };
    PushImageProgress { event }
}

/// Runs `work` with a progress channel and streams its events (mapped by `map`), then
/// its error if it fails.
fn progress_stream<T, F, Fut>(map: fn(Event) -> T, work: F) -> Stream_<T>
where
    T: Send + 'static,
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = crate::error::Result<()>> + Send + 'static,
{
    let (out, rx) = mpsc::channel::<Result<T, Status>>(64);
    let (etx, mut erx) = mpsc::channel::<Event>(256);
    let fwd_out = out.clone();
    let forward = tokio::spawn(async move {
        while let Some(e) = erx.recv().await {
            // The client may be gone; the work goes on.
            let _ = fwd_out.send(Ok(map(e))).await;
        }
    });
    tokio::spawn(async move {
        let r = work(Progress::new(etx)).await;
        let _ = forward.await;
        if let Err(e) = r {
            let _ = out.send(Err(e.into())).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

fn removed_out(r: remove::Removed) -> pb::RemovedImage {
    use pb::removed_image::Item;
    pb::RemovedImage {
        item: Some(match r {
            remove::Removed::Untagged(n) => Item::Untagged(n),
            remove::Removed::Deleted(d) => Item::Deleted(d.to_string()),
        }),
    }
}

fn list_out(s: list::Summary) -> pb::ImageSummary {
    pb::ImageSummary {
        id: s.id.to_string(),
        repo_tags: s.repo_tags,
        repo_digests: s.repo_digests,
        created: (s.created != 0).then(|| timestamp(s.created)),
        size: s.size,
        content_size: s.content_size,
        unpacked_size: s.unpacked_size,
        containers: s.containers,
        labels: labels_out(s.labels),
        target_digest: s.target.to_string(),
        dangling: s.dangling,
    }
}

fn keys<V>(m: Option<std::collections::BTreeMap<String, V>>) -> Vec<String> {
    m.map(|m| m.into_keys().collect()).unwrap_or_default()
}

fn inspect_out(i: inspect::Inspect) -> pb::ImageInspect {
    let c = i.config.config.clone().unwrap_or_default();
    let extra = if c.other.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&c.other).unwrap_or_default()
    };
    let (snapshotter, snapshot) = i.snapshot.clone().unwrap_or_default();
    pb::ImageInspect {
        id: i.id.to_string(),
        repo_tags: i.repo_tags,
        repo_digests: i.repo_digests,
        parent: String::new(),
        comment: i.config.comment.clone().unwrap_or_default(),
        created: (i.created != 0).then(|| timestamp(i.created)),
        docker_version: i.config.docker_version.clone().unwrap_or_default(),
        author: i.config.author.clone().unwrap_or_default(),
        config: Some(pb::ImageRunConfig {
            user: c.user.unwrap_or_default(),
            exposed_ports: keys(c.exposed_ports),
            env: c.env.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            volumes: keys(c.volumes),
            labels: labels_out(c.labels.unwrap_or_default()),
            stop_signal: c.stop_signal.unwrap_or_default(),
            shell: c.shell.unwrap_or_default(),
            args_escaped: c.args_escaped.unwrap_or(false),
            extra_json: extra,
        }),
        architecture: i.config.architecture.clone(),
        variant: i.config.variant.clone().unwrap_or_default(),
        os: i.config.os.clone(),
        os_version: i.config.os_version.clone().unwrap_or_default(),
        size: i.size,
        content_size: i.content_size,
        unpacked_size: i.unpacked_size,
        rootfs_type: i.config.rootfs.kind.clone(),
        rootfs_layers: i.config.rootfs.diff_ids.clone(),
        target_digest: i.target.digest.to_string(),
        target_media_type: i.target.media_type.clone(),
        manifest_digest: i.manifest.digest.to_string(),
        config_media_type: i.config_media_type,
        snapshotter,
        snapshot,
        image_labels: labels_out(i.labels),
        last_tag_time: (i.last_tag_time != 0).then(|| timestamp(i.last_tag_time)),
    }
}

/// Feeds a client stream of chunks into a reader.
fn chunks_reader(mut s: Streaming<LoadImagesChunk>, first: LoadImagesChunk) -> ChannelReader {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::spawn(async move {
        if !first.data.is_empty() && tx.send(Ok(Bytes::from(first.data))).await.is_err() {
            return;
        }
        loop {
            match s.message().await {
                Ok(Some(c)) => {
                    if !c.data.is_empty() && tx.send(Ok(Bytes::from(c.data))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx
                        .send(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the upload stopped: {}", e.message()),
                        )))
                        .await;
                    return;
                }
            }
        }
    });
    ChannelReader::new(rx)
}

#[tonic::async_trait]
impl images_server::Images for Images {
    async fn pull(
        &self,
        req: Request<PullImageRequest>,
    ) -> Result<Response<Stream_<PullImageProgress>>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let options = pull::PullOptions {
            platform: platform(&req.platform)?,
            credentials: credentials(req.auth),
            snapshotter: req.snapshotter,
            all_tags: req.all_tags,
        };
        let core = self.core.clone();
        let reference = req.reference;
        Ok(Response::new(progress_stream(
            pull_event,
            move |p| async move {
                pull::pull(&core, &ns, &reference, &options, &p)
                    .await
                    .map(|_| ())
            },
        )))
    }

    async fn push(
        &self,
        req: Request<PushImageRequest>,
    ) -> Result<Response<Stream_<PushImageProgress>>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let core = self.core.clone();
        let creds = credentials(req.auth);
        let reference = req.reference;
        Ok(Response::new(progress_stream(
            push_event,
            move |p| async move {
                push::push(&core, &ns, &reference, creds, &p)
                    .await
                    .map(|_| ())
            },
        )))
    }

    async fn list(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let images = list::list(&self.core, &ns, req.all, &req.filters)
            .await?
            .into_iter()
            .map(list_out)
            .collect();
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn inspect(
        &self,
        req: Request<InspectImageRequest>,
    ) -> Result<Response<InspectImageResponse>, Status> {
        let ns = namespace(&req)?;
        let i = inspect::inspect(&self.core, &ns, &req.into_inner().name).await?;
        Ok(Response::new(InspectImageResponse {
            image: Some(inspect_out(i)),
        }))
    }

    async fn history(
        &self,
        req: Request<ImageHistoryRequest>,
    ) -> Result<Response<ImageHistoryResponse>, Status> {
        let ns = namespace(&req)?;
        let items = inspect::history(&self.core, &ns, &req.into_inner().name).await?;
        Ok(Response::new(ImageHistoryResponse {
            history: items
                .into_iter()
                .map(|h| pb::HistoryEntry {
                    id: h
                        .id
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "<missing>".into()),
                    created: (h.created != 0).then(|| timestamp(h.created)),
                    created_by: h.created_by,
                    size: h.size,
                    comment: h.comment,
                    tags: h.tags,
                    empty_layer: h.empty_layer,
                })
                .collect(),
        }))
    }

    async fn tag(
        &self,
        req: Request<TagImageRequest>,
    ) -> Result<Response<TagImageResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let name = store::tag(&self.core, &ns, &req.source, &req.target).await?;
        Ok(Response::new(TagImageResponse { name }))
    }

    async fn remove(
        &self,
        req: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let items = remove::remove(&self.core, &ns, &req.name, req.force)
            .await?
            .into_iter()
            .map(removed_out)
            .collect();
        Ok(Response::new(RemoveImageResponse { items }))
    }

    async fn save(
        &self,
        req: Request<SaveImagesRequest>,
    ) -> Result<Response<Stream_<SaveImagesChunk>>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let format = match pb::ArchiveFormat::try_from(req.format) {
            Ok(pb::ArchiveFormat::OciArchive) => Format::Oci,
            Ok(pb::ArchiveFormat::DockerArchive) => Format::Docker,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown archive format {}",
                    req.format
                )));
            }
        };
        let p = platform(&req.platform)?;
        let plan = save::plan(&self.core, &ns, &req.names, format, p.as_ref()).await?;
        let (w, mut r) = tokio::io::duplex(ARCHIVE_CHUNK);
        let core = self.core.clone();
        let writer = tokio::spawn(async move { plan.write(&core, &ns, w).await });
        let (tx, rx) = mpsc::channel::<Result<SaveImagesChunk, Status>>(4);
        tokio::spawn(async move {
            loop {
                let mut buf = BytesMut::with_capacity(ARCHIVE_CHUNK);
                let mut failed = None;
                while buf.len() < ARCHIVE_CHUNK {
                    match r.read_buf(&mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let end = buf.len() < ARCHIVE_CHUNK || failed.is_some();
                if !buf.is_empty()
                    && tx
                        .send(Ok(SaveImagesChunk { data: buf.to_vec() }))
                        .await
                        .is_err()
                {
                    writer.abort();
                    return;
                }
                if end {
                    break;
                }
            }
            match writer.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e.into())).await;
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::internal(format!("save task: {e}"))))
                        .await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn load(
        &self,
        req: Request<Streaming<LoadImagesChunk>>,
    ) -> Result<Response<LoadImagesResponse>, Status> {
        let ns = namespace(&req)?;
        let mut s = req.into_inner();
        let first = s.message().await?.unwrap_or_default();
        let snapshotter = first.snapshotter.clone();
        let reader = chunks_reader(s, first);
        let loaded = load::load(&self.core, &ns, reader, &snapshotter).await?;
        Ok(Response::new(LoadImagesResponse {
            names: loaded.names,
            ids: loaded.ids.into_iter().map(|d| d.to_string()).collect(),
        }))
    }

    async fn prune(
        &self,
        req: Request<PruneImagesRequest>,
    ) -> Result<Response<PruneImagesResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let p = remove::prune(&self.core, &ns, req.all, &req.filters).await?;
        Ok(Response::new(PruneImagesResponse {
            items: p.removed.into_iter().map(removed_out).collect(),
            space_reclaimed: p.reclaimed,
        }))
    }

    async fn search(
        &self,
        req: Request<SearchImagesRequest>,
    ) -> Result<Response<SearchImagesResponse>, Status> {
        let req = req.into_inner();
        let limit = (req.limit > 0).then_some(req.limit as usize);
        let results = registry::search(&self.core, &req.term, credentials(req.auth), limit)
            .await?
            .into_iter()
            .map(|r| pb::SearchResult {
                name: r.name,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(SearchImagesResponse { results }))
    }

    async fn login(&self, req: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        let req = req.into_inner();
        let creds = credentials(req.auth)
            .ok_or_else(|| Status::invalid_argument("login needs a user name and password"))?;
        registry::login(&self.core, &req.server, &creds).await?;
        Ok(Response::new(LoginResponse {
            status: "Login Succeeded".into(),
            identity_token: String::new(),
        }))
    }
}
