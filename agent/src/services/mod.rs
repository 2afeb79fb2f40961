//! gRPC adapters: one file per service, each converting wire types to domain types,
//! delegating to the core, and converting back. No logic lives here.

mod berth_containers;
mod berth_images;
mod container_tools;
mod containers;
mod content;
mod convert;
mod diff;
mod events;
mod images;
mod introspection;
mod leases;
mod namespaces;
mod networks;
mod snapshots;
mod system;
mod tasks;
mod timing;
mod version;
mod volumes;

use std::sync::Arc;

use tonic::transport::server::Router;
use tonic::{Request, Status};

use crate::core::Core;
use crate::identifiers;

/// The middleware around every service.
pub type Layers = tower::layer::util::Stack<timing::TimingLayer, tower::layer::util::Identity>;

/// Every service berthd serves, on one router.
pub fn router(core: Arc<Core>) -> Router<Layers> {
    use berth_api::berth::v1::system_server::SystemServer;
    use berth_api::containerd::services as cs;

    let max_recv = core.config.grpc.max_recv_message_size;
    let max_send = core.config.grpc.max_send_message_size;
    macro_rules! svc {
        ($server:path, $imp:expr) => {{
            use $server as S;
            S::new($imp)
                .max_decoding_message_size(max_recv)
                .max_encoding_message_size(max_send)
        }};
    }
    tonic::transport::Server::builder()
        .layer(timing::TimingLayer)
        .add_service(svc!(
            cs::version::v1::version_server::VersionServer,
            version::Version
        ))
        .add_service(svc!(
            cs::introspection::v1::introspection_server::IntrospectionServer,
            introspection::Introspection::new(core.clone())
        ))
        .add_service(svc!(
            cs::namespaces::v1::namespaces_server::NamespacesServer,
            namespaces::Namespaces::new(core.clone())
        ))
        .add_service(svc!(
            cs::leases::v1::leases_server::LeasesServer,
            leases::Leases::new(core.clone())
        ))
        .add_service(svc!(
            cs::events::v1::events_server::EventsServer,
            events::Events::new(core.clone())
        ))
        .add_service(svc!(SystemServer, system::System::new(core.clone())))
        .add_service(svc!(
            berth_api::berth::v1::containers_server::ContainersServer,
            berth_containers::Containers::new(core.clone())
        ))
        .add_service(svc!(
            berth_api::berth::v1::container_tools_server::ContainerToolsServer,
            container_tools::ContainerTools::new(core.clone())
        ))
        .add_service(svc!(
            berth_api::berth::v1::volumes_server::VolumesServer,
            volumes::Volumes::new(core.clone())
        ))
        .add_service(svc!(
            berth_api::berth::v1::networks_server::NetworksServer,
            networks::Networks::new(core.clone())
        ))
        .add_service(svc!(
            berth_api::berth::v1::images_server::ImagesServer,
            berth_images::Images::new(core.clone())
        ))
        .add_service(svc!(
            cs::content::v1::content_server::ContentServer,
            content::Content::new(core.clone())
        ))
        .add_service(svc!(
            cs::images::v1::images_server::ImagesServer,
            images::Images::new(core.clone())
        ))
        .add_service(svc!(
            cs::snapshots::v1::snapshots_server::SnapshotsServer,
            snapshots::Snapshots::new(core.clone())
        ))
        .add_service(svc!(
            cs::diff::v1::diff_server::DiffServer,
            diff::Diff::new(core.clone())
        ))
        .add_service(svc!(
            cs::containers::v1::containers_server::ContainersServer,
            containers::Containers::new(core.clone())
        ))
        .add_service(svc!(
            cs::tasks::v1::tasks_server::TasksServer,
            tasks::Tasks::new(core.clone())
        ))
}

/// The namespace of a call, from the `containerd-namespace` metadata key.
pub(crate) fn namespace<T>(req: &Request<T>) -> Result<String, Status> {
    let value = req.metadata().get(berth_api::NAMESPACE_HEADER).ok_or_else(|| {
        Status::failed_precondition(
            "namespace is required: set the containerd-namespace metadata (ctr -n, berthctl -n)",
        )
    })?;
    let ns = value
        .to_str()
        .map_err(|_| Status::invalid_argument("containerd-namespace is not valid text"))?;
    identifiers::validate("namespace", ns)?;
    Ok(ns.to_string())
}

/// The lease of a call, from the `containerd-lease` metadata key, if any.
pub(crate) fn lease<T>(req: &Request<T>) -> Option<String> {
    req.metadata()
        .get(berth_api::LEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
