//! berth.v1.System: daemon-wide information for `berthctl info`, `system prune` and
//! `system events` and `system df` (delegating to `objects::system`).

use std::sync::Arc;

use berth_api::berth::v1::{self as pb, InfoRequest, InfoResponse, system_server};
use futures::StreamExt;
use tonic::{Request, Response, Status};

use super::namespace;
use crate::error::Error;
use crate::images::remove::Removed;
use crate::objects::system as sys;

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
            storage_driver: "overlayfs".into(),
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            runtimes: vec!["berth".into()],
            default_runtime: "berth".into(),
            volumes: c.volumes.list()?.len() as u64,
            networks: c.networks.list().map_err(Error::from)?.len() as u64,
            log_dir: c.config.containers.log_dir.display().to_string(),
            ..Default::default()
        }))
    }

    async fn df(&self, req: Request<pb::DfRequest>) -> Result<Response<pb::DfResponse>, Status> {
        let ns = namespace(&req)?;
        let d = sys::df(&self.core, &ns, req.get_ref().verbose).await?;
        let line = |t: &str, u: &sys::Usage| pb::DfSummary {
            r#type: t.into(),
            total: u.total,
            active: u.active,
            size: u.size,
            reclaimable: u.reclaimable,
            not_applicable: false,
        };
        Ok(Response::new(pb::DfResponse {
            summary: vec![
                line("Images", &d.images),
                line("Containers", &d.containers),
                line("Local Volumes", &d.volumes),
                pb::DfSummary {
                    r#type: "Build Cache".into(),
                    not_applicable: true,
                    ..Default::default()
                },
            ],
            images: d
                .image_list
                .into_iter()
                .map(|u| pb::DfImage {
                    id: u.summary.id.to_string(),
                    repo_tags: u.summary.repo_tags,
                    created: Some(berth_api::time::from_unix_nanos(u.summary.created)),
                    size: u.summary.size,
                    shared_size: u.shared,
                    unique_size: u.unique,
                    containers: u.summary.containers,
                })
                .collect(),
            containers: d
                .container_list
                .into_iter()
                .map(|c| pb::DfContainer {
                    id: c.id,
                    name: c.name,
                    image: c.image,
                    command: c.command,
                    local_volumes: c.mounts.iter().filter(|m| m.kind == "volume").count() as i64,
                    size: c.size_rw,
                    created: Some(berth_api::time::from_unix_nanos(c.created)),
                    status: c.status,
                    state: c.state,
                })
                .collect(),
            volumes: d
                .volume_list
                .into_iter()
                .map(|(name, links, size)| pb::DfVolume { name, links, size })
                .collect(),
        }))
    }

    async fn prune(
        &self,
        req: Request<pb::SystemPruneRequest>,
    ) -> Result<Response<pb::SystemPruneResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let p = sys::prune(&self.core, &ns, r.all, r.volumes, &r.filters).await?;
        use pb::removed_image::Item;
        Ok(Response::new(pb::SystemPruneResponse {
            containers: p.containers,
            networks: p.networks,
            images: p
                .images
                .into_iter()
                .map(|i| pb::RemovedImage {
                    item: Some(match i {
                        Removed::Untagged(n) => Item::Untagged(n),
                        Removed::Deleted(d) => Item::Deleted(d.to_string()),
                    }),
                })
                .collect(),
            volumes: p.volumes,
            space_reclaimed: p.reclaimed,
        }))
    }

    async fn events(
        &self,
        req: Request<pb::EventsRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::Event>>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let since = berth_api::time::wire_to_unix_nanos(r.since.as_ref());
        let until = berth_api::time::wire_to_unix_nanos(r.until.as_ref());
        let s = sys::events(&self.core, &ns, since, until, &r.filters)?.map(|e| {
            Ok(pb::Event {
                r#type: e.kind.as_str().into(),
                action: e.action.clone(),
                actor_id: e.actor.clone(),
                attributes: e.attributes.clone().into_iter().collect(),
                scope: "local".into(),
                time: Some(berth_api::time::from_unix_nanos(e.time)),
                namespace: e.namespace.clone(),
            })
        });
        Ok(Response::new(Box::pin(s)))
    }
}
