//! containerd.services.images.v1.Images.

use std::sync::Arc;

use berth_api::containerd::services::images::v1::{
    self as pb, CreateImageRequest, CreateImageResponse, DeleteImageRequest, GetImageRequest,
    GetImageResponse, ListImagesRequest, ListImagesResponse, UpdateImageRequest,
    UpdateImageResponse, images_server,
};
use tonic::{Request, Response, Status};

use super::convert::{descriptor_in, descriptor_out, labels_in, labels_out, mask_paths, timestamp};
use super::namespace;
use crate::core::Core;
use crate::filters::Filter;
use crate::images::Image;

pub struct Images {
    core: Arc<Core>,
}

impl Images {
    pub fn new(core: Arc<Core>) -> Self {
        Images { core }
    }
}

fn to_wire(i: Image) -> pb::Image {
    pb::Image {
        name: i.name,
        labels: labels_out(i.labels),
        target: Some(descriptor_out(i.target)),
        created_at: Some(timestamp(i.created_at)),
        updated_at: Some(timestamp(i.updated_at)),
    }
}

/// The image of a Create or Update request. `target_required` is false for updates
/// whose mask does not touch the target.
fn from_wire(i: Option<pb::Image>, target_required: bool) -> Result<Image, Status> {
    let i = i.ok_or_else(|| Status::invalid_argument("image is missing from the request"))?;
    // Go clients send an empty (non-nullable) descriptor when they mean "no target";
    // an update that leaves the target alone may still carry annotations.
    let target = match i.target {
        Some(t) if target_required || !t.digest.is_empty() => {
            descriptor_in(Some(t), "image target")?
        }
        None if target_required => {
            return Err(Status::invalid_argument("image target is required"));
        }
        t => crate::content::Descriptor {
            media_type: String::new(),
            digest: crate::content::Digest::of(b""),
            size: 0,
            annotations: t.map(|t| labels_in(t.annotations)).unwrap_or_default(),
        },
    };
    Ok(Image {
        name: i.name,
        labels: labels_in(i.labels),
        target,
        created_at: 0,
        updated_at: 0,
    })
}

#[tonic::async_trait]
impl images_server::Images for Images {
    async fn get(
        &self,
        req: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        let ns = namespace(&req)?;
        let image = self.core.images.get(&ns, &req.into_inner().name)?;
        Ok(Response::new(GetImageResponse {
            image: Some(to_wire(image)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let images = self
            .core
            .images
            .list(&ns, &filter)?
            .into_iter()
            .map(to_wire)
            .collect();
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn create(
        &self,
        req: Request<CreateImageRequest>,
    ) -> Result<Response<CreateImageResponse>, Status> {
        let ns = namespace(&req)?;
        let image = from_wire(req.into_inner().image, true)?;
        let image = self.core.images.create(&ns, image)?;
        Ok(Response::new(CreateImageResponse {
            image: Some(to_wire(image)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateImageRequest>,
    ) -> Result<Response<UpdateImageResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let paths = mask_paths(req.update_mask);
        let target_required = paths.is_empty() || paths.iter().any(|p| p == "target");
        let image = from_wire(req.image, target_required)?;
        let image = self.core.images.update(&ns, image, &paths)?;
        Ok(Response::new(UpdateImageResponse {
            image: Some(to_wire(image)),
        }))
    }

    async fn delete(&self, req: Request<DeleteImageRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        self.core.images.delete(&ns, &req.name, req.sync).await?;
        Ok(Response::new(()))
    }
}
