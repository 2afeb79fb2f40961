//! containerd.services.leases.v1.Leases.

use std::sync::Arc;

use berth_api::containerd::services::leases::v1::{
    self as pb, AddResourceRequest, CreateRequest, CreateResponse, DeleteRequest,
    DeleteResourceRequest, ListRequest, ListResourcesRequest, ListResourcesResponse, ListResponse,
    leases_server,
};
use tonic::{Request, Response, Status};

use super::convert::{labels_in, labels_out};
use super::namespace;
use crate::core::Core;
use crate::filters::{Adaptor, Filter, label_field};
use crate::metadata::{Lease, LeaseResource};

pub struct Leases {
    core: Arc<Core>,
}

impl Leases {
    pub fn new(core: Arc<Core>) -> Self {
        Leases { core }
    }
}

impl Adaptor for Lease {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first()?.as_str() {
            "id" => Some(self.id.clone()),
            "labels" => label_field(&self.labels, path),
            _ => None,
        }
    }
}

fn to_wire(l: Lease) -> pb::Lease {
    pb::Lease {
        id: l.id,
        created_at: Some(berth_api::time::from_unix_nanos(l.created_at)),
        labels: labels_out(l.labels),
    }
}

fn resource_in(r: Option<pb::Resource>) -> Result<LeaseResource, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("resource is missing from the request"))?;
    Ok(LeaseResource {
        kind: r.r#type,
        id: r.id,
    })
}

#[tonic::async_trait]
impl leases_server::Leases for Leases {
    async fn create(
        &self,
        req: Request<CreateRequest>,
    ) -> Result<Response<CreateResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let lease = self
            .core
            .metadata
            .lease_create(&ns, &req.id, labels_in(req.labels))?;
        Ok(Response::new(CreateResponse {
            lease: Some(to_wire(lease)),
        }))
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        self.core.metadata.lease_delete(&ns, &req.id)?;
        // What only the lease held is garbage now: collect it before answering when
        // asked to, else soon.
        if req.sync {
            self.core.gc.collect().await?;
        } else {
            self.core.gc.trigger().schedule();
        }
        Ok(Response::new(()))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let leases = self
            .core
            .metadata
            .lease_list(&ns)?
            .into_iter()
            .filter(|l| filter.matches(l))
            .map(to_wire)
            .collect();
        Ok(Response::new(ListResponse { leases }))
    }

    async fn add_resource(&self, req: Request<AddResourceRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        self.core
            .metadata
            .lease_add_resource(&ns, &req.id, &resource_in(req.resource)?)?;
        Ok(Response::new(()))
    }

    async fn delete_resource(
        &self,
        req: Request<DeleteResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        self.core
            .metadata
            .lease_delete_resource(&ns, &req.id, &resource_in(req.resource)?)?;
        Ok(Response::new(()))
    }

    async fn list_resources(
        &self,
        req: Request<ListResourcesRequest>,
    ) -> Result<Response<ListResourcesResponse>, Status> {
        let ns = namespace(&req)?;
        let resources = self
            .core
            .metadata
            .lease_resources(&ns, &req.into_inner().id)?
            .into_iter()
            .map(|r| pb::Resource {
                id: r.id,
                r#type: r.kind,
            })
            .collect();
        Ok(Response::new(ListResourcesResponse { resources }))
    }
}
