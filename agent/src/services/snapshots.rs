//! containerd.services.snapshots.v1.Snapshots.

use std::sync::Arc;

use berth_api::containerd::services::snapshots::v1::{
    self as pb, CleanupRequest, CommitSnapshotRequest, ListSnapshotsRequest, ListSnapshotsResponse,
    MountsRequest, MountsResponse, PrepareSnapshotRequest, PrepareSnapshotResponse,
    RemoveSnapshotRequest, StatSnapshotRequest, StatSnapshotResponse, UpdateSnapshotRequest,
    UpdateSnapshotResponse, UsageRequest, UsageResponse, ViewSnapshotRequest, ViewSnapshotResponse,
    snapshots_server,
};
use berth_snapshotter::{Info, Kind};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::convert::{labels_in, labels_out, mask_paths, mounts_out};
use super::{lease, namespace};
use crate::core::Core;
use crate::filters::Filter;
use crate::snapshots::InfoFields;

/// How many snapshot infos one List message carries.
const LIST_BATCH: usize = 100;

pub struct Snapshots {
    core: Arc<Core>,
}

impl Snapshots {
    pub fn new(core: Arc<Core>) -> Self {
        Snapshots { core }
    }
}

fn kind_out(k: Kind) -> pb::Kind {
    match k {
        Kind::View => pb::Kind::View,
        Kind::Active => pb::Kind::Active,
        Kind::Committed => pb::Kind::Committed,
    }
}

fn kind_in(k: i32) -> Kind {
    match pb::Kind::try_from(k) {
        Ok(pb::Kind::View) => Kind::View,
        Ok(pb::Kind::Committed) => Kind::Committed,
        _ => Kind::Active,
    }
}

fn info_out(i: Info) -> pb::Info {
    pb::Info {
        name: i.name,
        parent: i.parent.unwrap_or_default(),
        kind: kind_out(i.kind) as i32,
        created_at: Some(berth_api::time::from_system(i.created_at)),
        updated_at: Some(berth_api::time::from_system(i.updated_at)),
        labels: labels_out(i.labels),
    }
}

fn info_in(i: Option<pb::Info>) -> Result<Info, Status> {
    let i = i.ok_or_else(|| Status::invalid_argument("info is missing from the request"))?;
    let now = std::time::SystemTime::now();
    Ok(Info {
        name: i.name,
        parent: Some(i.parent).filter(|p| !p.is_empty()),
        kind: kind_in(i.kind),
        labels: labels_in(i.labels),
        created_at: berth_api::time::to_system(i.created_at.as_ref()).unwrap_or(now),
        updated_at: berth_api::time::to_system(i.updated_at.as_ref()).unwrap_or(now),
    })
}

fn parent(p: &str) -> Option<&str> {
    Some(p).filter(|p| !p.is_empty())
}

#[tonic::async_trait]
impl snapshots_server::Snapshots for Snapshots {
    async fn prepare(
        &self,
        req: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let (ns, lease) = (namespace(&req)?, lease(&req));
        let r = req.into_inner();
        let s = self.core.snapshots.get(&ns, &r.snapshotter)?;
        let mounts = s
            .prepare(
                &r.key,
                parent(&r.parent),
                labels_in(r.labels),
                lease.as_deref(),
            )
            .await?;
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: mounts_out(mounts),
        }))
    }

    async fn view(
        &self,
        req: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let (ns, lease) = (namespace(&req)?, lease(&req));
        let r = req.into_inner();
        let s = self.core.snapshots.get(&ns, &r.snapshotter)?;
        let mounts = s
            .view(
                &r.key,
                parent(&r.parent),
                labels_in(r.labels),
                lease.as_deref(),
            )
            .await?;
        Ok(Response::new(ViewSnapshotResponse {
            mounts: mounts_out(mounts),
        }))
    }

    async fn mounts(
        &self,
        req: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let mounts = self
            .core
            .snapshots
            .get(&ns, &r.snapshotter)?
            .mounts(&r.key)
            .await?;
        Ok(Response::new(MountsResponse {
            mounts: mounts_out(mounts),
        }))
    }

    async fn commit(&self, req: Request<CommitSnapshotRequest>) -> Result<Response<()>, Status> {
        let (ns, lease) = (namespace(&req)?, lease(&req));
        let r = req.into_inner();
        let s = self.core.snapshots.get(&ns, &r.snapshotter)?;
        s.commit(&r.name, &r.key, labels_in(r.labels), lease.as_deref())
            .await?;
        Ok(Response::new(()))
    }

    async fn remove(&self, req: Request<RemoveSnapshotRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        self.core
            .snapshots
            .get(&ns, &r.snapshotter)?
            .remove(&r.key)
            .await?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        req: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let info = self
            .core
            .snapshots
            .get(&ns, &r.snapshotter)?
            .stat(&r.key)
            .await?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(info_out(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let s = self.core.snapshots.get(&ns, &r.snapshotter)?;
        let info = s
            .update(info_in(r.info)?, &mask_paths(r.update_mask))
            .await?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(info_out(info)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListSnapshotsRequest>,
    ) -> Result<Response<BoxStream<ListSnapshotsResponse>>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let filter = Filter::parse_all(&r.filters)?;
        let mut infos: Vec<Info> = self
            .core
            .snapshots
            .get(&ns, &r.snapshotter)?
            .list()
            .await?
            .into_iter()
            .filter(|i| filter.matches(&InfoFields(i)))
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        let batches: Vec<Result<ListSnapshotsResponse, Status>> = infos
            .chunks(LIST_BATCH)
            .map(|c| {
                Ok(ListSnapshotsResponse {
                    info: c.iter().cloned().map(info_out).collect(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn usage(&self, req: Request<UsageRequest>) -> Result<Response<UsageResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let u = self
            .core
            .snapshots
            .get(&ns, &r.snapshotter)?
            .usage(&r.key)
            .await?;
        Ok(Response::new(UsageResponse {
            size: u.size,
            inodes: u.inodes,
        }))
    }

    async fn cleanup(&self, req: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        self.core
            .snapshots
            .get(&ns, &r.snapshotter)?
            .cleanup()
            .await?;
        Ok(Response::new(()))
    }
}
