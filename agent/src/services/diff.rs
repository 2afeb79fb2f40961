//! containerd.services.diff.v1.Diff.

use std::sync::Arc;

use berth_api::containerd::services::diff::v1::{
    ApplyRequest, ApplyResponse, DiffRequest, DiffResponse, diff_server,
};
use tonic::{Request, Response, Status};

use super::convert::{descriptor_in, descriptor_out, labels_in, mounts_in};
use super::{lease, namespace};
use crate::core::Core;
use crate::diff::NewLayer;

pub struct Diff {
    core: Arc<Core>,
}

impl Diff {
    pub fn new(core: Arc<Core>) -> Self {
        Diff { core }
    }
}

#[tonic::async_trait]
impl diff_server::Diff for Diff {
    async fn apply(&self, req: Request<ApplyRequest>) -> Result<Response<ApplyResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let layer = descriptor_in(r.diff, "diff")?;
        let applied = self
            .core
            .differ
            .apply(&ns, &layer, &mounts_in(r.mounts))
            .await?;
        Ok(Response::new(ApplyResponse {
            applied: Some(descriptor_out(applied)),
        }))
    }

    async fn diff(&self, req: Request<DiffRequest>) -> Result<Response<DiffResponse>, Status> {
        let (ns, lease) = (namespace(&req)?, lease(&req));
        let r = req.into_inner();
        let desc = self
            .core
            .differ
            .diff(
                &ns,
                &mounts_in(r.left),
                &mounts_in(r.right),
                NewLayer {
                    media_type: &r.media_type,
                    reference: &r.r#ref,
                    labels: labels_in(r.labels),
                    lease: lease.as_deref(),
                },
            )
            .await?;
        Ok(Response::new(DiffResponse {
            diff: Some(descriptor_out(desc)),
        }))
    }
}
