//! berth.v1.System: daemon-wide information for `berthctl info`.

use std::sync::Arc;

use berth_api::berth::v1::{InfoRequest, InfoResponse, system_server};
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::host;

pub struct System {
    core: Arc<Core>,
}

impl System {
    pub fn new(core: Arc<Core>) -> Self {
        System { core }
    }
}

#[tonic::async_trait]
impl system_server::System for System {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let c = &self.core;
        let namespaces = c.namespaces.list()?.into_iter().map(|n| n.name).collect();
        Ok(Response::new(InfoResponse {
            version: crate::VERSION.into(),
            revision: crate::REVISION.into(),
            server_uuid: c.uuid.clone(),
            root: c.config.root.display().to_string(),
            state: c.config.state.display().to_string(),
            address: c.config.address().display().to_string(),
            pid: std::process::id(),
            started_at: Some(berth_api::time::from_system(c.started_at)),
            kernel: host::kernel(),
            os: host::os(),
            arch: std::env::consts::ARCH.into(),
            cpus: host::cpus(),
            memory_bytes: host::memory_bytes(),
            cgroup_version: host::cgroup_version().into(),
            default_snapshotter: "overlayfs".into(),
            namespaces,
            ..Default::default()
        }))
    }
}
