//! containerd.services.namespaces.v1.Namespaces.

use std::sync::Arc;

use berth_api::containerd::services::namespaces::v1::{
    self as pb, CreateNamespaceRequest, CreateNamespaceResponse, DeleteNamespaceRequest,
    GetNamespaceRequest, GetNamespaceResponse, ListNamespacesRequest, ListNamespacesResponse,
    UpdateNamespaceRequest, UpdateNamespaceResponse, namespaces_server,
};
use tonic::{Request, Response, Status};

use super::convert::{labels_in, labels_out, mask_paths};
use crate::core::Core;
use crate::metadata::Namespace;

pub struct Namespaces {
    core: Arc<Core>,
}

impl Namespaces {
    pub fn new(core: Arc<Core>) -> Self {
        Namespaces { core }
    }
}

fn to_wire(ns: Namespace) -> pb::Namespace {
    pb::Namespace {
        name: ns.name,
        labels: labels_out(ns.labels),
    }
}

fn from_wire(ns: Option<pb::Namespace>) -> Result<Namespace, Status> {
    let ns = ns.ok_or_else(|| Status::invalid_argument("namespace is missing from the request"))?;
    Ok(Namespace {
        name: ns.name,
        labels: labels_in(ns.labels),
    })
}

#[tonic::async_trait]
impl namespaces_server::Namespaces for Namespaces {
    async fn get(
        &self,
        req: Request<GetNamespaceRequest>,
    ) -> Result<Response<GetNamespaceResponse>, Status> {
        let ns = self.core.namespaces.get(&req.into_inner().name)?;
        Ok(Response::new(GetNamespaceResponse {
            namespace: Some(to_wire(ns)),
        }))
    }

    async fn list(
        &self,
        _: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let namespaces = self
            .core
            .namespaces
            .list()?
            .into_iter()
            .map(to_wire)
            .collect();
        Ok(Response::new(ListNamespacesResponse { namespaces }))
    }

    async fn create(
        &self,
        req: Request<CreateNamespaceRequest>,
    ) -> Result<Response<CreateNamespaceResponse>, Status> {
        let ns = from_wire(req.into_inner().namespace)?;
        let ns = self.core.namespaces.create(&ns)?;
        Ok(Response::new(CreateNamespaceResponse {
            namespace: Some(to_wire(ns)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<UpdateNamespaceResponse>, Status> {
        let req = req.into_inner();
        let ns = from_wire(req.namespace)?;
        let ns = self
            .core
            .namespaces
            .update(&ns, &mask_paths(req.update_mask))?;
        Ok(Response::new(UpdateNamespaceResponse {
            namespace: Some(to_wire(ns)),
        }))
    }

    async fn delete(&self, req: Request<DeleteNamespaceRequest>) -> Result<Response<()>, Status> {
        self.core.namespaces.delete(&req.into_inner().name)?;
        Ok(Response::new(()))
    }
}
