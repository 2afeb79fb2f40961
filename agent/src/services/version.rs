//! containerd.services.version.v1.Version.

use berth_api::containerd::services::version::v1::{VersionResponse, version_server};
use tonic::{Request, Response, Status};

pub struct Version;

#[tonic::async_trait]
impl version_server::Version for Version {
    async fn version(&self, _: Request<()>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: crate::VERSION.to_string(),
            revision: crate::REVISION.to_string(),
        }))
    }
}
