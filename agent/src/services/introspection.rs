//! containerd.services.introspection.v1.Introspection.

use std::sync::Arc;

use berth_api::containerd::services::introspection::v1::{
    self as pb, PluginsRequest, PluginsResponse, ServerResponse, introspection_server,
};
use berth_api::containerd::types::Platform;
use berth_api::google::rpc;
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::filters::Filter;
use crate::plugins::Plugin;

pub struct Introspection {
    core: Arc<Core>,
}

impl Introspection {
    pub fn new(core: Arc<Core>) -> Self {
        Introspection { core }
    }
}

fn to_wire(p: &Plugin) -> pb::Plugin {
    pb::Plugin {
        r#type: p.kind.to_string(),
        id: p.id.to_string(),
        requires: p.requires.iter().map(|s| s.to_string()).collect(),
        platforms: p
            .platforms
            .iter()
            .map(|(os, arch)| Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: String::new(),
            })
            .collect(),
        exports: p.exports.clone().into_iter().collect(),
        capabilities: p.capabilities.iter().map(|s| s.to_string()).collect(),
        init_err: p.init_err.as_ref().map(|m| rpc::Status {
            code: tonic::Code::Unimplemented as i32,
            message: m.clone(),
            details: Vec::new(),
        }),
    }
}

#[tonic::async_trait]
impl introspection_server::Introspection for Introspection {
    async fn plugins(
        &self,
        req: Request<PluginsRequest>,
    ) -> Result<Response<PluginsResponse>, Status> {
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let plugins = self
            .core
            .plugins
            .iter()
            .filter(|p| filter.matches(*p))
            .map(to_wire)
            .collect();
        Ok(Response::new(PluginsResponse { plugins }))
    }

    async fn server(&self, _: Request<()>) -> Result<Response<ServerResponse>, Status> {
        Ok(Response::new(ServerResponse {
            uuid: self.core.uuid.clone(),
        }))
    }
}
