//! A tonic channel to a daemon on a unix socket (or `tcp://host:port`).

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// Default maximum message size of berth's clients, as `ctr`'s (16 MiB).
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Connects to `address`: a unix socket path (optionally `unix://`), or `tcp://host:port`.
pub async fn connect(address: &str) -> Result<Channel, tonic::transport::Error> {
    if let Some(rest) = address.strip_prefix("tcp://") {
        return Endpoint::from_shared(format!("http://{rest}"))?
            .connect()
            .await;
    }
    let path = PathBuf::from(address.strip_prefix("unix://").unwrap_or(address));
    // The URI is required by the API but unused: the connector below ignores it.
    Endpoint::try_from("http://localhost")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
}

/// Adds the `containerd-namespace` metadata to every call.
#[derive(Clone)]
pub struct WithNamespace(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl WithNamespace {
    /// Fails when the name is not valid header text.
    pub fn new(namespace: &str) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        Ok(WithNamespace(namespace.parse()?))
    }
}

impl tonic::service::Interceptor for WithNamespace {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert(crate::NAMESPACE_HEADER, self.0.clone());
        Ok(req)
    }
}

/// A channel whose calls carry a namespace.
pub type NsChannel = tonic::service::interceptor::InterceptedService<Channel, WithNamespace>;
