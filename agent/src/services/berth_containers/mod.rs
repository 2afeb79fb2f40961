//! berth.v1.Containers: converts and delegates to `berth_containers`.

mod convert;
mod streams;

use std::sync::Arc;

use berth_api::berth::v1::{self as pb, containers_server};
use futures::StreamExt;
use tonic::{Request, Response, Status};

use super::namespace;
use crate::berth_containers::{self as bc, WaitCondition};
use crate::core::Core;

type Stream_<T> = tonic::codegen::BoxStream<T>;

pub struct Containers {
    core: Arc<Core>,
}

impl Containers {
    pub fn new(core: Arc<Core>) -> Self {
        Containers { core }
    }
}

#[tonic::async_trait]
impl containers_server::Containers for Containers {
    #[tracing::instrument(skip_all)]
    async fn create(
        &self,
        req: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = convert::create_in(req.into_inner())?;
        let created = bc::create(&self.core, &ns, r).await?;
        Ok(Response::new(pb::CreateContainerResponse {
            id: created.id,
            warnings: created.warnings,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn start(
        &self,
        req: Request<pb::StartContainerRequest>,
    ) -> Result<Response<pb::StartContainerResponse>, Status> {
        let ns = namespace(&req)?;
        bc::start(&self.core, &ns, &req.get_ref().id).await?;
        Ok(Response::new(pb::StartContainerResponse {}))
    }

    async fn stop(
        &self,
        req: Request<pb::StopContainerRequest>,
    ) -> Result<Response<pb::StopContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let signal = Some(r.signal.as_str()).filter(|s| !s.is_empty());
        bc::stop(&self.core, &ns, &r.id, r.timeout, signal).await?;
        Ok(Response::new(pb::StopContainerResponse {}))
    }

    async fn kill(
        &self,
        req: Request<pb::KillContainerRequest>,
    ) -> Result<Response<pb::KillContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        bc::kill(&self.core, &ns, &r.id, Some(r.signal.as_str())).await?;
        Ok(Response::new(pb::KillContainerResponse {}))
    }

    async fn restart(
        &self,
        req: Request<pb::RestartContainerRequest>,
    ) -> Result<Response<pb::RestartContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        bc::restart(&self.core, &ns, &r.id, r.timeout).await?;
        Ok(Response::new(pb::RestartContainerResponse {}))
    }

    async fn pause(
        &self,
        req: Request<pb::PauseContainerRequest>,
    ) -> Result<Response<pb::PauseContainerResponse>, Status> {
        let ns = namespace(&req)?;
        bc::pause(&self.core, &ns, &req.get_ref().id).await?;
        Ok(Response::new(pb::PauseContainerResponse {}))
    }

    async fn unpause(
        &self,
        req: Request<pb::UnpauseContainerRequest>,
    ) -> Result<Response<pb::UnpauseContainerResponse>, Status> {
        let ns = namespace(&req)?;
        bc::unpause(&self.core, &ns, &req.get_ref().id).await?;
        Ok(Response::new(pb::UnpauseContainerResponse {}))
    }

    async fn wait(
        &self,
        req: Request<pb::WaitContainerRequest>,
    ) -> Result<Response<Stream_<pb::WaitContainerResponse>>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let condition = match pb::WaitCondition::try_from(r.condition) {
            Ok(pb::WaitCondition::NotRunning) => WaitCondition::NotRunning,
            Ok(pb::WaitCondition::NextExit) => WaitCondition::NextExit,
            Ok(pb::WaitCondition::Removed) => WaitCondition::Removed,
            Err(_) => return Err(Status::invalid_argument("unknown wait condition")),
        };
        let done = bc::wait(&self.core, &ns, &r.id, condition)?;
        let waiting = futures::stream::once(async {
            Ok(pb::WaitContainerResponse {
                waiting: true,
                ..Default::default()
            })
        });
        let result = futures::stream::once(async move {
            let w = done.await?;
            Ok(pb::WaitContainerResponse {
                waiting: false,
                status_code: w.exit_code.into(),
                error: w.error,
            })
        });
        Ok(Response::new(Box::pin(waiting.chain(result))))
    }

    async fn rename(
        &self,
        req: Request<pb::RenameContainerRequest>,
    ) -> Result<Response<pb::RenameContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        bc::rename(&self.core, &ns, &r.id, &r.new_name)?;
        Ok(Response::new(pb::RenameContainerResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn remove(
        &self,
        req: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        bc::remove(&self.core, &ns, &r.id, r.force, r.volumes).await?;
        Ok(Response::new(pb::RemoveContainerResponse {}))
    }

    async fn prune(
        &self,
        req: Request<pb::PruneContainersRequest>,
    ) -> Result<Response<pb::PruneContainersResponse>, Status> {
        let ns = namespace(&req)?;
        let (deleted, space_reclaimed) = bc::prune(&self.core, &ns, &req.get_ref().filters).await?;
        Ok(Response::new(pb::PruneContainersResponse {
            deleted,
            space_reclaimed,
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let ns = namespace(&req)?;
        let opts = convert::list_in(req.into_inner());
        let containers = bc::list(&self.core, &ns, &opts)
            .await?
            .into_iter()
            .map(convert::summary_out)
            .collect();
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectContainerRequest>,
    ) -> Result<Response<pb::InspectContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let doc = bc::inspect(&self.core, &ns, &r.id, r.size).await?;
        let json = serde_json::to_vec(&doc).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::InspectContainerResponse { json }))
    }

    async fn logs(
        &self,
        req: Request<pb::ContainerLogsRequest>,
    ) -> Result<Response<Stream_<pb::ContainerLogsFrame>>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let frames = bc::logs(&self.core, &ns, &r.id, convert::logs_in(&r))?;
        Ok(Response::new(Box::pin(frames.map(|f| {
            f.map(convert::log_frame_out).map_err(Status::from)
        }))))
    }

    async fn attach(
        &self,
        req: Request<tonic::Streaming<pb::AttachInput>>,
    ) -> Result<Response<Stream_<pb::AttachOutput>>, Status> {
        let ns = namespace(&req)?;
        Ok(Response::new(
            streams::attach(&self.core, &ns, req.into_inner()).await?,
        ))
    }

    async fn exec(
        &self,
        req: Request<tonic::Streaming<pb::ExecInput>>,
    ) -> Result<Response<Stream_<pb::ExecOutput>>, Status> {
        let ns = namespace(&req)?;
        Ok(Response::new(
            streams::exec(&self.core, &ns, req.into_inner()).await?,
        ))
    }
}
