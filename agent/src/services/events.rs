//! containerd.services.events.v1.Events.

use std::sync::Arc;

use berth_api::containerd::services::events::v1::{
    Envelope, ForwardRequest, PublishRequest, SubscribeRequest, events_server,
};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::namespace;
use crate::core::Core;
use crate::filters::Filter;

pub struct Events {
    core: Arc<Core>,
}

impl Events {
    pub fn new(core: Arc<Core>) -> Self {
        Events { core }
    }
}

#[tonic::async_trait]
impl events_server::Events for Events {
    async fn publish(&self, req: Request<PublishRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        self.core.events.publish_any(&ns, &req.topic, req.event)?;
        Ok(Response::new(()))
    }

    async fn forward(&self, req: Request<ForwardRequest>) -> Result<Response<()>, Status> {
        let env = req
            .into_inner()
            .envelope
            .ok_or_else(|| Status::invalid_argument("envelope is missing from the request"))?;
        self.core.events.forward(env)?;
        Ok(Response::new(()))
    }

    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<BoxStream<Envelope>>, Status> {
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let mut sub = self.core.events.subscribe();
        let stream = async_stream::stream! {
            while let Some(env) = sub.next(&filter).await {
                yield Ok(env.to_wire());
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}
