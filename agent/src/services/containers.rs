//! containerd.services.containers.v1.Containers.

use std::sync::Arc;

use berth_api::containerd::services::containers::v1::{
    self as pb, CreateContainerRequest, CreateContainerResponse, DeleteContainerRequest,
    GetContainerRequest, GetContainerResponse, ListContainerMessage, ListContainersRequest,
    ListContainersResponse, UpdateContainerRequest, UpdateContainerResponse, containers_server,
};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::convert::{labels_in, labels_out, mask_paths};
use super::namespace;
use crate::containers::{Container, Runtime};
use crate::core::Core;
use crate::filters::Filter;

pub struct Containers {
    core: Arc<Core>,
}

impl Containers {
    pub fn new(core: Arc<Core>) -> Self {
        Containers { core }
    }
}

fn to_wire(c: Container) -> pb::Container {
    pb::Container {
        id: c.id,
        labels: labels_out(c.labels),
        image: c.image,
        runtime: Some(pb::container::Runtime {
            name: c.runtime.name,
            options: c.runtime.options.map(Into::into),
        }),
        spec: c.spec.map(Into::into),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: Some(berth_api::time::from_unix_nanos(c.created_at)),
        updated_at: Some(berth_api::time::from_unix_nanos(c.updated_at)),
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect(),
    }
}

fn from_wire(c: Option<pb::Container>) -> Result<Container, Status> {
    let c = c.ok_or_else(|| Status::invalid_argument("container is missing from the request"))?;
    let runtime = c.runtime.unwrap_or_default();
    Ok(Container {
        id: c.id,
        labels: labels_in(c.labels),
        image: c.image,
        runtime: Runtime {
            name: runtime.name,
            options: runtime.options.map(Into::into),
        },
        spec: c.spec.map(Into::into),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: 0,
        updated_at: 0,
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect(),
    })
}

#[tonic::async_trait]
impl containers_server::Containers for Containers {
    async fn get(
        &self,
        req: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let c = self.core.containers.get(&ns, &req.into_inner().id)?;
        Ok(Response::new(GetContainerResponse {
            container: Some(to_wire(c)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let containers = self
            .core
            .containers
            .list(&ns, &filter)?
            .into_iter()
            .map(to_wire)
            .collect();
        Ok(Response::new(ListContainersResponse { containers }))
    }

    async fn list_stream(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<BoxStream<ListContainerMessage>>, Status> {
        let ns = namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let list = self.core.containers.list(&ns, &filter)?;
        let stream = tokio_stream::iter(list.into_iter().map(|c| {
            Ok(ListContainerMessage {
                container: Some(to_wire(c)),
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn create(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let c = from_wire(req.into_inner().container)?;
        let c = self.core.containers.create(&ns, c)?;
        Ok(Response::new(CreateContainerResponse {
            container: Some(to_wire(c)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateContainerRequest>,
    ) -> Result<Response<UpdateContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let c = from_wire(req.container)?;
        let c = self
            .core
            .containers
            .update(&ns, c, &mask_paths(req.update_mask))?;
        Ok(Response::new(UpdateContainerResponse {
            container: Some(to_wire(c)),
        }))
    }

    async fn delete(&self, req: Request<DeleteContainerRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        self.core.containers.delete(&ns, &req.into_inner().id)?;
        Ok(Response::new(()))
    }
}
