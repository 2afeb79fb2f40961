//! berth.v1.Volumes: converts and delegates to `objects::volumes`.

use std::sync::Arc;

use berth_api::berth::v1::{self as pb, volumes_server};
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::objects::volumes::{self as vol, Listed};
use crate::volumes::VolumeCreate;

pub struct Volumes {
    core: Arc<Core>,
}

impl Volumes {
    pub fn new(core: Arc<Core>) -> Self {
        Volumes { core }
    }
}

fn volume_out(l: Listed) -> pb::Volume {
    let v = l.volume;
    pb::Volume {
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint.display().to_string(),
        created_at: Some(berth_api::time::from_unix_nanos(v.created_at)),
        labels: v.labels.into_iter().collect(),
        options: v.options.into_iter().collect(),
        scope: "local".into(),
        anonymous: v.anonymous,
        users: v.users.into_iter().collect(),
        size: l.size,
    }
}

#[tonic::async_trait]
impl volumes_server::Volumes for Volumes {
    async fn create(
        &self,
        req: Request<pb::CreateVolumeRequest>,
    ) -> Result<Response<pb::CreateVolumeResponse>, Status> {
        let r = req.into_inner();
        let v = vol::create(
            &self.core,
            VolumeCreate {
                name: r.name,
                driver: r.driver,
                labels: r.labels.into_iter().collect(),
                options: r.driver_opts.into_iter().collect(),
            },
        )?;
        Ok(Response::new(pb::CreateVolumeResponse {
            volume: Some(volume_out(Listed {
                volume: v,
                size: -1,
            })),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListVolumesRequest>,
    ) -> Result<Response<pb::ListVolumesResponse>, Status> {
        let r = req.into_inner();
        let core = self.core.clone();
        let listed = tokio::task::spawn_blocking(move || vol::list(&core, &r.filters, r.size))
            .await
            .map_err(|e| Status::internal(format!("volume list task: {e}")))??;
        Ok(Response::new(pb::ListVolumesResponse {
            volumes: listed.into_iter().map(volume_out).collect(),
        }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectVolumeRequest>,
    ) -> Result<Response<pb::InspectVolumeResponse>, Status> {
        let r = req.into_inner();
        let core = self.core.clone();
        let l = tokio::task::spawn_blocking(move || vol::inspect(&core, &r.name, r.size))
            .await
            .map_err(|e| Status::internal(format!("volume inspect task: {e}")))??;
        Ok(Response::new(pb::InspectVolumeResponse {
            volume: Some(volume_out(l)),
        }))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveVolumeRequest>,
    ) -> Result<Response<pb::RemoveVolumeResponse>, Status> {
        let r = req.into_inner();
        vol::remove(&self.core, &r.name, r.force)?;
        Ok(Response::new(pb::RemoveVolumeResponse {}))
    }

    async fn prune(
        &self,
        req: Request<pb::PruneVolumesRequest>,
    ) -> Result<Response<pb::PruneVolumesResponse>, Status> {
        let r = req.into_inner();
        let core = self.core.clone();
        let (deleted, bytes) =
            tokio::task::spawn_blocking(move || vol::prune(&core, r.all, &r.filters))
                .await
                .map_err(|e| Status::internal(format!("volume prune task: {e}")))??;
        Ok(Response::new(pb::PruneVolumesResponse {
            deleted,
            space_reclaimed: bytes,
        }))
    }
}
